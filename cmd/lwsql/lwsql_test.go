package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/littlewarehouse/warehouse/internal/publish/publishtest"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// lwsql runs lwsql in-process and returns its exit code and output.
func lwsql(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// rebuiltStore is a local store holding publishtest.Rebuilt.
func rebuiltStore(t *testing.T) (string, publishtest.Want) {
	t.Helper()
	st, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	return st.Root(), publishtest.Rebuilt(t, st)
}

// fields splits the output into rows of whitespace-separated cells.
func fields(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		rows = append(rows, strings.Fields(line))
	}
	return rows
}

// TestCountsEachRowOnce: a killed rebuild, a rebuild under way and a
// superseded run do not double a day's rows (issue 13).
func TestCountsEachRowOnce(t *testing.T) {
	root, _ := rebuiltStore(t)
	code, out, errOut := lwsql(t, "--store", root, "SELECT dt, count(*) AS n, count(DISTINCT user_key) AS users FROM user_daily GROUP BY dt ORDER BY dt")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got := fields(out)
	want := [][]string{{"dt", "n", "users"}, {"2026-11-24", "3", "3"}, {"2026-11-25", "2", "2"}}
	if len(got) != len(want) || strings.Join(got[1], " ") != strings.Join(want[1], " ") || strings.Join(got[2], " ") != strings.Join(want[2], " ") {
		t.Errorf("got\n%s\nwant %v", out, want)
	}
}

// TestPrinting: timestamps print as UTC timestamps to the millisecond
// (not as dates), dates as dates, maps as {k=v, ...}, lists as [a, b]
// (issue 14).
func TestPrinting(t *testing.T) {
	root, _ := rebuiltStore(t)
	tests := []struct {
		name, query, want string
	}{
		{"timestamp from a table", "SELECT first_event_at FROM user_daily LIMIT 1", "2026-11-24 13:05:09.120"},
		{"timestamp literal", "SELECT TIMESTAMP '2026-11-24 13:05:09.12' AS t", "2026-11-24 13:05:09.120"},
		{"midnight timestamp", "SELECT TIMESTAMP '2026-11-24 00:00:00' AS t", "2026-11-24 00:00:00.000"},
		{"millisecond timestamp", "SELECT CAST(TIMESTAMP '2026-11-24 13:05:09.12' AS TIMESTAMP_MS) AS t", "2026-11-24 13:05:09.120"},
		{"date", "SELECT DATE '2026-11-24' AS d", "2026-11-24"},
		{"dt of a table is a date", "SELECT DISTINCT dt FROM user_daily WHERE dt = DATE '2026-11-25'", "2026-11-25"},
		{"map", "SELECT MAP {'b': '2', 'a': NULL} AS m", "{b=2, a=NULL}"},
		{"empty map", "SELECT MAP {} AS m", "{}"},
		{"list", "SELECT ['x', 'y'] AS l", "[x, y]"},
		{"null", "SELECT NULL AS n", "NULL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := lwsql(t, "--store", root, tc.query)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 2 || strings.TrimSpace(lines[1]) != tc.want {
				t.Errorf("printed\n%s\nwant the value %q", out, tc.want)
			}
		})
	}
}

// TestMessages: what lwsql says when there is no store, no data, or no
// such table, instead of DuckDB's "Did you mean "pg_views"?".
func TestMessages(t *testing.T) {
	root, _ := rebuiltStore(t)
	empty := t.TempDir()
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no store", []string{"--store", "/nonexistent", "SELECT 1"}, 2, "", "lwsql: no store at /nonexistent\n"},
		{"no tables yet", []string{"--store", empty, "SELECT * FROM events"}, 1, "", "no curated tables yet in " + empty + "; run rollup first"},
		{"a table without data", []string{"--store", root, "SELECT * FROM events"}, 1, "", "table events has no committed partitions yet in " + root + "; tables with data: user_daily"},
		{"an unknown table", []string{"--store", root, "SELECT * FROM nope"}, 1, "", "no table nope in " + root + "; tables with data: user_daily"},
		{"no query", []string{"--store", root}, 2, "", "want exactly one SQL query"},
		{"help", []string{"--help"}, 0, "Exit codes", ""},
		{"unknown flag", []string{"--stor", root}, 2, "", "flag provided but not defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := lwsql(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			if !strings.Contains(out, tc.stdout) || tc.stdout == "" && out != "" {
				t.Errorf("stdout %q, want %q", out, tc.stdout)
			}
			if !strings.Contains(errOut, tc.stderr) || tc.stderr == "" && errOut != "" {
				t.Errorf("stderr %q, want %q", errOut, tc.stderr)
			}
			if strings.Contains(errOut, "pg_views") {
				t.Errorf("stderr passes on DuckDB's guess: %q", errOut)
			}
		})
	}
}
