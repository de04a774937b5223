package collector

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/duckref"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// TestPipelineCollectorToRollup sends events through the collector and its
// local Firehose, adds a Firehose conversion-failure file as Firehose
// writes them, and runs the rollup job on the result: every accepted event
// is in the events table, and the conversion failures are counted in
// data_quality_daily.
func TestPipelineCollectorToRollup(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.Store = dir
	cfg.Stream = "app"
	cfg.BufferInterval = time.Hour
	base, stop := startRun(t, cfg)
	status, resp := postEvents(t, base, key1, `[
		{"event_name":"screen_view","user_id":"u-1","event_time":"2026-11-24T13:00:00Z","product":"shop","platform":"web"},
		{"event_name":"purchase","device_id":"d-9","event_time":"2026-11-24T13:04:00Z","product":"shop","platform":"ios"},
		{"event_name":"no_user"},
		{"event_name":"app_open","user_id":"u-2","product":"blog","platform":"android"}
	]`)
	if status != http.StatusMultiStatus || resp.Accepted != 3 || resp.Rejected != 1 {
		t.Fatalf("post: %d %+v", status, resp)
	}
	// A client that lost the answer sends the same event again: accepted
	// twice, with two event_ids (at least once).
	retry := `{"event_name":"tap","user_id":"u-3","product":"shop","platform":"web"}`
	var accepted []string
	for _, e := range resp.Events {
		accepted = append(accepted, e.EventID)
	}
	for range 2 {
		status, r := postEvents(t, base, key1, retry)
		if status != http.StatusOK {
			t.Fatalf("retry: %d %+v", status, r)
		}
		accepted = append(accepted, r.Events[0].EventID)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.OpenDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	// Two records Firehose could not convert, in its own format (both
	// spellings of the error fields occur).
	arrival := time.Date(2026, 11, 24, 14, 0, 0, 0, time.UTC).UnixMilli()
	if err := st.Put(ctx, "raw-errors/format-conversion-failed/2026/11/24/14/app-1-2026-11-24-14-00-00-x",
		fmt.Appendf(nil, `{"attemptsMade":1,"arrivalTimestamp":%d,"errorCode":"DataFormatConversion.MalformedData","errorMessage":"bad","rawData":"e30="}
{"attemptsMade":1,"arrivalTimestamp":%d,"lastErrorCode":"DataFormatConversion.ParseError","lastErrorMessage":"bad","rawData":"e30="}
`, arrival, arrival+1)); err != nil {
		t.Fatal(err)
	}
	d := day.FromDate(2026, 11, 24)
	sum, err := job.Run(ctx, job.Config{Store: st, From: d, To: d, Rules: compact.DefaultRules(time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	q := sum.Days[0].Quality
	if q.KeptRows != 5 || q.InvalidRows != 0 || q.ConversionFailedRecords != 2 || q.ClockSkewedRows != 3 {
		t.Errorf("quality %+v; want 5 events (3 without event_time, so skewed) and 2 conversion failures", q)
	}
	db, err := duckref.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.ViewCurated(ctx, dir, "events"); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(ctx, "SELECT event_id FROM events ORDER BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rows {
		got = append(got, r["event_id"].(string))
	}
	slices.Sort(accepted)
	if !slices.Equal(got, accepted) {
		t.Errorf("events table holds %v, want exactly the accepted %v", got, accepted)
	}
}
