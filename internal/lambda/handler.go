package lambda

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"

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
	// no partition points at them, not by the worker right after
	// publishing. Set it together with Registrar.
	Catalog   catalog.Catalog
	Registrar Registrar   // default NopRegistrar
	Store     store.Store // default: opened from LW_STORE
	Invoker   Invoker     // coordinator; default: a Lambda client invoking LW_WORKER_FUNCTION
	Options   Options     // coordinator tuning (Registrar, Log and Metrics are taken from Deps)
}

// Handler handles the invocations of one function (coordinator or worker).
type Handler struct {
	env *Env
	inv Invoker
}

// NewHandler checks what cold start can check and builds the handler: it
// opens the store and, for the coordinator, the Lambda client (which
// honours AWS_ENDPOINT_URL_LAMBDA, as the S3 client honours
// AWS_ENDPOINT_URL_S3).
func NewHandler(ctx context.Context, cfg Config, deps Deps) (*Handler, error) {
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Registrar == nil {
		deps.Registrar = NopRegistrar{}
	}
	st := deps.Store
	if st == nil {
		var err error
		if st, err = store.Open(ctx, cfg.Store, store.Options{}); err != nil {
			return nil, fmt.Errorf("%s=%q: %w", EnvStore, cfg.Store, err)
		}
	}
	h := &Handler{env: &Env{Config: cfg, Store: st, Log: deps.Log, Metrics: deps.Metrics, Deps: deps}, inv: deps.Invoker}
	if cfg.Role == RoleCoordinator && h.inv == nil {
		awsCfg, err := config.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("load AWS config for the Lambda client: %w", err)
		}
		if awsCfg.Region == "" {
			return nil, fmt.Errorf("no AWS region configured for the Lambda client (set AWS_REGION)")
		}
		h.inv = LambdaInvoker{Client: awslambda.NewFromConfig(awsCfg), Function: cfg.WorkerFunction}
	}
	return h, nil
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

// Handle handles one invocation. A worker returns a *WorkerResult (a day)
// or a *RouteResult (a route event), the coordinator a *RunSummary. An error is returned for an event this
// function cannot handle and for transient failures (Lambda retries an
// asynchronous invocation that failed); permanent failures are logged,
// counted in the metrics and reported in the result, without an error.
func (h *Handler) Handle(ctx context.Context, payload json.RawMessage) (any, error) {
	cfg := h.env.Config
	req, err := ParseEvent(payload, cfg.Location, cfg.MaxLateness)
	if err != nil {
		h.env.Log.Error("event not understood", "role", cfg.Role, "error", err.Error())
		return nil, err
	}
	isWorker := req.Kind == KindWorker || req.Kind == KindRoute
	switch {
	case cfg.Role == RoleWorker && !isWorker:
		err = fmt.Errorf("this is the worker function (%s=%s); a %s event goes to the coordinator", EnvRole, cfg.Role, req.Kind)
	case cfg.Role == RoleCoordinator && isWorker:
		err = fmt.Errorf("this is the coordinator function (%s=%s); worker events go to the worker function", EnvRole, cfg.Role)
	}
	if err != nil {
		h.env.Log.Error("event sent to the wrong function", "error", err.Error())
		return nil, err
	}
	if req.Kind == KindRoute {
		res, err := RunRouteWorker(ctx, h.env, req)
		if err != nil {
			return nil, err
		}
		return res, nil
	}
	if req.Kind == KindWorker {
		res, err := RunWorker(ctx, h.env, req)
		if err != nil {
			return nil, err
		}
		return res, nil
	}
	opts := h.env.Deps.Options
	opts.Registrar, opts.Log, opts.Metrics = h.env.Deps.Registrar, h.env.Log.With("role", RoleCoordinator), h.env.Metrics
	opts.Trigger, opts.EventTime = req.Kind, req.Time
	opts.HTMLReport = opts.HTMLReport || h.env.Config.HTMLReport // LW_REPORT
	if opts.Concurrency == 0 {
		opts.Concurrency = h.env.Config.Parallel // LW_PARALLEL: workers in flight
	}
	sum, err := Coordinate(ctx, h.env.jobConfig(req.From, req.To), h.inv, opts)
	if Classify(err) == Transient {
		return nil, err
	}
	return sum, nil
}

// DispatchBackfill is `rollup --from --to --dispatch lambda:<function>`:
// it plans cfg.From..cfg.To here, invokes the worker function through
// client for each stale day (in day order; see Options.Concurrency), calls
// progress as days are dispatched and finish while it watches their
// manifests, then runs the windowed stage and the registration here. The
// route phase before the days (see Coordinate) reports to
// Options.RouteProgress, if opts set it, not to progress. It waits until
// every worker is done or failed, or ctx ends (there is no Lambda
// deadline); the summary is written to _state/runs/<run>.json like the
// coordinator's. cfg is the CLI's job configuration: it must match the
// workers' (time zone, max lateness, raw prefix, file sizes), or the days
// they build look stale to it.
func DispatchBackfill(ctx context.Context, cfg job.Config, client InvokeAPI, function string, progress func(Progress), opts ...func(*Options)) (*RunSummary, error) {
	o := Options{Trigger: "dispatch", Progress: progress, Log: cfg.Log, Poll: 2 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	return Coordinate(ctx, cfg, LambdaInvoker{Client: client, Function: function}, o)
}
