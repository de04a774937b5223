package rollups

import (
	"context"
	"fmt"
	"maps"
	"math/rand"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/duckref"
)

var approx = cmp.Options{cmpopts.EquateApprox(1e-9, 0), cmpopts.EquateEmpty()}

// loadUserDaily creates user_daily in db from rows (the columns the windowed
// tables do not read get plausible values), days(dt) from dts and
// built(dt, provisional) from b.Days (b.Start is for Go: the SQL finds the
// start of data itself).
func loadUserDaily(t *testing.T, db *duckref.DB, rows []UserDay, dts []day.Day, b Built) {
	t.Helper()
	ctx := context.Background()
	exec := func(q string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%v\n%.2000s", err, q)
		}
	}
	exec(`CREATE TABLE user_daily (dt DATE, product VARCHAR, user_key VARCHAR, platform VARCHAR, events BIGINT,
		sessions BIGINT, first_event_at TIMESTAMP, last_event_at TIMESTAMP, is_new BOOLEAN)`)
	for i := 0; i < len(rows); i += 1000 {
		var b strings.Builder
		b.WriteString("INSERT INTO user_daily VALUES ")
		for j, r := range rows[i:min(i+1000, len(rows))] {
			if j > 0 {
				b.WriteString(",\n")
			}
			ms := r.Day.UTC().UnixMilli() + int64(i+j)%86_000_000
			fmt.Fprintf(&b, "(DATE '%s', '%s', '%s', 'web', %d, 1, epoch_ms(%d), epoch_ms(%d), %t)",
				r.Day, r.Product, r.UserKey, 1+(i+j)%5, ms, ms+1000, r.IsNew)
		}
		exec(b.String())
	}
	// The users table the job derives from every user_daily partition: here
	// a person's first day is the day of their is_new row (people never
	// is_new were first seen long before).
	exec(`CREATE TABLE users AS SELECT coalesce(nullif(product, ''), '(none)') AS product, user_key,
		coalesce(min(dt) FILTER (WHERE is_new), DATE '1970-01-01') AS first_seen_dt FROM user_daily GROUP BY ALL`)
	exec("CREATE TABLE days (dt DATE)")
	if len(dts) > 0 {
		var vals []string
		for _, d := range dts {
			vals = append(vals, fmt.Sprintf("(DATE '%s')", d))
		}
		exec("INSERT INTO days VALUES " + strings.Join(vals, ", "))
	}
	setBuilt(t, db, b)
}

// setBuilt (re)creates built(dt, provisional) in db from b.Days.
func setBuilt(t *testing.T, db *duckref.DB, b Built) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE OR REPLACE TABLE built (dt DATE, provisional BOOLEAN)"); err != nil {
		t.Fatal(err)
	}
	if len(b.Days) == 0 {
		return
	}
	var vals []string
	for _, d := range slices.Sorted(maps.Keys(b.Days)) {
		vals = append(vals, fmt.Sprintf("(DATE '%s', %t)", d, b.Days[d]))
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO built VALUES "+strings.Join(vals, ", ")); err != nil {
		t.Fatal(err)
	}
}

// builtDays returns a Built of the days from..to but gaps, none of them
// provisional but those of prov, with the start of data found from rows:
// the first built day with a row.
func builtDays(rows []UserDay, from, to day.Day, gaps, prov []day.Day) Built {
	b := Built{Days: map[day.Day]bool{}}
	for d := from; d <= to; d++ {
		if !slices.Contains(gaps, d) {
			b.Days[d] = slices.Contains(prov, d)
		}
	}
	first := true
	for _, r := range rows {
		if _, ok := b.Days[r.Day]; ok && (first || r.Day < b.Start) {
			b.Start, first = r.Day, false
		}
	}
	return b
}

func openDuck(t *testing.T) *duckref.DB {
	t.Helper()
	db, err := duckref.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func refQuery(t *testing.T, db *duckref.DB, name string) []map[string]any {
	t.Helper()
	rows, err := db.Query(context.Background(), RefSQL(name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return rows
}

func mustDay(t *testing.T, v any) day.Day {
	t.Helper()
	d, err := day.Parse(v.(string))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// refActiveUsers runs active_users_daily.sql; every day of dts is a key.
func refActiveUsers(t *testing.T, db *duckref.DB, dts []day.Day) map[day.Day][]ActiveUsersDaily {
	t.Helper()
	out := map[day.Day][]ActiveUsersDaily{}
	for _, d := range dts {
		out[d] = []ActiveUsersDaily{}
	}
	for _, r := range refQuery(t, db, "active_users_daily") {
		d := mustDay(t, r["dt"])
		out[d] = append(out[d], ActiveUsersDaily{Product: r["product"].(string), DAU: r["dau"].(int64),
			WAU: nullable[int64](r["wau"]), MAU: nullable[int64](r["mau"]), NewUsers: r["new_users"].(int64),
			ReturningUsers: r["returning_users"].(int64), Stickiness: nullable[float64](r["stickiness"]),
			MAUWindowDays: r["mau_window_days"].(int64), Provisional: r["provisional"].(bool)})
	}
	return out
}

// refRetention runs retention_daily.sql; every cohort day is a key.
func refRetention(t *testing.T, db *duckref.DB, cohorts []day.Day) map[day.Day][]RetentionDaily {
	t.Helper()
	out := map[day.Day][]RetentionDaily{}
	for _, d := range cohorts {
		out[d] = []RetentionDaily{}
	}
	for _, r := range refQuery(t, db, "retention_daily") {
		d := mustDay(t, r["dt"])
		out[d] = append(out[d], RetentionDaily{Product: r["product"].(string), DayN: r["day_n"].(int64),
			CohortUsers: r["cohort_users"].(int64), RetainedUsers: r["retained_users"].(int64),
			Retention: r["retention"].(float64), Provisional: r["provisional"].(bool)})
	}
	return out
}

// nullable returns nil for a NULL, else a pointer to the value.
func nullable[T any](v any) *T {
	if v == nil {
		return nil
	}
	x := v.(T)
	return &x
}

var d0 = day.FromDate(2026, 1, 1)

// synthUserDaily builds 100 days (d0 .. d0+99) of user_daily rows:
//   - shop: 300 users, each active on a random share of days, a fifth of
//     them already known before d0 (never is_new);
//   - blog: 60 sparse users, some anonymous;
//   - silent: active on days 0..25 only, then silent for 44 days, then back
//     on days 70..75 with old and new users;
//   - (none): a few users, some of whose rows say "" instead of "(none)";
//   - nobody at all on days 40..44;
//   - a few repeated rows (one with is_new differing).
//
// is_new is true on each user's first day ever, as the users state would
// have it.
func synthUserDaily(seed int64) []UserDay {
	rng := rand.New(rand.NewSource(seed))
	var rows []UserDay
	add := func(product, user string, known bool, active func(i int) bool) {
		first := !known
		for i := 0; i < 100; i++ {
			if i >= 40 && i <= 44 || !active(i) {
				continue
			}
			rows = append(rows, UserDay{Day: d0 + day.Day(i), Product: product, UserKey: user, IsNew: first})
			first = false
		}
	}
	for u := 0; u < 300; u++ {
		p := 0.02 + 0.6*rng.Float64()*rng.Float64()
		start := rng.Intn(100) // some users only join late, some right at d0
		if u < 40 {
			start = 0
		}
		add("shop", fmt.Sprintf("u%03d", u), u%5 == 0, func(i int) bool { return i >= start && rng.Float64() < p })
	}
	for u := 0; u < 60; u++ {
		key := fmt.Sprintf("b%02d", u)
		if u%3 == 0 {
			key = fmt.Sprintf("anon:dev-%02d", u)
		}
		add("blog", key, false, func(i int) bool { return rng.Float64() < 0.04 })
	}
	for u := 0; u < 30; u++ {
		add("silent", fmt.Sprintf("s%02d", u), u%4 == 0, func(i int) bool {
			return i <= 25 && rng.Float64() < 0.3 || u%2 == 0 && i >= 70 && i <= 75 && rng.Float64() < 0.5
		})
	}
	for u := 0; u < 8; u++ {
		add("(none)", fmt.Sprintf("n%d", u), false, func(i int) bool { return rng.Float64() < 0.2 })
	}
	for i := range rows {
		if rows[i].Product == "(none)" && i%2 == 0 {
			rows[i].Product = ""
		}
	}
	// Repeats: the same person, product and day twice.
	for _, i := range []int{3, 500, 1234, 4000} {
		rows = append(rows, rows[i%len(rows)])
	}
	for i := range rows {
		if rows[i].IsNew && rows[i].Product == "shop" {
			dup := rows[i]
			dup.IsNew = false
			rows = append(rows, dup)
			break
		}
	}
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	return rows
}

func daysFrom(from, to day.Day) []day.Day { return day.Range(from, to) }

// within returns the rows whose day is in from..to.
func within(rows []UserDay, from, to day.Day) []UserDay {
	var out []UserDay
	for _, r := range rows {
		if r.Day >= from && r.Day <= to {
			out = append(out, r)
		}
	}
	return out
}

// TestWindowedAgainstDuckDB compares every row of both windowed tables,
// computed in Go, with the reference SQL run by DuckDB on the same
// user_daily rows and built days.
func TestWindowedAgainstDuckDB(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			rows := synthUserDaily(seed)
			// From before the data (partial and empty windows) to past it,
			// including the empty days 40..44, the silent product's absence,
			// and one day long after the data (no rows at all).
			dts := append(daysFrom(d0-30, d0+110), d0+200)
			cohorts := daysFrom(d0-3, d0+99)
			// Built: five empty days before the data, then through day 85
			// but for the gaps 50, 51 and 80, and day 200; days 86..99 have
			// rows but are not built. Days 20 and 83..85 are provisional.
			built := builtDays(rows, d0-5, d0+85, []day.Day{d0 + 50, d0 + 51, d0 + 80}, []day.Day{d0 + 20, d0 + 83, d0 + 84, d0 + 85})
			built.Days[d0+200] = false
			if built.Start != d0 {
				t.Fatalf("start of data %s, want %s", built.Start, d0)
			}
			asOf := d0 + 200

			db := openDuck(t)
			loadUserDaily(t, db, rows, dts, built)

			gotActive := ComputeActiveUsers(dts, rows, built)
			if diff := cmp.Diff(refActiveUsers(t, db, dts), gotActive, approx); diff != "" {
				t.Errorf("active_users_daily: Go differs from the reference SQL (-sql +go):\n%s", diff)
			}
			gotRet := ComputeRetention(cohorts, built, rows)
			if diff := cmp.Diff(refRetention(t, db, cohorts), gotRet, approx); diff != "" {
				t.Errorf("retention_daily: Go differs from the reference SQL (-sql +go):\n%s", diff)
			}

			// The job feeds only the span it reads back: same result.
			from, to, _ := ActiveUsersSpan(dts)
			if diff := cmp.Diff(gotActive, ComputeActiveUsers(dts, within(rows, from, to), built), approx); diff != "" {
				t.Errorf("active_users_daily from its span only differs (-all +span):\n%s", diff)
			}
			from, to, _ = RetentionSpan(cohorts, asOf)
			if diff := cmp.Diff(gotRet, ComputeRetention(cohorts, built, within(rows, from, to)), approx); diff != "" {
				t.Errorf("retention_daily from its span only differs (-all +span):\n%s", diff)
			}
			// Day by day equals all at once.
			for _, d := range []day.Day{d0 + 10, d0 + 42, d0 + 52, d0 + 90} {
				one := ComputeActiveUsers([]day.Day{d}, rows, built)
				if diff := cmp.Diff(gotActive[d], one[d], approx); diff != "" {
					t.Errorf("active_users_daily of %s alone differs:\n%s", d, diff)
				}
			}

			checkInvariants(t, gotActive, gotRet)
			na, nr := 0, 0
			for _, d := range dts {
				na += len(gotActive[d])
			}
			for _, c := range cohorts {
				nr += len(gotRet[c])
			}
			t.Logf("%d user_daily rows; %d active_users_daily and %d retention_daily rows compared", len(rows), na, nr)
			// The data must exercise what it claims to.
			if n := len(gotActive[d0+42]); n == 0 || gotActive[d0+42][0].DAU != 0 || gotActive[d0+42][0].MAU == nil {
				t.Errorf("built empty day %s: want rows with dau 0 and a mau, got %+v", d0+42, gotActive[d0+42])
			}
			for _, d := range []day.Day{d0 + 60, d0 - 30, d0 + 200} {
				for _, r := range gotActive[d] {
					if r.Product == "silent" || d != d0+60 {
						t.Errorf("%s: unexpected row %+v", d, r)
					}
				}
			}
			// No row for a day that is not built, and no number that
			// depends on one.
			for _, d := range []day.Day{d0 + 50, d0 + 51, d0 + 80, d0 + 86, d0 + 99} {
				if len(gotActive[d]) != 0 || len(gotRet[d]) != 0 {
					t.Errorf("day %s is not built, yet has rows: %+v %+v", d, gotActive[d], gotRet[d])
				}
			}
			for d, rs := range gotActive {
				for _, r := range rs {
					wauKnown, mauKnown := built.complete(d-6, d), built.complete(d-27, d)
					if (r.WAU != nil) != wauKnown || (r.MAU != nil) != mauKnown || (r.Stickiness != nil) != mauKnown {
						t.Errorf("%s %s: wau %v mau %v with the week known %t, the month %t", d, r.Product, r.WAU, r.MAU, wauKnown, mauKnown)
					}
				}
			}
			if r := gotActive[d0+52]; len(r) == 0 || r[0].WAU != nil || r[0].MAU != nil {
				t.Errorf("day %s, two days after a gap: want wau and mau null, got %+v", d0+52, r)
			}
			if r := gotActive[d0+60]; len(r) == 0 || r[0].WAU == nil || r[0].MAU != nil {
				t.Errorf("day %s, a full week after a gap: want a wau and mau null, got %+v", d0+60, r)
			}
			if r := gotActive[d0]; len(r) == 0 || r[0].MAUWindowDays != 1 || r[0].NewUsers != r[0].DAU || r[0].MAU == nil {
				t.Errorf("first day of data: want window 1, everyone new and a mau, got %+v", r)
			}
			if r := gotActive[d0+27]; len(r) == 0 || r[0].MAUWindowDays != 28 {
				t.Errorf("day 27: want a full window, got %+v", r)
			}
			for d, want := range map[day.Day]bool{d0 + 19: false, d0 + 20: true, d0 + 47: true, d0 + 48: false, d0 + 83: true} {
				for _, r := range gotActive[d] {
					if r.Provisional != want {
						t.Errorf("%s %s: provisional %t, want %t", d, r.Product, r.Provisional, want)
					}
				}
			}
			for c, rs := range gotRet {
				for _, r := range rs {
					if rd := c + day.Day(r.DayN); !built.built(rd) || r.Provisional != (built.Days[c] || built.Days[rd]) {
						t.Errorf("cohort %s day %d: provisional %t, return day built %t", c, r.DayN, r.Provisional, built.built(rd))
					}
				}
			}
			if len(gotRet[d0+84]) == 0 || len(gotRet[d0+85]) != 0 || len(gotRet[d0+99]) != 0 {
				t.Errorf("retention cut at the last built day: %s has %d rows, %s %d, %s %d", d0+84, len(gotRet[d0+84]),
					d0+85, len(gotRet[d0+85]), d0+99, len(gotRet[d0+99]))
			}
			// Cohort 43 (empty) and cohort 73: 73 + 7 = 80 is a gap, so
			// day 7 is missing while 1 and later ones are not.
			for _, r := range gotRet[d0+73] {
				if r.DayN == 7 {
					t.Errorf("cohort %s has day 7 although %s was never built: %+v", d0+73, d0+80, r)
				}
			}
		})
	}
}

// checkInvariants asserts dau ≤ wau ≤ mau, returning + new = dau,
// 0 ≤ stickiness ≤ 1, and that each cohort's size is that day's new users.
func checkInvariants(t *testing.T, active map[day.Day][]ActiveUsersDaily, ret map[day.Day][]RetentionDaily) {
	t.Helper()
	for d, rows := range active {
		for _, r := range rows {
			if (r.WAU != nil && r.DAU > *r.WAU) || (r.WAU != nil && r.MAU != nil && *r.WAU > *r.MAU) || (r.MAU != nil && *r.MAU <= 0) ||
				r.DAU < 0 || r.NewUsers+r.ReturningUsers != r.DAU || r.NewUsers < 0 ||
				(r.Stickiness != nil && (*r.Stickiness < 0 || *r.Stickiness > 1)) || r.MAUWindowDays < 1 || r.MAUWindowDays > MAUDays {
				t.Errorf("%s: invariant broken: %+v", d, r)
			}
		}
	}
	for c, rows := range ret {
		for _, r := range rows {
			if r.RetainedUsers < 0 || r.RetainedUsers > r.CohortUsers {
				t.Errorf("%s: invariant broken: %+v", c, r)
			}
			a, ok := active[c]
			if !ok {
				continue
			}
			i := slices.IndexFunc(a, func(x ActiveUsersDaily) bool { return x.Product == r.Product })
			if i < 0 || a[i].NewUsers != r.CohortUsers {
				t.Errorf("%s %s: cohort_users %d is not that day's new_users", c, r.Product, r.CohortUsers)
			}
		}
	}
}

// TestWindowedByHand checks a small case worked out by hand, in Go and in
// the reference SQL.
func TestWindowedByHand(t *testing.T) {
	D := day.FromDate(2026, 3, 1)
	var rows []UserDay
	act := func(product, user string, isNewOn int, days ...int) {
		for _, d := range days {
			rows = append(rows, UserDay{Day: D + day.Day(d), Product: product, UserKey: user, IsNew: d == isNewOn})
		}
	}
	act("app", "alice", 0, 0, 1, 7)      // new on day 0
	act("app", "bob", -1, 3, 20)         // known before day 0
	act("app", "carol", 1, 1, 2, 15, 29) // new on day 1
	act("web", "alice", 5, 5)            // alice is new again, in another product

	// Every day from D-1 to D+57 is built but D+40; D+29 is provisional.
	built := builtDays(rows, D-1, D+57, []day.Day{D + 40}, []day.Day{D + 29})
	a := func(p string, dau, wau, mau, nu int64, stick float64, window int64, prov bool) ActiveUsersDaily {
		return ActiveUsersDaily{Product: p, DAU: dau, WAU: &wau, MAU: &mau, NewUsers: nu, ReturningUsers: dau - nu, Stickiness: &stick,
			MAUWindowDays: window, Provisional: prov}
	}
	// unknownMAU is a with mau and stickiness not computed (D+40 is in
	// the month).
	unknownMAU := func(r ActiveUsersDaily) ActiveUsersDaily { r.MAU, r.Stickiness = nil, nil; return r }
	wantActive := map[day.Day][]ActiveUsersDaily{
		D - 1: {},                                  // built, before the data
		D + 0: {a("app", 1, 1, 1, 1, 1, 1, false)}, // the first day of data: everyone is new
		D + 1: {a("app", 2, 2, 2, 1, 1, 2, false)},
		D + 2: {a("app", 1, 2, 2, 0, 0.5, 3, false)},
		D + 7: {a("app", 1, 3, 3, 0, 1.0/3, 8, false), a("web", 0, 1, 1, 0, 0, 8, false)},
		D + 8: {a("app", 0, 3, 3, 0, 0, 9, false), a("web", 0, 1, 1, 0, 0, 9, false)},
		// window 2..29 holds carol (2, 15, 29), bob (3, 20), alice (7) in
		// app; web's day 5 too. The week 23..29 only carol.
		D + 29: {a("app", 1, 1, 3, 0, 1.0/3, 28, true), a("web", 0, 0, 1, 0, 0, 28, true)},
		// 8..35: carol, bob; web's day 5 is out; D+29 is in the month.
		D + 35: {a("app", 0, 1, 2, 0, 0, 28, true)},
		D + 40: {}, // never built
		// 21..48: carol's day 29 (provisional); D+40 is in the month, not in the week.
		D + 48: {unknownMAU(a("app", 0, 0, 1, 0, 0, 28, true))},
		D + 57: {}, // 30..57: nobody
	}
	var dts []day.Day
	for d := range wantActive {
		dts = append(dts, d)
	}
	slices.Sort(dts)

	// For retention, the days are built up to D+29 but D+12.
	retBuilt := builtDays(rows, D-1, D+29, []day.Day{D + 12}, []day.Day{D + 29})
	r := func(p string, n, size, kept int64, prov bool) RetentionDaily {
		return RetentionDaily{Product: p, DayN: n, CohortUsers: size, RetainedUsers: kept, Retention: float64(kept) / float64(size), Provisional: prov}
	}
	wantRet := map[day.Day][]RetentionDaily{
		D + 0: {r("app", 1, 1, 1, false), r("app", 7, 1, 1, false), r("app", 14, 1, 0, false), r("app", 28, 1, 0, false)}, // alice: 1, 7
		D + 1: {r("app", 1, 1, 1, false), r("app", 7, 1, 0, false), r("app", 14, 1, 1, false), r("app", 28, 1, 1, true)},  // carol: 2, 15, 29
		D + 3: {},                                                                                                         // bob is not new
		D + 5: {r("web", 1, 1, 0, false), r("web", 14, 1, 0, false)},                                                      // day 12 was never built, day 33 is after the last built day
		D + 7: {},                                                                                                         // alice is not new
	}
	var cohorts []day.Day
	for d := range wantRet {
		cohorts = append(cohorts, d)
	}
	slices.Sort(cohorts)

	if diff := cmp.Diff(wantActive, ComputeActiveUsers(dts, rows, built), approx); diff != "" {
		t.Errorf("ComputeActiveUsers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantRet, ComputeRetention(cohorts, retBuilt, rows), approx); diff != "" {
		t.Errorf("ComputeRetention (-want +got):\n%s", diff)
	}
	db := openDuck(t)
	loadUserDaily(t, db, rows, dts, built)
	if diff := cmp.Diff(wantActive, refActiveUsers(t, db, dts), approx); diff != "" {
		t.Errorf("active_users_daily.sql (-want +got):\n%s", diff)
	}
	setBuilt(t, db, retBuilt)
	if _, err := db.ExecContext(context.Background(), "DELETE FROM days"); err != nil {
		t.Fatal(err)
	}
	for _, c := range cohorts {
		if _, err := db.ExecContext(context.Background(), fmt.Sprintf("INSERT INTO days VALUES (DATE '%s')", c)); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(wantRet, refRetention(t, db, cohorts), approx); diff != "" {
		t.Errorf("retention_daily.sql (-want +got):\n%s", diff)
	}
}

func TestWindowedEdges(t *testing.T) {
	all := synthUserDaily(1)
	b := builtDays(all, d0, d0+99, nil, nil)
	if got := ComputeActiveUsers(nil, all, b); len(got) != 0 {
		t.Errorf("no days: got %v", got)
	}
	if got := ComputeRetention(nil, b, all); len(got) != 0 {
		t.Errorf("no cohorts: got %v", got)
	}
	got := ComputeActiveUsers([]day.Day{d0, d0, d0 + 1}, nil, b)
	if diff := cmp.Diff(map[day.Day][]ActiveUsersDaily{d0: {}, d0 + 1: {}}, got, approx); diff != "" {
		t.Errorf("no rows (-want +got):\n%s", diff)
	}
	// A cohort day built alone has no rows yet.
	rows := []UserDay{{Day: d0, Product: "app", UserKey: "a", IsNew: true}}
	if got := ComputeRetention([]day.Day{d0}, builtDays(rows, d0, d0, nil, nil), rows); len(got[d0]) != 0 {
		t.Errorf("cohort as of itself: got %v", got)
	}
	// Nothing built: no rows, whatever user_daily holds.
	if got := ComputeActiveUsers([]day.Day{d0 + 5}, all, Built{}); len(got[d0+5]) != 0 {
		t.Errorf("nothing built: got %v", got)
	}
}

// TestWindowedSpans checks that the spans and the affected days agree: a day
// d is read for output day o exactly when o is among the days d affects.
func TestWindowedSpans(t *testing.T) {
	asOf := d0 + 60
	for o := d0; o <= d0+30; o++ {
		from, to, _ := ActiveUsersSpan([]day.Day{o})
		for d := o - 40; d <= o+40; d++ {
			af, at := ActiveUsersAffected(d)
			if read, aff := d >= from && d <= to, o >= af && o <= at; read != aff {
				t.Errorf("active users: output %s, input %s: read %v, affected %v", o, d, read, aff)
			}
		}
		// A cohort reads exactly its day and its return days (≤ as of);
		// the span is the hull of those.
		from, to, _ = RetentionSpan([]day.Day{o}, asOf)
		if from != o || to != o+28 {
			t.Errorf("retention span of %s: %s..%s", o, from, to)
		}
		for d := o - 40; d <= o+40; d++ {
			n := int(d - o)
			read := n == 0 || slices.Contains(RetentionDays[:], n)
			if aff := slices.Contains(RetentionAffected(d), o); read != aff {
				t.Errorf("retention: cohort %s, input %s: read %v, affected %v", o, d, read, aff)
			}
		}
	}
	if from, to, ok := RetentionSpan([]day.Day{asOf + 1}, asOf); ok {
		t.Errorf("retention span of a cohort after as-of: %s..%s, want none", from, to)
	}
	if _, _, ok := ActiveUsersSpan(nil); ok {
		t.Error("span of no days")
	}
}

// TestWindowedColumns checks that the structs make valid Parquet schemas
// with an Athena type and a doc for every column, and that the reference
// SQL returns dt followed by the same columns in the same order (but date,
// dt's copy in the files).
func TestWindowedColumns(t *testing.T) {
	for _, tc := range []struct {
		name string
		row  any
	}{{"active_users_daily", ActiveUsersDaily{}}, {"retention_daily", RetentionDaily{}}, {"lifecycle_daily", LifecycleDaily{}}, {"stickiness_daily", StickinessDaily{}}, {"dim_date", DimDate{}}} {
		parquet.SchemaOf(tc.row) // panics on a bad tag
		tab := Table{Name: tc.name, Row: reflect.TypeOf(tc.row), SQL: RefSQL(tc.name)}
		want := []string{"dt"}
		for _, c := range tab.Columns() {
			if c.Doc == "" || c.Type == "" {
				t.Errorf("%s.%s: type %q, doc %q", tc.name, c.Name, c.Type, c.Doc)
			}
			if c.Name == "date" && tc.name != "dim_date" {
				continue // dt inside the files, set when they are written: not the SQL's
			}
			want = append(want, c.Name)
		}
		db := openDuck(t)
		one := []UserDay{{Day: d0, Product: "app", UserKey: "a", IsNew: true}}
		loadUserDaily(t, db, one, []day.Day{d0}, builtDays(one, d0, d0, nil, nil))
		rows, err := db.QueryContext(context.Background(), tab.SQL)
		if err != nil {
			t.Fatal(err)
		}
		got, err := rows.Columns()
		rows.Close()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s.sql columns (-struct +sql):\n%s", tc.name, diff)
		}
	}
}

// BenchmarkComputeActiveUsers: 250k people over the 28 days of one day's
// month, each active on about 30% of days (about 2.1M rows), in the order
// the job reads user_daily back: by day, then product and user_key.
func BenchmarkComputeActiveUsers(b *testing.B) {
	rows, dt := benchRows()
	b.ResetTimer()
	for b.Loop() {
		ComputeActiveUsers([]day.Day{dt}, rows, builtDays(nil, dt-27, dt, nil, nil))
	}
}

func BenchmarkComputeRetention(b *testing.B) {
	rows, dt := benchRows()
	cohorts := []day.Day{dt - 28, dt - 14, dt - 7, dt - 1}
	b.ResetTimer()
	for b.Loop() {
		ComputeRetention(cohorts, builtDays(nil, dt-28, dt, nil, nil), rows)
	}
}

func benchRows() ([]UserDay, day.Day) {
	rng := rand.New(rand.NewSource(1))
	dt := d0 + 40
	products := []string{"app", "blog", "shop"}
	seen := make([]bool, 250_000)
	var rows []UserDay
	for d := dt - 27; d <= dt; d++ {
		for _, product := range products {
			for u := 0; u < len(seen); u++ {
				if products[u%3] != product || rng.Float64() >= 0.3 {
					continue
				}
				rows = append(rows, UserDay{Day: d, Product: product, UserKey: fmt.Sprintf("user-%07d", u),
					IsNew: !seen[u] && u%4 == 0})
				seen[u] = true
			}
		}
	}
	return rows, dt
}
