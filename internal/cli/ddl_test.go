package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/duckref"
	"github.com/littlewarehouse/warehouse/internal/publish/publishtest"
	"github.com/littlewarehouse/warehouse/internal/store"
)

func runDDL(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(context.Background(), append([]string{"ddl"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestDDLDuckDBCountsEachRowOnce: the DuckDB views rollup ddl prints read
// each partition's current run only, not a killed rebuild, a rebuild under
// way or a superseded run (issue 13); they say they are a snapshot.
func TestDDLDuckDBCountsEachRowOnce(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	want := publishtest.Rebuilt(t, st)
	code, out, errOut := runDDL(t, "--dialect", "duckdb", "--store", st.Root())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, s := range []string{"snapshot", "Regenerate this file after every rollup run", "-- events: ", "-- no committed partitions yet"} {
		if !strings.Contains(out, s) {
			t.Errorf("DDL does not say %q:\n%s", s, out)
		}
	}
	if strings.Contains(out, "run=*") {
		t.Errorf("DDL globs run folders:\n%s", out)
	}
	db, err := duckref.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, out); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	rows, err := db.Query(ctx, "SELECT CAST(dt AS VARCHAR) AS dt, count(*) AS n FROM "+publishtest.Table+" GROUP BY dt")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, r := range rows {
		got[r["dt"].(string)] = int(r["n"].(int64))
	}
	if diff := cmp.Diff(want.Days, got); diff != "" {
		t.Errorf("rows per day (-want +got):\n%s", diff)
	}
}

// TestDDLAthenaNeedsAnS3Location: Athena tables cannot live in a local
// directory (issue 14: LOCATION './data/...').
func TestDDLAthenaNeedsAnS3Location(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"local store", []string{"--store", "./data"}, 2, "athena tables need the store's S3 location"},
		{"default store", nil, 2, "--store s3://bucket/prefix, or --location s3://bucket/prefix"},
		{"local location", []string{"--location", "./data"}, 2, "--location ./data: want s3://bucket/prefix"},
		{"s3 store", []string{"--store", "s3://b/p/"}, 0, "LOCATION 's3://b/p/curated/events/'"},
		{"s3 location", []string{"--store", "./data", "--location", "s3://b/q"}, 0, "LOCATION 's3://b/q/curated/events/'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runDDL(t, append([]string{"--dialect", "athena"}, tc.args...)...)
			if code != tc.code {
				t.Errorf("exit %d, want %d: %s", code, tc.code, errOut)
			}
			if !strings.Contains(out+errOut, tc.want) {
				t.Errorf("output does not say %q:\n%s%s", tc.want, out, errOut)
			}
			if strings.Contains(out, "./data") {
				t.Errorf("DDL points at a local directory:\n%s", out)
			}
		})
	}
}

// TestDDLQuoting: apostrophes are doubled inside string literals only,
// never in "--" comments (issue 14).
func TestDDLQuoting(t *testing.T) {
	for _, args := range [][]string{
		{"--dialect", "athena", "--store", "s3://b/p"},
		{"--dialect", "duckdb", "--store", t.TempDir()},
	} {
		code, out, errOut := runDDL(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "--") && strings.Contains(line, "''") {
				t.Errorf("%v: comment escapes an apostrophe: %s", args, line)
			}
		}
	}
	_, out, _ := runDDL(t, "--dialect", "athena", "--store", "s3://b/p")
	if !strings.Contains(out, "COMMENT 'the client''s timestamp as sent; null if none'") {
		t.Errorf("a column comment literal is not escaped:\n%s", out)
	}
}

// TestDDLViewsOnly: rollup ddl --dialect athena --views-only prints the
// <table>_v view of every table partitioned by day, exactly as the full
// output has them, and nothing else (no CREATE EXTERNAL TABLE, no
// location), with no store needed; with duckdb it is a usage error
// (issue 24: Power BI users had to pick the views out of the whole DDL).
func TestDDLViewsOnly(t *testing.T) {
	code, out, errOut := runDDL(t, "--dialect", "athena", "--views-only", "--database", "wh")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	_, full, _ := runDDL(t, "--dialect", "athena", "--store", "s3://b/p", "--database", "wh")
	var want []string
	for _, stmt := range strings.Split(full, ";\n") {
		if i := strings.Index(stmt, "CREATE OR REPLACE VIEW"); i >= 0 {
			want = append(want, stmt[i:])
		}
	}
	var got []string
	for _, stmt := range strings.Split(out, ";\n") {
		if i := strings.Index(stmt, "CREATE "); i >= 0 {
			got = append(got, stmt[i:])
		}
	}
	if len(want) == 0 {
		t.Fatalf("the full DDL has no view:\n%s", full)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("--views-only statements differ from the full DDL's views (-want +got):\n%s", diff)
	}
	for _, name := range []string{"active_users_daily_v", "retention_daily_v", "data_quality_daily_v", "restatements_v"} {
		if !strings.Contains(out, "VIEW wh."+name+" AS") {
			t.Errorf("no view %s:\n%s", name, out)
		}
	}
	for _, bad := range []string{"EXTERNAL TABLE", "LOCATION", "s3://", "users_v"} {
		if strings.Contains(out, bad) {
			t.Errorf("--views-only prints %q:\n%s", bad, out)
		}
	}
	if !strings.Contains(out, "Read users directly") {
		t.Errorf("--views-only does not say how to read users:\n%s", out)
	}

	code, _, errOut = runDDL(t, "--dialect", "duckdb", "--views-only")
	if code != 2 || !strings.Contains(errOut, "--views-only is for --dialect athena") {
		t.Errorf("duckdb --views-only: exit %d, %q; want 2 and a usage line", code, errOut)
	}
}
