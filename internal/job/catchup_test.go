package job

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

func genStore(t *testing.T, cfg gen.Config) *store.Dir {
	t.Helper()
	st, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gen.Generate(context.Background(), st, cfg); err != nil {
		t.Fatal(err)
	}
	return st
}

// withoutRestated drops the data_quality_daily entries, whose restated
// column says how a day came to be (rebuilt, or built once) and so differs
// between an incremental run and a rebuild from scratch by design.
// tablesDiff returns how the tables of got differ from those of want over
// the days from..to (Snapshot, data_quality_daily aside: see
// withoutQuality), "" if they do not.
func tablesDiff(t *testing.T, want, got store.Store, from, to day.Day) string {
	t.Helper()
	ctx := context.Background()
	w, err := Snapshot(ctx, want, from, to)
	if err != nil {
		t.Fatal(err)
	}
	g, err := Snapshot(ctx, got, from, to)
	if err != nil {
		t.Fatal(err)
	}
	return cmp.Diff(withoutQuality(w), withoutQuality(g))
}

func withoutQuality(s map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range s {
		if !strings.HasPrefix(k, "data_quality_daily/") {
			out[k] = v
		}
	}
	return out
}

// TestOneLateObject adds one raw object with late events for a day three
// days back: the next run rebuilds exactly that day (and the windowed days
// that depend on it), and the result equals a rebuild from scratch.
func TestOneLateObject(t *testing.T) {
	ctx := context.Background()
	d1 := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	gcfg := gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 9), EventsPerDay: 600, ObjectsPerHour: 1, Seed: 5})
	st := genStore(t, gcfg)
	cfg := Config{Store: st, From: day.FromDate(2026, 8, 1), To: day.FromDate(2026, 8, 10), Rules: compact.DefaultRules(time.UTC)}
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	// Late events for 2026-08-07, arriving on 2026-08-10.
	arrive := time.Date(2026, 8, 10, 15, 0, 0, 0, time.UTC)
	var late []event.Raw
	for i := 0; i < 5; i++ {
		late = append(late, event.Raw{EventID: "late-" + string(rune('a'+i)), EventTime: time.Date(2026, 8, 7, 9, i, 0, 0, time.UTC),
			ReceivedAt: arrive, EventName: "view", UserID: "late-user", Product: "shop", Platform: "ios"})
	}
	key := "raw/2026/08/10/15/events-1-2026-08-10-15-00-00-late"
	writeRaw(t, st, key, late)
	sum, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var rebuilt []string
	for _, d := range sum.Days {
		if !d.Skipped {
			rebuilt = append(rebuilt, d.Day.String())
		}
	}
	if diff := cmp.Diff([]string{"2026-08-07"}, rebuilt); diff != "" {
		t.Errorf("rebuilt days (-want +got):\n%s", diff)
	}
	if sum.RawObjects == 0 || sum.Days[6].Quality.LateRows < 5 {
		t.Errorf("read %d objects; late rows %d", sum.RawObjects, sum.Days[6].Quality.LateRows)
	}
	// What moved is said, and recorded in the restatements table: the
	// day's counts, and the late user's first day (a new user on 08-07).
	d7 := day.FromDate(2026, 8, 7)
	recorded := readRows[rollups.Restatement](t, st, "restatements", d7)
	has := func(table, column string, delta int64) bool {
		for _, r := range recorded {
			if r.TableName == table && r.ColumnName == column && r.NewValue-r.OldValue == delta && r.Run != "" && r.RestatedAt > 0 {
				return true
			}
		}
		return false
	}
	if !has("data_quality_daily", "kept_rows", 5) || !has("active_users_daily", "new_users", 1) || !has("active_users_daily", "dau", 1) {
		t.Errorf("restatements of %s: %+v; want kept_rows +5, and new_users and dau +1 for the late user", d7, recorded)
	}
	if len(sum.Days[6].Restatements) == 0 || sum.Windowed == nil || len(sum.Windowed.Restatements) == 0 {
		t.Errorf("the summary does not say what moved: %+v, %+v", sum.Days[6].Restatements, sum.Windowed)
	}
	if !strings.Contains(sum.Days[6].Restatements[0].String(), "data_quality_daily 2026-08-07") {
		t.Errorf("restatement reads %q", sum.Days[6].Restatements[0])
	}

	fresh := genStore(t, gcfg)
	writeRaw(t, fresh, key, late)
	if _, err := Run(ctx, Config{Store: fresh, From: cfg.From, To: cfg.To, Rules: cfg.Rules}); err != nil {
		t.Fatal(err)
	}
	if diff := tablesDiff(t, fresh, st, cfg.From, cfg.To); diff != "" {
		t.Errorf("incremental result differs from a rebuild from scratch (-scratch +incremental):\n%s", diff)
	}
}

// TestConcurrentRuns starts two runs of the same days at once (the nightly
// run and a manual backfill): both finish, and the result is the same as
// one clean run.
func TestConcurrentRuns(t *testing.T) {
	ctx := context.Background()
	d1 := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	gcfg := gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 3), EventsPerDay: 2000, ObjectsPerHour: 2, Seed: 9})
	st := genStore(t, gcfg)
	cfg := Config{Store: st, From: day.FromDate(2026, 9, 1), To: day.FromDate(2026, 9, 4), Rules: compact.DefaultRules(time.UTC), LockWait: time.Minute}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Run(ctx, cfg)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	clean := genStore(t, gcfg)
	if _, err := Run(ctx, Config{Store: clean, From: cfg.From, To: cfg.To, Rules: cfg.Rules}); err != nil {
		t.Fatal(err)
	}
	if diff := tablesDiff(t, clean, st, cfg.From, cfg.To); diff != "" {
		t.Errorf("two concurrent runs differ from one clean run (-clean +concurrent):\n%s", diff)
	}
}

// TestWindowedInvariants checks, on 60 days of eventgen data, that DAU ≤
// WAU ≤ MAU, new + returning = DAU, and every cohort's size equals that
// day's new users.
func TestWindowedInvariants(t *testing.T) {
	if testing.Short() {
		t.Skip("60 days of data")
	}
	ctx := context.Background()
	d1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := genStore(t, gen.Config{From: d1, To: d1.AddDate(0, 0, 59), EventsPerDay: 400, ObjectsPerHour: 1, Seed: 60, Users: 300})
	from, to := day.FromDate(2026, 1, 1), day.FromDate(2026, 3, 1)
	if _, err := Run(ctx, Config{Store: st, From: from, To: to}); err != nil {
		t.Fatal(err)
	}
	db := openDuck(t)
	if err := db.ViewCurated(ctx, st.Root(), "active_users_daily", "retention_daily"); err != nil {
		t.Fatal(err)
	}
	checks := map[string]string{
		"dau <= wau <= mau":           "SELECT count(*) FROM active_users_daily WHERE NOT (dau <= wau AND wau <= mau)",
		"new + returning = dau":       "SELECT count(*) FROM active_users_daily WHERE new_users + returning_users <> dau",
		"cohort size = new users":     "SELECT count(*) FROM retention_daily r JOIN active_users_daily a USING (dt, product) WHERE r.cohort_users <> a.new_users",
		"retained never above cohort": "SELECT count(*) FROM retention_daily WHERE retained_users > cohort_users",
	}
	for name, q := range checks {
		if n := queryOne[int64](t, ctx, db, q); n != 0 {
			t.Errorf("%s: %d rows break it", name, n)
		}
	}
	if n := queryOne[int64](t, ctx, db, "SELECT count(DISTINCT dt) FROM active_users_daily"); n < 59 {
		t.Errorf("active_users_daily covers %d days, want 60", n)
	}
	if n := queryOne[int64](t, ctx, db, "SELECT count(*) FROM retention_daily WHERE day_n = 28"); n == 0 {
		t.Error("no 28-day retention rows in 60 days")
	}
	_ = rollups.All()
}
