package catalog_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/catalog"
	"github.com/littlewarehouse/warehouse/internal/catalog/gluetest"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

var t0 = time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// s3Named is a local directory that names itself as an S3 location, so that
// Glue (which wants s3:// locations) can be tested with a store whose files
// and times the test controls.
type s3Named struct{ *store.Dir }

func (s3Named) String() string { return "s3://test-bucket/wh" }

// env is one catalog under test, with the store its runs live in.
type env struct {
	name   string
	cat    catalog.Catalog
	st     store.Store
	dir    *store.Dir
	root   string
	clk    *clock
	srv    *gluetest.Server // Glue only
	sleeps *[]time.Duration // Glue only: backoff pauses asked for
}

func newLocal(t *testing.T) *env {
	t.Helper()
	dir, err := store.OpenDir(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: t0}
	return &env{name: "local", cat: catalog.NewLocal(dir, clk.Now), st: dir, dir: dir, root: catalog.Root(dir), clk: clk}
}

func newGlue(t *testing.T) *env {
	t.Helper()
	dir, err := store.OpenDir(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	srv := gluetest.NewT(t)
	clk := &clock{t: t0}
	var mu sync.Mutex
	sleeps := &[]time.Duration{}
	cat := catalog.NewGlue(srv.Client(), catalog.GlueOptions{Database: "warehouse", Now: clk.Now,
		Sleep: func(_ context.Context, d time.Duration) error {
			mu.Lock()
			defer mu.Unlock()
			*sleeps = append(*sleeps, d)
			return nil
		}})
	st := s3Named{dir}
	return &env{name: "glue", cat: cat, st: st, dir: dir, root: catalog.Root(st), clk: clk, srv: srv, sleeps: sleeps}
}

// forEach runs f against each implementation: the conformance suite.
func forEach(t *testing.T, f func(t *testing.T, e *env)) {
	for _, mk := range []func(*testing.T) *env{newLocal, newGlue} {
		e := mk(t)
		t.Run(e.name, func(t *testing.T) { f(t, e) })
	}
}

// allTables lists every curated table, as the job registers them.
func allTables() []rollups.Table { return rollups.All() }

func (e *env) defs() []catalog.TableDef { return catalog.CuratedDefs(e.root, allTables()) }

func (e *env) def(name string) catalog.TableDef {
	for _, d := range e.defs() {
		if d.Name == name {
			return d
		}
	}
	panic("no table " + name)
}

func (e *env) rawDef() catalog.TableDef {
	return catalog.RawTableDef(e.root+"/raw/", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
}

func dayN(i int) day.Day { return day.FromDate(2026, 1, 1) + day.Day(i) }

func run(i int) string { return fmt.Sprintf("01JRUN%020d", i) }

// parts returns n partitions of table from 2026-01-01 on, at run r.
func (e *env) parts(table string, n, r int) []catalog.Partition {
	var ps []catalog.Partition
	for i := range n {
		ps = append(ps, catalog.Partition{DT: dayN(i).String(), Location: catalog.RunLocation(e.root, table, dayN(i), run(r))})
	}
	return ps
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
