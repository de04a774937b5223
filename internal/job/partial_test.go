package job

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// TestHeldDayIsSkipped: a day whose lease another live rollup holds is
// skipped and named, the other days are built, and the run says it was
// partial; once the lease is free, the next run builds the day.
func TestHeldDayIsSkipped(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	loadFixture(t, st, "../../testdata/golden/raw.json")
	d1, d2 := mustDay(t, "2026-03-01"), mustDay(t, "2026-03-02")
	held, err := lease.Acquire(ctx, st, "user_daily/dt="+d1.String(), lease.HolderID("backfill"), time.Hour, 0, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Run(ctx, Config{Store: st, From: d1, To: d2})
	var partial *PartialError
	if !errors.As(err, &partial) || len(partial.Held) != 1 || partial.Held[0].Day != d1 {
		t.Fatalf("Run: %v, want a PartialError naming %s", err, d1)
	}
	var lockedErr *LockedError
	if !errors.As(err, &lockedErr) {
		t.Errorf("%v does not unwrap to a LockedError", err)
	}
	if _, err := publish.Current(ctx, st, "events", d2); err != nil {
		t.Errorf("%s not built beside the held day: %v", d2, err)
	}
	if _, err := publish.Current(ctx, st, "events", d1); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("held day %s was written: %v", d1, err)
	}
	if len(sum.Days) != 2 || !sum.Days[0].Skipped {
		t.Errorf("days: %+v", sum.Days)
	}
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, Config{Store: st, From: d1, To: d2}); err != nil {
		t.Fatal(err)
	}
	if _, err := publish.Current(ctx, st, "events", d1); err != nil {
		t.Errorf("%s not built once free: %v", d1, err)
	}
}

// TestClockBehindStillPublishes: a machine whose clock is an hour behind
// rebuilds days another machine published: its runs (whose ids sort first)
// become current, since commit order decides, and the older runs go.
func TestClockBehindStillPublishes(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	loadFixture(t, st, "../../testdata/golden/raw.json")
	d1, d2 := mustDay(t, "2026-03-01"), mustDay(t, "2026-03-02")
	if _, err := Run(ctx, Config{Store: st, From: d1, To: d2}); err != nil {
		t.Fatal(err)
	}
	behind := func() time.Time { return time.Now().Add(-time.Hour) }
	if _, err := Run(ctx, Config{Store: st, From: d1, To: d2, Force: true, Now: behind}); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"events", "quarantine", "active_users_daily"} {
		m, err := publish.Current(ctx, st, table, d1)
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(m.CreatedAt) < 50*time.Minute || m.Generation != 2 {
			t.Errorf("%s %s: current run %s made at %s, generation %d; want the run of the clock an hour behind, generation 2",
				table, d1, m.Run, m.CreatedAt, m.Generation)
		}
	}
	snap, err := Snapshot(ctx, st, d1, d2)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range snap {
		if !strings.HasPrefix(v, "runs=1 ") {
			t.Errorf("%s: %s; want one run left", k, v)
		}
	}
}
