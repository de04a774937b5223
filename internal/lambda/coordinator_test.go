package lambda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/metrics"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// fixture is a local store with two days of eventgen data, and a copy.
type fixture struct {
	st, copy store.Store
	env      *Env
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{}
	for _, p := range []*store.Store{&f.st, &f.copy} {
		st, err := store.OpenDir(t.TempDir(), false)
		if err != nil {
			t.Fatal(err)
		}
		d1 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
		if _, err := gen.Generate(ctx, st, gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 1), EventsPerDay: 600, ObjectsPerHour: 1, Seed: 5})); err != nil {
			t.Fatal(err)
		}
		*p = st
	}
	cfg, err := ConfigFromEnv(env(map[string]string{EnvRole: RoleWorker, EnvStore: "/unused"}))
	if err != nil {
		t.Fatal(err)
	}
	f.env = &Env{Config: cfg, Store: f.st, Log: slog.New(slog.DiscardHandler)}
	return f
}

// coordinate runs Coordinate over [from, to] with inv under a minute's
// deadline (so that a part or day waited for in vain ends pending rather
// than hanging the test), waits for the workers' goroutines (wg), and
// fails t on an error.
func coordinate(t *testing.T, f *fixture, from, to day.Day, inv Invoker, wg *sync.WaitGroup, opts Options) *RunSummary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sum, err := Coordinate(ctx, f.env.jobConfig(from, to), inv, opts)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// asyncWorkers is an Invoker that runs each worker in a goroutine, like an
// asynchronous Lambda invocation, each with its own deadline.
type asyncWorkers struct {
	env     *Env
	timeout time.Duration
	mu      sync.Mutex
	order   []string // days, in the order they were invoked
	routes  []int    // route parts, in the order they were invoked
	wg      sync.WaitGroup
	results []*WorkerResult
	routed  []*RouteResult
}

func (a *asyncWorkers) Invoke(_ context.Context, ev WorkerEvent) error {
	req, err := parseWorkerEvent(ev)
	if err != nil {
		return err
	}
	a.mu.Lock()
	if req.Kind == KindRoute {
		a.routes = append(a.routes, req.Part)
	} else {
		a.order = append(a.order, ev.Day)
	}
	a.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
		defer cancel()
		if req.Kind == KindRoute {
			res, _ := RunRouteWorker(ctx, a.env, req)
			a.mu.Lock()
			a.routed = append(a.routed, res)
			a.mu.Unlock()
			return
		}
		res, _ := RunWorker(ctx, a.env, req)
		a.mu.Lock()
		a.results = append(a.results, res)
		a.mu.Unlock()
	}()
	return nil
}

// parseWorkerEvent is what a worker function makes of ev: its JSON,
// parsed.
func parseWorkerEvent(ev WorkerEvent) (Request, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return Request{}, err
	}
	return ParseEvent(b, time.UTC, time.Hour)
}

func TestCoordinateEqualsLocalRun(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var emf bytes.Buffer
	f.env.Metrics = metrics.New(&emf, "")
	from, to := mustDay(t, "2026-11-19"), mustDay(t, "2026-11-22")
	workers := &asyncWorkers{env: f.env, timeout: time.Minute}
	var progress []Progress
	sum := coordinate(t, f, from, to, workers, &workers.wg, Options{
		Progress: func(p Progress) { progress = append(progress, p) }, Metrics: f.env.Metrics,
	})
	if sum.Status != RunDone || sum.Planned != 4 || sum.Built != 4 || len(sum.Pending) != 0 || sum.Totals.KeptRows == 0 {
		t.Errorf("summary: %+v", sum)
	}
	if diff := cmp.Diff([]string{"2026-11-19", "2026-11-20", "2026-11-21", "2026-11-22"}, workers.order); diff != "" {
		t.Errorf("workers invoked out of day order (-want +got):\n%s", diff)
	}
	if len(progress) != 8 || progress[7].Done != 4 {
		t.Errorf("progress: %+v", progress)
	}
	for _, d := range sum.Days {
		if d.Worker == nil || d.Worker.Status != StatusBuilt {
			t.Errorf("%s: no worker report in the summary: %+v", d.Day, d)
		}
	}
	// The summary is in the store.
	b, err := f.st.Get(ctx, SummaryKey(sum.Run))
	if err != nil {
		t.Fatal(err)
	}
	var stored RunSummary
	if err := json.Unmarshal(b, &stored); err != nil || stored.Run != sum.Run || stored.Status != RunDone || stored.Windowed == nil {
		t.Errorf("stored summary: %+v, %v", stored, err)
	}
	// No HTML report unless asked for.
	if objs, err := f.st.List(ctx, "reports/"); err != nil || len(objs) != 0 || sum.HTMLReport != nil || bytes.Contains(b, []byte("html_report")) {
		t.Errorf("an HTML report without HTMLReport: %v, %v, %+v", objs, err, sum.HTMLReport)
	}
	// One EMF line per built day and one for the run.
	if n := strings.Count(emf.String(), `"Stage":"day"`); n != 4 {
		t.Errorf("%d day metric lines, want 4", n)
	}
	if n := strings.Count(emf.String(), `"Stage":"run"`); n != 1 {
		t.Errorf("%d run metric lines, want 1:\n%s", n, emf.String())
	}

	if _, err := job.Run(ctx, job.Config{Store: f.copy, From: from, To: to}); err != nil {
		t.Fatal(err)
	}
	snapshotsEqual(t, f.copy, f.st, from, to)

	// Again: nothing is stale, no worker is invoked, nothing changes.
	workers.order = nil
	sum, err = Coordinate(ctx, f.env.jobConfig(from, to), workers, Options{})
	if err != nil || sum.Planned != 0 || sum.Status != RunDone || len(workers.order) != 0 {
		t.Errorf("second run: %+v, %v, invoked %v", sum, err, workers.order)
	}
	snapshotsEqual(t, f.copy, f.st, from, to)
}

// reversedWorkers runs route events at once, and holds the day workers'
// events until n have come, then runs them one by one, latest day first.
type reversedWorkers struct {
	env    *Env
	n      int
	mu     sync.Mutex
	events []WorkerEvent
	done   chan struct{}
}

func (r *reversedWorkers) Invoke(ctx context.Context, ev WorkerEvent) error {
	if req, err := parseWorkerEvent(ev); err != nil || req.Kind == KindRoute {
		if err == nil {
			_, err = RunRouteWorker(ctx, r.env, req)
		}
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	if len(r.events) < r.n {
		return nil
	}
	evs := slices.Clone(r.events)
	go func() {
		defer close(r.done)
		for i := len(evs) - 1; i >= 0; i-- {
			b, _ := json.Marshal(evs[i])
			req, err := ParseEvent(b, time.UTC, time.Hour)
			if err != nil {
				panic(err)
			}
			RunWorker(context.Background(), r.env, req)
		}
	}()
	return nil
}

// TestWorkersInAnyOrder builds the days with workers that finish latest day
// first: the tables equal a local run's, byte for byte (no day's build
// depends on another's).
func TestWorkersInAnyOrder(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	from, to := mustDay(t, "2026-11-19"), mustDay(t, "2026-11-22")
	workers := &reversedWorkers{env: f.env, n: 4, done: make(chan struct{})}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	sum, err := Coordinate(cctx, f.env.jobConfig(from, to), workers, Options{Concurrency: 4})
	<-workers.done
	if err != nil {
		t.Fatal(err)
	}
	if sum.Status != RunDone || sum.Built != 4 {
		t.Errorf("summary: %+v", sum)
	}
	if _, err := job.Run(ctx, job.Config{Store: f.copy, From: from, To: to}); err != nil {
		t.Fatal(err)
	}
	snapshotsEqual(t, f.copy, f.st, from, to)
}

// snapshotsEqual compares what two stores publish around from..to
// (windowed partitions reach 28 days either side).
func snapshotsEqual(t *testing.T, want, got store.Store, from, to day.Day) {
	t.Helper()
	ctx := context.Background()
	w, err := job.Snapshot(ctx, want, from-30, to+30)
	if err != nil {
		t.Fatal(err)
	}
	g, err := job.Snapshot(ctx, got, from-30, to+30)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) == 0 {
		t.Fatal("nothing published")
	}
	if diff := cmp.Diff(w, g); diff != "" {
		t.Errorf("published data differs from a local run (-local +fan-out):\n%s", diff)
	}
}

// TestCoordinateDeadline: workers that never run leave every day pending
// at the deadline; the summary says so, and the next run builds them.
func TestCoordinateDeadline(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	from, to := mustDay(t, "2026-11-20"), mustDay(t, "2026-11-21")
	var lost []string
	lostParts := 0
	dropped := InvokerFunc(func(_ context.Context, ev WorkerEvent) error {
		if ev.Part > 0 {
			lostParts++
		} else {
			lost = append(lost, ev.Day)
		}
		return nil
	})
	cctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	sum, err := Coordinate(cctx, f.env.jobConfig(from, to), dropped, Options{Margin: 500 * time.Millisecond, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if cctx.Err() != nil {
		t.Errorf("the coordinator returned after its deadline, not before it less the margin")
	}
	if sum.Status != RunPartial || len(sum.Pending) != 2 || sum.Built != 0 || sum.Pending[0] != "2026-11-20" {
		t.Errorf("summary: %+v", sum)
	}
	// Concurrency 1: the second day is never dispatched while the first is
	// out. The lost route worker held the days back for half the wait
	// only: the day workers route what they need themselves.
	if len(lost) != 1 {
		t.Errorf("invoked %v, want only the first day", lost)
	}
	if r := sum.Route; lostParts != 1 || r == nil || r.Parts != 1 || r.Workers != 1 || r.Pending != 1 || !r.Fallback || r.Routed != 0 || r.Objects == 0 || r.Rounds != 1 || r.Skipped == 0 {
		t.Errorf("route phase: %+v, %d parts invoked; want one part, pending", r, lostParts)
	}
	b, err := f.st.Get(ctx, SummaryKey(sum.Run))
	if err != nil || !strings.Contains(string(b), `"pending": [`) {
		t.Errorf("stored summary: %s, %v", b, err)
	}

	workers := &asyncWorkers{env: f.env, timeout: time.Minute}
	sum, err = Coordinate(ctx, f.env.jobConfig(from, to), workers, Options{})
	workers.wg.Wait()
	if err != nil || sum.Status != RunDone || sum.Built != 2 {
		t.Errorf("next run: %+v, %v", sum, err)
	}
}

// TestCoordinateWait: with no deadline (rollup --dispatch from a laptop),
// Options.Wait bounds the wait for lost invocations: the run ends, the
// days pending, instead of waiting forever.
func TestCoordinateWait(t *testing.T) {
	f := newFixture(t)
	from, to := mustDay(t, "2026-11-20"), mustDay(t, "2026-11-21")
	dropped := InvokerFunc(func(context.Context, WorkerEvent) error { return nil })
	type result struct {
		sum *RunSummary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := Coordinate(context.Background(), f.env.jobConfig(from, to), dropped, Options{Wait: time.Second, Concurrency: 1})
		done <- result{sum, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the coordinator still waits for lost workers long after Options.Wait")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if sum := r.sum; sum.Status != RunPartial || len(sum.Pending) != 2 || sum.Built != 0 || sum.Deadline == nil ||
		sum.Route == nil || !sum.Route.Fallback {
		t.Errorf("summary: %+v, route %+v", sum, sum.Route)
	}
}

// TestCoordinatePermanentFailure: a day held by another live writer fails
// in its worker (no retry loop); the coordinator stops waiting for it at
// once, builds the other days, and the next run builds it.
func TestCoordinatePermanentFailure(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	from, to := mustDay(t, "2026-11-20"), mustDay(t, "2026-11-21")
	held, err := lease.Acquire(ctx, f.st, "quarantine/dt=2026-11-20", lease.HolderID("backfill"), time.Hour, 0, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	workers := &asyncWorkers{env: f.env, timeout: 2 * time.Second} // lock wait: a quarter of it
	sum := coordinate(t, f, from, to, workers, &workers.wg, Options{})
	if sum.Status != RunPartial || sum.Failed != 1 || sum.Built != 1 || sum.Days[0].Status != DayFailed ||
		!strings.Contains(sum.Days[0].Error, "being written by another rollup") {
		t.Errorf("summary: %+v", sum)
	}
	for _, r := range workers.results {
		if r.Day == "2026-11-20" && (r.Status != StatusFailed || r.ErrorClass != "permanent") {
			t.Errorf("worker result: %+v", r)
		}
	}
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	sum, err = Coordinate(ctx, f.env.jobConfig(from, to), workers, Options{})
	workers.wg.Wait()
	if err != nil || sum.Status != RunDone || sum.Built != 1 || sum.Planned != 1 {
		t.Errorf("next run: %+v, %v", sum, err)
	}
}

// TestWorkerTwice: the same worker event twice builds the day once.
func TestWorkerTwice(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	req := Request{Kind: KindWorker, Day: mustDay(t, "2026-11-20"), Run: "R1"}
	first, err := RunWorker(ctx, f.env, req)
	if err != nil || first.Status != StatusBuilt || first.Stats == nil || first.Stats.KeptRows == 0 {
		t.Fatalf("first: %+v, %v", first, err)
	}
	snap1, _ := job.Snapshot(ctx, f.st, req.Day, req.Day)
	second, err := RunWorker(ctx, f.env, req)
	if err != nil || second.Status != StatusCurrent || second.Stats != nil {
		t.Fatalf("second: %+v, %v", second, err)
	}
	snap2, _ := job.Snapshot(ctx, f.st, req.Day, req.Day)
	if diff := cmp.Diff(snap1, snap2); diff != "" {
		t.Errorf("the second invocation changed the day:\n%s", diff)
	}
	rep, err := readReport(ctx, f.st, "R1", req.Day)
	if err != nil || rep == nil || rep.Status != StatusCurrent {
		t.Errorf("report: %+v, %v", rep, err)
	}
}

// badDayReports runs workers as asyncWorkers does, except for day bad:
// its worker builds nothing and at once writes, as its report, what
// report returns for the coordinator's run.
type badDayReports struct {
	*asyncWorkers
	bad    day.Day
	report func(run string) []byte
}

func (w *badDayReports) Invoke(ctx context.Context, ev WorkerEvent) error {
	if ev.Day != w.bad.String() {
		return w.asyncWorkers.Invoke(ctx, ev)
	}
	w.mu.Lock()
	w.order = append(w.order, ev.Day)
	w.mu.Unlock()
	return w.env.Store.Put(ctx, ReportKey(ev.Run, w.bad), w.report(ev.Run))
}

// flakyReports is a store whose Get of a day report for day fails, as a
// network error would, the first n times the report is there.
type flakyReports struct {
	store.Store
	day day.Day
	mu  sync.Mutex
	n   int
}

func (s *flakyReports) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := s.Store.Get(ctx, key)
	if err == nil && strings.HasPrefix(key, RunsPrefix) && strings.HasSuffix(key, "/"+s.day.String()+".json") {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.n > 0 {
			s.n--
			return nil, errors.New("connection reset")
		}
	}
	return b, err
}

// TestBadDayReportFailsTheDay: a day report that is there but unusable
// (not JSON; about another day) fails its day at once, as a worker that
// reports a permanent failure does: the day is not waited for until the
// deadline, the other day is built, the run is partial with the day
// failed, and the next run builds it; the tables then equal a local
// run's. A report whose read fails is read again: its day is built in
// the same run.
func TestBadDayReportFailsTheDay(t *testing.T) {
	from, to := mustDay(t, "2026-11-20"), mustDay(t, "2026-11-21")
	bad := to
	for _, tc := range []struct {
		name   string
		report func(run string) []byte
		why    string
	}{
		{name: "garbage", report: func(string) []byte { return []byte("\x00\x01garbage\xff") }, why: "invalid character"},
		{name: "another day", report: func(run string) []byte {
			b, err := json.Marshal(&WorkerResult{Day: from.String(), Run: run, Status: StatusBuilt, Stats: &DayStats{KeptRows: 1 << 40}})
			if err != nil {
				panic(err)
			}
			return b
		}, why: `about day "2026-11-20", not 2026-11-21`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t)
			workers := &badDayReports{asyncWorkers: &asyncWorkers{env: f.env, timeout: time.Minute}, bad: bad, report: tc.report}
			// A deadline, so that a day waited for in vain ends as
			// pending rather than hanging the test.
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			t0 := time.Now()
			sum, err := Coordinate(cctx, f.env.jobConfig(from, to), workers, Options{})
			workers.wg.Wait()
			if err != nil {
				t.Fatal(err)
			}
			if sum.Status != RunPartial || sum.Planned != 2 || sum.Built != 1 || sum.Failed != 1 || len(sum.Pending) != 0 || len(sum.Days) != 2 {
				t.Fatalf("summary: %+v; want %s failed, the other day built", sum, bad)
			}
			r := sum.Days[1]
			if r.Day != bad.String() || r.Status != DayFailed || !strings.Contains(r.Error, "unreadable day report") ||
				!strings.Contains(r.Error, tc.why) || r.Worker != nil {
				t.Errorf("%s: %+v; want failed for its unreadable report, and no worker report", bad, r)
			}
			if r.Seconds > 10 || time.Since(t0) > 30*time.Second {
				t.Errorf("%s failed after %.1fs, the run took %s; want the day failed at its first check", bad, r.Seconds, time.Since(t0))
			}
			if sum.Days[0].Worker == nil || sum.Totals.KeptRows != sum.Days[0].Worker.Stats.KeptRows {
				t.Errorf("totals %+v: want the built day's alone", sum.Totals)
			}
			if b, err := f.st.Get(ctx, SummaryKey(sum.Run)); err != nil || !strings.Contains(string(b), "unreadable day report") {
				t.Errorf("stored summary: %s, %v", b, err)
			}

			// The next run builds the day, as after any failed day.
			good := &asyncWorkers{env: f.env, timeout: time.Minute}
			sum, err = Coordinate(cctx, f.env.jobConfig(from, to), good, Options{})
			good.wg.Wait()
			if err != nil || sum.Status != RunDone || sum.Planned != 1 || sum.Built != 1 || !slices.Equal(good.order, []string{bad.String()}) {
				t.Fatalf("next run: %+v, %v, invoked %v", sum, err, good.order)
			}
			if _, err := job.Run(ctx, job.Config{Store: f.copy, From: from, To: to}); err != nil {
				t.Fatal(err)
			}
			snapshotsEqual(t, f.copy, f.st, from, to)
		})
	}

	t.Run("read fails", func(t *testing.T) {
		ctx := context.Background()
		f := newFixture(t)
		flaky := &flakyReports{Store: f.st, day: bad, n: 3}
		f.env.Store = flaky
		workers := &asyncWorkers{env: f.env, timeout: time.Minute}
		sum := coordinate(t, f, from, to, workers, &workers.wg, Options{})
		if flaky.n != 0 {
			t.Fatalf("the report of %s was never read while there: the test does not test what it should", bad)
		}
		if sum.Status != RunDone || sum.Built != 2 || sum.Failed != 0 {
			t.Fatalf("summary: %+v; want both days built, the failing reads retried", sum)
		}
		// Whether the day was seen done by its report or by its manifests
		// (the report written just after), the summary holds its report.
		if r := sum.Days[1]; r.Worker == nil || sum.Totals.KeptRows != sum.Days[0].Worker.Stats.KeptRows+r.Worker.Stats.KeptRows {
			t.Errorf("%s: worker report %+v, totals %+v; want its report read and counted", bad, r.Worker, sum.Totals)
		}
		if _, err := job.Run(ctx, job.Config{Store: f.copy, From: from, To: to}); err != nil {
			t.Fatal(err)
		}
		snapshotsEqual(t, f.copy, f.st, from, to)
	})
}

// TestCheckDayReports: check tells a report not there yet or not
// readable now (keep waiting) from one that is there but unusable (the
// day failed).
func TestCheckDayReports(t *testing.T) {
	ctx := context.Background()
	st := store.NewMem()
	d := mustDay(t, "2026-11-20")
	// One coordinator run per case: a report's key is its run's and day's.
	put := func(run string, v any) {
		t.Helper()
		if err := writeJSON(ctx, st, ReportKey(run, d), v); err != nil {
			t.Fatal(err)
		}
	}
	put("built", &WorkerResult{Day: d.String(), Run: "built", Status: StatusBuilt})
	put("current", &WorkerResult{Day: d.String(), Run: "current", Status: StatusCurrent})
	put("failed", &WorkerResult{Day: d.String(), Run: "failed", Status: StatusFailed, Error: "held by another writer"})
	put("retry", &WorkerResult{Day: d.String(), Run: "retry", Status: StatusRetry, Error: "throttled"})
	put("otherday", &WorkerResult{Day: "2026-11-21", Run: "otherday", Status: StatusBuilt})
	put("otherrun", &WorkerResult{Day: d.String(), Run: "R0", Status: StatusBuilt})
	put("nostatus", &WorkerResult{Day: d.String(), Run: "nostatus"})
	put("array", []int{1, 2})
	if err := st.Put(ctx, ReportKey("cut", d), []byte(`{"day": "2026-11-20", "ru`)); err != nil {
		t.Fatal(err)
	}

	c := &coordinator{cfg: job.Config{Store: st}}
	for _, tc := range []struct {
		name   string // default: run
		run    string
		st     store.Store
		status string // "" while the day is not finished
		why    string // in the failure's reason
		err    bool   // the store failed: fanOut asks again
	}{
		{run: "built", st: st, status: DayBuilt},
		{run: "current", st: st, status: DayCurrent},
		{run: "failed", st: st, status: DayFailed, why: "held by another writer"},
		{run: "retry", st: st},
		{run: "none", st: st},
		{run: "cut", st: st, status: DayFailed, why: "unreadable day report _state/runs/cut/2026-11-20.json: unexpected end of JSON input"},
		{run: "array", st: st, status: DayFailed, why: "unreadable day report"},
		{run: "otherday", st: st, status: DayFailed, why: `unreadable day report _state/runs/otherday/2026-11-20.json: it is about day "2026-11-21"`},
		{run: "otherrun", st: st, status: DayFailed, why: `it is about run "R0", not otherrun`},
		{run: "nostatus", st: st, status: DayFailed, why: `status "" is not one a worker reports`},
		{name: "store failing", run: "built", st: failingGets{st}, err: true},
	} {
		name := tc.name
		if name == "" {
			name = tc.run
		}
		t.Run(name, func(t *testing.T) {
			c.cfg.Store = tc.st
			s := &dayState{d: d, before: map[string]bool{"": true}}
			status, why, err := c.check(ctx, tc.run, s)
			if status != tc.status || !strings.Contains(why, tc.why) || (err != nil) != tc.err {
				t.Fatalf("check = %q, %q, %v; want %q, %q, error %t", status, why, err, tc.status, tc.why, tc.err)
			}
		})
	}
}
