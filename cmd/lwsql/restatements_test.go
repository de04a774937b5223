package main

import (
	"strings"
	"testing"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/publish/publishtest"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// TestRestatementsOnACleanBuild: restatements, empty after a clean build,
// answers no rows, run column included; once it has rows, run is the run
// that restated (a column of its files), not the folder of its partition.
func TestRestatementsOnACleanBuild(t *testing.T) {
	root, _ := rebuiltStore(t)
	for _, q := range []string{"SELECT * FROM restatements", "SELECT run FROM restatements"} {
		code, out, errOut := lwsql(t, "--store", root, q)
		if code != 0 || errOut != "" {
			t.Errorf("%s: exit %d: %s", q, code, errOut)
		}
		if n := len(fields(out)); n != 1 {
			t.Errorf("%s: want the header only, got %d lines:\n%s", q, n, out)
		}
	}
	st, err := store.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := day.Parse("2026-11-24")
	publishtest.WriteRun(t, st, "restatements", d, "01KB0000000000000000000009",
		[]rollups.Restatement{{Run: "01KB0000000000000000000005", TableName: "user_daily", ColumnName: "events", OldValue: 1, NewValue: 2}}, true)
	code, out, errOut := lwsql(t, "--store", root, "SELECT dt, run, table_name FROM restatements")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if got := fields(out); len(got) != 2 || strings.Join(got[1], " ") != "2026-11-24 01KB0000000000000000000005 user_daily" {
		t.Errorf("got\n%s", out)
	}
}
