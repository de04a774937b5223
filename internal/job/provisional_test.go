package job

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/publish/publishtest"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// builtDaysOf returns the days with a current user_daily partition.
func builtDaysOf(t *testing.T, st store.Store) map[day.Day]bool {
	t.Helper()
	cur, err := currentUserDays(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	out := map[day.Day]bool{}
	for d := range cur {
		out[d] = true
	}
	return out
}

// partitionDays returns the days of table's partitions that have a current
// manifest.
func partitionDays(t *testing.T, st store.Store, table string) []day.Day {
	t.Helper()
	ctx := context.Background()
	parts, err := publish.Partitions(ctx, st, table)
	if err != nil {
		t.Fatal(err)
	}
	var out []day.Day
	for _, p := range parts {
		d, err := day.Parse(strings.TrimPrefix(p, "dt="))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := publish.Current(ctx, st, table, d); errors.Is(err, store.ErrNotExist) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// checkNothingDependsOnUnbuilt asserts that no active_users_daily or
// retention_daily row depends on a day never built, and that no
// restatement names a key column.
func checkNothingDependsOnUnbuilt(t *testing.T, st store.Store, when string) {
	t.Helper()
	built := builtDaysOf(t, st)
	start := day.Day(1 << 30)
	for d := range built {
		if m, err := publish.Current(context.Background(), st, "user_daily", d); err == nil && m.Rows > 0 {
			start = min(start, d)
		}
	}
	complete := func(from, to day.Day) bool {
		for d := max(from, start); d <= to; d++ {
			if !built[d] {
				return false
			}
		}
		return true
	}
	for _, d := range partitionDays(t, st, "active_users_daily") {
		if !built[d] {
			if rows := readRows[rollups.ActiveUsersDaily](t, st, "active_users_daily", d); len(rows) > 0 {
				t.Errorf("%s: active_users_daily has rows for %s, never built: %+v", when, d, rows)
			}
			continue
		}
		for _, r := range readRows[rollups.ActiveUsersDaily](t, st, "active_users_daily", d) {
			if r.WAU != nil && !complete(d-6, d) || r.MAU != nil && !complete(d-27, d) || r.Stickiness != nil && r.MAU == nil {
				t.Errorf("%s: active_users_daily %s %s counts a day never built: %+v", when, d, r.Product, r)
			}
		}
	}
	for _, d := range partitionDays(t, st, "retention_daily") {
		if !built[d] {
			if rows := readRows[rollups.RetentionDaily](t, st, "retention_daily", d); len(rows) > 0 {
				t.Errorf("%s: retention_daily has rows for %s, never built: %+v", when, d, rows)
			}
			continue
		}
		for _, r := range readRows[rollups.RetentionDaily](t, st, "retention_daily", d) {
			if !built[d+day.Day(r.DayN)] {
				t.Errorf("%s: retention_daily %s %s day %d: %s was never built", when, d, r.Product, r.DayN, d+day.Day(r.DayN))
			}
		}
	}
	for _, d := range partitionDays(t, st, rollups.RestatementsTable.Name) {
		for _, r := range readRows[rollups.Restatement](t, st, rollups.RestatementsTable.Name, d) {
			if r.ColumnName == "product" || r.ColumnName == "day_n" {
				t.Errorf("%s: restatement of a key column: %s %+v", when, d, r)
			}
		}
	}
}

// TestNeverBuiltDaysAreNotComputed: after a week is built with a gap, then
// ranges far in the future and the past (empty days), then the catch-up
// that fills the gap, no windowed row depends on a day never built, no
// restatement names a key column, and the tables equal a clean build of
// the same days. Windowed partitions of a day never built, as an earlier
// version left them, are withdrawn (republished empty).
func TestNeverBuiltDaysAreNotComputed(t *testing.T) {
	ctx := context.Background()
	d1 := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	st := genStore(t, gen.Config{From: d1, To: d1.AddDate(0, 0, 6), EventsPerDay: 300, ObjectsPerHour: 1, Users: 60, Seed: 24})
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	first, last := day.FromDate(2026, 11, 30), day.FromDate(2026, 12, 6)
	gap := day.FromDate(2026, 12, 3)
	run := func(from, to day.Day) *Summary {
		t.Helper()
		sum, err := Run(ctx, Config{Store: st, From: from, To: to, Rules: compact.DefaultRules(time.UTC), Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	legacy := day.FromDate(2028, 6, 1)
	zero := int64(0)
	publishtest.WriteRun(t, st, "active_users_daily", legacy, "01KB0000000000000000000001",
		[]rollups.ActiveUsersDaily{{Product: "shop", DAU: 0, WAU: &zero, MAU: &zero}}, true)
	publishtest.WriteRun(t, st, "retention_daily", legacy-7, "01KB0000000000000000000001",
		[]rollups.RetentionDaily{{Product: "shop", DayN: 7, CohortUsers: 3}}, true)
	sum := run(first, gap-1)
	if sum.Windowed.Withdrawn != 2 {
		t.Errorf("withdrew %d windowed partitions of days never built, want 2", sum.Windowed.Withdrawn)
	}
	run(gap+1, last)
	checkNothingDependsOnUnbuilt(t, st, "the week but 2026-12-03")
	// The days after the gap have a dau, but no wau: their week holds it.
	for _, r := range readRows[rollups.ActiveUsersDaily](t, st, "active_users_daily", gap+1) {
		if r.WAU != nil || r.MAU != nil {
			t.Errorf("%s %s: wau %v mau %v, want both not computed", gap+1, r.Product, r.WAU, r.MAU)
		}
	}
	if rows := readRows[rollups.ActiveUsersDaily](t, st, "active_users_daily", gap-1); len(rows) == 0 || rows[0].MAU == nil || rows[0].MAUWindowDays != 3 {
		t.Errorf("%s: want a mau over a 3-day window, got %+v", gap-1, rows)
	}

	future := run(day.FromDate(2030, 1, 1), day.FromDate(2030, 1, 2))
	if future.Windowed == nil || future.Windowed.ActiveDays > 2 || future.Windowed.Cohorts > 2 {
		t.Errorf("a range of 2 future days published %d active_users_daily and %d retention_daily partitions, want at most those 2 days",
			future.Windowed.ActiveDays, future.Windowed.Cohorts)
	}
	checkNothingDependsOnUnbuilt(t, st, "then 2030-01-01..02")
	run(day.FromDate(2020, 1, 1), day.FromDate(2020, 1, 2))
	checkNothingDependsOnUnbuilt(t, st, "then 2020-01-01..02")
	from, to := CatchUp(now, time.UTC, 7*24*time.Hour, false)
	sum = run(from, to)
	checkNothingDependsOnUnbuilt(t, st, "then the catch-up")
	for _, r := range sum.Windowed.Restatements {
		if r.ColumnName == "day_n" || r.ColumnName == "product" {
			t.Errorf("the catch-up restated a key column: %s", r)
		}
	}
	// The gap is filled: the day after it has a week again; the empty
	// days of 2030 have no row (nobody active in their built days).
	if rows := readRows[rollups.ActiveUsersDaily](t, st, "active_users_daily", gap+1); len(rows) == 0 || rows[0].WAU == nil {
		t.Errorf("%s after the gap is built: want a wau, got %+v", gap+1, rows)
	}
	if rows := readRows[rollups.ActiveUsersDaily](t, st, "active_users_daily", day.FromDate(2030, 1, 1)); len(rows) != 0 {
		t.Errorf("2030-01-01: want no rows, got %+v", rows)
	}

	// The same days built on a clean store, in three runs: the same tables.
	clean := store.NewMem()
	objs, err := st.List(ctx, "raw/")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		b, err := st.Get(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		if err := clean.Put(ctx, o.Key, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range [][2]day.Day{{day.FromDate(2020, 1, 1), day.FromDate(2020, 1, 2)}, {from, to}, {day.FromDate(2030, 1, 1), day.FromDate(2030, 1, 2)}} {
		if _, err := Run(ctx, Config{Store: clean, From: r[0], To: r[1], Rules: compact.DefaultRules(time.UTC), Now: func() time.Time { return now }}); err != nil {
			t.Fatal(err)
		}
	}
	for _, span := range [][2]day.Day{{day.FromDate(2019, 12, 20), day.FromDate(2020, 2, 5)}, {from - 30, to + 30}, {day.FromDate(2029, 12, 20), day.FromDate(2030, 2, 5)}} {
		if diff := tablesDiff(t, clean, st, span[0], span[1]); diff != "" {
			t.Errorf("%s..%s differs from a clean build (-clean +incremental):\n%s", span[0], span[1], diff)
		}
	}
}

// TestRestatementNeverNamesAKeyColumn: a retention row that appears (its
// return day was built) is matched by product and day_n; its numbers are
// restated from 0, never its day_n.
func TestRestatementNeverNamesAKeyColumn(t *testing.T) {
	d := day.FromDate(2026, 11, 30)
	old := []rollups.RetentionDaily{{Product: "admin", DayN: 1, CohortUsers: 10, RetainedUsers: 4, Retention: 0.4}}
	rows := append(slices.Clone(old), rollups.RetentionDaily{Product: "admin", DayN: 7, CohortUsers: 10, RetainedUsers: 2, Retention: 0.2})
	moved := diffRows("retention_daily", d, old, rows, func(x rollups.RetentionDaily) string { return fmt.Sprintf("%s day %d", x.Product, x.DayN) }, "product", "day_n")
	var got []string
	for _, m := range moved {
		got = append(got, m.String())
	}
	want := []string{
		"retention_daily 2026-11-30 admin day 7: cohort_users 0 -> 10",
		"retention_daily 2026-11-30 admin day 7: retained_users 0 -> 2",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("restatements (-want +got):\n%s", diff)
	}
	// A wau that becomes or stops being not computed is not a number
	// restated; one that changes is.
	n := func(v int64) *int64 { return &v }
	a := []rollups.ActiveUsersDaily{{Product: "shop", DAU: 3, WAU: n(5)}}
	b := []rollups.ActiveUsersDaily{{Product: "shop", DAU: 3, WAU: nil, MAU: n(9)}}
	c := []rollups.ActiveUsersDaily{{Product: "shop", DAU: 3, WAU: n(6), MAU: n(9)}}
	key := func(x rollups.ActiveUsersDaily) string { return x.Product }
	if m := diffRows("active_users_daily", d, a, b, key, "product"); len(m) != 0 {
		t.Errorf("a wau withdrawn and a mau computed: restated %v", m)
	}
	if m := diffRows("active_users_daily", d, a, c, key, "product"); len(m) != 1 || m[0].String() != "active_users_daily 2026-11-30 shop: wau 5 -> 6" {
		t.Errorf("a wau changed: restated %v", m)
	}
}

// TestProvisionalTurnsFinal: days built the morning after the last of them
// are provisional in every day table and windowed row; as each one's end +
// max_lateness + the Firehose bound passes, the next run over it rebuilds
// it as final, with no raw change, no restatement, and the windowed rows
// that count it follow.
func TestProvisionalTurnsFinal(t *testing.T) {
	ctx := context.Background()
	d1 := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	st := genStore(t, gen.Config{From: d1, To: d1.AddDate(0, 0, 2), EventsPerDay: 200, ObjectsPerHour: 1, Users: 40, Seed: 7})
	first, last := day.FromDate(2026, 11, 28), day.FromDate(2026, 11, 30)
	rules := compact.DefaultRules(time.UTC)
	run := func(now time.Time) *Summary {
		t.Helper()
		sum, err := Run(ctx, Config{Store: st, From: first, To: last, Rules: rules, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	// marks returns, per day, the provisional marks its tables carry
	// (one entry per table that has rows).
	marks := func(d day.Day) map[string]bool {
		out := map[string]bool{}
		q := readRows[rollups.DataQualityDaily](t, st, "data_quality_daily", d)
		out["data_quality_daily"] = q[0].Provisional
		for _, r := range readRows[rollups.EngagementDaily](t, st, "engagement_daily", d) {
			out["engagement_daily"] = r.Provisional
		}
		for _, r := range readRows[rollups.UserDaily](t, st, "user_daily", d) {
			out["user_daily"] = r.Provisional
		}
		for _, r := range readRows[rollups.SessionsDaily](t, st, "sessions_daily", d) {
			out["sessions_daily"] = r.Provisional
		}
		for _, r := range readRows[rollups.PathsDaily](t, st, "paths_daily", d) {
			out["paths_daily"] = r.Provisional
		}
		for _, r := range readRows[rollups.ActiveUsersDaily](t, st, "active_users_daily", d) {
			out["active_users_daily"] = r.Provisional
		}
		m, err := publish.Current(ctx, st, "events", d)
		if err != nil {
			t.Fatal(err)
		}
		out["events manifest"] = m.Config[statusKey] == "provisional"
		return out
	}
	same := func(v bool) map[string]bool {
		return map[string]bool{"data_quality_daily": v, "engagement_daily": v, "user_daily": v, "sessions_daily": v, "paths_daily": v,
			"active_users_daily": v, "events manifest": v}
	}

	// Built on the morning of 1 December: every day is provisional.
	morning := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	run(morning)
	for d := first; d <= last; d++ {
		if diff := cmp.Diff(same(true), marks(d)); diff != "" {
			t.Errorf("%s built the next morning (-want +got):\n%s", d, diff)
		}
	}
	ret := readRows[rollups.RetentionDaily](t, st, "retention_daily", first)
	if len(ret) == 0 {
		t.Fatal("no retention rows for the first cohort")
	}
	for _, r := range ret {
		if !r.Provisional {
			t.Errorf("retention %s day %d: want provisional", first, r.DayN)
		}
	}
	if sum := run(morning.Add(time.Hour)); len(built(sum)) != 0 {
		t.Errorf("an hour later, nothing turned final, yet days were rebuilt: %v", built(sum))
	}

	// Just after the first day turned final: it alone is rebuilt, as final,
	// without being restated; the second day is still provisional.
	at := rollups.FinalAt(first, time.UTC, rules.MaxLateness).Add(time.Minute)
	sum := run(at)
	if got := built(sum); !slices.Equal(got, []day.Day{first}) {
		t.Errorf("at %s rebuilt %v, want %s", at, got, first)
	}
	for _, ds := range sum.Days {
		if ds.Day == first && (ds.Why != "turned final (was provisional)" || ds.Quality.Restated || len(ds.Restatements) != 0) {
			t.Errorf("%s: why %q, restated %t %v", first, ds.Why, ds.Quality.Restated, ds.Restatements)
		}
	}
	if diff := cmp.Diff(same(false), marks(first)); diff != "" {
		t.Errorf("%s after it turned final (-want +got):\n%s", first, diff)
	}
	if diff := cmp.Diff(same(true), marks(first+1)); diff != "" {
		t.Errorf("%s not final yet (-want +got):\n%s", first+1, diff)
	}
	for _, r := range readRows[rollups.RetentionDaily](t, st, "retention_daily", first) {
		if !r.Provisional { // day 1 is the only one built, and provisional
			t.Errorf("retention %s day %d: final while %s is provisional", first, r.DayN, first+1)
		}
	}
	for _, r := range sum.Windowed.Restatements {
		t.Errorf("turning final restated %s", r)
	}

	// Once the last day is final, everything is.
	end := rollups.FinalAt(last, time.UTC, rules.MaxLateness)
	run(end)
	for d := first; d <= last; d++ {
		if diff := cmp.Diff(same(false), marks(d)); diff != "" {
			t.Errorf("%s after the last day turned final (-want +got):\n%s", d, diff)
		}
	}
	for _, r := range readRows[rollups.RetentionDaily](t, st, "retention_daily", first) {
		if r.Provisional {
			t.Errorf("retention %s day %d: still provisional", first, r.DayN)
		}
	}
	if sum := run(end.Add(time.Hour)); len(built(sum)) != 0 || sum.Windowed.ActiveDays+sum.Windowed.Cohorts != 0 {
		t.Errorf("all final, yet a run rebuilt %v and %+v", built(sum), sum.Windowed)
	}
	// The nightly run after the day turned final reaches it: a catch-up at
	// 01:30 on that day starts on it.
	nightly := rollups.FinalAt(last, time.UTC, rules.MaxLateness).Truncate(24 * time.Hour).Add(90 * time.Minute)
	if from, _ := CatchUp(nightly, time.UTC, rules.MaxLateness, false); from > last {
		t.Errorf("the catch-up at %s starts on %s, after %s, which turned final that night", nightly, from, last)
	}
}

// built returns the days a run built.
func built(sum *Summary) []day.Day {
	var out []day.Day
	for _, d := range sum.Days {
		if !d.Skipped {
			out = append(out, d.Day)
		}
	}
	slices.Sort(out)
	return out
}
