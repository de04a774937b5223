package lambda

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/index"
	"github.com/littlewarehouse/warehouse/internal/job"
)

// Kinds of invocation.
const (
	KindScheduled = "scheduled" // EventBridge scheduled event: the nightly catch-up
	KindBackfill  = "backfill"  // {"from":..,"to":..}
	KindWorker    = "worker"    // {"role":"worker","day":..,"run":..}
	KindRoute     = "route"     // {"role":"worker","route":[..],"run":..,"part":N}
)

// BackfillEvent asks the coordinator to build the days From..To (inclusive,
// YYYY-MM-DD reporting days).
type BackfillEvent struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// WorkerEvent asks a worker function either to build one day (Day set) or
// to route raw objects into segments (Route set, with Part): exactly one of
// the two. Run is the coordinator's run id (the worker reports under
// _state/runs/<Run>/), empty for none; a route event needs one (its report
// is how its index entries reach the coordinator).
type WorkerEvent struct {
	Role  string     `json:"role"`
	Day   string     `json:"day,omitempty"`
	Run   string     `json:"run,omitempty"`
	Part  int        `json:"part,omitempty"`  // route: the part's number in its run, from 1
	Route []RouteRef `json:"route,omitempty"` // route: the raw objects to read, at most MaxRouteRefs
	// Rules (route) is what routing depends on in the coordinator's
	// configuration (see routeRules): a worker configured otherwise would
	// make segments and entries the coordinator cannot use, so it refuses.
	Rules string `json:"rules,omitempty"`
}

// RouteRef names one raw object of a route event, as listed
// (index.ObjectRef).
type RouteRef struct {
	Key  string    `json:"key"`
	ETag string    `json:"etag"`
	Size int64     `json:"size"`
	Hour time.Time `json:"hour"` // UTC arrival hour named by the key
}

// Route events are bounded so that one stays well under Lambda's 256 KB
// limit for an asynchronous invocation's payload: at most MaxRouteRefs
// objects, each key at most maxRouteKey bytes, and the coordinator also
// starts a new part before a part's encoded refs pass routePayloadBudget.
const (
	MaxRouteRefs       = 400
	maxRouteKey        = 1024 // S3's limit on a key
	routePayloadBudget = 96 << 10
)

// describe names what ev asks for, for messages.
func (ev WorkerEvent) describe() string {
	if len(ev.Route) > 0 || ev.Part > 0 {
		return fmt.Sprintf("route part %d (%d objects)", ev.Part, len(ev.Route))
	}
	return "day " + ev.Day
}

// Request is a parsed invocation.
type Request struct {
	Kind     string
	From, To day.Day           // scheduled and backfill: the reporting days to plan
	Day      day.Day           // worker
	Run      string            // worker and route: the coordinator's run id
	Part     int               // route: the part's number, from 1
	Rules    string            // route: the coordinator's routing rules
	Route    []index.ObjectRef // route: the raw objects to read
	Time     time.Time         // scheduled: the event's time
	EventID  string            // scheduled: the EventBridge event id
}

// runIDPattern is what a run id may look like: it becomes a key segment.
var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ParseEvent parses an invocation payload. A scheduled event covers the
// same days as a plain `rollup` run at the event's time (job.CatchUp): the
// maxLateness + 1 days that end the day before it in loc (that day is
// unfinished).
func ParseEvent(payload []byte, loc *time.Location, maxLateness time.Duration) (Request, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(payload, &keys); err != nil || keys == nil {
		return Request{}, fmt.Errorf("event is not a JSON object: %s", snippet(payload))
	}
	_, hasDetailType := keys["detail-type"]
	_, hasSource := keys["source"]
	_, hasRole := keys["role"]
	_, hasFrom := keys["from"]
	_, hasTo := keys["to"]
	switch {
	case hasDetailType || hasSource:
		var ev events.CloudWatchEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return Request{}, fmt.Errorf("EventBridge event: %w", err)
		}
		if ev.Source != "aws.events" || ev.DetailType != "Scheduled Event" {
			return Request{}, fmt.Errorf("EventBridge event from %q of type %q: want an aws.events \"Scheduled Event\"", ev.Source, ev.DetailType)
		}
		if ev.Time.IsZero() {
			return Request{}, errors.New("EventBridge scheduled event without a time")
		}
		from, to := job.CatchUp(ev.Time, loc, maxLateness, false)
		return Request{Kind: KindScheduled, From: from, To: to, Time: ev.Time, EventID: ev.ID}, nil
	case hasRole:
		var ev WorkerEvent
		if err := strict(payload, &ev); err != nil {
			return Request{}, fmt.Errorf("worker event: %w (want {\"role\":\"worker\",\"day\":\"YYYY-MM-DD\",\"run\":\"<run id>\"})", err)
		}
		if ev.Role != RoleWorker {
			return Request{}, fmt.Errorf("worker event with role %q: want %q", ev.Role, RoleWorker)
		}
		if ev.Run != "" && !runIDPattern.MatchString(ev.Run) {
			return Request{}, fmt.Errorf("worker event: run %q: want letters, digits, '.', '_' or '-' (at most 64)", ev.Run)
		}
		if _, hasRoute := keys["route"]; hasRoute || ev.Part != 0 {
			return parseRoute(ev)
		}
		d, err := day.Parse(ev.Day)
		if err != nil {
			return Request{}, fmt.Errorf("worker event: day: %w", err)
		}
		return Request{Kind: KindWorker, Day: d, Run: ev.Run}, nil
	case hasFrom || hasTo:
		var ev BackfillEvent
		if err := strict(payload, &ev); err != nil {
			return Request{}, fmt.Errorf("backfill event: %w (want {\"from\":\"YYYY-MM-DD\",\"to\":\"YYYY-MM-DD\"})", err)
		}
		if ev.From == "" || ev.To == "" {
			return Request{}, errors.New(`backfill event: "from" and "to" go together (want {"from":"YYYY-MM-DD","to":"YYYY-MM-DD"})`)
		}
		from, err := day.Parse(ev.From)
		if err != nil {
			return Request{}, fmt.Errorf("backfill event: from: %w", err)
		}
		to, err := day.Parse(ev.To)
		if err != nil {
			return Request{}, fmt.Errorf("backfill event: to: %w", err)
		}
		if from > to {
			return Request{}, fmt.Errorf("backfill event: from %s is after to %s", from, to)
		}
		return Request{Kind: KindBackfill, From: from, To: to}, nil
	}
	return Request{}, fmt.Errorf("unrecognized event (want an EventBridge scheduled event, {\"from\",\"to\"} or a worker event): %s", snippet(payload))
}

// parseRoute checks a route event. Whether its keys are under the raw
// prefix is the worker's to check (RunRouteWorker): the prefix is its
// configuration.
func parseRoute(ev WorkerEvent) (Request, error) {
	const want = `(want {"role":"worker","run":"<run id>","part":N,"rules":..,"route":[{"key":..,"etag":..,"size":..,"hour":..},..]})`
	switch {
	case ev.Day != "":
		return Request{}, fmt.Errorf("route event with a day %q: a worker event either builds a day or routes objects %s", ev.Day, want)
	case ev.Run == "":
		return Request{}, fmt.Errorf("route event without a run: its entries are reported under the run %s", want)
	case ev.Part < 1:
		return Request{}, fmt.Errorf("route event: part %d: want a part number from 1 %s", ev.Part, want)
	case len(ev.Route) == 0:
		return Request{}, fmt.Errorf("route event without objects %s", want)
	case len(ev.Route) > MaxRouteRefs:
		return Request{}, fmt.Errorf("route event with %d objects: at most %d", len(ev.Route), MaxRouteRefs)
	}
	refs := make([]index.ObjectRef, len(ev.Route))
	seen := make(map[string]bool, len(ev.Route))
	for i, r := range ev.Route {
		switch {
		case r.Key == "" || len(r.Key) > maxRouteKey:
			return Request{}, fmt.Errorf("route event: object %d: key of %d bytes: want 1 to %d", i, len(r.Key), maxRouteKey)
		case path.Clean(r.Key) != r.Key || strings.HasPrefix(r.Key, "/"):
			return Request{}, fmt.Errorf("route event: key %q: want a clean relative key", r.Key)
		case seen[r.Key]:
			return Request{}, fmt.Errorf("route event: object %s twice", r.Key)
		case r.ETag == "":
			return Request{}, fmt.Errorf("route event: object %s without an etag", r.Key)
		case r.Size < 0:
			return Request{}, fmt.Errorf("route event: object %s: size %d", r.Key, r.Size)
		case r.Hour.IsZero() || !r.Hour.Equal(r.Hour.Truncate(time.Hour)):
			return Request{}, fmt.Errorf("route event: object %s: hour %s: want a whole hour", r.Key, r.Hour.Format(time.RFC3339))
		}
		seen[r.Key] = true
		refs[i] = index.ObjectRef{Key: r.Key, ETag: r.ETag, Size: r.Size, Hour: r.Hour.UTC()}
	}
	if ev.Rules == "" {
		return Request{}, fmt.Errorf("route event without the coordinator's rules %s", want)
	}
	return Request{Kind: KindRoute, Run: ev.Run, Part: ev.Part, Route: refs, Rules: ev.Rules}, nil
}

// strict decodes JSON refusing fields v does not have (a typo such as
// "form" must not silently mean something else).
func strict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

func snippet(b []byte) string {
	const n = 200
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
