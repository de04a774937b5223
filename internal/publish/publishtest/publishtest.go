// Package publishtest builds curated tables in the states that readers must
// get right (docs/design.md §Publish and commit): a killed rebuild, a rebuild under way, and a
// superseded run kept for its grace period. Reader tests (lwsql, the DuckDB
// views, rollup ddl) count rows over it.
package publishtest

import (
	"context"
	"testing"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// Table is the curated table Rebuilt writes.
const Table = "user_daily"

// Want is what a reader of Rebuilt's store must see: each row once.
type Want struct {
	Rows int            // rows in the table
	Days map[string]int // rows per dt
}

// Rebuilt writes table user_daily into st with three days:
//
//   - 2026-11-24: a committed run superseded by a later commit (its run id
//     is the larger, so a choice by run id or clock would pick it), the
//     current run, and a run folder of a killed rebuild without a manifest,
//     all three holding the same 3 rows;
//   - 2026-11-25: a current run of 2 rows and a rebuild under way (files
//     written, manifest not yet) holding the same rows;
//   - 2026-11-26: only a run folder without a manifest (never committed).
//
// A reader that resolves partitions through their manifests sees 5 rows;
// one that globs run=* sees 16.
func Rebuilt(t testing.TB, st store.Store) Want {
	t.Helper()
	ts := int64(1795525509120) // 2026-11-24 13:05:09.120 UTC
	rows := func(users ...string) []rollups.UserDaily {
		var out []rollups.UserDaily
		for _, u := range users {
			out = append(out, rollups.UserDaily{Product: "shop", UserKey: u, Platform: "web", Events: 1, Sessions: 1, FirstEventAt: ts, LastEventAt: ts})
		}
		return out
	}
	d24, d25, d26 := day.FromDate(2026, 11, 24), day.FromDate(2026, 11, 25), day.FromDate(2026, 11, 26)
	r24, r25 := rows("a", "b", "c"), rows("d", "e")
	WriteRun(t, st, Table, d24, "01KB0000000000000000000002", r24, true) // superseded
	WriteRun(t, st, Table, d24, "01KB0000000000000000000001", r24, true) // current
	WriteRun(t, st, Table, d24, "01KB0000000000000000000003", r24, false)
	WriteRun(t, st, Table, d25, "01KB0000000000000000000004", r25, true)
	WriteRun(t, st, Table, d25, "01KB0000000000000000000005", r25, false)
	WriteRun(t, st, Table, d26, "01KB0000000000000000000006", rows("f", "g", "h"), false)
	return Want{Rows: 5, Days: map[string]int{"2026-11-24": 3, "2026-11-25": 2}}
}

// WriteRun writes rows into run's folder of day d's partition of table and,
// if commit is set, commits the run (which then supersedes the current one).
func WriteRun[T any](t testing.TB, st store.Store, table string, d day.Day, run string, rows []T, commit bool) {
	t.Helper()
	ctx := context.Background()
	files, err := publish.Write(ctx, st, publish.RunPrefix(table, d, run), rows, publish.WriterOptions{RowGroupSize: 1 << 20, CreatedBy: "publishtest"})
	if err != nil {
		t.Fatal(err)
	}
	if !commit {
		return
	}
	var n int64
	for _, f := range files {
		n += f.Rows
	}
	if err := publish.Commit(ctx, st, &publish.Manifest{Table: table, Day: d.String(), Run: run, Rows: n, Files: files, TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
}
