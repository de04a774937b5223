package rollups

import (
	"context"
	"fmt"
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
// tables do not read get plausible values), days(dt) from dts and, if asOf
// is not nil, the one-row as_of(dt).
func loadUserDaily(t *testing.T, db *duckref.DB, rows []UserDay, dts []day.Day, asOf *day.Day) {
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
	if asOf != nil {
		exec(fmt.Sprintf("CREATE TABLE as_of AS SELECT DATE '%s' AS dt", *asOf))
	}
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
			WAU: r["wau"].(int64), MAU: r["mau"].(int64), NewUsers: r["new_users"].(int64),
			ReturningUsers: r["returning_users"].(int64), Stickiness: r["stickiness"].(float64)})
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
			Retention: r["retention"].(float64)})
	}
	return out
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
// user_daily rows.
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
			asOf := d0 + 85 // days 86..99 have data but are "not known yet"

			db := openDuck(t)
			loadUserDaily(t, db, rows, dts, &asOf)

			gotActive := ComputeActiveUsers(dts, rows)
			if diff := cmp.Diff(refActiveUsers(t, db, dts), gotActive, approx); diff != "" {
				t.Errorf("active_users_daily: Go differs from the reference SQL (-sql +go):\n%s", diff)
			}
			gotRet := ComputeRetention(cohorts, asOf, rows)
			if diff := cmp.Diff(refRetention(t, db, cohorts), gotRet, approx); diff != "" {
				t.Errorf("retention_daily: Go differs from the reference SQL (-sql +go):\n%s", diff)
			}

			// The job feeds only the span it reads back: same result.
			from, to, _ := ActiveUsersSpan(dts)
			if diff := cmp.Diff(gotActive, ComputeActiveUsers(dts, within(rows, from, to)), approx); diff != "" {
				t.Errorf("active_users_daily from its span only differs (-all +span):\n%s", diff)
			}
			from, to, _ = RetentionSpan(cohorts, asOf)
			if diff := cmp.Diff(gotRet, ComputeRetention(cohorts, asOf, within(rows, from, to)), approx); diff != "" {
				t.Errorf("retention_daily from its span only differs (-all +span):\n%s", diff)
			}
			// Day by day equals all at once.
			for _, d := range []day.Day{d0 + 10, d0 + 42, d0 + 90} {
				one := ComputeActiveUsers([]day.Day{d}, rows)
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
			if n := len(gotActive[d0+42]); n == 0 || gotActive[d0+42][0].DAU != 0 {
				t.Errorf("empty day %s: want rows with dau 0, got %+v", d0+42, gotActive[d0+42])
			}
			for _, d := range []day.Day{d0 + 60, d0 - 30, d0 + 200} {
				for _, r := range gotActive[d] {
					if r.Product == "silent" || d != d0+60 {
						t.Errorf("%s: unexpected row %+v", d, r)
					}
				}
			}
			if len(gotRet[d0+84]) == 0 || len(gotRet[d0+85]) != 0 || len(gotRet[d0+99]) != 0 {
				t.Errorf("retention cut at as-of: %s has %d rows, %s %d, %s %d", d0+84, len(gotRet[d0+84]),
					d0+85, len(gotRet[d0+85]), d0+99, len(gotRet[d0+99]))
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
			if !(0 <= r.DAU && r.DAU <= r.WAU && r.WAU <= r.MAU && r.MAU > 0) || r.NewUsers+r.ReturningUsers != r.DAU ||
				r.NewUsers < 0 || r.Stickiness < 0 || r.Stickiness > 1 {
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

	a := func(p string, dau, wau, mau, nu int64, stick float64) ActiveUsersDaily {
		return ActiveUsersDaily{Product: p, DAU: dau, WAU: wau, MAU: mau, NewUsers: nu, ReturningUsers: dau - nu, Stickiness: stick}
	}
	wantActive := map[day.Day][]ActiveUsersDaily{
		D - 1: {},
		D + 0: {a("app", 1, 1, 1, 1, 1)},
		D + 1: {a("app", 2, 2, 2, 1, 1)},
		D + 2: {a("app", 1, 2, 2, 0, 0.5)},
		D + 7: {a("app", 1, 3, 3, 0, 1.0/3), a("web", 0, 1, 1, 0, 0)},
		D + 8: {a("app", 0, 3, 3, 0, 0), a("web", 0, 1, 1, 0, 0)},
		// window 2..29 holds carol (2, 15, 29), bob (3, 20), alice (7) in
		// app; web's day 5 too. The week 23..29 only carol.
		D + 29: {a("app", 1, 1, 3, 0, 1.0/3), a("web", 0, 0, 1, 0, 0)},
		D + 35: {a("app", 0, 1, 2, 0, 0)}, // 8..35: carol, bob; web's day 5 is out
		D + 48: {a("app", 0, 0, 1, 0, 0)}, // 21..48: carol's day 29
		D + 57: {},                        // 30..57: nobody
	}
	var dts []day.Day
	for d := range wantActive {
		dts = append(dts, d)
	}
	slices.Sort(dts)

	asOf := D + 29
	r := func(p string, n, size, kept int64) RetentionDaily {
		return RetentionDaily{Product: p, DayN: n, CohortUsers: size, RetainedUsers: kept, Retention: float64(kept) / float64(size)}
	}
	wantRet := map[day.Day][]RetentionDaily{
		D + 0: {r("app", 1, 1, 1), r("app", 7, 1, 1), r("app", 14, 1, 0), r("app", 28, 1, 0)}, // alice: 1, 7
		D + 1: {r("app", 1, 1, 1), r("app", 7, 1, 0), r("app", 14, 1, 1), r("app", 28, 1, 1)}, // carol: 2, 15, 29
		D + 3: {},                                                                             // bob is not new
		D + 5: {r("web", 1, 1, 0), r("web", 7, 1, 0), r("web", 14, 1, 0)},                     // day 33 is after as-of
		D + 7: {},                                                                             // alice is not new
	}
	var cohorts []day.Day
	for d := range wantRet {
		cohorts = append(cohorts, d)
	}
	slices.Sort(cohorts)

	if diff := cmp.Diff(wantActive, ComputeActiveUsers(dts, rows), approx); diff != "" {
		t.Errorf("ComputeActiveUsers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantRet, ComputeRetention(cohorts, asOf, rows), approx); diff != "" {
		t.Errorf("ComputeRetention (-want +got):\n%s", diff)
	}
	db := openDuck(t)
	loadUserDaily(t, db, rows, dts, &asOf)
	if diff := cmp.Diff(wantActive, refActiveUsers(t, db, dts), approx); diff != "" {
		t.Errorf("active_users_daily.sql (-want +got):\n%s", diff)
	}
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
	if got := ComputeActiveUsers(nil, synthUserDaily(1)); len(got) != 0 {
		t.Errorf("no days: got %v", got)
	}
	if got := ComputeRetention(nil, d0+10, synthUserDaily(1)); len(got) != 0 {
		t.Errorf("no cohorts: got %v", got)
	}
	got := ComputeActiveUsers([]day.Day{d0, d0, d0 + 1}, nil)
	if diff := cmp.Diff(map[day.Day][]ActiveUsersDaily{d0: {}, d0 + 1: {}}, got, approx); diff != "" {
		t.Errorf("no rows (-want +got):\n%s", diff)
	}
	// A cohort day as of itself has no rows yet.
	rows := []UserDay{{Day: d0, Product: "app", UserKey: "a", IsNew: true}}
	if got := ComputeRetention([]day.Day{d0}, d0, rows); len(got[d0]) != 0 {
		t.Errorf("cohort as of itself: got %v", got)
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
// SQL returns dt followed by the same columns in the same order.
func TestWindowedColumns(t *testing.T) {
	for _, tc := range []struct {
		name string
		row  any
	}{{"active_users_daily", ActiveUsersDaily{}}, {"retention_daily", RetentionDaily{}}} {
		parquet.SchemaOf(tc.row) // panics on a bad tag
		tab := Table{Name: tc.name, Row: reflect.TypeOf(tc.row), SQL: RefSQL(tc.name)}
		want := []string{"dt"}
		for _, c := range tab.Columns() {
			if c.Doc == "" || c.Type == "" {
				t.Errorf("%s.%s: type %q, doc %q", tc.name, c.Name, c.Type, c.Doc)
			}
			want = append(want, c.Name)
		}
		db := openDuck(t)
		asOf := d0
		loadUserDaily(t, db, []UserDay{{Day: d0, Product: "app", UserKey: "a", IsNew: true}}, []day.Day{d0}, &asOf)
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
		ComputeActiveUsers([]day.Day{dt}, rows)
	}
}

func BenchmarkComputeRetention(b *testing.B) {
	rows, dt := benchRows()
	cohorts := []day.Day{dt - 28, dt - 14, dt - 7, dt - 1}
	b.ResetTimer()
	for b.Loop() {
		ComputeRetention(cohorts, dt, rows)
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
