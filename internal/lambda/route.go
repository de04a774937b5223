package lambda

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// The route phase (docs/design.md §Routing and segments: each raw object is read once). A
// raw object feeds every day its rows count on, up to max lateness + 1
// days; if each day worker routed the objects its day lacks, an object
// would be read by every worker whose day it feeds. So the coordinator
// first hands the objects without an index entry to route workers, each
// object to exactly one, which read it once and write its segments for
// every day (job.RouteObjects); it records their entries in the index
// (job.AddEntries) and only then plans. The day workers then find every
// segment they need and read no raw object. A route worker that fails
// costs reads, never correctness: a day worker routes what its day lacks
// itself (job.Run's loadDay), as a local run does.

// StatusRouted is a route worker's status when it routed its objects.
const StatusRouted = "routed"

// RouteKey is where a route worker reports on part part of coordinator
// run run.
func RouteKey(run string, part int) string {
	return RunsPrefix + run + "/route-" + strconv.Itoa(part) + ".json"
}

// RouteResult is what a route worker did: the invocation's response, and
// its report to the coordinator (RouteKey), entries included.
type RouteResult struct {
	Run        string    `json:"run"`
	Part       int       `json:"part"`
	Status     string    `json:"status"` // routed, failed or retry
	Error      string    `json:"error,omitempty"`
	ErrorClass string    `json:"error_class,omitempty"`
	Objects    int       `json:"objects"`     // in the event
	Bytes      int64     `json:"bytes"`       // their size
	Routed     int       `json:"routed"`      // read (one entry each; an object deleted since it was listed has none)
	BadObjects int       `json:"bad_objects"` // of them, unreadable (entries with Bad set)
	Seconds    float64   `json:"seconds"`
	FinishedAt time.Time `json:"finished_at"`
	// Entries are the objects' index entries, for the coordinator to
	// record (job.AddEntries); set with status routed. They are in
	// index.Entry's JSON form, whose checks decoding applies: a report
	// with an entry that fails them does not decode, and its part failed
	// (readRouteReport, checkRoute).
	Entries []index.Entry `json:"entries,omitempty"`
}

// RunRouteWorker routes the raw objects of a route event: it reads each
// once (job.RouteObjects, at most LW_PARALLEL at a time), writes its
// segments, and reports the objects' index entries at RouteKey(req.Run,
// req.Part); it writes nothing to the index. An object not under the raw
// prefix or whose hour is not the one its key names, or routing rules
// other than the worker's (req.Rules), fail the part for good before
// anything is read. The same event again, once its part was routed,
// returns the report already written and reads nothing. Like RunWorker,
// it returns an error only for a transient failure (Lambda retries), and
// also when the report could not be written: without it the coordinator
// cannot record the entries.
func RunRouteWorker(ctx context.Context, env *Env, req Request) (*RouteResult, error) {
	t0 := time.Now()
	log := env.Log.With("role", RoleWorker, "route_part", req.Part, "run", req.Run)
	res := &RouteResult{Run: req.Run, Part: req.Part, Objects: len(req.Route)}
	for _, r := range req.Route {
		res.Bytes += r.Size
	}
	if prev, err := readRouteReport(ctx, env.Store, req.Run, req.Part); err == nil && prev != nil && prev.Status == StatusRouted {
		log.Info("route part already routed; nothing read again", "objects", prev.Objects)
		return prev, nil
	}
	cfg := env.jobConfig(0, 0) // routing depends on no day range
	workCtx := ctx
	if deadline, ok := ctx.Deadline(); ok {
		left := time.Until(deadline)
		var cancel context.CancelFunc
		workCtx, cancel = context.WithDeadline(ctx, deadline.Add(-min(workerStopSlack, left/10)))
		defer cancel()
	}
	log.Info("route worker starting", "objects", res.Objects, "bytes", res.Bytes, "store", env.Store.String())

	class := Permanent
	err := checkRouteRefs(env.Config.RawPrefix, req.Route)
	if rules := routeRules(cfg); err == nil && req.Rules != rules {
		err = fmt.Errorf("route event: this worker is configured differently from the coordinator (routing %s; the coordinator %s): "+
			"give both functions the same LW_TZ, LW_MAX_LATENESS and LW_RAW_PREFIX, and the same build", rules, req.Rules)
	}
	if err == nil {
		res.Entries, err = job.RouteObjects(workCtx, cfg, req.Route)
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

	props := map[string]any{"run": req.Run, "part": req.Part, "status": res.Status}
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
		log.Error("route part failed; not retrying (the day workers route its objects themselves)", "error", res.Error)
		emit(env, log, dims, []metrics.Metric{{Name: "WorkerFailures", Value: 1, Unit: metrics.Count}}, props)
	case StatusRetry:
		log.Warn("route part failed; returning the error so that Lambda retries", "error", res.Error)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if werr := writeJSON(rctx, env.Store, RouteKey(req.Run, req.Part), res); werr != nil {
		log.Warn("route report not written; returning an error so that Lambda retries", "error", werr.Error())
		if res.Status != StatusRetry {
			return res, fmt.Errorf("route part %d: write its report: %w", req.Part, werr)
		}
	}
	if res.Status == StatusRetry {
		return res, fmt.Errorf("route part %d: %w", req.Part, err)
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

// readRouteReport reads the report of route part part of coordinator
// run run: nil and no error if there is none yet; an error matching
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

// splitRoute splits refs into the parts of one route round: first into at
// most n groups of about equal bytes (largest object first, each to the
// group with the fewest bytes so far, the lower group on a tie), then each
// group, in key order, into parts of at most MaxRouteRefs objects and
// routePayloadBudget bytes of encoded refs. The same refs (in any order)
// give the same parts; every ref is in exactly one.
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
		if len(g) == 0 {
			continue
		}
		slices.SortFunc(g, func(a, b index.ObjectRef) int { return strings.Compare(a.Key, b.Key) })
		var cur []index.ObjectRef
		size := 0
		for _, r := range g {
			b, _ := json.Marshal(routeRefOf(r))
			if len(cur) > 0 && (len(cur) == MaxRouteRefs || size+len(b)+1 > routePayloadBudget) {
				parts = append(parts, cur)
				cur, size = nil, 0
			}
			cur = append(cur, r)
			size += len(b) + 1
		}
		parts = append(parts, cur)
	}
	return parts
}

func routeRefOf(r index.ObjectRef) RouteRef {
	return RouteRef{Key: r.Key, ETag: r.ETag, Size: r.Size, Hour: r.Hour.UTC()}
}

// RouteSummary is what a run's route phase did. Objects whose part failed
// or did not finish in time are not lost: the day workers that need them
// route them themselves (reading them more than once: Fallback says so,
// and RunSummary.Totals.RawObjects counts their reads).
type RouteSummary struct {
	Objects    int   `json:"objects"` // raw objects handed to route workers (in each round)
	Bytes      int64 `json:"bytes"`   // their size
	Routed     int   `json:"routed"`  // of them, read and reported by their worker
	BadObjects int   `json:"bad_objects"`
	Rounds     int   `json:"rounds"`  // 1, or 2 when the plan found segments missing
	Parts      int   `json:"parts"`   // route worker requests
	Workers    int   `json:"workers"` // of them, handed to a worker
	Failed     int   `json:"failed"`  // parts whose worker failed, or that could not be invoked
	Pending    int   `json:"pending"` // parts not finished when the route phase stopped waiting
	// Skipped are objects of a round not started: the route phase's time
	// was over.
	Skipped int `json:"skipped,omitempty"`
	// Fallback is set when some part failed or is pending, or objects were
	// skipped.
	Fallback bool `json:"fallback,omitempty"`
	// IndexError says why the entries could not be recorded in the index
	// (the plan then scans those objects again); the run goes on.
	IndexError string            `json:"index_error,omitempty"`
	Seconds    float64           `json:"seconds"`
	PartList   []RoutePartResult `json:"part_results,omitempty"`
}

// RoutePartResult is one route worker request of a run.
type RoutePartResult struct {
	Part    int     `json:"part"`
	Round   int     `json:"round"`
	Objects int     `json:"objects"`
	Bytes   int64   `json:"bytes"`
	Status  string  `json:"status"` // routed, failed, pending
	Error   string  `json:"error,omitempty"`
	Seconds float64 `json:"seconds,omitempty"`
}

// RouteProgress tells how far the route phase is (Options.RouteProgress).
// A round of the phase (Round 1; Round 2 for the objects the plan found
// unrouted, normally none) starts with one event of Status "routing",
// whose Part is the round's first part and whose Objects and Bytes are the
// whole round's; then each of its parts gives one event as it is
// dispatched ("dispatched") and one as it finishes (StatusRouted) or
// fails (StatusFailed: its worker failed, its report is unusable, or it
// could not be invoked), with its own Objects and Bytes and, once over,
// Seconds. A part not finished when the route phase stops waiting gives
// no second event (the run summary lists it pending). Parts are numbered
// across the run as in RouteSummary.PartList and the coordinator's log
// (route_part). An event holds counts only: no object key, no event
// payload, no error text (the log has the error).
type RouteProgress struct {
	Round   int
	Status  string  // routing (a round), dispatched, routed, failed
	Part    int     // the part's number in the run, 1.. (a round's first part)
	Parts   int     // parts of the run so far, this round's included
	Objects int     // raw objects in the part (in the round)
	Bytes   int64   // their size
	Seconds float64 // a routed or failed part's time since it was dispatched
	Done    int     // parts of the run routed so far
	Failed  int     // parts of the run failed so far
}

// String is ev as one line for a person: "route round 1: 48 raw objects
// (1.2MiB) in 4 parts", "route part 3/4 routed: 12 raw objects (300.0KiB)
// in 1.3s; 2 routed, 1 failed".
func (ev RouteProgress) String() string {
	objs := fmt.Sprintf("%d raw objects (%s)", ev.Objects, store.HumanSize(ev.Bytes))
	switch ev.Status {
	case "routing":
		if ev.Part <= 1 {
			return fmt.Sprintf("route round %d: %s in %d parts", ev.Round, objs, ev.Parts)
		}
		return fmt.Sprintf("route round %d: %s in parts %d-%d", ev.Round, objs, ev.Part, ev.Parts)
	case "dispatched":
		return fmt.Sprintf("route part %d/%d dispatched: %s", ev.Part, ev.Parts, objs)
	}
	return fmt.Sprintf("route part %d/%d %s: %s in %.1fs; %d routed, %d failed",
		ev.Part, ev.Parts, ev.Status, objs, ev.Seconds, ev.Done, ev.Failed)
}

// routeTask is one part of the route phase on its way through the fan-out.
type routeTask struct {
	task
	part    int
	refs    []index.ObjectRef
	bytes   int64         // the refs' size
	entries []index.Entry // from its report, once routed
	res     *RouteResult
}

// routeRound routes refs: it splits them into parts (splitRoute), hands
// them to route workers through the fan-out (waiting until until at most),
// records what it did in rs, and the entries of the parts that finished in
// the index. It logs and reports (Options.RouteProgress) the round's
// start and each part's dispatch and end. It fails only when ctx ends.
func (c *coordinator) routeRound(ctx context.Context, run string, refs []index.ObjectRef, rs *RouteSummary, until time.Time, hasDeadline bool) error {
	if hasDeadline && !time.Now().Before(until) {
		c.log.Warn("no time left to route; the day workers route what they need themselves", "objects", len(refs))
		rs.Skipped += len(refs)
		rs.Fallback = true
		return nil
	}
	rs.Rounds++
	groups := splitRoute(refs, c.opts.Concurrency)
	first, parts := rs.Parts+1, rs.Parts+len(groups)
	// Parts of earlier rounds that finished, for the progress counts.
	routedBefore := 0
	for _, p := range rs.PartList {
		if p.Status == StatusRouted {
			routedBefore++
		}
	}
	failedBefore := rs.Failed
	rts := make([]*routeTask, len(groups))
	tasks := make([]*task, len(groups))
	var bytes int64
	for i, g := range groups {
		part := first + i
		rt := &routeTask{part: part, refs: g}
		rt.ev = WorkerEvent{Role: RoleWorker, Run: run, Part: part, Rules: routeRules(c.cfg)}
		for _, r := range g {
			rt.ev.Route = append(rt.ev.Route, routeRefOf(r))
			rt.bytes += r.Size
		}
		bytes += rt.bytes
		rt.attrs = []any{"route_part", part, "parts", parts, "objects", len(g), "bytes", rt.bytes}
		rt.check = func(ctx context.Context) (string, string, error) { return c.checkRoute(ctx, run, rt) }
		rts[i], tasks[i] = rt, &rt.task
	}
	rs.Parts = parts
	c.log.Info("routing raw objects", "round", rs.Rounds, "objects", len(refs), "bytes", bytes, "parts", len(groups), "first_part", first)
	c.opts.RouteProgress(RouteProgress{Round: rs.Rounds, Status: "routing", Part: first, Parts: parts, Objects: len(refs), Bytes: bytes,
		Done: routedBefore, Failed: failedBefore})
	progress := func(i, done, failed int) {
		rt := rts[i]
		c.opts.RouteProgress(RouteProgress{Round: rs.Rounds, Status: rt.status, Part: rt.part, Parts: parts,
			Objects: len(rt.refs), Bytes: rt.bytes, Seconds: rt.seconds, Done: routedBefore + done, Failed: failedBefore + failed})
	}
	err := c.fanOut(ctx, "route", tasks, until, hasDeadline, progress)

	var entries []index.Entry
	roundFailed, roundPending := 0, 0
	for _, rt := range rts {
		p := RoutePartResult{Part: rt.part, Round: rs.Rounds, Objects: len(rt.refs), Bytes: rt.bytes, Status: rt.status, Error: rt.err, Seconds: rt.seconds}
		if !rt.started.IsZero() {
			rs.Workers++
			rs.Objects += p.Objects
			rs.Bytes += p.Bytes
		}
		switch rt.status {
		case StatusRouted:
			entries = append(entries, rt.entries...)
			rs.Routed += rt.res.Routed
			rs.BadObjects += rt.res.BadObjects
		case StatusFailed:
			rs.Failed++
			roundFailed++
			rs.Fallback = true
		default:
			p.Status = "pending"
			rs.Pending++
			roundPending++
			rs.Fallback = true
		}
		rs.PartList = append(rs.PartList, p)
	}
	if err != nil {
		return err
	}
	if roundFailed+roundPending > 0 {
		// Counts of this round only: a later round may route them.
		c.log.Warn("route parts failed or unfinished; their objects are routed again by the next round, or by the day workers that need them",
			"round", rs.Rounds, "failed", roundFailed, "pending", roundPending)
	}
	if len(entries) > 0 {
		if err := job.AddEntries(ctx, c.cfg, entries); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// The index is a cache: the plan scans the objects again.
			rs.IndexError = err.Error()
			c.log.Warn("routed objects not recorded in the index; the plan scans them again", "error", err.Error())
		}
	}
	return nil
}

// checkRoute says whether a route part has finished: "" while it has not
// (no report yet, or a transient failure that Lambda retries), else
// routed or failed. A report that is there but unusable (readRouteReport:
// an entry failing index.Entry's checks, say, or a report about another
// part) fails the part at once, so that its objects take the fallback
// path now; only a failing read of the store is an error, which fanOut
// retries.
func (c *coordinator) checkRoute(ctx context.Context, run string, rt *routeTask) (string, string, error) {
	rep, err := readRouteReport(ctx, c.cfg.Store, run, rt.part)
	switch {
	case errors.Is(err, errBadReport):
		return StatusFailed, err.Error(), nil
	case err != nil || rep == nil:
		return "", "", err
	}
	switch rep.Status {
	case StatusFailed:
		return StatusFailed, rep.Error, nil
	case StatusRouted:
		rt.res, rt.entries = rep, rep.Entries
		rep.Entries = nil
		return StatusRouted, "", nil
	}
	return "", "", nil
}
