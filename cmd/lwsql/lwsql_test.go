package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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
	rawOnly := t.TempDir()
	if err := os.Mkdir(filepath.Join(rawOnly, "raw"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"no store, in rollup's words", []string{"--store", "/nonexistent", "SELECT 1"}, 2, "", "lwsql: store /nonexistent does not exist\n"},
		{"an empty folder is not a store", []string{"--store", empty, "SELECT 1"}, 2, "",
			"lwsql: " + empty + " is not a store: it holds no curated/, _state/ or raw/ folder; is --store right? (rollup --store " + empty + " builds one from raw data)\n"},
		{"no tables yet", []string{"--store", rawOnly, "SELECT * FROM events"}, 1, "", "no curated tables yet in " + rawOnly + "; run rollup first"},
		{"an empty query is bad usage", []string{"--store", root, ""}, 2, "", "lwsql: the query is empty"},
		{"a query of blanks and comments is empty", []string{"--store", root, " ; -- nothing\n"}, 2, "", "lwsql: the query is empty"},
		{"a failing statement of several is named", []string{"--store", root, "SELECT 1; SELECT * FROM nope"}, 1, "1", "lwsql: statement 2 of 2: no table nope"},
		{"a table without data", []string{"--store", root, "SELECT * FROM events"}, 1, "", "table events has no committed partitions yet in " + root + "; tables with data: user_daily"},
		{"an unknown table", []string{"--store", root, "SELECT * FROM nope"}, 1, "", "no table nope in " + root + "; tables with data: user_daily"},
		{"no query", []string{"--store", root}, 2, "", "want exactly one SQL query"},
		{"help", []string{"--help"}, 0, "Exit codes", ""},
		{"unknown flag", []string{"--stor", root}, 2, "", "lwsql: unknown flag --stor (see lwsql --help)\n"},
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

// TestEveryStatementIsShown: each statement's result is printed, in order
// (it showed only the last one's).
func TestEveryStatementIsShown(t *testing.T) {
	root, _ := rebuiltStore(t)
	code, out, errOut := lwsql(t, "--store", root, "SELECT 1 AS a; SELECT 'x;y' AS b; SELECT count(*) AS n FROM user_daily;")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got := fields(out)
	want := [][]string{{"a"}, {"1"}, {}, {"b"}, {"x;y"}, {}, {"n"}, {"5"}}
	if len(got) != len(want) {
		t.Fatalf("printed\n%s\nwant the three results, a blank line between", out)
	}
	for i := range want {
		if strings.Join(got[i], " ") != strings.Join(want[i], " ") {
			t.Errorf("line %d: %q, want %q\n%s", i, got[i], want[i], out)
		}
	}
}

// TestHelpNamesFlagsWithTwoDashes: --help lists --store, as the docs do.
func TestHelpNamesFlagsWithTwoDashes(t *testing.T) {
	code, out, _ := lwsql(t, "--help")
	if code != 0 || !strings.Contains(out, "\n  --store directory\n") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "  -") && !strings.HasPrefix(line, "  --") {
			t.Errorf("a flag with one dash: %q", line)
		}
	}
}

func TestSplitStatements(t *testing.T) {
	for _, tc := range []struct {
		q    string
		want []string
	}{
		{"SELECT 1", []string{"SELECT 1"}},
		{"SELECT 1; SELECT 2", []string{"SELECT 1", "SELECT 2"}},
		{"SELECT 1;;\n ; ", []string{"SELECT 1"}},
		{"SELECT 'a;b', 'it''s;'; SELECT 2", []string{"SELECT 'a;b', 'it''s;'", "SELECT 2"}},
		{`SELECT "x;y" FROM t; SELECT E'\';'`, []string{`SELECT "x;y" FROM t`, `SELECT E'\';'`}},
		{"SELECT $$a;b$$, $t$c;d$t$; SELECT $1", []string{"SELECT $$a;b$$, $t$c;d$t$", "SELECT $1"}},
		{"SELECT 1 -- a; comment\n; /* b; */ SELECT 2", []string{"SELECT 1 -- a; comment", "/* b; */ SELECT 2"}},
		{"-- only a comment; still\n /* and; this */ ;", nil},
		{"", nil},
	} {
		got := splitStatements(tc.q)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("splitStatements(%q) = %q, want %q", tc.q, got, tc.want)
		}
	}
}
