package job

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// TestWindowedFollowLateDayBefore builds three final days, then an object
// that came later brings a person who was active only on the first of
// them, and a run rebuilds that day alone: every windowed partition that reads it
// (lifecycle_daily of the next day, whose dormant people it changes;
// stickiness_daily and active_users_daily of the days after) must be
// republished, so the store equals a clean build of the same objects.
func TestWindowedFollowLateDayBefore(t *testing.T) {
	ctx := context.Background()
	d := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	first := day.FromDate(d.Date())
	// Long after: every day is final, so no rebuild is due to its mark.
	now := func() time.Time { return d.AddDate(0, 1, 0) }
	rules := compact.DefaultRules(time.UTC)
	ev := func(id, user string, at time.Time) event.Raw {
		return event.Raw{EventID: id, EventTime: at, ReceivedAt: at.Add(time.Second), EventName: "view", UserID: user, Product: "shop", Platform: "web"}
	}
	object := func(at time.Time, name string) string {
		return "raw/" + at.Format("2006/01/02/15") + "/events-1-" + at.Format("2006-01-02-15-04-05") + "-" + name
	}
	on := func(n int) time.Time { return d.AddDate(0, 0, n).Add(10 * time.Hour) }
	objects := map[string][]event.Raw{
		object(on(0), "a"): {ev("a1", "ann", on(0)), ev("b1", "bob", on(0))},
		object(on(1), "b"): {ev("a2", "ann", on(1))},
		object(on(2), "c"): {ev("b3", "bob", on(2))},
	}
	// Written after the first run, in an arrival hour of the first day.
	late := map[string][]event.Raw{object(on(0).Add(12*time.Hour), "late"): {ev("c1", "cid", on(0))}}

	st := store.NewMem()
	for k, rows := range objects {
		writeRaw(t, st, k, rows)
	}
	if _, err := Run(ctx, Config{Store: st, From: first, To: first + 2, Rules: rules, Now: now}); err != nil {
		t.Fatal(err)
	}
	for k, rows := range late {
		writeRaw(t, st, k, rows)
	}
	sum, err := Run(ctx, Config{Store: st, From: first, To: first, Rules: rules, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Windowed == nil || sum.Windowed.Others == 0 {
		t.Fatalf("the late object republished no lifecycle or stickiness partition: %+v", sum.Windowed)
	}

	clean := store.NewMem()
	for _, m := range []map[string][]event.Raw{objects, late} {
		for k, rows := range m {
			writeRaw(t, clean, k, rows)
		}
	}
	if _, err := Run(ctx, Config{Store: clean, From: first, To: first + 2, Rules: rules, Now: now}); err != nil {
		t.Fatal(err)
	}
	// data_quality_daily's restated says what the second build changed.
	if diff := tablesDiff(t, clean, st, first-1, first+30); diff != "" {
		t.Errorf("the tables differ from a clean build (-clean +incremental):\n%s", diff)
	}
	// The restated number is recorded in the day's partition, whose date
	// column is that day.
	moved := readRows[rollups.Restatement](t, st, "restatements", first+1)
	found := false
	for _, r := range moved {
		found = found || r.TableName == "lifecycle_daily" && r.ColumnName == "dormant_users" && r.OldValue == 1 && r.NewValue == 2
		if r.Date != int32(first+1) {
			t.Errorf("restatement %+v: date %d, want %d", r, r.Date, first+1)
		}
	}
	if !found {
		t.Errorf("restatements of %s: %+v, want lifecycle_daily dormant_users 1 -> 2", first+1, moved)
	}
	// And the number itself: on the second day ann returned, bob and cid
	// went dormant.
	rows := readRows[rollups.LifecycleDaily](t, st, "lifecycle_daily", first+1)
	if len(rows) != 1 || rows[0].DormantUsers == nil || *rows[0].DormantUsers != 2 || *rows[0].ReturningUsers != 1 {
		t.Errorf("lifecycle_daily %s: %s", first+1, fmt.Sprintf("%+v", rows))
	}
}
