package lambda

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/job"
)

// Kinds of invocation.
const (
	KindScheduled = "scheduled" // EventBridge scheduled event: the nightly catch-up
	KindBackfill  = "backfill"  // {"from":..,"to":..}
	KindWorker    = "worker"    // {"role":"worker","day":..,"run":..}
)

// BackfillEvent asks the coordinator to build the days From..To (inclusive,
// YYYY-MM-DD reporting days).
type BackfillEvent struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// WorkerEvent asks a worker to build one day; Run is the coordinator's run
// id (the worker reports under _state/runs/<Run>/), empty for none.
type WorkerEvent struct {
	Role string `json:"role"`
	Day  string `json:"day"`
	Run  string `json:"run,omitempty"`
}

// Request is a parsed invocation.
type Request struct {
	Kind     string
	From, To day.Day   // scheduled and backfill: the reporting days to plan
	Day      day.Day   // worker
	Run      string    // worker: the coordinator's run id
	Time     time.Time // scheduled: the event's time
	EventID  string    // scheduled: the EventBridge event id
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
		d, err := day.Parse(ev.Day)
		if err != nil {
			return Request{}, fmt.Errorf("worker event: day: %w", err)
		}
		if ev.Run != "" && !runIDPattern.MatchString(ev.Run) {
			return Request{}, fmt.Errorf("worker event: run %q: want letters, digits, '.', '_' or '-' (at most 64)", ev.Run)
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
