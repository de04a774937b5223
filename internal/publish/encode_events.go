package publish

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/bits"
	"slices"
	"sync"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/delta"
	"github.com/parquet-go/parquet-go/encoding/rle"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/littlewarehouse/warehouse/internal/frame"
)

// The events table's row groups are encoded here, straight from the
// frame's columns, into single-row-group Parquet files that parquet-go then
// copies verbatim into the files written (see WriteEvents): no
// parquet.Value per value and no copy of a string into a column buffer. A
// string column is its dictionary ids; statistics compare the ids' ranks
// in byte order, computed once per frame.
//
// The files have exactly what parquet-go writes for eventSchema and
// writerConfig and what its verbatim copy requires (the copy is
// checked by TestWriteEventsCopiesRowGroups, and the values, levels and
// statistics against parquet-go's own writer by TestEncodeGroupMatchesParquetGo):
//   - data pages v2, zstd (the shared codec; the event ids and the string
//     columns sorted by who with seqCodec), with a CRC-32 of the page's
//     bytes as written;
//   - strings DELTA_LENGTH_BYTE_ARRAY, or RLE_DICTIONARY with a PLAIN
//     dictionary page for the columns tagged dict, its entries in order of
//     first use in the row group; times DELTA_BINARY_PACKED (the columns
//     tagged delta) or PLAIN; clock_skewed and date PLAIN;
//   - levels RLE, as few bits as the level needs;
//   - a page ends at the row that brings its values' plain-encoded size to
//     pageSize (1 MiB, parquet-go's PageBufferSize in writerConfig), or at
//     the end of the row group;
//   - statistics (null count, min and max) for every page and chunk, and
//     the page index: a column index (byte arrays truncated to
//     columnIndexLimit bytes, the max rounded up) and an offset index.
//
// Where it differs from parquet-go, on purpose: page boundaries (parquet-go
// cuts a page once its buffer passes the size, between batches of values);
// a column index's boundary order, which here ignores null pages, as the
// format says, where parquet-go compares their empty bounds too; and no
// size statistics (level histograms and unencoded byte array sizes, which
// are optional and which no reader we serve uses).

// pageSize is the plain-encoded size of a page's values at which it ends
// (a variable for tests).
var pageSize = 1 << 20

// columnIndexLimit is parquet-go's default limit on the bytes of a byte
// array min or max in a column index.
const columnIndexLimit = 16

// eventTemplate is what every row group file of the events table shares:
// its footer's schema and column orders, as parquet-go writes them for
// eventSchema, and each leaf's path, type and dictionary tag.
type eventTemplate struct {
	schema []format.SchemaElement
	orders []format.ColumnOrder
	leaves []eventLeaf // by column index
}

type eventLeaf struct {
	path   []string
	kind   format.Type
	dict   bool // RLE_DICTIONARY, else the kind's default (DELTA_LENGTH_BYTE_ARRAY or PLAIN)
	delta  bool // DELTA_BINARY_PACKED (an int64 column tagged delta)
	maxDef int
	maxRep int
}

// rowGroupTemplate is made once, from an empty file parquet-go writes.
var rowGroupTemplate = sync.OnceValues(func() (*eventTemplate, error) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[any](&buf, append(writerConfig(WriterOptions{}), eventSchema)...)
	if err := w.Close(); err != nil {
		return nil, err
	}
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		return nil, err
	}
	md := f.Metadata()
	t := &eventTemplate{schema: md.Schema, orders: md.ColumnOrders}
	for _, path := range eventSchema.Columns() {
		leaf, _ := eventSchema.Lookup(path...)
		l := eventLeaf{
			path:   path,
			kind:   format.Type(leaf.Node.Type().Kind()),
			maxDef: leaf.MaxDefinitionLevel,
			maxRep: leaf.MaxRepetitionLevel,
		}
		if e := leaf.Node.Encoding(); e != nil {
			l.dict = e.Encoding() == format.RLEDictionary
			l.delta = e.Encoding() == format.DeltaBinaryPacked
		}
		t.leaves = append(t.leaves, l)
	}
	return t, nil
})

// groupEncoder encodes row groups of one frame; each goroutine has its own.
type groupEncoder struct {
	ev   *frame.Events
	strs frame.Strs
	rank []uint32 // the dictionary's Ranks, shared
	t    *eventTemplate

	out []byte // the file being made

	// Scratch, reused from page to page.
	vals, comp []byte   // a page's values, encoded, and compressed
	levels     []uint8  // a page's levels, one per value
	rlev, dlev []byte   // encoded
	lens, idx  []int32  // string lengths; dictionary indexes
	times      []int64  // a page's times that are not null
	sel        []uint32 // the ids of a page that are not null
	ids        []byte   // event ids as text
	hdr        bytes.Buffer
	enc        *thrift.Encoder
	body       []byte // a page's strings (see encodeSorted)

	// The dictionary of the chunk being encoded: slot[id] is the id's
	// index in it plus one (0: not in it), used its ids in order.
	slot []int32
	used []uint32

	// The row group's chunks and page index so far.
	chunks []format.ColumnChunk
	cidx   []format.ColumnIndex
	oidx   []format.OffsetIndex
}

func newGroupEncoder(ev *frame.Events, strs frame.Strs, rank []uint32, t *eventTemplate) *groupEncoder {
	g := &groupEncoder{ev: ev, strs: strs, rank: rank, t: t}
	g.enc = thrift.NewEncoder(new(thrift.CompactProtocol).NewWriter(&g.hdr))
	return g
}

// encodeGroup returns events [lo, hi) as a Parquet file of one row group
// (into g's buffer: valid until the next call). It checks ctx between
// columns.
func (g *groupEncoder) encodeGroup(ctx context.Context, lo, hi int) ([]byte, error) {
	g.out = append(g.out[:0], "PAR1"...)
	g.chunks, g.cidx, g.oidx = g.chunks[:0], g.cidx[:0], g.oidx[:0]
	for ci, leaf := range g.t.leaves {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c := chunk{g: g, leaf: &leaf, lo: lo, hi: hi}
		if err := c.encode(ci); err != nil {
			return nil, fmt.Errorf("column %v: %w", leaf.path, err)
		}
	}
	return g.finish(hi - lo)
}

// chunk is one column chunk being encoded.
type chunk struct {
	g      *groupEncoder
	leaf   *eventLeaf
	lo, hi int // the row group's events

	md       format.ColumnMetaData
	ci       format.ColumnIndex
	oi       format.OffsetIndex
	rows     int64 // rows in pages so far
	pages    int   // data pages so far
	min, max []byte
	hasMinMx bool
	compare  func(a, b []byte) int
	seq      bool // pages are compressed by seqCodec, not codec
}

func (c *chunk) encode(ci int) error {
	g := c.g
	c.md = format.ColumnMetaData{
		Type: c.leaf.kind, PathInSchema: c.leaf.path, Codec: format.Zstd,
	}
	c.compare = bytes.Compare
	switch c.leaf.kind {
	case format.Int64:
		c.compare = func(a, b []byte) int {
			return cmp.Compare(int64(binary.LittleEndian.Uint64(a)), int64(binary.LittleEndian.Uint64(b)))
		}
	case format.Int32:
		c.compare = func(a, b []byte) int {
			return cmp.Compare(int32(binary.LittleEndian.Uint32(a)), int32(binary.LittleEndian.Uint32(b)))
		}
	}
	start := int64(len(g.out))
	ev := g.ev
	var err error
	switch {
	case ci == colEventID.index:
		err = c.eventIDs()
	case ci == colEventTime.index:
		err = c.int64s(ev.EventTime)
	case ci == colClientTime.index:
		err = c.int64s(ev.ClientTime)
	case ci == colReceivedAt.index:
		err = c.int64s(ev.ReceivedAt)
	case ci == colPropKey.index:
		err = c.props(ev.PropKey)
	case ci == colPropValue.index:
		err = c.props(ev.PropVal)
	case ci == colClockSkewed.index:
		err = c.bools(ev.Skewed)
	case ci == colDate.index:
		err = c.date(ev.Day)
	default:
		s := strColumn(ci)
		if s < 0 {
			return fmt.Errorf("publish: no frame column for events column %d", ci)
		}
		if c.leaf.dict {
			err = c.dictStrings(ev.Str[s])
		} else {
			err = c.strings(ev.Str[s])
		}
	}
	if err != nil {
		return err
	}
	if c.hasMinMx {
		c.md.Statistics.MinValue, c.md.Statistics.MaxValue = c.min, c.max
	}
	c.ci.BoundaryOrder = boundaryOrder(c.ci, c.compare)
	g.chunks = append(g.chunks, format.ColumnChunk{FileOffset: start, MetaData: c.md})
	g.cidx = append(g.cidx, c.ci)
	g.oidx = append(g.oidx, c.oi)
	return nil
}

// strColumn is the frame column written to events column index col, or -1.
func strColumn(col int) frame.Column {
	for s := range frame.NumColumns {
		if colStr[s].index == col {
			return s
		}
	}
	return -1
}

// pageEnd returns the end of the page starting at row i: the row that
// brings size(i)+... to pageSize, or hi.
func (c *chunk) pageEnd(i int, size func(int) int) int {
	n := 0
	for ; i < c.hi && n < pageSize; i++ {
		n += size(i)
	}
	return i
}

// int64s writes times; an optional column (client_event_time) holds them
// as frame.EncodeClientTime makes them, 0 being null.
func (c *chunk) int64s(ts []int64) error {
	g := c.g
	opt := c.leaf.maxDef > 0
	enc := format.Plain
	if c.leaf.delta {
		enc = format.DeltaBinaryPacked
	}
	for a := c.lo; a < c.hi; {
		b := min(a+pageSize/8, c.hi)
		g.vals, g.levels, g.times = g.vals[:0], g.levels[:0], g.times[:0]
		var lo, hi int64
		for _, t := range ts[a:b] {
			if opt { // client_event_time: see frame.DecodeClientTime
				ms, ok := frame.DecodeClientTime(t)
				if !ok {
					g.levels = append(g.levels, 0)
					continue
				}
				t = ms
				g.levels = append(g.levels, 1)
			}
			if len(g.times) == 0 || t < lo {
				lo = t
			}
			if len(g.times) == 0 || t > hi {
				hi = t
			}
			g.times = append(g.times, t)
		}
		if c.leaf.delta {
			g.vals, _ = new(delta.BinaryPackedEncoding).EncodeInt64(g.vals, g.times)
		} else {
			for _, t := range g.times {
				g.vals = binary.LittleEndian.AppendUint64(g.vals, uint64(t))
			}
		}
		var mn, mx []byte
		n := len(g.times)
		if n > 0 {
			mn, mx = binary.LittleEndian.AppendUint64(nil, uint64(lo)), binary.LittleEndian.AppendUint64(nil, uint64(hi))
		}
		if err := c.dataPage(enc, b-a, b-a, b-a-n, mn, mx); err != nil {
			return err
		}
		a = b
	}
	return nil
}

// bools writes clock_skewed, bit-packed.
func (c *chunk) bools(v []bool) error {
	g := c.g
	for a := c.lo; a < c.hi; {
		b := min(a+pageSize, c.hi)
		g.vals = slices.Grow(g.vals[:0], (b-a+7)/8)[:(b-a+7)/8]
		clear(g.vals)
		some, all := false, true
		for i, x := range v[a:b] {
			if x {
				g.vals[i/8] |= 1 << (i % 8)
				some = true
			} else {
				all = false
			}
		}
		mn, mx := []byte{b2byte(all)}, []byte{b2byte(some)}
		if err := c.dataPage(format.Plain, b-a, b-a, 0, mn, mx); err != nil {
			return err
		}
		a = b
	}
	return nil
}

// date writes the date column: day, in every row, PLAIN.
func (c *chunk) date(day int32) error {
	g := c.g
	v := binary.LittleEndian.AppendUint32(nil, uint32(day))
	for a := c.lo; a < c.hi; {
		b := min(a+pageSize/4, c.hi)
		g.vals = g.vals[:0]
		for range b - a {
			g.vals = append(g.vals, v...)
		}
		if err := c.dataPage(format.Plain, b-a, b-a, 0, v, v); err != nil {
			return err
		}
		a = b
	}
	return nil
}

func b2byte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// eventIDs writes the event ids as text, DELTA_LENGTH_BYTE_ARRAY.
func (c *chunk) eventIDs() error {
	g, ev := c.g, c.g.ev
	// Random hex, but for UUIDv7's leading time (the collector's ids): in
	// the day's order an id mostly starts like the one before it.
	c.seq = true
	idLen := func(i int) int { return 4 + ev.IDTextSize(i, i+1) }
	for a := c.lo; a < c.hi; {
		b := c.pageEnd(a, idLen)
		g.lens, g.ids = g.lens[:0], g.ids[:0]
		lo, hi := a, a // the rows of the min and max id
		for i := a; i < b; i++ {
			n := len(g.ids)
			g.ids = ev.AppendIDText(g.ids, i)
			g.lens = append(g.lens, int32(len(g.ids)-n))
			// Packed ids compare as their text does.
			if bytes.Compare(ev.ID(i), ev.ID(lo)) < 0 {
				lo = i
			}
			if bytes.Compare(ev.ID(i), ev.ID(hi)) > 0 {
				hi = i
			}
		}
		g.vals, _ = new(delta.BinaryPackedEncoding).EncodeInt32(g.vals, g.lens)
		g.vals = append(g.vals, g.ids...)
		mn, mx := ev.AppendIDText([]byte{}, lo), ev.AppendIDText([]byte{}, hi) // "" is not null
		if err := c.dataPage(format.DeltaLengthByteArray, b-a, b-a, 0, mn, mx); err != nil {
			return err
		}
		a = b
	}
	return nil
}

// strLen is the plain-encoded size of id's string (0 for a null).
func (c *chunk) strLen(ids []uint32) func(int) int {
	opt := c.leaf.maxDef > 0
	return func(i int) int {
		id := ids[i]
		if opt && id == 0 {
			return 0
		}
		return 4 + c.g.strs.Size(id)
	}
}

// minMax tracks the dictionary ids of the least and greatest strings of a
// page by their byte ranks.
type minMax struct {
	rank   []uint32
	lo, hi uint32
	n      int
}

func (m *minMax) add(id uint32) {
	if m.n == 0 || m.rank[id] < m.rank[m.lo] {
		m.lo = id
	}
	if m.n == 0 || m.rank[id] > m.rank[m.hi] {
		m.hi = id
	}
	m.n++
}

func (m *minMax) bytes(strs frame.Strs) (mn, mx []byte) {
	if m.n == 0 {
		return nil, nil
	}
	return append([]byte{}, strs.At(m.lo)...), append([]byte{}, strs.At(m.hi)...) // "" is not null
}

// present sets g.levels to the definition levels of ids, in an optional
// column, where "" (id 0) is null, and returns the ids that are not null;
// in a required column it returns ids, and no levels.
func (c *chunk) present(ids []uint32) []uint32 {
	g := c.g
	g.levels = g.levels[:0]
	if c.leaf.maxDef == 0 {
		return ids
	}
	g.sel = g.sel[:0]
	for _, id := range ids {
		if id == 0 {
			g.levels = append(g.levels, 0)
			continue
		}
		g.levels = append(g.levels, 1)
		g.sel = append(g.sel, id)
	}
	return g.sel
}

// encodeStrings sets g.vals to the strings of ids (none null),
// DELTA_LENGTH_BYTE_ARRAY-encoded, and adds them to m.
func (g *groupEncoder) encodeStrings(ids []uint32, m *minMax) {
	g.lens = g.lens[:0]
	n := 0
	for _, id := range ids {
		g.lens = append(g.lens, int32(g.strs.Size(id)))
		n += g.strs.Size(id)
		m.add(id)
	}
	g.vals, _ = new(delta.BinaryPackedEncoding).EncodeInt32(g.vals, g.lens)
	g.vals = slices.Grow(g.vals, n)
	for _, id := range ids {
		g.vals = append(g.vals, g.strs.At(id)...)
	}
}

// encodeSorted is encodeStrings of a column sorted by who, where a string
// mostly equals the one before it. The strings' bytes go to g.body once
// each, in a loop whose loads do not wait on each other (a string is
// mostly a cache miss in the dictionary); a string the same as the one
// before it (the same id) is copied from there, not looked up again.
func (g *groupEncoder) encodeSorted(ids []uint32, m *minMax) {
	g.lens, g.body = g.lens[:0], g.body[:0]
	last, lastAt := ^uint32(0), 0
	for _, id := range ids {
		at := len(g.body)
		if id == last {
			g.body = append(g.body, g.body[lastAt:at]...)
		} else {
			g.body = append(g.body, g.strs.At(id)...)
			m.add(id)
			last = id
		}
		g.lens = append(g.lens, int32(len(g.body)-at))
		lastAt = at
	}
	g.vals, _ = new(delta.BinaryPackedEncoding).EncodeInt32(g.vals, g.lens)
	g.vals = append(g.vals, g.body...)
}

// strings writes a string column DELTA_LENGTH_BYTE_ARRAY; in an optional
// column "" (id 0) is null.
func (c *chunk) strings(ids []uint32) error {
	g := c.g
	c.seq = true // sorted by who: a string mostly repeats the one before it
	size := c.strLen(ids)
	for a := c.lo; a < c.hi; {
		b := c.pageEnd(a, size)
		vals := c.present(ids[a:b])
		m := minMax{rank: g.rank}
		g.encodeSorted(vals, &m)
		mn, mx := m.bytes(g.strs)
		if err := c.dataPage(format.DeltaLengthByteArray, b-a, b-a, b-a-len(vals), mn, mx); err != nil {
			return err
		}
		a = b
	}
	return nil
}

// dictStrings writes a string column RLE_DICTIONARY: a dictionary page of
// the strings the row group uses, in order of first use, then the data
// pages of their indexes; in an optional column "" (id 0) is null.
func (c *chunk) dictStrings(ids []uint32) error {
	g := c.g
	opt := c.leaf.maxDef > 0
	if len(g.slot) < g.strs.Len() {
		g.slot = make([]int32, g.strs.Len())
	}
	g.used = g.used[:0]
	for _, id := range ids[c.lo:c.hi] {
		if (!opt || id != 0) && g.slot[id] == 0 {
			g.used = append(g.used, id)
			g.slot[id] = int32(len(g.used))
		}
	}
	defer func() {
		for _, id := range g.used {
			g.slot[id] = 0
		}
	}()
	// Even with no strings (all null): parquet-go writes one, and its copy
	// requires it.
	g.vals = g.vals[:0]
	for _, id := range g.used {
		g.vals = binary.LittleEndian.AppendUint32(g.vals, uint32(g.strs.Size(id)))
		g.vals = append(g.vals, g.strs.At(id)...)
	}
	if err := c.dictPage(len(g.used)); err != nil {
		return err
	}
	// A page's plain size is its indexes': 4 bytes each.
	for a := c.lo; a < c.hi; {
		b := min(a+pageSize/4, c.hi)
		vals := c.present(ids[a:b])
		g.idx = g.idx[:0]
		m := minMax{rank: g.rank}
		for _, id := range vals {
			g.idx = append(g.idx, g.slot[id]-1)
			m.add(id)
		}
		var err error
		if g.vals, err = new(rle.DictionaryEncoding).EncodeInt32(g.vals, g.idx); err != nil {
			return err
		}
		mn, mx := m.bytes(g.strs)
		if err := c.dataPage(format.RLEDictionary, b-a, b-a, b-a-len(vals), mn, mx); err != nil {
			return err
		}
		a = b
	}
	return nil
}

// props writes the property keys or values (ids, indexed by PropOff) to a
// map leaf: a null (definition level 0) for an event without properties,
// else one value per property, the first of the event at repetition
// level 0 and the others at 1.
func (c *chunk) props(ids []uint32) error {
	g, off := c.g, c.g.ev.PropOff
	size := func(i int) int {
		n := 0
		for _, id := range ids[off[i]:off[i+1]] {
			n += 4 + g.strs.Size(id)
		}
		return n
	}
	def := uint8(c.leaf.maxDef)
	for a := c.lo; a < c.hi; {
		b := c.pageEnd(a, size)
		g.levels, g.ids = g.levels[:0], g.ids[:0] // ids: the repetition levels
		nulls := 0
		for i := a; i < b; i++ {
			x, y := off[i], off[i+1]
			if x == y {
				g.levels, g.ids = append(g.levels, 0), append(g.ids, 0)
				nulls++
				continue
			}
			for j := x; j < y; j++ {
				g.levels = append(g.levels, def)
				g.ids = append(g.ids, b2byte(j > x))
			}
		}
		m := minMax{rank: g.rank}
		g.encodeStrings(ids[off[a]:off[b]], &m)
		mn, mx := m.bytes(g.strs)
		if err := c.dataPage(format.DeltaLengthByteArray, b-a, len(g.levels), nulls, mn, mx); err != nil {
			return err
		}
		a = b
	}
	return nil
}

// dictPage writes g.vals, n PLAIN strings, as the chunk's dictionary page.
func (c *chunk) dictPage(n int) error {
	g := c.g
	g.grow(len(g.vals))
	c.md.DictionaryPageOffset = int64(len(g.out))
	var err error
	if g.comp, err = codec.Encode(g.comp, g.vals); err != nil {
		return err
	}
	h := format.PageHeader{
		Type:                 format.DictionaryPage,
		UncompressedPageSize: int32(len(g.vals)),
		CompressedPageSize:   int32(len(g.comp)),
		CRC:                  int32(crc32.ChecksumIEEE(g.comp)),
		DictionaryPageHeader: thrift.New(format.DictionaryPageHeader{NumValues: int32(n), Encoding: format.Plain}),
	}
	hn, err := c.header(&h)
	if err != nil {
		return err
	}
	g.out = append(g.out, g.comp...)
	c.md.TotalUncompressedSize += int64(hn + len(g.vals))
	c.md.TotalCompressedSize += int64(hn + len(g.comp))
	c.md.EncodingStats = append(c.md.EncodingStats, format.PageEncodingStats{PageType: format.DictionaryPage, Encoding: format.Plain, Count: 1})
	c.md.Encoding = append(c.md.Encoding, format.Plain)
	return nil
}

// grow makes room in the file for a page of n bytes before compression
// (and what zstd may add to incompressible bytes, and a header), growing
// it as frame.Grow does: a row group's file is tens of megabytes.
func (g *groupEncoder) grow(n int) {
	g.out = frame.Grow(g.out, n+n/64+1024)
}

// header appends h, encoded, to the file and returns its size.
func (c *chunk) header(h *format.PageHeader) (int, error) {
	g := c.g
	g.hdr.Reset()
	if err := g.enc.Encode(h); err != nil {
		return 0, err
	}
	g.out = append(g.out, g.hdr.Bytes()...)
	return g.hdr.Len(), nil
}

// dataPage writes a data page of rows rows: g.levels (the definition
// levels, or with a map leaf the definition levels and g.ids the
// repetition levels) of values entries, nulls of them null, and g.vals
// their values encoded with enc; mn and mx are the page's least and
// greatest values, nil if all are null.
func (c *chunk) dataPage(enc format.Encoding, rows, values, nulls int, mn, mx []byte) error {
	g := c.g
	g.grow(len(g.vals) + len(g.levels))
	g.rlev, g.dlev = g.rlev[:0], g.dlev[:0]
	var err error
	if c.leaf.maxRep > 0 {
		if g.rlev, err = (&rle.Encoding{BitWidth: bits.Len(uint(c.leaf.maxRep))}).EncodeLevels(g.rlev, g.ids); err != nil {
			return err
		}
	}
	if c.leaf.maxDef > 0 {
		if g.dlev, err = (&rle.Encoding{BitWidth: bits.Len(uint(c.leaf.maxDef))}).EncodeLevels(g.dlev, g.levels); err != nil {
			return err
		}
	}
	cd := codec
	if c.seq {
		cd = seqCodec
	}
	if g.comp, err = cd.Encode(g.comp, g.vals); err != nil {
		return err
	}
	crc := crc32.Update(0, crc32.IEEETable, g.rlev)
	crc = crc32.Update(crc, crc32.IEEETable, g.dlev)
	crc = crc32.Update(crc, crc32.IEEETable, g.comp)
	levels := len(g.rlev) + len(g.dlev)
	stats := format.Statistics{Min: mn, Max: mx, NullCount: int64(nulls), MinValue: mn, MaxValue: mx}
	h := format.PageHeader{
		Type:                 format.DataPageV2,
		UncompressedPageSize: int32(levels + len(g.vals)),
		CompressedPageSize:   int32(levels + len(g.comp)),
		CRC:                  int32(crc),
		DataPageHeaderV2: thrift.New(format.DataPageHeaderV2{
			NumValues: int32(values), NumNulls: int32(nulls), NumRows: int32(rows), Encoding: enc,
			DefinitionLevelsByteLength: int32(len(g.dlev)), RepetitionLevelsByteLength: int32(len(g.rlev)),
			IsCompressed: thrift.New(true), Statistics: stats,
		}),
	}
	at := int64(len(g.out))
	if c.pages == 0 {
		c.md.DataPageOffset = at
	}
	hn, err := c.header(&h)
	if err != nil {
		return err
	}
	g.out = append(g.out, g.rlev...)
	g.out = append(g.out, g.dlev...)
	g.out = append(g.out, g.comp...)
	c.pages++
	c.md.NumValues += int64(values)
	c.md.TotalUncompressedSize += int64(hn + levels + len(g.vals))
	c.md.TotalCompressedSize += int64(hn + levels + len(g.comp))
	c.md.Statistics.NullCount += int64(nulls)
	if c.pages == 1 {
		if c.leaf.maxDef > 0 || c.leaf.maxRep > 0 {
			c.md.Encoding = append(c.md.Encoding, format.RLE)
		}
		c.md.Encoding = append(c.md.Encoding, enc)
		slices.Sort(c.md.Encoding)
		c.md.Encoding = slices.Compact(c.md.Encoding)
		c.md.EncodingStats = append(c.md.EncodingStats, format.PageEncodingStats{PageType: format.DataPageV2, Encoding: enc})
	}
	c.md.EncodingStats[len(c.md.EncodingStats)-1].Count++

	// The page index, and the chunk's min and max.
	c.oi.PageLocations = append(c.oi.PageLocations, format.PageLocation{
		Offset: at, CompressedPageSize: int32(int64(len(g.out)) - at), FirstRowIndex: c.rows,
	})
	c.rows += int64(rows)
	c.ci.NullPages = append(c.ci.NullPages, mn == nil)
	c.ci.NullCounts = append(c.ci.NullCounts, int64(nulls))
	imn, imx := mn, mx
	switch {
	case mn == nil && c.leaf.kind == format.Int64:
		imn, imx = make([]byte, 8), make([]byte, 8) // what parquet-go writes for a null page
	case mn == nil:
		imn, imx = []byte{}, []byte{}
	case c.leaf.kind == format.ByteArray:
		imn, imx = truncateMin(mn), truncateMax(mx)
	}
	c.ci.MinValues = append(c.ci.MinValues, imn)
	c.ci.MaxValues = append(c.ci.MaxValues, imx)
	if mn != nil {
		if !c.hasMinMx || c.compare(mn, c.min) < 0 {
			c.min = mn
		}
		if !c.hasMinMx || c.compare(mx, c.max) > 0 {
			c.max = mx
		}
		c.hasMinMx = true
	}
	return nil
}

// truncateMin returns at most columnIndexLimit bytes of a min: a prefix,
// which is no greater.
func truncateMin(b []byte) []byte {
	if len(b) > columnIndexLimit {
		return b[:columnIndexLimit:columnIndexLimit]
	}
	return b
}

// truncateMax returns at most columnIndexLimit bytes of a max, no less
// than it: a prefix incremented as a big-endian number (all 0xFF stays).
func truncateMax(b []byte) []byte {
	if len(b) <= columnIndexLimit {
		return b
	}
	p := slices.Clone(b[:columnIndexLimit])
	for i := len(p) - 1; i >= 0; i-- {
		if p[i]++; p[i] != 0 {
			return p
		}
	}
	for i := range p {
		p[i] = 0xFF
	}
	return p
}

// boundaryOrder is the order of the pages' mins and maxes, null pages
// aside.
func boundaryOrder(ci format.ColumnIndex, compare func(a, b []byte) int) format.BoundaryOrder {
	asc, desc := true, true
	last := -1
	for i, null := range ci.NullPages {
		if null {
			continue
		}
		if last >= 0 {
			a := compare(ci.MinValues[last], ci.MinValues[i])
			b := compare(ci.MaxValues[last], ci.MaxValues[i])
			asc = asc && a <= 0 && b <= 0
			desc = desc && a >= 0 && b >= 0
		}
		last = i
	}
	switch {
	case asc && !desc:
		return format.Ascending
	case desc && !asc:
		return format.Descending
	}
	return format.Unordered
}

// finish appends the page index and the footer of a file of one row group
// of rows rows, the chunks written, and returns the file.
func (g *groupEncoder) finish(rows int) ([]byte, error) {
	var err error
	for i := range g.chunks {
		at := len(g.out)
		if g.out, err = g.marshal(g.out, &g.cidx[i]); err != nil {
			return nil, err
		}
		g.chunks[i].ColumnIndexOffset, g.chunks[i].ColumnIndexLength = int64(at), int32(len(g.out)-at)
	}
	for i := range g.chunks {
		at := len(g.out)
		if g.out, err = g.marshal(g.out, &g.oidx[i]); err != nil {
			return nil, err
		}
		g.chunks[i].OffsetIndexOffset, g.chunks[i].OffsetIndexLength = int64(at), int32(len(g.out)-at)
	}
	rg := format.RowGroup{Columns: g.chunks, NumRows: int64(rows), FileOffset: 4}
	for _, c := range g.chunks {
		rg.TotalByteSize += c.MetaData.TotalUncompressedSize
		rg.TotalCompressedSize += c.MetaData.TotalCompressedSize
	}
	md := format.FileMetaData{
		Version: 2, Schema: g.t.schema, NumRows: int64(rows), RowGroups: []format.RowGroup{rg},
		CreatedBy: "littlewarehouse", ColumnOrders: g.t.orders,
	}
	at := len(g.out)
	if g.out, err = g.marshal(g.out, &md); err != nil {
		return nil, err
	}
	g.out = binary.LittleEndian.AppendUint32(g.out, uint32(len(g.out)-at))
	g.out = append(g.out, "PAR1"...)
	return g.out, nil
}

// marshal appends v, thrift-encoded, to b.
func (g *groupEncoder) marshal(b []byte, v any) ([]byte, error) {
	g.hdr.Reset()
	if err := g.enc.Encode(v); err != nil {
		return b, err
	}
	return append(b, g.hdr.Bytes()...), nil
}
