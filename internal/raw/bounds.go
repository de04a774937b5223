package raw

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/littlewarehouse/warehouse/internal/bufpool"
)

// Bounds on what a footer or a page header may claim. parquet-go sizes its
// allocations from these claims before it reads the bytes they describe, so
// a lying object would otherwise take the process down with an out-of-memory
// fatal error that recover cannot catch. Every claim is checked against the
// object's real size, and against these bounds, before parquet-go sees it.
//
// Sizes follow the object: a footer and a page header may be as long as
// the bytes they lie in (a page header holds its page's statistics, the
// smallest and largest value: two copies of a long string), a page's
// compressed bytes as long as what is left of its column chunk. Only a
// page's uncompressed size, which no bytes of the object bound (a codec
// can expand a few bytes into many), has a fixed floor: MaxPageBytes.
const (
	// MinRowBytes is the fewest bytes of the object a row may take: an
	// object of n bytes holds at most n/MinRowBytes rows. A real raw row
	// takes far more (its event_id alone is a unique 36-byte UUID).
	MinRowBytes = 1
	// MaxPageBytes bounds a page's uncompressed size in an object of at
	// most MaxPageBytes; in a larger object a page may claim up to the
	// object's size. Firehose writes 1 MiB pages by default; a page of a
	// value many times MaxValueBytes is still well below it.
	MaxPageBytes = 64 << 20
	// MaxPageValues bounds the values (nulls included) a page may claim.
	MaxPageValues = 1 << 22
	// MaxRepeatedValues bounds the values of one column chunk of a
	// repeated column (a properties map's keys or values).
	MaxRepeatedValues = 1 << 24
	// maxThriftDepth bounds the nesting of a footer or page header.
	maxThriftDepth = 32
)

// footer reads and checks the footer of an object of size bytes that
// starts and ends with PAR1: its length lies inside the object, every list
// it holds is no longer than its bytes allow, and the metadata it decodes
// to is plausible for the object's size (see checkMeta). It returns the
// object's bytes from the footer's offset to its end; errors are the
// reader's or, matching errCorrupt, the object's.
func footer(r io.ReaderAt, size int64) (b []byte, off int64, err error) {
	var tail [8]byte
	if _, err := r.ReadAt(tail[:], size-8); err != nil && err != io.EOF {
		return nil, 0, err
	}
	n := int64(binary.LittleEndian.Uint32(tail[:4]))
	// PAR1, footer, length, PAR1.
	if n == 0 || 4+n+8 > size {
		return nil, 0, corruptf("footer length %d does not fit in %d bytes", n, size)
	}
	off = size - 8 - n
	b = make([]byte, n, n+8)
	if _, err := r.ReadAt(b, off); err != nil && err != io.EOF {
		return nil, 0, err
	}
	if m, err := thriftSize(b); err != nil {
		return nil, 0, corruptf("footer: %w", err)
	} else if m != len(b) {
		return nil, 0, corruptf("footer: %d trailing bytes", len(b)-m)
	}
	var md format.FileMetaData
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), b, &md); err != nil {
		return nil, 0, corruptf("footer: %w", err)
	}
	if err := checkMeta(&md, size, off); err != nil {
		return nil, 0, err
	}
	return append(b, tail[:]...), off, nil
}

// errCorrupt marks errors that say the object is corrupt.
var errCorrupt = errors.New("corrupt")

type corruptError struct{ err error }

func (e corruptError) Error() string         { return e.err.Error() }
func (e corruptError) Unwrap() []error       { return []error{e.err, errCorrupt} }
func corruptf(format string, a ...any) error { return corruptError{fmt.Errorf(format, a...)} }

// checkMeta checks the row counts and column chunk locations of a footer
// that starts at dataEnd in an object of size bytes: no negative count, at
// most size/MinRowBytes rows in all, and every column chunk inside the
// bytes between the leading magic and the footer.
func checkMeta(md *format.FileMetaData, size, dataEnd int64) error {
	maxRows := size / MinRowBytes
	if md.NumRows < 0 || md.NumRows > maxRows {
		return corruptf("implausible row count %d for %d bytes", md.NumRows, size)
	}
	var rows int64
	for i := range md.RowGroups {
		rg := &md.RowGroups[i]
		if rg.NumRows < 0 || rg.NumRows > maxRows-rows {
			return corruptf("row group %d: implausible row count %d for %d bytes", i, rg.NumRows, size)
		}
		rows += rg.NumRows
		for j := range rg.Columns {
			m := &rg.Columns[j].MetaData
			start := m.DataPageOffset
			if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < start {
				start = m.DictionaryPageOffset
			}
			if start < 4 || m.TotalCompressedSize < 0 || m.TotalCompressedSize > dataEnd-start {
				return corruptf("row group %d column %d: chunk at %d+%d is outside the data (4..%d)", i, j, start, m.TotalCompressedSize, dataEnd)
			}
			if m.NumValues < 0 {
				return corruptf("row group %d column %d: %d values", i, j, m.NumValues)
			}
		}
	}
	return nil
}

// tailReader serves reads of the footer from memory, so that parquet-go
// does not fetch it again, and refuses reads outside the object instead of
// passing them on (a store may call a negative offset a failed read, which
// would be retried instead of the object named bad).
type tailReader struct {
	r      io.ReaderAt
	size   int64
	tail   []byte // the object's bytes from tailAt to size
	tailAt int64
}

func (t *tailReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > t.size {
		return 0, fmt.Errorf("offset %d outside %d bytes: %w", off, t.size, io.ErrUnexpectedEOF)
	}
	if off >= t.tailAt && off+int64(len(p)) <= t.tailAt+int64(len(t.tail)) {
		return copy(p, t.tail[off-t.tailAt:]), nil
	}
	if rest := t.size - off; int64(len(p)) > rest {
		n, err := t.r.ReadAt(p[:rest], off)
		if err == nil {
			err = io.EOF
		}
		return n, err
	}
	return t.r.ReadAt(p, off)
}

// chunkMeta finds the footer's description of a column chunk of f.
func chunkMeta(f *parquet.File, cc parquet.ColumnChunk) (*format.ColumnChunk, bool) {
	md := f.Metadata()
	j := cc.Column()
	for i, rg := range f.RowGroups() {
		chunks := rg.ColumnChunks()
		if j >= 0 && j < len(chunks) && chunks[j] == cc && i < len(md.RowGroups) && j < len(md.RowGroups[i].Columns) {
			return &md.RowGroups[i].Columns[j], true
		}
	}
	return nil, false
}

// chunkReader serves a column chunk's bytes, read once, from memory: from a
// buffer of chunkBufs until release.
type chunkReader struct {
	b   []byte
	at  int64
	buf *[]byte // b's buffer, returned to chunkBufs by release
}

// release returns the chunk's buffer to chunkBufs; later reads fail.
func (c *chunkReader) release() {
	if c.buf != nil {
		putChunkBuf(c.buf)
	}
	c.b, c.buf = nil, nil
}

// chunkBufs recycles the buffers loadChunk reads column chunks into, one
// pool per power-of-two capacity from 1 KiB to maxPooledChunk, so that
// reading an object allocates no chunk buffers once the pools are warm.
// A pool keeps at most 8 buffers, and no more than pooledBytes of its
// capacity but at least one.
var chunkBufs = func() (p [maxPooledShift - minPooledShift + 1]*bufpool.Pool[*[]byte]) {
	for i := range p {
		p[i] = bufpool.New[*[]byte](min(8, max(1, pooledBytes>>(minPooledShift+i))))
	}
	return p
}()

const (
	minPooledShift = 10
	maxPooledShift = 26 // 64 MiB
	maxPooledChunk = 1 << maxPooledShift
	pooledBytes    = 16 << 20
)

// getChunkBuf returns a buffer of length n: from chunkBufs (nil *[]byte
// if n is larger than maxPooledChunk, which then is not pooled).
func getChunkBuf(n int64) ([]byte, *[]byte) {
	if n > maxPooledChunk {
		return make([]byte, n), nil
	}
	shift := minPooledShift
	if n > 1<<minPooledShift {
		shift = bits.Len64(uint64(n - 1))
	}
	if p, ok := chunkBufs[shift-minPooledShift].Get(); ok {
		return (*p)[:n], p
	}
	b := make([]byte, 1<<shift)
	return b[:n], &b
}

// putChunkBuf gives p, no longer used, back to chunkBufs (or drops it).
func putChunkBuf(p *[]byte) {
	shift := bits.Len64(uint64(cap(*p) - 1))
	if cap(*p) != 1<<shift || shift < minPooledShift || shift > maxPooledShift {
		return
	}
	chunkBufs[shift-minPooledShift].Put(p)
}

func (c *chunkReader) ReadAt(p []byte, off int64) (int, error) {
	if off < c.at || off > c.at+int64(len(c.b)) {
		return 0, fmt.Errorf("offset %d outside the column chunk: %w", off, io.ErrUnexpectedEOF)
	}
	n := copy(p, c.b[off-c.at:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// loadChunk reads a column chunk of f in one read and checks each page
// header in it before parquet-go trusts it: it must decode within what is
// left of the chunk (a header has no other bound: every length in it is
// checked against the bytes it lies in, see thriftSize), its page must fit
// in what is left of the chunk after it, its uncompressed size must be at
// most MaxPageBytes (for an uncompressed or Snappy page, or the object's
// size, whichever is larger), and its
// values at most MaxPageValues. For a flat column (nrows >= 0) the data
// pages hold at most nrows values; for a repeated one (nrows < 0) at most
// MaxRepeatedValues. A dictionary page holds at most one value per byte of
// its uncompressed size. A Snappy page's block decodes to at most its
// uncompressed size (checkSnappy). It returns a reader to give
// FileColumnChunk.PagesFrom.
func loadChunk(f *parquet.File, cc parquet.ColumnChunk, nrows int) (_ *chunkReader, err error) {
	meta, ok := chunkMeta(f, cc)
	if !ok {
		return nil, errors.New("column chunk not in the footer")
	}
	m := &meta.MetaData
	start := m.DataPageOffset
	if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < start {
		start = m.DictionaryPageOffset
	}
	// OpenFile checked that the chunk lies inside the object.
	b, buf := getChunkBuf(m.TotalCompressedSize)
	cr := &chunkReader{b: b, at: start, buf: buf}
	defer func() {
		if err != nil {
			cr.release()
		}
	}()
	if n, err := f.ReadAt(b, start); n < len(b) {
		return nil, fmt.Errorf("read column chunk: %w", err)
	}
	// A dictionary page may lie before DataPageOffset (start); parquet-go
	// starts at DictionaryPageOffset when it is set, else DataPageOffset.
	limit := int64(nrows)
	if nrows < 0 {
		limit = MaxRepeatedValues
	}
	// A page may be as large as the object where its size is checked
	// against its bytes (uncompressed, or Snappy: checkSnappy); other
	// codecs decode blindly into UncompressedPageSize, so they keep the
	// fixed bound.
	maxPage := int64(MaxPageBytes)
	if m.Codec == format.Snappy || m.Codec == format.Uncompressed {
		maxPage = max(MaxPageBytes, f.Size())
	}
	var values int64
	for pos, k := 0, 0; pos < len(b); k++ {
		hb := b[pos:]
		hn, err := thriftSize(hb)
		if err != nil {
			return nil, corruptf("page %d header: %w", k, err)
		}
		var h format.PageHeader
		if err := thrift.Unmarshal(new(thrift.CompactProtocol), hb[:hn], &h); err != nil {
			return nil, corruptf("page %d header: %w", k, err)
		}
		pos += hn
		if h.CompressedPageSize < 0 || int(h.CompressedPageSize) > len(b)-pos {
			return nil, corruptf("page %d: %d bytes, %d left in the chunk", k, h.CompressedPageSize, len(b)-pos)
		}
		if h.UncompressedPageSize < 0 || int64(h.UncompressedPageSize) > maxPage {
			return nil, corruptf("page %d: implausible size %d (%d compressed)", k, h.UncompressedPageSize, h.CompressedPageSize)
		}
		page := b[pos : pos+int(h.CompressedPageSize)]
		pos += int(h.CompressedPageSize)
		if m.Codec == format.Snappy {
			if err := checkSnappy(&h, page); err != nil {
				return nil, corruptf("page %d: %w", k, err)
			}
		}
		var nv int32
		switch {
		case h.DictionaryPageHeader.Valid:
			if d := h.DictionaryPageHeader.V.NumValues; d < 0 || d > MaxPageValues || d > h.UncompressedPageSize {
				return nil, corruptf("page %d: dictionary of %d values in %d bytes", k, d, h.UncompressedPageSize)
			}
			continue
		case h.DataPageHeader.Valid:
			nv = h.DataPageHeader.V.NumValues
		case h.DataPageHeaderV2.Valid:
			v2 := &h.DataPageHeaderV2.V
			nv = v2.NumValues
			if v2.NumNulls < 0 || v2.NumNulls > nv || v2.NumRows < 0 || v2.NumRows > nv ||
				v2.DefinitionLevelsByteLength < 0 || v2.RepetitionLevelsByteLength < 0 ||
				int64(v2.DefinitionLevelsByteLength)+int64(v2.RepetitionLevelsByteLength) > int64(h.CompressedPageSize) {
				return nil, corruptf("page %d: implausible v2 header %+v", k, *v2)
			}
		default:
			continue // an index page or one parquet-go refuses
		}
		if nv < 0 || nv > MaxPageValues || int64(nv) > limit-values {
			return nil, corruptf("page %d: %d values, at most %d left", k, nv, limit-values)
		}
		values += int64(nv)
	}
	return cr, nil
}

// checkSnappy checks that the Snappy block of a page whose header is h and
// bytes page claims to decode to at most the page's uncompressed size:
// the decoder allocates what the block claims (up to 4 GiB) before it
// finds the block short.
func checkSnappy(h *format.PageHeader, page []byte) error {
	at := 0
	switch {
	case h.DictionaryPageHeader.Valid, h.DataPageHeader.Valid:
	case h.DataPageHeaderV2.Valid:
		v2 := &h.DataPageHeaderV2.V
		if v2.IsCompressed.Valid && !v2.IsCompressed.V {
			return nil
		}
		if v2.DefinitionLevelsByteLength < 0 || v2.RepetitionLevelsByteLength < 0 {
			return nil // refused by loadChunk
		}
		at = int(int64(v2.DefinitionLevelsByteLength) + int64(v2.RepetitionLevelsByteLength))
	default:
		return nil
	}
	if at >= len(page) {
		return nil // no block (or levels past the page, refused by loadChunk)
	}
	n, k := binary.Uvarint(page[at:])
	if k <= 0 || n > uint64(h.UncompressedPageSize) {
		return fmt.Errorf("a Snappy block claiming %d bytes in a page of %d", n, h.UncompressedPageSize)
	}
	return nil
}

// thriftSize returns the length of the Thrift compact-protocol struct at
// the start of b, checking that no list, set, map or binary claims more
// elements or bytes than b has left (each element takes at least a byte),
// so that decoding it cannot allocate more than a few times len(b).
func thriftSize(b []byte) (int, error) {
	w := thriftWalker{b: b}
	if err := w.structure(0); err != nil {
		return 0, err
	}
	return w.pos, nil
}

type thriftWalker struct {
	b   []byte
	pos int
}

var errThriftShort = errors.New("thrift: truncated or implausible")

func (w *thriftWalker) byte() (byte, error) {
	if w.pos >= len(w.b) {
		return 0, errThriftShort
	}
	c := w.b[w.pos]
	w.pos++
	return c, nil
}

func (w *thriftWalker) uvarint() (uint64, error) {
	v, n := binary.Uvarint(w.b[w.pos:])
	if n <= 0 {
		return 0, errThriftShort
	}
	w.pos += n
	return v, nil
}

// count reads a length and checks that n elements of at least min bytes
// each fit in what is left.
func (w *thriftWalker) count(n uint64, min int) (int, error) {
	if n > uint64(len(w.b)-w.pos)/uint64(min) {
		return 0, fmt.Errorf("thrift: %d elements claimed, %d bytes left", n, len(w.b)-w.pos)
	}
	return int(n), nil
}

func (w *thriftWalker) structure(depth int) error {
	if depth > maxThriftDepth {
		return errors.New("thrift: nested too deep")
	}
	for {
		h, err := w.byte()
		if err != nil {
			return err
		}
		typ := h & 0x0f
		if typ == 0 { // stop
			return nil
		}
		if h>>4 == 0 { // long form: the field id follows
			if _, err := w.uvarint(); err != nil {
				return err
			}
		}
		if typ == 1 || typ == 2 { // a bool field holds its value in its type
			continue
		}
		if err := w.value(typ, depth); err != nil {
			return err
		}
	}
}

func (w *thriftWalker) value(typ byte, depth int) error {
	switch typ {
	case 1, 2, 3: // bool (in a list), byte
		_, err := w.byte()
		return err
	case 4, 5, 6: // i16, i32, i64
		_, err := w.uvarint()
		return err
	case 7: // double
		if len(w.b)-w.pos < 8 {
			return errThriftShort
		}
		w.pos += 8
		return nil
	case 8: // binary
		n, err := w.uvarint()
		if err != nil {
			return err
		}
		k, err := w.count(n, 1)
		if err != nil {
			return err
		}
		w.pos += k
		return nil
	case 9, 10: // list, set
		h, err := w.byte()
		if err != nil {
			return err
		}
		n := uint64(h >> 4)
		if n == 15 {
			if n, err = w.uvarint(); err != nil {
				return err
			}
		}
		k, err := w.count(n, 1)
		if err != nil {
			return err
		}
		for range k {
			if err := w.value(h&0x0f, depth+1); err != nil {
				return err
			}
		}
		return nil
	case 11: // map
		n, err := w.uvarint()
		if err != nil || n == 0 {
			return err
		}
		kv, err := w.byte()
		if err != nil {
			return err
		}
		k, err := w.count(n, 2)
		if err != nil {
			return err
		}
		for range k {
			if err := w.value(kv>>4, depth+1); err != nil {
				return err
			}
			if err := w.value(kv&0x0f, depth+1); err != nil {
				return err
			}
		}
		return nil
	case 12: // struct
		return w.structure(depth + 1)
	}
	return fmt.Errorf("thrift: unknown type %d", typ)
}
