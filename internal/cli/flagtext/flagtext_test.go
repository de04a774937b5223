package flagtext

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"168h", 168 * time.Hour, true},
		{"7d", 7 * 24 * time.Hour, true},
		{"1.5d", 36 * time.Hour, true},
		{"7d12h", 7*24*time.Hour + 12*time.Hour, true},
		{"0", 0, true},
		{"30m", 30 * time.Minute, true},
		{"7", 0, false},
		{"d", 0, false},
		{"-1d", 0, false},
		{"-1h", 0, false},
		{"1d-1h", 0, false},
		{"7days", 0, false},
		{"", 0, false},
	} {
		got, err := ParseDuration(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
	for d, want := range map[time.Duration]string{7 * 24 * time.Hour: "7d", time.Hour: "1h", 30 * time.Second: "30s", 90 * time.Minute: "1h30m", 0: "0s", 36 * time.Hour: "36h"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestMessages: a parse error names the flag with two dashes and, for a
// duration, the form it wants; --help lists every flag with two dashes.
func TestMessages(t *testing.T) {
	newFS := func() *flag.FlagSet {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var d time.Duration
		DurationVar(fs, &d, "max-lateness", 7*24*time.Hour, "how late an event may be")
		fs.String("store", "./data", "where the `dir` is\non two lines")
		fs.Bool("force", false, "rebuild")
		fs.Int("parallel", 8, "how many")
		return fs
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-lateness", "7"}, `--max-lateness "7": want a duration like 168h, 7d, 90m or 0`},
		{[]string{"--frm", "x"}, "unknown flag --frm"},
		{[]string{"--store"}, "--store needs a value"},
		{[]string{"--force=maybe"}, `--force "maybe": not a valid value`},
		{[]string{"--parallel", "many"}, `--parallel "many": not a valid value`},
	} {
		err := newFS().Parse(tc.args)
		if err == nil {
			t.Fatalf("%v parsed", tc.args)
		}
		if got := Message(err); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.args, got, tc.want)
		}
	}
	var b bytes.Buffer
	PrintDefaults(newFS(), &b)
	help := b.String()
	for _, want := range []string{"  --max-lateness value\n", "(default 7d)", "  --store dir\n", "\n    \ton two lines", "  --force\n", "  --parallel int\n"} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	for _, line := range strings.Split(help, "\n") {
		if strings.HasPrefix(line, "  -") && !strings.HasPrefix(line, "  --") {
			t.Errorf("a flag with one dash: %q", line)
		}
	}
}
