package lambda

import (
	"os"
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

func TestParseEventErrors(t *testing.T) {
	cases := map[string]string{
		`[]`:                    "not a JSON object",
		`not json`:              "not a JSON object",
		`null`:                  "not a JSON object",
		`{}`:                    "unrecognized event",
		`{"hello":"world"}`:     "unrecognized event",
		`{"from":"2026-11-20"}`: `"from" and "to" go together`,
		`{"from":"2026-11-22","to":"2026-11-20"}`:                                          "after",
		`{"from":"2026-11-20","to":"tomorrow"}`:                                            "not a date",
		`{"from":"2026-11-20","to":"2026-11-21","force":true}`:                             "unknown field",
		`{"from":"2026-02-30","to":"2026-03-01"}`:                                          "not a date",
		`{"role":"coordinator","day":"2026-11-20"}`:                                        `role "coordinator"`,
		`{"role":"worker"}`:                                                                "not a date",
		`{"role":"worker","day":"2026-11-20","run":"../x"}`:                                "run",
		`{"role":"worker","day":"2026-11-20","dya":"x"}`:                                   "unknown field",
		`{"source":"aws.s3","detail-type":"Object Created","time":"2026-11-24T03:00:00Z"}`: "Scheduled Event",
		`{"source":"aws.events","detail-type":"Scheduled Event"}`:                          "without a time",
	}
	for in, want := range cases {
		_, err := ParseEvent([]byte(in), time.UTC, time.Hour)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to say %q", in, err, want)
		}
	}
}
