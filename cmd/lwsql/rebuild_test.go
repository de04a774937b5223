package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// buildRow is the one row a test build writes into each table.
type buildRow struct {
	Build string `parquet:"build"`
	N     int64  `parquet:"n"`
}

// commitBuild writes and commits one build of day d into tables, as the
// job does (one run id, every table), and with cleanup deletes the runs it
// supersedes at once, as a local rebuild does.
func commitBuild(st store.Store, d day.Day, run string, n int, cleanup bool, tables ...string) error {
	ctx := context.Background()
	rows := make([]buildRow, n)
	for i := range rows {
		rows[i] = buildRow{Build: run, N: int64(i)}
	}
	for _, table := range tables {
		files, err := publish.Write(ctx, st, publish.RunPrefix(table, d, run), rows, publish.WriterOptions{RowGroupSize: 1 << 20})
		if err != nil {
			return err
		}
		if err := publish.Commit(ctx, st, &publish.Manifest{Table: table, Day: d.String(), Run: run, Files: files}); err != nil {
			return err
		}
	}
	if !cleanup {
		return nil
	}
	for _, table := range tables {
		if err := publish.Cleanup(ctx, st, table, d, run, 0, time.Now()); err != nil {
			return err
		}
	}
	return nil
}

// TestADayIsOneBuild: a rebuild that died between the commits of a day
// left events at the new build and sessions_daily at the old one; lwsql
// shows the old, complete build in every table of the day (issue 29).
func TestADayIsOneBuild(t *testing.T) {
	st, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	d := day.FromDate(2026, 11, 24)
	all := publish.DayTables()
	if err := commitBuild(st, d, "01KA0000000000000000000001", 3, true, all...); err != nil {
		t.Fatal(err)
	}
	if err := commitBuild(st, d, "01KA0000000000000000000002", 5, false, all[:3]...); err != nil {
		t.Fatal(err)
	}
	q := "SELECT (SELECT count(*) FROM events) AS e, (SELECT count(*) FROM user_daily) AS u, (SELECT count(*) FROM sessions_daily) AS s"
	code, out, errOut := lwsql(t, "--store", st.Root(), q)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := fields(out); len(got) != 2 || strings.Join(got[1], " ") != "3 3 3" {
		t.Errorf("counts\n%s\nwant 3 3 3: the complete build in every table", out)
	}
}

// TestQueriesDuringRebuilds: queries looping while rebuilds finish and
// delete the runs they supersede at once (a local store) never fail, and
// always see one build (issue 29: 39 of 340 failed with "No files found").
func TestQueriesDuringRebuilds(t *testing.T) {
	st, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	days := []day.Day{day.FromDate(2026, 11, 24), day.FromDate(2026, 11, 25)}
	tables := publish.DayTables()
	build := 1
	for _, d := range days {
		if err := commitBuild(st, d, fmt.Sprintf("01KA%022d", build), 4, true, tables...); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	rebuilt := 0
	wg.Go(func() {
		for ctx.Err() == nil {
			build++
			for _, d := range days {
				if err := commitBuild(st, d, fmt.Sprintf("01KA%022d", build), 4, true, tables...); err != nil {
					t.Errorf("rebuild %d: %v", build, err)
					return
				}
			}
			rebuilt++
			// A real rebuild of a day takes far longer than this.
			time.Sleep(20 * time.Millisecond)
		}
	})
	q := "SELECT count(*) AS n, count(DISTINCT build) AS builds FROM (SELECT dt, build FROM events UNION ALL SELECT dt, build FROM quarantine) GROUP BY dt ORDER BY dt"
	failed := 0
	const queries = 60
	for i := range queries {
		code, out, errOut := lwsql(t, "--store", st.Root(), q)
		if code != 0 {
			failed++
			t.Errorf("query %d: exit %d: %s", i, code, errOut)
			continue
		}
		if got := fields(out); len(got) != 3 || strings.Join(got[1], " ") != "8 1" || strings.Join(got[2], " ") != "8 1" {
			t.Errorf("query %d:\n%s\nwant 8 rows of one build per day", i, out)
		}
	}
	cancel()
	wg.Wait()
	t.Logf("%d queries, %d failed, during %d rebuilds", queries, failed, rebuilt)
	if rebuilt < 5 {
		t.Errorf("only %d rebuilds ran while the queries did", rebuilt)
	}
}
