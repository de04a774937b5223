// Package job runs the rollup job over a range of reporting days: it lists
// and reads the raw objects those days need (each once), builds every day's
// events and per-day rollups, and publishes them (docs/design.md §Processing model).
package job

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"golang.org/x/sync/errgroup"

	"github.com/littlewarehouse/warehouse/internal/catalog"
	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/index"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// CodeVersion is part of every fingerprint: bump it when a change to the
// code changes what a partition holds, and every day becomes stale.
const CodeVersion = "4"

// Config is one run of the job.
type Config struct {
	Store          store.Store
	From, To       day.Day // reporting days, inclusive
	Rules          compact.Rules
	RawPrefix      string // where Firehose writes, default "raw/"
	ErrorPrefix    string // where Firehose puts conversion failures, default "raw-errors/format-conversion-failed/"
	Parallel       int    // raw objects read at once
	TargetFileSize int64
	RowGroupSize   int64
	Force          bool          // rebuild days that are up to date
	GracePeriod    time.Duration // keep superseded runs this long (0: delete at once)
	SkipWindowed   bool          // stage 1 only (a Lambda worker); the coordinator runs RunWindowed
	// ListedAt, if set, leaves out raw objects the index does not hold
	// that were written after it, as if they had not arrived yet: a Lambda
	// day worker's, whose coordinator listed at ListedAt and had every
	// object it listed routed and indexed first, so that an object
	// arriving meanwhile is not read by every worker whose days it may
	// feed. The next run reads it once.
	ListedAt time.Time
	Catalog  catalog.Catalog        // where to register partitions; nil for none
	RawStart time.Time              // first raw hour, for the raw table's partition projection (zero: 2020)
	LockWait time.Duration          // how long to wait for another writer's lease on a partition
	LockTTL  time.Duration          // how long a lease lasts unless renewed (default 30 minutes)
	Now      func() time.Time       // clock for run ids and manifests
	Progress func(Progress)         // optional; called from one goroutine at a time
	Log      *slog.Logger           // optional
	readHook func(key string) error // test hook: fail or stall a read
	dayHook  func(d day.Day) error  // test hook: called before a day is published

	// built is the user_daily run this process published last, and its
	// rows: the windowed stage takes them from here instead of reading
	// them back (usersState.readUserDaily).
	built struct {
		key  string // day/run
		rows []rollups.UserDaily
	}
	// heads are the generations of the users and windowed partitions
	// (table -> partition -> generation) read at the windowed stage's
	// start, before its inputs: what its commits build on.
	heads map[string]map[string]int64
}

// Progress reports how far a run is.
type Progress struct {
	Phase       string // "read" or "build"
	Done, Total int
	Day         day.Day
}

// BadObject is a raw object that could not be read.
type BadObject struct {
	Key    string
	Day    day.Day
	Reason string
	Error  string
}

// DaySummary says what the run did for one day.
type DaySummary struct {
	Day          day.Day
	Skipped      bool   // up to date, not rebuilt
	Why          string // why it was (re)built or skipped
	Quality      rollups.DataQualityDaily
	EventsBefore int64 // events the day had before this run; -1 if it was never built
	// Restatements are the day's data_quality_daily numbers this build
	// changed (also appended to the restatements table).
	Restatements []Restated
	FilesWritten int
	BytesWritten int64
	Seconds      float64
}

// Summary is the result of a run.
type Summary struct {
	Run         string
	Days        []DaySummary
	BadObjects  []BadObject
	IgnoredKeys []string // objects under the raw prefix not read: not in the hourly layout, or named _* or .*
	// Earlier are days before the run's range that hold rows of objects
	// this run listed, and whose published tables do not include those
	// objects (or that were never built): their rows are counted nowhere
	// until those days are built. Reported, not built.
	Earlier    []EarlierDay
	Windowed   *WindowedSummary // stage 2; nil if no user_daily is published yet
	RawObjects int              // raw objects read (routed into segments)
	// SegmentsWritten are the segments the raw objects read were split
	// into (one per object and day), SegmentBytes their size.
	SegmentsWritten int
	SegmentBytes    int64
	Scanned         int // new objects indexed (a run reads them whole, routing them, as it indexes them)
	RawBytes        int64
	Seconds         float64
}

func (c *Config) defaults() error {
	if c.Store == nil {
		return errors.New("job: no store")
	}
	if c.From > c.To {
		return fmt.Errorf("from %s is after to %s", c.From, c.To)
	}
	if c.Rules.Loc == nil {
		c.Rules = compact.DefaultRules(time.UTC)
	}
	if c.RawPrefix == "" {
		c.RawPrefix = "raw/"
	}
	if c.ErrorPrefix == "" {
		c.ErrorPrefix = "raw-errors/format-conversion-failed/"
	}
	if c.Parallel <= 0 {
		c.Parallel = 8
	}
	if c.TargetFileSize <= 0 {
		c.TargetFileSize = 256 << 20
	}
	if c.RowGroupSize <= 0 {
		c.RowGroupSize = 64 << 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.LockTTL <= 0 {
		c.LockTTL = 30 * time.Minute
	}
	if c.Progress == nil {
		c.Progress = func(Progress) {}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// window is the range of arrival hours that can hold rows of day d. A row
// counts at most MaxAhead after its received_at, which is at most
// MaxReceivedAhead after its object's arrival hour; and at most MaxLateness
// before its received_at, which is at most MaxDeliveryDelay before the
// arrival hour. Rows outside these bounds are invalid and count on their
// arrival day (compact.PlausibleReceivedAt), so no row of d is in an object
// outside the window. An hour of slack covers the truncation to hours.
func (c *Config) window(d day.Day) (time.Time, time.Time) {
	return d.Start(c.Rules.Loc).Add(-(compact.MaxReceivedAhead + c.Rules.MaxAhead + time.Hour)),
		d.End(c.Rules.Loc).Add(c.Rules.MaxLateness + compact.MaxDeliveryDelay + time.Hour)
}

// configString is the part of the configuration a partition depends on.
func (c *Config) configMap() map[string]string {
	return map[string]string{
		"time_zone":        c.Rules.Loc.String(),
		"max_lateness":     c.Rules.MaxLateness.String(),
		"max_ahead":        c.Rules.MaxAhead.String(),
		"session_gap":      c.Rules.SessionGap.String(),
		"raw_prefix":       c.RawPrefix,
		"target_file_size": strconv.FormatInt(c.TargetFileSize, 10),
		"row_group_size":   strconv.FormatInt(c.RowGroupSize, 10),
	}
}

// fingerprint hashes what a day is computed from.
func fingerprint(cfg map[string]string, inputs []publish.Input) string {
	h := sha256.New()
	fmt.Fprintf(h, "code=%s\n", CodeVersion)
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\n", k, cfg[k])
	}
	for _, in := range inputs {
		fmt.Fprintf(h, "%s %s %d\n", in.Key, in.ETag, in.Size)
	}
	return hex.EncodeToString(h.Sum(nil))
}

type dayPlan struct {
	d           day.Day
	inputs      []publish.Input // what the day is computed from (its fingerprint)
	good        map[string]bool // readable raw objects among the inputs
	rows        int64           // their rows on the day, as the index counts them (0 if it does not)
	bad         []BadObject     // bad raw objects that arrived on the day
	fingerprint string
	build       bool
	why         string
	// provisional is the day's mark as planned (rollups.Provisional at the
	// run's Now); config is the configuration its manifests record, with
	// that mark under statusKey.
	provisional bool
	config      map[string]string
	base        map[string]int64 // each daily table's generation as stale last read it: the build commits the next (publish.CommitAfter)
}

// statusKey is the entry of a day table manifest's config that records the
// day's mark when it was built: "provisional" or "final" (rollups.Status).
const statusKey = "status"

// Run runs the job. Bad data (unreadable objects, invalid rows) never fails
// a run: it is counted, quarantined and reported in the Summary. An error
// means the run could not finish (the store failed, or ctx was canceled);
// what was published before it stays consistent, and running again finishes
// the work.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	start := cfg.Now()
	run := newRunID(start)
	sum := &Summary{Run: run}
	st := cfg.Store
	pl, err := cfg.plan(ctx, true)
	if err != nil {
		return nil, err
	}
	cfg.Log.Info("planned", "new_objects_routed", pl.routed.objects, "segments_written", pl.routed.segments, "seconds", cfg.Now().Sub(start).Seconds())
	sum.IgnoredKeys, sum.Earlier = pl.ignored, pl.earlier
	errObjs, plans := pl.errObjs, pl.days
	sum.Scanned = pl.scanned

	// Route every object some stale day needs and that has no segment of
	// it yet: each is read once, whatever the number of days it feeds.
	building := map[day.Day]*dayPlan{}
	var errNeed []rawObject
	for _, p := range plans {
		if !p.build {
			continue
		}
		building[p.d] = p
		sum.BadObjects = append(sum.BadObjects, p.bad...)
	}
	for _, o := range errObjs {
		for _, p := range building {
			if slices.ContainsFunc(p.inputs, func(in publish.Input) bool { return in.Key == o.Key }) {
				errNeed = append(errNeed, o)
				break
			}
		}
	}
	if n, err := cfg.dropSegments(ctx, pl.rangeDays, pl.segs, pl.byKey); err != nil {
		return sum, err
	} else if n > 0 {
		cfg.Log.Info("segments of raw objects gone or changed deleted", "segments", n)
	}
	rs := pl.routed
	restore := collectOften(gcPercent(rs.keepBytes >= bigDayRawBytes)) // as while routing new objects (see plan)
	err = cfg.route(ctx, pl.toRoute(&cfg), pl.ix, rs)
	restore()
	if err != nil {
		return sum, err
	}
	var failures []conversionFailure
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Parallel)
	for _, o := range errNeed {
		g.Go(func() error {
			fs, err := readFailures(gctx, st, o)
			if err != nil {
				return err
			}
			mu.Lock()
			failures = append(failures, fs...)
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return sum, err
	}
	if err := pl.ix.Save(ctx, st); err != nil {
		cfg.Log.Warn("raw object index not saved; the next run rescans", "error", err.Error())
	}
	// Read in completion order; sorted, so outputs never depend on it.
	sort.Slice(failures, func(i, j int) bool {
		a, b := failures[i], failures[j]
		return cmp.Or(strings.Compare(a.Source, b.Source), cmp.Compare(a.Arrival, b.Arrival),
			strings.Compare(a.Code, b.Code), strings.Compare(a.Message, b.Message)) < 0
	})

	nBuild := len(building)
	built := 0
	var held []*LockedError
	// The range's last day first: its parts routed in this run are still
	// in memory (see keep), and are dropped once it is built, before any
	// other day is loaded.
	order := slices.Clone(plans)
	if i := slices.IndexFunc(order, func(p *dayPlan) bool { return p.d == cfg.To && p.build }); i > 0 {
		p := order[i]
		order = append([]*dayPlan{p}, slices.Delete(order, i, i+1)...)
	}
	for n, p := range order {
		if n == 1 {
			rs.forget() // the first day was the kept one, if any
		}
		if !p.build {
			sum.Days = append(sum.Days, DaySummary{Day: p.d, Skipped: true, Why: p.why})
			// A run killed between its manifests and its cleanup leaves
			// superseded runs behind in days that are now up to date.
			// Only if no other run is writing the day now.
			if cfg.cleanupAtOnce() {
				if locks, err := cfg.lock(ctx, run, rollups.Daily, p.d, 0); err == nil {
					for _, t := range rollups.Daily {
						if m, err := publish.Current(ctx, st, t.Name, p.d); err == nil {
							if err := publish.Cleanup(ctx, st, t.Name, p.d, m.Run, cfg.GracePeriod, cfg.Now()); err != nil {
								cfg.Log.Warn("superseded runs not all deleted; the next run retries", "table", t.Name, "day", p.d.String(), "error", err.Error())
							}
						}
					}
					cfg.release(ctx, locks, "day", p.d.String())
				}
			}
			continue
		}
		t0 := time.Now()
		locks, err := cfg.lock(ctx, run, rollups.Daily, p.d, cfg.LockWait)
		var locked *LockedError
		if errors.As(err, &locked) {
			// Another run is writing the day: leave it to that run (or the
			// next one), build the others, and say the run was partial.
			cfg.Log.Warn("day skipped: another rollup holds it", "day", p.d.String(), "error", err.Error())
			sum.Days = append(sum.Days, DaySummary{Day: p.d, Skipped: true, Why: "held by another rollup; not built"})
			held = append(held, locked)
			continue
		}
		if err != nil {
			return sum, err
		}
		// Staleness again, under the lease: another run may have published
		// the day since this one planned it.
		if build, why, err := stale(ctx, st, p, cfg.Force); err != nil {
			cfg.release(ctx, locks, "day", p.d.String())
			return sum, err
		} else if !build {
			cfg.release(ctx, locks, "day", p.d.String())
			sum.Days = append(sum.Days, DaySummary{Day: p.d, Skipped: true, Why: why + " (built meanwhile by another run)"})
			continue
		}
		// The leases are renewed while the day builds, so a day longer than
		// their lifetime still publishes; a lease found lost stops it.
		stop := locks.KeepAlive(ctx, 0)
		ds, err := func() (DaySummary, error) {
			// The segments' decoded columns are garbage once appended to
			// the day's: collected as often as while building.
			restore := collectOften(gcPercent(p.rows >= bigDayEvents))
			in, err := cfg.loadDay(ctx, p, pl.byKey, pl.ix, rs)
			restore()
			if err != nil {
				return DaySummary{}, err
			}
			cfg.Log.Info("day's segments read", "day", p.d.String(), "objects", in.objects, "seconds", time.Since(t0).Seconds())
			bad := append(slices.Clone(sum.BadObjects), rs.bad...)
			return cfg.buildDay(ctx, newRunID(cfg.Now()), p, in.parts, in.objects, bad, failures, locks)
		}()
		if kerr := stop(); err == nil && kerr != nil {
			err = kerr
		}
		cfg.release(ctx, locks, "day", p.d.String())
		// The day's columns are garbage now, but the collector is back to
		// its usual pace (see collectOften), which would let the next day
		// or the users stage grow the heap to twice the day before
		// collecting them.
		runtime.GC()
		if err != nil {
			return sum, fmt.Errorf("day %s: %w", p.d, err)
		}
		ds.Seconds = time.Since(t0).Seconds()
		sum.Days = append(sum.Days, ds)
		built++
		cfg.Progress(Progress{Phase: "build", Done: built, Total: nBuild, Day: p.d})
	}
	sum.BadObjects = append(sum.BadObjects, rs.bad...)
	sort.Slice(sum.BadObjects, func(i, j int) bool { return sum.BadObjects[i].Key < sum.BadObjects[j].Key })
	sum.RawObjects, sum.RawBytes = rs.objects, rs.rawBytes
	sum.SegmentsWritten, sum.SegmentBytes = rs.segments, rs.segBytes
	if rs.objects > 0 {
		// Objects routed while building (a segment was missing) may have been found bad.
		if err := pl.ix.Save(ctx, st); err != nil {
			cfg.Log.Warn("raw object index not saved; the next run rescans", "error", err.Error())
		}
	}
	slices.SortStableFunc(sum.Days, func(a, b DaySummary) int { return cmp.Compare(a.Day, b.Day) })
	var changed []day.Day
	for _, d := range sum.Days {
		if !d.Skipped {
			changed = append(changed, d.Day)
		}
	}
	if !cfg.SkipWindowed {
		if sum.Windowed, err = cfg.runWindowed(ctx, run, changed); err != nil {
			return sum, fmt.Errorf("windowed tables: %w", err)
		}
		if err := cfg.register(ctx, sum.Windowed); err != nil {
			return sum, err
		}
	}
	sum.Seconds = cfg.Now().Sub(start).Seconds()
	if len(held) > 0 {
		return sum, &PartialError{Held: held}
	}
	return sum, nil
}

// PartialError says a run built every day it could, but some were held by
// another rollup and were not built: run again once that one has finished.
type PartialError struct{ Held []*LockedError }

func (e *PartialError) Error() string {
	var days []string
	for _, h := range e.Held {
		days = append(days, h.Day.String())
	}
	return fmt.Sprintf("partial run: %d days not built because another rollup holds them (%s); the other days are published. %v",
		len(e.Held), strings.Join(days, ", "), e.Held[0])
}

func (e *PartialError) Unwrap() error { return e.Held[0] }

// EarlierDay is a day before the run's range with rows this run saw but no
// published table counts (see Summary.Earlier).
type EarlierDay struct {
	Day     day.Day
	Objects int    // listed objects with rows of the day that its build lacks
	Why     string // "never built" or "built without them"
}

// planned is what the planner found: the objects listed and each day's plan.
type planned struct {
	objs, errObjs []rawObject
	ignored       []string
	earlier       []EarlierDay
	days          []*dayPlan
	ix            *index.Index
	scanned       int // objects newly scanned into the index
	rangeDays     []day.Day
	byKey         map[string]rawObject // objs by key
	segs          map[string]bool      // the segments of the range's days
	routed        *routeStats          // new objects routed while indexing (nil for a plan)
}

// toRoute returns the objects a stale day needs whose segment of that day
// is missing: the raw objects the run reads, each once, sorted by key.
func (pl *planned) toRoute(c *Config) []rawObject {
	need := map[string]bool{}
	for _, p := range pl.days {
		if !p.build {
			continue
		}
		for k := range p.good {
			if o, ok := pl.byKey[k]; ok && !pl.segs[c.segmentKey(p.d, o.Object)] {
				need[k] = true
			}
		}
	}
	var out []rawObject
	for _, o := range pl.objs {
		if need[o.Key] {
			out = append(out, o)
		}
	}
	return out
}

// plan lists everything the range can need, once, and decides which days
// are stale.
//
// With route set, new objects are routed as they are indexed (see
// routeScan); without, planning writes nothing but the index.
func (cfg *Config) plan(ctx context.Context, route bool) (*planned, error) {
	st := cfg.Store
	if err := checkIsWarehouse(ctx, st, cfg.RawPrefix, cfg.ErrorPrefix); err != nil {
		return nil, err
	}
	// A plan records no zone: it only checks the one a run recorded.
	if route {
		if err := checkTimeZone(ctx, st, cfg.Rules.Loc); err != nil {
			return nil, err
		}
	} else if err := CheckZone(ctx, st, cfg.Rules.Loc); err != nil {
		return nil, err
	}
	lo, _ := cfg.window(cfg.From)
	_, hi := cfg.window(cfg.To)
	objs, ignored, err := listRaw(ctx, st, cfg.RawPrefix, lo, hi)
	if err != nil {
		return nil, err
	}
	for _, k := range ignored {
		cfg.Log.Warn("object under the raw prefix not read: not in the YYYY/MM/DD/HH/ layout, or named _* or .* (not data)", "key", k)
	}
	errObjs, _, err := listHours(ctx, st, cfg.ErrorPrefix, cfg.From.Start(cfg.Rules.Loc).Add(-2*time.Hour), cfg.To.End(cfg.Rules.Loc).Add(2*time.Hour))
	if err != nil {
		return nil, err
	}
	pl := &planned{objs: objs, errObjs: errObjs, ignored: ignored}

	// The index says which days each object feeds, from its time columns
	// only; new objects are scanned now. It is a cache: failing to save it
	// costs a rescan next time, never a wrong answer.
	ix, err := index.LoadHours(ctx, st, lo, hi)
	if err != nil {
		return nil, err
	}
	if !cfg.ListedAt.IsZero() {
		var late int
		objs, late = arrivedBefore(objs, ix, cfg.ListedAt)
		pl.objs = objs
		if late > 0 {
			cfg.Log.Info("raw objects not indexed yet left for the next run", "objects", late)
		}
	}
	refs := refsOf(objs)
	// A run reads each new object whole, once: its segments and its
	// entry come from the same rows. A plan only scans the time columns.
	if route {
		pl.routed = &routeStats{keepDay: cfg.To, keeping: true}
		for _, o := range objs {
			if day.Of(o.Hour.UnixMilli(), cfg.Rules.Loc) == cfg.To {
				pl.routed.keepBytes += o.Size
			}
		}
		// The kept day grows while routing makes garbage at the rate it
		// reads: collected as often as while a day is built. A big day's
		// pace is set once its kept part is made (routeStats.keep), not
		// before: at GOGC 10 the heap's first tens of megabytes took 40 to
		// 60 collections in the first second.
		restore := func() {}
		if pl.routed.keepBytes < bigDayRawBytes {
			restore = collectOften(gcSmallPercent)
		}
		pl.scanned, err = ix.UpdateWith(ctx, st, refs, cfg.Rules, cfg.Parallel, cfg.routeScan(pl.routed))
		restore()
		pl.routed.endKeepGC()
	} else {
		pl.scanned, err = ix.Update(ctx, st, refs, cfg.Rules, cfg.Parallel)
	}
	if err != nil {
		return nil, err
	}
	for _, w := range ix.Warnings() {
		cfg.Log.Warn("raw object index: " + w)
	}
	if err := ix.Save(ctx, st); err != nil {
		cfg.Log.Warn("raw object index not saved; the next run rescans", "error", err.Error())
	}
	pl.ix = ix
	if pl.earlier, err = cfg.earlierDays(ctx, objs, ix); err != nil {
		return nil, err
	}
	for _, e := range pl.earlier {
		cfg.Log.Warn("a day before this run holds rows no published table counts; build it with --from/--to",
			"day", e.Day.String(), "objects", e.Objects, "why", e.Why)
	}

	pl.rangeDays = day.Range(cfg.From, cfg.To)
	pl.byKey = make(map[string]rawObject, len(objs))
	for _, o := range objs {
		pl.byKey[o.Key] = o
	}
	if pl.segs, err = cfg.listSegments(ctx, pl.rangeDays); err != nil {
		return nil, err
	}
	cfgMap := cfg.configMap()
	for _, d := range pl.rangeDays {
		p := &dayPlan{d: d, good: map[string]bool{}}
		wlo, whi := cfg.window(d)
		for _, e := range ix.InputsOf(d) {
			if !e.Hour.Before(wlo) && e.Hour.Before(whi) {
				p.inputs = append(p.inputs, publish.Input{Key: e.Key, ETag: e.ETag, Size: e.Size})
				p.good[e.Key] = true
				if j := slices.Index(e.Days, d); j >= 0 && len(e.DayRows) == len(e.Days) {
					p.rows += e.DayRows[j]
				}
			}
		}
		for _, e := range ix.BadIn(d, cfg.Rules.Loc) {
			p.inputs = append(p.inputs, publish.Input{Key: e.Key, ETag: e.ETag, Size: e.Size})
			p.bad = append(p.bad, BadObject{Key: e.Key, Day: d, Reason: e.Bad, Error: e.Detail})
		}
		elo, ehi := d.Start(cfg.Rules.Loc).Add(-2*time.Hour), d.End(cfg.Rules.Loc).Add(2*time.Hour)
		for _, o := range errObjs {
			if !o.Hour.Before(elo) && o.Hour.Before(ehi) {
				p.inputs = append(p.inputs, publish.Input{Key: o.Key, ETag: o.ETag, Size: o.Size})
			}
		}
		// The day's mark is part of what it is computed from: a day built
		// provisional is stale once it turns final, and the next run over it
		// rebuilds it (from its segments) with the mark final.
		p.provisional = rollups.Provisional(d, cfg.Rules.Loc, cfg.Rules.MaxLateness, cfg.Now())
		p.config = maps.Clone(cfgMap)
		p.config[statusKey] = rollups.Status(p.provisional)
		p.fingerprint = fingerprint(p.config, p.inputs)
		p.build, p.why, err = stale(ctx, st, p, cfg.Force)
		if err != nil {
			return nil, err
		}
		pl.days = append(pl.days, p)
	}
	return pl, nil
}

// earlierDays finds the days before cfg.From that listed objects hold rows
// of (from the index) whose current build lacks those objects: late rows
// that the run's range does not reach. Their rows are not lost (the objects
// stay), but no table counts them until the day is built.
func (cfg *Config) earlierDays(ctx context.Context, objs []rawObject, ix *index.Index) ([]EarlierDay, error) {
	feeds := map[day.Day][]rawObject{}
	for _, o := range objs {
		e, ok := ix.Lookup(o.Key)
		if !ok {
			continue
		}
		for _, d := range e.Days {
			if d < cfg.From {
				feeds[d] = append(feeds[d], o)
			}
		}
	}
	var out []EarlierDay
	for _, d := range sortedDays(dayKeys(feeds)) {
		// quarantine is the last daily table a build commits.
		m, err := publish.Current(ctx, cfg.Store, "quarantine", d)
		if errors.Is(err, store.ErrNotExist) {
			out = append(out, EarlierDay{Day: d, Objects: len(feeds[d]), Why: "never built"})
			continue
		}
		if err != nil {
			return nil, err
		}
		have := map[string]string{}
		for _, in := range m.Inputs {
			have[in.Key] = in.ETag
		}
		missing := 0
		for _, o := range feeds[d] {
			if etag, ok := have[o.Key]; !ok || etag != o.ETag {
				missing++
			}
		}
		if missing > 0 {
			out = append(out, EarlierDay{Day: d, Objects: missing, Why: "built without them"})
		}
	}
	return out, nil
}

// arrivedBefore returns the objects ix holds an entry of (same ETag and
// size) or that were written before t, and how many it left out.
func arrivedBefore(objs []rawObject, ix *index.Index, t time.Time) ([]rawObject, int) {
	var out []rawObject
	for _, o := range objs {
		if e, ok := ix.Lookup(o.Key); ok && e.ETag == o.ETag && e.Size == o.Size || o.ModTime.Before(t) {
			out = append(out, o)
		}
	}
	return out, len(objs) - len(out)
}

func dayKeys[V any](m map[day.Day]V) map[day.Day]bool {
	out := make(map[day.Day]bool, len(m))
	for d := range m {
		out[d] = true
	}
	return out
}

// RunWindowed runs only the windowed stage: the windowed partitions that
// the days in changed feed, plus cfg's range, as of the last day with a
// published user_daily (what a Lambda coordinator does once its workers
// have published their days). It is idempotent like Run.
func RunWindowed(ctx context.Context, cfg Config, changed []day.Day) (*WindowedSummary, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	return cfg.runWindowed(ctx, newRunID(cfg.Now()), changed)
}

var (
	runIDMu      sync.Mutex
	runIDEntropy = ulid.Monotonic(rand.Reader, 0)
)

// newRunID returns a ULID: run ids made one after another in a process sort
// in the order they were made, even within one millisecond.
func newRunID(now time.Time) string {
	runIDMu.Lock()
	defer runIDMu.Unlock()
	return ulid.MustNew(ulid.Timestamp(now), runIDEntropy).String()
}

// DayPlan says what a run would do for one day.
type DayPlan struct {
	Day        day.Day
	Build      bool
	Why        string
	Inputs     int   // raw objects the day is computed from
	InputBytes int64 // their size
}

// PlanSummary is what Plan reports: the days, and the raw objects a run
// would read: each once, however many days it feeds, and only those not
// yet routed into segments.
type PlanSummary struct {
	Days      []DayPlan
	ReadBytes int64
	ReadCount int
	Route     []index.ObjectRef // the raw objects to read (RouteObjects routes them)
	// Windowed lists the windowed partitions a run would recompute
	// (active_users_daily days; retention cohorts), as far as they can be
	// known before the run.
	ActiveDays, Cohorts []day.Day
}

// Plan reports what Run would do with cfg, writing nothing.
func Plan(ctx context.Context, cfg Config) (*PlanSummary, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	pl, err := cfg.plan(ctx, false)
	if err != nil {
		return nil, err
	}
	out := &PlanSummary{}
	au, cohorts := map[day.Day]bool{}, map[day.Day]bool{}
	for _, o := range pl.toRoute(&cfg) {
		out.ReadBytes += o.Size
		out.ReadCount++
		out.Route = append(out.Route, index.ObjectRef{Key: o.Key, ETag: o.ETag, Size: o.Size, Hour: o.Hour})
	}
	for _, p := range pl.days {
		dp := DayPlan{Day: p.d, Build: p.build, Why: p.why, Inputs: len(p.inputs)}
		for _, in := range p.inputs {
			dp.InputBytes += in.Size
		}
		if p.build {
			lo, hi := rollups.ActiveUsersAffected(p.d)
			for d := lo; d <= hi; d++ {
				au[d] = true
			}
			for _, d := range rollups.RetentionAffected(p.d) {
				cohorts[d] = true
			}
		}
		out.Days = append(out.Days, dp)
	}
	out.ActiveDays, out.Cohorts = sortedDays(au), sortedDays(cohorts)
	return out, nil
}

// lock takes the leases of the partitions of tables for day d, so that
// two runs (the nightly one and a manual backfill, say) never write one
// partition at once. It waits up to LockWait for another holder.
func (c *Config) lock(ctx context.Context, run string, tables []rollups.Table, d day.Day, wait time.Duration) (lease.Group, error) {
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.Name + "/dt=" + d.String()
	}
	g, err := lease.AcquireAll(ctx, c.Store, names, lease.HolderID(run), c.LockTTL, wait, c.Now, c.leaseOptions()...)
	var held *lease.HeldError
	if errors.As(err, &held) {
		return nil, &LockedError{Day: d, Held: held, Waited: wait}
	}
	return g, err
}

func (c *Config) leaseOptions() []lease.Option {
	opts := []lease.Option{lease.WithWaitLog(c.Log, 0)} // no silent wait: say who holds it, until when
	if _, local := c.Store.(*store.Dir); local {
		// A killed rollup on this machine must not block the next for
		// the lease's whole lifetime.
		opts = append(opts, lease.WithDeadHolder(lease.DeadLocalProcess))
	}
	return opts
}

// release releases a lease (or a group of them) even when ctx is done, and
// logs a failure: Release has retried by then, and its error names the
// lease object to delete and when it expires by itself. what and id name
// what the lease protects, for the log.
func (c *Config) release(ctx context.Context, l interface{ Release(context.Context) error }, what, id string) {
	if err := l.Release(context.WithoutCancel(ctx)); err != nil {
		c.Log.Error("lease not released", what, id, "error", err.Error())
	}
}

// LockedError says another run holds a partition this run needs.
type LockedError struct {
	Day    day.Day
	Held   *lease.HeldError
	Waited time.Duration
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("day %s is being written by another rollup (waited %s, see --lock-wait): %v", e.Day, e.Waited, e.Held)
}

func (e *LockedError) Unwrap() error { return e.Held }

// whyChanged says how a day's plan differs from its published manifest.
func whyChanged(m *publish.Manifest, p *dayPlan) string {
	inputs := p.inputs
	old := map[string]string{}
	for _, in := range m.Inputs {
		old[in.Key] = in.ETag
	}
	var added, changed int
	for _, in := range inputs {
		etag, ok := old[in.Key]
		switch {
		case !ok:
			added++
		case etag != in.ETag:
			changed++
		}
		delete(old, in.Key)
	}
	var why []string
	if added > 0 {
		why = append(why, fmt.Sprintf("%d new objects", added))
	}
	if changed > 0 {
		why = append(why, fmt.Sprintf("%d changed objects", changed))
	}
	if len(old) > 0 {
		why = append(why, fmt.Sprintf("%d objects gone", len(old)))
	}
	if len(why) == 0 {
		if m.CodeVersion != CodeVersion {
			return "code changed (v" + m.CodeVersion + " -> v" + CodeVersion + ")"
		}
		if was, now := m.Config[statusKey], p.config[statusKey]; was != now && maps.EqualFunc(withoutStatus(m.Config), withoutStatus(p.config), func(a, b string) bool { return a == b }) {
			return "turned " + now + " (was " + was + ")"
		}
		return "config changed"
	}
	return strings.Join(why, ", ")
}

// stale decides whether day d must be built: it must unless every daily
// table's current manifest has the same fingerprint.
func stale(ctx context.Context, st store.Store, p *dayPlan, force bool) (bool, string, error) {
	d, fp := p.d, p.fingerprint
	p.base = map[string]int64{}
	build, why := false, ""
	for _, t := range rollups.Daily {
		m, err := publish.Current(ctx, st, t.Name, d)
		if errors.Is(err, store.ErrNotExist) {
			build, why = true, cmp.Or(why, "never built")
			continue
		}
		if err != nil {
			return false, "", err
		}
		p.base[t.Name] = m.Generation
		if m.Fingerprint != fp && !build {
			// A build by this code and config from raw objects this plan
			// lacks, still there, is newer than this plan: never publish
			// over it.
			if m.CodeVersion == CodeVersion && maps.Equal(withoutStatus(m.Config), withoutStatus(p.config)) {
				if covers, err := publish.Covers(ctx, st, p.inputs, m.Inputs); err != nil || !covers {
					return false, "built meanwhile from newer raw objects; the next run plans the day again", err
				}
			}
			build, why = true, whyChanged(m, p)
		}
	}
	if build {
		return true, why, nil
	}
	if force {
		return true, "up to date, rebuilt (--force)", nil
	}
	return false, "up to date", nil
}

// withoutStatus returns cfg without statusKey.
func withoutStatus(cfg map[string]string) map[string]string {
	out := maps.Clone(cfg)
	delete(out, statusKey)
	return out
}
