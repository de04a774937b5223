package lambda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/oklog/ulid/v2"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/index"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/metrics"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/internal/store/storetest"
)

// fixture is a local store with two days of eventgen data (gen.Nasty:
// duplicates, late and clock-skewed events, bad rows and objects) and a
// Handler on it that counts the reads of raw objects.
type fixture struct {
	st    store.Store
	reads *storetest.Reads // the handler's store: st, counting reads under raw/
	cfg   Config
	h     *Handler
}

// backfill is the run input of most tests: the two days of data feed
// these four days.
const backfill = `{"from":"2026-11-19","to":"2026-11-22"}`

// newStore is a local store holding the fixture's data.
func newStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	d1 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	if _, err := gen.Generate(context.Background(), st, gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 1), EventsPerDay: 600, ObjectsPerHour: 1, Seed: 5})); err != nil {
		t.Fatal(err)
	}
	return st
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	cfg, err := ConfigFromEnv(env(map[string]string{EnvStore: "/unused"}))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: newStore(t), cfg: cfg}
	f.reads = storetest.CountReads(f.st, "raw/")
	f.h = f.handler(t, Deps{})
	return f
}

// handler is a Handler on f's counting store (unless deps has a store)
// with f's configuration.
func (f *fixture) handler(t *testing.T, deps Deps) *Handler {
	t.Helper()
	if deps.Store == nil {
		deps.Store = f.reads
	}
	h, err := NewHandler(context.Background(), f.cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// localRun runs job.Run over from..to on st and returns what it publishes
// around those days (windowed partitions reach 28 days either side).
func localRun(t *testing.T, st store.Store, from, to day.Day) map[string]string {
	t.Helper()
	ctx := context.Background()
	if _, err := job.Run(ctx, job.Config{Store: st, From: from, To: to}); err != nil {
		t.Fatal(err)
	}
	snap, err := job.Snapshot(ctx, st, from-30, to+30)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap) == 0 {
		t.Fatal("a local run published nothing")
	}
	return snap
}

// backfillLocal is what a local job.Run over the backfill's days
// publishes on the fixture's data: made once, as every test's data is
// the same.
var backfillLocal struct {
	once sync.Once
	snap map[string]string
}

// equalLocal compares what f's store publishes around from..to with what
// want, a local run's (localRun), does, byte for byte; want nil is the
// backfill's local run.
func (f *fixture) equalLocal(t *testing.T, want map[string]string) {
	t.Helper()
	from, to := mustDay(t, "2026-11-19"), mustDay(t, "2026-11-22")
	if want == nil {
		backfillLocal.once.Do(func() { backfillLocal.snap = localRun(t, newStore(t), from, to) })
		if want = backfillLocal.snap; want == nil {
			t.Fatal("no local run to compare with")
		}
	}
	got, err := job.Snapshot(context.Background(), f.st, from-30, to+30)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("published data differs from a local run's (-local +stages):\n%s", diff)
	}
}

// call sends ev to h as the state machine does (its JSON) and returns the
// stage's answer as the state machine gets it (the result's JSON, decoded
// into a T), or its error. Every error must be a *RetryableError or a
// *PermanentError: the state machine's retries and catches match on those.
func call[T any](t *testing.T, ctx context.Context, h *Handler, ev any) (*T, error) {
	t.Helper()
	payload, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Handle(ctx, payload)
	if err != nil {
		var r *RetryableError
		var p *PermanentError
		if !errors.As(err, &r) && !errors.As(err, &p) {
			t.Errorf("%s: error %T %v: want a *RetryableError or a *PermanentError", payload, err, err)
		}
		return nil, err
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatalf("%s: result %T: %v", payload, res, err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: result %s does not decode into a %T: %v", payload, b, out, err)
	}
	return &out, nil
}

// caught is err as Step Functions catches a Lambda function's error into
// $.error: the error's type name, and the runtime's error payload.
func caught(err error) *CaughtError {
	tp := reflect.TypeOf(err)
	if tp.Kind() == reflect.Pointer {
		tp = tp.Elem()
	}
	cause, _ := json.Marshal(map[string]string{"errorMessage": err.Error(), "errorType": tp.Name()})
	return &CaughtError{Error: tp.Name(), Cause: string(cause)}
}

// stageHooks change a run of the stages (runStages).
type stageHooks struct {
	// route, if set, says whether part's route stage runs; it may stand in
	// for it (write a report, say) and return false.
	route func(run string, part int) bool
	// build, if set, says whether day d's build stage runs, likewise.
	build func(run string, d string) bool
}

// stagesRun is what one run of the stages answered, stage by stage.
type stagesRun struct {
	start    *StartResult
	inputs   map[int]*RouteInput  // what the start wrote for each route part
	routes   map[int]*RouteResult // parts that routed
	routeErr map[int]error        // parts that failed
	plan     *PlanResult          // nil if the plan failed
	builds   map[string]*WorkerResult
	buildErr map[string]error
	caught   *CaughtError // the stage failure passed to finish, if any
	finish   *FinishResult
	summary  *RunSummary // read back from SummaryKey
}

// runStages runs one execution of the nightly state machine
// (infra.StateMachineDefinition) on h, one stage after another: start
// with input, the route stage of each part the start returned, plan, the
// build of each day the plan returned, windowed, register, report (if
// the start says so) and finish. As in the state machine, a failed route
// part or day is left to the summary, and a failed plan, windowed,
// register or report stage goes straight to finish with its error; the
// state machine's retries are left out (each stage runs once).
func runStages(t *testing.T, h *Handler, input string, hooks stageHooks) *stagesRun {
	t.Helper()
	ctx := context.Background()
	s := &stagesRun{inputs: map[int]*RouteInput{}, routes: map[int]*RouteResult{}, routeErr: map[int]error{},
		builds: map[string]*WorkerResult{}, buildErr: map[string]error{}}
	start, err := call[StartResult](t, ctx, h, map[string]any{"stage": "start", "execution": "test-execution", "input": json.RawMessage(input)})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	s.start = start
	run := start.Run
	for _, part := range start.Parts {
		s.inputs[part] = routeInput(t, h.env.Store, run, part)
	}
	for _, part := range start.Parts {
		if hooks.route != nil && !hooks.route(run, part) {
			continue
		}
		res, err := call[RouteResult](t, ctx, h, map[string]any{"stage": "route", "run": run, "part": part})
		if err != nil {
			s.routeErr[part] = err
			continue
		}
		s.routes[part] = res
	}
	s.caught = start.Error
	s.plan, err = call[PlanResult](t, ctx, h, map[string]any{"stage": "plan", "run": run})
	if err != nil {
		s.caught = caught(err)
	}
	if s.caught == nil {
		for _, d := range s.plan.Days {
			if hooks.build != nil && !hooks.build(run, d) {
				continue
			}
			res, err := call[WorkerResult](t, ctx, h, map[string]any{"stage": "build", "run": run, "day": d})
			if err != nil {
				s.buildErr[d] = err
				continue
			}
			s.builds[d] = res
		}
		stages := []string{StageWindowed, StageRegister}
		if start.Report {
			stages = append(stages, StageReport)
		}
		for _, stage := range stages {
			if _, err := call[json.RawMessage](t, ctx, h, map[string]any{"stage": stage, "run": run}); err != nil {
				s.caught = caught(err)
				break
			}
		}
	}
	s.finish, err = call[FinishResult](t, ctx, h, map[string]any{"stage": "finish", "run": run, "error": s.caught})
	if err != nil {
		t.Fatalf("finish: %v", err)
	}
	s.summary = readSummary(t, h.env.Store, run)
	if want := (FinishResult{Run: run, Status: s.summary.Status, Planned: s.summary.Planned, Built: s.summary.Built,
		Failed: s.summary.Failed, Summary: SummaryKey(run), Error: s.summary.Error}); *s.finish != want {
		t.Errorf("finish answered %+v; the summary at %s says %+v", *s.finish, SummaryKey(run), want)
	}
	return s
}

func readSummary(t *testing.T, st store.Store, run string) *RunSummary {
	t.Helper()
	b, err := st.Get(context.Background(), SummaryKey(run))
	if err != nil {
		t.Fatalf("summary of run %s: %v", run, err)
	}
	var sum RunSummary
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatalf("summary %s: %v", SummaryKey(run), err)
	}
	return &sum
}

// indexed returns the raw objects the index holds, and how many of them
// feed two days or more of from..to.
func indexed(t *testing.T, st store.Store, from, to day.Day) (entries []index.Entry, multiDay int) {
	t.Helper()
	ix, err := index.Load(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ix.Entries() {
		if n := len(slices.DeleteFunc(slices.Clone(e.Days), func(d day.Day) bool { return d < from || d > to })); n >= 2 {
			multiDay++
		}
	}
	return ix.Entries(), multiDay
}

// routeInput reads what the start stage wrote for a route part.
func routeInput(t *testing.T, st store.Store, run string, part int) *RouteInput {
	t.Helper()
	in, _, err := readRouteInput(context.Background(), st, run, part)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestStagesEqualLocalRun: the stages in the state machine's order publish
// what a local job.Run publishes, byte for byte; the route stages read
// every raw object once, and nothing else reads any; a second run finds
// nothing stale.
func TestStagesEqualLocalRun(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var emf bytes.Buffer
	type registered struct {
		from, to day.Day
		asOf     day.Day
	}
	var regs []registered
	f.h = f.handler(t, Deps{Metrics: metrics.New(&emf, ""), Registrar: RegistrarFunc(func(_ context.Context, cfg job.Config, ws *job.WindowedSummary) error {
		r := registered{from: cfg.From, to: cfg.To}
		if ws != nil {
			r.asOf = ws.AsOf
		}
		regs = append(regs, r)
		return nil
	})})
	from, to := mustDay(t, "2026-11-19"), mustDay(t, "2026-11-22")
	s := runStages(t, f.h, backfill, stageHooks{})

	// start: the run's days, and every object not indexed yet in one part.
	if st := s.start; st.From != from.String() || st.To != to.String() || st.Parallel != 8 || st.Report || st.Error != nil ||
		!slices.Equal(st.Parts, []int{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Errorf("start: %+v; want 8 route parts (LW_PARALLEL)", st)
	}
	if len(s.routeErr) != 0 || len(s.routes) != len(s.start.Parts) {
		t.Fatalf("route parts failed: %v", s.routeErr)
	}
	entries, multiDay := indexed(t, f.st, from, to)
	if multiDay == 0 {
		t.Fatal("no raw object feeds two of the days: the data does not test what it should")
	}
	// Every raw object was routed once, and read by nothing else.
	routed, bad := checkRoutedOnce(t, f, s, entries)

	if !slices.Equal(s.plan.Days, []string{"2026-11-19", "2026-11-20", "2026-11-21", "2026-11-22"}) {
		t.Errorf("plan: %v", s.plan.Days)
	}
	for _, d := range s.plan.Days {
		if r := s.builds[d]; r == nil || r.Status != StatusBuilt || r.Stats == nil || r.Run != s.start.Run {
			t.Errorf("build %s: %+v, %v", d, r, s.buildErr[d])
		}
	}
	sum := s.summary
	if sum.Status != RunDone || sum.Planned != 4 || sum.Built != 4 || sum.Failed != 0 || sum.Error != "" || sum.Trigger != KindBackfill ||
		sum.Execution != "test-execution" || sum.TimeZone != "UTC" || len(sum.Days) != 4 || sum.Totals.KeptRows == 0 || sum.Windowed == nil {
		t.Errorf("summary: %+v", sum)
	}
	if sum.Totals.RawObjects != 0 || sum.Totals.RawBytes != 0 {
		t.Errorf("the builds read %d raw objects (%d bytes); want none", sum.Totals.RawObjects, sum.Totals.RawBytes)
	}
	var kept int64
	for _, d := range sum.Days {
		if d.Status != DayBuilt || d.Worker == nil || d.Worker.Stats == nil {
			t.Errorf("%s: %+v; want built, with its build's report", d.Day, d)
			continue
		}
		kept += d.Worker.Stats.KeptRows
	}
	if kept != sum.Totals.KeptRows {
		t.Errorf("totals keep %d rows, the days %d", sum.Totals.KeptRows, kept)
	}
	if r := sum.Route; r == nil || r.Objects != len(entries) || r.Routed != routed || r.Routed != len(entries) || r.BadObjects != bad ||
		r.BadObjects == 0 || r.Parts != 8 || r.Failed != 0 || r.Fallback || r.Bytes == 0 || len(r.PartList) != 8 {
		t.Errorf("route summary: %+v; want %d objects routed in 8 parts, bad ones among them", r, len(entries))
	}
	if len(regs) != 1 || regs[0].from != from || regs[0].to != to || sum.Windowed == nil || regs[0].asOf.String() != sum.Windowed.AsOf {
		t.Errorf("registered %+v; want the run's days once, as of the windowed stage's day (%+v)", regs, sum.Windowed)
	}
	// No HTML report unless asked for.
	if objs, err := f.st.List(ctx, "reports/"); err != nil || len(objs) != 0 || sum.HTMLReport != nil {
		t.Errorf("an HTML report without LW_REPORT: %v, %v, %+v", objs, err, sum.HTMLReport)
	}
	// One EMF line per route part, per built day and for the run.
	for stage, n := range map[string]int{"route": 8, "day": 4, "run": 1} {
		if got := strings.Count(emf.String(), `"Stage":"`+stage+`"`); got != n {
			t.Errorf("%d %s metric lines, want %d", got, stage, n)
		}
	}

	f.equalLocal(t, nil)

	// Again: nothing to route, nothing stale, nothing read or changed.
	f.reads.Take()
	s2 := runStages(t, f.h, backfill, stageHooks{})
	if s2.start.Run == s.start.Run || len(s2.start.Parts) != 0 || len(s2.plan.Days) != 0 || s2.summary.Status != RunDone ||
		s2.summary.Planned != 0 || s2.summary.Route != nil || len(s2.summary.Days) != 4 {
		t.Errorf("second run: start %+v, plan %+v, summary %+v", s2.start, s2.plan, s2.summary)
	}
	for _, d := range s2.summary.Days {
		if d.Status != DayUpToDate {
			t.Errorf("second run: %+v", d)
		}
	}
	if reads := f.reads.Take(); len(reads) != 0 {
		t.Errorf("the second run read raw objects: %v", reads)
	}
	f.equalLocal(t, nil)
}

// checkRoutedOnce checks a run's route stages (s, on f) against the
// index's entries: every indexed object is in one route report and was
// read once, no other raw object was read, and the finish deleted the
// parts' inputs. It returns the objects routed and the bad ones among
// them, as the parts answered.
func checkRoutedOnce(t *testing.T, f *fixture, s *stagesRun, entries []index.Entry) (routed, bad int) {
	t.Helper()
	ctx := context.Background()
	inReport := map[string]int{}
	for _, part := range s.start.Parts {
		res := s.routes[part]
		rep, err := readRouteReport(ctx, f.st, s.start.Run, part)
		if err != nil || rep == nil || rep.Status != StatusRouted || len(rep.Entries) != res.Routed || res.Entries != nil ||
			len(s.inputs[part].Route) != res.Objects {
			t.Fatalf("part %d: answered %+v, report %+v, %v; want routed, its entries in the report only", part, res, rep, err)
		}
		for _, e := range rep.Entries {
			inReport[e.Key]++
		}
		routed += res.Routed
		bad += res.BadObjects
	}
	reads := f.reads.Snapshot()
	for _, e := range entries {
		if inReport[e.Key] != 1 || reads[e.Key] != 1 {
			t.Errorf("%s (feeds %v): in %d route reports, read %d times; want once", e.Key, e.Days, inReport[e.Key], reads[e.Key])
		}
		delete(reads, e.Key)
	}
	for k, n := range reads {
		t.Errorf("%s read %d times but not indexed", k, n)
	}
	// The finish deleted the parts' inputs; the reports stay.
	if objs, err := f.st.List(ctx, RunsPrefix+s.start.Run+"/route-"); err != nil || len(objs) != len(s.start.Parts) ||
		slices.ContainsFunc(objs, func(o store.Object) bool { return strings.HasSuffix(o.Key, ".in.json") }) {
		t.Errorf("route files after the run: %v, %v; want the %d reports only", objs, err, len(s.start.Parts))
	}
	return routed, bad
}

// TestRouteFallback: a route part that leaves no usable report (its stage
// never ran, its input unreadable, it failed) costs reads, never
// correctness: the plan indexes its objects, the builds route what their
// days lack, and the tables equal a local run's.
func TestRouteFallback(t *testing.T) {
	from, to := mustDay(t, "2026-11-19"), mustDay(t, "2026-11-22")
	for _, tc := range []struct {
		name string
		// part1 stands in for part 1's route stage.
		part1 func(t *testing.T, f *fixture, run string)
		why   string // in part 1's error in the summary
	}{
		{name: "never ran", part1: func(*testing.T, *fixture, string) {}, why: "no report"},
		{name: "input unreadable", part1: func(t *testing.T, f *fixture, run string) {
			if err := f.st.Put(context.Background(), RouteInputKey(run, 1), []byte(`{"run":`)); err != nil {
				t.Fatal(err)
			}
			_, err := call[RouteResult](t, context.Background(), f.h, StageEvent{Stage: StageRoute, Run: run, Part: 1})
			var p *PermanentError
			if !errors.As(err, &p) || !strings.Contains(err.Error(), RouteInputKey(run, 1)) {
				t.Errorf("route part 1 with an unreadable input: %v; want a *PermanentError naming it", err)
			}
		}, why: "no report"},
		{name: "failed", part1: func(t *testing.T, f *fixture, run string) {
			// Configured with another raw prefix: it fails for good,
			// reading nothing, and reports so.
			cfg := f.cfg
			cfg.RawPrefix = "elsewhere/"
			h, err := NewHandler(context.Background(), cfg, Deps{Store: f.reads})
			if err != nil {
				t.Fatal(err)
			}
			_, err = call[RouteResult](t, context.Background(), h, StageEvent{Stage: StageRoute, Run: run, Part: 1})
			var p *PermanentError
			if !errors.As(err, &p) {
				t.Errorf("route part 1 with another raw prefix: %v; want a *PermanentError", err)
			}
		}, why: "not a raw object under elsewhere/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t)
			s := runStages(t, f.h, backfill, stageHooks{route: func(run string, part int) bool {
				if part == 1 {
					tc.part1(t, f, run)
					return false
				}
				return true
			}})
			part1 := s.inputs[1].Route
			sum := s.summary
			if sum.Status != RunDone || sum.Planned != 4 || sum.Built != 4 || len(s.buildErr) != 0 {
				t.Fatalf("summary: %+v, build errors %v", sum, s.buildErr)
			}
			r := sum.Route
			if r == nil || r.Failed != 1 || !r.Fallback || r.Parts != 8 || r.Routed != r.Objects-len(part1) || len(r.PartList) != 8 ||
				r.PartList[0].Status != StatusFailed || !strings.Contains(r.PartList[0].Error, tc.why) {
				t.Fatalf("route summary: %+v, part 1 %+v; want part 1 failed (%s)", r, r.PartList[0], tc.why)
			}
			// The plan knew part 1's objects unrouted; the builds routed
			// them, and only them.
			plan, err := readPlan(ctx, f.st, s.start.Run)
			if err != nil || plan == nil || plan.Unrouted == 0 || plan.Unrouted > len(part1) || plan.IndexError != "" {
				t.Errorf("plan record: %+v, %v; want up to %d objects unrouted", plan, err, len(part1))
			}
			if sum.Totals.RawObjects == 0 {
				t.Errorf("the builds read no raw object; they had to route part 1's")
			}
			inPart1 := map[string]bool{}
			for _, ref := range part1 {
				inPart1[ref.Key] = true
			}
			entries, _ := indexed(t, f.st, from, to)
			for _, e := range entries {
				if n := f.reads.Snapshot()[e.Key]; !inPart1[e.Key] && n != 1 {
					t.Errorf("%s (routed by its part) read %d times, want once", e.Key, n)
				}
			}
			f.equalLocal(t, nil)
		})
	}
}

// TestObjectArrivingDuringRun: a raw object that arrives after the start
// listed the objects is left for the next run (job.ListedBefore at the
// run's time): the builds read no raw object; the next run routes it once
// and builds the days it feeds.
func TestObjectArrivingDuringRun(t *testing.T) {
	ctx := context.Background()
	from, to := mustDay(t, "2026-11-19"), mustDay(t, "2026-11-22")
	f := newFixture(t)
	objs, err := f.st.List(ctx, "raw/2026/11/21/05/")
	if err != nil || len(objs) == 0 {
		t.Fatalf("raw objects of 2026-11-21 05h: %v, %v", objs, err)
	}
	data, err := f.st.Get(ctx, objs[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	late := "raw/2026/11/21/05/late-" + strings.TrimPrefix(objs[0].Key, "raw/2026/11/21/05/")
	s := runStages(t, f.h, backfill, stageHooks{build: func(run, d string) bool {
		if d == from.String() {
			if err := f.st.Put(ctx, late, data); err != nil {
				t.Fatal(err)
			}
		}
		return true
	}})
	if sum := s.summary; sum.Status != RunDone || sum.Built != 4 || sum.Totals.RawObjects != 0 || f.reads.Snapshot()[late] != 0 {
		t.Errorf("summary %+v, totals %+v, %s read %d times; want the days built without it", sum, sum.Totals, late, f.reads.Snapshot()[late])
	}
	next := runStages(t, f.h, backfill, stageHooks{})
	if in := next.inputs; len(in) != 1 || len(in[1].Route) != 1 || in[1].Route[0].Key != late {
		t.Errorf("next run's route inputs: %+v; want %s alone", in, late)
	}
	if sum := next.summary; sum.Status != RunDone || sum.Planned == 0 || sum.Built != sum.Planned || sum.Totals.RawObjects != 0 ||
		f.reads.Snapshot()[late] != 1 {
		t.Errorf("next run: %+v, totals %+v, %s read %d times; want it routed once and its days built", sum, sum.Totals, late, f.reads.Snapshot()[late])
	}
	local := newStore(t)
	if err := local.Put(ctx, late, data); err != nil {
		t.Fatal(err)
	}
	f.equalLocal(t, localRun(t, local, from, to))
}

// badEntryOf is an entry of r that index.Entry's checks reject: two days,
// one day_rows count.
func badEntryOf(r RouteRef) index.Entry {
	d := day.Of(r.Hour.UnixMilli(), time.UTC)
	return index.Entry{Key: r.Key, ETag: `"fake"`, Size: r.Size, Hour: r.Hour, Rows: 2,
		Days: []day.Day{d, d + 1}, DayRows: []int64{2}}
}

// TestRouteBadEntryFailsThePart: a route report holding an entry that
// fails index.Entry's checks does not decode: its part counts as failed,
// nothing of it reaches the index, its objects take the fallback path,
// and the tables are right. So with a part that reports it did not route.
func TestRouteBadEntryFailsThePart(t *testing.T) {
	from, to := mustDay(t, "2026-11-19"), mustDay(t, "2026-11-22")
	f := newFixture(t)
	s := runStages(t, f.h, backfill, stageHooks{route: func(run string, part int) bool {
		in := routeInput(t, f.st, run, part)
		res := &RouteResult{Run: run, Part: part, Objects: len(in.Route), FinishedAt: time.Now().UTC()}
		switch part {
		case 1:
			res.Status, res.Routed, res.Entries = StatusRouted, 1, []index.Entry{badEntryOf(in.Route[0])}
		case 2:
			// Not a report a route stage writes, but a part that did not
			// route has no entries the plan may use: this one, a valid
			// entry of its first object saying it feeds another day, would
			// lose that object's rows.
			r := in.Route[0]
			e := index.Entry{Key: r.Key, ETag: r.ETag, Size: r.Size, Hour: r.Hour, Rows: 1,
				Days: []day.Day{mustDay(t, "2026-11-01")}, DayRows: []int64{1}}
			res.Status, res.Error, res.Entries = StatusRetry, "throttled", []index.Entry{e}
		default:
			return true
		}
		if err := writeJSON(context.Background(), f.st, RouteKey(run, part), res); err != nil {
			t.Fatal(err)
		}
		return false
	}})
	sum := s.summary
	if sum.Status != RunDone || sum.Built != 4 {
		t.Fatalf("summary: %+v", sum)
	}
	r := sum.Route
	if r == nil || r.Failed != 2 || !r.Fallback || r.PartList[1].Status != StatusFailed || r.PartList[1].Error != "throttled" {
		t.Fatalf("route summary: %+v; want parts 1 and 2 failed", r)
	}
	p := r.PartList[0]
	if p.Part != 1 || p.Status != StatusFailed || !strings.Contains(p.Error, "unreadable route report") ||
		!strings.Contains(p.Error, "1 day_rows for 2 days") {
		t.Errorf("part 1: %+v; want failed for its unreadable report", p)
	}
	entries, _ := indexed(t, f.st, from, to)
	for _, e := range entries {
		if e.ETag == `"fake"` {
			t.Errorf("the bad entry reached the index: %+v", e)
		}
	}
	f.equalLocal(t, nil)
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

// TestFinishFailedDays: a stale day whose build left no report, or an
// unusable one, counts as failed in the summary (the run is partial); a
// report that cannot be read at first is read again; the next run builds
// the failed days, and the tables then equal a local run's.
func TestFinishFailedDays(t *testing.T) {
	ctx := context.Background()
	from := mustDay(t, "2026-11-19")
	const noReport, garbage, otherDay, flaky = "2026-11-19", "2026-11-20", "2026-11-21", "2026-11-22"
	f := newFixture(t)
	fl := &flakyReports{Store: f.reads, day: mustDay(t, flaky), n: 3}
	f.h = f.handler(t, Deps{Store: fl})
	s := runStages(t, f.h, backfill, stageHooks{build: func(run, d string) bool {
		switch d {
		case noReport:
			return false // failed before it could write one
		case garbage:
			if err := f.st.Put(ctx, ReportKey(run, mustDay(t, d)), []byte("\x00\x01garbage\xff")); err != nil {
				t.Fatal(err)
			}
			return false
		case otherDay:
			err := writeJSON(ctx, f.st, ReportKey(run, mustDay(t, d)), &WorkerResult{Day: from.String(), Run: run, Status: StatusBuilt,
				Stats: &DayStats{KeptRows: 1 << 40}})
			if err != nil {
				t.Fatal(err)
			}
			return false
		}
		return true
	}})
	if fl.n != 0 {
		t.Fatalf("the report of %s was never read while there: the test does not test what it should", flaky)
	}
	sum := s.summary
	if sum.Status != RunPartial || sum.Error != "" || sum.Planned != 4 || sum.Built != 1 || sum.Failed != 3 || len(sum.Days) != 4 {
		t.Fatalf("summary: %+v; want partial, 1 day built and 3 failed", sum)
	}
	for _, d := range sum.Days {
		want := map[string]string{
			noReport: "no report: the build failed before it could write one",
			garbage:  "unreadable day report " + ReportKey(sum.Run, mustDay(t, garbage)) + ": invalid character",
			otherDay: `it is about day "2026-11-19", not 2026-11-21`,
		}[d.Day]
		switch {
		case d.Day == flaky:
			if d.Status != DayBuilt || d.Worker == nil || d.Worker.Stats == nil || sum.Totals.KeptRows != d.Worker.Stats.KeptRows {
				t.Errorf("%s: %+v, totals %+v; want built, its report read again and counted alone", d.Day, d, sum.Totals)
			}
		case d.Status != DayFailed || !strings.Contains(d.Error, want) || d.Worker != nil:
			t.Errorf("%s: %+v; want failed: %q", d.Day, d, want)
		}
	}

	next := runStages(t, f.h, backfill, stageHooks{})
	if next.summary.Status != RunDone || !slices.Equal(next.plan.Days, []string{noReport, garbage, otherDay}) || next.summary.Built != 3 {
		t.Fatalf("next run: plan %v, summary %+v; want the three failed days built", next.plan.Days, next.summary)
	}
	f.equalLocal(t, nil)
}

// TestFinishCaughtError: the finish stage after a caught stage failure
// (or with no plan) writes a failed summary saying why; a stage that
// fails sends the state machine to finish with its error.
func TestFinishCaughtError(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	start, err := call[StartResult](t, ctx, f.h, map[string]any{"stage": "start", "execution": "x", "input": json.RawMessage(backfill)})
	if err != nil {
		t.Fatal(err)
	}
	run := start.Run
	payload := `{"stage":"finish","run":"` + run + `","error":{"Error":"X","Cause":"Y"}}`
	res, err := f.h.Handle(ctx, json.RawMessage(payload))
	if err != nil {
		t.Fatal(err)
	}
	fin := res.(*FinishResult)
	sum := readSummary(t, f.st, run)
	if fin.Status != RunFailed || fin.Error != "X: Y" || fin.Summary != SummaryKey(run) || sum.Status != RunFailed || sum.Error != "X: Y" ||
		sum.Run != run || sum.Trigger != KindBackfill || sum.From != "2026-11-19" || sum.To != "2026-11-22" {
		t.Errorf("finish: %+v, summary %+v; want failed with X: Y", fin, sum)
	}
	// No error, but no plan either: failed.
	fin, err = call[FinishResult](t, ctx, f.h, map[string]any{"stage": "finish", "run": run, "error": nil})
	if err != nil || fin.Status != RunFailed || !strings.Contains(fin.Error, "no plan") || readSummary(t, f.st, run).Status != RunFailed {
		t.Errorf("finish without a plan: %+v, %v", fin, err)
	}

	// A register stage that fails: the run fails with its error, after the
	// days were built.
	injected := errors.New("glue is down")
	f.h = f.handler(t, Deps{Registrar: RegistrarFunc(func(context.Context, job.Config, *job.WindowedSummary) error { return injected })})
	s := runStages(t, f.h, backfill, stageHooks{})
	if s.caught == nil || s.caught.Error != "RetryableError" || !strings.Contains(s.caught.Cause, injected.Error()) {
		t.Fatalf("caught %+v; want the register stage's RetryableError", s.caught)
	}
	if sum := s.summary; sum.Status != RunFailed || !strings.HasPrefix(sum.Error, "RetryableError: ") || !strings.Contains(sum.Error, injected.Error()) ||
		sum.Built != 4 || sum.Windowed == nil {
		t.Errorf("summary: %+v; want failed with the register stage's error, the days built", sum)
	}
}

// TestBuildStageTwice: the same build event twice builds the day once.
func TestBuildStageTwice(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	d := mustDay(t, "2026-11-20")
	ev := StageEvent{Stage: StageBuild, Day: d.String(), Run: "R1"}
	first, err := call[WorkerResult](t, ctx, f.h, ev)
	if err != nil || first.Status != StatusBuilt || first.Stats == nil || first.Stats.KeptRows == 0 || first.Run != "R1" || first.Day != d.String() {
		t.Fatalf("first: %+v, %v", first, err)
	}
	snap1, _ := job.Snapshot(ctx, f.st, d, d)
	second, err := call[WorkerResult](t, ctx, f.h, ev)
	if err != nil || second.Status != StatusCurrent || second.Stats != nil {
		t.Fatalf("second: %+v, %v", second, err)
	}
	snap2, _ := job.Snapshot(ctx, f.st, d, d)
	if len(snap1) == 0 {
		t.Fatal("nothing published")
	}
	if diff := cmp.Diff(snap1, snap2); diff != "" {
		t.Errorf("the second build changed the day:\n%s", diff)
	}
	rep, err := readReport(ctx, f.st, "R1", d)
	if err != nil || rep == nil || rep.Status != StatusCurrent {
		t.Errorf("report: %+v, %v", rep, err)
	}
}

// failingGets is a store whose Get fails, as a network error would.
type failingGets struct{ store.Store }

func (failingGets) Get(context.Context, string) ([]byte, error) {
	return nil, errors.New("connection reset")
}

// TestReadDayReports: readReport tells a report not there (nil) or not
// readable now (a store error) from one that is there but unusable
// (errBadReport).
func TestReadDayReports(t *testing.T) {
	ctx := context.Background()
	st := store.NewMem()
	d := mustDay(t, "2026-11-20")
	// One run per case: a report's key is its run's and day's.
	put := func(run string, v any) {
		t.Helper()
		if err := writeJSON(ctx, st, ReportKey(run, d), v); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{StatusBuilt, StatusCurrent, StatusFailed, StatusRetry} {
		put(s, &WorkerResult{Day: d.String(), Run: s, Status: s})
	}
	put("otherday", &WorkerResult{Day: "2026-11-21", Run: "otherday", Status: StatusBuilt})
	put("otherrun", &WorkerResult{Day: d.String(), Run: "R0", Status: StatusBuilt})
	put("nostatus", &WorkerResult{Day: d.String(), Run: "nostatus"})
	put("array", []int{1, 2})
	if err := st.Put(ctx, ReportKey("cut", d), []byte(`{"day": "2026-11-20", "ru`)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		run    string
		st     store.Store
		status string // of the report read
		why    string // in an errBadReport
		err    bool   // a store error, not errBadReport
	}{
		{run: StatusBuilt, st: st, status: StatusBuilt},
		{run: StatusCurrent, st: st, status: StatusCurrent},
		{run: StatusFailed, st: st, status: StatusFailed},
		{run: StatusRetry, st: st, status: StatusRetry},
		{run: "none", st: st},
		{run: "cut", st: st, why: "unreadable day report _state/runs/cut/2026-11-20.json: unexpected end of JSON input"},
		{run: "array", st: st, why: "unreadable day report"},
		{run: "otherday", st: st, why: `it is about day "2026-11-21", not 2026-11-20`},
		{run: "otherrun", st: st, why: `it is about run "R0", not otherrun`},
		{run: "nostatus", st: st, why: `status "" is not one a worker reports`},
		{run: StatusBuilt, st: failingGets{st}, err: true},
	} {
		rep, err := readReport(ctx, tc.st, tc.run, d)
		var status string
		if rep != nil {
			status = rep.Status
		}
		switch {
		case tc.why != "" && (!errors.Is(err, errBadReport) || !strings.Contains(err.Error(), tc.why) || rep != nil):
			t.Errorf("%s: %+v, %v; want errBadReport saying %q", tc.run, rep, err, tc.why)
		case tc.err && (err == nil || errors.Is(err, errBadReport) || !retryableRead(err)):
			t.Errorf("%s on a failing store: %v; want a store error, read again", tc.run, err)
		case tc.why == "" && !tc.err && (err != nil || status != tc.status):
			t.Errorf("%s: %+v, %v; want status %q", tc.run, rep, err, tc.status)
		}
	}
}

// TestBuildStageHeldDay: a day another live writer holds fails its build
// for good (not retried by the state machine), reporting so.
func TestBuildStageHeldDay(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	held, err := lease.Acquire(ctx, f.st, "quarantine/dt=2026-11-20", lease.HolderID("backfill"), time.Hour, 0, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release(ctx)
	// Routed first, so that the build's time goes to waiting for the day.
	start, err := call[StartResult](t, ctx, f.h, StageEvent{Stage: StageStart, Execution: "x", Input: json.RawMessage(backfill)})
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range start.Parts {
		if _, err := call[RouteResult](t, ctx, f.h, StageEvent{Stage: StageRoute, Run: start.Run, Part: part}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := call[PlanResult](t, ctx, f.h, StageEvent{Stage: StagePlan, Run: start.Run}); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 4*time.Second) // lock wait: a quarter of it
	defer cancel()
	_, err = call[WorkerResult](t, cctx, f.h, StageEvent{Stage: StageBuild, Day: "2026-11-20", Run: start.Run})
	var p *PermanentError
	if !errors.As(err, &p) || !strings.Contains(err.Error(), "being written by another rollup") {
		t.Errorf("build of a held day: %v; want a *PermanentError saying so", err)
	}
	rep, rerr := readReport(ctx, f.st, start.Run, mustDay(t, "2026-11-20"))
	if rerr != nil || rep == nil || rep.Status != StatusFailed || rep.ErrorClass != "permanent" {
		t.Errorf("report: %+v, %v", rep, rerr)
	}
}

// TestStartRun: the start names the run after its execution when that is
// a ULID of about now (as rollup --dispatch sfn: names executions), else
// anew; it records the trigger and days (a scheduled event's are
// job.CatchUp's), and a start with nothing to route has no parts.
func TestStartRun(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	now := time.Now()
	id := ulid.MustNew(ulid.Timestamp(now), ulid.DefaultEntropy()).String()
	old := ulid.MustNew(ulid.Timestamp(now.Add(-2*time.Hour)), ulid.DefaultEntropy()).String()
	sched := readTestdata(t, "scheduled-event.json")
	for _, tc := range []struct {
		execution string
		same      bool // the run is the execution
	}{{id, true}, {old, false}, {"a2b9e0c4-nightly", false}} {
		start, err := call[StartResult](t, ctx, f.h, StageEvent{Stage: StageStart, Execution: tc.execution, Input: sched})
		if err != nil {
			t.Fatal(err)
		}
		rid, perr := ulid.ParseStrict(start.Run)
		if (start.Run == tc.execution) != tc.same || perr != nil || time.Since(ulid.Time(rid.Time())).Abs() > time.Minute {
			t.Errorf("execution %s: run %s; want the execution's name %t, a ULID of now", tc.execution, start.Run, tc.same)
		}
		rec, from, to, err := readRunRecord(ctx, f.st, start.Run)
		if err != nil || rec.Execution != tc.execution || rec.Trigger != KindScheduled || rec.EventTime == nil ||
			!rec.EventTime.Equal(time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)) || from != mustDay(t, "2026-11-16") || to != mustDay(t, "2026-11-23") ||
			start.From != rec.From || start.To != rec.To || rec.TimeZone != "UTC" || rec.Parts != len(start.Parts) || rec.Objects == 0 || rec.Bytes == 0 {
			t.Errorf("execution %s: start %+v, record %+v, %v", tc.execution, start, rec, err)
		}
		objects := 0
		for _, part := range start.Parts {
			objects += len(routeInput(t, f.st, start.Run, part).Route)
		}
		if objects != rec.Objects {
			t.Errorf("%d objects in the route inputs, %d in the record", objects, rec.Objects)
		}
	}
	// Days with no raw object: nothing to route.
	start, err := call[StartResult](t, ctx, f.h, StageEvent{Stage: StageStart, Execution: "x", Input: json.RawMessage(`{"from":"2026-10-01","to":"2026-10-02"}`)})
	if err != nil || len(start.Parts) != 0 || start.Parts == nil || start.Error != nil {
		t.Errorf("start over empty days: %+v, %v", start, err)
	}
}

// TestWindowedStageHeld: while another run holds the windowed stage's
// lease, the windowed stage waits a quarter of its time left at most, then
// fails transiently (the state machine retries it), writing no summary.
func TestWindowedStageHeld(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	start, err := call[StartResult](t, ctx, f.h, StageEvent{Stage: StageStart, Execution: "x", Input: json.RawMessage(backfill)})
	if err != nil {
		t.Fatal(err)
	}
	held, err := lease.Acquire(ctx, f.st, "stage2", lease.HolderID("backfill"), time.Hour, 0, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release(ctx)
	cctx, cancel := context.WithTimeout(ctx, 4*time.Second) // lock wait: a quarter of it
	defer cancel()
	_, err = call[WindowedResult](t, cctx, f.h, StageEvent{Stage: StageWindowed, Run: start.Run})
	var r *RetryableError
	if !errors.As(err, &r) || !strings.Contains(err.Error(), "run backfill") {
		t.Errorf("windowed stage while held: %v; want a *RetryableError naming the holder", err)
	}
	if ws, ok, err := readWindowed(ctx, f.st, start.Run); ws != nil || ok || err != nil {
		t.Errorf("a windowed summary was kept: %+v, %t, %v", ws, ok, err)
	}
}

// TestFinishStoreDown: a day report the store keeps failing to read fails
// the finish stage with a *RetryableError (the state machine retries it)
// rather than count a built day failed; once the store answers, finish
// counts it built.
func TestFinishStoreDown(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := runStages(t, f.h, backfill, stageHooks{})
	if s.summary.Status != RunDone || s.summary.Planned == 0 {
		t.Fatalf("summary: %+v", s.summary)
	}
	d := mustDay(t, s.plan.Days[0])
	fl := &flakyReports{Store: f.reads, day: d, n: 1000}
	h := f.handler(t, Deps{Store: fl})
	_, err := call[FinishResult](t, ctx, h, StageEvent{Stage: StageFinish, Run: s.summary.Run})
	var r *RetryableError
	if !errors.As(err, &r) || !strings.Contains(err.Error(), d.String()) {
		t.Fatalf("finish while the store fails on %s's report: %v; want a *RetryableError naming the day", d, err)
	}
	fl.n = 0
	res, err := call[FinishResult](t, ctx, h, StageEvent{Stage: StageFinish, Run: s.summary.Run})
	if err != nil || res.Status != RunDone || res.Built != s.summary.Planned || res.Failed != 0 {
		t.Fatalf("finish once the store answers: %+v, %v; want done, every day built", res, err)
	}
}
