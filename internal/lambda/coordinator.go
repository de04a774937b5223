package lambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/oklog/ulid/v2"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/metrics"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/internal/wait"
	"github.com/littlewarehouse/warehouse/rollups"
)

// Invoker starts a worker for one event (a day to build, or a part of the
// route phase), asynchronously where it can: a nil error means the worker
// was handed the event, not that it finished.
type Invoker interface {
	Invoke(ctx context.Context, ev WorkerEvent) error
}

// InvokerFunc is an Invoker made of a function.
type InvokerFunc func(ctx context.Context, ev WorkerEvent) error

// Invoke calls f.
func (f InvokerFunc) Invoke(ctx context.Context, ev WorkerEvent) error { return f(ctx, ev) }

// InvokeAPI is the part of the Lambda client an invoker needs
// (*lambda.Client from aws-sdk-go-v2 has it).
type InvokeAPI interface {
	Invoke(ctx context.Context, in *awslambda.InvokeInput, opts ...func(*awslambda.Options)) (*awslambda.InvokeOutput, error)
}

// LambdaInvoker invokes the worker function with InvocationType=Event:
// Lambda queues the event, answers at once, and retries a failed worker
// itself (twice by default, then to the function's dead-letter queue).
type LambdaInvoker struct {
	Client   InvokeAPI
	Function string // name or ARN
}

// Invoke sends ev to the worker function.
func (l LambdaInvoker) Invoke(ctx context.Context, ev WorkerEvent) error {
	payload, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	out, err := l.Client.Invoke(ctx, &awslambda.InvokeInput{
		FunctionName: &l.Function, InvocationType: types.InvocationTypeEvent, Payload: payload,
	})
	if err != nil {
		return fmt.Errorf("invoke %s for %s: %w", l.Function, ev.describe(), err)
	}
	if out.FunctionError != nil {
		// Only where an Event invocation runs synchronously (the Runtime
		// Interface Emulator): the worker returned an error.
		return &WorkerError{Function: l.Function, Day: ev.Day, Part: ev.Part, Kind: *out.FunctionError, Payload: string(out.Payload)}
	}
	return nil
}

// WorkerError says the invoked worker itself failed. Lambda retries a
// failed asynchronous invocation by itself, so the coordinator counts the
// day (or route part) as dispatched and keeps watching it.
type WorkerError struct {
	Function, Day, Kind, Payload string
	Part                         int // a route part's number; 0 for a day
}

func (e *WorkerError) Error() string {
	what := "day " + e.Day
	if e.Part > 0 {
		what = fmt.Sprintf("route part %d", e.Part)
	}
	return fmt.Sprintf("worker %s for %s failed (%s): %s", e.Function, what, e.Kind, snippet([]byte(e.Payload)))
}

// Registrar makes what a run published visible to readers: it points the
// catalog's partitions (Glue) at the current run of every daily table for
// the days cfg.From..cfg.To, and of the windowed partitions in ws (nil if
// no user_daily is published yet). With cfg.Catalog set and a grace
// period, it must also delete the superseded runs that no partition points
// at any more: the workers then leave them alone (what job.Run does after
// its windowed stage). It must be idempotent: a later run registers the
// same days again, which repairs a registration that failed. It runs after
// the windowed stage, in the coordinator and in DispatchBackfill.
type Registrar interface {
	Register(ctx context.Context, cfg job.Config, ws *job.WindowedSummary) error
}

// RegistrarFunc is a Registrar made of a function.
type RegistrarFunc func(ctx context.Context, cfg job.Config, ws *job.WindowedSummary) error

// Register calls f.
func (f RegistrarFunc) Register(ctx context.Context, cfg job.Config, ws *job.WindowedSummary) error {
	return f(ctx, cfg, ws)
}

// NopRegistrar registers nothing (no catalog).
type NopRegistrar struct{}

// Register does nothing.
func (NopRegistrar) Register(context.Context, job.Config, *job.WindowedSummary) error { return nil }

// Options tune a coordinator run.
type Options struct {
	// Concurrency is how many workers may run at once (default 8; the
	// Lambda coordinator uses LW_PARALLEL), and how many route workers
	// share the raw objects to route (more parts only past MaxRouteRefs
	// objects each, still at most Concurrency at once). Days are
	// independent of each other (no first-seen state is read while a day
	// builds: new users come from the users table in stage 2), so any
	// order and any number at once give the same tables.
	Concurrency int
	// Poll is the longest wait between two looks at the workers' manifests
	// (default 5s); it starts at 250ms and grows while nothing changes.
	Poll time.Duration
	// Margin is kept free before ctx's deadline for the windowed stage,
	// the registration and the summary (default: a quarter of the time
	// left, at most 3 minutes). Without a deadline, the run waits until
	// every worker is done, failed, or ctx ends. The route phase waits for
	// its workers at most half of the time until the wait deadline.
	Margin time.Duration
	// Wait, if positive, bounds the waiting for workers when ctx has no
	// deadline (rollup --dispatch from a laptop): an invocation Lambda
	// lost (its retries spent, its event dropped) never reports, and
	// would otherwise be waited for until ctx ends. Days still pending
	// then are reported so and left for the next run; the windowed stage
	// and the registration still run. The route phase waits at most half
	// of it, as with a deadline.
	Wait time.Duration
	// MaxInvokeAttempts bounds the tries to hand one event to Lambda when
	// the Invoke call fails transiently (default 5).
	MaxInvokeAttempts int
	Registrar         Registrar       // default NopRegistrar
	Progress          func(Progress)  // optional: called on every change of a day
	Log               *slog.Logger    // optional
	Metrics           *metrics.Logger // optional: per-run EMF line
	Trigger           string          // what started the run: scheduled, backfill, dispatch
	EventTime         time.Time       // scheduled: the event's time
	Now               func() time.Time

	// RouteProgress, optional, is called as the route phase goes: when a
	// round's parts are dispatched, and as each part is dispatched,
	// finishes or fails (see RouteProgress). It is not folded into
	// Progress, every call of which is about a day. It is called from the
	// coordinator's one goroutine, like Progress.
	RouteProgress func(RouteProgress)

	// HTMLReport, if set, renders the HTML report of the curated tables
	// (report.Write, every day the store holds) after a run that did its
	// work (status done or partial, not failed) and Puts it at
	// HTMLReportKey, replacing the previous one; see RunSummary.HTMLReport.
	// A report that cannot be rendered or written does not fail the run.
	HTMLReport bool
}

// Progress tells how far the fan-out is.
type Progress struct {
	Day    day.Day
	Status string // dispatched, built, current, failed
	Total  int    // stale days
	Done   int    // built or current
	Failed int
}

// Day statuses in a run summary.
const (
	DayUpToDate = "up_to_date" // not stale when planned: no worker
	DayBuilt    = StatusBuilt  // a worker published it
	DayCurrent  = StatusCurrent
	DayFailed   = StatusFailed
	DayPending  = "pending" // the deadline came first; the next run picks it up
)

// DayResult is one day of a run summary.
type DayResult struct {
	Day     string        `json:"day"`
	Status  string        `json:"status"`
	Why     string        `json:"why,omitempty"` // why it was stale
	Error   string        `json:"error,omitempty"`
	Worker  *WorkerResult `json:"worker,omitempty"` // the worker's report, when there is one
	Seconds float64       `json:"seconds,omitempty"`
}

// RunSummary is what a coordinator run did, written to
// _state/runs/<run>.json and logged.
type RunSummary struct {
	Run        string          `json:"run"`
	Trigger    string          `json:"trigger"`
	EventTime  *time.Time      `json:"event_time,omitempty"`
	From       string          `json:"from"`
	To         string          `json:"to"`
	TimeZone   string          `json:"time_zone"`
	Status     string          `json:"status"` // done, partial (days pending or failed), failed
	Error      string          `json:"error,omitempty"`
	StartedAt  time.Time       `json:"started_at"`
	FinishedAt time.Time       `json:"finished_at"`
	Seconds    float64         `json:"seconds"`
	Planned    int             `json:"planned"` // stale days
	Built      int             `json:"built"`   // built or found current
	Failed     int             `json:"failed"`
	Pending    []string        `json:"pending,omitempty"`
	Days       []DayResult     `json:"days"`
	Totals     DayStats        `json:"totals"`
	Windowed   *WindowedResult `json:"windowed,omitempty"`
	Deadline   *time.Time      `json:"wait_deadline,omitempty"`
	// Route is the route phase, nil if no raw object needed routing.
	Route *RouteSummary `json:"route,omitempty"`

	// HTMLReport is set with Options.HTMLReport after a run that did not
	// fail; its Error says why no report was written. It does not change
	// Status.
	HTMLReport *HTMLReportResult `json:"html_report,omitempty"`
}

// WindowedResult is what the windowed stage did (job.WindowedSummary).
type WindowedResult struct {
	AsOf       string `json:"as_of"` // the last day with a published user_daily
	ActiveDays int    `json:"active_days_published"`
	Cohorts    int    `json:"cohorts_published"`
	UpToDate   int    `json:"up_to_date"`
}

// Run statuses.
const (
	RunDone    = "done"
	RunPartial = "partial"
	RunFailed  = "failed"
)

// Coordinate runs the fan-out for cfg.From..cfg.To: the route phase (the
// raw objects without an index entry, job.Pending, split among at most
// opts.Concurrency route workers that read each once and write its
// segments; their entries recorded in the index here; see RouteSummary),
// plan, a second route round for the objects the stale days need whose
// segments are missing (normally none), one worker per stale day through
// inv (reading segments only), wait for their manifests, the windowed
// stage for the days that finished, registration, the HTML report if
// opts.HTMLReport, and the run summary. It returns
// the summary (also when it fails) and an error only if the run could not
// do its work; days that failed or are still pending are in the summary,
// not errors.
func Coordinate(ctx context.Context, cfg job.Config, inv Invoker, opts Options) (*RunSummary, error) {
	c := newCoordinator(cfg, inv, opts)
	sum, err := c.run(ctx)
	if err == nil && c.opts.HTMLReport {
		sum.HTMLReport = c.writeHTMLReport(ctx)
	}
	c.finish(ctx, sum, err)
	return sum, err
}

type coordinator struct {
	cfg  job.Config
	inv  Invoker
	opts Options
	log  *slog.Logger
}

func newCoordinator(cfg job.Config, inv Invoker, opts Options) *coordinator {
	if opts.Concurrency < 1 {
		opts.Concurrency = 8
	}
	if opts.Poll <= 0 {
		opts.Poll = 5 * time.Second
	}
	if opts.MaxInvokeAttempts < 1 {
		opts.MaxInvokeAttempts = 5
	}
	if opts.Registrar == nil {
		opts.Registrar = NopRegistrar{}
	}
	if opts.Progress == nil {
		opts.Progress = func(Progress) {}
	}
	if opts.RouteProgress == nil {
		opts.RouteProgress = func(RouteProgress) {}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Trigger == "" {
		opts.Trigger = KindBackfill
	}
	if cfg.Log == nil {
		cfg.Log = opts.Log
	}
	return &coordinator{cfg: cfg, inv: inv, opts: opts, log: opts.Log}
}

// waitDeadline is when the coordinator stops waiting for workers.
func (c *coordinator) waitDeadline(ctx context.Context) (time.Time, bool) {
	deadline, ok := ctx.Deadline()
	if !ok {
		if c.opts.Wait > 0 {
			return time.Now().Add(c.opts.Wait), true
		}
		return time.Time{}, false
	}
	margin := c.opts.Margin
	if margin <= 0 {
		margin = min(3*time.Minute, time.Until(deadline)/4)
	}
	return deadline.Add(-margin), true
}

// task is one worker invocation on its way through a fan-out: a stale day
// to build, or a part of the route phase.
type task struct {
	ev    WorkerEvent
	attrs []any // log attributes that name it
	// check says whether the worker finished: "" while it has not, else
	// its final status and, for StatusFailed, why.
	check    func(ctx context.Context) (status, why string, err error)
	attempts int
	status   string // "" before dispatch, "dispatched", then check's
	err      string
	started  time.Time
	seconds  float64
}

// dayState is a stale day on its way through the fan-out.
type dayState struct {
	task
	d      day.Day
	why    string
	before map[string]bool // runs of its daily partitions before dispatch
}

func (c *coordinator) run(ctx context.Context) (*RunSummary, error) {
	sum := c.newSummary()
	waitUntil, hasDeadline := c.waitDeadline(ctx)
	routeUntil := waitUntil
	if hasDeadline {
		t := waitUntil.UTC()
		sum.Deadline = &t
		// Lost or slow route workers must not keep every day from being
		// dispatched: the day workers route what is missing themselves.
		routeUntil = time.Now().Add(time.Until(waitUntil) / 2)
	}
	stale, err := c.routeAndPlan(ctx, sum, routeUntil, hasDeadline)
	if err != nil {
		return sum, err
	}
	tasks := make([]*task, len(stale))
	for i, s := range stale {
		tasks[i] = &s.task
	}
	progress := func(i, done, failed int) {
		s := stale[i]
		c.opts.Progress(Progress{Day: s.d, Status: s.status, Total: len(stale), Done: done, Failed: failed})
	}
	err = c.fanOut(ctx, "days", tasks, waitUntil, hasDeadline, progress)
	c.record(sum, stale)
	if err != nil {
		return sum, err
	}
	// Stage 2 for the days that finished; days still pending refresh the
	// windowed tables when they are built (their user_daily runs change).
	var changed []day.Day
	for _, s := range stale {
		if s.status == DayBuilt {
			changed = append(changed, s.d)
		}
	}
	return sum, c.windowed(ctx, sum, changed)
}

// newSummary starts the run's summary, and names the run in the log.
func (c *coordinator) newSummary() *RunSummary {
	start := c.opts.Now()
	sum := &RunSummary{
		Run:     ulid.MustNew(ulid.Timestamp(start), ulid.DefaultEntropy()).String(),
		Trigger: c.opts.Trigger, From: c.cfg.From.String(), To: c.cfg.To.String(),
		StartedAt: start.UTC(),
	}
	if c.cfg.Rules.Loc != nil {
		sum.TimeZone = c.cfg.Rules.Loc.String()
	}
	if !c.opts.EventTime.IsZero() {
		t := c.opts.EventTime.UTC()
		sum.EventTime = &t
	}
	c.log = c.log.With("run", sum.Run)
	c.cfg.Log = c.cfg.Log.With("run", sum.Run)
	c.log.Info("coordinator starting", "trigger", sum.Trigger, "from", sum.From, "to", sum.To, "store", c.cfg.Store.String())
	return sum
}

// routeAndPlan runs the route phase, then plans: it returns the stale
// days, with the others in sum as up to date. The objects not indexed yet
// are read by route workers, each once, before any day is planned; their
// entries go into the index here, the only writer of the index in the run.
func (c *coordinator) routeAndPlan(ctx context.Context, sum *RunSummary, routeUntil time.Time, hasDeadline bool) ([]*dayState, error) {
	t0 := time.Now()
	pending, err := job.Pending(ctx, c.cfg)
	if err != nil {
		return nil, fmt.Errorf("list the raw objects not routed yet: %w", err)
	}
	if len(pending) > 0 {
		sum.Route = &RouteSummary{}
		err := c.routeRound(ctx, sum.Run, pending, sum.Route, routeUntil, hasDeadline)
		sum.Route.Seconds = time.Since(t0).Seconds()
		if err != nil {
			return nil, err
		}
	}
	plan, err := job.Plan(ctx, c.cfg)
	if err != nil {
		return nil, fmt.Errorf("plan %s..%s: %w", c.cfg.From, c.cfg.To, err)
	}
	if len(plan.Route) > 0 {
		// Objects indexed earlier whose segments the stale days lack (a
		// route worker of this run failed, or segments were deleted): a
		// second round, so that the day workers do not each read them.
		t1 := time.Now()
		if sum.Route == nil {
			sum.Route = &RouteSummary{}
		}
		err := c.routeRound(ctx, sum.Run, plan.Route, sum.Route, routeUntil, hasDeadline)
		sum.Route.Seconds += time.Since(t1).Seconds()
		if err != nil {
			return nil, err
		}
	}
	var stale []*dayState
	for _, p := range plan.Days {
		if !p.Build {
			sum.Days = append(sum.Days, DayResult{Day: p.Day.String(), Status: DayUpToDate, Why: p.Why})
			continue
		}
		before, err := currentRuns(ctx, c.cfg.Store, p.Day)
		if err != nil {
			return nil, err
		}
		s := &dayState{d: p.Day, why: p.Why, before: before}
		s.ev = WorkerEvent{Role: RoleWorker, Day: p.Day.String(), Run: sum.Run}
		s.attrs = []any{"day", p.Day.String()}
		s.check = func(ctx context.Context) (string, string, error) { return c.check(ctx, sum.Run, s) }
		stale = append(stale, s)
	}
	sum.Planned = len(stale)
	c.log.Info("planned", "stale_days", len(stale), "days", len(plan.Days), "read_bytes", plan.ReadBytes)
	return stale, nil
}

// windowed runs the windowed stage (job.RunWindowed) and registers what
// the run published. Another run's stage 2 (a backfill's, say) may hold
// its lease: it waits at most workerLockWait, and a quarter of the time
// left, logging the holder; the next night's run refreshes what this one
// could not.
func (c *coordinator) windowed(ctx context.Context, sum *RunSummary, changed []day.Day) error {
	wcfg := c.cfg
	if wcfg.LockWait == 0 {
		wcfg.LockWait = workerLockWait
		if deadline, ok := ctx.Deadline(); ok {
			wcfg.LockWait = min(workerLockWait, time.Until(deadline)/4)
		}
	}
	ws, err := job.RunWindowed(ctx, wcfg, changed)
	if err != nil {
		return fmt.Errorf("windowed tables: %w", err)
	}
	if ws != nil {
		sum.Windowed = &WindowedResult{AsOf: ws.AsOf.String(), ActiveDays: ws.ActiveDays, Cohorts: ws.Cohorts, UpToDate: ws.UpToDate}
	}
	if err := c.opts.Registrar.Register(ctx, c.cfg, ws); err != nil {
		return fmt.Errorf("register: %w", err)
	}
	return nil
}

// fanOut invokes a worker for each task, in order, at most Concurrency at
// once, and polls each task's check (every 250ms at first, less often
// while nothing changes, at most every Options.Poll) until every worker
// has finished or failed, or the wait deadline comes (tasks not finished
// then keep their status: "" or "dispatched"). An Invoke that fails
// transiently is tried again, up to MaxInvokeAttempts; a task whose
// invocation fails for good gets StatusFailed. progress, if not nil, is
// called with a task's index and the counts so far whenever a task is
// dispatched or finishes. phase names the fan-out in the log. The error
// is ctx's.
func (c *coordinator) fanOut(ctx context.Context, phase string, tasks []*task, waitUntil time.Time, hasDeadline bool, progress func(i, done, failed int)) error {
	f := &fan{c: c, tasks: tasks, progress: progress}
	f.queue = make([]int, len(tasks))
	for i := range f.queue {
		f.queue[i] = i
	}
	const minPoll = 250 * time.Millisecond
	poll := minPoll
	for len(f.queue) > 0 || len(f.inflight) > 0 {
		if hasDeadline && !time.Now().Before(waitUntil) {
			c.log.Warn("wait deadline reached; the work not finished is left for the next run",
				"phase", phase, "in_flight", len(f.inflight), "not_dispatched", len(f.queue))
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		dispatched := f.dispatch(ctx)
		finished, err := f.watch(ctx)
		if err != nil {
			return err
		}
		if dispatched || finished {
			poll = minPoll
			continue
		}
		d := poll
		if hasDeadline {
			d = min(d, time.Until(waitUntil))
		}
		if err := wait.Sleep(ctx, max(d, 0)); err != nil {
			return err
		}
		poll = min(poll*2, c.opts.Poll)
	}
	return nil
}

// fan is the state of one fanOut: the tasks not dispatched yet (queue)
// and those dispatched and not finished (inflight), by index.
type fan struct {
	c               *coordinator
	tasks           []*task
	queue, inflight []int
	done, failed    int
	progress        func(i, done, failed int)
}

func (f *fan) changed(i int) {
	if f.progress != nil {
		f.progress(i, f.done, f.failed)
	}
}

// dispatch invokes workers for the queue's tasks, in order, while fewer
// than Concurrency are in flight; an invocation that fails transiently is
// left at the queue's head for the next round. It reports whether a task
// changed.
func (f *fan) dispatch(ctx context.Context) bool {
	c, changed := f.c, false
	for len(f.inflight) < c.opts.Concurrency && len(f.queue) > 0 {
		i := f.queue[0]
		t := f.tasks[i]
		t.attempts++
		err := c.inv.Invoke(ctx, t.ev)
		var werr *WorkerError
		switch {
		case err == nil || errors.As(err, &werr):
			if werr != nil {
				c.log.Warn("worker failed; Lambda retries it", append(t.attrs, "error", werr.Error())...)
			}
			f.queue = f.queue[1:]
			t.status, t.started = "dispatched", time.Now()
			f.inflight = append(f.inflight, i)
			c.log.Info("worker invoked", t.attrs...)
		case Classify(err) == Permanent || t.attempts >= c.opts.MaxInvokeAttempts:
			f.queue = f.queue[1:]
			t.status, t.err = StatusFailed, err.Error()
			f.failed++
			c.log.Error("could not invoke the worker", append(t.attrs, "attempts", t.attempts, "error", err.Error())...)
		default:
			c.log.Warn("invoke failed; trying again", append(t.attrs, "attempts", t.attempts, "error", err.Error())...)
			return changed
		}
		f.changed(i)
		changed = true
	}
	return changed
}

// watch checks every task in flight, and reports whether one finished.
// Only ctx's error is returned: a failed check is tried again next round.
func (f *fan) watch(ctx context.Context) (bool, error) {
	c, changed := f.c, false
	for j := 0; j < len(f.inflight); j++ {
		i := f.inflight[j]
		t := f.tasks[i]
		status, errMsg, err := t.check(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			c.log.Warn("could not check on a worker; trying again", append(t.attrs, "error", err.Error())...)
			continue
		}
		if status == "" {
			continue
		}
		t.status, t.err, t.seconds = status, errMsg, time.Since(t.started).Seconds()
		if status == StatusFailed {
			f.failed++
			c.log.Error("worker failed", append(t.attrs, "seconds", t.seconds, "error", errMsg)...)
		} else {
			f.done++
			c.log.Info("worker finished", append(t.attrs, "status", status, "seconds", t.seconds)...)
		}
		f.inflight = slices.Delete(f.inflight, j, j+1)
		j--
		f.changed(i)
		changed = true
	}
	return changed, nil
}

// check says whether a dispatched day has finished: "" while it has not,
// else its status (built, current or failed) and, if failed, why. A
// report that is there but unusable (readReport: it does not decode, or is
// about another day or run) fails the day at once, as a worker reporting
// a permanent failure does: the summary counts it failed and the next run
// plans the day again if it is still stale. Only a failing read of the
// store is an error, which fanOut retries.
func (c *coordinator) check(ctx context.Context, run string, s *dayState) (string, string, error) {
	rep, err := readReport(ctx, c.cfg.Store, run, s.d)
	switch {
	case errors.Is(err, errBadReport):
		return DayFailed, err.Error(), nil
	case err != nil:
		return "", "", err
	}
	if rep != nil {
		switch rep.Status {
		case StatusFailed:
			return DayFailed, rep.Error, nil
		case StatusBuilt, StatusCurrent:
			return rep.Status, "", nil
		}
		// StatusRetry: Lambda invokes the worker again; keep watching.
	}
	// No report (yet): the day is done when every daily table has a
	// manifest of one run that was not there before dispatch (published by
	// this run's worker, or by another writer meanwhile).
	runs, err := currentRuns(ctx, c.cfg.Store, s.d)
	if err != nil {
		return "", "", err
	}
	if len(runs) == 1 {
		for r := range runs {
			if r != "" && !s.before[r] {
				return DayBuilt, "", nil
			}
		}
	}
	return "", "", nil
}

// currentRuns returns the set of the runs that the daily tables of day d
// currently point at ("" for a table never published).
func currentRuns(ctx context.Context, st store.Store, d day.Day) (map[string]bool, error) {
	runs := map[string]bool{}
	for _, t := range rollups.Daily {
		m, err := publish.Current(ctx, st, t.Name, d)
		switch {
		case errors.Is(err, store.ErrNotExist):
			runs[""] = true
		case err != nil:
			return nil, err
		default:
			runs[m.Run] = true
		}
	}
	return runs, nil
}

// record copies the days' outcomes into the summary, with the workers'
// reports where there are.
func (c *coordinator) record(sum *RunSummary, stale []*dayState) {
	for _, s := range stale {
		r := DayResult{Day: s.d.String(), Status: s.status, Why: s.why, Error: s.err, Seconds: s.seconds}
		switch s.status {
		case DayBuilt, DayCurrent:
			sum.Built++
		case DayFailed:
			sum.Failed++
		default:
			r.Status = DayPending
			sum.Pending = append(sum.Pending, r.Day)
		}
		sum.Days = append(sum.Days, r)
	}
	slices.SortFunc(sum.Days, func(a, b DayResult) int {
		if a.Day < b.Day {
			return -1
		}
		if a.Day > b.Day {
			return 1
		}
		return 0
	})
}

// finish completes the summary: the workers' reports, totals, status; then
// writes it to the store, logs it and emits the run's metrics.
func (c *coordinator) finish(ctx context.Context, sum *RunSummary, runErr error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	for i := range sum.Days {
		r := &sum.Days[i]
		if r.Status != DayBuilt && r.Status != DayCurrent && r.Status != DayFailed {
			continue
		}
		d, _ := day.Parse(r.Day)
		rep, err := readReport(rctx, c.cfg.Store, sum.Run, d)
		// A read that failed (not a report that is unusable) is tried
		// again, so that the totals hold every day's counts.
		for pause := 50 * time.Millisecond; err != nil && !errors.Is(err, errBadReport) && pause <= 2*time.Second; pause *= 2 {
			c.log.Warn("reading a day report failed; trying again", "day", r.Day, "error", err.Error())
			if wait.Sleep(rctx, pause) != nil {
				break
			}
			rep, err = readReport(rctx, c.cfg.Store, sum.Run, d)
		}
		if err != nil || rep == nil {
			if err != nil {
				c.log.Error("day report unreadable: the summary's totals lack this day's counts", "day", r.Day, "error", err.Error())
			}
			continue
		}
		r.Worker = rep
		if rep.Status == StatusCurrent && r.Status == DayBuilt {
			r.Status = DayCurrent
		}
		if rep.Stats != nil {
			sum.Totals.add(rep.Stats)
		}
	}
	switch {
	case runErr != nil:
		sum.Status, sum.Error = RunFailed, runErr.Error()
	case len(sum.Pending) > 0 || sum.Failed > 0:
		sum.Status = RunPartial
	default:
		sum.Status = RunDone
	}
	end := c.opts.Now()
	sum.FinishedAt = end.UTC()
	sum.Seconds = end.Sub(sum.StartedAt).Seconds()

	if err := writeJSON(rctx, c.cfg.Store, SummaryKey(sum.Run), sum); err != nil {
		c.log.Warn("run summary not written", "key", SummaryKey(sum.Run), "error", err.Error())
	}
	attrs := []any{"status", sum.Status, "trigger", sum.Trigger, "from", sum.From, "to", sum.To,
		"planned", sum.Planned, "built", sum.Built, "failed", sum.Failed, "pending", sum.Pending,
		"kept_rows", sum.Totals.KeptRows, "seconds", sum.Seconds, "summary", SummaryKey(sum.Run)}
	switch sum.Status {
	case RunDone:
		c.log.Info("run finished", attrs...)
	case RunPartial:
		c.log.Warn("run finished with days left for the next run", attrs...)
	default:
		c.log.Error("run failed", append(attrs, "error", sum.Error)...)
	}
	ms := append(sum.Totals.metrics(sum.Seconds),
		metrics.Metric{Name: "DaysPlanned", Value: float64(sum.Planned), Unit: metrics.Count},
		metrics.Metric{Name: "DaysBuilt", Value: float64(sum.Built), Unit: metrics.Count},
		metrics.Metric{Name: "DaysFailed", Value: float64(sum.Failed), Unit: metrics.Count},
		metrics.Metric{Name: "DaysPending", Value: float64(len(sum.Pending)), Unit: metrics.Count},
		metrics.Metric{Name: "RunFailures", Value: b2f(sum.Status == RunFailed), Unit: metrics.Count},
	)
	if r := sum.Route; r != nil {
		ms = append(ms,
			metrics.Metric{Name: "ObjectsRouted", Value: float64(r.Routed), Unit: metrics.Count},
			metrics.Metric{Name: "BytesRouted", Value: float64(r.Bytes), Unit: metrics.Bytes},
			metrics.Metric{Name: "RouteWorkers", Value: float64(r.Workers), Unit: metrics.Count},
			metrics.Metric{Name: "RouteFailures", Value: float64(r.Failed + r.Pending), Unit: metrics.Count},
			metrics.Metric{Name: "RouteSeconds", Value: r.Seconds, Unit: metrics.Seconds},
		)
	}
	if sum.HTMLReport != nil {
		ms = append(ms, metrics.Metric{Name: "HTMLReportFailures", Value: b2f(sum.HTMLReport.Error != ""), Unit: metrics.Count})
	}
	props := map[string]any{"run": sum.Run, "trigger": sum.Trigger, "from": sum.From, "to": sum.To, "status": sum.Status}
	if err := c.opts.Metrics.Emit(map[string]string{"Stage": "run"}, ms, props); err != nil {
		c.log.Warn("metrics not written", "error", err.Error())
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
