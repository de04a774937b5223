package rollups

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/duckref"
)

// refLifecycle runs lifecycle_daily.sql; every day of dts is a key.
func refLifecycle(t *testing.T, db *duckref.DB, dts []day.Day) map[day.Day][]LifecycleDaily {
	t.Helper()
	out := map[day.Day][]LifecycleDaily{}
	for _, d := range dts {
		out[d] = []LifecycleDaily{}
	}
	for _, r := range refQuery(t, db, "lifecycle_daily") {
		d := mustDay(t, r["dt"])
		out[d] = append(out[d], LifecycleDaily{Product: r["product"].(string), NewUsers: r["new_users"].(int64),
			ReturningUsers: nullable[int64](r["returning_users"]), ResurrectingUsers: nullable[int64](r["resurrecting_users"]),
			DormantUsers: nullable[int64](r["dormant_users"]), Provisional: r["provisional"].(bool)})
	}
	return out
}

// refStickiness runs stickiness_daily.sql; every day of dts is a key.
func refStickiness(t *testing.T, db *duckref.DB, dts []day.Day) map[day.Day][]StickinessDaily {
	t.Helper()
	out := map[day.Day][]StickinessDaily{}
	for _, d := range dts {
		out[d] = []StickinessDaily{}
	}
	for _, r := range refQuery(t, db, "stickiness_daily") {
		d := mustDay(t, r["dt"])
		out[d] = append(out[d], StickinessDaily{Product: r["product"].(string), WindowDays: r["window_days"].(int64),
			DaysActive: r["days_active"].(int64), People: r["people"].(int64), Provisional: r["provisional"].(bool)})
	}
	return out
}

// TestLifecycleStickinessAgainstDuckDB compares every row of
// lifecycle_daily and stickiness_daily, computed in Go, with the reference
// SQL run by DuckDB on the user_daily rows of TestWindowedAgainstDuckDB
// (gaps, empty days, a product silent for weeks, repeated rows), and checks
// them against active_users_daily: the lifecycle's first three counts sum
// to dau, its dormant people are the day before's dau minus its returning
// people, and each stickiness window sums to wau or mau.
func TestLifecycleStickinessAgainstDuckDB(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			rows := synthUserDaily(seed)
			dts := append(daysFrom(d0-30, d0+110), d0+200)
			built := builtDays(rows, d0-5, d0+85, []day.Day{d0 + 50, d0 + 51, d0 + 80}, []day.Day{d0 + 20, d0 + 83, d0 + 84, d0 + 85})
			built.Days[d0+200] = false
			db := openDuck(t)
			loadUserDaily(t, db, rows, dts, built)

			life := ComputeLifecycle(dts, rows, built)
			if diff := cmp.Diff(refLifecycle(t, db, dts), life, approx); diff != "" {
				t.Errorf("lifecycle_daily: Go differs from the reference SQL (-sql +go):\n%s", diff)
			}
			stick := ComputeStickiness(dts, rows, built)
			if diff := cmp.Diff(refStickiness(t, db, dts), stick, approx); diff != "" {
				t.Errorf("stickiness_daily: Go differs from the reference SQL (-sql +go):\n%s", diff)
			}
			// The job feeds only the span it reads back, and day by day
			// equals all at once.
			from, to, _ := LifecycleSpan(dts)
			if diff := cmp.Diff(life, ComputeLifecycle(dts, within(rows, from, to), built), approx); diff != "" {
				t.Errorf("lifecycle_daily from its span only differs (-all +span):\n%s", diff)
			}
			from, to, _ = ActiveUsersSpan(dts)
			if diff := cmp.Diff(stick, ComputeStickiness(dts, within(rows, from, to), built), approx); diff != "" {
				t.Errorf("stickiness_daily from its span only differs (-all +span):\n%s", diff)
			}
			for _, d := range []day.Day{d0, d0 + 42, d0 + 52, d0 + 81, d0 + 90} {
				if diff := cmp.Diff(life[d], ComputeLifecycle([]day.Day{d}, rows, built)[d], approx); diff != "" {
					t.Errorf("lifecycle_daily of %s alone differs:\n%s", d, diff)
				}
				if diff := cmp.Diff(stick[d], ComputeStickiness([]day.Day{d}, rows, built)[d], approx); diff != "" {
					t.Errorf("stickiness_daily of %s alone differs:\n%s", d, diff)
				}
			}
			checkLifecycle(t, ComputeActiveUsers(dts, rows, built), life, stick, built)

			// The data must exercise what it claims to.
			nulls, dormantOnly := 0, 0
			for _, rs := range life {
				for _, r := range rs {
					if r.ReturningUsers == nil {
						nulls++
					} else if r.NewUsers+*r.ReturningUsers+*r.ResurrectingUsers == 0 && *r.DormantUsers > 0 {
						dormantOnly++
					}
				}
			}
			if nulls == 0 || dormantOnly == 0 {
				t.Errorf("lifecycle: %d rows after a gap (null), %d rows of dormant people only; want both", nulls, dormantOnly)
			}
			if r := life[d0]; len(r) == 0 || *r[0].ResurrectingUsers != 0 || *r[0].ReturningUsers != 0 || *r[0].DormantUsers != 0 {
				t.Errorf("first day of data: want everyone new, got %+v", r)
			}
			for _, d := range []day.Day{d0 + 50, d0 + 51, d0 + 80, d0 + 86, d0 + 99} {
				if len(life[d]) != 0 || len(stick[d]) != 0 {
					t.Errorf("day %s is not built, yet has rows: %+v %+v", d, life[d], stick[d])
				}
			}
		})
	}
}

// checkLifecycle asserts what lifecycle_daily and stickiness_daily owe to
// active_users_daily of the same days.
func checkLifecycle(t *testing.T, active map[day.Day][]ActiveUsersDaily, life map[day.Day][]LifecycleDaily, stick map[day.Day][]StickinessDaily, b Built) {
	t.Helper()
	find := func(d day.Day, product string) (ActiveUsersDaily, bool) {
		i := slices.IndexFunc(active[d], func(x ActiveUsersDaily) bool { return x.Product == product })
		if i < 0 {
			return ActiveUsersDaily{}, false
		}
		return active[d][i], true
	}
	for d, rs := range life {
		for _, r := range rs {
			a, ok := find(d, r.Product)
			if !ok || a.NewUsers != r.NewUsers {
				t.Errorf("%s %s: lifecycle %+v, active users %+v", d, r.Product, r, a)
				continue
			}
			if r.ReturningUsers == nil {
				if b.built(d-1) || d-1 < b.Start || r.ResurrectingUsers != nil || r.DormantUsers != nil {
					t.Errorf("%s %s: null with the day before known: %+v", d, r.Product, r)
				}
				continue
			}
			if r.NewUsers+*r.ReturningUsers+*r.ResurrectingUsers != a.DAU {
				t.Errorf("%s %s: new + returning + resurrecting = %d, dau %d", d, r.Product, r.NewUsers+*r.ReturningUsers+*r.ResurrectingUsers, a.DAU)
			}
			prev, _ := find(d-1, r.Product)
			if *r.DormantUsers != prev.DAU-*r.ReturningUsers {
				t.Errorf("%s %s: dormant %d, yesterday's dau %d − returning %d", d, r.Product, *r.DormantUsers, prev.DAU, *r.ReturningUsers)
			}
		}
	}
	sums := map[string]int64{}
	for d, rs := range stick {
		for _, r := range rs {
			sums[fmt.Sprintf("%s %s %d", d, r.Product, r.WindowDays)] += r.People
		}
	}
	for d, rs := range active {
		for _, a := range rs {
			for _, w := range []struct {
				n int
				v *int64
			}{{WAUDays, a.WAU}, {MAUDays, a.MAU}} {
				want := int64(0)
				if w.v != nil {
					want = *w.v
				}
				if got := sums[fmt.Sprintf("%s %s %d", d, a.Product, w.n)]; got != want {
					t.Errorf("%s %s: stickiness over %d days sums to %d, want %d", d, a.Product, w.n, got, want)
				}
			}
		}
	}
}

// TestLifecycleStickinessByHand checks a small case worked out by hand, in
// Go and in the reference SQL: a person resurrecting after a gap, dormant
// the day after, a day before that was never built.
func TestLifecycleStickinessByHand(t *testing.T) {
	D := day.FromDate(2026, 3, 1)
	var rows []UserDay
	act := func(product, user string, isNewOn int, days ...int) {
		for _, d := range days {
			rows = append(rows, UserDay{Day: D + day.Day(d), Product: product, UserKey: user, IsNew: d == isNewOn})
		}
	}
	act("app", "alice", 0, 0, 1, 2, 6) // new on 0, returning 1 and 2, dormant 3, resurrecting 6
	act("app", "bob", 1, 1, 6)         // new on 1, dormant 2, resurrecting 6
	act("app", "carol", -1, 2, 3)      // known before: resurrecting 2, returning 3, dormant 4
	act("app", "dave", 10, 10, 11)     // after the gap at 9: new on 10, returning 11

	// Every day from D-1 to D+17 is built but D+9; D+6 is provisional.
	built := builtDays(rows, D-1, D+17, []day.Day{D + 9}, []day.Day{D + 6})
	n := func(v int64) *int64 { return &v }
	l := func(p string, nu, ret, res, dor int64, prov bool) LifecycleDaily {
		return LifecycleDaily{Product: p, NewUsers: nu, ReturningUsers: n(ret), ResurrectingUsers: n(res), DormantUsers: n(dor), Provisional: prov}
	}
	wantLife := map[day.Day][]LifecycleDaily{
		D - 1: {},
		D + 0: {l("app", 1, 0, 0, 0, false)},
		D + 1: {l("app", 1, 1, 0, 0, false)},
		D + 2: {l("app", 0, 1, 1, 1, false)},
		D + 3: {l("app", 0, 1, 0, 1, false)},
		D + 4: {l("app", 0, 0, 0, 1, false)},
		D + 5: {},
		D + 6: {l("app", 0, 0, 2, 0, true)},
		D + 7: {l("app", 0, 0, 0, 2, true)},
		D + 9: {},
		// The day before, D+9, was never built: only new is known.
		D + 10: {{Product: "app", NewUsers: 1}},
		D + 11: {l("app", 0, 1, 0, 0, false)},
		D + 12: {l("app", 0, 0, 0, 1, false)},
	}
	s := func(p string, w int64, prov bool, people ...int64) []StickinessDaily {
		var out []StickinessDaily
		for k := int64(1); k <= w; k++ {
			var x int64
			if int(k) <= len(people) {
				x = people[k-1]
			}
			out = append(out, StickinessDaily{Product: p, WindowDays: w, DaysActive: k, People: x, Provisional: prov})
		}
		return out
	}
	wantStick := map[day.Day][]StickinessDaily{
		D - 1: {},
		// alice 3 days (0, 1, 2), bob 1, carol 1: the window starts at D.
		D + 2: append(s("app", 7, false, 2, 0, 1), s("app", 28, false, 2, 0, 1)...),
		// 0..6: alice 4, bob 2, carol 2.
		D + 6: append(s("app", 7, true, 0, 2, 0, 1), s("app", 28, true, 0, 2, 0, 1)...),
		// 1..7: alice 3 (1, 2, 6), bob 2, carol 2.
		D + 7: append(s("app", 7, true, 0, 2, 1), s("app", 28, true, 0, 2, 0, 1)...),
		D + 9: {},
		// D+9 is in both windows, never built: not computed.
		D + 10: {},
		// 9 was not built: on 16 it has left the week, not the month;
		// dave was active on 10 and 11.
		D + 16: s("app", 7, false, 0, 1),
	}
	for _, tc := range []struct{ name string }{{"go"}, {"sql"}} {
		t.Run(tc.name, func(t *testing.T) {
			lifeDays := slices.Sorted(func(yield func(day.Day) bool) {
				for d := range wantLife {
					if !yield(d) {
						return
					}
				}
			})
			stickDays := slices.Sorted(func(yield func(day.Day) bool) {
				for d := range wantStick {
					if !yield(d) {
						return
					}
				}
			})
			var gotLife map[day.Day][]LifecycleDaily
			var gotStick map[day.Day][]StickinessDaily
			if tc.name == "go" {
				gotLife, gotStick = ComputeLifecycle(lifeDays, rows, built), ComputeStickiness(stickDays, rows, built)
			} else {
				db := openDuck(t)
				loadUserDaily(t, db, rows, lifeDays, built)
				gotLife = refLifecycle(t, db, lifeDays)
				db2 := openDuck(t)
				loadUserDaily(t, db2, rows, stickDays, built)
				gotStick = refStickiness(t, db2, stickDays)
			}
			if diff := cmp.Diff(wantLife, gotLife, approx); diff != "" {
				t.Errorf("lifecycle_daily (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantStick, gotStick, approx); diff != "" {
				t.Errorf("stickiness_daily (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLifecycleSpans checks that the span and the affected days agree.
func TestLifecycleSpans(t *testing.T) {
	for o := d0; o <= d0+5; o++ {
		from, to, _ := LifecycleSpan([]day.Day{o})
		for d := o - 5; d <= o+5; d++ {
			af, at := LifecycleAffected(d)
			if read, aff := d >= from && d <= to, o >= af && o <= at; read != aff {
				t.Errorf("output %s, input %s: read %v, affected %v", o, d, read, aff)
			}
		}
	}
	if _, _, ok := LifecycleSpan(nil); ok {
		t.Error("span of no days")
	}
	if got := ComputeLifecycle(nil, nil, Built{}); len(got) != 0 {
		t.Errorf("no days: %v", got)
	}
	if got := ComputeStickiness(nil, nil, Built{}); len(got) != 0 {
		t.Errorf("no days: %v", got)
	}
}

// BenchmarkComputeLifecycle and BenchmarkComputeStickiness run on the rows
// of BenchmarkComputeActiveUsers (250k people over one day's 28-day
// window), for that day.
func BenchmarkComputeLifecycle(b *testing.B) {
	rows, dt := benchRows()
	b.ResetTimer()
	for b.Loop() {
		ComputeLifecycle([]day.Day{dt}, rows, builtDays(nil, dt-27, dt, nil, nil))
	}
}

func BenchmarkComputeStickiness(b *testing.B) {
	rows, dt := benchRows()
	b.ResetTimer()
	for b.Loop() {
		ComputeStickiness([]day.Day{dt}, rows, builtDays(nil, dt-27, dt, nil, nil))
	}
}
