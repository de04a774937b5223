package lambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/index"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/internal/wait"
)

// RunRecord is what the start stage decided about a run, at RunRecordKey:
// every later stage reads its days and settings from it, not from its
// event, so that the events stay small and a run is one thing.
type RunRecord struct {
	Run       string     `json:"run"`
	Execution string     `json:"execution,omitempty"` // the state machine execution's name
	Trigger   string     `json:"trigger"`             // scheduled or backfill
	EventTime *time.Time `json:"event_time,omitempty"`
	From      string     `json:"from"`
	To        string     `json:"to"`
	TimeZone  string     `json:"time_zone"`
	StartedAt time.Time  `json:"started_at"`
	// EraseError says why the run's erase stage failed (its requests are
	// left for the next run); the run then ends partial.
	EraseError string `json:"erase_error,omitempty"`
	Parts      int    `json:"route_parts"` // route parts 1..Parts
	Objects    int    `json:"route_objects"`
	Bytes      int64  `json:"route_bytes"`
}

// RunRecordKey is where the start stage records run run.
func RunRecordKey(run string) string { return RunsPrefix + run + "/run.json" }

// PlanKey is where the plan stage records which days it found stale.
func PlanKey(run string) string { return RunsPrefix + run + "/plan.json" }

// windowedKey holds the windowed stage's job.WindowedSummary, for the
// register stage; htmlReportResultKey the report stage's result.
func windowedKey(run string) string         { return RunsPrefix + run + "/windowed.json" }
func htmlReportResultKey(run string) string { return RunsPrefix + run + "/report.json" }

// StartResult is the start stage's answer: the state machine's state for
// the rest of the run (Parts feeds the Route map, Parallel its and the
// Build map's concurrency, Report the report choice). Error is always
// there (null) so that a stage's failure caught into it can be passed to
// the finish stage.
type StartResult struct {
	Run      string       `json:"run"`
	From     string       `json:"from"`
	To       string       `json:"to"`
	Parallel int          `json:"parallel"`
	Report   bool         `json:"report"`
	Parts    []int        `json:"parts"`
	Error    *CaughtError `json:"error"`
}

// runStart is the start stage: it parses the run's input (ParseTrigger),
// names the run, lists the raw objects not routed yet (job.Pending),
// writes each route part's input (RouteInputKey), then the run record.
// The run is the execution's name when that is a ULID of about now (as
// rollup --dispatch sfn: names executions), else a new ULID:
// builds leave objects listed after its time for the next run
// (job.ListedBefore). A start retried after a failure starts over; what
// the failed try wrote is never read.
func runStart(ctx context.Context, env *Env, ev StageEvent) (*StartResult, error) {
	cfg := env.Config
	trig, err := ParseTrigger(ev.Input, cfg.Location, cfg.MaxLateness)
	if err != nil {
		return nil, &PermanentError{Msg: err.Error()}
	}
	now := env.Deps.Now()
	run := ev.Execution
	if id, perr := ulid.ParseStrict(run); perr != nil || ulid.Time(id.Time()).Sub(now).Abs() > time.Hour {
		// Not a run id made for this execution (ListedBefore reads its time).
		run = ulid.MustNew(ulid.Timestamp(now), ulid.DefaultEntropy()).String()
	}
	rec := &RunRecord{Run: run, Execution: ev.Execution, Trigger: trig.Kind, From: trig.From.String(), To: trig.To.String(),
		TimeZone: cfg.Location.String(), StartedAt: now.UTC()}
	if !trig.Time.IsZero() {
		t := trig.Time.UTC()
		rec.EventTime = &t
	}
	rec.EraseError = eraseFailure(ev.Erase)
	log := env.Log.With("stage", StageStart, "run", run)
	if rec.EraseError != "" {
		log.Error("the erase stage failed; its requests are left for the next run", "error", rec.EraseError)
	}
	jcfg := env.jobConfig(trig.From, trig.To)
	pending, err := job.Pending(ctx, jcfg)
	if err != nil {
		return nil, fmt.Errorf("list the raw objects not routed yet: %w", err)
	}
	res := &StartResult{Run: run, From: rec.From, To: rec.To, Parallel: cfg.Parallel, Report: cfg.HTMLReport, Parts: []int{}}
	rules := routeRules(jcfg)
	parts := splitRoute(pending, cfg.Parallel)
	for i, part := range parts {
		in := RouteInput{Run: run, Part: i + 1, Rules: rules}
		for _, r := range part {
			in.Route = append(in.Route, routeRefOf(r))
			rec.Bytes += r.Size
		}
		if err := writeJSON(ctx, env.Store, RouteInputKey(run, in.Part), in); err != nil {
			return nil, fmt.Errorf("write route part %d of %d: %w", in.Part, len(parts), err)
		}
		res.Parts = append(res.Parts, in.Part)
		rec.Objects += len(part)
	}
	rec.Parts = len(res.Parts)
	if err := writeJSON(ctx, env.Store, RunRecordKey(run), rec); err != nil {
		return nil, fmt.Errorf("write the run record: %w", err)
	}
	log.Info("run started", "trigger", rec.Trigger, "from", rec.From, "to", rec.To, "execution", ev.Execution,
		"route_parts", rec.Parts, "route_objects", rec.Objects, "route_bytes", rec.Bytes, "store", env.Store.String())
	return res, nil
}

// eraseFailure is why the erase stage failed, from what the state machine
// passed on (a caught {"Error","Cause"}), or "" if it did not.
func eraseFailure(b json.RawMessage) string {
	var c CaughtError
	if len(b) == 0 || json.Unmarshal(b, &c) != nil || c.Error == "" {
		return ""
	}
	return c.String()
}

// readRunRecord reads run's record; a run without one is a permanent
// failure of the stage that asks (the start stage never ran for it).
func readRunRecord(ctx context.Context, st store.Store, run string) (*RunRecord, day.Day, day.Day, error) {
	b, err := st.Get(ctx, RunRecordKey(run))
	if errors.Is(err, store.ErrNotExist) {
		return nil, 0, 0, &PermanentError{Msg: fmt.Sprintf("run %s has no record at %s: start it with a start stage (a state machine execution)", run, RunRecordKey(run))}
	}
	if err != nil {
		return nil, 0, 0, err
	}
	var rec RunRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, 0, 0, &PermanentError{Msg: fmt.Sprintf("run record %s: %v", RunRecordKey(run), err)}
	}
	from, ferr := day.Parse(rec.From)
	to, terr := day.Parse(rec.To)
	if rec.Run != run || ferr != nil || terr != nil {
		return nil, 0, 0, &PermanentError{Msg: fmt.Sprintf("run record %s is not run %s's, or its days do not parse", RunRecordKey(run), run)}
	}
	return &rec, from, to, nil
}

// PlanRecord is what the plan stage found, at PlanKey.
type PlanRecord struct {
	Days      []DayResult `json:"days"` // every day of the run: stale ones with status "planned"
	Planned   int         `json:"planned"`
	ReadBytes int64       `json:"read_bytes"`
	// Unrouted are raw objects the stale days need whose segments are
	// missing (a route part failed): their builds read them.
	Unrouted int `json:"unrouted,omitempty"`
	// IndexError says why the routed objects could not be recorded in the
	// index (the plan scanned them again).
	IndexError string `json:"index_error,omitempty"`
}

// dayPlanned is a stale day's status in a PlanRecord.
const dayPlanned = "planned"

// PlanResult is the plan stage's answer: the stale days, for the Build map.
type PlanResult struct {
	Days []string `json:"days"`
}

// runPlan is the plan stage: it records the index entries of the route
// parts that routed (job.AddEntries; a failure there only costs the plan a
// scan), plans the run's days (job.Plan), writes the plan record and
// returns the stale days.
func runPlan(ctx context.Context, env *Env, run string) (*PlanResult, error) {
	rec, from, to, err := readRunRecord(ctx, env.Store, run)
	if err != nil {
		return nil, err
	}
	log := env.Log.With("stage", StagePlan, "run", run)
	cfg := env.jobConfig(from, to)
	pr := &PlanRecord{Days: []DayResult{}}
	var entries []index.Entry
	for part := 1; part <= rec.Parts; part++ {
		rep, err := readRouteReport(ctx, env.Store, run, part)
		if err != nil && !errors.Is(err, errBadReport) {
			return nil, err
		}
		if rep != nil && rep.Status == StatusRouted {
			entries = append(entries, rep.Entries...)
		}
	}
	if len(entries) > 0 {
		if err := job.AddEntries(ctx, cfg, entries); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			pr.IndexError = err.Error()
			log.Warn("routed objects not recorded in the index; the plan scans them again", "error", err.Error())
		}
	}
	plan, err := job.Plan(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("plan %s..%s: %w", from, to, err)
	}
	res := &PlanResult{Days: []string{}}
	for _, p := range plan.Days {
		r := DayResult{Day: p.Day.String(), Status: DayUpToDate, Why: p.Why}
		if p.Build {
			r.Status = dayPlanned
			res.Days = append(res.Days, r.Day)
		}
		pr.Days = append(pr.Days, r)
	}
	pr.Planned, pr.ReadBytes, pr.Unrouted = len(res.Days), plan.ReadBytes, len(plan.Route)
	if err := writeJSON(ctx, env.Store, PlanKey(run), pr); err != nil {
		return nil, fmt.Errorf("write the plan record: %w", err)
	}
	log.Info("planned", "stale_days", len(res.Days), "days", len(plan.Days), "read_bytes", plan.ReadBytes, "unrouted_objects", pr.Unrouted)
	return res, nil
}

// readPlan reads run's plan record: nil if the plan stage did not write
// one.
func readPlan(ctx context.Context, st store.Store, run string) (*PlanRecord, error) {
	return readReportJSON(ctx, st, "plan", PlanKey(run), func(*PlanRecord) error { return nil })
}

// WindowedResult is what the windowed stage did (job.WindowedSummary).
type WindowedResult struct {
	AsOf       string `json:"as_of"` // the last day with a published user_daily
	ActiveDays int    `json:"active_days_published"`
	Cohorts    int    `json:"cohorts_published"`
	UpToDate   int    `json:"up_to_date"`
	// FunnelsError, FunnelsFileBad and FunnelDaysRemade are
	// job.WindowedSummary's: why funnel_daily was not (all) brought up to
	// date ("" if it was), whether that is config/funnels.json, and the
	// days whose funnel events were made again from their events.
	FunnelsError     string `json:"funnels_error,omitempty"`
	FunnelsFileBad   bool   `json:"funnels_file_bad,omitempty"`
	FunnelDaysRemade int    `json:"funnel_days_remade,omitempty"`
}

// runWindowed is the windowed stage (job.RunWindowed) over the run's days.
// Another run's stage 2 (a backfill's, say) may hold its lease: it waits at
// most workerLockWait, or a quarter of the time left; then the stage fails
// transiently and the state machine retries it. Its summary is kept for
// the register stage.
func runWindowed(ctx context.Context, env *Env, run string) (*WindowedResult, error) {
	_, from, to, err := readRunRecord(ctx, env.Store, run)
	if err != nil {
		return nil, err
	}
	cfg := env.jobConfig(from, to)
	cfg.Log = env.Log.With("stage", StageWindowed, "run", run)
	cfg.LockWait = workerLockWait
	if deadline, ok := ctx.Deadline(); ok {
		cfg.LockWait = min(workerLockWait, time.Until(deadline)/4)
	}
	ws, err := job.RunWindowed(ctx, cfg, nil)
	if err != nil {
		// A *lease.HeldError (another run's stage 2, a backfill's say)
		// is transient for Classify: the state machine tries later.
		return nil, fmt.Errorf("windowed tables: %w", err)
	}
	if err := writeJSON(ctx, env.Store, windowedKey(run), ws); err != nil {
		return nil, fmt.Errorf("keep the windowed summary for the register stage: %w", err)
	}
	return windowedResult(ws), nil
}

func windowedResult(ws *job.WindowedSummary) *WindowedResult {
	if ws == nil {
		return nil
	}
	return &WindowedResult{AsOf: ws.AsOf.String(), ActiveDays: ws.ActiveDays, Cohorts: ws.Cohorts, UpToDate: ws.UpToDate,
		FunnelsError: ws.FunnelsError, FunnelsFileBad: ws.FunnelsFileBad, FunnelDaysRemade: ws.FunnelDaysRemade}
}

// readWindowed reads what the windowed stage of run kept: nil, false if
// it did not run to its end; nil, true if there was no user_daily yet.
func readWindowed(ctx context.Context, st store.Store, run string) (*job.WindowedSummary, bool, error) {
	b, err := st.Get(ctx, windowedKey(run))
	if errors.Is(err, store.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var ws *job.WindowedSummary
	if err := json.Unmarshal(b, &ws); err != nil {
		return nil, false, &PermanentError{Msg: fmt.Sprintf("windowed summary %s: %v", windowedKey(run), err)}
	}
	return ws, true, nil
}

// RegisterResult is the register stage's answer.
type RegisterResult struct {
	Registered bool `json:"registered"`
}

// runRegister is the register stage: the Registrar over the run's days and
// the windowed partitions its windowed stage covered.
func runRegister(ctx context.Context, env *Env, run string) (*RegisterResult, error) {
	_, from, to, err := readRunRecord(ctx, env.Store, run)
	if err != nil {
		return nil, err
	}
	ws, ok, err := readWindowed(ctx, env.Store, run)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &PermanentError{Msg: fmt.Sprintf("run %s: no windowed summary at %s: the register stage runs after the windowed stage", run, windowedKey(run))}
	}
	cfg := env.jobConfig(from, to)
	cfg.Log = env.Log.With("stage", StageRegister, "run", run)
	if err := env.Deps.Registrar.Register(ctx, cfg, ws); err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	return &RegisterResult{Registered: true}, nil
}

// runReport is the report stage: the HTML report (writeHTMLReport), its
// result kept for the summary. A report that cannot be written is not a
// failure of the stage.
func runReport(ctx context.Context, env *Env, run string) (*HTMLReportResult, error) {
	if _, _, _, err := readRunRecord(ctx, env.Store, run); err != nil {
		return nil, err
	}
	res := writeHTMLReport(ctx, env, env.Log.With("stage", StageReport, "run", run))
	if err := writeJSON(ctx, env.Store, htmlReportResultKey(run), res); err != nil {
		return nil, fmt.Errorf("keep the report's result: %w", err)
	}
	return res, nil
}

// readRetrying reads with read, trying again a few times on a store error
// (not on errBadReport or a *PermanentError, which waiting does not mend):
// the summary should hold every day's counts.
func readRetrying[T any](ctx context.Context, read func() (T, error)) (T, error) {
	v, err := read()
	for pause := 50 * time.Millisecond; err != nil && retryableRead(err) && pause <= 2*time.Second; pause *= 2 {
		if wait.Sleep(ctx, pause) != nil {
			break
		}
		v, err = read()
	}
	return v, err
}

func retryableRead(err error) bool {
	var p *PermanentError
	return !errors.Is(err, errBadReport) && !errors.As(err, &p)
}

// EraseResult is the erase stage's answer: the requests it finished (see
// their receipts under _state/erasures/); counts and ids, never a
// person's id.
type EraseResult struct {
	Requests    []string `json:"requests"`
	DaysRebuilt int      `json:"days_rebuilt"`
	Objects     int      `json:"objects_rewritten"`
}

// runErase is the erase stage: job.Erase, every pending erasure request
// carried out before the run lists its raw objects. Its leases last until
// the invocation's deadline, as a build's do. An erase that does not
// finish in one invocation (the deadline, another erase holding its
// lease) fails transiently and the state machine tries again; each try
// goes on from where the last stopped.
func runErase(ctx context.Context, env *Env) (*EraseResult, error) {
	cfg := env.jobConfig(0, 0)
	cfg.Log = env.Log.With("stage", StageErase)
	ctx, cancel := leaseTimes(ctx, &cfg)
	defer cancel()
	receipts, err := job.Erase(ctx, cfg)
	res := &EraseResult{Requests: []string{}}
	for _, r := range receipts {
		res.Requests = append(res.Requests, r.Request)
		res.DaysRebuilt += len(r.DaysRebuilt)
		res.Objects += len(r.Objects)
	}
	if err != nil {
		// Another erase holding the lease (*lease.HeldError) and the
		// invocation's deadline are transient for Classify.
		return nil, fmt.Errorf("erase: %w", err)
	}
	if len(receipts) > 0 {
		cfg.Log.Info("erasure requests carried out", "requests", len(receipts), "days_rebuilt", res.DaysRebuilt, "objects_rewritten", res.Objects)
	}
	return res, nil
}
