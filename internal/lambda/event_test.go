package lambda

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/day"
)

func mustDay(t *testing.T, s string) day.Day {
	t.Helper()
	d, err := day.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../testdata/lambda/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseScheduledEvent(t *testing.T) {
	b := readTestdata(t, "scheduled-event.json")
	trig, err := ParseTrigger(b, time.UTC, 7*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The same days as a plain `rollup` at that moment: the 8 days that end
	// yesterday (today is unfinished).
	if trig.Kind != KindScheduled || trig.From != mustDay(t, "2026-11-16") || trig.To != mustDay(t, "2026-11-23") ||
		!trig.Time.Equal(time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)) || trig.EventID != "5f1b8a2e-6c4d-4f0a-9d3e-2b7c1e8a9f40" {
		t.Errorf("got %+v (from %s to %s)", trig, trig.From, trig.To)
	}
	// 03:00 UTC is already the 24th's afternoon in Auckland, and the 23rd's evening in Los Angeles.
	akl, _ := time.LoadLocation("Pacific/Auckland")
	la, _ := time.LoadLocation("America/Los_Angeles")
	if trig, err := ParseTrigger(b, akl, 72*time.Hour); err != nil || trig.To != mustDay(t, "2026-11-23") || trig.From != mustDay(t, "2026-11-20") {
		t.Errorf("Auckland, 3 days: %s..%s, %v", trig.From, trig.To, err)
	}
	if trig, err := ParseTrigger(b, la, 7*24*time.Hour); err != nil || trig.To != mustDay(t, "2026-11-22") || trig.From != mustDay(t, "2026-11-15") {
		t.Errorf("Los Angeles: %s..%s, %v", trig.From, trig.To, err)
	}
}

func TestParseBackfill(t *testing.T) {
	trig, err := ParseTrigger(readTestdata(t, "backfill.json"), time.UTC, time.Hour)
	if err != nil || trig.Kind != KindBackfill || trig.From != mustDay(t, "2026-11-20") || trig.To != mustDay(t, "2026-11-22") ||
		!trig.Time.IsZero() || trig.EventID != "" {
		t.Errorf("backfill: %+v, %v", trig, err)
	}
	// One day; the time zone plays no part.
	akl, _ := time.LoadLocation("Pacific/Auckland")
	trig, err = ParseTrigger([]byte(`{"from":"2026-02-28","to":"2026-02-28"}`), akl, time.Hour)
	if err != nil || trig.From != mustDay(t, "2026-02-28") || trig.To != trig.From {
		t.Errorf("one day: %+v, %v", trig, err)
	}
}

func TestParseTriggerErrors(t *testing.T) {
	cases := map[string]string{
		`[]`:                    "not a JSON object",
		`not json`:              "not a JSON object",
		`null`:                  "not a JSON object",
		`"2026-11-20"`:          "not a JSON object",
		`{}`:                    "unrecognized run input",
		`{"hello":"world"}`:     "unrecognized run input",
		`{"from":"2026-11-20"}`: `"from" and "to" go together`,
		`{"to":"2026-11-20"}`:   `"from" and "to" go together`,
		`{"from":"2026-11-22","to":"2026-11-20"}`:                                          "after",
		`{"from":"2026-11-20","to":"tomorrow"}`:                                            "to:",
		`{"from":"2026-11-20","to":"2026-11-21","force":true}`:                             "unknown field",
		`{"from":"2026-02-30","to":"2026-03-01"}`:                                          "from:",
		`{"from":20261120,"to":"2026-11-21"}`:                                              "backfill input",
		`{"source":"aws.s3","detail-type":"Object Created","time":"2026-11-24T03:00:00Z"}`: "Scheduled Event",
		`{"source":"aws.events","detail-type":"Scheduled Event"}`:                          "without a time",
		`{"source":"aws.events","detail-type":"Scheduled Event","time":"yesterday"}`:       "EventBridge event",
	}
	for in, want := range cases {
		trig, err := ParseTrigger([]byte(in), time.UTC, time.Hour)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %+v, err = %v, want it to say %q", in, trig, err, want)
		}
	}
}

func TestParseStage(t *testing.T) {
	ev, err := ParseStage(readTestdata(t, "build.json"))
	if err != nil || !reflect.DeepEqual(ev, StageEvent{Stage: StageBuild, Run: "01KAT5X3M4C2Q7W8E9R0T1Y2U3", Day: "2026-11-20"}) {
		t.Errorf("build: %+v, %v", ev, err)
	}
	// The start stage's event, as the state machine sends it: the
	// execution's input whole.
	sched := readTestdata(t, "scheduled-event.json")
	start, _ := json.Marshal(map[string]any{"stage": "start", "execution": "a2b9e0c4-nightly", "input": json.RawMessage(sched)})
	ev, err = ParseStage(start)
	if err != nil || ev.Stage != StageStart || ev.Execution != "a2b9e0c4-nightly" || ev.Run != "" {
		t.Fatalf("start: %+v, %v", ev, err)
	}
	if trig, err := ParseTrigger(ev.Input, time.UTC, 7*24*time.Hour); err != nil || trig.Kind != KindScheduled {
		t.Errorf("start's input: %+v, %v", trig, err)
	}
	// Finish, with the error the state machine caught or null.
	for in, want := range map[string]StageEvent{
		`{"stage":"finish","run":"R1","error":null}`:                                  {Stage: StageFinish, Run: "R1"},
		`{"stage":"finish","run":"R1","error":{"Error":"States.Timeout","Cause":""}}`: {Stage: StageFinish, Run: "R1", Error: &CaughtError{Error: "States.Timeout"}},
		`{"stage":"route","run":"R1","part":3}`:                                       {Stage: StageRoute, Run: "R1", Part: 3},
		`{"stage":"plan","run":"R1"}`:                                                 {Stage: StagePlan, Run: "R1"},
		`{"stage":"windowed","run":"R1"}`:                                             {Stage: StageWindowed, Run: "R1"},
		`{"stage":"register","run":"R1"}`:                                             {Stage: StageRegister, Run: "R1"},
		`{"stage":"report","run":"R1"}`:                                               {Stage: StageReport, Run: "R1"},
		`{"stage":"build","day":"2026-11-20"}`:                                        {Stage: StageBuild, Day: "2026-11-20"}, // no run: no report
	} {
		ev, err := ParseStage([]byte(in))
		if err != nil || !reflect.DeepEqual(ev, want) {
			t.Errorf("%s: %+v, %v; want %+v", in, ev, err, want)
		}
		// What a stage event marshals to parses back to it.
		b, _ := json.Marshal(ev)
		if again, err := ParseStage(b); err != nil || !reflect.DeepEqual(again, want) {
			t.Errorf("%s: round trip %s: %+v, %v", in, b, again, err)
		}
	}
}

func TestParseStageErrors(t *testing.T) {
	cases := map[string]string{
		`[]`:                                    "not a stage event",
		`not json`:                              "not a stage event",
		`{}`:                                    "without a stage",
		`{"run":"R1"}`:                          "without a stage",
		`{"stage":"coordinate","run":"R1"}`:     `unknown stage "coordinate"`,
		`{"stage":"Build","day":"2026-11-20"}`:  `unknown stage "Build"`,
		`{"stage":"start"}`:                     "start event without the execution's input",
		`{"stage":"route","run":"R1"}`:          "route event without a part number from 1",
		`{"stage":"route","run":"R1","part":0}`: "without a part number",
		`{"stage":"route","part":1}`:            "route event without a run",
		`{"stage":"build","run":"R1"}`:          "build event without a day",
		`{"stage":"build","day":"2026-13-01"}`:  "build event without a day",
		`{"stage":"plan"}`:                      "plan event without a run",
		`{"stage":"finish","error":null}`:       "finish event without a run",
		`{"stage":"plan","run":"../x"}`:         `run "../x"`,
		`{"stage":"plan","run":"` + strings.Repeat("R", 65) + `"}`: "at most 64",
		`{"stage":"build","day":"2026-11-20","dya":"x"}`:           "unknown field",
		`{"role":"worker","day":"2026-11-20"}`:                     "unknown field",
		`{"from":"2026-11-20","to":"2026-11-22"}`:                  "unknown field", // a run input is the start stage's
		`{"stage":"route","run":"R1","part":"1"}`:                  "not a stage event",
		`{"stage":"finish","run":"R1","error":"boom"}`:             "not a stage event",
	}
	for in, want := range cases {
		_, err := ParseStage([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to say %q", in, err, want)
		}
	}
}
