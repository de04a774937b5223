package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/littlewarehouse/warehouse/internal/job"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/store"
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
		{"unknown flag", []string{"--frm", "2026-01-01"}, 2, "flag provided but not defined"},
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

func TestDispatchNeedsAFunction(t *testing.T) {
	var out, errOut bytes.Buffer
	code := Main(context.Background(), []string{"--store", t.TempDir(), "--from", "2026-01-01", "--to", "2026-01-01", "--dispatch", "sqs:q"}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "lambda:FUNCTION") {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	errOut.Reset()
	code = Main(context.Background(), []string{"--store", t.TempDir(), "--from", "2026-01-01", "--to", "2026-01-01", "--dispatch", "lambda:f", "--dispatch-wait", "0s"}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "--dispatch-wait") {
		t.Fatalf("--dispatch-wait 0s: exit %d: %s", code, errOut.String())
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
	var out, errOut bytes.Buffer
	code := mainAt(context.Background(), now, []string{"--store", dir, "--from", "2026-11-01", "--to", "2026-11-02", "--include-today"}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "--include-today") {
		t.Errorf("--include-today with dates: exit %d: %s", code, errOut.String())
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
		{nil, "rollup --store " + dir + " --from <your first day> --to 2026-11-24 --tz Pacific/Auckland"},
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
				if !strings.Contains(out.String(), "Flags:") || !strings.Contains(out.String(), "-store") {
					t.Errorf("%s: no usage on stdout:\n%s", h, out.String())
				}
			}
			var out, errOut bytes.Buffer
			code := Main(context.Background(), append(append([]string{}, cmd...), "--frm", "x"), &out, &errOut)
			if code != 2 {
				t.Errorf("unknown flag: exit %d, want 2", code)
			}
			want := "rollup: flag provided but not defined: -frm (see " + name + " --help)\n"
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
