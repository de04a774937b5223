package catalog_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/catalog"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// writeRun writes a run folder of table's day d: one data file and, if
// committed, its manifest, all with modification time at.
func (e *env) writeRun(t *testing.T, table string, d day.Day, r string, committed bool, at time.Time) {
	t.Helper()
	ctx := context.Background()
	prefix := publish.RunPrefix(table, d, r)
	keys := []string{prefix + "part-00000.zstd.parquet"}
	must(t, e.dir.Put(ctx, keys[0], []byte("PAR1 data PAR1")))
	if committed {
		must(t, publish.Commit(ctx, e.dir, &publish.Manifest{Table: table, Day: d.String(), Run: r}))
		keys = append(keys, prefix+publish.ManifestName)
	}
	for _, k := range keys {
		must(t, os.Chtimes(filepath.Join(e.dir.Root(), filepath.FromSlash(k)), at, at))
	}
}

func (e *env) runKey(table string, d day.Day, r string) string { return publish.RunPrefix(table, d, r) }

func (e *env) register(t *testing.T, table string, d day.Day, r string) {
	t.Helper()
	must(t, e.cat.SetPartitions(context.Background(), table, []catalog.Partition{{DT: d.String(), Location: catalog.RunLocation(e.root, table, d, r)}}))
}

func TestCollectable(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		const table = "events"
		must(t, e.cat.EnsureTables(ctx, e.defs()))
		T := t0
		h := time.Hour
		d0, d1, d2 := dayN(0), dayN(1), dayN(2)

		// d0: debris run0, run1 registered 10 h ago, then run2 published and
		// registered 1 h ago; run3 is a newer build without a manifest.
		e.writeRun(t, table, d0, run(0), false, T.Add(-20*h))
		e.writeRun(t, table, d0, run(1), true, T.Add(-10*h))
		e.clk.Set(T.Add(-10 * h))
		e.register(t, table, d0, run(1))
		e.writeRun(t, table, d0, run(2), true, T.Add(-1*h))
		e.clk.Set(T.Add(-1 * h))
		e.register(t, table, d0, run(2))
		e.writeRun(t, table, d0, run(3), false, T.Add(-8*h))
		// d1: run1 registered; run2 published but its registration failed.
		e.writeRun(t, table, d1, run(1), true, T.Add(-30*h))
		e.clk.Set(T.Add(-30 * h))
		e.register(t, table, d1, run(1))
		e.writeRun(t, table, d1, run(2), true, T.Add(-20*h))
		// d2: never registered (no catalog); two committed runs.
		e.writeRun(t, table, d2, run(1), true, T.Add(-30*h))
		e.writeRun(t, table, d2, run(2), true, T.Add(-20*h))
		// Another table's runs are not considered.
		e.writeRun(t, "user_daily", d0, run(1), true, T.Add(-30*h))
		e.writeRun(t, "user_daily", d0, run(2), true, T.Add(-30*h))

		parts, err := e.cat.Partitions(ctx, table)
		must(t, err)
		got, err := catalog.Collectable(ctx, e.st, table, parts, 6*h, T)
		must(t, err)
		// d0 switched 1 h ago: nothing of it yet.
		want := []string{e.runKey(table, d2, run(1))}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("collectable at T (-want +got):\n%s", d)
		}
		got, err = catalog.Collectable(ctx, e.st, table, parts, 6*h, T.Add(5*h-time.Minute))
		must(t, err)
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("collectable at T+4h59 (-want +got):\n%s", d)
		}
		// Grace over since the switch: the superseded run1 and the debris
		// run0 and run3 (no manifest, older than the grace period) go.
		got, err = catalog.Collectable(ctx, e.st, table, parts, 6*h, T.Add(5*h))
		must(t, err)
		want = []string{e.runKey(table, d0, run(0)), e.runKey(table, d0, run(1)), e.runKey(table, d0, run(3)), e.runKey(table, d2, run(1))}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("collectable at T+5h (-want +got):\n%s", d)
		}
		// No grace: the same (d1's runs are both needed).
		got, err = catalog.Collectable(ctx, e.st, table, parts, 0, T)
		must(t, err)
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("collectable with no grace (-want +got):\n%s", d)
		}

		// Delete them: data first, manifests last; the rest stays.
		rec := &recordingStore{Dir: e.dir}
		must(t, catalog.DeleteRuns(ctx, rec, got))
		for _, k := range got {
			objs, err := e.dir.List(ctx, k)
			must(t, err)
			if len(objs) != 0 {
				t.Errorf("%s not deleted: %v", k, objs)
			}
		}
		if last := rec.deleted[len(rec.deleted)-1]; !strings.HasSuffix(last, publish.ManifestName) {
			t.Errorf("last delete %s, want a manifest", last)
		}
		for i, k := range rec.deleted {
			if strings.HasSuffix(k, publish.ManifestName) {
				run := strings.TrimSuffix(k, publish.ManifestName)
				for _, later := range rec.deleted[i+1:] {
					if strings.HasPrefix(later, run) {
						t.Errorf("%s deleted after its manifest", later)
					}
				}
			}
		}
		for _, keep := range []string{e.runKey(table, d0, run(2)), e.runKey(table, d1, run(1)),
			e.runKey(table, d1, run(2)), e.runKey(table, d2, run(2)), e.runKey("user_daily", d0, run(1))} {
			objs, err := e.dir.List(ctx, keep)
			must(t, err)
			if len(objs) == 0 {
				t.Errorf("%s deleted", keep)
			}
		}
		// publish.Current still finds every day's current run.
		for _, d := range []day.Day{d0, d1, d2} {
			if _, err := publish.Current(ctx, e.dir, table, d); err != nil {
				t.Errorf("%s: %v", d, err)
			}
		}
	})
}

func TestCollectableUnknownSince(t *testing.T) {
	e := newGlue(t)
	ctx := context.Background()
	h := time.Hour
	d := dayN(0)
	e.writeRun(t, "events", d, run(1), true, t0.Add(-30*h))
	e.writeRun(t, "events", d, run(2), true, t0.Add(-2*h))
	// Registered by something else: no Since. The referenced run's age
	// stands in for it.
	parts := map[string]catalog.Partition{d.String(): {DT: d.String(), Location: catalog.RunLocation(e.root, "events", d, run(2))}}
	got, err := catalog.Collectable(ctx, e.st, "events", parts, 6*h, t0)
	must(t, err)
	if len(got) != 0 {
		t.Errorf("collectable %v, want none (the switch may be 2 h old)", got)
	}
	got, err = catalog.Collectable(ctx, e.st, "events", parts, 6*h, t0.Add(4*h))
	must(t, err)
	if d := cmp.Diff([]string{e.runKey("events", d, run(1))}, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	// A partition pointing at a run that is not in the store: keep everything.
	parts[d.String()] = catalog.Partition{DT: d.String(), Location: catalog.RunLocation(e.root, "events", d, run(9))}
	got, err = catalog.Collectable(ctx, e.st, "events", parts, 6*h, t0.Add(100*h))
	must(t, err)
	if len(got) != 0 {
		t.Errorf("collectable %v, want none", got)
	}
	if err := catalog.DeleteRuns(ctx, e.st, []string{"raw/2026/"}); err == nil {
		t.Error("DeleteRuns outside curated/: no error")
	}
}

type recordingStore struct {
	*store.Dir
	mu      sync.Mutex
	deleted []string
}

func (r *recordingStore) Delete(ctx context.Context, key string) error {
	r.mu.Lock()
	r.deleted = append(r.deleted, key)
	r.mu.Unlock()
	return r.Dir.Delete(ctx, key)
}

func TestRegistrar(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		for i := range 3 {
			e.writeRun(t, "events", dayN(i), run(1), true, t0)
			e.writeRun(t, "user_daily", dayN(i), run(1), true, t0)
		}
		e.writeRun(t, "events", dayN(3), run(1), false, t0) // not committed
		r := &catalog.Registrar{Catalog: e.cat, Store: e.st, Tables: append(e.defs(), e.rawDef())}
		var regs []catalog.Registration
		for i := range 3 {
			regs = append(regs, catalog.NewRegistration(e.st, "events", dayN(i), run(1)), catalog.NewRegistration(e.st, "user_daily", dayN(i), run(1)))
		}
		must(t, r.Register(ctx, regs))
		for _, tb := range []string{"events", "user_daily"} {
			ps, err := e.cat.Partitions(ctx, tb)
			must(t, err)
			if len(ps) != 3 || ps[dayN(2).String()].Location != catalog.RunLocation(e.root, tb, dayN(2), run(1)) {
				t.Errorf("%s partitions %v", tb, ps)
			}
		}
		if _, err := e.cat.Table(ctx, catalog.RawTable); err != nil {
			t.Errorf("raw table: %v", err)
		}
		// An uncommitted run is refused, and not registered.
		err := r.Register(ctx, []catalog.Registration{catalog.NewRegistration(e.st, "events", dayN(3), run(1))})
		if err == nil || !strings.Contains(err.Error(), "has no _manifest.json") {
			t.Errorf("uncommitted run: %v", err)
		}
		ps, _ := e.cat.Partitions(ctx, "events")
		if _, ok := ps[dayN(3).String()]; ok {
			t.Error("uncommitted run registered")
		}
		// A location outside the store is refused.
		err = r.Register(ctx, []catalog.Registration{{Table: "events", Day: dayN(4), Location: "s3://other/curated/events/dt=x/run=y/"}})
		if err == nil || !strings.Contains(err.Error(), "not inside the store") {
			t.Errorf("foreign location: %v", err)
		}
		// Unknown or projected tables are refused.
		for _, tb := range []string{"nope", catalog.RawTable} {
			if err := r.Register(ctx, []catalog.Registration{{Table: tb, Day: dayN(0), Location: e.root + "/x/"}}); err == nil {
				t.Errorf("registering %s: no error", tb)
			}
		}
		if e.srv != nil {
			if n := e.srv.Count("GetDatabase"); n != 1 {
				t.Errorf("tables ensured %d times, want once per registrar", n)
			}
		}
	})
}

func TestRegistrarDrift(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		eng := e.def("engagement_daily")
		old := eng
		old.Columns = append(append([]catalog.Column{}, eng.Columns...), catalog.Column{Name: "legacy", Type: "string"})
		must(t, e.cat.EnsureTables(ctx, []catalog.TableDef{old}))
		e.writeRun(t, "events", dayN(0), run(1), true, t0)
		e.writeRun(t, "engagement_daily", dayN(0), run(1), true, t0)
		r := &catalog.Registrar{Catalog: e.cat, Store: e.st, Tables: e.defs()}
		err := r.Register(ctx, []catalog.Registration{
			catalog.NewRegistration(e.st, "events", dayN(0), run(1)),
			catalog.NewRegistration(e.st, "engagement_daily", dayN(0), run(1)),
		})
		var de *catalog.DriftError
		if !errors.As(err, &de) || de.Table != "engagement_daily" || !strings.Contains(err.Error(), "legacy") {
			t.Fatalf("Register: %v, want a DriftError for engagement_daily", err)
		}
		ps, err := e.cat.Partitions(ctx, "events")
		must(t, err)
		if len(ps) != 1 {
			t.Errorf("events not registered beside the drifted table: %v", ps)
		}
		ps, err = e.cat.Partitions(ctx, "engagement_daily")
		must(t, err)
		if len(ps) != 0 {
			t.Errorf("drifted table registered: %v", ps)
		}
		if got := slices.Collect(func(yield func(string) bool) {
			for k := range r.Drift() {
				yield(k)
			}
		}); !slices.Equal(got, []string{"engagement_daily"}) {
			t.Errorf("Drift() = %v", got)
		}
	})
}

// TestEndToEnd publishes runs, registers them, reruns, and collects the
// superseded runs after the grace period, with an injected clock.
func TestEndToEnd(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		h := time.Hour
		days := []day.Day{dayN(0), dayN(1), dayN(2)}
		publishAll := func(r string, at time.Time) {
			var regs []catalog.Registration
			for _, d := range days {
				for _, tb := range []string{"events", "user_daily"} {
					e.writeRun(t, tb, d, r, true, at)
					regs = append(regs, catalog.NewRegistration(e.st, tb, d, r))
				}
			}
			e.clk.Set(at)
			reg := &catalog.Registrar{Catalog: e.cat, Store: e.st, Tables: e.defs()}
			must(t, reg.Register(ctx, regs))
		}
		gc := func(now time.Time) []string {
			var all []string
			for _, tb := range []string{"events", "user_daily"} {
				ps, err := e.cat.Partitions(ctx, tb)
				must(t, err)
				runs, err := catalog.Collectable(ctx, e.st, tb, ps, 6*h, now)
				must(t, err)
				must(t, catalog.DeleteRuns(ctx, e.st, runs))
				all = append(all, runs...)
			}
			return all
		}
		publishAll(run(1), t0)
		if got := gc(t0.Add(24 * h)); len(got) != 0 {
			t.Errorf("collected %v after the first run", got)
		}
		publishAll(run(2), t0.Add(24*h))
		if got := gc(t0.Add(29 * h)); len(got) != 0 {
			t.Errorf("collected %v within the grace period", got)
		}
		if got := gc(t0.Add(30 * h)); len(got) != 6 {
			t.Errorf("collected %v after the grace period, want the 6 old runs", got)
		}
		for _, tb := range []string{"events", "user_daily"} {
			ps, err := e.cat.Partitions(ctx, tb)
			must(t, err)
			for _, d := range days {
				p := ps[d.String()]
				k, err := catalog.KeyOf(e.st, p.Location)
				must(t, err)
				if _, err := e.st.Stat(ctx, k+publish.ManifestName); err != nil {
					t.Errorf("%s %s points at %s: %v", tb, d, p.Location, err)
				}
				objs, err := e.dir.List(ctx, publish.PartitionPrefix(tb, d))
				must(t, err)
				if len(objs) != 2 {
					t.Errorf("%s %s holds %d objects, want one run", tb, d, len(objs))
				}
			}
		}
	})
}
