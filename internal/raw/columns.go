package raw

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/littlewarehouse/warehouse/internal/bufpool"
	"github.com/littlewarehouse/warehouse/internal/frame"
)

// NumStrings is the number of string columns of Columns: those of
// frame.Events from frame.EventName to frame.Country, in that order.
const NumStrings = int(frame.UserKey)

// Columns are one raw object's rows as columns, the way the job reads an
// object: no struct, string header or map per row. They hold exactly what
// the object's []Row would (Rows converts), under the same rules:
//
//   - Every string is an id into Dict, valid UTF-8 (each run of invalid
//     bytes replaced by U+FFFD); id 0 is a null or empty string.
//   - Row i's event_id is IDBytes[IDOff[i]:IDOff[i+1]] (empty if null).
//   - EventTime[i] and ReceivedAt[i] are Unix milliseconds, valid only if
//     HasEventTime[i] / HasReceivedAt[i].
//   - Row i's properties are (PropKey[j], PropVal[j]) for j in
//     [PropOff[i], PropOff[i+1]): keys in byte order, each key once (of
//     keys repeated in a row's map, or equal once repaired, the last
//     value wins, as a Go map assignment would keep).
//   - Repaired[i] is Row.InvalidUTF8.
//   - TooLarge[i] is Row.TooLarge: the row's values over MaxValueBytes,
//     each held cut (see TooLargeKeptBytes). TooLarge is nil if no row
//     has one.
type Columns struct {
	Source                      string   // the object's key
	Sources                     []string // each row's source, if not all Source (see ColumnsOf)
	Dict                        *frame.Dict
	IDBytes                     []byte
	IDOff                       []uint32
	EventTime, ReceivedAt       []int64
	HasEventTime, HasReceivedAt []bool
	Str                         [NumStrings][]uint32
	PropOff                     []uint32
	PropKey, PropVal            []uint32
	Repaired                    []bool
	TooLarge                    map[int]string

	dec colDecoder // ReadColumnsFrom's decoder, kept with the memory it grew
}

// Len is the number of rows.
func (c *Columns) Len() int { return len(c.IDOff) - 1 }

// ID returns row i's event_id bytes (not to be modified).
func (c *Columns) ID(i int) []byte { return c.IDBytes[c.IDOff[i]:c.IDOff[i+1]] }

// Row returns row i as a Row. Its strings are the dictionary's.
func (c *Columns) Row(i int) Row {
	d := c.Dict
	r := Row{
		EventID: string(c.ID(i)), EventTime: c.EventTime[i], ReceivedAt: c.ReceivedAt[i],
		HasEventTime: c.HasEventTime[i], HasReceivedAt: c.HasReceivedAt[i],
		EventName: d.Str(c.Str[frame.EventName][i]), UserID: d.Str(c.Str[frame.UserID][i]),
		DeviceID: d.Str(c.Str[frame.DeviceID][i]), SessionID: d.Str(c.Str[frame.SessionID][i]),
		Product: d.Str(c.Str[frame.Product][i]), Platform: d.Str(c.Str[frame.Platform][i]),
		AppVersion: d.Str(c.Str[frame.AppVersion][i]), Country: d.Str(c.Str[frame.Country][i]),
		Source: c.Source, InvalidUTF8: c.Repaired[i], TooLarge: c.TooLarge[i],
	}
	if c.Sources != nil {
		r.Source = c.Sources[i]
	}
	if lo, hi := c.PropOff[i], c.PropOff[i+1]; hi > lo {
		r.Properties = make(map[string]string, hi-lo)
		for j := lo; j < hi; j++ {
			r.Properties[d.Str(c.PropKey[j])] = d.Str(c.PropVal[j])
		}
	}
	return r
}

// Rows returns every row as a Row.
func (c *Columns) Rows() []Row {
	rows := make([]Row, c.Len())
	for i := range rows {
		rows[i] = c.Row(i)
	}
	return rows
}

// ColumnsOf returns rows as Columns (for tests, and callers holding rows).
// Each row's strings are interned as they are: they are not checked for
// valid UTF-8 or MaxValueBytes, and InvalidUTF8 and TooLarge are copied.
// Each row keeps its Source (Sources).
func ColumnsOf(rows []Row) *Columns {
	c := newColumns("", len(rows))
	c.Sources = make([]string, len(rows))
	c.Dict = frame.NewDict(len(rows))
	var kvs []propKV
	for i := range rows {
		r := &rows[i]
		c.IDBytes = append(c.IDBytes, r.EventID...)
		c.IDOff = append(c.IDOff, uint32(len(c.IDBytes)))
		c.EventTime = append(c.EventTime, r.EventTime)
		c.ReceivedAt = append(c.ReceivedAt, r.ReceivedAt)
		c.HasEventTime = append(c.HasEventTime, r.HasEventTime)
		c.HasReceivedAt = append(c.HasReceivedAt, r.HasReceivedAt)
		for col, s := range [NumStrings]string{r.EventName, r.UserID, r.DeviceID, r.SessionID, r.Product, r.Platform, r.AppVersion, r.Country} {
			c.Str[col] = append(c.Str[col], c.Dict.ID(s))
		}
		c.Repaired = append(c.Repaired, r.InvalidUTF8)
		if r.TooLarge != "" {
			if c.TooLarge == nil {
				c.TooLarge = map[int]string{}
			}
			c.TooLarge[i] = r.TooLarge
		}
		c.Sources[i] = r.Source
		kvs = kvs[:0]
		for k, v := range r.Properties {
			kvs = append(kvs, propKV{c.Dict.ID(k), c.Dict.ID(v)})
		}
		c.appendProps(kvs)
	}
	return c
}

func newColumns(source string, n int) *Columns {
	c := &Columns{Source: source, IDOff: make([]uint32, 1, n+1), PropOff: make([]uint32, 1, n+1)}
	return c
}

// freeColumns are Columns released for reuse: routing reads one object
// after another, and reusing their grown columns saves allocating and
// clearing most of their memory each time.
var freeColumns = bufpool.New[*Columns](8)

// reusedColumns returns empty Columns for an object, reusing released
// memory if there is some.
func reusedColumns(source string) *Columns {
	c, ok := freeColumns.Get()
	if !ok {
		return newColumns(source, 0)
	}
	*c = Columns{
		Source: source, IDBytes: c.IDBytes[:0], IDOff: c.IDOff[:1], EventTime: c.EventTime[:0], ReceivedAt: c.ReceivedAt[:0],
		HasEventTime: c.HasEventTime[:0], HasReceivedAt: c.HasReceivedAt[:0], PropOff: c.PropOff[:1],
		PropKey: c.PropKey[:0], PropVal: c.PropVal[:0], Repaired: c.Repaired[:0], Str: c.Str, dec: c.dec,
	}
	for i := range c.Str {
		c.Str[i] = c.Str[i][:0]
	}
	return c
}

// Release gives c's memory to the next object read (ReadColumnsFrom): c
// must not be used afterwards, nor any of its slices; its Dict may.
func (c *Columns) Release() {
	c.Dict, c.Sources = nil, nil
	c.dec.c, c.dec.dict = nil, nil
	freeColumns.Put(c)
}

// DropReleased forgets the released Columns (see Release) and the
// buffers kept for reading column chunks, so that their memory can be
// collected: for a caller done reading objects for a while (a day about
// to be built), which would otherwise keep them live.
func DropReleased() {
	freeColumns.Drop()
	for _, p := range chunkBufs {
		p.Drop()
	}
}

// propKV is one property of a row, as ids.
type propKV struct{ k, v uint32 }

// appendProps appends one row's properties, in the order read: sorted by
// key (stably: the insertion sort of a handful), then of equal keys only
// the last kept.
func (c *Columns) appendProps(kvs []propKV) {
	strs := c.Dict.Strings()
	for i := 1; i < len(kvs); i++ {
		for j := i; j > 0 && strs.At(kvs[j].k) < strs.At(kvs[j-1].k); j-- {
			kvs[j], kvs[j-1] = kvs[j-1], kvs[j]
		}
	}
	for i, kv := range kvs {
		if i+1 < len(kvs) && kvs[i+1].k == kv.k {
			continue // a later value of the same key wins
		}
		c.PropKey = append(c.PropKey, kv.k)
		c.PropVal = append(c.PropVal, kv.v)
	}
	c.PropOff = append(c.PropOff, uint32(len(c.PropKey)))
}

// ReadColumnsFrom reads one raw object from r (see ReadFrom) into Columns.
// Pages are decoded whole: dictionary-encoded strings are interned once per
// dictionary entry, not per row.
func ReadColumnsFrom(r io.ReaderAt, size int64, key string) (c *Columns, err error) {
	bad := func(reason string, err error) error {
		return &BadObjectError{Key: key, Reason: reason, Err: err}
	}
	defer func() {
		if p := recover(); p != nil {
			c, err = nil, Panicked(key, p)
		}
	}()
	f, err := OpenFile(r, size, key)
	if err != nil {
		return nil, err
	}
	lay, _ := layoutOf(f.Schema()) // checked by OpenFile
	c = reusedColumns(key)
	claimed := f.NumRows()
	// Sized for a distinct string per two rows the footer claims (an
	// object's strings are mostly its devices, sessions and users), up to
	// 64k: an index grown as strings come is rebuilt each time.
	c.Dict = frame.NewDict(int(min(max(claimed/2, 1024), 1<<16)))
	d := &c.dec
	d.c = c
	for _, rg := range f.RowGroups() {
		nr := int(rg.NumRows())
		chunks := rg.ColumnChunks()
		base := c.Len()
		// event_id (required to exist, see layoutOf) first: its values
		// decoded say how many rows the row group really has, and only
		// then do the other columns grow, never to the footer's claim.
		if err := d.readIDs(chunks[lay.flat[colEventID]], lay.defs[colEventID], nr, claimed, size); err != nil {
			return nil, bad(ReasonCorrupt, fmt.Errorf("column %s: %w", flatNames[colEventID], err))
		}
		n := c.Len() - base
		c.Repaired = extend(c.Repaired, n, claimed, size)
		copy(c.Repaired[base:], d.idRepaired)
		c.EventTime = extend(c.EventTime, n, claimed, size)
		c.HasEventTime = extend(c.HasEventTime, n, claimed, size)
		c.ReceivedAt = extend(c.ReceivedAt, n, claimed, size)
		c.HasReceivedAt = extend(c.HasReceivedAt, n, claimed, size)
		for s := range c.Str {
			c.Str[s] = extend(c.Str[s], n, claimed, size)
		}
		for col := colEventID + 1; col < numFlat; col++ {
			idx := lay.flat[col]
			if idx < 0 {
				continue
			}
			var err error
			switch col {
			case colEventTime:
				err = d.readTimes(chunks[idx], lay.defs[col], lay.units[col], c.EventTime[base:], c.HasEventTime[base:])
			case colReceivedAt:
				err = d.readTimes(chunks[idx], lay.defs[col], lay.units[col], c.ReceivedAt[base:], c.HasReceivedAt[base:])
			default:
				err = d.readStrings(chunks[idx], lay.defs[col], flatNames[col], base, c.Str[col-colEventName][base:], c.Repaired[base:])
			}
			if err != nil {
				return nil, bad(ReasonCorrupt, fmt.Errorf("column %s: %w", flatNames[col], err))
			}
		}
		if lay.propKey >= 0 {
			if err := d.readProps(chunks[lay.propKey], chunks[lay.propVal], lay, base); err != nil {
				return nil, bad(ReasonCorrupt, fmt.Errorf("column properties: %w", err))
			}
		} else {
			for range n {
				c.PropOff = append(c.PropOff, uint32(len(c.PropKey)))
			}
		}
		if len(c.IDBytes) > math.MaxUint32 || len(c.PropKey) > math.MaxUint32 {
			return nil, bad(ReasonCorrupt, errors.New("more than 4 GiB of event ids or properties in one object"))
		}
	}
	return c, nil
}

// extend returns s grown by n zero values (see grow for how a footer's
// claim is trusted).
func extend[T any](s []T, n int, claimed, size int64) []T {
	s = grow(s, n, claimed, size)
	s = s[:len(s)+n]
	clear(s[len(s)-n:])
	return s
}

// colDecoder decodes the column chunks of one object into its Columns.
type colDecoder struct {
	c          *Columns
	idRepaired []bool // of the row group's event_ids
	// The mapping of the current chunk's dictionary (reset per chunk:
	// parquet-go may reuse a dictionary's memory for the next chunk).
	dict    parquet.Dictionary
	dictIDs []internedID
	// A repeated leaf's levels and values, for readProps.
	keys, vals leafColumn
	kvs        []propKV
	strs       []internedID // a page's strings
	ms         []int64      // a page's times
}

// internedID is a string's id in the Columns' Dict, whether its bytes
// had to be repaired, and, if it was over MaxValueBytes (and the id is
// that of its cut form, see cutValue), its size.
type internedID struct {
	id       uint32
	tooLarge uint32
	repaired bool
}

// intern returns b's id in the dictionary: b as is if valid UTF-8, else
// repaired (and says so); cut if over MaxValueBytes (and says so).
func (d *colDecoder) intern(b []byte) internedID {
	if len(b) == 0 {
		return internedID{}
	}
	if len(b) > MaxValueBytes {
		return internedID{id: d.c.Dict.ID(cutValue(b)), tooLarge: uint32(len(b)), repaired: !utf8.Valid(b)}
	}
	// The dictionary holds valid strings only: b is checked if new.
	if id, ok := d.c.Dict.IDIf(b, utf8.Valid); ok {
		return internedID{id: id}
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	if len(s) > MaxValueBytes {
		return internedID{id: d.c.Dict.ID(cutValue([]byte(s))), tooLarge: uint32(len(s)), repaired: true}
	}
	return internedID{id: d.c.Dict.ID(s), repaired: true}
}

// cutValue is what is kept of a value over MaxValueBytes: its first
// TooLargeKeptBytes at most, cut at a character boundary, then "…".
func cutValue(b []byte) string {
	n := min(TooLargeKeptBytes, len(b))
	for n > 0 && n < len(b) && !utf8.RuneStart(b[n]) {
		n--
	}
	return strings.ToValidUTF8(string(b[:n]), "\uFFFD") + "…"
}

// tooLarge notes that row holds a value over MaxValueBytes, of size bytes,
// in what (a column, a property).
func (d *colDecoder) tooLarge(row int, what string, size uint32) {
	c := d.c
	if c.TooLarge == nil {
		c.TooLarge = map[int]string{}
	}
	note := fmt.Sprintf("%s: %d bytes", what, size)
	if prev := c.TooLarge[row]; prev != "" {
		note = prev + "; " + note
	}
	c.TooLarge[row] = note
}

// flatPages is eachFlatPage, the chunk's dictionary mapping reset first.
func (d *colDecoder) flatPages(cc parquet.ColumnChunk, nrows int, fn func(p parquet.Page, first int) error) error {
	d.dict, d.dictIDs = nil, d.dictIDs[:0]
	return eachFlatPage(cc, nrows, fn)
}

// present calls fn(j, k) for each non-null value of a page of n values
// (definition levels defs, nil if the column is required; maxDef the
// column's), j its position in the page and k its index among the page's
// values, of which there must be exactly count.
func present(defs []byte, maxDef, n, count int, fn func(j, k int)) error {
	if defs == nil {
		if count != n {
			return fmt.Errorf("a page of %d values holds %d", n, count)
		}
		for j := range n {
			fn(j, j)
		}
		return nil
	}
	if len(defs) != n {
		return fmt.Errorf("a page of %d values has %d definition levels", n, len(defs))
	}
	k := 0
	for j, l := range defs {
		if int(l) == maxDef {
			if k >= count {
				return fmt.Errorf("a page of %d non-null values holds %d", k+1, count)
			}
			fn(j, k)
			k++
		}
	}
	if k != count {
		return fmt.Errorf("a page of %d non-null values holds %d", k, count)
	}
	return nil
}

// byteArrays returns the values of a BYTE_ARRAY page's data (or of its
// dictionary): value k is data[off[k]:off[k+1]].
func byteArrays(v encoding.Values) (data []byte, off []uint32, n int, err error) {
	if v.Kind() != encoding.ByteArray {
		return nil, nil, 0, fmt.Errorf("values of kind %v, want BYTE_ARRAY", v.Kind())
	}
	data, off = v.ByteArray()
	if len(off) == 0 {
		return data, off, 0, nil
	}
	n = len(off) - 1
	for k := range n {
		if off[k] > off[k+1] || int(off[k+1]) > len(data) {
			return nil, nil, 0, errors.New("byte array offsets out of range")
		}
	}
	return data, off, n, nil
}

// strIDs returns the ids of a BYTE_ARRAY page's values, mapping
// dictionary-encoded pages through their dictionary's ids, interned once
// per chunk.
func (d *colDecoder) strIDs(p parquet.Page, fn func(k int, s internedID)) (int, error) {
	if dict := p.Dictionary(); dict != nil {
		if dict != d.dict {
			data, off, n, err := byteArrays(dict.Page().Data())
			if err != nil {
				return 0, fmt.Errorf("dictionary: %w", err)
			}
			d.dict, d.dictIDs = dict, d.dictIDs[:0]
			for k := range n {
				d.dictIDs = append(d.dictIDs, d.intern(data[off[k]:off[k+1]]))
			}
		}
		v := p.Data()
		if v.Kind() != encoding.Int32 {
			return 0, fmt.Errorf("dictionary indexes of kind %v", v.Kind())
		}
		idx := v.Int32()
		for k, x := range idx {
			if uint32(x) >= uint32(len(d.dictIDs)) {
				return 0, fmt.Errorf("dictionary index %d out of %d", x, len(d.dictIDs))
			}
			fn(k, d.dictIDs[x])
		}
		return len(idx), nil
	}
	data, off, n, err := byteArrays(p.Data())
	if err != nil {
		return 0, err
	}
	for k := range n {
		fn(k, d.intern(data[off[k]:off[k+1]]))
	}
	return n, nil
}

// readStrings decodes a flat string chunk of column name into dst (one id
// per row, 0 if null), setting repaired for rows whose value was repaired;
// dst[0] is row base of the Columns, whose rows with a value over
// MaxValueBytes it notes (tooLarge).
func (d *colDecoder) readStrings(cc parquet.ColumnChunk, maxDef int, name string, base int, dst []uint32, repaired []bool) error {
	return d.flatPages(cc, len(dst), func(p parquet.Page, first int) error {
		d.strs = d.strs[:0]
		if _, err := d.strIDs(p, func(_ int, s internedID) { d.strs = append(d.strs, s) }); err != nil {
			return err
		}
		vals := d.strs
		return present(p.DefinitionLevels(), maxDef, int(p.NumValues()), len(vals), func(j, k int) {
			dst[first+j] = vals[k].id
			if vals[k].repaired {
				repaired[first+j] = true
			}
			if vals[k].tooLarge > 0 {
				d.tooLarge(base+first+j, name, vals[k].tooLarge)
			}
		})
	})
}

// readIDs decodes a row group's event_id chunk of nrows rows, appending to
// IDBytes and IDOff; d.idRepaired says which were repaired.
func (d *colDecoder) readIDs(cc parquet.ColumnChunk, maxDef, nrows int, claimed, size int64) error {
	c := d.c
	d.idRepaired = d.idRepaired[:0]
	return d.flatPages(cc, nrows, func(p parquet.Page, first int) error {
		if p.Dictionary() != nil {
			// Unusual for unique values, but allowed.
			var ids []internedID
			if _, err := d.strIDs(p, func(_ int, s internedID) { ids = append(ids, s) }); err != nil {
				return err
			}
			return d.appendIDs(p, maxDef, len(ids), claimed, size, func(k int) ([]byte, bool, uint32) {
				return []byte(c.Dict.Str(ids[k].id)), ids[k].repaired, ids[k].tooLarge
			})
		}
		data, off, n, err := byteArrays(p.Data())
		if err != nil {
			return err
		}
		c.IDBytes = slices.Grow(c.IDBytes, len(data)) // decoded bytes: no claim to trust
		return d.appendIDs(p, maxDef, n, claimed, size, func(k int) ([]byte, bool, uint32) {
			b := data[off[k]:off[k+1]]
			if len(b) > MaxValueBytes {
				return []byte(cutValue(b)), !utf8.Valid(b), uint32(len(b))
			}
			if utf8.Valid(b) {
				return b, false, 0
			}
			s := strings.ToValidUTF8(string(b), "\uFFFD")
			if len(s) > MaxValueBytes {
				return []byte(cutValue([]byte(s))), true, uint32(len(s))
			}
			return []byte(s), true, 0
		})
	})
}

// appendIDs appends the event ids of one page of count values, value k
// being val(k) (its bytes, whether repaired, its size if over
// MaxValueBytes and cut), nulls as empty ids.
func (d *colDecoder) appendIDs(p parquet.Page, maxDef, count int, claimed, size int64, val func(k int) ([]byte, bool, uint32)) error {
	c := d.c
	n := int(p.NumValues())
	c.IDOff = grow(c.IDOff, n, claimed+1, size)
	d.idRepaired = grow(d.idRepaired, n, claimed, size)
	next := 0 // the page's next row to append
	err := present(p.DefinitionLevels(), maxDef, n, count, func(j, k int) {
		for ; next < j; next++ { // nulls before j
			c.IDOff = append(c.IDOff, uint32(len(c.IDBytes)))
			d.idRepaired = append(d.idRepaired, false)
		}
		b, rep, big := val(k)
		if big > 0 {
			d.tooLarge(len(c.IDOff)-1, flatNames[colEventID], big)
		}
		c.IDBytes = append(c.IDBytes, b...)
		c.IDOff = append(c.IDOff, uint32(len(c.IDBytes)))
		d.idRepaired = append(d.idRepaired, rep)
		next++
	})
	if err != nil {
		return err
	}
	for ; next < n; next++ {
		c.IDOff = append(c.IDOff, uint32(len(c.IDBytes)))
		d.idRepaired = append(d.idRepaired, false)
	}
	return nil
}

// readTimes decodes a flat timestamp chunk of unit u into dst and has.
func (d *colDecoder) readTimes(cc parquet.ColumnChunk, maxDef int, u TimeUnit, dst []int64, has []bool) error {
	return d.flatPages(cc, len(dst), func(p parquet.Page, first int) error {
		ms, err := pageMillis(p, u, d.ms[:0])
		if err != nil {
			return err
		}
		d.ms = ms
		return present(p.DefinitionLevels(), maxDef, int(p.NumValues()), len(ms), func(j, k int) {
			dst[first+j], has[first+j] = ms[k], true
		})
	})
}

// pageMillis appends the values of a timestamp page of unit u, as Unix
// milliseconds, to ms.
func pageMillis(p parquet.Page, u TimeUnit, ms []int64) ([]int64, error) {
	conv := func(v encoding.Values, ms []int64) ([]int64, error) {
		switch {
		case u == UnitInt96 && v.Kind() == encoding.Int96:
			for _, x := range v.Int96() {
				ms = append(ms, Int96Millis(x))
			}
		case u != UnitInt96 && v.Kind() == encoding.Int64:
			for _, x := range v.Int64() {
				ms = append(ms, int64Millis(u, x))
			}
		default:
			return nil, fmt.Errorf("timestamp values of kind %v", v.Kind())
		}
		return ms, nil
	}
	dict := p.Dictionary()
	if dict == nil {
		return conv(p.Data(), ms)
	}
	dv, err := conv(dict.Page().Data(), nil)
	if err != nil {
		return nil, fmt.Errorf("dictionary: %w", err)
	}
	v := p.Data()
	if v.Kind() != encoding.Int32 {
		return nil, fmt.Errorf("dictionary indexes of kind %v", v.Kind())
	}
	for _, x := range v.Int32() {
		if uint32(x) >= uint32(len(dv)) {
			return nil, fmt.Errorf("dictionary index %d out of %d", x, len(dv))
		}
		ms = append(ms, dv[x])
	}
	return ms, nil
}

// int64Millis converts an INT64 timestamp of unit u to Unix milliseconds,
// rounding toward the past.
func int64Millis(u TimeUnit, v int64) int64 {
	switch u {
	case UnitMicros:
		return floorDiv(v, 1_000)
	case UnitNanos:
		return floorDiv(v, 1_000_000)
	}
	return v
}

// leafColumn is a repeated leaf chunk decoded whole: per level entry, its
// repetition and definition levels and its string (0 if null).
type leafColumn struct {
	rep, def []byte
	ids      []internedID
}

// readLeaf decodes every entry of a chunk of a repeated string column
// whose max definition level is maxDef (at most MaxRepeatedValues, see
// checkedPages).
func (d *colDecoder) readLeaf(cc parquet.ColumnChunk, maxDef int, out *leafColumn) error {
	out.rep, out.def, out.ids = out.rep[:0], out.def[:0], out.ids[:0]
	d.dict, d.dictIDs = nil, d.dictIDs[:0]
	pages, err := checkedPages(cc, -1)
	if err != nil {
		return err
	}
	defer pages.Close()
	for {
		p, err := pages.ReadPage()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		n := int(p.NumValues())
		reps, defs := p.RepetitionLevels(), p.DefinitionLevels()
		d.strs = d.strs[:0]
		_, err = d.strIDs(p, func(_ int, s internedID) { d.strs = append(d.strs, s) })
		vals := d.strs
		if err == nil && (len(reps) != n || len(defs) != n) {
			err = fmt.Errorf("a page of %d values has %d repetition and %d definition levels", n, len(reps), len(defs))
		}
		if err == nil {
			base := len(out.ids)
			out.rep, out.def = append(out.rep, reps...), append(out.def, defs...)
			out.ids = append(out.ids, make([]internedID, n)...)
			err = present(defs, maxDef, n, len(vals), func(j, k int) { out.ids[base+j] = vals[k] })
		}
		parquet.Release(p)
		if err != nil {
			return err
		}
	}
}

// readProps decodes the properties map of the row group whose first row
// is base, appending PropOff, PropKey and PropVal.
func (d *colDecoder) readProps(kc, vc parquet.ColumnChunk, lay layout, base int) error {
	c := d.c
	if err := d.readLeaf(kc, lay.propMaxD, &d.keys); err != nil {
		return err
	}
	if err := d.readLeaf(vc, lay.propValMaxD, &d.vals); err != nil {
		return err
	}
	keys, vals := &d.keys, &d.vals
	if len(keys.ids) != len(vals.ids) {
		return fmt.Errorf("%d keys but %d values", len(keys.ids), len(vals.ids))
	}
	nrows := c.Len() - base
	i := -1
	for j := range keys.ids {
		if keys.rep[j] == 0 {
			if i >= 0 {
				c.appendProps(d.kvs)
			}
			d.kvs = d.kvs[:0]
			i++
			if i >= nrows {
				return fmt.Errorf("more maps than the row group's %d rows", nrows)
			}
		}
		if i < 0 {
			return errors.New("map entry before any row")
		}
		if int(keys.def[j]) < lay.propMaxD {
			continue // a null or empty map
		}
		k, v := keys.ids[j], vals.ids[j]
		d.kvs = append(d.kvs, propKV{k.id, v.id})
		if k.repaired || v.repaired {
			c.Repaired[base+i] = true
		}
		if k.tooLarge > 0 {
			d.tooLarge(base+i, "a properties key", k.tooLarge)
		}
		if v.tooLarge > 0 {
			d.tooLarge(base+i, fmt.Sprintf("properties[%q]", c.Dict.Str(k.id)), v.tooLarge)
		}
	}
	if i >= 0 {
		c.appendProps(d.kvs)
	}
	if i+1 != nrows {
		return fmt.Errorf("%d maps for %d rows", i+1, nrows)
	}
	return nil
}
