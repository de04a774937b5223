package store_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/internal/store/storetest"
)

// ignoresTag is a store with a planted bug: its Replace is a plain Put
// that ignores the tag.
type ignoresTag struct{ *store.Mem }

func (s ignoresTag) Replace(ctx context.Context, key string, data []byte, _ string) (string, error) {
	if err := s.Put(ctx, key, data); err != nil {
		return "", err
	}
	_, tag, err := s.GetTag(ctx, key)
	return tag, err
}

// TestConformanceCatchesAReplaceThatIgnoresItsTag runs the suite, in a
// child process, against a store whose Replace ignores its tag: the suite
// must fail it, in the stale-tag and race checks.
func TestConformanceCatchesAReplaceThatIgnoresItsTag(t *testing.T) {
	if os.Getenv("LW_PLANTED_BUG") == "1" {
		storetest.Run(t, func(t *testing.T) store.Store { return ignoresTag{store.NewMem()} })
		return
	}
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestConformanceCatchesAReplaceThatIgnoresItsTag$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "LW_PLANTED_BUG=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the suite passed a store whose Replace ignores its tag:\n%s", out)
	}
	for _, want := range []string{
		"--- FAIL: TestConformanceCatchesAReplaceThatIgnoresItsTag/Conditional/Replace_with_a_stale_tag_is_ErrConflict_and_changes_nothing",
		"--- FAIL: TestConformanceCatchesAReplaceThatIgnoresItsTag/Conditional/Replace_of_a_missing_key_is_ErrConflict_and_creates_nothing",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the suite's output lacks %q:\n%s", want, out)
		}
	}
}
