package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	withRaw := storeWithRaw(t)
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"from after to", []string{"--store", dir, "--from", "2026-01-05", "--to", "2026-01-01"}, 2, "after --to"},
		{"not a date", []string{"--store", dir, "--from", "2026-13-01", "--to", "2026-01-01"}, 2, "not a date"},
		{"from without to", []string{"--store", dir, "--from", "2026-01-01"}, 2, "go together"},
		{"unknown zone", []string{"--store", dir, "--from", "2026-01-01", "--to", "2026-01-01", "--tz", "Mars/Olympus"}, 2, "unknown time zone"},
		{"missing store", []string{"--store", dir + "/nope", "--from", "2026-01-01", "--to", "2026-01-01"}, 2, "does not exist"},
		{"bad size", []string{"--store", dir, "--from", "2026-01-01", "--to", "2026-01-01", "--target-file-size", "big"}, 2, "not a size"},
		{"unknown flag", []string{"--frm", "2026-01-01"}, 2, "unknown flag --frm"},
		{"a duration without a unit says what it wants", []string{"--store", dir, "--max-lateness", "7"}, 2, `rollup: --max-lateness "7": want a duration like 168h, 7d, 90m or 0 (see rollup --help)`},
		{"help", []string{"--help"}, 0, "Exit codes"},
		{"ddl help", []string{"ddl", "--dialect", "sqlite"}, 2, "unknown --dialect"},
		{"a folder with no raw/ and no earlier run is refused", []string{"--store", dir, "--from", "2026-01-01", "--to", "2026-01-02", "--quiet"}, 2, "is --store right?"},
		{"a store with raw data but none in the range is not a failure", []string{"--store", withRaw, "--from", "2026-01-01", "--to", "2026-01-02", "--quiet"}, 0, ""},
		{"plan writes nothing and says why", []string{"plan", "--store", withRaw, "--from", "2026-01-03", "--to", "2026-01-03"}, 0, "never built"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Main(context.Background(), tc.args, &out, &errOut)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errOut.String())
			}
			if !strings.Contains(errOut.String()+out.String(), tc.msg) {
				t.Errorf("output does not say %q:\n%s%s", tc.msg, out.String(), errOut.String())
			}
		})
	} // Nothing was written into the folder that is not a warehouse.
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("%s after refused runs: %v, %v; want it empty", dir, entries, err)
	}
}

func TestDDL(t *testing.T) {
	// duckdb reads the store's manifests, so it gets a (local, empty) store.
	for dialect, loc := range map[string]string{"duckdb": t.TempDir(), "athena": "s3://b/p"} {
		var out, errOut bytes.Buffer
		if code := Main(context.Background(), []string{"ddl", "--dialect", dialect, "--store", loc}, &out, &errOut); code != 0 {
			t.Fatalf("%s: exit %d: %s", dialect, code, errOut.String())
		}
		for _, table := range []string{"events", "engagement_daily", "quarantine"} {
			if !strings.Contains(out.String(), table) {
				t.Errorf("%s DDL lacks %s", dialect, table)
			}
		}
	}
}

func TestDispatchTargets(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Main(context.Background(), []string{"--store", t.TempDir(), "--from", "2026-01-01", "--to", "2026-01-01", "--dispatch", "sqs:q"}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "sfn:STATE_MACHINE_ARN") || !strings.Contains(errOut.String(), "lambda:FUNCTION") {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	errOut.Reset()
	code = Main(context.Background(), []string{"--store", t.TempDir(), "--from", "2026-01-01", "--to", "2026-01-02", "--dispatch", "lambda:f"}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "one day") || !strings.Contains(errOut.String(), "--dispatch sfn:") {
		t.Fatalf("--dispatch lambda: over two days: exit %d: %s", code, errOut.String())
	}
	errOut.Reset()
	code = Main(context.Background(), []string{"--store", t.TempDir(), "--from", "2026-01-01", "--to", "2026-01-02", "--force", "--dispatch", "sfn:arn"}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "--force does not go with --dispatch") {
		t.Fatalf("--force --dispatch: exit %d: %s", code, errOut.String())
	}
}

// TestCatchUpTwice runs the nightly command (no dates) twice on data of the
// last days: the second run reads nothing and says every day is up to date.
func TestCatchUpTwice(t *testing.T) {
	dir := t.TempDir()
	st, err := store.OpenDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	if _, err := gen.Generate(context.Background(), st, gen.Nasty(gen.Config{From: today.AddDate(0, 0, -3), To: today.AddDate(0, 0, -1), EventsPerDay: 500, ObjectsPerHour: 1, Seed: 2})); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"--store", dir, "--quiet", "--log", "text"}, &out, &errOut); code != 0 {
		t.Fatalf("first catch-up: exit %d\n%s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "never built") {
		t.Fatalf("first catch-up built nothing:\n%s", out.String())
	}
	before, _ := st.List(context.Background(), "curated/")
	out.Reset()
	if code := Main(context.Background(), []string{"--store", dir, "--quiet", "--log", "text"}, &out, &errOut); code != 0 {
		t.Fatalf("second catch-up: exit %d\n%s", code, errOut.String())
	}
	if strings.Contains(out.String(), "never built") || !strings.Contains(out.String(), " 0 raw objects read") {
		t.Errorf("second catch-up did work:\n%s", out.String())
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "20") && !strings.Contains(line, "up to date") {
			t.Errorf("day not up to date: %s", line)
		}
	}
	after, _ := st.List(context.Background(), "curated/")
	if len(after) != len(before) {
		t.Errorf("the second catch-up changed curated/: %d objects before, %d after", len(before), len(after))
	}
	for i := range after {
		if i < len(before) && after[i] != before[i] {
			t.Errorf("%s changed", after[i].Key)
			break
		}
	}
}

// TestCatchUpRange: with no --from/--to the run builds max_lateness + 1
// days ending yesterday in the reporting zone, not in UTC; --include-today
// adds today.
func TestCatchUpRange(t *testing.T) {
	auckland, err := time.LoadLocation("Pacific/Auckland")
	if err != nil {
		t.Fatal(err)
	}
	// 01:00 on 25 November in Auckland is still 24 November (12:00) in UTC.
	now := time.Date(2026, 11, 25, 1, 0, 0, 0, auckland)
	tests := []struct {
		lateness     time.Duration
		includeToday bool
		from, to     string
	}{
		{7 * 24 * time.Hour, false, "2026-11-17", "2026-11-24"},
		{7 * 24 * time.Hour, true, "2026-11-17", "2026-11-25"},
		{36 * time.Hour, false, "2026-11-22", "2026-11-24"},
		{24 * time.Hour, false, "2026-11-23", "2026-11-24"},
	}
	for _, tc := range tests {
		from, to := job.CatchUp(now, auckland, tc.lateness, tc.includeToday)
		if from.String() != tc.from || to.String() != tc.to {
			t.Errorf("lateness %v, include today %v: %s .. %s, want %s .. %s", tc.lateness, tc.includeToday, from, to, tc.from, tc.to)
		}
	}

	// The same through the command line, as README.md says: "the last 8 days".
	dir := storeWithRaw(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "plan for 2026-11-17 .. 2026-11-24 (time zone Pacific/Auckland)"},
		{[]string{"--include-today"}, "plan for 2026-11-17 .. 2026-11-25 (time zone Pacific/Auckland)"},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"plan", "--store", dir, "--tz", "Pacific/Auckland"}, tc.args...)
		if code := mainAt(context.Background(), now, args, &out, &errOut); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut.String())
		}
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("%v: want %q in:\n%s", args, tc.want, out.String())
		}
		if n := strings.Count(out.String(), "never built"); n != 8 && len(tc.args) == 0 {
			t.Errorf("%v: %d days planned, want 8:\n%s", args, n, out.String())
		}
	}
	// With dates, --include-today lets --to be today.
	var out, errOut bytes.Buffer
	code := mainAt(context.Background(), now, []string{"plan", "--store", dir, "--tz", "Pacific/Auckland", "--from", "2026-11-24", "--to", "2026-11-25", "--include-today"}, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "plan for 2026-11-24 .. 2026-11-25") {
		t.Errorf("--include-today with dates: exit %d: %s%s", code, out.String(), errOut.String())
	}
}

// TestZoneMismatch: a run in another zone than the store's is bad usage
// (exit 2), and the rebuild command it suggests names real days.
func TestZoneMismatch(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "_state"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "_state", "warehouse.json"), []byte(`{"time_zone":"UTC"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	auckland, _ := time.LoadLocation("Pacific/Auckland")
	now := time.Date(2026, 11, 25, 1, 0, 0, 0, auckland)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", "2026-11-01", "--to", "2026-11-03"}, "rollup --store " + dir + " --from 2026-11-01 --to 2026-11-03 --tz Pacific/Auckland"},
		{nil, "rollup --store " + dir + " --from 2026-11-17 --to 2026-11-24 --tz Pacific/Auckland"},
		{[]string{"plan"}, "--to 2026-11-24 --tz Pacific/Auckland"},
	} {
		var out, errOut bytes.Buffer
		args := append(append([]string{}, tc.args...), "--store", dir, "--tz", "Pacific/Auckland", "--quiet", "--log", "text")
		if len(tc.args) == 1 { // a subcommand comes first
			args = append(tc.args, args[1:]...)
		}
		code := mainAt(context.Background(), now, args, &out, &errOut)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2: %s", args, code, errOut.String())
		}
		msg := errOut.String()
		for _, bad := range []string{"FIRST-DAY", "LAST-DAY", "re-run"} {
			if strings.Contains(msg, bad) {
				t.Errorf("%v: message says %q: %s", args, bad, msg)
			}
		}
		if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "in time zone UTC, not Pacific/Auckland") {
			t.Errorf("%v: message lacks %q: %s", args, tc.want, msg)
		}
	}
}

// TestHelpAndFlagErrors: --help prints usage to stdout and exits 0; an
// unknown flag is one line on stderr pointing at --help, exit 2.
func TestHelpAndFlagErrors(t *testing.T) {
	for _, cmd := range [][]string{nil, {"plan"}, {"ddl"}, {"report"}} {
		name := strings.Join(append([]string{"rollup"}, cmd...), " ")
		t.Run(name, func(t *testing.T) {
			for _, h := range []string{"--help", "-h"} {
				var out, errOut bytes.Buffer
				if code := Main(context.Background(), append(append([]string{}, cmd...), h), &out, &errOut); code != 0 {
					t.Errorf("%s: exit %d, want 0", h, code)
				}
				if errOut.Len() != 0 {
					t.Errorf("%s wrote to stderr: %s", h, errOut.String())
				}
				if !strings.Contains(out.String(), "Flags:") || !strings.Contains(out.String(), "\n  --store ") {
					t.Errorf("%s: no usage on stdout:\n%s", h, out.String())
				}
				for _, line := range strings.Split(out.String(), "\n") {
					if strings.HasPrefix(line, "  -") && !strings.HasPrefix(line, "  --") {
						t.Errorf("%s lists a flag with one dash, where the docs use two: %q", h, line)
					}
				}
			}
			var out, errOut bytes.Buffer
			code := Main(context.Background(), append(append([]string{}, cmd...), "--frm", "x"), &out, &errOut)
			if code != 2 {
				t.Errorf("unknown flag: exit %d, want 2", code)
			}
			want := "rollup: unknown flag --frm (see " + name + " --help)\n"
			if errOut.String() != want || out.Len() != 0 {
				t.Errorf("unknown flag: stderr %q, stdout %q; want stderr %q", errOut.String(), out.String(), want)
			}
		})
	}
}

// TestGracePeriodFlag: --help shows what the default means, not a
// sentinel; the default depends on the store; a value given is used.
func TestGracePeriodFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	Main(context.Background(), []string{"--help"}, &out, &errOut)
	var line string
	lines := strings.Split(out.String(), "\n")
	for i, l := range lines {
		if strings.Contains(l, "-grace-period") && i+1 < len(lines) {
			line = l + lines[i+1]
		}
	}
	if !strings.Contains(line, "default 6h on an s3:// store, 0 on a local one") || strings.Contains(line, "-1ns") {
		t.Errorf("--grace-period help: %q", line)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{
		{nil, 0},
		{[]string{"--grace-period", "2h"}, 2 * time.Hour},
	} {
		fs := newFlagSet("rollup", usageText)
		var o options
		o.register(fs)
		if err := parseFlags(fs, append([]string{"--store", dir, "--from", "2026-01-01", "--to", "2026-01-01"}, tc.args...), io.Discard); err != nil {
			t.Fatal(err)
		}
		cfg, err := o.config(context.Background(), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if cfg.GracePeriod != tc.want {
			t.Errorf("%v: grace period %v, want %v", tc.args, cfg.GracePeriod, tc.want)
		}
	}
	errOut.Reset()
	if code := Main(context.Background(), []string{"--store", dir, "--grace-period", "-1h"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "negative") {
		t.Errorf("negative grace period: exit %d: %s", code, errOut.String())
	}
}

// TestJSONLogNamesSkippedObjects: with --log json, every bad raw object of
// the summary (key, day, reason, error) and every ignored key is in the log.
func TestJSONLogNamesSkippedObjects(t *testing.T) {
	dir := t.TempDir()
	st, err := store.OpenDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	rep, err := gen.Generate(ctx, st, gen.Nasty(gen.Config{From: from, To: from.AddDate(0, 0, 1), EventsPerDay: 300, ObjectsPerHour: 1, Seed: 5}))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.BadObjects) == 0 {
		t.Fatal("eventgen made no bad objects")
	}
	const ignored = "raw/2026/03/01/not-an-hour.parquet"
	if err := st.Put(ctx, ignored, []byte("x")); err != nil {
		t.Fatal(err)
	}
	args := []string{"--store", dir, "--from", "2026-03-01", "--to", "2026-03-02", "--quiet", "--log", "json"}
	var out, errOut bytes.Buffer
	if code := Main(ctx, args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	bad := map[string]map[string]any{}
	var ignoredLogged bool
	for _, line := range strings.Split(strings.TrimSpace(errOut.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON log line: %q", line)
		}
		msg, _ := rec["msg"].(string)
		key, _ := rec["key"].(string)
		switch {
		case strings.HasPrefix(msg, "bad raw object:"):
			bad[key] = rec
		case strings.HasPrefix(msg, "object under the raw prefix") && key == ignored:
			ignoredLogged = true
		}
	}
	for _, k := range rep.BadObjects {
		rec, ok := bad[k]
		if !ok {
			t.Errorf("bad object %s not in the JSON log", k)
			continue
		}
		for _, field := range []string{"day", "reason", "error"} {
			if s, _ := rec[field].(string); s == "" {
				t.Errorf("log of %s has no %s: %v", k, field, rec)
			}
		}
	}
	if !ignoredLogged {
		t.Errorf("ignored %s not in the JSON log:\n%s", ignored, errOut.String())
	}
}

// storeWithRaw is a store folder with one raw object (outside any range
// the tests run), so that the job takes it for a warehouse.
func storeWithRaw(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	hour := filepath.Join(dir, "raw", "2020", "01", "01", "00")
	if err := os.MkdirAll(hour, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hour, "events-1-2020-01-01-00-00-00-x"), []byte("not parquet"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// listFiles lists every file under dir, relative, sorted.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestRangePastTodayIsRefused: a range that ends after today in the
// reporting zone is refused with exit 2 and one line, by a run, a plan and
// a dispatch alike, and nothing is written; a range ending today needs
// --include-today (issue 24).
func TestRangePastTodayIsRefused(t *testing.T) {
	auckland, err := time.LoadLocation("Pacific/Auckland")
	if err != nil {
		t.Fatal(err)
	}
	// 01:00 on 25 November in Auckland is still 24 November in UTC.
	now := time.Date(2026, 11, 25, 1, 0, 0, 0, auckland)
	dir := storeWithRaw(t)
	before := listFiles(t, dir)
	after := "rollup: --to 2030-01-02 is after today (2026-11-25 in time zone Pacific/Auckland): a day that has not happened has no data, and building it would publish zeros; " +
		"end the range at --to 2026-11-24 (or at today, 2026-11-25, with --include-today)\n"
	today := "rollup: --to 2026-11-25 is today in time zone Pacific/Auckland, which is not over: its numbers are partial until a run after midnight rebuilds it; " +
		"end the range at --to 2026-11-24, or add --include-today to build today anyway\n"
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a run", []string{"--from", "2030-01-01", "--to", "2030-01-02"}, after},
		{"a range from the past into the future", []string{"--from", "2026-11-23", "--to", "2026-11-27"},
			"rollup: --to 2026-11-27 is after today (2026-11-25 in time zone Pacific/Auckland)"},
		{"with --include-today", []string{"--from", "2030-01-01", "--to", "2030-01-02", "--include-today"}, after},
		{"a plan", []string{"plan", "--from", "2030-01-01", "--to", "2030-01-02"}, after},
		{"a dispatch to Lambda", []string{"--from", "2030-01-01", "--to", "2030-01-02", "--dispatch", "lambda:worker"}, after},
		{"today without --include-today", []string{"--from", "2026-11-24", "--to", "2026-11-25"}, today},
		{"a plan of today without --include-today", []string{"plan", "--from", "2026-11-25", "--to", "2026-11-25"}, today},
		{"tomorrow in Auckland is today in UTC", []string{"--from", "2026-11-26", "--to", "2026-11-26"},
			"rollup: --to 2026-11-26 is after today (2026-11-25 in time zone Pacific/Auckland)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{}, tc.args...), "--store", dir, "--tz", "Pacific/Auckland", "--quiet", "--log", "json")
			if tc.args[0] == "plan" {
				args = append([]string{"plan"}, args[1:]...)
			}
			var out, errOut bytes.Buffer
			code := mainAt(context.Background(), now, args, &out, &errOut)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if !strings.HasPrefix(errOut.String(), tc.want) || strings.Count(errOut.String(), "\n") != 1 || out.Len() != 0 {
				t.Errorf("stdout %q, stderr %q; want one line on stderr: %q", out.String(), errOut.String(), tc.want)
			}
			if got := listFiles(t, dir); len(got) != len(before) {
				t.Errorf("the refused run wrote: %d files, %d before, e.g. %s", len(got), len(before), got[0])
			}
		})
	}
}

// TestZoneMismatchWritesOneLine: a --tz other than the store's is refused
// before any log line (the error is the only output, JSON log or not), and
// the command it suggests rebuilds every day the store has built, in the
// wanted zone, in the same store, whatever range was typed (issue 24).
func TestZoneMismatchWritesOneLine(t *testing.T) {
	dir := storeWithRaw(t)
	put := func(rel, data string) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put("_state/warehouse.json", `{"time_zone":"UTC"}`)
	for _, d := range []string{"2026-11-01", "2026-11-03", "2026-11-05"} {
		put("curated/data_quality_daily/dt="+d+"/run=01A/part-00000.zstd.parquet", "x")
	}
	before := listFiles(t, dir)
	auckland, _ := time.LoadLocation("Pacific/Auckland")
	now := time.Date(2026, 11, 25, 1, 0, 0, 0, auckland)
	// The built days are 2026-11-01 .. 2026-11-05 in UTC: in Auckland their
	// events fall on 2026-11-01 .. 2026-11-06.
	want := "rollup: the tables in " + dir + " are in time zone UTC, not Pacific/Auckland; days of two zones cannot be mixed. " +
		"Run with --tz UTC, or rebuild every built day in Pacific/Auckland: delete curated/ and _state/ from the store (raw/ stays) and run: " +
		"rollup --store " + dir + " --from 2026-11-01 --to 2026-11-06 --tz Pacific/Auckland --max-lateness 3d\n"
	for _, args := range [][]string{
		{"--from", "2026-11-02", "--to", "2026-11-02"},
		nil,
		{"plan"},
	} {
		args = append(append([]string{}, args...), "--store", dir, "--tz", "Pacific/Auckland", "--max-lateness", "72h", "--quiet", "--log", "json")
		if args[0] == "plan" {
			args = append([]string{"plan"}, args[1:]...)
		}
		var out, errOut bytes.Buffer
		if code := mainAt(context.Background(), now, args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		if errOut.String() != want || out.Len() != 0 {
			t.Errorf("%v: stdout %q, stderr\n%q\nwant only\n%q", args, out.String(), errOut.String(), want)
		}
	}
	if got := listFiles(t, dir); len(got) != len(before) {
		t.Errorf("the refused runs wrote: %d files, %d before", len(got), len(before))
	}
}

// shellWords splits a command line printed by rerun (words, and words in
// single quotes) as a POSIX shell would.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quote in %q", line)
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// TestEarlierDaysHintWorksAsPrinted: the command the summary suggests for
// the days before the range names the store (quoted when it must be) and
// the settings of the run, and run as printed it builds those days in that
// store (issue 24: it used to build empty days in ./data).
func TestEarlierDaysHintWorksAsPrinted(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my store")
	st, err := store.OpenDir(dir, true)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if _, err := gen.Generate(ctx, st, gen.Config{From: from, To: from.AddDate(0, 0, 2), EventsPerDay: 300, ObjectsPerHour: 1, Seed: 3, LateRate: 0.2}); err != nil {
		t.Fatal(err)
	}
	args := []string{"--store", dir, "--from", "2026-03-02", "--to", "2026-03-03", "--max-lateness", "72h", "--quiet", "--log", "text"}
	var out, errOut bytes.Buffer
	if code := Main(ctx, args, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	_, hint, ok := strings.Cut(out.String(), "build them with: ")
	if !ok {
		t.Fatalf("no hint for the days before the range:\n%s", out.String())
	}
	hint, _, _ = strings.Cut(hint, "\n")
	words := shellWords(t, hint)
	if words[0] != "rollup" || !strings.Contains(hint, "--store '"+dir+"' --from ") || !strings.HasSuffix(hint, " --to 2026-03-01 --max-lateness 3d") {
		t.Fatalf("hint %q: want rollup --store '%s' --from ... --to 2026-03-01 --max-lateness 3d", hint, dir)
	}
	out.Reset()
	if code := Main(ctx, append(words[1:], "--quiet", "--log", "text"), &out, &errOut); code != 0 {
		t.Fatalf("the hint as printed: exit %d: %s", code, errOut.String())
	}
	hintFrom := words[slices.Index(words, "--from")+1]
	for _, d := range []string{hintFrom, "2026-03-01"} {
		if !strings.Contains(out.String(), "\n"+d+"  ") {
			t.Errorf("the hint as printed did not build %s in %s:\n%s", d, dir, out.String())
		}
	}
}

// TestTextLogSaysEachFactOnce: with --log text (for people), the bad raw
// objects and the days before the range with rows no table counts are
// told once, in the summary, not first as WARN lines (issue 24: the demo
// printed warnings for its own, deliberately bad, data).
func TestTextLogSaysEachFactOnce(t *testing.T) {
	dir := t.TempDir()
	st, err := store.OpenDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	rep, err := gen.Generate(ctx, st, gen.Nasty(gen.Config{From: from, To: from.AddDate(0, 0, 1), EventsPerDay: 300, ObjectsPerHour: 1, Seed: 5}))
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := Main(ctx, []string{"--store", dir, "--from", "2026-03-01", "--to", "2026-03-02", "--quiet", "--log", "text"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if strings.Contains(errOut.String(), "WARN") {
		t.Errorf("warnings for what the summary says:\n%s", errOut.String())
	}
	for _, k := range rep.BadObjects {
		if !strings.Contains(out.String(), k) {
			t.Errorf("the summary does not name the bad object %s:\n%s", k, out.String())
		}
	}
	if !strings.Contains(out.String(), "days before this run's range hold rows") {
		t.Errorf("the summary does not list the days before the range:\n%s", out.String())
	}
}

// TestSummarySplitsNoTimeFromBadTime: the summary shows the events sent
// without an event_time ("no time", missing_event_time_rows) apart from
// those whose event_time was off ("bad time", clock_skewed_rows), each
// number under its heading.
func TestSummarySplitsNoTimeFromBadTime(t *testing.T) {
	s := &job.Summary{Run: "r1", Days: []job.DaySummary{{
		Day:     day.FromDate(2026, 3, 1),
		Quality: rollups.DataQualityDaily{RawRows: 10, KeptRows: 9, DuplicatesDropped: 1, MissingEventTimeRows: 2, ClockSkewedRows: 1},
	}}}
	var out bytes.Buffer
	printSummary(&out, s, &options{})
	lines := strings.Split(out.String(), "\n")
	head, row := lines[2], lines[3]
	for _, c := range []struct {
		heading, value string
	}{{"no time", "2"}, {"bad time", "1"}, {"invalid", "0"}, {"events", "9"}} {
		end := strings.Index(head, c.heading) + len(c.heading)
		if end < len(c.heading) || len(row) < end || !strings.HasSuffix(row[:end], " "+c.value) {
			t.Errorf("%q: want %s right-aligned under it:\n%s\n%s", c.heading, c.value, head, row)
		}
	}
}

// TestHeldStage2ExitsNamingTheHolder: when another rollup holds the
// windowed stage past --lock-wait, the run gives up after that wait and
// exits 1 with a line naming the holder, not "run failed".
func TestHeldStage2ExitsNamingTheHolder(t *testing.T) {
	dir := storeWithRaw(t)
	st, err := store.OpenDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	holder := "run 01OTHER on host elsewhere, pid 4242"
	if _, err := lease.Acquire(context.Background(), st, "stage2", holder, 30*time.Minute, 0, time.Now); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := mainAt(context.Background(), time.Now(), []string{"--store", dir, "--from", "2020-01-01", "--to", "2020-01-01", "--lock-wait", "1s", "--quiet", "--log", "json"}, &out, &errOut)
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	last := lines[len(lines)-1]
	if code != 1 || !strings.HasPrefix(last, "rollup: another rollup is writing what this run needs (waited 1s") || !strings.Contains(last, holder) {
		t.Errorf("exit %d, last line %q; want 1 and a line naming %q", code, last, holder)
	}
	if !strings.Contains(errOut.String(), `"msg":"waiting for a lease another process holds"`) {
		t.Errorf("no log line while waiting:\n%s", errOut.String())
	}
}

// TestPlanRecordsNoZone: rollup plan on a store no run has built records no
// time zone (a first run may still choose one), and a plan in a zone other
// than the recorded one is refused as a run is.
func TestPlanRecordsNoZone(t *testing.T) {
	dir := storeWithRaw(t)
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"plan", "--store", dir, "--from", "2020-01-01", "--to", "2020-01-01"}, &out, &errOut); code != 0 {
		t.Fatalf("plan: exit %d: %s", code, errOut.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "_state", "warehouse.json")); !os.IsNotExist(err) {
		t.Errorf("plan recorded the store's zone (%v)", err)
	}
	if code := Main(context.Background(), []string{"--store", dir, "--from", "2020-01-01", "--to", "2020-01-01", "--quiet"}, &out, &errOut); code != 0 {
		t.Fatalf("run: exit %d: %s", code, errOut.String())
	}
	errOut.Reset()
	if code := Main(context.Background(), []string{"plan", "--store", dir, "--from", "2020-01-01", "--to", "2020-01-01", "--tz", "Pacific/Auckland"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "are in time zone UTC, not Pacific/Auckland") {
		t.Errorf("plan in another zone: exit %d, %q; want 2 and the zone error", code, errOut.String())
	}
}
