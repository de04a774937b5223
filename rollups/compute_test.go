package rollups

import (
	"bytes"
	"cmp"
	"fmt"
	"math/bits"
	"math/rand"
	"runtime"
	"slices"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/frame"
)

// eventsOf returns ev's rows as Events, in ev's order.
func eventsOf(ev *frame.Events) []Event {
	out := make([]Event, ev.Len())
	for i := range out {
		r := ev.Row(i)
		out[i] = Event{EventID: r.EventID, EventTime: r.EventTime, ClientEventTime: r.ClientTime, ReceivedAt: r.ReceivedAt,
			EventName: r.Str[frame.EventName], UserID: r.Str[frame.UserID], DeviceID: r.Str[frame.DeviceID],
			SessionID: r.Str[frame.SessionID], Product: r.Str[frame.Product], Platform: r.Str[frame.Platform],
			AppVersion: r.Str[frame.AppVersion], Country: r.Str[frame.Country], Properties: r.Props,
			UserKey: r.Str[frame.UserKey], SessionKey: r.Str[frame.SessionKey], ClockSkewed: r.Skewed}
	}
	return out
}

// genSpec shapes a random day.
type genSpec struct {
	users, sessions int
	products        []string // "" and None are both (none) in the rollups
	platforms       []string
	countries       []string
	names           []string
	timeGrid        int64 // event times are multiples of it: small grids make equal times
	sharedSessions  bool  // explicit session ids reused by other users and products
}

// randomDay returns a random day of events in random order; the strings
// enter the dictionary in random order, so ids say nothing of byte order.
func randomDay(rng *rand.Rand, s genSpec) *frame.Events {
	var rows []frame.Row
	pick := func(xs []string) string { return xs[rng.Intn(len(xs))] }
	// Skewed picks: a few values are much more common, so counts tie often
	// within a person's handful of events, and sometimes not.
	skew := func(xs []string) string {
		if rng.Intn(3) == 0 {
			return xs[0]
		}
		return pick(xs)
	}
	var explicit []string
	start := int64(1_780_000_000_000)
	for sn := 0; sn < s.sessions; sn++ {
		user := fmt.Sprintf("u%d", rng.Intn(s.users))
		if rng.Intn(4) == 0 {
			user = "anon:d" + user[1:]
		}
		product, platform, country := skew(s.products), skew(s.platforms), skew(s.countries)
		t0 := start + rng.Int63n(86_400_000/s.timeGrid)*s.timeGrid
		var key string
		switch {
		case s.sharedSessions && len(explicit) > 0 && rng.Intn(5) == 0:
			key = explicit[rng.Intn(len(explicit))]
		case rng.Intn(2) == 0:
			key = fmt.Sprintf("s:%x", rng.Int63())
			explicit = append(explicit, key)
		default:
			key = fmt.Sprintf("i:%s|%s|%d", product, user, t0)
		}
		nev := 1
		if rng.Intn(3) > 0 {
			nev += rng.Intn(12)
		}
		t := t0
		for range nev {
			r := frame.Row{EventID: fmt.Sprintf("%08x", rng.Uint32()), EventTime: t, ReceivedAt: t + rng.Int63n(5000),
				Skewed: rng.Intn(50) == 0}
			if rng.Intn(4) > 0 {
				r.ClientTime = t
			}
			r.Str[frame.EventName] = pick(s.names)
			r.Str[frame.UserKey] = user
			r.Str[frame.SessionKey] = key
			r.Str[frame.Product], r.Str[frame.Platform], r.Str[frame.Country] = product, platform, country
			if rng.Intn(4) == 0 { // the device or product changes mid-session
				r.Str[frame.Product], r.Str[frame.Platform], r.Str[frame.Country] = pick(s.products), pick(s.platforms), pick(s.countries)
			}
			if !strings.HasPrefix(user, "anon:") {
				r.Str[frame.UserID] = user
			}
			r.Str[frame.DeviceID] = "d" + user
			if rng.Intn(3) == 0 {
				r.Props = map[string]string{"k": pick(s.names), "url": fmt.Sprintf("/p/%d", rng.Intn(50))}
			}
			rows = append(rows, r)
			if rng.Intn(3) > 0 {
				t += rng.Int63n(4) * s.timeGrid
			}
		}
	}
	rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	// Intern every string in random order first.
	var strs []string
	for _, r := range rows {
		strs = append(strs, r.Str[:]...)
	}
	strs = append(strs, s.products...)
	strs = append(strs, s.platforms...)
	strs = append(strs, s.countries...)
	rng.Shuffle(len(strs), func(i, j int) { strs[i], strs[j] = strs[j], strs[i] })
	dict := frame.NewDict(len(strs))
	for _, x := range strs {
		dict.ID(x)
	}
	ev := frame.New(dict, len(rows))
	for i := range rows {
		if err := ev.Append(&rows[i]); err != nil {
			panic(err)
		}
	}
	return ev
}

// sortLikeJob sorts ev as the job does: by (event_name, user_key,
// event_time, event_id).
func sortLikeJob(ev *frame.Events) {
	perm := make([]int32, ev.Len())
	for i := range perm {
		perm[i] = int32(i)
	}
	slices.SortFunc(perm, func(a, b int32) int {
		return cmp.Or(strings.Compare(ev.S(frame.EventName, int(a)), ev.S(frame.EventName, int(b))),
			strings.Compare(ev.S(frame.UserKey, int(a)), ev.S(frame.UserKey, int(b))),
			cmp.Compare(ev.EventTime[a], ev.EventTime[b]), bytes.Compare(ev.ID(int(a)), ev.ID(int(b))))
	})
	ev.Permute(perm)
}

var specs = []genSpec{
	{users: 40, sessions: 300, products: []string{"", "app", None, "web"}, platforms: []string{"ios", "", "android", None, "web"},
		countries: []string{"DE", "", "FR", "US", None}, names: []string{"open", "", "click", "buy", "(none)"}, timeGrid: 1000, sharedSessions: true},
	{users: 5, sessions: 100, products: []string{"a", "b"}, platforms: []string{"x", "y"},
		countries: []string{"", "c"}, names: []string{"e"}, timeGrid: 60_000},
	{users: 500, sessions: 3000, products: []string{"p1", "p2", "p3", ""}, platforms: []string{"web", "ios", "android"},
		countries: []string{"US", "GB", "DE", "FR", "JP", "BR", ""}, names: []string{"a", "b", "c", "d", "e", "f", "g", "h"}, timeGrid: 1},
	{users: 1, sessions: 1, products: []string{""}, platforms: []string{""}, countries: []string{""}, names: []string{""}, timeGrid: 1},
}

func checkDaily(t *testing.T, ev *frame.Events) {
	t.Helper()
	wantE, wantU, wantS := computeDailyRef(eventsOf(ev))
	gotE, gotU, gotS := ComputeDaily(ev)
	if diff := gocmp.Diff(wantE, gotE); diff != "" {
		t.Fatalf("engagement_daily (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff(wantU, gotU); diff != "" {
		t.Fatalf("user_daily (-want +got):\n%s", diff)
	}
	if diff := gocmp.Diff(wantS, gotS); diff != "" {
		t.Fatalf("sessions_daily (-want +got):\n%s", diff)
	}
}

// TestComputeDailyMatchesReference compares ComputeDaily with the []Event
// implementation it replaced on random days, in random and in the job's
// order, through both of dense's paths. The comparison is exact (floats
// included).
func TestComputeDailyMatchesReference(t *testing.T) {
	for _, byMark := range []bool{true, false} {
		denseByMark = byMark
		for si, s := range specs {
			for seed := range 20 {
				rng := rand.New(rand.NewSource(int64(seed*100 + si)))
				ev := randomDay(rng, s)
				t.Run(fmt.Sprintf("mark=%v/spec%d/seed%d", byMark, si, seed), func(t *testing.T) {
					checkDaily(t, ev)
					sortLikeJob(ev)
					checkDaily(t, ev)
				})
			}
		}
	}
	denseByMark = true
}

// TestComputeDailyDataIsHard checks that the random days hold what the
// comparison is meant to exercise: ties for the most used platform and
// country, sessions whose first events tie on time, single-event
// sessions, sessions spanning products, and both spellings of (none).
func TestComputeDailyDataIsHard(t *testing.T) {
	var tiesPlatform, tiesFirst, single, spanning, bothNone int
	for si, s := range specs[:3] {
		ev := randomDay(rand.New(rand.NewSource(int64(si))), s)
		events := eventsOf(ev)
		type pu struct{ p, u string }
		counts := map[pu]map[string]int{}
		type first struct {
			t int64
			n int
		}
		firsts := map[string]first{}
		size := map[string]int{}
		products := map[string]map[string]bool{}
		rawProducts := map[string]bool{}
		for _, e := range events {
			k := pu{dim(e.Product), e.UserKey}
			if counts[k] == nil {
				counts[k] = map[string]int{}
			}
			counts[k][dim(e.Platform)]++
			f, ok := firsts[e.SessionKey]
			switch {
			case !ok || e.EventTime < f.t:
				firsts[e.SessionKey] = first{e.EventTime, 1}
			case e.EventTime == f.t:
				firsts[e.SessionKey] = first{f.t, f.n + 1}
			}
			size[e.SessionKey]++
			if products[e.SessionKey] == nil {
				products[e.SessionKey] = map[string]bool{}
			}
			products[e.SessionKey][dim(e.Product)] = true
			rawProducts[e.Product] = true
		}
		for _, c := range counts {
			top := slices.Max(slices.Collect(func(yield func(int) bool) {
				for _, n := range c {
					if !yield(n) {
						return
					}
				}
			}))
			n := 0
			for _, x := range c {
				if x == top {
					n++
				}
			}
			if n > 1 {
				tiesPlatform++
			}
		}
		for k, f := range firsts {
			if f.n > 1 {
				tiesFirst++
			}
			if size[k] == 1 {
				single++
			}
			if len(products[k]) > 1 {
				spanning++
			}
		}
		if rawProducts[""] && rawProducts[None] {
			bothNone++
		}
	}
	t.Logf("platform ties %d, first-event ties %d, single-event sessions %d, sessions spanning products %d",
		tiesPlatform, tiesFirst, single, spanning)
	if tiesPlatform < 10 || tiesFirst < 10 || single < 10 || spanning < 10 || bothNone == 0 {
		t.Fatal("the random days miss cases the comparison needs")
	}
}

// TestComputeDailyEmpty: no events, empty (not nil) tables.
func TestComputeDailyEmpty(t *testing.T) {
	e, u, s := ComputeDaily(frame.New(nil, 0))
	if e == nil || u == nil || s == nil || len(e)+len(u)+len(s) != 0 {
		t.Fatalf("ComputeDaily(no events) = %v, %v, %v", e, u, s)
	}
}

func TestSortPacked(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, nbits := range []int{0, 1, 5, 11, 12, 23, 33, 44} {
		n := 1000 + rng.Intn(1000)
		ib := bits.Len(uint(n - 1))
		elems := make([]uint64, n)
		for i := range elems {
			k := uint64(0)
			if nbits > 0 {
				k = rng.Uint64() >> (64 - nbits)
			}
			elems[i] = k<<ib | uint64(i)
		}
		want := slices.Clone(elems)
		slices.Sort(want) // the indexes make every element distinct: stable
		got := sortPacked(elems, make([]uint64, n), ib, nbits)
		if !slices.Equal(got, want) {
			t.Fatalf("nbits %d: not sorted", nbits)
		}
	}
}

// benchDay is a day shaped like the generator's: people in sessions of a
// few to 80 events on one device, a handful of products and platforms,
// tens of countries and event names, sorted as the job sorts.
func benchDay(n int) *frame.Events {
	rng := rand.New(rand.NewSource(1))
	users := n / 20
	names := make([]string, 40)
	for i := range names {
		names[i] = fmt.Sprintf("event_%02d", i)
	}
	countries := make([]string, 30)
	for i := range countries {
		countries[i] = fmt.Sprintf("C%c%c", 'A'+i%26, 'A'+i/26)
	}
	products, platforms := []string{"shop", "news", "game"}, []string{"web", "ios", "android", ""}
	ev := frame.New(nil, n)
	start := int64(1_780_000_000_000)
	for ev.Len() < n {
		u := rng.Intn(users)
		user := fmt.Sprintf("user-%08d", u)
		if u%4 == 0 {
			user = fmt.Sprintf("anon:%016x", uint64(u)*0x9e3779b97f4a7c15)
		}
		uid := user
		if strings.HasPrefix(user, "anon:") {
			uid = ""
		}
		product, platform, country := products[u%3], platforms[u%4], countries[u%30]
		t := start + rng.Int63n(86_000_000)
		sid, key := "", fmt.Sprintf("i:%s|%s|%d", product, user, t)
		if rng.Intn(3) == 0 {
			sid = fmt.Sprintf("%016x", rng.Uint64())
			key = "s:" + sid
		}
		for k := 1 + rng.Intn(40); k > 0 && ev.Len() < n; k-- {
			r := frame.Row{EventID: fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64()), EventTime: t, ClientTime: t, ReceivedAt: t + 1500}
			r.Str[frame.EventName] = names[rng.Intn(len(names))]
			r.Str[frame.UserID], r.Str[frame.DeviceID], r.Str[frame.SessionID] = uid, fmt.Sprintf("dev-%d", u), sid
			r.Str[frame.Product], r.Str[frame.Platform], r.Str[frame.Country] = product, platform, country
			r.Str[frame.AppVersion], r.Str[frame.UserKey], r.Str[frame.SessionKey] = "1.2.3", user, key
			r.Props = map[string]string{"page": fmt.Sprintf("/p/%d", rng.Intn(1000))}
			if err := ev.Append(&r); err != nil {
				panic(err)
			}
			t += rng.Int63n(60_000)
		}
	}
	sortLikeJob(ev)
	return ev
}

func BenchmarkComputeDaily(b *testing.B) {
	benchPerEvent(b, benchDay(benchEvents), func(ev *frame.Events) { ComputeDaily(ev) })
}

func BenchmarkComputeDailyReference(b *testing.B) {
	events := eventsOf(benchDay(benchEvents))
	benchPerEvent(b, nil, func(*frame.Events) { computeDailyRef(events) })
}

const benchEvents = 1 << 20

// benchPerEvent runs f(ev) and reports ns/event and B/event (bytes
// allocated) for benchEvents events.
func benchPerEvent(b *testing.B, ev *frame.Events, f func(*frame.Events)) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		f(ev)
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchEvents, "ns/event")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/benchEvents, "B/event")
}
