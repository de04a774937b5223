package catalog_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/littlewarehouse/warehouse/internal/catalog"
	"github.com/littlewarehouse/warehouse/internal/day"
)

// TestRegisterSupersededRun: registering a run that another process has
// superseded since (issue 29: "has no _manifest.json: not a committed run"
// in 6 of 16 overlapping runs) registers the partition's current run
// instead, says so in one log line, and is not an error, whether the old
// run is still there (a grace period) or already deleted.
func TestRegisterSupersededRun(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		d0, d1 := dayN(0), dayN(1)
		for _, d := range []day.Day{d0, d1} {
			e.writeRun(t, "events", d, run(1), true, t0)
			e.writeRun(t, "events", d, run(2), true, t0)
		}
		// d1's old run is gone: the other process's cleanup deleted it.
		objs, err := e.dir.List(ctx, e.runKey("events", d1, run(1)))
		must(t, err)
		for _, o := range objs {
			must(t, e.dir.Delete(ctx, o.Key))
		}
		var log bytes.Buffer
		r := &catalog.Registrar{Catalog: e.cat, Store: e.st, Tables: e.defs(), Log: slog.New(slog.NewTextHandler(&log, nil))}
		err = r.Register(ctx, []catalog.Registration{
			catalog.NewRegistration(e.st, "events", d0, run(1)),
			catalog.NewRegistration(e.st, "events", d1, run(1)),
		})
		if err != nil {
			t.Fatalf("Register of superseded runs: %v", err)
		}
		ps, err := e.cat.Partitions(ctx, "events")
		must(t, err)
		for _, d := range []day.Day{d0, d1} {
			if got, want := ps[d.String()].Location, catalog.RunLocation(e.root, "events", d, run(2)); got != want {
				t.Errorf("%s points at %s; want the current run %s", d, got, want)
			}
		}
		if n := strings.Count(log.String(), "\n"); n != 1 || !strings.Contains(log.String(), "registered their current runs instead") ||
			!strings.Contains(log.String(), "events "+d1.String()+": "+run(1)+" -> "+run(2)) {
			t.Errorf("log (%d lines):\n%s", n, log.String())
		}
	})
}

// racingCatalog is a catalog whose first SetPartitions lets another process
// commit and register a newer run of the partition first: the call then
// writes the older run over it.
type racingCatalog struct {
	catalog.Catalog
	once  sync.Once
	after func()
	sets  int
}

func (c *racingCatalog) SetPartitions(ctx context.Context, table string, parts []catalog.Partition) error {
	c.sets++
	c.once.Do(c.after)
	return c.Catalog.SetPartitions(ctx, table, parts)
}

// TestRegisterRepublishedMeanwhile: a partition that another process
// republishes (and registers) while Register sets it ends at the later
// run, not at whichever process wrote the catalog last.
func TestRegisterRepublishedMeanwhile(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		d0 := dayN(0)
		e.writeRun(t, "events", d0, run(1), true, t0)
		cat := &racingCatalog{Catalog: e.cat}
		cat.after = func() {
			// The other process: commits run 2 and registers it between
			// this one's check and its write.
			e.writeRun(t, "events", d0, run(2), true, t0)
			e.register(t, "events", d0, run(2))
		}
		r := &catalog.Registrar{Catalog: cat, Store: e.st, Tables: e.defs()}
		must(t, r.Register(ctx, []catalog.Registration{catalog.NewRegistration(e.st, "events", d0, run(1))}))
		ps, err := e.cat.Partitions(ctx, "events")
		must(t, err)
		if got, want := ps[d0.String()].Location, catalog.RunLocation(e.root, "events", d0, run(2)); got != want {
			t.Errorf("points at %s; want the later run %s", got, want)
		}
		if cat.sets != 2 {
			t.Errorf("%d SetPartitions; want 2 (the run asked, then the later one)", cat.sets)
		}
		// With nothing republished, one SetPartitions.
		cat.sets = 0
		must(t, r.Register(ctx, []catalog.Registration{catalog.NewRegistration(e.st, "events", d0, run(2))}))
		if cat.sets != 1 {
			t.Errorf("%d SetPartitions when nothing changed; want 1", cat.sets)
		}
	})
}
