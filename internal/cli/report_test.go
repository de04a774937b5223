package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
