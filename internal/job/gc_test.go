package job

import (
	"runtime/debug"
	"testing"
)

// gogc returns the current GOGC.
func gogc() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// collectOften keeps the lowest GOGC asked for while any caller holds it,
// and restores the one before the first caller after the last.
func TestCollectOften(t *testing.T) {
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	small := collectOften(gcSmallPercent)
	big := collectOften(gcBigPercent)
	peak := collectOften(gcPeakPercent)
	steps := []struct {
		release func()
		want    int
	}{{nil, gcPeakPercent}, {peak, gcBigPercent}, {small, gcBigPercent}, {big, 100}}
	for i, s := range steps {
		if s.release != nil {
			s.release()
		}
		if got := gogc(); got != s.want {
			t.Fatalf("step %d: GOGC %d, want %d", i, got, s.want)
		}
	}
	t.Setenv("GOGC", "50") // the operator's choice stands
	restore := collectOften(gcPeakPercent)
	if got := gogc(); got != 100 {
		t.Fatalf("with GOGC set: GOGC %d, want it left at 100", got)
	}
	restore()
}
