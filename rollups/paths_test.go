package rollups

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/duckref"
	"github.com/littlewarehouse/warehouse/internal/frame"
)

// pathEvent is one hand-written event of a paths test.
type pathEvent struct {
	id, at, name, product, user, session string // at: "15:04:05" on pathsDay
}

var pathsDay = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// pathEvents returns es as Events, in reverse order (ComputePaths must not
// rely on the order it is given).
func pathEvents(t *testing.T, es []pathEvent) *frame.Events {
	t.Helper()
	ev := frame.New(nil, len(es))
	for _, e := range slices.Backward(es) {
		at, err := time.Parse("15:04:05", e.at)
		if err != nil {
			t.Fatal(err)
		}
		ms := pathsDay.Add(time.Duration(at.Hour())*time.Hour + time.Duration(at.Minute())*time.Minute + time.Duration(at.Second())*time.Second).UnixMilli()
		r := frame.Row{EventID: e.id, EventTime: ms, ClientTime: ms, ReceivedAt: ms}
		r.Str[frame.EventName], r.Str[frame.Product], r.Str[frame.UserKey], r.Str[frame.SessionKey] = e.name, e.product, e.user, e.session
		if err := ev.Append(&r); err != nil {
			t.Fatal(err)
		}
	}
	return ev
}

// inferred is the session_key the job gives a session inferred from
// inactivity that starts at "15:04:05" at.
func inferred(product, user, at string) string {
	t, _ := time.Parse("15:04:05", at)
	start := pathsDay.Add(time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second)
	return fmt.Sprintf("i:%s|%s|%d", product, user, start.UnixMilli())
}

// TestPathsGolden computes paths_daily of a hand-written day and checks it
// row for row, and against DuckDB running paths_daily.sql on the same
// events. The day holds: a person whose 30 minutes of inactivity started a
// second (inferred) session, and one who changed client session ids a
// minute apart — neither step between sessions is a transition; two
// events at the same time, ordered by event_id; the same name twice; two
// people on one pair, one of them twice; a product left empty, and spelled
// (none); a session spanning two products (counted under the from event's);
// a client session id two people share (each their own path); and a
// session of one event (no transition).
func TestPathsGolden(t *testing.T) {
	aliceS1, aliceS2 := inferred("shop", "alice", "09:00:00"), inferred("shop", "alice", "09:45:00")
	ev := pathEvents(t, []pathEvent{
		// alice: 35 minutes idle after 09:10, so 09:45 starts a new session.
		{"a1", "09:00:00", "app_open", "shop", "alice", aliceS1},
		{"a3", "09:05:00", "view_item", "shop", "alice", aliceS1}, // same time as a2: after it, by event_id
		{"a2", "09:05:00", "add_to_cart", "shop", "alice", aliceS1},
		{"a4", "09:10:00", "view_item", "shop", "alice", aliceS1},
		{"a5", "09:45:00", "app_open", "shop", "alice", aliceS2},
		{"a6", "09:46:00", "purchase", "shop", "alice", aliceS2},
		// bob: a new client session id a minute later.
		{"b1", "10:00:00", "app_open", "shop", "bob", "s:X1"},
		{"b2", "10:01:00", "view_item", "shop", "bob", "s:X1"},
		{"b3", "10:02:00", "search", "shop", "bob", "s:X2"},
		{"b4", "10:03:00", "view_item", "shop", "bob", "s:X2"},
		// carol: app_open → view_item twice.
		{"c1", "11:00:00", "app_open", "shop", "carol", "s:C1"},
		{"c2", "11:02:00", "view_item", "shop", "carol", "s:C1"},
		{"c3", "11:03:00", "app_open", "shop", "carol", "s:C1"},
		{"c4", "11:04:00", "view_item", "shop", "carol", "s:C1"},
		// dave: no product, written both ways.
		{"d1", "12:00:00", "page_view", "", "dave", "s:D1"},
		{"d2", "12:01:00", "page_view", None, "dave", "s:D1"},
		// erin: from blog to shop in one session.
		{"e1", "13:00:00", "page_view", "blog", "erin", "s:E1"},
		{"e2", "13:01:00", "purchase", "shop", "erin", "s:E1"},
		// frank and an anonymous visitor share a client session id.
		{"f1", "14:00:00", "app_open", "shop", "frank", "s:S"},
		{"g1", "14:00:30", "app_open", "shop", "anon:g", "s:S"},
		{"f2", "14:01:00", "click", "shop", "frank", "s:S"},
		// henry: one event.
		{"h1", "15:00:00", "app_open", "shop", "henry", "s:H"},
	})
	want := []PathsDaily{
		{Product: None, FromEvent: "page_view", ToEvent: "page_view", Transitions: 1, People: 1},
		{Product: "blog", FromEvent: "page_view", ToEvent: "purchase", Transitions: 1, People: 1},
		{Product: "shop", FromEvent: "app_open", ToEvent: "view_item", Transitions: 3, People: 2},
		{Product: "shop", FromEvent: "add_to_cart", ToEvent: "view_item", Transitions: 1, People: 1},
		{Product: "shop", FromEvent: "app_open", ToEvent: "add_to_cart", Transitions: 1, People: 1},
		{Product: "shop", FromEvent: "app_open", ToEvent: "click", Transitions: 1, People: 1},
		{Product: "shop", FromEvent: "app_open", ToEvent: "purchase", Transitions: 1, People: 1},
		{Product: "shop", FromEvent: "search", ToEvent: "view_item", Transitions: 1, People: 1},
		{Product: "shop", FromEvent: "view_item", ToEvent: "app_open", Transitions: 1, People: 1},
		{Product: "shop", FromEvent: "view_item", ToEvent: "view_item", Transitions: 1, People: 1},
	}
	got := ComputePaths(ev)
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("paths_daily (-want +got):\n%s", diff)
	}
	db := openDuck(t)
	loadEvents(t, db, eventsOf(ev))
	if diff := gocmp.Diff(want, refPaths(t, db)); diff != "" {
		t.Errorf("paths_daily.sql (-want +sql):\n%s", diff)
	}
}

// TestPathsEmpty: fewer than two events, or no session with two events of
// one person, give no rows (not nil).
func TestPathsEmpty(t *testing.T) {
	for name, es := range map[string][]pathEvent{
		"no events": nil,
		"one event": {{"a", "10:00:00", "x", "p", "u", "s:1"}},
		"no two in a session": {{"a", "10:00:00", "x", "p", "u", "s:1"}, {"b", "10:01:00", "x", "p", "u", "s:2"},
			{"c", "10:01:00", "x", "p", "v", "s:2"}},
	} {
		if got := ComputePaths(pathEvents(t, es)); got == nil || len(got) != 0 {
			t.Errorf("%s: ComputePaths = %v, want no rows", name, got)
		}
	}
}

// pathsSpec shapes a random day for paths: names drawn by a skewed law over
// many names, so a product has hundreds of pairs whose counts tie at the
// cut.
type pathsSpec struct {
	sessions, users, names int
	products               []string
	timeGrid               int64 // small grids make equal times within a session
}

// randomPathsDay returns a random day in random order: sessions of 1 to 30
// events, person by person, some client session ids shared by two people
// and spanning products, names skewed towards the first ones, and one
// session in 300 in a product of its own.
func randomPathsDay(rng *rand.Rand, s pathsSpec) *frame.Events {
	names := make([]string, s.names)
	for i := range names {
		names[i] = fmt.Sprintf("n%03d", i)
	}
	names[len(names)-1], names[len(names)-2] = "Zeta", "été" // byte order, not a collation
	names[0] = Other                                         // a real event of that name: is_other tells the rows apart
	var rows []frame.Row
	var shared []string
	start := pathsDay.UnixMilli()
	for sn := range s.sessions {
		user := fmt.Sprintf("u%d", rng.Intn(s.users))
		if rng.Intn(4) == 0 {
			user = "anon:" + user
		}
		product := s.products[rng.Intn(len(s.products))]
		if rng.Intn(300) == 0 {
			product = "tiny" // a product with few pairs
		}
		t := start + rng.Int63n(86_000_000/s.timeGrid)*s.timeGrid
		key := fmt.Sprintf("s:%d", sn)
		switch {
		case len(shared) > 0 && rng.Intn(6) == 0:
			key = shared[rng.Intn(len(shared))]
		case rng.Intn(2) == 0:
			key = fmt.Sprintf("i:%s|%s|%d", product, user, t)
		default:
			shared = append(shared, key)
		}
		for range 1 + rng.Intn(30) {
			r := frame.Row{EventID: fmt.Sprintf("%08x", rng.Uint32()), EventTime: t, ReceivedAt: t}
			// Skewed: the square of a uniform draw favours low names.
			x := rng.Float64()
			r.Str[frame.EventName] = names[int(x*x*float64(len(names)))]
			r.Str[frame.Product], r.Str[frame.UserKey], r.Str[frame.SessionKey] = product, user, key
			if rng.Intn(10) == 0 {
				r.Str[frame.Product] = s.products[rng.Intn(len(s.products))]
			}
			rows = append(rows, r)
			t += rng.Int63n(3) * s.timeGrid
		}
	}
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	ev := frame.New(nil, len(rows))
	for i := range rows {
		if err := ev.Append(&rows[i]); err != nil {
			panic(err)
		}
	}
	return ev
}

var pathsSpecs = []pathsSpec{
	{sessions: 1500, users: 300, names: 40, products: []string{"shop", "shop", "shop", "", None, "blog"}, timeGrid: 1000},
	{sessions: 400, users: 30, names: 25, products: []string{"a", "b"}, timeGrid: 1},
	{sessions: 200, users: 5, names: 3, products: []string{""}, timeGrid: 60_000},
}

// TestPathsAgainstDuckDB compares ComputePaths with DuckDB running
// paths_daily.sql on random days, in random order and sorted as the job
// sorts them, through each of its ways (see check). The first spec's data
// must have a product past the top 200 pairs, with a tie across the cut,
// and one within it.
func TestPathsAgainstDuckDB(t *testing.T) {
	for si, s := range pathsSpecs {
		for seed := range 3 {
			t.Run(fmt.Sprintf("spec%d/seed%d", si, seed), func(t *testing.T) {
				ev := randomPathsDay(rand.New(rand.NewSource(int64(100*si+seed))), s)
				db := openDuck(t)
				loadEvents(t, db, eventsOf(ev))
				want := refPaths(t, db)
				// The same through every way ComputePaths can take: dense's
				// sort path, the sorts for codes too wide to pack (pathsWide),
				// and times so wide (2^35 apart for each millisecond: a span
				// of about 2^62) that they cannot be packed beside an index.
				check := func(what string) {
					t.Helper()
					for _, wide := range []bool{false, true} {
						for _, byMark := range []bool{true, false} {
							pathsWide, denseByMark = wide, byMark
							got := ComputePaths(ev)
							pathsWide, denseByMark = false, true
							if diff := gocmp.Diff(want, got); diff != "" {
								t.Fatalf("paths_daily of %s, wide %v, dense by mark %v (-sql +go):\n%s", what, wide, byMark, diff)
							}
						}
					}
				}
				check("random order")
				sortLikeJob(ev)
				check("the job's order")
				t0 := slices.Min(ev.EventTime)
				for i, x := range ev.EventTime {
					ev.EventTime[i] = (x - t0) << 35
				}
				check("times too wide to pack")
				if si == 0 {
					checkCut(t, ev, want)
				}
			})
		}
	}
}

// checkCut fails unless the day ev, whose paths_daily is rows, has a
// product with more than PathsTop pairs whose 200th and 201st pairs (by
// transitions, counted here naively) tie, and a product with fewer pairs.
func checkCut(t *testing.T, ev *frame.Events, rows []PathsDaily) {
	t.Helper()
	es := eventsOf(ev)
	slices.SortFunc(es, func(a, b Event) int {
		return cmp.Or(strings.Compare(a.SessionKey, b.SessionKey), strings.Compare(a.UserKey, b.UserKey),
			cmp.Compare(a.EventTime, b.EventTime), strings.Compare(a.EventID, b.EventID))
	})
	counts := map[string]map[[2]string]int64{}
	for i := 1; i < len(es); i++ {
		a, b := es[i-1], es[i]
		if a.SessionKey == b.SessionKey && a.UserKey == b.UserKey {
			p := dim(a.Product)
			if counts[p] == nil {
				counts[p] = map[[2]string]int64{}
			}
			counts[p][[2]string{a.EventName, b.EventName}]++
		}
	}
	var tieAtCut, within bool
	for p, c := range counts {
		ns := slices.Sorted(maps.Values(c))
		slices.Reverse(ns)
		if len(ns) <= PathsTop {
			within = true
			continue
		}
		tieAtCut = tieAtCut || ns[PathsTop-1] == ns[PathsTop]
		var other int64
		for _, n := range ns[PathsTop:] {
			other += n
		}
		i := slices.IndexFunc(rows, func(r PathsDaily) bool { return r.Product == p && r.IsOther })
		if i < 0 || rows[i].Transitions != other {
			t.Errorf("%s: %d pairs, want an (other) row of %d transitions", p, len(ns), other)
		}
	}
	if !tieAtCut || !within {
		t.Errorf("the data miss a case: a product cut at %d pairs with a tie across the cut %v, one within %v", PathsTop, tieAtCut, within)
	}
}

// loadEvents creates the events table in db, with the columns
// paths_daily.sql reads, all on pathsDay.
func loadEvents(t *testing.T, db *duckref.DB, es []Event) {
	t.Helper()
	ctx := context.Background()
	exec := func(q string) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%v\n%.2000s", err, q)
		}
	}
	exec(`CREATE TABLE events (dt DATE, event_id VARCHAR, event_time TIMESTAMP, event_name VARCHAR, product VARCHAR,
		user_key VARCHAR, session_key VARCHAR)`)
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	for i := 0; i < len(es); i += 1000 {
		var b strings.Builder
		b.WriteString("INSERT INTO events VALUES ")
		for j, e := range es[i:min(i+1000, len(es))] {
			if j > 0 {
				b.WriteString(",\n")
			}
			fmt.Fprintf(&b, "(DATE '%s', %s, epoch_ms(%d::BIGINT), %s, %s, %s, %s)", pathsDay.Format(time.DateOnly),
				q(e.EventID), e.EventTime, q(e.EventName), q(e.Product), q(e.UserKey), q(e.SessionKey))
		}
		exec(b.String())
	}
}

// refPaths runs paths_daily.sql (one day's rows, in its order).
func refPaths(t *testing.T, db *duckref.DB) []PathsDaily {
	t.Helper()
	out := []PathsDaily{}
	for _, r := range refQuery(t, db, "paths_daily") {
		out = append(out, PathsDaily{Product: r["product"].(string), FromEvent: r["from_event"].(string), ToEvent: r["to_event"].(string),
			IsOther: r["is_other"].(bool), Transitions: r["transitions"].(int64), People: r["people"].(int64)})
	}
	return out
}

func BenchmarkComputePaths(b *testing.B) {
	benchPerEvent(b, benchDay(benchEvents), func(ev *frame.Events) { ComputePaths(ev) })
}
