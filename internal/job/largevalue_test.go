package job

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/raw"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/internal/store/storetest"
	"github.com/littlewarehouse/warehouse/rollups"
)

// TestLargeValuesCostNoOtherRows: one raw object holds 200 good rows, a
// row with a 600 KiB user_id, one with a 600 KiB property value, one with
// a user_id of exactly raw.MaxValueBytes, one with a user_id and one with a
// property value over it, then 200 more good rows. The run keeps every
// row up to the limit in events, whole (DuckDB reads them back), and
// quarantines the two rows over it alone, with reason value_too_large and
// what was too large; data_quality_daily counts them as invalid rows, and
// no object is bad. A forced rebuild is made from the segments (the values
// compress well: the segments are not taken for damaged), reading no raw
// object, and gives the same tables. Before, the object was rejected whole
// as bad_object_corrupt ("page 0 header: thrift: 614400 elements claimed,
// 434124 bytes left") and none of its rows reached events.
func TestLargeValuesCostNoOtherRows(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	dir, err := store.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.CountReads(dir, "raw/")
	d0 := time.Date(2026, 6, 3, 0, 0, 0, 0, time.UTC)
	at := d0.Add(10 * time.Hour)
	var rows []event.Raw
	add := func(id string, edit func(r *event.Raw)) {
		i := len(rows)
		r := event.Raw{EventID: id, EventTime: at.Add(time.Duration(i) * time.Second), ReceivedAt: at.Add(time.Duration(i)*time.Second + time.Minute),
			EventName: "open", UserID: fmt.Sprint("u", i%20), Product: "app", Platform: "web", Properties: map[string]string{"n": fmt.Sprint(i)}}
		if edit != nil {
			edit(&r)
		}
		rows = append(rows, r)
	}
	for i := range 200 {
		add(fmt.Sprint("good-", i), nil)
	}
	userKiB, propKiB := strings.Repeat("u", 600<<10), strings.Repeat("p", 600<<10)
	atLimit := strings.Repeat("L", raw.MaxValueBytes)
	add("big-user", func(r *event.Raw) { r.UserID = userKiB })
	add("big-prop", func(r *event.Raw) { r.Properties = map[string]string{"big": propKiB, "n": "x"} })
	add("at-limit", func(r *event.Raw) { r.UserID = atLimit })
	add("over-user", func(r *event.Raw) { r.UserID = strings.Repeat("o", raw.MaxValueBytes+1) })
	add("over-prop", func(r *event.Raw) { r.Properties = map[string]string{"big": strings.Repeat("q", 2<<20)} })
	for i := range 200 {
		add(fmt.Sprint("more-", i), nil)
	}
	key := rawKey(at, "large")
	writeRaw(t, dir, key, rows)

	d := day.FromDate(d0.Date())
	cfg := Config{Store: st, From: d, To: d, Rules: compact.DefaultRules(time.UTC)}
	sum, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.BadObjects) != 0 {
		t.Fatalf("bad objects: %+v", sum.BadObjects)
	}
	q := sum.Days[0].Quality
	if q.RawRows != int64(len(rows)) || q.InvalidRows != 2 || q.KeptRows != int64(len(rows))-2 || q.BadFiles != 0 {
		t.Errorf("quality: raw %d, invalid %d, kept %d, bad files %d; want %d, 2, %d, 0",
			q.RawRows, q.InvalidRows, q.KeptRows, q.BadFiles, len(rows), len(rows)-2)
	}

	events := readRows[rollups.Event](t, dir, "events", d)
	byID := map[string]rollups.Event{}
	for _, e := range events {
		byID[e.EventID] = e
	}
	for _, r := range rows {
		_, kept := byID[r.EventID]
		if over := strings.HasPrefix(r.EventID, "over-"); kept == over {
			t.Errorf("event %s: in events %v", r.EventID, kept)
		}
	}
	if byID["big-user"].UserID != userKiB || byID["big-user"].UserKey != userKiB || byID["big-prop"].Properties["big"] != propKiB ||
		byID["at-limit"].UserID != atLimit {
		t.Error("a value up to the limit was not kept whole")
	}

	quarantined := readRows[rollups.Quarantine](t, dir, "quarantine", d)
	var got []string
	for _, r := range quarantined {
		got = append(got, fmt.Sprintf("%s %s %s %s", r.Reason, r.EventID, r.SourceObject, r.Detail))
		for _, s := range []string{r.UserID, r.Properties["big"]} {
			if len(s) > raw.TooLargeKeptBytes+len("…") {
				t.Errorf("quarantined %s holds a value of %d bytes", r.EventID, len(s))
			}
		}
	}
	slices.Sort(got)
	want := []string{
		fmt.Sprintf("value_too_large over-prop %s properties[\"big\"]: %d bytes", key, 2<<20),
		fmt.Sprintf("value_too_large over-user %s user_id: %d bytes", key, raw.MaxValueBytes+1),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("quarantine (-want +got):\n%s", diff)
	}

	db := openDuck(t)
	if err := db.ViewCurated(ctx, root, tableNames()...); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"events", "engagement_daily", "user_daily", "sessions_daily", "data_quality_daily", "quarantine", "users", "active_users_daily"} {
		if n := readAll(t, ctx, db.DB, table); n == 0 {
			t.Errorf("DuckDB read no rows of %s", table)
		}
	}
	var n, user, prop, limit int64
	err = db.QueryRowContext(ctx, `SELECT count(*),
		max(strlen(user_id)) FILTER (WHERE event_id = 'big-user'),
		max(strlen(CAST(properties AS VARCHAR))) FILTER (WHERE event_id = 'big-prop'),
		max(strlen(user_key)) FILTER (WHERE event_id = 'at-limit')
		FROM events`).Scan(&n, &user, &prop, &limit)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(rows))-2 || user != 600<<10 || prop < 600<<10 || limit != raw.MaxValueBytes {
		t.Errorf("DuckDB reads %d events, a user_id of %d bytes, properties of %d, a user_key of %d; want %d, %d, > %d, %d",
			n, user, prop, limit, len(rows)-2, 600<<10, 600<<10, raw.MaxValueBytes)
	}
	var tooLarge int64
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM quarantine WHERE reason = 'value_too_large'").Scan(&tooLarge); err != nil || tooLarge != 2 {
		t.Errorf("DuckDB reads %d value_too_large rows (%v), want 2", tooLarge, err)
	}

	if reads := st.Take(); reads[key] != 1 {
		t.Errorf("the first run read the object %d times, want once", reads[key])
	}
	want0, err := Snapshot(ctx, dir, d, d)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Force = true
	again, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if reads := st.Take(); len(reads) != 0 || again.RawObjects != 0 {
		t.Errorf("a forced rebuild read raw objects %v: its segments of large values were refused", reads)
	}
	got0, err := Snapshot(ctx, dir, d, d)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want0, got0); diff != "" {
		t.Errorf("rebuilt from segments (-first +rebuilt):\n%.3000s", diff)
	}
}

// TestEpochClientTimeIsATime: a client event_time of exactly 1970-01-01
// (the Unix epoch, 0 ms) is kept in events.client_event_time as that
// time, not as null; a missing one is null. The row counts at its
// received_at (its clock is off). Before, 0 was taken for null.
func TestEpochClientTimeIsATime(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	st, err := store.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	d0 := time.Date(2026, 6, 3, 0, 0, 0, 0, time.UTC)
	at := d0.Add(10 * time.Hour)
	row := func(id string, client time.Time) event.Raw {
		return event.Raw{EventID: id, EventTime: client, ReceivedAt: at, EventName: "open", UserID: "u", Product: "app", Platform: "web"}
	}
	writeRaw(t, st, rawKey(at, "epoch"), []event.Raw{
		row("epoch", time.UnixMilli(0).UTC()),
		row("none", time.Time{}),
		row("before", time.UnixMilli(-1).UTC()),
		row("ontime", at.Add(-time.Second)),
	})
	d := day.FromDate(d0.Date())
	if _, err := Run(ctx, Config{Store: st, From: d, To: d, Rules: compact.DefaultRules(time.UTC)}); err != nil {
		t.Fatal(err)
	}
	db := openDuck(t)
	if err := db.ViewCurated(ctx, root, "events"); err != nil {
		t.Fatal(err)
	}
	res, err := db.QueryContext(ctx, "SELECT event_id, epoch_ms(client_event_time), clock_skewed FROM events ORDER BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	var got []string
	for res.Next() {
		var id string
		var client sql.NullInt64
		var skewed bool
		if err := res.Scan(&id, &client, &skewed); err != nil {
			t.Fatal(err)
		}
		c := "null"
		if client.Valid {
			c = fmt.Sprint(client.Int64)
		}
		got = append(got, fmt.Sprintf("%s %s %v", id, c, skewed))
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{"before -1 true", "epoch 0 true", "none null true", fmt.Sprintf("ontime %d false", at.Add(-time.Second).UnixMilli())}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// readAll reads every column of every row of table and returns how many
// rows there were.
func readAll(t *testing.T, ctx context.Context, db *sql.DB, table string) int {
	t.Helper()
	res, err := db.QueryContext(ctx, "SELECT * FROM "+table)
	if err != nil {
		t.Fatalf("DuckDB cannot read %s: %v", table, err)
	}
	defer res.Close()
	cols, err := res.Columns()
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	n := 0
	for res.Next() {
		if err := res.Scan(ptrs...); err != nil {
			t.Fatalf("DuckDB cannot read %s: %v", table, err)
		}
		n++
	}
	if err := res.Err(); err != nil {
		t.Fatalf("DuckDB cannot read %s: %v", table, err)
	}
	return n
}

// TestEpochQuarantineTimesAreTimes: a quarantined row's event_time and
// received_at of exactly the epoch are kept as that time, not null; a
// missing one is null.
func TestEpochQuarantineTimesAreTimes(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	st, err := store.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	d0 := time.Date(2026, 6, 3, 0, 0, 0, 0, time.UTC)
	at := d0.Add(10 * time.Hour)
	epoch := time.UnixMilli(0).UTC()
	writeRaw(t, st, rawKey(at, "epoch"), []event.Raw{
		{EventID: "both", EventTime: epoch, ReceivedAt: epoch, EventName: "open", UserID: "u"},
		{EventID: "received", ReceivedAt: epoch, EventName: "open", UserID: "u"},
	})
	d := day.FromDate(d0.Date())
	if _, err := Run(ctx, Config{Store: st, From: d, To: d, Rules: compact.DefaultRules(time.UTC)}); err != nil {
		t.Fatal(err)
	}
	db := openDuck(t)
	if err := db.ViewCurated(ctx, root, "quarantine"); err != nil {
		t.Fatal(err)
	}
	res, err := db.QueryContext(ctx, "SELECT event_id, reason, coalesce(CAST(epoch_ms(event_time) AS VARCHAR), 'null'), coalesce(CAST(epoch_ms(received_at) AS VARCHAR), 'null') FROM quarantine ORDER BY event_id")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	var got []string
	for res.Next() {
		var id, reason, et, ra string
		if err := res.Scan(&id, &reason, &et, &ra); err != nil {
			t.Fatal(err)
		}
		got = append(got, strings.Join([]string{id, reason, et, ra}, " "))
	}
	want := []string{"both implausible_received_at 0 0", "received implausible_received_at null 0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("quarantine (-want +got):\n%s", diff)
	}
}
