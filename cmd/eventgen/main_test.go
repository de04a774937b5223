package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

// TestHelpAndFlagErrors: --help lists every flag with two dashes, as the
// docs name them; a bad flag is a usage error naming it so.
func TestHelpAndFlagErrors(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"--help"}, time.Now(), &out, io.Discard)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"\n  --out string\n", "\n  --nasty\n", "(default 200000)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q:\n%s", want, out.String())
		}
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(line, "  -") && !strings.HasPrefix(line, "  --") {
			t.Errorf("a flag with one dash: %q", line)
		}
	}
	for args, want := range map[string]string{
		"--frm 2026-01-01":         "unknown flag --frm",
		"--events-per-day many":    `--events-per-day "many": not a valid value`,
		"--from 2026-13-01 --to x": `--from "2026-13-01": want YYYY-MM-DD`,
	} {
		err := run(context.Background(), strings.Fields(args), time.Now(), io.Discard, io.Discard)
		var ue usageError
		if !errors.As(err, &ue) || ue.Error() != want {
			t.Errorf("%s: %v, want the usage error %q", args, err, want)
		}
	}
}
