// Package index is the raw object index of docs/design.md §Index: for every raw object
// it records its ETag, size, row count, arrival span and the reporting days
// its rows count on (after the clock-skew rule), so that a day's inputs are
// exactly the objects that feed it. Entries are built by reading only each
// object's footer and its two time columns, once per (key, ETag), and are
// kept under _state/index/raw/ in the store.
package index

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/raw"
)

// Entry is what the index knows about one raw object (one version of it:
// a new ETag is a new entry).
type Entry struct {
	Key  string
	ETag string
	Size int64
	// Hour is the UTC arrival hour named by the key: the fallback time of
	// rows without event_time and received_at, and the hour a bad object
	// is reported in.
	Hour time.Time
	// Rows is the number of rows raw.ReadFrom returns for the object (the
	// sum of its row groups' row counts); 0 for a bad object.
	Rows int64
	// FirstArrival and LastArrival are the smallest and largest received_at
	// (Unix ms) of its rows; both 0 if no row has a received_at.
	FirstArrival, LastArrival int64
	// Days are the distinct reporting days its rows count on under
	// compact.Rules.Attribute, in the rules' zone, ascending. Nil for a bad
	// object or one without rows.
	Days []day.Day
	// DayRows are the rows counting on each of Days (same order): what a
	// reader of the object routes to each day, so that a day's events can
	// be sized exactly before the objects are read.
	DayRows []int64
	// Bad is the raw.BadObjectError reason (raw.ReasonCorrupt, ...) if the
	// object is unreadable, else "". Detail is the error text.
	Bad, Detail string
}

// Feeds reports whether the entry's rows count on d.
func (e *Entry) Feeds(d day.Day) bool {
	_, ok := slices.BinarySearch(e.Days, d)
	return ok
}

// Scan reads the raw object in r (size bytes, named key, in arrival hour
// hour) and returns its Entry under rules. It reads the magic bytes, the
// footer and the pages of the event_time and received_at columns only.
//
// A bad object is not an error: the Entry has Bad and Detail set, as
// raw.ReadFrom would classify it, and no Days. Every object Scan calls bad,
// raw.ReadFrom rejects with the same reason. The converse holds for every
// defect visible in the footer or the time columns (empty, not Parquet,
// truncated, unreadable footer, schema mismatch, implausible row count, a
// corrupt time column); a corrupt page of another column (event_id,
// user_id, properties, ...) is only found by reading that column, so Scan
// calls such an object good and raw.ReadFrom does not. The error is non-nil
// only when rules.Loc is nil or reading the magic bytes or the footer fails
// (as with raw.ReadFrom); Scan never panics on bad input, never reads
// outside [0, size), and allocates no more than raw.OpenFile's bounds allow
// (at most 9 bytes per row, at most one row per raw.MinRowBytes of size).
func Scan(r io.ReaderAt, size int64, key string, hour time.Time, rules compact.Rules) (e Entry, err error) {
	e = Entry{Key: key, Size: size, Hour: hour.UTC()}
	if rules.Loc == nil {
		return e, errors.New("index: rules have no time zone")
	}
	bad := func(reason string, err error) (Entry, error) {
		return Entry{Key: key, Size: size, Hour: hour.UTC(), Bad: reason, Detail: err.Error()}, nil
	}
	defer func() {
		if p := recover(); p != nil {
			pe := raw.Panicked(key, p)
			e, err = bad(pe.Reason, pe.Err)
		}
	}()
	// raw's own checks, so that Scan and raw.ReadFrom agree on bad objects.
	f, err := raw.OpenFile(r, size, key)
	var be *raw.BadObjectError
	if errors.As(err, &be) {
		return bad(be.Reason, be.Err)
	}
	if err != nil {
		return e, err
	}
	lay := timeLayoutOf(f.Schema())

	var (
		et, rt       column
		days         dayCache
		row          raw.Row // Attribute reads the time fields only
		counts       = map[day.Day]int64{}
		cur          day.Day
		curN         int64
		fallback     = hour.UnixMilli()
		first, last  int64
		haveArrivals bool
	)
	days.loc = rules.Loc
	for _, rg := range f.RowGroups() {
		nr := int(rg.NumRows())
		chunks := rg.ColumnChunks()
		if err := et.read(chunks, lay.eventTime, lay.eventUnit, nr); err != nil {
			return bad(raw.ReasonCorrupt, fmt.Errorf("column event_time: %w", err))
		}
		if err := rt.read(chunks, lay.receivedAt, lay.receivedUnit, nr); err != nil {
			return bad(raw.ReasonCorrupt, fmt.Errorf("column received_at: %w", err))
		}
		for i := range nr {
			row.EventTime, row.HasEventTime = et.ms[i], et.has[i]
			row.ReceivedAt, row.HasReceivedAt = rt.ms[i], rt.has[i]
			if row.HasReceivedAt {
				if !haveArrivals || row.ReceivedAt < first {
					first = row.ReceivedAt
				}
				if !haveArrivals || row.ReceivedAt > last {
					last = row.ReceivedAt
				}
				haveArrivals = true
			}
			at, _ := rules.Attribute(&row, fallback)
			d := days.of(at)
			if d != cur && curN > 0 {
				counts[cur] += curN
				curN = 0
			}
			cur = d
			curN++
		}
		e.Rows += int64(nr)
	}
	if curN > 0 {
		counts[cur] += curN
	}
	for _, d := range slices.Sorted(maps.Keys(counts)) {
		e.Days = append(e.Days, d)
		e.DayRows = append(e.DayRows, counts[d])
	}
	e.FirstArrival, e.LastArrival = first, last
	return e, nil
}

// timeLayout is where a file keeps its two time columns.
type timeLayout struct {
	eventTime, receivedAt   int // leaf column index, or -1 if absent
	eventUnit, receivedUnit raw.TimeUnit
}

// timeLayoutOf returns where the time columns are, in a schema that
// raw.OpenFile accepted.
func timeLayoutOf(s *parquet.Schema) timeLayout {
	lay := timeLayout{eventTime: -1, receivedAt: -1}
	if leaf, ok := s.Lookup("event_time"); ok {
		lay.eventTime = leaf.ColumnIndex
		lay.eventUnit, _ = raw.TimeUnitOf(leaf.Node.Type())
	}
	if leaf, ok := s.Lookup("received_at"); ok {
		lay.receivedAt = leaf.ColumnIndex
		lay.receivedUnit, _ = raw.TimeUnitOf(leaf.Node.Type())
	}
	return lay
}

// column holds one row group's values of a time column, in milliseconds;
// its buffers are reused from row group to row group.
type column struct {
	ms  []int64
	has []bool
	buf []parquet.Value
}

// read decodes chunk idx (-1: the column is absent, every row is null) of
// a row group of nr rows, with raw.ReadFrom's checks.
func (c *column) read(chunks []parquet.ColumnChunk, idx int, unit raw.TimeUnit, nr int) error {
	if cap(c.ms) < nr {
		c.ms, c.has = make([]int64, nr), make([]bool, nr)
	}
	c.ms, c.has = c.ms[:nr], c.has[:nr]
	clear(c.has)
	if idx < 0 {
		return nil
	}
	if c.buf == nil {
		c.buf = make([]parquet.Value, 1024)
	}
	return raw.ReadFlatColumn(chunks[idx], c.buf, nr, func(vals []parquet.Value, first int) { c.decode(vals, first, unit) })
}

// decode stores vals as the values of rows i, i+1, ...
func (c *column) decode(vals []parquet.Value, i int, unit raw.TimeUnit) {
	ms, has := c.ms[i:i+len(vals)], c.has[i:i+len(vals)]
	for j, v := range vals {
		if !v.IsNull() {
			ms[j], has[j] = raw.ToMillis(unit, v), true
		}
	}
}

// floorDiv divides rounding toward negative infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// dayCache computes day.Of(ms, loc) without a time zone lookup per row: it
// remembers the zone period (offset and bounds) of the last instant, and
// inside it the local date is floor((ms + offset) / 1 day), which is how
// the time package computes it.
type dayCache struct {
	loc       *time.Location
	lo, hi    int64 // the cached period [lo, hi) in ms
	offsetMs  int64
	valid     bool
	unboundLo bool // the period has no start (lo unused)
	unboundHi bool // the period has no end (hi unused)
}

func (c *dayCache) of(ms int64) day.Day {
	if c.loc == time.UTC {
		return day.Of(ms, time.UTC)
	}
	if !c.valid || (!c.unboundLo && ms < c.lo) || (!c.unboundHi && ms >= c.hi) {
		t := time.UnixMilli(ms).In(c.loc)
		_, off := t.Zone()
		start, end := t.ZoneBounds()
		c.offsetMs = int64(off) * 1000
		c.unboundLo, c.unboundHi = start.IsZero(), end.IsZero()
		c.lo, c.hi = start.UnixMilli(), end.UnixMilli()
		c.valid = true
	}
	return day.Day(floorDiv(ms+c.offsetMs, 86_400_000))
}
