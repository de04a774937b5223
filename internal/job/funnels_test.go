package job

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// testFunnels are funnels over eventgen's event names: one of four steps
// over a day, one with a property step and a short window.
const testFunnels = `{"funnels": [
	{"name": "checkout", "steps": [{"event": "view_item"}, {"event": "add_to_cart"}, {"event": "begin_checkout"}, {"event": "purchase"}]},
	{"name": "product_to_cart", "window": "30m", "steps": [{"event": "screen_view", "property": "screen", "equals": "product"}, {"event": "add_to_cart"}]}
]}`

// otherFunnels replace testFunnels in the tests of a change.
const otherFunnels = `{"funnels": [
	{"name": "search", "window": "2h", "steps": [{"event": "search"}, {"event": "view_item"}, {"event": "purchase"}]}
]}`

func mustParseFunnels(t *testing.T, js string) *rollups.Funnels {
	t.Helper()
	f, err := rollups.ParseFunnels([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func putFunnels(t *testing.T, st store.Store, js string) {
	t.Helper()
	if err := st.Put(context.Background(), rollups.FunnelsKey, []byte(js)); err != nil {
		t.Fatal(err)
	}
}

// funnelSnapshot is Snapshot's funnel_daily partitions.
func funnelSnapshot(t *testing.T, st store.Store, from, to day.Day) map[string]string {
	t.Helper()
	all, err := Snapshot(context.Background(), st, from, to)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range all {
		if strings.HasPrefix(k, FunnelTable+"/") {
			out[k] = v
		}
	}
	return out
}

// TestFunnelsChange builds days with some funnels, then changes them: the
// next run rebuilds no day, makes the days' funnel events again from their
// events files, and leaves funnel_daily equal to a clean build with the new
// funnels. A funnels.json that is not valid leaves funnel_daily as it was
// and says why; removing it empties funnel_daily.
func TestFunnelsChange(t *testing.T) {
	ctx := context.Background()
	d1 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	cfgGen := gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 3), EventsPerDay: 1500, Seed: 5})
	first, last := day.FromDate(d1.Date()), day.FromDate(d1.Date())+3
	rules := compact.DefaultRules(time.UTC)
	now := func() time.Time { return d1.AddDate(0, 1, 0) }
	build := func(st store.Store) *Summary {
		t.Helper()
		sum, err := Run(ctx, Config{Store: st, From: first, To: last, Rules: rules, Parallel: 2, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	st := store.NewMem()
	if _, err := gen.Generate(ctx, st, cfgGen); err != nil {
		t.Fatal(err)
	}
	putFunnels(t, st, testFunnels)
	sum := build(st)
	if sum.Windowed.FunnelDaysRemade != 0 {
		t.Errorf("a first build made %d days' funnel events again, want 0 (the day builds wrote them)", sum.Windowed.FunnelDaysRemade)
	}
	for d := first; d <= last; d++ {
		m, err := publish.Current(ctx, st, "events", d)
		if err != nil {
			t.Fatal(err)
		}
		f := mustParseFunnels(t, testFunnels)
		if _, err := st.Get(ctx, funnelEventsKey(m, f.Digest())); err != nil {
			t.Errorf("day %s: no funnel events beside its events: %v", d, err)
		}
	}
	if rows := readRows[rollups.FunnelDaily](t, st, FunnelTable, first); len(rows) == 0 {
		t.Fatal("funnel_daily of the first day is empty")
	}

	clean := func(js string) map[string]string {
		c := store.NewMem()
		if _, err := gen.Generate(ctx, c, cfgGen); err != nil {
			t.Fatal(err)
		}
		if js != "" {
			putFunnels(t, c, js)
		}
		build(c)
		return funnelSnapshot(t, c, first-1, last+1)
	}

	putFunnels(t, st, otherFunnels)
	sum = build(st)
	for _, d := range sum.Days {
		if !d.Skipped {
			t.Errorf("day %s rebuilt after the funnels changed (%s)", d.Day, d.Why)
		}
	}
	if got, want := sum.Windowed.FunnelDaysRemade, int(last-first+1); got != want {
		t.Errorf("funnel events made again for %d days, want %d", got, want)
	}
	if len(sum.Windowed.Restatements) != 0 {
		t.Errorf("new funnels recorded as restatements: %v", sum.Windowed.Restatements)
	}
	if diff := cmp.Diff(clean(otherFunnels), funnelSnapshot(t, st, first-1, last+1)); diff != "" {
		t.Errorf("funnel_daily after the change differs from a clean build (-clean +changed):\n%s", diff)
	}
	// Made once: the next run reads them back.
	if sum = build(st); sum.Windowed.FunnelDaysRemade != 0 {
		t.Errorf("funnel events made again on a run with nothing new: %d days", sum.Windowed.FunnelDaysRemade)
	}

	before := funnelSnapshot(t, st, first-1, last+1)
	putFunnels(t, st, `{"funnels": [{"name": "x", "steps": [{"event": "a"}]}]}`)
	sum = build(st)
	if !strings.Contains(sum.Windowed.FunnelsError, `funnel "x": 1 steps`) || !sum.Windowed.FunnelsFileBad {
		t.Errorf("FunnelsError = %q, want the file's problem", sum.Windowed.FunnelsError)
	}
	if diff := cmp.Diff(before, funnelSnapshot(t, st, first-1, last+1)); diff != "" {
		t.Errorf("a bad funnels.json changed funnel_daily:\n%s", diff)
	}

	if err := st.Delete(ctx, rollups.FunnelsKey); err != nil {
		t.Fatal(err)
	}
	build(st)
	for d := first; d <= last; d++ {
		if rows := readRows[rollups.FunnelDaily](t, st, FunnelTable, d); len(rows) != 0 {
			t.Errorf("%s: %d funnel rows without funnels", d, len(rows))
		}
	}
	if diff := cmp.Diff(clean(""), funnelSnapshot(t, st, first-1, last+1)); diff != "" {
		t.Errorf("funnel_daily without funnels differs from a clean build (-clean +ours):\n%s", diff)
	}
}

// TestFunnelsNeverBlockTheOthers: when funnel_daily cannot be brought up
// to date (an events file of a day gone, or the stage's time running
// out), the run still succeeds, every other windowed table is published,
// the summary says what was left, and the next run finishes it.
func TestFunnelsNeverBlockTheOthers(t *testing.T) {
	ctx := context.Background()
	d1 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	first, last := day.FromDate(d1.Date()), day.FromDate(d1.Date())+2
	rules := compact.DefaultRules(time.UTC)
	now := func() time.Time { return d1.AddDate(0, 1, 0) }
	st := store.NewMem()
	if _, err := gen.Generate(ctx, st, gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 2), EventsPerDay: 800, Seed: 6})); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Store: st, From: first, To: last, Rules: rules, Parallel: 2, Now: now}
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	// The funnels change, and the first day's events file is gone: its
	// funnel events cannot be made.
	putFunnels(t, st, testFunnels)
	m, err := publish.Current(ctx, st, "events", first)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := st.Get(ctx, m.Files[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, m.Files[0].Key); err != nil {
		t.Fatal(err)
	}
	sum, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("the run failed with funnel_daily stuck: %v", err)
	}
	if !strings.Contains(sum.Windowed.FunnelsError, m.Files[0].Key) || sum.Windowed.FunnelsFileBad {
		t.Errorf("FunnelsError = %q (file bad: %t), want the missing events file", sum.Windowed.FunnelsError, sum.Windowed.FunnelsFileBad)
	}
	if n, err := publish.Current(ctx, st, "active_users_daily", last); err != nil || n.Rows == 0 {
		t.Errorf("active_users_daily of %s: %v", last, err)
	}
	if err := st.Put(ctx, m.Files[0].Key, saved); err != nil {
		t.Fatal(err)
	}
	// A stage with less time left than it keeps for itself leaves
	// funnel_daily to the next run.
	short, cancel := context.WithTimeout(ctx, funnelReserve/2)
	defer cancel()
	if sum, err = Run(short, cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sum.Windowed.FunnelsError, "time ran out") {
		t.Errorf("FunnelsError = %q, want the time running out", sum.Windowed.FunnelsError)
	}
	if sum, err = Run(ctx, cfg); err != nil || sum.Windowed.FunnelsError != "" {
		t.Fatalf("the next run: %v, %q", err, sum.Windowed.FunnelsError)
	}
	for d := first; d <= last; d++ {
		if rows := readRows[rollups.FunnelDaily](t, st, FunnelTable, d); len(rows) == 0 {
			t.Errorf("%s: no funnel rows after the next run", d)
		}
	}
}
