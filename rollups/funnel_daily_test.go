package rollups

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/duckref"
	"github.com/littlewarehouse/warehouse/internal/frame"
)

// fev is one event of a funnel test.
type fev struct {
	product, user, name string
	t                   time.Time
	props               map[string]string
}

func mustFunnels(t *testing.T, js string) *Funnels {
	t.Helper()
	f, err := ParseFunnels([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// frameOf makes one day's frame of events (in the given order).
func frameOf(t *testing.T, evs []fev) *frame.Events {
	t.Helper()
	ev := frame.New(nil, len(evs))
	for i, e := range evs {
		var r frame.Row
		r.EventID = fmt.Sprint("e", i)
		r.EventTime, r.ReceivedAt = e.t.UnixMilli(), e.t.UnixMilli()
		r.Str[frame.EventName], r.Str[frame.Product], r.Str[frame.UserKey] = e.name, e.product, e.user
		r.Props = e.props
		if err := ev.Append(&r); err != nil {
			t.Fatal(err)
		}
	}
	return ev
}

// funnelDays splits evs by day in loc and extracts each day's funnel
// events both ways (from the frame, and one row at a time as from the
// events table), which must agree.
func funnelDays(t *testing.T, f *Funnels, evs []fev, loc *time.Location) map[day.Day]*FunnelEvents {
	t.Helper()
	byDay := map[day.Day][]fev{}
	for _, e := range evs {
		d := day.Of(e.t.UnixMilli(), loc)
		byDay[d] = append(byDay[d], e)
	}
	out := map[day.Day]*FunnelEvents{}
	for d, es := range byDay {
		fast := FunnelEventsOf(f, frameOf(t, es))
		b := NewFunnelEvents(f)
		for _, e := range es {
			b.Add(e.product, e.user, e.name, e.t.UnixMilli(), e.props)
		}
		if diff := cmp.Diff(b.Done(), fast); diff != "" {
			t.Fatalf("day %s: funnel events from the frame differ from those added one by one (-added +frame):\n%s", d, diff)
		}
		back, err := DecodeFunnelEvents(fast.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(fast, back, cmp.Comparer(func(a, b []int64) bool { return slices.Equal(a, b) }),
			cmp.Comparer(func(a, b []uint64) bool { return slices.Equal(a, b) })); diff != "" {
			t.Fatalf("day %s: decoded funnel events differ (-encoded +decoded):\n%s", d, diff)
		}
		out[d] = fast
	}
	return out
}

// computeAll computes funnel_daily of each day of dts from days, every
// day of built built (provisional if its value is true).
func computeAll(f *Funnels, days map[day.Day]*FunnelEvents, dts []day.Day, built map[day.Day]bool, loc *time.Location) map[day.Day][]FunnelDaily {
	out := map[day.Day][]FunnelDaily{}
	reach := FunnelReach(0, time.UTC, f.MaxWindow()) + 2
	for _, d := range dts {
		if _, ok := built[d]; !ok {
			continue
		}
		in := FunnelInput{Day: d, Loc: loc}
		for k := 0; k <= reach; k++ {
			p, ok := built[d+day.Day(k)]
			fe := days[d+day.Day(k)]
			if ok && fe == nil {
				fe = &FunnelEvents{}
			}
			if !ok {
				fe = nil
			}
			in.Events = append(in.Events, fe)
			in.Open = append(in.Open, !ok || p)
		}
		out[d] = ComputeFunnels(f, in)
	}
	return out
}

func f64(x float64) *float64 { return &x }

// TestFunnelGolden checks funnel_daily on hand-written events: a step out
// of order, conversions just inside and just outside the window, an event
// at the same millisecond not advancing, one entry a day, a conversion on
// the next day, a property step, products apart, and the provisional mark.
func TestFunnelGolden(t *testing.T) {
	f := mustFunnels(t, `{"funnels": [
		{"name": "buy", "window": "1h", "steps": [{"event": "view"}, {"event": "cart"}, {"event": "pay", "property": "currency", "equals": "USD"}]},
		{"name": "again", "steps": [{"event": "view"}, {"event": "view"}]}]}`)
	d := day.FromDate(2026, 3, 10)
	at := func(h, m, s, ms int) time.Time {
		return d.Start(time.UTC).Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second + time.Duration(ms)*time.Millisecond)
	}
	usd := map[string]string{"currency": "USD"}
	evs := []fev{
		// a: cart before view (out of order), then view, cart and pay
		// exactly 1h after the view: converts, just inside.
		{"shop", "a", "cart", at(9, 0, 0, 0), nil},
		{"shop", "a", "view", at(9, 1, 0, 0), nil},
		{"shop", "a", "cart", at(9, 30, 0, 0), nil},
		{"shop", "a", "pay", at(10, 1, 0, 0), usd},
		// b: pay 1ms after the window: reaches cart only. A later view
		// the same day is not a second entry, but is step 2 of "again".
		{"shop", "b", "view", at(12, 0, 0, 0), nil},
		{"shop", "b", "cart", at(12, 0, 0, 0), nil}, // same ms as step 1: does not advance
		{"shop", "b", "cart", at(12, 10, 0, 0), nil},
		{"shop", "b", "pay", at(13, 0, 0, 1), usd},
		{"shop", "b", "view", at(14, 0, 0, 0), nil},
		// c: pay in EUR does not match; pays in USD later, in the window.
		{"shop", "c", "view", at(20, 0, 0, 0), nil},
		{"shop", "c", "cart", at(20, 5, 0, 0), nil},
		{"shop", "c", "pay", at(20, 6, 0, 0), map[string]string{"currency": "EUR"}},
		{"shop", "c", "pay", at(20, 7, 0, 0), usd},
		// d: enters late in the day, converts after midnight (the next day).
		{"shop", "d", "view", at(23, 50, 0, 0), nil},
		{"shop", "d", "cart", at(24, 10, 0, 0), nil},
		{"shop", "d", "pay", at(24, 20, 0, 0), usd},
		// the same user key in another product is another person.
		{"", "a", "view", at(8, 0, 0, 0), nil},
		// e: enters only the day after.
		{"shop", "e", "view", at(30, 0, 0, 0), nil},
		// f: no product, spelled both ways: one person, who converts.
		{"", "f", "view", at(6, 0, 0, 0), nil},
		{"(none)", "f", "cart", at(6, 1, 0, 0), nil},
	}
	days := funnelDays(t, f, evs, time.UTC)
	got := computeAll(f, days, []day.Day{d, d + 1}, map[day.Day]bool{d: false, d + 1: false, d + 2: true}, time.UTC)
	row := func(product, funnel string, step int64, name string, people int64, conv float64, med *float64, win int64, prov bool) FunnelDaily {
		return FunnelDaily{Product: product, Funnel: funnel, Step: step, StepName: name, People: people, Conversion: conv,
			MedianSeconds: med, WindowSeconds: win, Provisional: prov}
	}
	pay := "pay (currency = USD)"
	want := map[day.Day][]FunnelDaily{
		d: {
			row("(none)", "again", 1, "view", 2, 1, f64(0), 86400, false),
			row("(none)", "again", 2, "view", 0, 0, nil, 86400, false),
			row("(none)", "buy", 1, "view", 2, 1, f64(0), 3600, false),
			row("(none)", "buy", 2, "cart", 1, 0.5, f64(60), 3600, false),
			row("(none)", "buy", 3, pay, 0, 0, nil, 3600, false),
			// again: b's second view is 2h after; e's view is 6h after d's
			// (d's "again" sees the next day, whose mark is final).
			row("shop", "again", 1, "view", 4, 1, f64(0), 86400, false),
			row("shop", "again", 2, "view", 1, 0.25, f64(7200), 86400, false),
			row("shop", "buy", 1, "view", 4, 1, f64(0), 3600, false),
			row("shop", "buy", 2, "cart", 4, 1, f64(900), 3600, false),  // a 29m, b 10m, c 5m, d 20m
			row("shop", "buy", 3, pay, 3, 0.75, f64(1800), 3600, false), // a 60m, c 7m, d 30m
		},
		d + 1: {
			// The next day's windows reach d+2, which is provisional.
			row("shop", "again", 1, "view", 1, 1, f64(0), 86400, true),
			row("shop", "again", 2, "view", 0, 0, nil, 86400, true),
			row("shop", "buy", 1, "view", 1, 1, f64(0), 3600, true),
			row("shop", "buy", 2, "cart", 0, 0, nil, 3600, true),
			row("shop", "buy", 3, pay, 0, 0, nil, 3600, true),
		},
	}
	if diff := cmp.Diff(want, got, approx); diff != "" {
		t.Errorf("funnel_daily (-want +got):\n%s", diff)
	}
	db := openDuck(t)
	loadFunnelEvents(t, db, f, evs, []day.Day{d, d + 1}, map[day.Day]bool{d: false, d + 1: false, d + 2: true}, "UTC")
	if diff := cmp.Diff(refFunnels(t, db, []day.Day{d, d + 1}), got, approx); diff != "" {
		t.Errorf("funnel_daily: Go differs from the reference SQL (-sql +go):\n%s", diff)
	}
}

// TestFunnelsAgainstDuckDB compares every row of funnel_daily, computed in
// Go from funnel events extracted both ways, with funnel_daily.sql run by
// DuckDB on the same random events: several products and people, repeated
// steps, property steps, windows from a minute to two days, events on the
// same millisecond, days not built and provisional, in UTC and in a zone
// whose clocks go back during the data (Auckland, 2026-04-05).
func TestFunnelsAgainstDuckDB(t *testing.T) {
	f := mustFunnels(t, `{"funnels": [
		{"name": "short", "window": "1m", "steps": [{"event": "a"}, {"event": "b"}]},
		{"name": "long", "window": "48h", "steps": [{"event": "a"}, {"event": "b"}, {"event": "c"}, {"event": "a"}]},
		{"name": "prop", "window": "2h", "steps": [{"event": "b", "property": "k", "equals": "1"}, {"event": "c"}, {"event": "c", "property": "k", "equals": ""}]},
		{"name": "day", "steps": [{"event": "c"}, {"event": "d"}, {"event": "b"}]}]}`)
	for _, tz := range []string{"UTC", "Pacific/Auckland"} {
		for seed := uint64(1); seed <= 3; seed++ {
			t.Run(fmt.Sprint(tz, "/seed", seed), func(t *testing.T) {
				t.Parallel()
				loc, err := time.LoadLocation(tz)
				if err != nil {
					t.Fatal(err)
				}
				d0 := day.FromDate(2026, 4, 3)
				r := rand.New(rand.NewPCG(seed, 9))
				var evs []fev
				for range 4000 {
					props := map[string]string(nil)
					switch r.IntN(4) {
					case 0:
						props = map[string]string{"k": fmt.Sprint(r.IntN(2))}
					case 1:
						props = map[string]string{"k": "", "z": "1"}
					}
					// times on a coarse grid so that many fall on the same ms
					at := d0.Start(loc).Add(time.Duration(r.IntN(6*24*60)) * time.Minute).Add(time.Duration(r.IntN(3)) * 30 * time.Second)
					evs = append(evs, fev{[]string{"", "shop", "app", "(none)"}[r.IntN(4)], fmt.Sprint("u", r.IntN(40)), string(rune('a' + r.IntN(5))), at, props})
				}
				dts := day.Range(d0-1, d0+6)
				built := map[day.Day]bool{d0: false, d0 + 1: false, d0 + 2: true, d0 + 4: false, d0 + 5: true}
				days := funnelDays(t, f, evs, loc)
				got := computeAll(f, days, dts, built, loc)
				db := openDuck(t)
				loadFunnelEvents(t, db, f, evs, dts, built, tz)
				want := refFunnels(t, db, dts)
				for _, d := range dts {
					if _, ok := built[d]; !ok {
						delete(want, d)
					}
				}
				if diff := cmp.Diff(want, got, approx); diff != "" {
					t.Errorf("funnel_daily: Go differs from the reference SQL (-sql +go):\n%s", diff)
				}
				var converted int64
				for _, rows := range got {
					for _, r := range rows {
						if r.Step > 2 {
							converted += r.People
						}
					}
				}
				if converted == 0 {
					t.Error("nobody went past step 2: the data do not exercise the funnels")
				}
			})
		}
	}
}

// loadFunnelEvents creates events, funnel_steps, days and built in db.
// The events of days not built are left out, as the job has none.
func loadFunnelEvents(t *testing.T, db *duckref.DB, f *Funnels, evs []fev, dts []day.Day, built map[day.Day]bool, tz string) {
	t.Helper()
	ctx := context.Background()
	loc, _ := time.LoadLocation(tz)
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	var vals []string
	for _, e := range evs {
		d := day.Of(e.t.UnixMilli(), loc)
		if _, ok := built[d]; !ok {
			continue
		}
		props := "NULL::MAP(VARCHAR, VARCHAR)"
		if e.props != nil {
			var kv []string
			for k, v := range e.props {
				kv = append(kv, q(k)+": "+q(v))
			}
			props = "MAP {" + strings.Join(kv, ", ") + "}"
		}
		vals = append(vals, fmt.Sprintf("(DATE '%s', epoch_ms(%d::BIGINT)::TIMESTAMPTZ, %s, %s, %s, %s)", d, e.t.UnixMilli(), q(e.name), q(e.user), q(e.product), props))
	}
	var bs []string
	for d, p := range built {
		bs = append(bs, fmt.Sprintf("(DATE '%s', %t)", d, p))
	}
	var ds []string
	for _, d := range dts {
		ds = append(ds, fmt.Sprintf("(DATE '%s')", d))
	}
	stmts := []string{
		"SET TimeZone = 'UTC'",
		"CREATE TABLE events (dt DATE, event_time TIMESTAMPTZ, event_name VARCHAR, user_key VARCHAR, product VARCHAR, properties MAP(VARCHAR, VARCHAR))",
		"INSERT INTO events VALUES " + strings.Join(vals, ", "),
		"CREATE TABLE funnel_steps AS " + f.FunnelStepsSQL(),
		"CREATE TABLE days AS SELECT * FROM (VALUES " + strings.Join(ds, ", ") + ") AS t(dt)",
		"CREATE TABLE built AS SELECT * FROM (VALUES " + strings.Join(bs, ", ") + ") AS t(dt, provisional)",
		"SET TimeZone = " + q(tz),
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatalf("%v\n%.2000s", err, s)
		}
	}
}

// refFunnels runs funnel_daily.sql, by day.
func refFunnels(t *testing.T, db *duckref.DB, dts []day.Day) map[day.Day][]FunnelDaily {
	t.Helper()
	out := map[day.Day][]FunnelDaily{}
	for _, r := range refQuery(t, db, "funnel_daily") {
		d := mustDay(t, r["dt"])
		out[d] = append(out[d], FunnelDaily{Product: r["product"].(string), Funnel: r["funnel"].(string), Step: r["step"].(int64),
			StepName: r["step_name"].(string), People: r["people"].(int64), Conversion: r["conversion"].(float64),
			MedianSeconds: nullable[float64](r["median_seconds"]), WindowSeconds: r["window_seconds"].(int64), Provisional: r["provisional"].(bool)})
	}
	return out
}

func TestParseFunnels(t *testing.T) {
	good := `{"funnels": [{"name": "x", "steps": [{"event": "a"}, {"event": "b", "property": "p", "equals": "v"}]}]}`
	f := mustFunnels(t, good)
	if w := f.Funnels[0].WindowDuration(); w != 24*time.Hour {
		t.Errorf("default window %v, want 24h", w)
	}
	same := mustFunnels(t, `{ "funnels":[{"name":"x","window":"1440m","steps":[{"event":"a"},{"event":"b","property":"p","equals":"v"}]}] }`)
	if f.Digest() != same.Digest() {
		t.Error("the same funnels spelled otherwise have another digest")
	}
	if other := mustFunnels(t, strings.Replace(good, `"v"`, `"w"`, 1)); other.Digest() == f.Digest() {
		t.Error("other funnels have the same digest")
	}
	if (&Funnels{}).Digest() == f.Digest() || (*Funnels)(nil).Digest() != (&Funnels{}).Digest() {
		t.Error("no funnels: wrong digest")
	}
	steps := func(n int) string {
		var s []string
		for i := range n {
			s = append(s, fmt.Sprintf(`{"event": "e%d"}`, i))
		}
		return strings.Join(s, ",")
	}
	many := func(funnels, each int) string {
		var s []string
		for i := range funnels {
			s = append(s, fmt.Sprintf(`{"name": "f%d", "steps": [%s]}`, i, steps(each)))
		}
		return `{"funnels": [` + strings.Join(s, ",") + `]}`
	}
	for name, tc := range map[string]struct{ js, want string }{
		"one step":          {`{"funnels": [{"name": "x", "steps": [{"event": "a"}]}]}`, `funnel "x": 1 steps, want 2 to 10`},
		"eleven steps":      {many(1, 11), `funnel "f0": 11 steps, want 2 to 10`},
		"65 steps in all":   {many(7, 10), `70 steps in all, at most 64`},
		"17 funnels":        {many(17, 2), `17 funnels, at most 16`},
		"twice":             {`{"funnels": [{"name": "x", "steps": [{"event": "a"}, {"event": "b"}]}, {"name": "x", "steps": [{"event": "a"}, {"event": "b"}]}]}`, `funnel "x" is defined twice`},
		"no name":           {`{"funnels": [{"steps": [{"event": "a"}, {"event": "b"}]}]}`, `funnel 1: name ""`},
		"no event":          {`{"funnels": [{"name": "x", "steps": [{"event": "a"}, {"property": "b"}]}]}`, `funnel "x" step 2: no event name`},
		"equals alone":      {`{"funnels": [{"name": "x", "steps": [{"event": "a"}, {"event": "b", "equals": "v"}]}]}`, `"equals" without "property"`},
		"window too long":   {`{"funnels": [{"name": "x", "window": "169h", "steps": [{"event": "a"}, {"event": "b"}]}]}`, `window "169h"`},
		"window not a time": {`{"funnels": [{"name": "x", "window": "a day", "steps": [{"event": "a"}, {"event": "b"}]}]}`, `window "a day"`},
		"a typo":            {`{"funnels": [{"name": "x", "stpes": []}]}`, `unknown field "stpes"`},
		"not JSON":          {`funnels:`, `funnels: invalid character`},
	} {
		_, err := ParseFunnels([]byte(tc.js))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
}

// FuzzDecodeFunnelEvents: any bytes decode to an error or to funnel events
// that encode back to the same events, never a panic.
func FuzzDecodeFunnelEvents(f *testing.F) {
	fe := FunnelEventsOf(&Funnels{Funnels: []Funnel{{Name: "x", Steps: []FunnelStep{{Event: "a"}, {Event: "b"}}}}}, func() *frame.Events {
		ev := frame.New(nil, 0)
		for i, n := range []string{"a", "b", "a", "c"} {
			var r frame.Row
			r.EventTime = int64(i) * 1000
			r.Str[frame.EventName], r.Str[frame.UserKey] = n, fmt.Sprint("u", i%2)
			_ = ev.Append(&r)
		}
		return ev
	}())
	f.Add(fe.Encode())
	f.Add([]byte(funnelEventsMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeFunnelEvents(b)
		if err != nil {
			return
		}
		again, err := DecodeFunnelEvents(got.Encode())
		if err != nil {
			t.Fatalf("re-encoded events do not decode: %v", err)
		}
		if diff := cmp.Diff(got, again); diff != "" {
			t.Fatalf("decode(encode(x)) != x:\n%s", diff)
		}
	})
}
