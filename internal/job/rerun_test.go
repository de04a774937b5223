package job

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// TestRerun runs the same range three times: the second run skips every
// day, the third (--force) rebuilds them into byte-identical files, and each
// partition holds exactly one run at the end.
func TestRerun(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	d1 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	if _, err := gen.Generate(ctx, st, gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 2), EventsPerDay: 1500, Seed: 3})); err != nil {
		t.Fatal(err)
	}
	auckland, _ := time.LoadLocation("Pacific/Auckland")
	cfg := Config{Store: st, From: mustDay(t, "2026-04-30"), To: mustDay(t, "2026-05-04"), Rules: compact.DefaultRules(auckland)}
	first, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	snap1, err := Snapshot(ctx, st, cfg.From, cfg.To)
	if err != nil {
		t.Fatal(err)
	}

	second, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range second.Days {
		if !d.Skipped {
			t.Errorf("second run rebuilt %s (%s); want it skipped", d.Day, d.Why)
		}
	}
	if second.RawObjects != 0 {
		t.Errorf("second run read %d raw objects, want none", second.RawObjects)
	}

	cfg.Force = true
	third, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	snap3, err := Snapshot(ctx, st, cfg.From, cfg.To)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(snap1, snap3); diff != "" {
		t.Errorf("a forced rebuild changed the published data (-first +forced):\n%s", diff)
	}
	if first.Run == third.Run {
		t.Error("the forced run reused the first run's id")
	}
	for k, v := range snap3 {
		if v[:7] != "runs=1 " {
			t.Errorf("%s: %s; want exactly one run", k, v)
		}
	}

	// Changing the time zone of a built store is refused with advice.
	cfg.Rules = compact.DefaultRules(time.UTC)
	if _, err := Run(ctx, cfg); err == nil || !strings.Contains(err.Error(), "--tz Pacific/Auckland") {
		t.Errorf("run in another zone: %v; want a refusal naming the store's zone", err)
	}
}

// TestSecondWriterIsRefused holds one partition's lease as another live
// process would: the run stops at that day with a message naming the
// holder, and leaves no lease of its own behind.
func TestSecondWriterIsRefused(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	loadFixture(t, st, "../../testdata/golden/raw.json")
	holder := lease.HolderID("nightly") // this test's own pid: alive
	if _, err := lease.Acquire(ctx, st, "quarantine/dt=2026-03-02", holder, time.Hour, 0, time.Now); err != nil {
		t.Fatal(err)
	}
	_, err = Run(ctx, Config{Store: st, From: mustDay(t, "2026-03-01"), To: mustDay(t, "2026-03-02"), LockWait: 10 * time.Millisecond})
	var locked *LockedError
	if !errors.As(err, &locked) || locked.Day.String() != "2026-03-02" || !strings.Contains(err.Error(), "run nightly") {
		t.Fatalf("err = %v; want a LockedError for 2026-03-02 naming run nightly", err)
	}
	leases, _ := st.List(ctx, lease.Prefix)
	if len(leases) != 1 {
		t.Errorf("leases left: %v; want only the other holder's", leases)
	}
}

// TestLateDataRestatesTheDay adds a late event for a built day: the next
// run rebuilds exactly the days whose inputs changed, marks the day
// restated with the old and new counts, and refreshes the windowed tables.
func TestLateDataRestatesTheDay(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	loadFixture(t, st, "../../testdata/golden/raw.json")
	cfg := Config{Store: st, From: mustDay(t, "2026-03-01"), To: mustDay(t, "2026-03-02")}
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	late := time.Date(2026, 3, 3, 2, 0, 0, 0, time.UTC)
	writeRaw(t, st, "raw/2026/03/03/02/golden-1-2026-03-03-02-00-00-late", []event.Raw{{
		EventID: "late-1", EventTime: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), ReceivedAt: late,
		EventName: "view", UserID: "u7", Product: "shop", Platform: "web"}})
	sum, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range sum.Days {
		if d.Skipped {
			continue
		}
		if d.Day.String() == "2026-03-01" {
			q := d.Quality
			if !q.Restated || d.EventsBefore != 8 || q.KeptRows != 9 || q.LateRows != 2 {
				t.Errorf("2026-03-01: restated %v, %d -> %d events, %d late; want true, 8 -> 9, 2 late (e12 and the new one)",
					q.Restated, d.EventsBefore, q.KeptRows, q.LateRows)
			}
		} else if d.Quality.Restated {
			t.Errorf("%s restated, but its numbers did not change", d.Day)
		}
	}
	if sum.Windowed == nil || sum.Windowed.ActiveDays == 0 {
		t.Errorf("windowed tables not refreshed: %+v", sum.Windowed)
	}
}

// TestWindowedWorkSurvivesAStop builds days without the windowed stage (as
// a run that died between the stages, or a Lambda worker, leaves them): the
// next run, with nothing stale, still recomputes their windowed dependants.
func TestWindowedWorkSurvivesAStop(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	loadFixture(t, st, "../../testdata/golden/raw.json")
	cfg := Config{Store: st, From: mustDay(t, "2026-03-01"), To: mustDay(t, "2026-03-02")}
	if _, err := BuildDays(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.From, cfg.To = mustDay(t, "2026-03-02"), mustDay(t, "2026-03-02") // a later, narrower run
	sum, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Days) != 1 || !sum.Days[0].Skipped {
		t.Fatalf("days %+v, want 2026-03-02 skipped", sum.Days)
	}
	if _, err := publish.Current(ctx, st, "retention_daily", mustDay(t, "2026-03-01")); err != nil {
		t.Errorf("the cohort of 2026-03-01 (built before the stop) was not computed: %v", err)
	}
}

// TestNewCodeRestatesNothing: a run whose current partitions were computed
// by an earlier code version (an upgrade: new columns, a count defined
// anew) records no restated number, even where the numbers differ (the
// earlier version may not have had the column: its "0" was never
// published); the same late data under the same code does
// (TestLateDataRestatesTheDay). The day's restated flag still says that
// its count of events changed.
func TestNewCodeRestatesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	loadFixture(t, st, "../../testdata/golden/raw.json")
	cfg := Config{Store: st, From: mustDay(t, "2026-03-01"), To: mustDay(t, "2026-03-02")}
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	// What an earlier version published (its manifests, and their
	// commit log entries).
	old := `"code_version": "` + CodeVersion + `"`
	n := 0
	err = filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		logEntry := strings.Contains(path, string(filepath.Separator)+strings.TrimSuffix(publish.CommitPrefix, "/")+string(filepath.Separator))
		if err != nil || e.IsDir() || e.Name() != publish.ManifestName && !logEntry {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(old)) {
			n++
		}
		return os.WriteFile(path, bytes.ReplaceAll(b, []byte(old), []byte(`"code_version": "earlier"`)), 0o644)
	})
	if err != nil || n == 0 {
		t.Fatalf("manifests rewritten: %d, %v", n, err)
	}
	writeRaw(t, st, "raw/2026/03/03/02/golden-1-2026-03-03-02-00-00-late", []event.Raw{{
		EventID: "late-1", EventTime: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), ReceivedAt: time.Date(2026, 3, 3, 2, 0, 0, 0, time.UTC),
		EventName: "view", UserID: "u7", Product: "shop", Platform: "web"}})
	sum, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range sum.Days {
		if len(d.Restatements) > 0 {
			t.Errorf("%s: restated %v; want no number restated across code versions", d.Day, d.Restatements)
		}
		if d.Day.String() == "2026-03-01" && (!d.Quality.Restated || d.EventsBefore != 8 || d.Quality.KeptRows != 9) {
			t.Errorf("2026-03-01: restated %v, %d -> %d events; want true, 8 -> 9", d.Quality.Restated, d.EventsBefore, d.Quality.KeptRows)
		}
	}
	if sum.Windowed == nil || sum.Windowed.ActiveDays == 0 || len(sum.Windowed.Restatements) > 0 {
		t.Errorf("windowed: %+v; want republished, nothing restated", sum.Windowed)
	}
}
