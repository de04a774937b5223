package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/store"
)

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
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
		{"empty store is not a failure", []string{"--store", dir, "--from", "2026-01-01", "--to", "2026-01-02", "--quiet"}, 0, ""},
		{"plan writes nothing and says why", []string{"plan", "--store", dir, "--from", "2026-01-03", "--to", "2026-01-03"}, 0, "never built"},
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
