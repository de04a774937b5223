package job

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"golang.org/x/sync/errgroup"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// Option changes how Run or BuildDays runs, not what a day holds.
type Option func(*options)

type options struct {
	listedBefore time.Time
	readHook     func(key string) error  // test seam: called before each raw object is read
	dayHook      func(d day.Day) error   // test seam: called before a day is committed
	eraseHook    func(step string) error // test seam: called before each step of an erase
}

// ListedBefore leaves out raw objects the index does not hold that were
// written at or after t, as if they had not arrived yet: a Lambda day
// worker's, whose coordinator listed at t and had every object it listed
// routed and indexed first, so that an object arriving meanwhile is not
// read by every worker whose days it may feed. The next run reads it once.
func ListedBefore(t time.Time) Option { return func(o *options) { o.listedBefore = t } }

// run is one run's state: its stages and what they found so far. Nothing
// in it outlives the run.
type run struct {
	cfg      *Config
	id       string
	start    time.Time
	sum      *Summary
	opts     options
	router   *router
	pub      *publisher
	plan     *plan
	failures []conversionFailure // of the error objects the days being built need
	held     []*LockedError      // days another run held
	funnels  *rollups.Funnels    // whose funnel events the day builds write
}

func newRun(cfg Config, opts []Option) (*run, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	r := &run{cfg: &cfg, start: cfg.Now()}
	for _, o := range opts {
		o(&r.opts)
	}
	r.id = newRunID(r.start)
	r.sum = &Summary{Run: r.id}
	r.router = &router{Config: r.cfg, readHook: r.opts.readHook}
	r.pub = &publisher{Config: r.cfg, run: r.id, dayHook: r.opts.dayHook}
	return r, nil
}

// Run runs the job: it plans the range, routes the raw objects the stale
// days need (each once), builds and publishes those days, then the
// windowed tables, and registers what it published. Bad data (unreadable
// objects, invalid rows) never fails a run: it is counted, quarantined and
// reported in the Summary. An error means the run could not finish (the
// store failed, or ctx was canceled); what was published before it stays
// consistent, and running again finishes the work. A *PartialError says
// some days were held by another run and not built.
func Run(ctx context.Context, cfg Config, opts ...Option) (*Summary, error) {
	r, err := newRun(cfg, opts)
	if err != nil {
		return nil, err
	}
	if err := r.buildDays(ctx); err != nil {
		return r.result(err)
	}
	if r.sum.Windowed, err = (&windowed{r.pub}).runWindowed(ctx, r.id, r.changed()); err != nil {
		return r.result(fmt.Errorf("windowed tables: %w", err))
	}
	if err := r.cfg.register(ctx, r.sum.Windowed); err != nil {
		return r.result(err)
	}
	return r.result(nil)
}

// BuildDays is Run without the windowed stage and the registration: what
// a Lambda day worker runs, its coordinator running RunWindowed once every
// worker has published.
func BuildDays(ctx context.Context, cfg Config, opts ...Option) (*Summary, error) {
	r, err := newRun(cfg, opts)
	if err != nil {
		return nil, err
	}
	return r.result(r.buildDays(ctx))
}

// buildDays is stage 1: plan, route, then build and publish each stale day.
func (r *run) buildDays(ctx context.Context) error {
	var err error
	if r.plan, err = makePlan(ctx, r.router, true, r.opts.listedBefore); err != nil {
		return err
	}
	r.cfg.Log.Info("planned", "new_objects_routed", r.plan.routed.objects, "segments_written", r.plan.routed.segments, "seconds", r.cfg.Now().Sub(r.start).Seconds())
	r.sum.IgnoredKeys, r.sum.Earlier, r.sum.Scanned = r.plan.ignored, r.plan.earlier, r.plan.scanned
	if err := r.routeMissing(ctx); err != nil {
		return err
	}
	// A day's funnel events are only a head start for funnel_daily: with
	// no valid funnels.json, days are built without them.
	if r.funnels, err = LoadFunnels(ctx, r.cfg.Store); err != nil {
		r.cfg.Log.Warn("days built without funnel events", "error", err.Error())
	}
	if err := r.days(ctx); err != nil {
		return err
	}
	r.finishDays(ctx)
	return nil
}

// result finishes the summary: a run that returns an error before its
// plan is made returns no summary.
func (r *run) result(err error) (*Summary, error) {
	if r.plan == nil && err != nil {
		return nil, err
	}
	if err != nil {
		return r.sum, err
	}
	r.sum.Seconds = r.cfg.Now().Sub(r.start).Seconds()
	if len(r.held) > 0 {
		return r.sum, &PartialError{Held: r.held}
	}
	return r.sum, nil
}

// routeMissing deletes the segments of objects gone or changed, routes
// every object a stale day needs that has no segment of it yet (each is
// read once, whatever the number of days it feeds), and reads the
// conversion failures those days need.
func (r *run) routeMissing(ctx context.Context) error {
	pl, cfg := r.plan, r.cfg
	for _, p := range pl.days {
		if p.build {
			r.sum.BadObjects = append(r.sum.BadObjects, p.bad...)
		}
	}
	if n, err := r.router.dropSegments(ctx, pl.rangeDays, pl.segs, pl.byKey); err != nil {
		return err
	} else if n > 0 {
		cfg.Log.Info("segments of raw objects gone or changed deleted", "segments", n)
	}
	if err := r.router.route(ctx, pl.toRoute(cfg), pl.ix, pl.routed); err != nil {
		return err
	}
	var err error
	if r.failures, err = readAllFailures(ctx, cfg.Store, pl.errorObjectsNeeded(), cfg.Parallel); err != nil {
		return err
	}
	if err := pl.ix.Save(ctx, cfg.Store); err != nil {
		cfg.Log.Warn("raw object index not saved; the next run rescans", "error", err.Error())
	}
	return nil
}

// readAllFailures reads the conversion failures of objs, at most parallel
// at a time, sorted so that outputs never depend on the order of reads.
func readAllFailures(ctx context.Context, st store.Store, objs []rawObject, parallel int) ([]conversionFailure, error) {
	var failures []conversionFailure
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, o := range objs {
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
		return nil, err
	}
	sort.Slice(failures, func(i, j int) bool {
		a, b := failures[i], failures[j]
		return cmp.Or(strings.Compare(a.Source, b.Source), cmp.Compare(a.Arrival, b.Arrival),
			strings.Compare(a.Code, b.Code), strings.Compare(a.Message, b.Message)) < 0
	})
	return failures, nil
}

// days builds every stale day, the range's last first: its parts routed
// in this run are still in memory (routeStats.keep), and are dropped once
// it is built, before any other day is loaded.
func (r *run) days(ctx context.Context) error {
	order := slices.Clone(r.plan.days)
	if i := slices.IndexFunc(order, func(p *dayPlan) bool { return p.d == r.cfg.To && p.build }); i > 0 {
		p := order[i]
		order = append([]*dayPlan{p}, slices.Delete(order, i, i+1)...)
	}
	total, built := 0, 0
	for _, p := range order {
		if p.build {
			total++
		}
	}
	for n, p := range order {
		if n == 1 {
			r.plan.routed.forget() // the first day was the kept one, if any
		}
		if !p.build {
			r.sum.Days = append(r.sum.Days, DaySummary{Day: p.d, Skipped: true, Why: p.why})
			r.pub.cleanupUpToDate(ctx, p.d)
			continue
		}
		ds, err := r.day(ctx, p)
		if err != nil {
			return err
		}
		r.sum.Days = append(r.sum.Days, ds)
		if !ds.Skipped {
			built++
			r.cfg.Progress(Progress{Phase: "build", Done: built, Total: total, Day: p.d})
		}
	}
	return nil
}

// day builds and publishes one stale day under its leases. A day another
// run holds, or has published meanwhile, is skipped.
func (r *run) day(ctx context.Context, p *dayPlan) (DaySummary, error) {
	t0 := time.Now()
	locks, unlock, err := r.pub.lockDay(ctx, p.d, r.cfg.LockWait)
	var locked *LockedError
	if errors.As(err, &locked) {
		// Another run is writing the day: leave it to that run (or the
		// next one), build the others, and say the run was partial.
		r.cfg.Log.Warn("day skipped: another rollup holds it", "day", p.d.String(), "error", err.Error())
		r.held = append(r.held, locked)
		return DaySummary{Day: p.d, Skipped: true, Why: "held by another rollup; not built"}, nil
	}
	if err != nil {
		return DaySummary{}, err
	}
	// Staleness again, under the lease: another run may have published
	// the day since this one planned it.
	if build, why, err := stale(ctx, r.cfg.Store, p, r.cfg.Force); err != nil || !build {
		_ = unlock()
		return DaySummary{Day: p.d, Skipped: true, Why: why + " (built meanwhile by another run)"}, err
	}
	ds, err := r.buildDay(ctx, p, locks)
	if kerr := unlock(); err == nil && kerr != nil {
		err = kerr
	}
	if err != nil {
		return DaySummary{}, fmt.Errorf("day %s: %w", p.d, err)
	}
	ds.Seconds = time.Since(t0).Seconds()
	return ds, nil
}

// buildDay reads day p's parts (router), builds its tables (dayBuilder)
// and publishes them (publisher).
func (r *run) buildDay(ctx context.Context, p *dayPlan, locks lease.Group) (DaySummary, error) {
	t0 := time.Now()
	in, err := r.router.loadDay(ctx, p, r.plan.byKey, r.plan.ix, r.plan.routed)
	if err != nil {
		return DaySummary{}, err
	}
	r.cfg.Log.Info("day's segments read", "day", p.d.String(), "objects", in.objects, "seconds", time.Since(t0).Seconds())
	b := &dayBuilder{Config: r.cfg, bad: append(slices.Clone(r.sum.BadObjects), r.plan.routed.bad...), failures: r.failures, funnels: r.funnels}
	return b.build(ctx, r.pub, newRunID(r.cfg.Now()), p, in, locks)
}

// finishDays completes the summary of stage 1.
func (r *run) finishDays(ctx context.Context) {
	rs, sum := r.plan.routed, r.sum
	sum.BadObjects = append(sum.BadObjects, rs.bad...)
	sort.Slice(sum.BadObjects, func(i, j int) bool { return sum.BadObjects[i].Key < sum.BadObjects[j].Key })
	sum.RawObjects, sum.RawBytes = rs.objects, rs.rawBytes
	sum.SegmentsWritten, sum.SegmentBytes = rs.segments, rs.segBytes
	if rs.objects > 0 {
		// Objects routed while building (a segment was missing) may have been found bad.
		if err := r.plan.ix.Save(ctx, r.cfg.Store); err != nil {
			r.cfg.Log.Warn("raw object index not saved; the next run rescans", "error", err.Error())
		}
	}
	slices.SortStableFunc(sum.Days, func(a, b DaySummary) int { return cmp.Compare(a.Day, b.Day) })
}

// changed lists the days the run built.
func (r *run) changed() []day.Day {
	var out []day.Day
	for _, d := range r.sum.Days {
		if !d.Skipped {
			out = append(out, d.Day)
		}
	}
	return out
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

// RunWindowed runs only the windowed stage: the windowed partitions that
// the days in changed feed, plus cfg's range, as of the last day with a
// published user_daily (what a Lambda coordinator does once its workers
// have published their days). It is idempotent like Run.
func RunWindowed(ctx context.Context, cfg Config, changed []day.Day) (*WindowedSummary, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	id := newRunID(cfg.Now())
	return (&windowed{&publisher{Config: &cfg, run: id}}).runWindowed(ctx, id, changed)
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
