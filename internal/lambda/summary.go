package lambda

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/metrics"
)

// Day statuses in a run summary.
const (
	DayUpToDate = "up_to_date" // not stale when planned: not built
	DayBuilt    = StatusBuilt  // its build published it
	DayCurrent  = StatusCurrent
	DayFailed   = StatusFailed
)

// DayResult is one day of a run summary.
type DayResult struct {
	Day     string        `json:"day"`
	Status  string        `json:"status"`
	Why     string        `json:"why,omitempty"` // why it was stale
	Error   string        `json:"error,omitempty"`
	Worker  *WorkerResult `json:"worker,omitempty"` // the build's report, when there is one
	Seconds float64       `json:"seconds,omitempty"`
}

// RunSummary is what a run did, written by the finish stage to
// _state/runs/<run>.json and logged.
type RunSummary struct {
	Run       string     `json:"run"`
	Execution string     `json:"execution,omitempty"`
	Trigger   string     `json:"trigger"`
	EventTime *time.Time `json:"event_time,omitempty"`
	From      string     `json:"from"`
	To        string     `json:"to"`
	TimeZone  string     `json:"time_zone"`
	Status    string     `json:"status"` // done, partial (days failed, or the erase stage), failed (a stage failed)
	Error     string     `json:"error,omitempty"`
	// EraseError says why the erase stage failed: the pending erasure
	// requests wait for the next run, and the run is partial.
	EraseError string          `json:"erase_error,omitempty"`
	StartedAt  time.Time       `json:"started_at"`
	FinishedAt time.Time       `json:"finished_at"`
	Seconds    float64         `json:"seconds"`
	Planned    int             `json:"planned"` // stale days
	Built      int             `json:"built"`   // built or found current
	Failed     int             `json:"failed"`
	Days       []DayResult     `json:"days"`
	Totals     DayStats        `json:"totals"`
	Windowed   *WindowedResult `json:"windowed,omitempty"`
	// Route is the route stage, nil if no raw object needed routing.
	Route *RouteSummary `json:"route,omitempty"`
	// HTMLReport is the report stage's result (LW_REPORT); its Error says
	// why no report was written. It does not change Status.
	HTMLReport *HTMLReportResult `json:"html_report,omitempty"`
}

// Run statuses.
const (
	RunDone    = "done"
	RunPartial = "partial"
	RunFailed  = "failed"
)

// FinishResult is the finish stage's answer: the state machine ends in
// Done when Status is done, else in a failed execution.
type FinishResult struct {
	Run     string `json:"run"`
	Status  string `json:"status"`
	Planned int    `json:"planned"`
	Built   int    `json:"built"`
	Failed  int    `json:"failed"`
	Summary string `json:"summary"` // its key in the store
	Error   string `json:"error,omitempty"`
}

// runFinish is the finish stage: it gathers what the run's stages kept
// (the run record, the plan, each day's and route part's report, the
// windowed summary, the report's result) and ev.Error, the failure the
// state machine caught from a stage, into the run summary; it writes the
// summary, logs it and emits the run's metrics. A stale day without a
// usable report failed (its build failed before it could write one: the
// execution's history has why). It then deletes the route parts' inputs.
func runFinish(ctx context.Context, env *Env, ev StageEvent) (*FinishResult, error) {
	rec, _, _, err := readRunRecord(ctx, env.Store, ev.Run)
	if err != nil {
		return nil, err
	}
	log := env.Log.With("stage", StageFinish, "run", ev.Run)
	sum := &RunSummary{Run: rec.Run, Execution: rec.Execution, Trigger: rec.Trigger, EventTime: rec.EventTime,
		From: rec.From, To: rec.To, TimeZone: rec.TimeZone, StartedAt: rec.StartedAt, Days: []DayResult{}, EraseError: rec.EraseError}
	if err := gatherRoute(ctx, env, rec, sum); err != nil {
		return nil, err
	}
	plan, err := readRetrying(ctx, func() (*PlanRecord, error) { return readPlan(ctx, env.Store, ev.Run) })
	if err != nil {
		return nil, err
	}
	if plan != nil {
		if sum.Route != nil {
			sum.Route.IndexError = plan.IndexError
		}
		for _, r := range plan.Days {
			if r.Status == dayPlanned {
				if r, err = gatherDay(ctx, env, log, ev.Run, r, sum); err != nil {
					return nil, err
				}
			}
			sum.Days = append(sum.Days, r)
		}
	}
	ws, err := readRetrying(ctx, func() (*job.WindowedSummary, error) {
		ws, _, err := readWindowed(ctx, env.Store, ev.Run)
		return ws, err
	})
	if err != nil {
		return nil, err
	}
	sum.Windowed = windowedResult(ws)
	sum.HTMLReport, err = readRetrying(ctx, func() (*HTMLReportResult, error) {
		return readReportJSON(ctx, env.Store, "html report", htmlReportResultKey(ev.Run), func(*HTMLReportResult) error { return nil })
	})
	if err != nil {
		return nil, err
	}
	switch {
	case ev.Error != nil:
		sum.Status, sum.Error = RunFailed, ev.Error.String()
	case plan == nil:
		sum.Status, sum.Error = RunFailed, "the run has no plan: the plan stage did not finish"
	case sum.Failed > 0, sum.EraseError != "":
		sum.Status = RunPartial
	default:
		sum.Status = RunDone
	}
	end := env.Deps.Now()
	sum.FinishedAt = end.UTC()
	sum.Seconds = end.Sub(sum.StartedAt).Seconds()
	if err := writeJSON(ctx, env.Store, SummaryKey(sum.Run), sum); err != nil {
		return nil, fmt.Errorf("write the run summary: %w", err)
	}
	logSummary(env, log, sum)
	// The route parts' inputs (object lists) served their one purpose; the
	// reports stay with the summary.
	for part := 1; part <= rec.Parts; part++ {
		if err := env.Store.Delete(ctx, RouteInputKey(rec.Run, part)); err != nil {
			log.Warn("route part input not deleted", "part", part, "error", err.Error())
		}
	}
	return &FinishResult{Run: sum.Run, Status: sum.Status, Planned: sum.Planned, Built: sum.Built, Failed: sum.Failed,
		Summary: SummaryKey(sum.Run), Error: sum.Error}, nil
}

// gatherRoute puts the route parts' reports into sum.Route.
func gatherRoute(ctx context.Context, env *Env, rec *RunRecord, sum *RunSummary) error {
	if rec.Parts == 0 {
		return nil
	}
	rs := &RouteSummary{Objects: rec.Objects, Bytes: rec.Bytes, Parts: rec.Parts}
	for part := 1; part <= rec.Parts; part++ {
		rep, err := readRetrying(ctx, func() (*RouteResult, error) { return readRouteReport(ctx, env.Store, rec.Run, part) })
		p := RoutePartResult{Part: part, Status: StatusFailed}
		switch {
		case err != nil && retryableRead(err):
			return err
		case err != nil:
			p.Error = err.Error()
		case rep == nil:
			p.Error = "no report: the route stage failed before it could write one (the execution's history says why)"
		default:
			p.Objects, p.Bytes, p.Seconds, p.Error = rep.Objects, rep.Bytes, rep.Seconds, rep.Error
			if rep.Status == StatusRouted {
				p.Status = StatusRouted
				rs.Routed += rep.Routed
				rs.BadObjects += rep.BadObjects
			}
		}
		if p.Status != StatusRouted {
			rs.Failed++
			rs.Fallback = true
		}
		rs.Seconds += p.Seconds
		rs.PartList = append(rs.PartList, p)
	}
	sum.Route = rs
	return nil
}

// gatherDay completes a stale day's result r with its build's report, and
// counts it in sum. A store that keeps failing fails the stage (the state
// machine retries it), rather than count a day failed that may be built.
func gatherDay(ctx context.Context, env *Env, log *slog.Logger, run string, r DayResult, sum *RunSummary) (DayResult, error) {
	d, _ := day.Parse(r.Day)
	rep, err := readRetrying(ctx, func() (*WorkerResult, error) { return readReport(ctx, env.Store, run, d) })
	if err != nil && retryableRead(err) {
		return r, fmt.Errorf("read the report of %s: %w", r.Day, err)
	}
	sum.Planned++
	switch {
	case err != nil:
		log.Error("day report unreadable: the day counts as failed", "day", r.Day, "error", err.Error())
		r.Status, r.Error = DayFailed, err.Error()
	case rep == nil:
		r.Status, r.Error = DayFailed, "no report: the build failed before it could write one (the execution's history says why)"
	default:
		r.Worker, r.Seconds = rep, rep.Seconds
		switch rep.Status {
		case StatusBuilt, StatusCurrent:
			r.Status = rep.Status
		default: // failed, or retry: its retries ran out
			r.Status, r.Error = DayFailed, rep.Error
		}
		if rep.Stats != nil {
			sum.Totals.add(rep.Stats)
		}
	}
	if r.Status == DayFailed {
		sum.Failed++
	} else {
		sum.Built++
	}
	return r, nil
}

// logSummary logs the run's end and emits its metrics.
func logSummary(env *Env, log *slog.Logger, sum *RunSummary) {
	attrs := []any{"status", sum.Status, "trigger", sum.Trigger, "from", sum.From, "to", sum.To,
		"planned", sum.Planned, "built", sum.Built, "failed", sum.Failed,
		"kept_rows", sum.Totals.KeptRows, "seconds", sum.Seconds, "summary", SummaryKey(sum.Run)}
	switch sum.Status {
	case RunDone:
		log.Info("run finished", attrs...)
	case RunPartial:
		log.Warn("run finished with failed days; the next run builds them if they are still stale", attrs...)
	default:
		log.Error("run failed", append(attrs, "error", sum.Error)...)
	}
	ms := append(sum.Totals.metrics(sum.Seconds),
		metrics.Metric{Name: "DaysPlanned", Value: float64(sum.Planned), Unit: metrics.Count},
		metrics.Metric{Name: "DaysBuilt", Value: float64(sum.Built), Unit: metrics.Count},
		metrics.Metric{Name: "DaysFailed", Value: float64(sum.Failed), Unit: metrics.Count},
		metrics.Metric{Name: "RunFailures", Value: b2f(sum.Status == RunFailed), Unit: metrics.Count},
		metrics.Metric{Name: "EraseFailures", Value: b2f(sum.EraseError != ""), Unit: metrics.Count},
	)
	if r := sum.Route; r != nil {
		ms = append(ms,
			metrics.Metric{Name: "ObjectsRouted", Value: float64(r.Routed), Unit: metrics.Count},
			metrics.Metric{Name: "BytesRouted", Value: float64(r.Bytes), Unit: metrics.Bytes},
			metrics.Metric{Name: "RouteParts", Value: float64(r.Parts), Unit: metrics.Count},
			metrics.Metric{Name: "RouteFailures", Value: float64(r.Failed), Unit: metrics.Count},
			metrics.Metric{Name: "RouteSeconds", Value: r.Seconds, Unit: metrics.Seconds},
		)
	}
	if sum.HTMLReport != nil {
		ms = append(ms, metrics.Metric{Name: "HTMLReportFailures", Value: b2f(sum.HTMLReport.Error != ""), Unit: metrics.Count})
	}
	props := map[string]any{"run": sum.Run, "trigger": sum.Trigger, "from": sum.From, "to": sum.To, "status": sum.Status}
	emit(env, log, map[string]string{"Stage": "run"}, ms, props)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
