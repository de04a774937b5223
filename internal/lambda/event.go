package lambda

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/job"
)

// Kinds of run, as the summary names them (RunSummary.Trigger).
const (
	KindScheduled = "scheduled" // EventBridge scheduled event: the nightly catch-up
	KindBackfill  = "backfill"  // {"from":..,"to":..}
)

// Stages, the values of StageEvent.Stage, in the order of a run.
const (
	StageErase    = "erase"
	StageStart    = "start"
	StageRoute    = "route"
	StagePlan     = "plan"
	StageBuild    = "build"
	StageWindowed = "windowed"
	StageRegister = "register"
	StageReport   = "report"
	StageFinish   = "finish"
)

// StageEvent is one invocation: the stage to run, for the run named by
// Run (every stage but start), with the day (build) or route part (route)
// it is about.
type StageEvent struct {
	Stage string `json:"stage"`
	Run   string `json:"run,omitempty"`
	Day   string `json:"day,omitempty"`  // build
	Part  int    `json:"part,omitempty"` // route: from 1
	// Execution (start) is the state machine execution's name: the run id
	// when it is one (a ULID, as rollup --dispatch sfn: names its
	// executions), else the run gets a new one.
	Execution string `json:"execution,omitempty"`
	// Input (start) is the execution's input: an EventBridge scheduled
	// event or a backfill {"from","to"} (ParseTrigger).
	Input json.RawMessage `json:"input,omitempty"`
	// Erase (start) is how the erase stage ended: its EraseResult, or the
	// failure the state machine caught ({"Error":..,"Cause":..}).
	Erase json.RawMessage `json:"erase,omitempty"`
	// Error (finish) is what the state machine caught from a stage that
	// failed after its retries ({"Error":..,"Cause":..}), or null.
	Error *CaughtError `json:"error,omitempty"`
}

// CaughtError is a stage failure as Step Functions passes it on.
type CaughtError struct {
	Error string `json:"Error"`
	Cause string `json:"Cause"`
}

// String is the failure for a person: its name and message. Step
// Functions' Cause of a function error is the function's error payload
// ({"errorMessage":..,"errorType":..}); its message is taken from it.
func (c CaughtError) String() string {
	msg := c.Cause
	var payload struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal([]byte(msg), &payload) == nil && payload.ErrorMessage != "" {
		msg = payload.ErrorMessage
	}
	msg = strings.TrimPrefix(msg, c.Error+": ")
	return c.Error + ": " + msg
}

// BackfillEvent asks for a run over the days From..To (inclusive,
// YYYY-MM-DD reporting days).
type BackfillEvent struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Trigger is what started a run, parsed from the execution's input.
type Trigger struct {
	Kind     string
	From, To day.Day   // the reporting days to plan
	Time     time.Time // scheduled: the event's time
	EventID  string    // scheduled: the EventBridge event id
}

// runIDPattern is what a run id may look like: it becomes a key segment.
var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ParseStage parses an invocation's payload, refusing fields a stage
// event does not have (a typo must not silently mean something else), and
// checks that it names a stage and what that stage needs.
func ParseStage(payload []byte) (StageEvent, error) {
	var ev StageEvent
	if err := strict(payload, &ev); err != nil {
		return ev, fmt.Errorf("not a stage event (%v): %s", err, snippet(payload))
	}
	need := func(what string, ok bool) error {
		if ok {
			return nil
		}
		return fmt.Errorf("%s event without %s: %s", ev.Stage, what, snippet(payload))
	}
	var err error
	switch ev.Stage {
	case StageStart:
		err = need("the execution's input", len(ev.Input) > 0)
	case StageRoute:
		err = need("a part number from 1", ev.Part >= 1)
	case StageBuild:
		_, derr := day.Parse(ev.Day)
		err = need("a day (YYYY-MM-DD)", derr == nil)
	case StageErase, StagePlan, StageWindowed, StageRegister, StageReport, StageFinish:
	case "":
		return ev, fmt.Errorf("event without a stage (want {\"stage\":\"start\"|\"route\"|\"plan\"|\"build\"|...}): %s", snippet(payload))
	default:
		return ev, fmt.Errorf("unknown stage %q: %s", ev.Stage, snippet(payload))
	}
	if err == nil && ev.Stage != StageErase && ev.Stage != StageStart && ev.Stage != StageBuild {
		err = need("a run", ev.Run != "")
	}
	if err == nil && ev.Run != "" && !runIDPattern.MatchString(ev.Run) {
		err = fmt.Errorf("%s event: run %q: want letters, digits, '.', '_' or '-' (at most 64)", ev.Stage, ev.Run)
	}
	return ev, err
}

// ParseTrigger parses the input of a run (the state machine execution's).
// A scheduled event covers the same days as a plain `rollup` run at the
// event's time (job.CatchUp): the maxLateness + 1 days that end the day
// before it in loc (that day is unfinished).
func ParseTrigger(payload []byte, loc *time.Location, maxLateness time.Duration) (Trigger, error) {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(payload, &keys); err != nil || keys == nil {
		return Trigger{}, fmt.Errorf("run input is not a JSON object: %s", snippet(payload))
	}
	_, hasDetailType := keys["detail-type"]
	_, hasSource := keys["source"]
	_, hasFrom := keys["from"]
	_, hasTo := keys["to"]
	switch {
	case hasDetailType || hasSource:
		var ev events.CloudWatchEvent
		if err := json.Unmarshal(payload, &ev); err != nil {
			return Trigger{}, fmt.Errorf("EventBridge event: %w", err)
		}
		if ev.Source != "aws.events" || ev.DetailType != "Scheduled Event" {
			return Trigger{}, fmt.Errorf("EventBridge event from %q of type %q: want an aws.events \"Scheduled Event\"", ev.Source, ev.DetailType)
		}
		if ev.Time.IsZero() {
			return Trigger{}, errors.New("EventBridge scheduled event without a time")
		}
		from, to := job.CatchUp(ev.Time, loc, maxLateness, false)
		return Trigger{Kind: KindScheduled, From: from, To: to, Time: ev.Time, EventID: ev.ID}, nil
	case hasFrom || hasTo:
		var ev BackfillEvent
		if err := strict(payload, &ev); err != nil {
			return Trigger{}, fmt.Errorf("backfill input: %w (want {\"from\":\"YYYY-MM-DD\",\"to\":\"YYYY-MM-DD\"})", err)
		}
		if ev.From == "" || ev.To == "" {
			return Trigger{}, errors.New(`backfill input: "from" and "to" go together (want {"from":"YYYY-MM-DD","to":"YYYY-MM-DD"})`)
		}
		from, err := day.Parse(ev.From)
		if err != nil {
			return Trigger{}, fmt.Errorf("backfill input: from: %w", err)
		}
		to, err := day.Parse(ev.To)
		if err != nil {
			return Trigger{}, fmt.Errorf("backfill input: to: %w", err)
		}
		if from > to {
			return Trigger{}, fmt.Errorf("backfill input: from %s is after to %s", from, to)
		}
		return Trigger{Kind: KindBackfill, From: from, To: to}, nil
	}
	return Trigger{}, fmt.Errorf("unrecognized run input (want an EventBridge scheduled event or {\"from\",\"to\"}): %s", snippet(payload))
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
