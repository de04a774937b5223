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

func TestParseScheduledEvent(t *testing.T) {
	b, err := os.ReadFile("../../testdata/lambda/scheduled-event.json")
	if err != nil {
		t.Fatal(err)
	}
	req, err := ParseEvent(b, time.UTC, 7*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The same days as a plain `rollup` at that moment: the 8 days that end
	// yesterday (today is unfinished).
	if req.Kind != KindScheduled || req.From != mustDay(t, "2026-11-16") || req.To != mustDay(t, "2026-11-23") ||
		!req.Time.Equal(time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)) || req.EventID == "" {
		t.Errorf("got %+v (from %s to %s)", req, req.From, req.To)
	}
	// 03:00 UTC is already the 24th's afternoon in Auckland, and the 23rd's evening in Los Angeles.
	akl, _ := time.LoadLocation("Pacific/Auckland")
	la, _ := time.LoadLocation("America/Los_Angeles")
	if req, _ := ParseEvent(b, akl, 72*time.Hour); req.To != mustDay(t, "2026-11-23") || req.From != mustDay(t, "2026-11-20") {
		t.Errorf("Auckland, 3 days: %s..%s", req.From, req.To)
	}
	if req, _ := ParseEvent(b, la, 7*24*time.Hour); req.To != mustDay(t, "2026-11-22") {
		t.Errorf("Los Angeles: to %s", req.To)
	}
}

func TestParseBackfillAndWorker(t *testing.T) {
	b, err := os.ReadFile("../../testdata/lambda/backfill.json")
	if err != nil {
		t.Fatal(err)
	}
	req, err := ParseEvent(b, time.UTC, time.Hour)
	if err != nil || req.Kind != KindBackfill || req.From != mustDay(t, "2026-11-20") || req.To != mustDay(t, "2026-11-22") {
		t.Errorf("backfill: %+v, %v", req, err)
	}
	b, err = os.ReadFile("../../testdata/lambda/worker.json")
	if err != nil {
		t.Fatal(err)
	}
	req, err = ParseEvent(b, time.UTC, time.Hour)
	if err != nil || req.Kind != KindWorker || req.Day != mustDay(t, "2026-11-20") || req.Run != "01KAT5X3M4C2Q7W8E9R0T1Y2U3" {
		t.Errorf("worker: %+v, %v", req, err)
	}
	req, err = ParseEvent([]byte(`{"role":"worker","day":"2026-01-02"}`), time.UTC, time.Hour)
	if err != nil || req.Run != "" {
		t.Errorf("worker without a run: %+v, %v", req, err)
	}
}

func ref(key string) string {
	return `{"key":"` + key + `","etag":"\"e\"","size":12,"hour":"2026-11-20T03:00:00Z"}`
}

func TestParseRouteEvent(t *testing.T) {
	payload := `{"role":"worker","run":"R1","part":3,"rules":"code=3","route":[` + ref("raw/2026/11/20/03/a") + `,` + ref("raw/2026/11/20/03/b") + `]}`
	req, err := ParseEvent([]byte(payload), time.UTC, time.Hour)
	if err != nil || req.Kind != KindRoute || req.Run != "R1" || req.Part != 3 || req.Rules != "code=3" || len(req.Route) != 2 ||
		req.Route[1].Key != "raw/2026/11/20/03/b" || req.Route[0].ETag != `"e"` || req.Route[0].Size != 12 ||
		!req.Route[0].Hour.Equal(time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)) {
		t.Errorf("route event: %+v, %v", req, err)
	}
	// What the coordinator sends parses back to the same objects.
	ev := WorkerEvent{Role: RoleWorker, Run: "R1", Part: 3, Rules: "code=3"}
	for _, r := range req.Route {
		ev.Route = append(ev.Route, routeRefOf(r))
	}
	b, _ := json.Marshal(ev)
	again, err := ParseEvent(b, time.UTC, time.Hour)
	if err != nil || !reflect.DeepEqual(again, req) {
		t.Errorf("round trip: %s: %+v, %v", b, again, err)
	}
	// A day event has no part or route in its JSON.
	b, _ = json.Marshal(WorkerEvent{Role: RoleWorker, Day: "2026-11-20", Run: "R1"})
	if string(b) != `{"role":"worker","day":"2026-11-20","run":"R1"}` {
		t.Errorf("day event: %s", b)
	}
}

func TestParseEventErrors(t *testing.T) {
	cases := map[string]string{
		`[]`:                    "not a JSON object",
		`not json`:              "not a JSON object",
		`null`:                  "not a JSON object",
		`{}`:                    "unrecognized event",
		`{"hello":"world"}`:     "unrecognized event",
		`{"from":"2026-11-20"}`: `"from" and "to" go together`,
		`{"from":"2026-11-22","to":"2026-11-20"}`:                                                                                            "after",
		`{"from":"2026-11-20","to":"tomorrow"}`:                                                                                              "not a date",
		`{"from":"2026-11-20","to":"2026-11-21","force":true}`:                                                                               "unknown field",
		`{"from":"2026-02-30","to":"2026-03-01"}`:                                                                                            "not a date",
		`{"role":"coordinator","day":"2026-11-20"}`:                                                                                          `role "coordinator"`,
		`{"role":"worker"}`:                                                                                                                  "not a date",
		`{"role":"worker","day":"2026-11-20","run":"../x"}`:                                                                                  "run",
		`{"role":"worker","day":"2026-11-20","dya":"x"}`:                                                                                     "unknown field",
		`{"source":"aws.s3","detail-type":"Object Created","time":"2026-11-24T03:00:00Z"}`:                                                   "Scheduled Event",
		`{"source":"aws.events","detail-type":"Scheduled Event"}`:                                                                            "without a time",
		`{"role":"worker","rules":"r","run":"R","part":1}`:                                                                                   "without objects",
		`{"role":"worker","rules":"r","run":"R","part":1,"route":[]}`:                                                                        "without objects",
		`{"role":"worker","rules":"r","run":"R","route":[` + ref("raw/2026/11/20/03/a") + `]}`:                                               "part 0",
		`{"role":"worker","rules":"r","part":1,"route":[` + ref("raw/2026/11/20/03/a") + `]}`:                                                "without a run",
		`{"role":"worker","rules":"r","run":"R","part":1,"day":"2026-11-20","route":[` + ref("raw/2026/11/20/03/a") + `]}`:                   "either builds a day or routes",
		`{"role":"worker","rules":"r","run":"R","part":1,"route":[` + ref("raw/2026/11/20/03/a") + `,` + ref("raw/2026/11/20/03/a") + `]}`:   "twice",
		`{"role":"worker","rules":"r","run":"R","part":1,"route":[` + ref("raw/2026/../../_state/x") + `]}`:                                  "clean relative key",
		`{"role":"worker","rules":"r","run":"R","part":1,"route":[` + ref("/raw/2026/11/20/03/a") + `]}`:                                     "clean relative key",
		`{"role":"worker","rules":"r","run":"R","part":1,"route":[{"key":"raw/a","etag":"e","size":1,"hour":"2026-11-20T03:30:00Z"}]}`:       "whole hour",
		`{"role":"worker","rules":"r","run":"R","part":1,"route":[{"key":"raw/a","etag":"","size":1,"hour":"2026-11-20T03:00:00Z"}]}`:        "without an etag",
		`{"role":"worker","rules":"r","run":"R","part":1,"route":[{"key":"raw/a","etag":"e","size":1,"hour":"2026-11-20T03:00:00Z","x":1}]}`: "unknown field",
		`{"role":"worker","rules":"r","run":"R","part":1,"route":[` + strings.Repeat(ref("raw/a")+",", MaxRouteRefs) + ref("raw/b") + `]}`:   "at most",
	}
	for in, want := range cases {
		_, err := ParseEvent([]byte(in), time.UTC, time.Hour)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to say %q", in, err, want)
		}
	}
}
