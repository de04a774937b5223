package lambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/littlewarehouse/warehouse/internal/catalog"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/metrics"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// Deps are what a Handler is built with besides its Config. Everything is
// optional.
type Deps struct {
	Log     *slog.Logger    // default: discard
	Metrics *metrics.Logger // default: no metrics
	// Catalog is handed to the job (job.Config.Catalog): with a catalog and
	// a grace period, superseded runs are deleted by the registration, once
	// no partition points at them, not by the build right after
	// publishing. Set it together with Registrar.
	Catalog   catalog.Catalog
	Registrar Registrar        // default NopRegistrar
	Store     store.Store      // default: opened from LW_STORE
	Now       func() time.Time // default time.Now: a run's start and end times
}

// Registrar makes what a run published visible to readers: it points the
// catalog's partitions (Glue) at the current run of every daily table for
// the days cfg.From..cfg.To, and of the windowed partitions in ws (nil if
// no user_daily is published yet). With cfg.Catalog set and a grace
// period, it must also delete the superseded runs that no partition points
// at any more (what job.Run does after its windowed stage). It must be
// idempotent: a later run registers the same days again, which repairs a
// registration that failed.
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

// Handler runs the stages of the function.
type Handler struct {
	env *Env
}

// NewHandler checks what cold start can check and builds the handler: it
// opens the store.
func NewHandler(ctx context.Context, cfg Config, deps Deps) (*Handler, error) {
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Registrar == nil {
		deps.Registrar = NopRegistrar{}
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	st := deps.Store
	if st == nil {
		var err error
		if st, err = store.Open(ctx, cfg.Store, store.Options{}); err != nil {
			return nil, fmt.Errorf("%s=%q: %w", EnvStore, cfg.Store, err)
		}
	}
	return &Handler{env: &Env{Config: cfg, Store: st, Log: deps.Log, Metrics: deps.Metrics, Deps: deps}}, nil
}

// NewHandlerFromEnv reads the configuration with getenv (os.Getenv) and
// builds the handler.
func NewHandlerFromEnv(ctx context.Context, getenv func(string) string, deps Deps) (*Handler, error) {
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	return NewHandler(ctx, cfg, deps)
}

// Handle runs the stage payload names (ParseStage) and returns its result.
// Its error, if any, is a *RetryableError (the state machine retries the
// stage) or a *PermanentError (it does not: the day, the route part or the
// run fails); an event that does not parse is permanent.
func (h *Handler) Handle(ctx context.Context, payload json.RawMessage) (any, error) {
	ev, err := ParseStage(payload)
	if err != nil {
		h.env.Log.Error("event not understood", "error", err.Error())
		return nil, &PermanentError{Msg: err.Error()}
	}
	var res any
	switch ev.Stage {
	case StageErase:
		res, err = runErase(ctx, h.env)
	case StageStart:
		res, err = runStart(ctx, h.env, ev)
	case StageRoute:
		res, err = RunRouteWorker(ctx, h.env, ev)
	case StagePlan:
		res, err = runPlan(ctx, h.env, ev.Run)
	case StageBuild:
		res, err = RunWorker(ctx, h.env, ev)
	case StageWindowed:
		res, err = runWindowed(ctx, h.env, ev.Run)
	case StageRegister:
		res, err = runRegister(ctx, h.env, ev.Run)
	case StageReport:
		res, err = runReport(ctx, h.env, ev.Run)
	case StageFinish:
		res, err = runFinish(ctx, h.env, ev)
	}
	if err != nil {
		h.env.Log.Error("stage failed", "stage", ev.Stage, "run", ev.Run, "day", ev.Day, "part", ev.Part, "error", err.Error())
		return res, stageError(err)
	}
	return res, nil
}

// RetryableError is a stage failure that may go away by itself (S3
// throttling or a 5xx, a network failure, a lost lease, the stage's own
// deadline): the state machine retries the stage with backoff. Its type
// name is the errorType the Lambda runtime reports (infra.ErrorRetryable).
type RetryableError struct{ Msg string }

func (e *RetryableError) Error() string { return e.Msg }

// PermanentError is a stage failure that retrying cannot fix (another time
// zone in the store, the day held by another writer, access denied, a bad
// event): the state machine catches it without retrying. Its type name is
// the errorType the Lambda runtime reports (infra.ErrorPermanent).
type PermanentError struct{ Msg string }

func (e *PermanentError) Error() string { return e.Msg }

// stageError types err for the state machine (Classify).
func stageError(err error) error {
	var r *RetryableError
	var p *PermanentError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &p), !errors.As(err, &r) && Classify(err) == Permanent:
		return &PermanentError{Msg: err.Error()}
	}
	return &RetryableError{Msg: err.Error()}
}
