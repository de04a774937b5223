package catalog_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/catalog"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/store"
)

func TestLocalFile(t *testing.T) {
	e := newLocal(t)
	ctx := context.Background()
	must(t, e.cat.EnsureTables(ctx, append(e.defs(), e.rawDef())))
	must(t, e.cat.SetPartitions(ctx, "events", e.parts("events", 2, 1)))
	b, err := e.dir.Get(ctx, "catalog/events.json")
	must(t, err)
	var f struct {
		Version    int
		Table      map[string]any
		Partitions map[string]map[string]any
	}
	must(t, json.Unmarshal(b, &f))
	if f.Version != 1 || f.Table["name"] != "events" || f.Table["serde"] != catalog.ParquetSerDe {
		t.Errorf("catalog/events.json: %s", b)
	}
	want := map[string]map[string]any{
		"2026-01-01": {"location": e.root + "/curated/events/dt=2026-01-01/run=" + run(1) + "/", "since": "2026-11-24T03:00:00Z"},
		"2026-01-02": {"location": e.root + "/curated/events/dt=2026-01-02/run=" + run(1) + "/", "since": "2026-11-24T03:00:00Z"},
	}
	if d := cmp.Diff(want, f.Partitions); d != "" {
		t.Errorf("partitions in the file (-want +got):\n%s", d)
	}
	defs, err := e.cat.(*catalog.Local).Tables(ctx)
	must(t, err)
	if len(defs) != len(e.defs())+1 {
		t.Errorf("Tables: %d definitions", len(defs))
	}
	// A fresh catalog over the same store reads the same state.
	again := catalog.NewLocal(e.dir, nil)
	ps, err := again.Partitions(ctx, "events")
	must(t, err)
	if len(ps) != 2 || ps["2026-01-02"].DT != "2026-01-02" {
		t.Errorf("partitions read back: %v", ps)
	}
}

// TestLocalConcurrent: two catalogs over one store (two processes) and
// several goroutines each register their own days of one table; none is lost.
func TestLocalConcurrent(t *testing.T) {
	e := newLocal(t)
	ctx := context.Background()
	must(t, e.cat.EnsureTables(ctx, e.defs()))
	cats := []catalog.Catalog{e.cat, catalog.NewLocal(e.dir, e.clk.Now)}
	all := e.parts("events", 40, 1)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < len(all); i += 8 {
				if err := cats[w%2].SetPartitions(ctx, "events", all[i:i+1]); err != nil {
					errs <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ps, err := e.cat.Partitions(ctx, "events")
	must(t, err)
	if len(ps) != len(all) {
		t.Errorf("%d partitions, want %d", len(ps), len(all))
	}
}

// TestLocalTakesOverADeadHoldersLock: a catalog lock left by a killed
// process of this host (a lease whose expiry is an hour away) does not hold
// up the next change: the lease is taken over at once. Before, the next run
// waited, silently, for the lease to expire.
func TestLocalTakesOverADeadHoldersLock(t *testing.T) {
	e := newLocal(t)
	ctx := context.Background()
	must(t, e.cat.EnsureTables(ctx, e.defs()))
	cmd := exec.Command("true")
	must(t, cmd.Run())
	host, err := os.Hostname()
	must(t, err)
	now := time.Now().UTC()
	left, err := json.Marshal(map[string]any{
		"name":        "catalog/events",
		"holder":      fmt.Sprintf("run catalog on host %s, pid %d", host, cmd.Process.Pid),
		"token":       "0123456789abcdef",
		"seq":         0,
		"acquired_at": now,
		"renewed_at":  now,
		"expires_at":  now.Add(time.Hour),
	})
	must(t, err)
	must(t, e.dir.Put(ctx, lease.Key("catalog/events"), left))
	// Without the takeover this would wait two minutes and fail; the
	// deadline only keeps a regression from hanging the test that long.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	must(t, e.cat.SetPartitions(ctx, "events", e.parts("events", 1, 1)))
	ps, err := e.cat.Partitions(ctx, "events")
	must(t, err)
	if len(ps) != 1 {
		t.Errorf("partitions: %v", ps)
	}
	if _, err := e.dir.Stat(ctx, lease.Key("catalog/events")); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("lease after the change: %v; want it released", err)
	}
}
