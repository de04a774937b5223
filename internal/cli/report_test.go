package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/store"
)

func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "r.html")
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"help", []string{"report", "--help"}, 0, "self-contained HTML"},
		{"not a date", []string{"report", "--store", dir, "--from", "2026-13-01"}, 2, "not a date"},
		{"from after to", []string{"report", "--store", dir, "--from", "2026-01-05", "--to", "2026-01-01"}, 2, "after --to"},
		{"missing store", []string{"report", "--store", dir + "/nope"}, 2, "does not exist"},
		{"an empty store gives a page", []string{"report", "--store", dir, "--out", out}, 0, "wrote " + out},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stdout.String()+stderr.String(), tc.msg) {
				t.Errorf("output does not say %q:\n%s%s", tc.msg, stdout.String(), stderr.String())
			}
		})
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "No curated partition was found") {
		t.Errorf("the page of an empty store does not say so")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".report-*")); len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

// TestReportRefusesWhatIsNotThere: an unknown --product is an error naming
// the products there (it used to write a page of nothing and exit 0), and
// an --out in a missing folder names that folder, not a temporary file
// (issue 24).
func TestReportRefusesWhatIsNotThere(t *testing.T) {
	dir := t.TempDir()
	st, err := store.OpenDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	from := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if _, err := gen.Generate(ctx, st, gen.Config{From: from, To: from, EventsPerDay: 200, ObjectsPerHour: 1, Seed: 4}); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := Main(ctx, []string{"--store", dir, "--from", "2026-03-01", "--to", "2026-03-01", "--quiet", "--log", "text"}, &stdout, &stderr); code != 0 {
		t.Fatalf("rollup: exit %d: %s", code, stderr.String())
	}
	page := filepath.Join(t.TempDir(), "r.html")
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"an unknown product", []string{"--product", "nosuch", "--out", page}, 2,
			`rollup: --product "nosuch": no such product in ` + st.String() + `; products with data: admin, blog, shop (see rollup report --help)` + "\n"},
		{"a missing folder", []string{"--out", "missing-dir/r.html"}, 2,
			"rollup: --out missing-dir/r.html: folder missing-dir does not exist; create it first, or name another (see rollup report --help)\n"},
		{"a known product", []string{"--product", "blog", "--out", page}, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(ctx, append([]string{"report", "--store", dir}, tc.args...), &stdout, &stderr)
			if code != tc.code || stderr.String() != tc.msg {
				t.Errorf("exit %d, stderr %q; want exit %d, %q", code, stderr.String(), tc.code, tc.msg)
			}
		})
	}
	if _, err := os.Stat("missing-dir"); err == nil {
		t.Errorf("a refused report made missing-dir")
	}
}
