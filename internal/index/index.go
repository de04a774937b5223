package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/raw"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// Prefix is where the index is kept: one JSON object per UTC arrival day,
// Prefix + "YYYY-MM-DD.json", holding the entries of the objects whose
// arrival hour is on that day.
const Prefix = "_state/index/raw/"

// Version is the version of the file format and of Scan's logic. A file of
// another version is ignored and its objects rescanned; bump it when Scan
// would compute different entries.
const Version = 5

// ObjectRef names one listed raw object.
type ObjectRef struct {
	Key  string
	ETag string
	Size int64
	Hour time.Time // UTC arrival hour named by the key
}

// Index is the raw object index, or the part of it that was loaded. It is
// a cache: every entry can be recomputed from its object, so a lost or
// unreadable file costs a rescan, never a wrong answer. The zero Index is
// empty and trusts no listing (its Update adds, and drops nothing). An
// Index is not safe for concurrent use.
type Index struct {
	window   window
	days     map[day.Day]*dayFile // by UTC arrival day
	rules    ruleSet              // of the last Update
	hasRules bool
	warnings []string
}

// dayFile is one file of the index: the entries of one UTC arrival day.
type dayFile struct {
	rules   ruleSet
	entries map[string]Entry // by key
	exists  bool             // there is an object in the store for it
	dirty   bool             // changed since it was loaded or saved
}

// window is the arrival hours whose listing Update may trust to be
// complete: entries in it that are not listed are dropped.
type window struct {
	all      bool
	from, to time.Time
}

func (w window) contains(h time.Time) bool {
	return w.all || (!h.Before(w.from) && h.Before(w.to))
}

// ruleSet is the part of compact.Rules that Days depend on, as recorded in
// each file.
type ruleSet struct {
	TimeZone    string `json:"time_zone"`
	MaxLateness string `json:"max_lateness"`
	MaxAhead    string `json:"max_ahead"`
}

func ruleSetOf(r compact.Rules) ruleSet {
	return ruleSet{TimeZone: r.Loc.String(), MaxLateness: r.MaxLateness.String(), MaxAhead: r.MaxAhead.String()}
}

// Load loads the whole index. A missing index is an empty one; an
// unreadable or foreign file is skipped with a warning (see Warnings) and
// its objects are rescanned by the next Update. Only a failing store is an
// error. Update then treats objs as the complete listing of the raw prefix.
func Load(ctx context.Context, st store.Store) (*Index, error) {
	objs, err := st.List(ctx, Prefix)
	if err != nil {
		return nil, fmt.Errorf("index: list %s: %w", Prefix, err)
	}
	ix := &Index{window: window{all: true}, days: map[day.Day]*dayFile{}}
	var ds []day.Day
	for _, o := range objs {
		name, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, Prefix), ".json")
		d, err := day.Parse(name)
		if !ok || err != nil || strings.Contains(name, "/") {
			continue // not ours (a temp file, a future layout)
		}
		ds = append(ds, d)
	}
	if err := ix.loadDays(ctx, st, ds); err != nil {
		return nil, err
	}
	return ix, nil
}

// LoadHours loads the files that hold the arrival hours [from, to): one
// per UTC day, about ten for a nightly run. Missing files are empty;
// unreadable ones are treated as in Load. Update then treats objs as the
// complete listing of the hours [from, to) (as job's listHours returns it);
// it adds objects outside them without dropping anything there.
func LoadHours(ctx context.Context, st store.Store, from, to time.Time) (*Index, error) {
	from, to = from.UTC().Truncate(time.Hour), to.UTC()
	ix := &Index{window: window{from: from, to: to}, days: map[day.Day]*dayFile{}}
	var ds []day.Day
	if from.Before(to) {
		ds = day.Range(utcDay(from), utcDay(to.Add(-time.Nanosecond)))
	}
	if err := ix.loadDays(ctx, st, ds); err != nil {
		return nil, err
	}
	return ix, nil
}

func utcDay(t time.Time) day.Day { return day.Of(t.UnixMilli(), time.UTC) }

func fileKey(d day.Day) string { return Prefix + d.String() + ".json" }

// loadDays reads the files of ds that are not loaded yet, concurrently.
func (ix *Index) loadDays(ctx context.Context, st store.Store, ds []day.Day) error {
	var todo []day.Day
	for _, d := range ds {
		if ix.days[d] == nil && !slices.Contains(todo, d) {
			todo = append(todo, d)
		}
	}
	files := make([]*dayFile, len(todo))
	warnings := make([]string, len(todo))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, d := range todo {
		g.Go(func() error {
			files[i] = &dayFile{entries: map[string]Entry{}}
			b, err := st.Get(gctx, fileKey(d))
			if errors.Is(err, store.ErrNotExist) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("index: read %s: %w", fileKey(d), err)
			}
			f, err := decodeFile(b, d)
			if err != nil {
				warnings[i] = fmt.Sprintf("index file %s is unreadable, its objects will be rescanned: %v", fileKey(d), err)
				f = &dayFile{entries: map[string]Entry{}, dirty: true}
			}
			f.exists = true
			files[i] = f
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for i, d := range todo {
		ix.days[d] = files[i]
		if warnings[i] != "" {
			ix.warnings = append(ix.warnings, warnings[i])
		}
	}
	return nil
}

// Warnings returns what loading found wrong (unreadable files); none of it
// stops a run.
func (ix *Index) Warnings() []string { return slices.Clone(ix.warnings) }

// Update brings the index up to date with objs, the listed raw objects,
// under rules: it scans, parallel at a time, every object whose (key, ETag,
// size) has no entry, and returns how many it scanned. Entries of listed
// hours (see Load and LoadHours) whose object is no longer listed are
// dropped, and so are entries recorded under other rules (time zone, max
// lateness, max ahead) or another Version: their objects are rescanned.
// Update is idempotent: a second call with the same objs scans nothing.
//
// An object that vanished between listing and scanning is left out. A bad
// object gets an entry with Bad set; only a failing store (or ctx) is an
// error, in which case the entries scanned so far are kept and Save can
// still persist them. Nothing is written until Save.
func (ix *Index) Update(ctx context.Context, st store.Store, objs []ObjectRef, rules compact.Rules, parallel int) (scanned int, err error) {
	return ix.UpdateWith(ctx, st, objs, rules, parallel, func(ctx context.Context, o ObjectRef) (Entry, error) {
		return scanObject(ctx, st, o, rules)
	})
}

// ScanFunc makes the entry of one object under the index's rules, as
// Scan does (a bad object is an entry with Bad set, not an error). An
// error wrapping store.ErrNotExist says the object is gone.
type ScanFunc func(ctx context.Context, o ObjectRef) (Entry, error)

// UpdateWith is Update with another way to make entries: the rollup
// reads each new object whole, once, writing its segments and making its
// entry from the same rows (see internal/job).
func (ix *Index) UpdateWith(ctx context.Context, st store.Store, objs []ObjectRef, rules compact.Rules, parallel int, scan ScanFunc) (scanned int, err error) {
	if rules.Loc == nil {
		return 0, errors.New("index: rules have no time zone")
	}
	if ix.days == nil {
		ix.days = map[day.Day]*dayFile{}
	}
	rs := ruleSetOf(rules)
	ix.rules, ix.hasRules = rs, true

	listed := make(map[string]ObjectRef, len(objs))
	touched := map[day.Day]bool{} // arrival days of objs
	for _, o := range objs {
		o.Hour = o.Hour.UTC()
		listed[o.Key] = o
		touched[utcDay(o.Hour)] = true
	}
	if err := ix.loadDays(ctx, st, slices.Collect(maps.Keys(touched))); err != nil {
		return 0, err
	}

	// Drop what the listing or the rules make stale.
	for d, f := range ix.days {
		if f.rules != rs {
			if !ix.window.all && !ix.window.overlapsDay(d) && !touched[d] {
				continue // not ours to rewrite; ignored by queries
			}
			if len(f.entries) > 0 {
				clear(f.entries)
				f.dirty = true
			}
			f.rules = rs
		}
		for k, e := range f.entries {
			o, ok := listed[k]
			if ok && (o.ETag != e.ETag || o.Size != e.Size) || !ok && ix.window.contains(e.Hour) {
				delete(f.entries, k)
				f.dirty = true
			}
		}
	}

	var todo []ObjectRef
	queued := make(map[string]bool, len(listed))
	for _, o := range objs {
		o = listed[o.Key]
		if _, ok := ix.days[utcDay(o.Hour)].entries[o.Key]; ok || queued[o.Key] {
			continue
		}
		queued[o.Key] = true
		todo = append(todo, o)
	}

	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(parallel, 1))
	for _, o := range todo {
		g.Go(func() error {
			e, err := scan(gctx, o)
			if errors.Is(err, store.ErrNotExist) {
				return nil // deleted since it was listed
			}
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			f := ix.days[utcDay(o.Hour)]
			f.entries[o.Key] = e
			f.dirty = true
			scanned++
			return nil
		})
	}
	err = g.Wait()
	return scanned, err
}

func (w window) overlapsDay(d day.Day) bool {
	return w.from.Before(d.End(time.UTC)) && d.Start(time.UTC).Before(w.to)
}

// scanObject opens and scans one object. A failed read of the store is an
// error, not a bad object: a transient failure must not be remembered as
// corruption.
func scanObject(ctx context.Context, st store.Store, o ObjectRef, rules compact.Rules) (Entry, error) {
	r, err := st.Open(ctx, o.Key)
	if err != nil {
		return Entry{}, fmt.Errorf("index: open %s: %w", o.Key, err)
	}
	defer r.Close()
	cr := &checkedReader{r: r}
	e, err := Scan(cr, r.Size(), o.Key, o.Hour, rules)
	if err == nil {
		err = cr.failure()
	}
	if err != nil {
		return Entry{}, fmt.Errorf("index: scan %s: %w", o.Key, err)
	}
	// The listed ETag: if the object changed since it was listed, Size
	// (from the open object) disagrees with the next listing and the
	// object is scanned again.
	e.ETag = o.ETag
	return e, nil
}

// checkedReader remembers the first error of the underlying reader other
// than io.EOF.
type checkedReader struct {
	r   io.ReaderAt
	mu  sync.Mutex
	err error
}

func (c *checkedReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	if err != nil && !errors.Is(err, io.EOF) {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *checkedReader) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// MarkBad records that reading the object (key, etag) whole found it bad
// although Scan did not (a corrupt page in a column Scan does not read), so
// that the index stops counting it as an input of its days. It reports
// whether there was such an entry. Save persists the change.
func (ix *Index) MarkBad(key, etag string, bad *raw.BadObjectError) bool {
	for _, f := range ix.days {
		e, ok := f.entries[key]
		if !ok || e.ETag != etag {
			continue
		}
		f.entries[key] = Entry{Key: e.Key, ETag: e.ETag, Size: e.Size, Hour: e.Hour, Bad: bad.Reason, Detail: bad.Err.Error()}
		f.dirty = true
		return true
	}
	return false
}

// Save writes every file that changed since it was loaded (each with one
// atomic Put; a file left without entries is deleted). Saving twice writes
// nothing the second time. Two processes saving the same day at once lose
// one's new entries, which the next Update rescans: the index stays right.
func (ix *Index) Save(ctx context.Context, st store.Store) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for d, f := range ix.days {
		if !f.dirty {
			continue
		}
		g.Go(func() error {
			key := fileKey(d)
			if len(f.entries) == 0 {
				if f.exists {
					if err := st.Delete(gctx, key); err != nil {
						return fmt.Errorf("index: delete %s: %w", key, err)
					}
				}
			} else if err := st.Put(gctx, key, encodeFile(d, f)); err != nil {
				return fmt.Errorf("index: write %s: %w", key, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, f := range ix.days {
		if f.dirty {
			f.exists, f.dirty = len(f.entries) > 0, false
		}
	}
	return nil
}

// current returns the entries that hold under the rules of the last Update
// (every loaded entry before the first Update), sorted by key.
func (ix *Index) current(keep func(*Entry) bool) []Entry {
	var out []Entry
	for _, f := range ix.days {
		if ix.hasRules && f.rules != ix.rules {
			continue
		}
		for _, e := range f.entries {
			if keep(&e) {
				out = append(out, e)
			}
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Entries returns every current entry, sorted by key.
func (ix *Index) Entries() []Entry {
	return ix.current(func(*Entry) bool { return true })
}

// Lookup returns the current entry of key.
func (ix *Index) Lookup(key string) (Entry, bool) {
	for _, f := range ix.days {
		if e, ok := f.entries[key]; ok && (!ix.hasRules || f.rules == ix.rules) {
			return e, true
		}
	}
	return Entry{}, false
}

// InputsOf returns the readable objects with rows that count on d, sorted
// by key: among loaded entries only, so the caller loads the arrival hours
// that can feed d (the job's window of d).
func (ix *Index) InputsOf(d day.Day) []Entry {
	return ix.current(func(e *Entry) bool { return e.Bad == "" && e.Feeds(d) })
}

// BadIn returns the bad objects whose arrival hour falls on d in loc (the
// day their bad_object quarantine row belongs to), sorted by key.
func (ix *Index) BadIn(d day.Day, loc *time.Location) []Entry {
	return ix.current(func(e *Entry) bool { return e.Bad != "" && day.Of(e.Hour.UnixMilli(), loc) == d })
}

// The file format. Its entries are in the JSON form of Entry (entryJSON),
// which Entry.MarshalJSON and Entry.UnmarshalJSON also read and write.
type fileJSON struct {
	Version    int         `json:"version"`
	ArrivalDay string      `json:"arrival_day"` // UTC day of every entry's hour
	Rules      ruleSet     `json:"rules"`
	Entries    []entryJSON `json:"entries"`
}

// entryJSON is the JSON form of an Entry: jsonOf makes it, entry checks it
// and makes the Entry back.
type entryJSON struct {
	Key          string    `json:"key"`
	ETag         string    `json:"etag"`
	Size         int64     `json:"size"`
	Hour         time.Time `json:"hour"`
	Rows         int64     `json:"rows"`
	FirstArrival int64     `json:"first_arrival_ms"`
	LastArrival  int64     `json:"last_arrival_ms"`
	Days         []string  `json:"days,omitempty"`
	DayRows      []int64   `json:"day_rows,omitempty"`
	Bad          string    `json:"bad,omitempty"`
	Detail       string    `json:"detail,omitempty"`
}

// jsonOf returns the JSON form of e, its hour in UTC and its days as
// YYYY-MM-DD. It checks nothing.
func jsonOf(e Entry) entryJSON {
	ej := entryJSON{Key: e.Key, ETag: e.ETag, Size: e.Size, Hour: e.Hour.UTC(), Rows: e.Rows,
		FirstArrival: e.FirstArrival, LastArrival: e.LastArrival, DayRows: e.DayRows, Bad: e.Bad, Detail: e.Detail}
	if len(e.Days) > 0 {
		ej.Days = make([]string, len(e.Days))
		for i, d := range e.Days {
			ej.Days[i] = d.String()
		}
	}
	return ej
}

// entry checks ej and returns its Entry (hour in UTC). These are the checks
// of every entry read back, from an index file or from JSON anywhere else:
// a key, days that parse and are ascending and distinct, and one day_rows
// count per day. Whether the hour is on the right arrival day is the
// file's check (decodeFile), not the entry's.
func (ej *entryJSON) entry() (Entry, error) {
	if ej.Key == "" {
		return Entry{}, errors.New("entry without a key")
	}
	e := Entry{Key: ej.Key, ETag: ej.ETag, Size: ej.Size, Hour: ej.Hour.UTC(), Rows: ej.Rows,
		FirstArrival: ej.FirstArrival, LastArrival: ej.LastArrival, DayRows: ej.DayRows, Bad: ej.Bad, Detail: ej.Detail}
	if len(ej.Days) > 0 {
		e.Days = make([]day.Day, len(ej.Days))
		for i, s := range ej.Days {
			d, err := day.Parse(s)
			if err != nil {
				return Entry{}, fmt.Errorf("entry %q: %w", e.Key, err)
			}
			if i > 0 && d <= e.Days[i-1] {
				return Entry{}, fmt.Errorf("entry %q: days not ascending and distinct", e.Key)
			}
			e.Days[i] = d
		}
	}
	if len(e.DayRows) != len(e.Days) {
		return Entry{}, fmt.Errorf("entry %q: %d day_rows for %d days", e.Key, len(e.DayRows), len(e.Days))
	}
	return e, nil
}

// MarshalJSON writes e in the JSON form the index files hold for it (keys
// key, etag, size, hour, rows, first_arrival_ms, last_arrival_ms, days,
// day_rows, bad, detail), its hour in UTC. It checks nothing and does not
// fail: an entry UnmarshalJSON would reject is written as it is.
func (e Entry) MarshalJSON() ([]byte, error) {
	return json.Marshal(jsonOf(e))
}

// UnmarshalJSON reads an entry in the form MarshalJSON writes, with the
// checks an index file's entries get: it is an error (and e is left as it
// was) if there is no key (null included), a day does not parse, the days
// are not ascending and distinct, or day_rows does not have one count per
// day. The hour is made UTC. So every Entry that held a key, ascending
// distinct days and one count per day round-trips through MarshalJSON and
// UnmarshalJSON (an empty Days or DayRows comes back nil).
func (e *Entry) UnmarshalJSON(b []byte) error {
	var ej entryJSON
	if err := json.Unmarshal(b, &ej); err != nil {
		return err
	}
	x, err := ej.entry()
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	*e = x
	return nil
}

func encodeFile(d day.Day, f *dayFile) []byte {
	out := fileJSON{Version: Version, ArrivalDay: d.String(), Rules: f.rules}
	for _, k := range slices.Sorted(maps.Keys(f.entries)) {
		out.Entries = append(out.Entries, jsonOf(f.entries[k]))
	}
	b, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		panic(err) // plain data: cannot fail
	}
	return append(b, '\n')
}

// decodeFile parses and checks the file of arrival day d: its version and
// day, each entry (entryJSON.entry), that each entry's hour is on d, and
// that no key is there twice.
func decodeFile(b []byte, d day.Day) (*dayFile, error) {
	var fj fileJSON
	if err := json.Unmarshal(b, &fj); err != nil {
		return nil, err
	}
	if fj.Version != Version {
		return nil, fmt.Errorf("version %d, want %d", fj.Version, Version)
	}
	if fj.ArrivalDay != d.String() {
		return nil, fmt.Errorf("holds arrival day %q", fj.ArrivalDay)
	}
	f := &dayFile{rules: fj.Rules, entries: make(map[string]Entry, len(fj.Entries))}
	for i := range fj.Entries {
		e, err := fj.Entries[i].entry()
		if err != nil {
			return nil, err
		}
		if utcDay(e.Hour) != d {
			return nil, fmt.Errorf("entry %q: hour %s is not on the file's arrival day", e.Key, e.Hour)
		}
		if _, dup := f.entries[e.Key]; dup {
			return nil, fmt.Errorf("entry %q twice", e.Key)
		}
		f.entries[e.Key] = e
	}
	return f, nil
}
