// Package raw reads the Parquet objects Firehose lands under raw/ into
// normalized rows, tolerating everything Firehose and Hive-style writers
// produce (docs/design.md §The raw event) and classifying everything else as a bad object.
package raw

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"

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
	// TooLarge names the row's values over MaxValueBytes and their sizes
	// ("user_id: 614400 bytes; ..."), or is "" if there is none. Each
	// such value is cut to its first TooLargeKeptBytes (at most) and "…".
	// The row is read, not used: routing quarantines it alone.
	TooLarge string
}

// MaxValueBytes is the most bytes one string value of a raw row may hold:
// a column's value, or one key or one value of its properties, as read
// and once invalid UTF-8 in it is repaired. A row holding a longer value
// is not used: it is read with that value cut (Row.TooLarge,
// Columns.TooLarge) and quarantined alone, with reason value_too_large;
// the object's other rows are used as usual. An object is never refused
// for holding such a value.
//
// It is Firehose's largest record (1,000 KiB) rounded up, so no value a
// Firehose record can hold is over it, and at least what the collector
// accepts for one string; every later stage (segments, the day's
// dictionary, the events writer, the rollups) holds values this long.
const MaxValueBytes = 1 << 20

// TooLargeKeptBytes is the most bytes kept of a value over MaxValueBytes
// (cut at a character boundary, then "…" appended), so that its
// quarantined row shows where it came from.
const TooLargeKeptBytes = 64

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
	flat        [numFlat]int // leaf column index, or -1 if absent
	units       [numFlat]TimeUnit
	defs        [numFlat]int // max definition level of each flat column
	propKey     int          // leaf index of properties' key, or -1
	propVal     int
	propMaxD    int // max definition level of the key column
	propValMaxD int // and of the value column
}

// Read reads the object at key whole, as rows (ReadColumns, then
// Columns.Rows). A bad object gives a *BadObjectError; any other error (the
// store failed) is returned as is and may be retried. Read never panics on
// bad input: parquet-go panics are turned into BadObjectErrors.
func Read(ctx context.Context, st store.Store, key string) ([]Row, error) {
	c, err := ReadColumns(ctx, st, key)
	if err != nil {
		return nil, err
	}
	return c.Rows(), nil
}

// ReadColumns reads the object at key whole into Columns. Errors are as
// Read's.
func ReadColumns(ctx context.Context, st store.Store, key string) (*Columns, error) {
	r, err := st.Open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	defer r.Close()
	cr := &checkedReader{r: r}
	c, err := ReadColumnsFrom(cr, r.Size(), key)
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
	return c, err
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

// ReadFrom reads one raw object from r as rows; key is recorded in each
// row's Source and in errors.
func ReadFrom(r io.ReaderAt, size int64, key string) ([]Row, error) {
	c, err := ReadColumnsFrom(r, size, key)
	if err != nil {
		return nil, err
	}
	return c.Rows(), nil
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
		lay.defs[c] = leaf.MaxDefinitionLevel
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
			lay.propValMaxD = leaf.MaxDefinitionLevel
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

// grow returns s with room for n more, n being values actually decoded
// (never more than the row group's claimed count, see ReadFlatColumn). The
// footer's row count, claimed, is only trusted up to one row per 64 bytes
// of an object of size bytes: a grown slice holds at most the values
// decoded so far, that many, or twice its old capacity (as append would
// grow it), and never more than the footer claims unless more were
// decoded. For a truthful footer a column is allocated once per row group
// and never beyond the file's row count.
func grow[T any](s []T, n int, claimed, size int64) []T {
	need := len(s) + n
	if need <= cap(s) {
		return s
	}
	c := max(int64(need), min(claimed, max(size/64, 2*int64(cap(s)))))
	grown := make([]T, len(s), c)
	copy(grown, s)
	return grown
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
	if u == UnitInt96 {
		return Int96Millis(v.Int96())
	}
	return int64Millis(u, v.Int64())
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
	return eachFlatPage(cc, nrows, func(p parquet.Page, first int) error {
		vr, i, end := p.Values(), first, first+int(p.NumValues())
		for {
			n, err := vr.ReadValues(buf)
			if i+n > end {
				return fmt.Errorf("a page of %d values holds more", end-first)
			}
			fn(buf[:n], i)
			i += n
			if err == io.EOF && i != end {
				return fmt.Errorf("a page of %d values holds %d", end-first, i-first)
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
}

// eachFlatPage calls fn with each page of a non-repeated chunk (see
// checkedPages) of a row group of nrows rows and the row of the page's
// first value, then releases the page. It checks that the pages hold
// nrows values in all (NumValues), and stops at the first error.
func eachFlatPage(cc parquet.ColumnChunk, nrows int, fn func(p parquet.Page, first int) error) error {
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
		n := int(p.NumValues())
		if i+n > nrows {
			parquet.Release(p)
			return fmt.Errorf("more values than the row group's %d rows", nrows)
		}
		err = fn(p, i)
		parquet.Release(p)
		if err != nil {
			return err
		}
		i += n
	}
	if i != nrows {
		return fmt.Errorf("%d values for %d rows", i, nrows)
	}
	return nil
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
