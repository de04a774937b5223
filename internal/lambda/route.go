package lambda

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/index"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/metrics"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// The route stage (docs/design.md §Routing and segments: each raw object
// is read once). A raw object feeds every day its rows count on, up to max
// lateness + 1 days; if each day's build routed the objects its day lacks,
// an object would be read by every build whose day it feeds. So the start
// stage splits the objects without an index entry into route parts, each
// object in exactly one, and the state machine hands each part to a route
// stage, which reads its objects once and writes their segments for every
// day (job.RouteObjects) and reports their entries; the plan stage records
// them in the index (job.AddEntries) and only then plans. The builds then
// find every segment they need and read no raw object. A route part that
// fails costs reads, never correctness: a build routes what its day lacks
// itself, as a local run does.

// Route parts are bounded so that one routes well within a stage's time:
// at most MaxRouteRefs objects.
const (
	MaxRouteRefs = 400
	maxRouteKey  = 1024 // S3's limit on a key
)

// RouteRef names one raw object of a route part, as listed
// (index.ObjectRef).
type RouteRef struct {
	Key  string    `json:"key"`
	ETag string    `json:"etag"`
	Size int64     `json:"size"`
	Hour time.Time `json:"hour"` // UTC arrival hour named by the key
}

// RouteInput is a route part's input, written by the start stage at
// RouteInputKey.
type RouteInput struct {
	Run  string `json:"run"`
	Part int    `json:"part"`
	// Rules is what routing depends on in the start stage's configuration
	// (routeRules): a stage configured otherwise (a deploy between the two)
	// would make segments and entries the plan cannot use, so it refuses.
	Rules string     `json:"rules"`
	Route []RouteRef `json:"route"`
}

// RouteInputKey is where the start stage writes route part part's input.
func RouteInputKey(run string, part int) string {
	return RunsPrefix + run + "/route-" + strconv.Itoa(part) + ".in.json"
}

// readRouteInput reads and checks a route part's input.
func readRouteInput(ctx context.Context, st store.Store, run string, part int) (*RouteInput, []index.ObjectRef, error) {
	b, err := st.Get(ctx, RouteInputKey(run, part))
	if errors.Is(err, store.ErrNotExist) {
		return nil, nil, &PermanentError{Msg: fmt.Sprintf("route part %d of run %s: no input at %s (the start stage writes it)", part, run, RouteInputKey(run, part))}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("route part %d of run %s: read its input: %w", part, run, err)
	}
	var in RouteInput
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, nil, &PermanentError{Msg: fmt.Sprintf("route part %d: input %s: %v", part, RouteInputKey(run, part), err)}
	}
	refs, err := checkRouteInput(in, run, part)
	if err != nil {
		return nil, nil, &PermanentError{Msg: err.Error()}
	}
	return &in, refs, nil
}

// checkRouteInput checks what a route part's input says about itself and
// each object's key, etag, size and hour; whether the keys are under the
// raw prefix is checkRouteRefs's.
func checkRouteInput(in RouteInput, run string, part int) ([]index.ObjectRef, error) {
	switch {
	case in.Run != run || in.Part != part:
		return nil, fmt.Errorf("route part %d of run %s: its input is about part %d of run %q", part, run, in.Part, in.Run)
	case len(in.Route) == 0:
		return nil, fmt.Errorf("route part %d: no objects", part)
	case len(in.Route) > MaxRouteRefs:
		return nil, fmt.Errorf("route part %d: %d objects: at most %d", part, len(in.Route), MaxRouteRefs)
	}
	refs := make([]index.ObjectRef, len(in.Route))
	seen := make(map[string]bool, len(in.Route))
	for i, r := range in.Route {
		switch {
		case r.Key == "" || len(r.Key) > maxRouteKey:
			return nil, fmt.Errorf("route part %d: object %d: key of %d bytes: want 1 to %d", part, i, len(r.Key), maxRouteKey)
		case path.Clean(r.Key) != r.Key || strings.HasPrefix(r.Key, "/"):
			return nil, fmt.Errorf("route part %d: key %q: want a clean relative key", part, r.Key)
		case seen[r.Key]:
			return nil, fmt.Errorf("route part %d: object %s twice", part, r.Key)
		case r.ETag == "":
			return nil, fmt.Errorf("route part %d: object %s without an etag", part, r.Key)
		case r.Size < 0:
			return nil, fmt.Errorf("route part %d: object %s: size %d", part, r.Key, r.Size)
		case r.Hour.IsZero() || !r.Hour.Equal(r.Hour.Truncate(time.Hour)):
			return nil, fmt.Errorf("route part %d: object %s: hour %s: want a whole hour", part, r.Key, r.Hour.Format(time.RFC3339))
		}
		seen[r.Key] = true
		refs[i] = index.ObjectRef{Key: r.Key, ETag: r.ETag, Size: r.Size, Hour: r.Hour.UTC()}
	}
	return refs, nil
}

// StatusRouted is a route worker's status when it routed its objects.
const StatusRouted = "routed"

// RouteKey is where the route stage reports on part part of run run.
func RouteKey(run string, part int) string {
	return RunsPrefix + run + "/route-" + strconv.Itoa(part) + ".json"
}

// RouteResult is what the route stage did: the invocation's response, and
// its report to the plan stage (RouteKey), entries included.
type RouteResult struct {
	Run        string    `json:"run"`
	Part       int       `json:"part"`
	Status     string    `json:"status"` // routed, failed or retry
	Error      string    `json:"error,omitempty"`
	ErrorClass string    `json:"error_class,omitempty"`
	Objects    int       `json:"objects"`     // in the part
	Bytes      int64     `json:"bytes"`       // their size
	Routed     int       `json:"routed"`      // read (one entry each; an object deleted since it was listed has none)
	BadObjects int       `json:"bad_objects"` // of them, unreadable (entries with Bad set)
	Seconds    float64   `json:"seconds"`
	FinishedAt time.Time `json:"finished_at"`
	// Entries are the objects' index entries, for the plan stage to
	// record (job.AddEntries); set with status routed. They are in
	// index.Entry's JSON form, whose checks decoding applies: a report
	// with an entry that fails them does not decode, and its part counts
	// as failed (readRouteReport).
	Entries []index.Entry `json:"entries,omitempty"`
}

// RunRouteWorker is the route stage: it reads the raw objects of route
// part ev.Part (RouteInputKey) each once (job.RouteObjects, at most
// LW_PARALLEL at a time), writes their segments, and reports their index
// entries at RouteKey(ev.Run, ev.Part); it writes nothing to the index. An
// object not under the raw prefix or whose hour is not the one its key
// names, or routing rules other than this stage's, fail the part for good
// before anything is read. The same part again, once routed, returns the
// report already written and reads nothing. A failure is returned as an
// error (see RunWorker), also when the report could not be written:
// without it the plan cannot record the entries.
func RunRouteWorker(ctx context.Context, env *Env, ev StageEvent) (*RouteResult, error) {
	t0 := time.Now()
	log := env.Log.With("stage", StageRoute, "route_part", ev.Part, "run", ev.Run)
	if prev, err := readRouteReport(ctx, env.Store, ev.Run, ev.Part); err == nil && prev != nil && prev.Status == StatusRouted {
		log.Info("route part already routed; nothing read again", "objects", prev.Objects)
		prev.Entries = nil
		return prev, nil
	}
	in, refs, err := readRouteInput(ctx, env.Store, ev.Run, ev.Part)
	if err != nil {
		return nil, err
	}
	res := &RouteResult{Run: ev.Run, Part: ev.Part, Objects: len(refs)}
	for _, r := range refs {
		res.Bytes += r.Size
	}
	cfg := env.jobConfig(0, 0) // routing depends on no day range
	workCtx := ctx
	if deadline, ok := ctx.Deadline(); ok {
		left := time.Until(deadline)
		var cancel context.CancelFunc
		workCtx, cancel = context.WithDeadline(ctx, deadline.Add(-min(workerStopSlack, left/10)))
		defer cancel()
	}
	log.Info("route stage starting", "objects", res.Objects, "bytes", res.Bytes, "store", env.Store.String())

	class := Permanent
	err = checkRouteRefs(env.Config.RawPrefix, refs)
	if rules := routeRules(cfg); err == nil && in.Rules != rules {
		err = fmt.Errorf("route part %d: this stage is configured differently from the run's start (routing %s; the start %s): "+
			"the function's LW_TZ, LW_MAX_LATENESS, LW_RAW_PREFIX or code changed during the run; the next run routes these objects", ev.Part, rules, in.Rules)
	}
	if err == nil {
		res.Entries, err = job.RouteObjects(workCtx, cfg, refs)
		class = Classify(err)
		for _, e := range res.Entries {
			if e.Bad != "" {
				res.BadObjects++
			}
		}
		res.Routed = len(res.Entries)
	}
	switch {
	case err == nil:
		res.Status = StatusRouted
	case class == Permanent:
		res.Status, res.Error, res.ErrorClass = StatusFailed, err.Error(), class.String()
	default:
		res.Status, res.Error, res.ErrorClass = StatusRetry, err.Error(), class.String()
	}
	res.Seconds = time.Since(t0).Seconds()
	res.FinishedAt = time.Now().UTC()

	props := map[string]any{"run": ev.Run, "part": ev.Part, "status": res.Status}
	dims := map[string]string{"Stage": "route"}
	switch res.Status {
	case StatusRouted:
		log.Info("objects routed", "objects", res.Routed, "bytes", res.Bytes, "bad_objects", res.BadObjects, "seconds", res.Seconds)
		emit(env, log, dims, []metrics.Metric{
			{Name: "ObjectsRouted", Value: float64(res.Routed), Unit: metrics.Count},
			{Name: "BytesRead", Value: float64(res.Bytes), Unit: metrics.Bytes},
			{Name: "BadObjects", Value: float64(res.BadObjects), Unit: metrics.Count},
			{Name: "Seconds", Value: res.Seconds, Unit: metrics.Seconds},
		}, props)
	case StatusFailed:
		log.Error("route part failed; not retrying (the builds route its objects themselves)", "error", res.Error)
		emit(env, log, dims, []metrics.Metric{{Name: "WorkerFailures", Value: 1, Unit: metrics.Count}}, props)
	case StatusRetry:
		log.Warn("route part failed; the state machine retries it", "error", res.Error)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if werr := writeJSON(rctx, env.Store, RouteKey(ev.Run, ev.Part), res); werr != nil {
		log.Warn("route report not written; the state machine retries the part", "error", werr.Error())
		if res.Status != StatusRetry {
			return nil, &RetryableError{Msg: fmt.Sprintf("route part %d: write its report: %v", ev.Part, werr)}
		}
	}
	res.Entries = nil // in the report, not in the state machine's payload
	switch res.Status {
	case StatusRetry:
		return nil, &RetryableError{Msg: fmt.Sprintf("route part %d: %v", ev.Part, err)}
	case StatusFailed:
		return nil, &PermanentError{Msg: fmt.Sprintf("route part %d: %v", ev.Part, err)}
	}
	return res, nil
}

// routeRules names what routing depends on in cfg, the job's defaults
// applied: the code, the rules that split rows by day, and the raw prefix.
func routeRules(cfg job.Config) string {
	r := cfg.Rules
	if r.Loc == nil {
		r = compact.DefaultRules(time.UTC)
	}
	return fmt.Sprintf("code=%s tz=%s max_lateness=%s max_ahead=%s raw_prefix=%s",
		job.CodeVersion, r.Loc, r.MaxLateness, r.MaxAhead, cmp.Or(cfg.RawPrefix, "raw/"))
}

// checkRouteRefs checks that every ref is a raw object of the hourly
// layout under prefix (<prefix>YYYY/MM/DD/HH/<name>) and carries the hour
// its key names: the hour is the fallback time of its rows, so a wrong one
// would route them wrong.
func checkRouteRefs(prefix string, refs []index.ObjectRef) error {
	for _, r := range refs {
		rest, ok := strings.CutPrefix(r.Key, prefix)
		parts := strings.Split(rest, "/")
		if !ok || len(parts) != 5 || parts[4] == "" {
			return fmt.Errorf("route event: %s is not a raw object under %s in the YYYY/MM/DD/HH/ layout", r.Key, prefix)
		}
		h, err := time.Parse("2006/01/02/15", strings.Join(parts[:4], "/"))
		if err != nil || !h.Equal(r.Hour) {
			return fmt.Errorf("route event: %s: hour %s is not the one its key names", r.Key, r.Hour.Format(time.RFC3339))
		}
	}
	return nil
}

// readRouteReport reads the report of route part part of run run: nil and no error if there is none yet; an error matching
// errBadReport if there is one that does not decode (not JSON of a
// RouteResult, or an entry failing index.Entry's checks), or that is
// about another part or run, or whose status is not one a route worker
// writes; any other error is the store's (reading it may work later).
func readRouteReport(ctx context.Context, st store.Store, run string, part int) (*RouteResult, error) {
	return readReportJSON(ctx, st, "route", RouteKey(run, part), func(r *RouteResult) error {
		switch {
		case r.Part != part:
			return fmt.Errorf("it is about part %d, not %d", r.Part, part)
		case r.Run != run:
			return fmt.Errorf("it is about run %q, not %s", r.Run, run)
		case r.Status != StatusRouted && r.Status != StatusFailed && r.Status != StatusRetry:
			return fmt.Errorf("status %q is not one a route worker reports", r.Status)
		}
		return nil
	})
}

// splitRoute splits refs into route parts: first into at most n groups of
// about equal bytes (largest object first, each to the group with the
// fewest bytes so far, the lower group on a tie), then each group, in key
// order, into parts of at most MaxRouteRefs objects. The same refs (in any
// order) give the same parts; every ref is in exactly one.
func splitRoute(refs []index.ObjectRef, n int) [][]index.ObjectRef {
	n = max(min(n, len(refs)), 1)
	sorted := slices.Clone(refs)
	slices.SortFunc(sorted, func(a, b index.ObjectRef) int {
		return cmp.Or(cmp.Compare(b.Size, a.Size), strings.Compare(a.Key, b.Key))
	})
	groups := make([][]index.ObjectRef, n)
	bytes := make([]int64, n)
	for _, r := range sorted {
		g := 0
		for i := 1; i < n; i++ {
			if bytes[i] < bytes[g] {
				g = i
			}
		}
		groups[g] = append(groups[g], r)
		bytes[g] += r.Size
	}
	var parts [][]index.ObjectRef
	for _, g := range groups {
		slices.SortFunc(g, func(a, b index.ObjectRef) int { return strings.Compare(a.Key, b.Key) })
		for len(g) > 0 {
			k := min(len(g), MaxRouteRefs)
			parts = append(parts, g[:k])
			g = g[k:]
		}
	}
	return parts
}

func routeRefOf(r index.ObjectRef) RouteRef {
	return RouteRef{Key: r.Key, ETag: r.ETag, Size: r.Size, Hour: r.Hour.UTC()}
}

// RouteSummary is what a run's route stage did. Objects whose part failed
// are not lost: the builds that need them route them themselves (reading
// them more than once: Fallback says so, and RunSummary.Totals.RawObjects
// counts their reads).
type RouteSummary struct {
	Objects    int   `json:"objects"` // raw objects in route parts
	Bytes      int64 `json:"bytes"`   // their size
	Routed     int   `json:"routed"`  // of them, read and reported by their part
	BadObjects int   `json:"bad_objects"`
	Parts      int   `json:"parts"`
	Failed     int   `json:"failed"` // parts that failed or left no usable report
	// Fallback is set when some part failed: the builds route its objects.
	Fallback bool `json:"fallback,omitempty"`
	// IndexError says why the entries could not be recorded in the index
	// (the plan then scans those objects again); the run goes on.
	IndexError string            `json:"index_error,omitempty"`
	Seconds    float64           `json:"seconds"` // the parts' stage time, added up
	PartList   []RoutePartResult `json:"part_results,omitempty"`
}

// RoutePartResult is one route part of a run.
type RoutePartResult struct {
	Part    int     `json:"part"`
	Objects int     `json:"objects"`
	Bytes   int64   `json:"bytes"`
	Status  string  `json:"status"` // routed, failed
	Error   string  `json:"error,omitempty"`
	Seconds float64 `json:"seconds,omitempty"`
}
