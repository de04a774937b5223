package job

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/frame"
	"github.com/littlewarehouse/warehouse/internal/index"
	"github.com/littlewarehouse/warehouse/internal/raw"
	"github.com/littlewarehouse/warehouse/internal/segment"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// The routing stage (docs/design.md §Routing and segments): each raw object a stale day needs is
// read once, and its rows, split by the day they count on, are written as
// segments (internal/segment), one per (day, object). Days are then built
// from their segments alone, one at a time, so memory is bounded by one
// day and by Parallel objects, never by the range. A later run that
// rebuilds a day (a late object arrived) reads the late object and the
// day's segments, not the raw objects already routed.

// router is the routing stage: it reads raw objects, each whole and once,
// and writes their per-(day, object) segments (route, routeScan,
// RouteObjects); a day's parts are read back from them (loadDay). The CLI
// and the Lambda route workers both route through it.
type router struct {
	*Config
	readHook func(key string) error // test seam: called before each raw object is read
}

// routeRules is what routing depends on; a segment routed under other
// rules is never used (its tag differs).
func (c *Config) routeRules() string {
	return fmt.Sprintf("code=%s tz=%s max_lateness=%s max_ahead=%s", CodeVersion, c.Rules.Loc, c.Rules.MaxLateness, c.Rules.MaxAhead)
}

// segmentKey is the key of object o's segment of day d.
func (c *Config) segmentKey(d day.Day, o store.Object) string {
	return segment.Key(d, o.Key, segment.Tag(o.Key, o.ETag, c.routeRules()))
}

// routeOne reads raw object o and writes a segment for every day its rows
// count on, and an empty one for each of days (the index's) that got none,
// so that a day's inputs always have segments once their object is routed.
// It returns the parts by day, and the object's index entry made from the
// same rows. A bad object gives a *raw.BadObjectError and writes nothing.
func (rt *router) routeOne(ctx context.Context, o rawObject, days []day.Day) (*routedObject, error) {
	if rt.readHook != nil {
		if err := rt.readHook(o.Key); err != nil {
			return nil, err
		}
	}
	cols, err := raw.ReadColumns(ctx, rt.Store, o.Key)
	if err != nil {
		return nil, err
	}
	out := &routedObject{entry: index.Entry{Key: o.Key, ETag: o.ETag, Size: o.Size, Hour: o.Hour, Rows: int64(cols.Len())}}
	first := true
	for i, has := range cols.HasReceivedAt {
		if at := cols.ReceivedAt[i]; has {
			if first || at < out.entry.FirstArrival {
				out.entry.FirstArrival = at
			}
			if first || at > out.entry.LastArrival {
				out.entry.LastArrival = at
			}
			first = false
		}
	}
	out.parts = rt.Rules.RouteColumns(cols, o.Hour.UnixMilli(), func(day.Day) bool { return true })
	cols.Release()
	for _, d := range slices.Sorted(maps.Keys(out.parts)) {
		p := out.parts[d]
		out.entry.Days = append(out.entry.Days, d)
		out.entry.DayRows = append(out.entry.DayRows, int64(p.Events.Len()+len(p.Quarantine)))
	}
	for _, d := range days {
		if out.parts[d] == nil {
			out.parts[d] = &compact.Part{Events: frame.New(nil, 0)}
		}
	}
	for d, p := range out.parts {
		n, err := segment.Write(ctx, rt.Store, rt.segmentKey(d, o.Object),
			&segment.Segment{Events: p.Events, Quarantine: p.Quarantine, RepairedUTF8: p.RepairedUTF8})
		if err != nil {
			return nil, fmt.Errorf("write segment of %s for %s: %w", o.Key, d, err)
		}
		out.segments++
		out.bytes += n
		p.Events.Dict.Seal() // Build reads the strings only
	}
	return out, nil
}

// routedObject is what routing one raw object made.
type routedObject struct {
	parts    map[day.Day]*compact.Part
	entry    index.Entry
	segments int
	bytes    int64
}

// routeScan is the index's ScanFunc of a run: a new object is read whole,
// once, routed into segments, and indexed from the same rows.
func (rt *router) routeScan(rs *routeStats) index.ScanFunc {
	return func(ctx context.Context, ref index.ObjectRef) (index.Entry, error) {
		o := rawObject{Object: store.Object{Key: ref.Key, ETag: ref.ETag, Size: ref.Size}, Hour: ref.Hour}
		r, err := rt.routeOne(ctx, o, nil)
		var bad *raw.BadObjectError
		if errors.As(err, &bad) {
			rs.add(o, nil)
			rt.Log.Warn("bad raw object; counted and quarantined, its rows are not used", "key", o.Key, "reason", bad.Reason, "error", bad.Err.Error())
			return index.Entry{Key: o.Key, ETag: o.ETag, Size: o.Size, Hour: o.Hour, Bad: bad.Reason, Detail: bad.Err.Error()}, nil
		}
		if err != nil {
			return index.Entry{}, err
		}
		rs.add(o, r)
		rs.keep(o.Key, o.Size, r)
		return r.entry, nil
	}
}

// routeStats counts what routing did. It is safe for concurrent use.
type routeStats struct {
	mu       sync.Mutex
	objects  int   // raw objects read
	rawBytes int64 // their size
	segments int   // segments written
	segBytes int64
	bad      []BadObject

	// The parts of keepDay routed in this run are appended, as they come,
	// to one part (kept, on one dictionary), while keeping: the day is
	// built from it without reading their segments back. Only one day is
	// kept, so memory stays bounded by one day; the run builds it first.
	keepMu      sync.Mutex
	keepDay     day.Day
	keeping     bool
	keepBytes   int64 // the size of the objects arriving on keepDay: to size kept
	kept        *compact.Part
	keptKeys    map[string]bool // the objects appended to kept
	keptObjects int             // those with rows (valid or not) on keepDay
}

// keep appends r's part of keepDay (object key, size bytes) to the kept
// part, if keeping. The kept part is first sized for the objects arriving
// on the day, at this object's rows per byte and a fifth more: capacity
// never touched costs no memory, too little only means growing.
func (rs *routeStats) keep(key string, size int64, r *routedObject) {
	rs.keepMu.Lock()
	defer rs.keepMu.Unlock()
	p := r.parts[rs.keepDay]
	if !rs.keeping || p == nil {
		return
	}
	if rs.kept == nil {
		n := p.Events.Len()
		if size > 0 {
			n = max(n, int(float64(r.entry.Rows)/float64(size)*float64(rs.keepBytes)*1.2))
		}
		rs.kept, rs.keptKeys = newDayPart(n), map[string]bool{}
	}
	// Onto the day's dictionary, so that the object's own goes (most of
	// its strings are the day's already).
	p.Events.Rebase(rs.kept.Events.Dict)
	if err := rs.kept.Events.AppendEvents(p.Events); err != nil {
		// More than one part holds: the day is read from its segments
		// (where Build refuses a day that large).
		rs.keeping, rs.kept, rs.keptKeys = false, nil, nil
		return
	}
	rs.kept.Quarantine = append(rs.kept.Quarantine, p.Quarantine...)
	rs.kept.RepairedUTF8 += p.RepairedUTF8
	rs.keptKeys[key] = true
	if p.Events.Len() > 0 || len(p.Quarantine) > 0 {
		rs.keptObjects++
	}
}

// newDayPart returns an empty part, with a dictionary of its own, sized
// for n events: the part a day's parts are appended to (AppendEvents).
func newDayPart(n int) *compact.Part {
	// The dictionary sized for a string per 4 events: its index is made
	// once, not made again larger as it fills.
	ev := frame.New(frame.NewDict(n/4), n)
	ev.IDBytes = frame.Make[byte](0, n*frame.UUIDSize) // as the usual ids take; others grow it
	return &compact.Part{Events: ev}
}

// takeKept returns and forgets the kept part if d is the kept day and
// every object in it is one of good (the day's inputs), with the objects
// it holds and how many of them have rows on d; else nil.
func (rs *routeStats) takeKept(d day.Day, good map[string]bool) (*compact.Part, map[string]bool, int) {
	rs.keepMu.Lock()
	defer rs.keepMu.Unlock()
	kept, keys, objects := rs.kept, rs.keptKeys, rs.keptObjects
	rs.keeping, rs.kept, rs.keptKeys = false, nil, nil
	if kept == nil || d != rs.keepDay {
		return nil, nil, 0
	}
	for k := range keys {
		if !good[k] {
			return nil, nil, 0 // not the day's inputs after all: read them all from segments
		}
	}
	return kept, keys, objects
}

// forget drops the kept part (the kept day is built, or not built by
// this run after all).
func (rs *routeStats) forget() {
	rs.keepMu.Lock()
	defer rs.keepMu.Unlock()
	rs.keeping, rs.kept, rs.keptKeys = false, nil, nil
}

// add counts one object read; r is nil for a bad one.
func (rs *routeStats) add(o rawObject, r *routedObject) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.objects++
	rs.rawBytes += o.Size
	if r != nil {
		rs.segments += r.segments
		rs.segBytes += r.bytes
	}
}

// route reads every object in objs once, at most Parallel at a time, and
// writes their segments. A bad object is marked in the index and reported,
// never fatal.
func (rt *router) route(ctx context.Context, objs []rawObject, ix *index.Index, rs *routeStats) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(rt.Parallel)
	var mu sync.Mutex
	done := 0
	for _, o := range objs {
		g.Go(func() error {
			r, err := rt.routeIndexed(gctx, o, ix, rs)
			if err != nil || r == nil {
				return err
			}
			rs.keep(o.Key, o.Size, r)
			mu.Lock()
			done++
			rt.Progress(Progress{Phase: "read", Done: done, Total: len(objs)})
			mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}

// routeIndexed routes an object the index holds (an empty segment for each
// day of its entry that gets no rows) and counts it in rs. A bad object is
// recorded (noteBad) and gives nil, nil.
func (rt *router) routeIndexed(ctx context.Context, o rawObject, ix *index.Index, rs *routeStats) (*routedObject, error) {
	var days []day.Day
	if e, ok := ix.Lookup(o.Key); ok {
		days = e.Days
	}
	r, err := rt.routeOne(ctx, o, days)
	if rt.noteBad(o, err, ix, rs) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", o.Key, err)
	}
	rs.add(o, r)
	return r, nil
}

// noteBad records o as bad if err says it is: the index called it good
// (an index made from the time columns only, or a segment went missing and
// the object turned out unreadable when read again); remembering it as bad
// makes the days it feeds and the day it arrived on consistent.
func (rt *router) noteBad(o rawObject, err error, ix *index.Index, rs *routeStats) bool {
	var bad *raw.BadObjectError
	if !errors.As(err, &bad) {
		return false
	}
	rs.add(o, nil)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	ix.MarkBad(o.Key, o.ETag, bad)
	d := day.Of(o.Hour.UnixMilli(), rt.Rules.Loc)
	rt.Log.Warn("bad raw object; counted and quarantined, its rows are not used", "key", o.Key, "day", d.String(), "reason", bad.Reason, "error", bad.Err.Error())
	rs.bad = append(rs.bad, BadObject{Key: o.Key, Day: d, Reason: bad.Reason, Error: bad.Err.Error()})
	return true
}

// dayInputs are one day's parts, read from its segments.
type dayInputs struct {
	parts   []*compact.Part
	objects int // input objects with rows (valid or not) on the day
}

// loadDay reads day p's segments, at most Parallel at a time. An object
// whose segment is missing or damaged (segments are a cache) is routed
// again now: read once more, its segments rewritten. The parts read are
// appended, as they come, to one part on one dictionary (frame.Events
// Rebase and AppendEvents: each string once), which Build takes as it is,
// without making the day's dictionary or copying its key columns: the
// part kept from routing if any (see keep), else a new one sized for the
// day (the index's row count).
func (rt *router) loadDay(ctx context.Context, p *dayPlan, objs map[string]rawObject, ix *index.Index, rs *routeStats) (*dayInputs, error) {
	keys := make([]string, 0, len(p.good))
	for k := range p.good {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	in := &dayInputs{}
	flat, kept, keptObjects := rs.takeKept(p.d, p.good)
	if flat != nil {
		in.objects = keptObjects
	} else {
		flat = newDayPart(int(p.rows))
	}
	dict := flat.Events.Dict
	var dictMu, flatMu sync.Mutex // one part is rebased while another is appended
	add := func(pt *compact.Part) error {
		dictMu.Lock()
		pt.Events.Rebase(dict)
		dictMu.Unlock()
		flatMu.Lock()
		defer flatMu.Unlock()
		if pt.Events.Len() > 0 || len(pt.Quarantine) > 0 {
			in.objects++
		}
		if err := flat.Events.AppendEvents(pt.Events); err != nil {
			return fmt.Errorf("day %s: %w", p.d, err)
		}
		flat.Quarantine = append(flat.Quarantine, pt.Quarantine...)
		flat.RepairedUTF8 += pt.RepairedUTF8
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(rt.Parallel)
	for _, k := range keys {
		o, ok := objs[k]
		if !ok {
			return nil, fmt.Errorf("day %s: input %s was not listed", p.d, k)
		}
		if kept[k] {
			continue
		}
		g.Go(func() error {
			s, _, err := segment.Read(gctx, rt.Store, rt.segmentKey(p.d, o.Object))
			var corrupt *segment.CorruptError
			switch {
			case err == nil:
				return add(&compact.Part{Events: s.Events, Quarantine: s.Quarantine, RepairedUTF8: s.RepairedUTF8})
			case errors.As(err, &corrupt):
				rt.Log.Warn("damaged segment; its raw object is read again", "segment", corrupt.Key, "error", corrupt.Err.Error())
			case !errors.Is(err, store.ErrNotExist):
				return err
			}
			r, err := rt.routeIndexed(gctx, o, ix, rs)
			if err != nil || r == nil || r.parts[p.d] == nil {
				return err // nil for a bad object
			}
			return add(r.parts[p.d])
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	in.parts = []*compact.Part{flat}
	return in, nil
}

// listSegments returns the segments of days ds.
func (rt *router) listSegments(ctx context.Context, ds []day.Day) (map[string]bool, error) {
	have := map[string]bool{}
	for _, d := range ds {
		objs, err := rt.Store.List(ctx, segment.DayPrefix(d))
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			have[o.Key] = true
		}
	}
	return have, nil
}

// dropSegments deletes the segments of days ds that belong to no listed
// raw object (it was deleted, replaced or routed under other rules):
// segments never outlive their object.
func (rt *router) dropSegments(ctx context.Context, ds []day.Day, have map[string]bool, objs map[string]rawObject) (int, error) {
	var gone []string
	for k := range have {
		d, rawKey, tag, ok := segment.Parse(k)
		if !ok || !strings.HasPrefix(rawKey, rt.RawPrefix) {
			continue // not ours to judge
		}
		if o, listed := objs[rawKey]; listed && segment.Tag(o.Key, o.ETag, rt.routeRules()) == tag {
			continue
		}
		if !dayIn(d, ds) {
			continue
		}
		gone = append(gone, k)
	}
	sort.Strings(gone)
	for _, k := range gone {
		if err := rt.Store.Delete(ctx, k); err != nil {
			return 0, fmt.Errorf("delete segment %s: %w", k, err)
		}
		delete(have, k)
	}
	return len(gone), nil
}

func dayIn(d day.Day, ds []day.Day) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

// Pending lists the raw objects a run over cfg's range would read when it
// indexes new objects: those with no index entry yet (under cfg's rules).
// It reads and writes nothing else. A Lambda coordinator hands them to
// route workers (RouteObjects), records their entries (AddEntries), and
// only then plans.
func Pending(ctx context.Context, cfg Config) ([]index.ObjectRef, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if err := checkIsWarehouse(ctx, cfg.Store, cfg.RawPrefix, cfg.ErrorPrefix); err != nil {
		return nil, err
	}
	if err := checkTimeZone(ctx, cfg.Store, cfg.Rules.Loc); err != nil {
		return nil, err
	}
	lo, _ := cfg.window(cfg.From)
	_, hi := cfg.window(cfg.To)
	objs, _, err := listRaw(ctx, cfg.Store, cfg.RawPrefix, lo, hi)
	if err != nil {
		return nil, err
	}
	ix, err := index.LoadHours(ctx, cfg.Store, lo, hi)
	if err != nil {
		return nil, err
	}
	var out []index.ObjectRef
	var mu sync.Mutex
	// Update finds the objects without an entry; the scan only notes them.
	_, err = ix.UpdateWith(ctx, cfg.Store, refsOf(objs), cfg.Rules, 1, func(_ context.Context, o index.ObjectRef) (index.Entry, error) {
		mu.Lock()
		out = append(out, o)
		mu.Unlock()
		return index.Entry{}, store.ErrNotExist
	})
	return out, err
}

func refsOf(objs []rawObject) []index.ObjectRef {
	refs := make([]index.ObjectRef, len(objs))
	for i, o := range objs {
		refs[i] = index.ObjectRef{Key: o.Key, ETag: o.ETag, Size: o.Size, Hour: o.Hour}
	}
	return refs
}

// RouteObjects reads each of refs whole, once (at most Parallel at a
// time), writes its segments, and returns its index entry (Bad set for a
// bad object). It writes nothing to the index: the caller records the
// entries with AddEntries. It is what a Lambda route worker runs.
func RouteObjects(ctx context.Context, cfg Config, refs []index.ObjectRef) ([]index.Entry, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	scan := (&router{Config: &cfg}).routeScan(&routeStats{})
	out := make([]index.Entry, len(refs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Parallel)
	for i, ref := range refs {
		g.Go(func() error {
			e, err := scan(gctx, ref)
			if errors.Is(err, store.ErrNotExist) {
				return nil // deleted since it was listed: the next run sees it gone
			}
			if err != nil {
				return fmt.Errorf("route %s: %w", ref.Key, err)
			}
			out[i] = e
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(out, func(e index.Entry) bool { return e.Key == "" }), nil
}

// AddEntries records index entries made by RouteObjects (in other
// processes) in the index, under cfg's rules.
func AddEntries(ctx context.Context, cfg Config, entries []index.Entry) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	if len(entries) == 0 {
		return nil
	}
	lo, hi := entries[0].Hour, entries[0].Hour
	byKey := map[string]index.Entry{}
	for _, e := range entries {
		lo, hi = minTime(lo, e.Hour), maxTime(hi, e.Hour)
		byKey[e.Key] = e
	}
	hi = hi.Add(time.Hour)
	// The whole listing of those hours, so that Update drops nothing it
	// should keep; objects listed without an entry given are left for the
	// next run to index.
	objs, _, err := listRaw(ctx, cfg.Store, cfg.RawPrefix, lo, hi)
	if err != nil {
		return err
	}
	ix, err := index.LoadHours(ctx, cfg.Store, lo, hi)
	if err != nil {
		return err
	}
	_, err = ix.UpdateWith(ctx, cfg.Store, refsOf(objs), cfg.Rules, 1, func(_ context.Context, o index.ObjectRef) (index.Entry, error) {
		if e, ok := byKey[o.Key]; ok && e.ETag == o.ETag && e.Size == o.Size {
			return e, nil
		}
		return index.Entry{}, store.ErrNotExist
	})
	if err != nil {
		return err
	}
	return ix.Save(ctx, cfg.Store)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
