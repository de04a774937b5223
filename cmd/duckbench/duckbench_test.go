package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// TestRun runs both events modes on a small nasty store and checks they
// write the same, non-empty outputs. It checks plumbing, not numbers: the
// reference SQL itself is tested in internal/job.
func TestRun(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	st, err := store.OpenDir(root, true)
	if err != nil {
		t.Fatal(err)
	}
	d1 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	cfg := gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 1), EventsPerDay: 3000, Seed: 3})
	rep, err := gen.Generate(ctx, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	from := day.FromDate(d1.Date())
	listed, err := ListWindow(root, from, from+1)
	if err != nil {
		t.Fatal(err)
	}
	// The window holds every object but the zero-byte one.
	if want := len(rep.Objects) + len(rep.BadObjects) - 1; len(listed) != want {
		t.Errorf("listed %d objects, want %d", len(listed), want)
	}
	var rows []map[string]int64
	for _, mode := range []string{EventsTable, EventsFile} {
		out := filepath.Join(t.TempDir(), mode)
		res, err := Run(ctx, Config{Store: root, From: from, To: from + 1, TZ: "Pacific/Auckland", Keys: rep.Objects, Out: out, Events: mode})
		if err != nil {
			t.Fatal(err)
		}
		if res.EventsRows < 3000 {
			t.Errorf("%s: %d events", mode, res.EventsRows)
		}
		m := map[string]int64{}
		for _, s := range res.Steps {
			if s.Rows > 0 {
				m[s.Name] = s.Rows
			}
		}
		for _, name := range append([]string{"events.parquet"}, Rollups...) {
			if m[name] == 0 {
				t.Errorf("%s: step %s wrote no rows (%v)", mode, name, res.Steps)
			}
			if _, err := os.Stat(filepath.Join(out, strings.TrimSuffix(name, ".parquet")+".parquet")); err != nil {
				t.Error(err)
			}
		}
		rows = append(rows, m)
	}
	if len(rows) == 2 && len(rows[0]) > 0 {
		for k, v := range rows[0] {
			if rows[1][k] != v {
				t.Errorf("%s: %d rows in table mode, %d in file mode", k, v, rows[1][k])
			}
		}
	}
}
