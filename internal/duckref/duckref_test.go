package duckref_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/duckref"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/publish/publishtest"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

func openDir(t *testing.T) *store.Dir {
	t.Helper()
	st, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	return st
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

// TestViewCuratedCountsEachRowOnce: after a killed rebuild, during a
// rebuild and while a superseded run waits out its grace period, the view
// reads each partition's current run only (issue 13: doubled counts).
func TestViewCuratedCountsEachRowOnce(t *testing.T) {
	ctx := context.Background()
	st := openDir(t)
	want := publishtest.Rebuilt(t, st)
	db := openDuck(t)
	if err := db.ViewCurated(ctx, st.Root(), publishtest.Table); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(ctx, "SELECT CAST(dt AS VARCHAR) AS dt, count(*) AS n, count(DISTINCT user_key) AS users FROM "+publishtest.Table+" GROUP BY dt")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, r := range rows {
		if r["n"] != r["users"] {
			t.Errorf("day %v: %v rows but %v users: a row is doubled", r["dt"], r["n"], r["users"])
		}
		got[r["dt"].(string)] = int(r["n"].(int64))
	}
	if diff := cmp.Diff(want.Days, got); diff != "" {
		t.Errorf("rows per day (-want +got):\n%s", diff)
	}
	cols, err := db.Query(ctx, "SELECT column_name FROM (DESCRIBE "+publishtest.Table+")")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cols {
		if c["column_name"] == "run" {
			t.Error("the view has a run column")
		}
	}
}

// TestViewCuratedAgreesWithPublish: duckref's own manifest resolution
// (it cannot import publish) picks the same files as publish.CurrentKeys.
func TestViewCuratedAgreesWithPublish(t *testing.T) {
	ctx := context.Background()
	st := openDir(t)
	publishtest.Rebuilt(t, st)
	// A fourth day whose later commit has the smaller run id, and one
	// whose two commits both predate generations.
	d := day.FromDate(2026, 11, 27)
	r := []rollups.UserDaily{{Product: "p", UserKey: "z"}}
	publishtest.WriteRun(t, st, publishtest.Table, d, "01KC9", r, true)
	publishtest.WriteRun(t, st, publishtest.Table, d, "01KC1", r, true)
	for _, run := range []string{"01KD1", "01KD2"} {
		key := publish.RunPrefix(publishtest.Table, d+1, run) + publish.ManifestName
		body := `{"table":"user_daily","dt":"2026-11-28","run":"` + run + `","files":[{"key":"k-` + run + `"}]}`
		if err := st.Put(ctx, key, []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := publish.CurrentKeys(ctx, st, publishtest.Table)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, k := range keys {
		want = append(want, filepath.Join(st.Root(), k))
	}
	got, err := duckref.CurrentPaths(st.Root(), publishtest.Table)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files (-publish +duckref):\n%s", diff)
	}
	if !strings.HasSuffix(got[len(got)-1], "k-01KD2") {
		t.Errorf("last file %s; want the larger run of the generation-less day", got[len(got)-1])
	}
}

// TestViewCuratedWithoutCommittedRuns: a table whose only run folders have
// no manifest gets no view, and an older view of it is dropped.
func TestViewCuratedWithoutCommittedRuns(t *testing.T) {
	ctx := context.Background()
	st := openDir(t)
	publishtest.WriteRun(t, st, "engagement_daily", day.FromDate(2026, 11, 24), "01KA", []rollups.EngagementDaily{{Product: "p"}}, false)
	db := openDuck(t)
	if _, err := db.ExecContext(ctx, "CREATE VIEW engagement_daily AS SELECT 1 AS x"); err != nil {
		t.Fatal(err)
	}
	if err := db.ViewCurated(ctx, st.Root(), "engagement_daily"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Query(ctx, "SELECT * FROM engagement_daily"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("query of a table with no committed run: %v; want does not exist", err)
	}
}
