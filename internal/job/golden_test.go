package job

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/duckref"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func mustDay(t *testing.T, s string) day.Day {
	t.Helper()
	d, err := day.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
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

// tableNames lists the tables that are a function of the raw objects (not
// the restatements history, which a clean build leaves empty).
func tableNames() []string {
	var names []string
	for _, t := range rollups.All() {
		if t.History {
			continue
		}
		names = append(names, t.Name)
	}
	return names
}

// TestGolden runs the job on a dozen hand-written events and compares every
// table with the expected rows in testdata/golden/<table>.json (refresh with
// go test ./internal/job -update, then review the diff).
func TestGolden(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	loadFixture(t, st, "../../testdata/golden/raw.json")
	funnels, err := os.ReadFile("../../testdata/golden/funnels.json")
	if err != nil {
		t.Fatal(err)
	}
	putFunnels(t, st, string(funnels))
	sum, err := Run(ctx, Config{Store: st, From: mustDay(t, "2026-03-01"), To: mustDay(t, "2026-03-04"),
		Rules: compact.DefaultRules(time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.BadObjects) != 1 {
		t.Errorf("bad objects = %v, want the one non-Parquet object", sum.BadObjects)
	}
	db := openDuck(t)
	if err := db.ViewCurated(ctx, dir, tableNames()...); err != nil {
		t.Fatal(err)
	}
	for _, name := range tableNames() {
		t.Run(name, func(t *testing.T) {
			got, err := db.Query(ctx, "SELECT * FROM "+name+" ORDER BY ALL")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("..", "..", "testdata", "golden", name+".json")
			b, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			wantB, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/job -update to create it)", err)
			}
			var want, gotJ []map[string]any
			if err := json.Unmarshal(wantB, &want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &gotJ); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, gotJ); diff != "" {
				t.Errorf("%s differs from %s (-want +got):\n%s", name, path, diff)
			}
		})
	}
}
