// Package raw reads the Parquet objects Firehose lands under raw/ into
// normalized rows, tolerating everything Firehose and Hive-style writers
// produce (DESIGN §2) and classifying everything else as a bad object.
package raw

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"

	"github.com/littlewarehouse/warehouse/internal/store"
)

// Row is one raw event, normalized: timestamps are Unix milliseconds (UTC),
// nulls and empty strings are both "", and every string (property keys and
// values included) is valid UTF-8: each run of invalid bytes is replaced
// by U+FFFD, as strings.ToValidUTF8 does, and InvalidUTF8 says so. Source is
// the key of the object the row was read from.
type Row struct {
	EventID       string
	EventTime     int64 // valid only if HasEventTime
	ReceivedAt    int64 // valid only if HasReceivedAt
	HasEventTime  bool
	HasReceivedAt bool
	EventName     string
	UserID        string
	DeviceID      string
	SessionID     string
	Product       string
	Platform      string
	AppVersion    string
	Country       string
	Properties    map[string]string
	Source        string
	// InvalidUTF8 is set if any string of the row was repaired. Two
	// property keys that differ only in invalid bytes become one key.
	InvalidUTF8 bool
}

// BadObjectError says why an object could not be read as raw events. None
// of a bad object's rows are used: an object is read whole or not at all.
type BadObjectError struct {
	Key    string
	Reason string // short code: not_parquet, schema_mismatch, corrupt, empty
	Err    error
}

func (e *BadObjectError) Error() string {
	return fmt.Sprintf("bad object %s: %s: %v", e.Key, e.Reason, e.Err)
}

func (e *BadObjectError) Unwrap() error { return e.Err }

// Bad reasons.
const (
	ReasonEmpty          = "empty"
	ReasonNotParquet     = "not_parquet"
	ReasonSchemaMismatch = "schema_mismatch"
	ReasonCorrupt        = "corrupt"
)

// column ids of the columns we read.
const (
	colEventID = iota
	colEventTime
	colReceivedAt
	colEventName
	colUserID
	colDeviceID
	colSessionID
	colProduct
	colPlatform
	colAppVersion
	colCountry
	numFlat
)

var flatNames = [numFlat]string{
	"event_id", "event_time", "received_at", "event_name", "user_id", "device_id",
	"session_id", "product", "platform", "app_version", "country",
}

// TimeUnit says how to turn a timestamp column's values into milliseconds.
type TimeUnit int

// Time units of timestamp columns.
const (
	UnitNone   TimeUnit = iota // not a timestamp column
	UnitMillis                 // INT64 milliseconds (or unannotated INT64)
	UnitMicros                 // INT64 microseconds
	UnitNanos                  // INT64 nanoseconds
	UnitInt96                  // INT96: Julian day and nanoseconds of the day
)

// layout is how one file's schema maps onto Row.
type layout struct {
	flat     [numFlat]int // leaf column index, or -1 if absent
	units    [numFlat]TimeUnit
	propKey  int // leaf index of properties' key, or -1
	propVal  int
	propMaxD int // max definition level of the key column
}

// Read reads the object at key whole. A bad object gives a *BadObjectError;
// any other error (the store failed) is returned as is and may be retried.
// Read never panics on bad input: parquet-go panics are turned into
// BadObjectErrors.
func Read(ctx context.Context, st store.Store, key string) (rows []Row, err error) {
	r, err := st.Open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	defer r.Close()
	cr := &checkedReader{r: r}
	rows, err = ReadFrom(cr, r.Size(), key)
	var bad *BadObjectError
	if errors.As(err, &bad) {
		// A read that failed (network, throttling, a changed object, a
		// canceled context) says nothing about the object: report the
		// failure, so it is retried, instead of calling the object bad.
		if cr.err != nil {
			return nil, fmt.Errorf("read %s: %w", key, cr.err)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("read %s: %w", key, ctx.Err())
		}
	}
	return rows, err
}

// checkedReader remembers the first error of the underlying ReadAt other
// than io.EOF.
type checkedReader struct {
	r   io.ReaderAt
	mu  sync.Mutex
	err error
}

func (c *checkedReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	if err != nil && err != io.EOF {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.mu.Unlock()
	}
	return n, err
}

// ReadFrom reads one raw object from r; key is recorded in each row's Source
// and in errors.
func ReadFrom(r io.ReaderAt, size int64, key string) (rows []Row, err error) {
	bad := func(reason string, err error) error {
		return &BadObjectError{Key: key, Reason: reason, Err: err}
	}
	defer func() {
		if p := recover(); p != nil {
			rows, err = nil, Panicked(key, p)
		}
	}()
	f, err := OpenFile(r, size, key)
	if err != nil {
		return nil, err
	}
	lay, _ := layoutOf(f.Schema()) // checked by OpenFile
	rows = []Row{}
	d := decoder{strs: make(map[string]interned), buf: make([]parquet.Value, 1024)}
	if p, ok := idBufs.Get().(*[]eventID); ok {
		d.ids = *p
	}
	defer func() {
		clear(d.ids[:cap(d.ids)]) // drop the strings, for the collector
		ids := d.ids[:0]
		idBufs.Put(&ids)
	}()
	for _, rg := range f.RowGroups() {
		base := len(rows)
		nr := int(rg.NumRows())
		chunks := rg.ColumnChunks()
		// A row group's event_ids (event_id is required, see layoutOf) are
		// decoded first, into d.ids, so that rows grow once per row group
		// to the rows actually decoded, not to the footer's claim.
		d.ids = d.ids[:0]
		err := ReadFlatColumn(chunks[lay.flat[colEventID]], d.buf, nr, func(vals []parquet.Value, _ int) {
			for _, v := range vals {
				var id eventID
				if !v.IsNull() {
					// unique: interning would only cost
					id.s, id.repaired = validString(v.ByteArray())
				}
				d.ids = append(d.ids, id)
			}
		})
		if err != nil {
			return nil, bad(ReasonCorrupt, fmt.Errorf("column %s: %w", flatNames[colEventID], err))
		}
		rows = growRows(rows, len(d.ids), f.NumRows(), size)
		for _, id := range d.ids {
			rows = append(rows, Row{EventID: id.s, Source: key, InvalidUTF8: id.repaired})
		}
		group := rows[base:]
		for c := colEventID + 1; c < numFlat; c++ {
			idx := lay.flat[c]
			if idx < 0 {
				continue
			}
			if err := d.readFlat(chunks[idx], c, lay.units[c], group); err != nil {
				return nil, bad(ReasonCorrupt, fmt.Errorf("column %s: %w", flatNames[c], err))
			}
		}
		if lay.propKey >= 0 {
			if err := d.readProps(chunks[lay.propKey], chunks[lay.propVal], lay.propMaxD, group); err != nil {
				return nil, bad(ReasonCorrupt, fmt.Errorf("column properties: %w", err))
			}
		}
	}
	return rows, nil
}

// OpenFile checks that r holds a Parquet file and opens it. Before
// parquet-go sees the footer, OpenFile checks every claim in it that sizes
// an allocation: the footer's length lies inside the object, no list in it
// claims more elements than it has bytes, the row counts are at most one
// row per MinRowBytes bytes of the object, and every column chunk lies
// between the leading magic and the footer. A file that is not Parquet or
// fails a check is a *BadObjectError (ReasonEmpty, ReasonNotParquet,
// ReasonCorrupt or ReasonSchemaMismatch); any other error is the reader's.
// The returned file never reads outside [0, size). It may still panic on a
// hostile footer: callers recover with Panicked.
func OpenFile(r io.ReaderAt, size int64, key string) (*parquet.File, error) {
	bad := func(reason string, err error) error {
		return &BadObjectError{Key: key, Reason: reason, Err: err}
	}
	if size == 0 {
		return nil, bad(ReasonEmpty, errors.New("zero-byte object"))
	}
	var magic [4]byte
	if size < 12 {
		return nil, bad(ReasonNotParquet, fmt.Errorf("%d bytes is too small for Parquet", size))
	}
	if _, err := r.ReadAt(magic[:], 0); err != nil {
		return nil, err
	}
	if string(magic[:]) != "PAR1" {
		return nil, bad(ReasonNotParquet, errors.New("no PAR1 magic at start"))
	}
	if _, err := r.ReadAt(magic[:], size-4); err != nil {
		return nil, err
	}
	if string(magic[:]) != "PAR1" {
		return nil, bad(ReasonCorrupt, errors.New("no PAR1 magic at end (truncated?)"))
	}
	foot, at, err := footer(r, size)
	if errors.Is(err, errCorrupt) {
		return nil, bad(ReasonCorrupt, err)
	}
	if err != nil {
		return nil, err
	}
	tr := &tailReader{r: r, size: size, tail: foot, tailAt: at}
	f, err := parquet.OpenFile(tr, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, bad(ReasonCorrupt, err)
	}
	if _, err := layoutOf(f.Schema()); err != nil {
		return nil, bad(ReasonSchemaMismatch, err)
	}
	return f, nil
}

// Panicked turns a recovered parquet-go panic into a bad-object error.
func Panicked(key string, p any) *BadObjectError {
	return &BadObjectError{Key: key, Reason: ReasonCorrupt, Err: fmt.Errorf("parquet reader panicked: %v\n%s", p, firstLines(debug.Stack(), 6))}
}

func firstLines(b []byte, n int) string {
	for i, c := range b {
		if c == '\n' {
			n--
			if n == 0 {
				return string(b[:i])
			}
		}
	}
	return string(b)
}

// layoutOf maps the file's leaf columns onto Row. Unknown columns are
// ignored; a missing or mistyped required column is an error.
func layoutOf(s *parquet.Schema) (layout, error) {
	var lay layout
	for i := range lay.flat {
		lay.flat[i] = -1
	}
	lay.propKey, lay.propVal = -1, -1
	for c, name := range flatNames {
		leaf, ok := s.Lookup(name)
		if !ok {
			continue
		}
		if leaf.MaxRepetitionLevel != 0 {
			return lay, fmt.Errorf("column %s is repeated", name)
		}
		t := leaf.Node.Type()
		switch c {
		case colEventTime, colReceivedAt:
			u, err := TimeUnitOf(t)
			if err != nil {
				return lay, fmt.Errorf("column %s: %w", name, err)
			}
			lay.units[c] = u
		default:
			if t.Kind() != parquet.ByteArray {
				return lay, fmt.Errorf("column %s is %s, want a string (BYTE_ARRAY)", name, t)
			}
		}
		lay.flat[c] = leaf.ColumnIndex
	}
	for _, name := range []string{"event_id", "received_at", "event_name"} {
		if _, ok := s.Lookup(name); !ok {
			return lay, fmt.Errorf("no %s column", name)
		}
	}
	// properties: a MAP group, key/value leaves at depth 3 (key_value or map).
	for _, path := range s.Columns() {
		if len(path) != 3 || path[0] != "properties" {
			continue
		}
		leaf, _ := s.Lookup(path...)
		if leaf.Node.Type().Kind() != parquet.ByteArray {
			continue // a map of other types is not ours; ignore it
		}
		switch path[2] {
		case "key":
			lay.propKey = leaf.ColumnIndex
			lay.propMaxD = leaf.MaxDefinitionLevel
		case "value":
			lay.propVal = leaf.ColumnIndex
		}
	}
	if lay.propKey < 0 || lay.propVal < 0 {
		lay.propKey, lay.propVal = -1, -1
	}
	return lay, nil
}

// TimeUnitOf says how a column of type t holds timestamps, or why it
// cannot be read as one.
func TimeUnitOf(t parquet.Type) (TimeUnit, error) {
	switch t.Kind() {
	case parquet.Int96:
		return UnitInt96, nil
	case parquet.Int64:
		if lt := t.LogicalType(); lt != nil {
			if ts, ok := lt.Value.(*format.TimestampType); ok {
				switch ts.Unit.Value.(type) {
				case *format.MilliSeconds:
					return UnitMillis, nil
				case *format.MicroSeconds:
					return UnitMicros, nil
				case *format.NanoSeconds:
					return UnitNanos, nil
				}
			}
		}
		if ct := t.ConvertedType(); ct != nil {
			switch *ct {
			case deprecated.TimestampMillis:
				return UnitMillis, nil
			case deprecated.TimestampMicros:
				return UnitMicros, nil
			}
		}
		// An unannotated INT64 is read as epoch milliseconds, the common case.
		return UnitMillis, nil
	}
	return UnitNone, fmt.Errorf("type %s cannot be read as a timestamp (want INT64 or INT96)", t)
}

// decoder decodes column chunks; strs interns repeated strings of one object
// so that low-cardinality columns share memory, keyed by their bytes as
// read, holding them as repaired. ids holds a row group's event_ids.
type decoder struct {
	buf  []parquet.Value
	strs map[string]interned
	ids  []eventID
}

// eventID is one decoded event_id, as validString returns it.
type eventID struct {
	s        string
	repaired bool
}

// idBufs recycles decoder.ids across objects.
var idBufs sync.Pool

// growRows returns rows with room for n more, n being rows actually
// decoded (never more than the row group's claimed count, see
// ReadFlatColumn). The footer's row count, claimed, is only trusted up to
// one row per 64 bytes of an object of size bytes: a grown slice holds at
// most the rows decoded so far, that many, or twice its old capacity (as
// append would grow it), and never more than the footer claims unless more
// rows were decoded. For a truthful footer rows is allocated once per row
// group and never beyond the file's row count.
func growRows(rows []Row, n int, claimed, size int64) []Row {
	need := len(rows) + n
	if need <= cap(rows) {
		return rows
	}
	c := max(int64(need), min(claimed, max(size/64, 2*int64(cap(rows)))))
	grown := make([]Row, len(rows), c)
	copy(grown, rows)
	return grown
}

type interned struct {
	s        string // valid UTF-8
	repaired bool   // the bytes were not
}

// intern returns b as a valid UTF-8 string (see Row) and whether it had to
// be repaired, sharing the string with earlier equal values.
func (d *decoder) intern(b []byte) (string, bool) {
	if e, ok := d.strs[string(b)]; ok {
		return e.s, e.repaired
	}
	s, repaired := validString(b)
	if len(d.strs) < 1<<16 {
		k := s // the same bytes: one allocation for the key and the value
		if repaired {
			k = string(b)
		}
		d.strs[k] = interned{s, repaired}
	}
	return s, repaired
}

// validString returns b as a string, with each run of invalid UTF-8
// replaced by U+FFFD, and whether any was. Valid input costs one check.
func validString(b []byte) (string, bool) {
	if utf8.Valid(b) {
		return string(b), false
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), true
}

// floorDiv divides rounding toward negative infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// julianUnixEpoch is the Julian day number of 1970-01-01.
const julianUnixEpoch = 2440588

// Int96Millis decodes an INT96 timestamp (nanoseconds of the day in the low
// 8 bytes, Julian day in the high 4) into Unix milliseconds.
func Int96Millis(v deprecated.Int96) int64 {
	nanos := int64(uint64(v[1])<<32 | uint64(v[0]))
	day := int64(int32(v[2])) - julianUnixEpoch
	return day*86_400_000 + floorDiv(nanos, 1_000_000)
}

// ToMillis converts a non-null value of a column of unit u to Unix
// milliseconds, rounding toward the past.
func ToMillis(u TimeUnit, v parquet.Value) int64 {
	switch u {
	case UnitInt96:
		return Int96Millis(v.Int96())
	case UnitMicros:
		return floorDiv(v.Int64(), 1_000)
	case UnitNanos:
		return floorDiv(v.Int64(), 1_000_000)
	}
	return v.Int64()
}

// ReadFlatColumn reads the values of a non-repeated column chunk of a row
// group of nrows rows, in batches through buf, and calls fn with each batch
// and the index of its first row. The values (and their byte slices) are
// valid only during the call. A chunk with another number of values than
// nrows is an error.
//
// A chunk of a file opened by OpenFile is read in one read, and its page
// headers are checked (see MaxPageBytes, MaxPageValues: at most nrows
// values in all) before any page is decoded, so that a lying header is an
// error, not an allocation of the size it claims.
func ReadFlatColumn(cc parquet.ColumnChunk, buf []parquet.Value, nrows int, fn func(vals []parquet.Value, first int)) error {
	pages, err := checkedPages(cc, nrows)
	if err != nil {
		return err
	}
	defer pages.Close()
	i := 0
	for {
		p, err := pages.ReadPage()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		vr := p.Values()
		for {
			n, err := vr.ReadValues(buf)
			if i+n > nrows {
				parquet.Release(p)
				return fmt.Errorf("more values than the row group's %d rows", nrows)
			}
			fn(buf[:n], i)
			i += n
			if err == io.EOF {
				break
			}
			if err != nil {
				parquet.Release(p)
				return err
			}
		}
		parquet.Release(p)
	}
	if i != nrows {
		return fmt.Errorf("%d values for %d rows", i, nrows)
	}
	return nil
}

func (d *decoder) readFlat(cc parquet.ColumnChunk, col int, unit TimeUnit, rows []Row) error {
	if d.buf == nil {
		d.buf = make([]parquet.Value, 1024)
	}
	return ReadFlatColumn(cc, d.buf, len(rows), func(vals []parquet.Value, first int) {
		for k, v := range vals {
			if !v.IsNull() {
				d.set(&rows[first+k], col, unit, v)
			}
		}
	})
}

func (d *decoder) set(r *Row, col int, unit TimeUnit, v parquet.Value) {
	switch col {
	case colEventTime, colReceivedAt:
		ms := ToMillis(unit, v)
		if col == colEventTime {
			r.EventTime, r.HasEventTime = ms, true
		} else {
			r.ReceivedAt, r.HasReceivedAt = ms, true
		}
	default:
		var dst *string
		switch col {
		case colEventName: // event_id: see ReadFrom
			dst = &r.EventName
		case colUserID:
			dst = &r.UserID
		case colDeviceID:
			dst = &r.DeviceID
		case colSessionID:
			dst = &r.SessionID
		case colProduct:
			dst = &r.Product
		case colPlatform:
			dst = &r.Platform
		case colAppVersion:
			dst = &r.AppVersion
		case colCountry:
			dst = &r.Country
		default:
			return
		}
		s, repaired := d.intern(v.ByteArray())
		*dst = s
		r.InvalidUTF8 = r.InvalidUTF8 || repaired
	}
}

// checkedPages returns the pages of cc, through loadChunk if cc is a
// chunk of a file (nrows < 0: a repeated column). Closing them also
// returns the chunk's bytes to chunkBufs.
func checkedPages(cc parquet.ColumnChunk, nrows int) (parquet.Pages, error) {
	fc, ok := cc.(*parquet.FileColumnChunk)
	if !ok {
		return cc.Pages(), nil
	}
	r, err := loadChunk(fc.File(), cc, nrows)
	if err != nil {
		return nil, err
	}
	return &chunkPages{FilePages: fc.PagesFrom(r), r: r}, nil
}

// chunkPages are the pages of a chunk that loadChunk read.
type chunkPages struct {
	*parquet.FilePages
	r *chunkReader
}

// Close closes the pages and then releases the chunk's bytes, which
// parquet-go has copied what it needs from (it reads pages into buffers of
// its own).
func (p *chunkPages) Close() error {
	err := p.FilePages.Close()
	p.r.release()
	return err
}

// leafValue is one value of a map leaf column: its levels and, unless it
// is null, its string (interned, valid UTF-8) and whether that was repaired.
type leafValue struct {
	s              string
	rep, def       int
	null, repaired bool
}

// readLeaf reads every value of a column chunk of a repeated column (the
// map leaves; at most MaxRepeatedValues, see checkedPages), interning the
// strings as it goes: a page's values are not kept past the page.
func (d *decoder) readLeaf(cc parquet.ColumnChunk) ([]leafValue, error) {
	pages, err := checkedPages(cc, -1)
	if err != nil {
		return nil, err
	}
	defer pages.Close()
	var out []leafValue
	buf := make([]parquet.Value, 1024)
	for {
		p, err := pages.ReadPage()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		vr := p.Values()
		for {
			n, err := vr.ReadValues(buf)
			for _, v := range buf[:n] {
				lv := leafValue{rep: v.RepetitionLevel(), def: v.DefinitionLevel(), null: v.IsNull()}
				if !lv.null {
					lv.s, lv.repaired = d.intern(v.ByteArray())
				}
				out = append(out, lv)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				parquet.Release(p)
				return nil, err
			}
		}
		parquet.Release(p)
	}
}

func (d *decoder) readProps(kc, vc parquet.ColumnChunk, maxDef int, rows []Row) error {
	keys, err := d.readLeaf(kc)
	if err != nil {
		return err
	}
	vals, err := d.readLeaf(vc)
	if err != nil {
		return err
	}
	if len(keys) != len(vals) {
		return fmt.Errorf("%d keys but %d values", len(keys), len(vals))
	}
	i := -1
	for j, k := range keys {
		if k.rep == 0 {
			i++
			if i >= len(rows) {
				return fmt.Errorf("more maps than the row group's %d rows", len(rows))
			}
		}
		if i < 0 {
			return errors.New("map entry before any row")
		}
		if k.def < maxDef || k.null {
			continue // null or empty map
		}
		m := rows[i].Properties
		if m == nil {
			m = make(map[string]string)
			rows[i].Properties = m
		}
		v := vals[j]
		m[k.s] = v.s
		rows[i].InvalidUTF8 = rows[i].InvalidUTF8 || v.repaired || k.repaired
	}
	if i+1 != len(rows) {
		return fmt.Errorf("%d maps for %d rows", i+1, len(rows))
	}
	return nil
}
