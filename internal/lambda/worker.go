package lambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/metrics"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// Build (and route) statuses.
const (
	StatusBuilt   = "built"   // the day was built and published
	StatusCurrent = "current" // the day was already up to date: nothing written
	StatusFailed  = "failed"  // a permanent error: not retried
	StatusRetry   = "retry"   // a transient error: the state machine retries the stage
)

// RunsPrefix holds the runs' summaries (<run>.json) and what the stages of
// a run keep for each other (<run>/...: RunRecordKey, PlanKey, ReportKey,
// RouteKey, ...).
const RunsPrefix = "_state/runs/"

// SummaryKey is where a run's summary is written (the finish stage).
func SummaryKey(run string) string { return RunsPrefix + run + ".json" }

// ReportKey is where the build stage reports on day d of run run.
func ReportKey(run string, d day.Day) string { return RunsPrefix + run + "/" + d.String() + ".json" }

// DayStats are the numbers of one built day (data_quality_daily's, plus
// what was read and written).
type DayStats struct {
	RawRows          int64 `json:"raw_rows"`
	KeptRows         int64 `json:"kept_rows"`
	Duplicates       int64 `json:"duplicates_dropped"`
	InvalidRows      int64 `json:"invalid_rows"`
	LateRows         int64 `json:"late_rows"`
	ClockSkewedRows  int64 `json:"clock_skewed_rows"`
	MissingEventTime int64 `json:"missing_event_time_rows"`
	BadObjects       int64 `json:"bad_objects"`
	ConversionFailed int64 `json:"conversion_failed_records"`
	InputObjects     int64 `json:"input_objects"`
	// RawObjects and RawBytes are the raw objects the worker read itself
	// (and their size): none when the route phase routed its inputs.
	RawObjects   int64 `json:"raw_objects_read"`
	RawBytes     int64 `json:"raw_bytes_read"`
	FilesWritten int64 `json:"files_written"`
	BytesWritten int64 `json:"bytes_written"`
	Restated     bool  `json:"restated,omitempty"`
}

func (s *DayStats) add(o *DayStats) {
	s.RawRows += o.RawRows
	s.KeptRows += o.KeptRows
	s.Duplicates += o.Duplicates
	s.InvalidRows += o.InvalidRows
	s.LateRows += o.LateRows
	s.ClockSkewedRows += o.ClockSkewedRows
	s.MissingEventTime += o.MissingEventTime
	s.BadObjects += o.BadObjects
	s.ConversionFailed += o.ConversionFailed
	s.InputObjects += o.InputObjects
	s.RawObjects += o.RawObjects
	s.RawBytes += o.RawBytes
	s.FilesWritten += o.FilesWritten
	s.BytesWritten += o.BytesWritten
}

func (s *DayStats) metrics(seconds float64) []metrics.Metric {
	return []metrics.Metric{
		{Name: "RawRows", Value: float64(s.RawRows), Unit: metrics.Count},
		{Name: "KeptRows", Value: float64(s.KeptRows), Unit: metrics.Count},
		{Name: "DuplicatesDropped", Value: float64(s.Duplicates), Unit: metrics.Count},
		{Name: "InvalidRows", Value: float64(s.InvalidRows), Unit: metrics.Count},
		{Name: "LateRows", Value: float64(s.LateRows), Unit: metrics.Count},
		{Name: "ClockSkewedRows", Value: float64(s.ClockSkewedRows), Unit: metrics.Count},
		{Name: "MissingEventTimeRows", Value: float64(s.MissingEventTime), Unit: metrics.Count},
		{Name: "BadObjects", Value: float64(s.BadObjects), Unit: metrics.Count},
		{Name: "ConversionFailedRecords", Value: float64(s.ConversionFailed), Unit: metrics.Count},
		{Name: "InputObjects", Value: float64(s.InputObjects), Unit: metrics.Count},
		{Name: "ObjectsRead", Value: float64(s.RawObjects), Unit: metrics.Count},
		{Name: "BytesRead", Value: float64(s.RawBytes), Unit: metrics.Bytes},
		{Name: "FilesWritten", Value: float64(s.FilesWritten), Unit: metrics.Count},
		{Name: "BytesWritten", Value: float64(s.BytesWritten), Unit: metrics.Bytes},
		{Name: "Seconds", Value: seconds, Unit: metrics.Seconds},
	}
}

// WorkerResult is what the build stage did for a day: the invocation's
// response, and its report (ReportKey) to the finish stage.
type WorkerResult struct {
	Day        string    `json:"day"`
	Run        string    `json:"run,omitempty"`     // the run (of the state machine)
	JobRun     string    `json:"job_run,omitempty"` // the run id of the partitions this build wrote
	Status     string    `json:"status"`
	Why        string    `json:"why,omitempty"`
	Error      string    `json:"error,omitempty"`
	ErrorClass string    `json:"error_class,omitempty"`
	Stats      *DayStats `json:"stats,omitempty"`
	Seconds    float64   `json:"seconds"`
	FinishedAt time.Time `json:"finished_at"`
}

// Env is what every stage works with.
type Env struct {
	Config  Config
	Store   store.Store
	Log     *slog.Logger
	Metrics *metrics.Logger // nil: no metrics
	Deps    Deps
}

// jobConfig is the job configuration of every stage for the days from..to.
func (e *Env) jobConfig(from, to day.Day) job.Config {
	return job.Config{
		Store: e.Store, From: from, To: to, Rules: e.Config.Rules(), RawPrefix: e.Config.RawPrefix,
		Parallel: e.Config.Parallel, GracePeriod: e.Config.GracePeriod, Catalog: e.Deps.Catalog, Log: e.Log,
	}
}

// Worker timing. A worker's leases last until its invocation's deadline
// plus lease.DefaultClockSkew: Lambda ends an invocation at its deadline,
// so a lease whose holder was killed (timeout, out of memory) becomes free
// soon after that holder can no longer be running, never while it is.
const (
	workerLockWait  = 30 * time.Second // at most; a quarter of the time left if less
	workerStopSlack = 5 * time.Second  // stop work this long before the deadline (at most a tenth of the time left)
	noDeadlineTTL   = 30 * time.Minute // lease lifetime when there is no deadline
)

// RunWorker is the build stage: job.BuildDays for ev.Day, idempotently.
// Bad data is counted and quarantined, not an error. A failure is
// returned as an error, after the day's report (with a run) is written: a
// *PermanentError for one retrying cannot fix (Classify), any other error
// for a transient one, which the state machine retries.
func RunWorker(ctx context.Context, env *Env, ev StageEvent) (*WorkerResult, error) {
	t0 := time.Now()
	d, perr := day.Parse(ev.Day)
	if perr != nil {
		return nil, &PermanentError{Msg: "build: " + perr.Error()}
	}
	log := env.Log.With("stage", StageBuild, "day", d.String(), "run", ev.Run)
	cfg := env.jobConfig(d, d)
	// The start stage had every object it listed routed and indexed; one
	// that arrived since the run started is left for the next run rather
	// than read by every build whose days it may feed.
	var opts []job.Option
	if id, err := ulid.ParseStrict(ev.Run); err == nil {
		opts = append(opts, job.ListedBefore(ulid.Time(id.Time())))
	}
	workCtx, cancel := leaseTimes(ctx, &cfg)
	defer cancel()
	log.Info("worker starting", "store", env.Store.String(), "lock_ttl", cfg.LockTTL.String(), "lock_wait", cfg.LockWait.String())

	sum, err := job.BuildDays(workCtx, cfg, opts...)
	res := &WorkerResult{Day: d.String(), Run: ev.Run}
	if sum != nil {
		res.JobRun = sum.Run
	}
	class := Classify(err)
	switch class {
	case OK:
		res.Status = StatusCurrent
		for _, ds := range sum.Days {
			if ds.Day != d {
				continue
			}
			res.Why = ds.Why
			if !ds.Skipped {
				res.Status = StatusBuilt
				res.Stats = dayStats(sum, ds)
			}
		}
	case Permanent:
		res.Status, res.Error, res.ErrorClass = StatusFailed, err.Error(), class.String()
	default:
		res.Status, res.Error, res.ErrorClass = StatusRetry, err.Error(), class.String()
	}
	res.Seconds = time.Since(t0).Seconds()
	res.FinishedAt = time.Now().UTC()

	props := map[string]any{"day": res.Day, "run": ev.Run, "job_run": res.JobRun, "status": res.Status}
	switch res.Status {
	case StatusBuilt:
		log.Info("day built", "job_run", res.JobRun, "why", res.Why, "kept_rows", res.Stats.KeptRows,
			"raw_rows", res.Stats.RawRows, "bad_objects", res.Stats.BadObjects, "seconds", res.Seconds)
		emit(env, log, map[string]string{"Stage": "day"}, res.Stats.metrics(res.Seconds), props)
	case StatusCurrent:
		log.Info("day already up to date; nothing to do", "why", res.Why)
	case StatusFailed:
		log.Error("day failed; not retrying (a retry cannot fix it)", "error", res.Error)
		emit(env, log, map[string]string{"Stage": "day"}, []metrics.Metric{{Name: "WorkerFailures", Value: 1, Unit: metrics.Count}}, props)
	case StatusRetry:
		log.Warn("day failed; the state machine retries it", "error", res.Error)
	}
	if ev.Run != "" {
		// The worker's context may be over: the report gets its own time.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if werr := writeJSON(rctx, env.Store, ReportKey(ev.Run, d), res); werr != nil {
			log.Warn("day report not written; the run summary counts the day failed", "error", werr.Error())
		}
	}
	switch res.Status {
	case StatusRetry:
		return res, &RetryableError{Msg: fmt.Sprintf("day %s: %v", d, err)}
	case StatusFailed:
		return res, &PermanentError{Msg: fmt.Sprintf("day %s: %v", d, err)}
	}
	return res, nil
}

// leaseTimes sets cfg's lease lifetime and wait from ctx's deadline (the
// invocation's; see the worker timing above) and returns the context to
// work in, which ends workerStopSlack before it (at most a tenth of the
// time left), so that a report can still be written.
func leaseTimes(ctx context.Context, cfg *job.Config) (context.Context, context.CancelFunc) {
	cfg.LockTTL, cfg.LockWait = noDeadlineTTL, workerLockWait
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	left := time.Until(deadline)
	cfg.LockTTL = max(left, time.Second) + lease.DefaultClockSkew
	cfg.LockWait = min(workerLockWait, left/4)
	return context.WithDeadline(ctx, deadline.Add(-min(workerStopSlack, left/10)))
}

func dayStats(sum *job.Summary, ds job.DaySummary) *DayStats {
	q := ds.Quality
	return &DayStats{
		RawRows: q.RawRows, KeptRows: q.KeptRows, Duplicates: q.DuplicatesDropped, InvalidRows: q.InvalidRows,
		LateRows: q.LateRows, ClockSkewedRows: q.ClockSkewedRows, MissingEventTime: q.MissingEventTimeRows, BadObjects: q.BadFiles,
		ConversionFailed: q.ConversionFailedRecords, InputObjects: q.InputObjects,
		RawObjects: int64(sum.RawObjects), RawBytes: sum.RawBytes,
		FilesWritten: int64(ds.FilesWritten), BytesWritten: ds.BytesWritten, Restated: q.Restated,
	}
}

func emit(env *Env, log *slog.Logger, dims map[string]string, ms []metrics.Metric, props map[string]any) {
	if err := env.Metrics.Emit(dims, ms, props); err != nil {
		log.Warn("metrics not written", "error", err.Error())
	}
}

func writeJSON(ctx context.Context, st store.Store, key string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return st.Put(ctx, key, append(b, '\n'))
}

// errBadReport marks a worker's report (a day's at ReportKey, a route
// part's at RouteKey) that is there but unusable: not JSON of its type, a
// value failing that type's checks (an index entry's, say), or a report
// about another day, part or run than the one it is stored for, or with a
// status no stage writes. Reports are written whole (store.Put is
// atomic), so waiting does not mend one: the plan and finish stages count
// its day or part as failed, as if it had reported a permanent failure.
// Test for it with errors.Is.
var errBadReport = errors.New("unreadable report")

// badReportError is an unusable report; it matches errBadReport.
type badReportError struct {
	what, key string // what names the kind of report: day, route
	err       error
}

func (e *badReportError) Error() string {
	return fmt.Sprintf("unreadable %s report %s: %v", e.what, e.key, e.err)
}

func (e *badReportError) Is(target error) bool { return target == errBadReport }

func (e *badReportError) Unwrap() error { return e.err }

// readReportJSON reads the report at key, what kind of report it is
// naming it in errors: nil and no error if there is none yet; an error
// matching errBadReport if there is one that does not decode into a T or
// that valid rejects; any other error is the store's, and reading again
// may work. It is the one reader of what the stages keep for each other,
// so that "not there yet or not readable now" and "there and unusable"
// are told apart the same way for days, route parts and the rest.
func readReportJSON[T any](ctx context.Context, st store.Store, what, key string, valid func(*T) error) (*T, error) {
	b, err := st.Get(ctx, key)
	if errors.Is(err, store.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r T
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, &badReportError{what: what, key: key, err: err}
	}
	if err := valid(&r); err != nil {
		return nil, &badReportError{what: what, key: key, err: err}
	}
	return &r, nil
}

// readReport reads the build stage's report on day d of run run: nil and no error if there is none yet; an error matching
// errBadReport if there is one that does not decode, or that is about
// another day or run, or whose status is not one a worker writes; any
// other error is the store's (reading it may work later).
func readReport(ctx context.Context, st store.Store, run string, d day.Day) (*WorkerResult, error) {
	return readReportJSON(ctx, st, "day", ReportKey(run, d), func(r *WorkerResult) error {
		switch {
		case r.Day != d.String():
			return fmt.Errorf("it is about day %q, not %s", r.Day, d)
		case r.Run != run:
			return fmt.Errorf("it is about run %q, not %s", r.Run, run)
		case r.Status != StatusBuilt && r.Status != StatusCurrent && r.Status != StatusFailed && r.Status != StatusRetry:
			return fmt.Errorf("status %q is not one a worker reports", r.Status)
		}
		return nil
	})
}
