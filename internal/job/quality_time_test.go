package job

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// TestQualitySplitsMissingFromSkewedTimes: of a day's events counted at
// received_at, those sent without an event_time are missing_event_time_rows
// and those whose event_time was off (an hour ahead; exactly the epoch, a
// time like any other) are clock_skewed_rows; a dropped duplicate counts in
// neither. DuckDB, running the reference SQL on the raw rows, gives the
// same numbers; events.clock_skewed is set for both kinds. Before the
// split, clock_skewed_rows counted all four.
func TestQualitySplitsMissingFromSkewedTimes(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	st, err := store.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 6, 3, 10, 0, 0, 0, time.UTC)
	row := func(id string, client time.Time) event.Raw {
		return event.Raw{EventID: id, EventTime: client, ReceivedAt: at, EventName: "open", UserID: "u", Product: "app", Platform: "web"}
	}
	late := row("none-1", time.Time{})
	late.ReceivedAt = at.Add(time.Minute) // a later copy: dropped
	key := rawKey(at, "times")
	writeRaw(t, st, key, []event.Raw{
		row("none-1", time.Time{}),
		late,
		row("none-2", time.Time{}),
		row("ahead", at.Add(time.Hour)),
		row("epoch", time.UnixMilli(0).UTC()),
		row("ontime", at.Add(-time.Second)),
	})
	d := day.FromDate(at.Date())
	sum, err := Run(ctx, Config{Store: st, From: d, To: d, Rules: compact.DefaultRules(time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	q := sum.Days[0].Quality
	if q.KeptRows != 5 || q.DuplicatesDropped != 1 || q.MissingEventTimeRows != 2 || q.ClockSkewedRows != 2 {
		t.Errorf("quality %+v; want 5 kept, 1 duplicate, 2 missing event_time, 2 clock-skewed", q)
	}

	db := openDuck(t)
	loadReference(t, ctx, db, root, []string{key}, "UTC")
	if err := db.ViewCurated(ctx, root, "events", "data_quality_daily"); err != nil {
		t.Fatal(err)
	}
	const cols = "clock_skewed_rows, missing_event_time_rows"
	ours, err := db.Query(ctx, "SELECT dt, "+cols+" FROM data_quality_daily")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := db.Query(ctx, `SELECT dt, count(*) FILTER (WHERE clock_skewed AND client_event_time IS NOT NULL) AS clock_skewed_rows,
		count(*) FILTER (WHERE client_event_time IS NULL) AS missing_event_time_rows FROM ref_events GROUP BY dt`)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ref, ours); diff != "" {
		t.Errorf("data_quality_daily (-reference +ours):\n%s", diff)
	}
	if n := queryOne[int64](t, ctx, db, "SELECT count(*) FROM events WHERE clock_skewed"); n != 4 {
		t.Errorf("%d events with clock_skewed, want 4 (missing or off)", n)
	}
}
