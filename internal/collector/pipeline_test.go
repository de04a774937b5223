package collector

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/duckref"
	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/raw"
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
	if q.KeptRows != 5 || q.InvalidRows != 0 || q.ConversionFailedRecords != 2 || q.MissingEventTimeRows != 3 || q.ClockSkewedRows != 0 {
		t.Errorf("quality %+v; want 5 events (3 without event_time, none skewed) and 2 conversion failures", q)
	}
	got := eventIDs(t, dir)
	slices.Sort(accepted)
	if !slices.Equal(got, accepted) {
		t.Errorf("events table holds %v, want exactly the accepted %v", got, accepted)
	}
}

// TestPipelineKeepsWhatItAccepts: events at every limit of the collector —
// 64 KiB in every string column and property, the earliest and latest
// event_time it takes — are accepted, are readable in raw/, and keep their
// values in the events table (issue 29: an accepted event is never
// unreadable later, and an accepted time is a time the tables keep).
func TestPipelineKeepsWhatItAccepts(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.Store = dir
	cfg.Stream = "app"
	cfg.BufferInterval = time.Hour
	cfg.MaxBodyBytes = 4 << 20
	base, stop := startRun(t, cfg)

	long := func(c byte) string { return strings.Repeat(string(c), event.MaxStringBytes) }
	full := fmt.Sprintf(`{"event_name":%q,"user_id":%q,"device_id":%q,"session_id":%q,"product":%q,"platform":%q,"app_version":%q,"country":%q,"properties":{%q:%q}}`,
		long('n'), long('u'), long('d'), long('s'), long('p'), long('w'), long('v'), long('c'), strings.Repeat("k", event.MaxPropertyKeyBytes), long('x'))
	var props strings.Builder
	for i := range event.MaxProperties {
		fmt.Fprintf(&props, `,"p%03d":"%d"`, i, i)
	}
	body := "[" + full + "," + full +
		`,{"event_name":"first","user_id":"u","event_time":"1970-01-01T00:00:00.001Z"}` +
		`,{"event_name":"last","user_id":"u","event_time":"9999-12-31T23:59:59.999Z"}` +
		`,{"event_name":"many","user_id":"u"` + props.String() + `}]`
	status, resp := postEvents(t, base, key1, body)
	if status != http.StatusOK || resp.Accepted != 5 {
		t.Fatalf("post: %d %+v", status, resp)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	st, err := store.OpenDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := st.List(ctx, "raw/")
	if err != nil || len(keys) == 0 {
		t.Fatalf("raw objects %v, %v", keys, err)
	}
	var rows []raw.Row
	for _, k := range keys {
		rs, err := raw.Read(ctx, st, k.Key)
		if err != nil {
			t.Fatalf("raw object %s is not readable: %v", k.Key, err)
		}
		rows = append(rows, rs...)
	}
	if len(rows) != 5 {
		t.Fatalf("%d raw rows, want 5", len(rows))
	}
	byName := map[string]raw.Row{}
	for _, r := range rows {
		byName[r.EventName] = r
	}
	if r := byName[long('n')]; r.UserID != long('u') || r.Country != long('c') || r.Properties[strings.Repeat("k", event.MaxPropertyKeyBytes)] != long('x') {
		t.Errorf("the 64 KiB values are not kept")
	}
	if n := len(byName["many"].Properties); n != event.MaxProperties {
		t.Errorf("%d properties kept, want %d", n, event.MaxProperties)
	}

	d := day.FromDate(2026, 11, 24)
	if _, err := job.Run(ctx, job.Config{Store: st, From: d, To: d, Rules: compact.DefaultRules(time.UTC)}); err != nil {
		t.Fatal(err)
	}
	db, err := duckref.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.ViewCurated(ctx, dir, "events"); err != nil {
		t.Fatal(err)
	}
	got, err := db.Query(ctx, `SELECT event_name, epoch_ms(client_event_time) AS ms, length(user_id) AS n
		FROM events WHERE event_name IN ('first', 'last') OR length(event_name) > 100 ORDER BY ms NULLS LAST`)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name string
		ms   any
	}{{"first", int64(1)}, {"last", event.MaxTime.UnixMilli()}, {long('n'), nil}, {long('n'), nil}}
	if len(got) != len(want) {
		t.Fatalf("events %d rows, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i]["event_name"] != w.name || got[i]["ms"] != w.ms {
			t.Errorf("row %d: event_name of %d bytes, client_event_time ms %v; want %d bytes, %v",
				i, len(fmt.Sprint(got[i]["event_name"])), got[i]["ms"], len(w.name), w.ms)
		}
	}
}

// TestPipelineOversizedEventsCostNoOthers is issue 29's scenario end to
// end: 200 events, one with a 600 KiB user_id and one with a 600 KiB
// property value, 200 more, a graceful stop (what SIGTERM does), then the
// rollup. The two oversized events are refused with 400, and every event
// answered 200 is in the events table.
func TestPipelineOversizedEventsCostNoOthers(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig()
	cfg.Store = dir
	cfg.Stream = "app"
	cfg.BufferInterval = time.Hour
	base, stop := startRun(t, cfg)
	var accepted []string
	send := func(from, n int) {
		for i := from; i < from+n; i++ {
			status, r := postEvents(t, base, key1, fmt.Sprintf(
				`{"event_name":"tap","user_id":"u-%d","product":"shop","platform":"web"}`, i%17))
			if status != http.StatusOK || len(r.Events) != 1 {
				t.Fatalf("event %d: %d %+v", i, status, r)
			}
			accepted = append(accepted, r.Events[0].EventID)
		}
	}
	send(0, 200)
	big := strings.Repeat("x", 600<<10)
	for _, body := range []string{
		`{"event_name":"tap","user_id":"` + big + `","product":"shop","platform":"web"}`,
		`{"event_name":"tap","user_id":"u-1","product":"shop","platform":"web","properties":{"blob":"` + big + `"}}`,
	} {
		if status, r := postEvents(t, base, key1, body); status != http.StatusBadRequest || r.Accepted != 0 {
			t.Fatalf("oversized event: %d %+v; want 400, nothing accepted", status, r)
		}
	}
	send(200, 200)
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	st, err := store.OpenDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	// The test collector's clock is 2026-11-24T13:05:09Z.
	d := day.FromDate(2026, 11, 24)
	sum, err := job.Run(ctx, job.Config{Store: st, From: d, To: d, Rules: compact.DefaultRules(time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	var kept, invalid, bad int64
	for _, d := range sum.Days {
		kept += d.Quality.KeptRows
		invalid += d.Quality.InvalidRows
		bad += d.Quality.BadFiles
	}
	if kept != 400 || invalid != 0 || bad != 0 {
		t.Errorf("kept %d, invalid %d, bad files %d; want 400, 0, 0", kept, invalid, bad)
	}
	got := eventIDs(t, dir)
	slices.Sort(accepted)
	if !slices.Equal(got, accepted) {
		t.Errorf("events table holds %d events, want exactly the %d accepted", len(got), len(accepted))
	}
}

// eventIDs reads the event ids of the events table of the store at dir,
// sorted, with DuckDB.
func eventIDs(t *testing.T, dir string) []string {
	t.Helper()
	ctx := context.Background()
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
	var ids []string
	for _, r := range rows {
		ids = append(ids, r["event_id"].(string))
	}
	return ids
}
