package main

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGroup(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 5000000: "5,000,000", -1234567: "-1,234,567", 123456: "123,456"} {
		if got := group(n); got != want {
			t.Errorf("group(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestFinishAndTable(t *testing.T) {
	r := DataSetResult{
		Name: "1day",
		Ours: Side{Runs: []Measure{
			{WallSeconds: 80, MaxRSSKiB: 8 << 20},
			{WallSeconds: 75, MaxRSSKiB: 9 << 20},
		}},
		DuckDB:       Side{Runs: []Measure{{WallSeconds: 25, MaxRSSKiB: 4 << 20}, {WallSeconds: 30, MaxRSSKiB: 3 << 20}}},
		OursEvents:   5_000_000,
		DuckDBEvents: 4_999_999,
	}
	r.finish()
	if r.Ours.Best.WallSeconds != 75 || r.Ours.Best.MaxRSSKiB != 8<<20 {
		t.Errorf("ours best = %+v, want the lowest wall and the lowest RSS", r.Ours.Best)
	}
	if r.WallRatio != 3 || r.RSSRatio != 8.0/3 {
		t.Errorf("ratios = %v, %v; want 3, 2.67", r.WallRatio, r.RSSRatio)
	}
	if len(r.PairedWallRatios) != 2 || r.PairedWallRatios[0] != 80.0/25 || r.PairedWallRatios[1] != 2.5 || r.MedianPairedWallRatio != (3.2+2.5)/2 {
		t.Errorf("paired ratios %v, median %v; want [3.2 2.5], 2.85", r.PairedWallRatios, r.MedianPairedWallRatio)
	}
	if got := median([]float64{0.3, 0.1, 0.2}); got != 0.2 {
		t.Errorf("median of three = %v, want 0.2", got)
	}
	if r.OursEventsPerSecond != 5_000_000.0/75 || r.RowsMatch {
		t.Errorf("events/s %v, rows match %v", r.OursEventsPerSecond, r.RowsMatch)
	}

	month := DataSetResult{Name: "30day", RowsMatch: true, Ours: Side{Runs: []Measure{{WallSeconds: 9, MaxRSSKiB: 3 << 20}}},
		OneDay: &Side{Runs: []Measure{{WallSeconds: 1, MaxRSSKiB: 2 << 20}}}, OneDayName: "2026-01-15"}
	month.finish()
	if month.RangeRSSOverDay != 1.5 {
		t.Errorf("range over one day = %v, want 1.5", month.RangeRSSOverDay)
	}
	var b strings.Builder
	if err := FormatTable(&b, Report{Cores: 2, Runs: 2, Go: "go1.26", OSArch: "linux/amd64", DataSets: []DataSetResult{r, {Name: "30day", RowsMatch: true}, month}}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Log("\n" + out)
	for _, want := range []string{"cores: 2", "best of 2", "5,000,000", "75.00", "8,192 MiB", "3,072 MiB", "3.00×", "2.67×", "66,667", "WARNING: 1day", "4,999,999", "one of its days (2026-01-15) built alone 2,048 MiB: 1.50×",
		"1day: wall ours/DuckDB run by run (the two back to back): 3.200×, 2.500×; median 2.850×"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	lines := strings.Split(out, "\n")
	if len(lines) < 4 || utf8.RuneCountInString(lines[1]) != utf8.RuneCountInString(lines[2]) || utf8.RuneCountInString(lines[2]) != utf8.RuneCountInString(lines[3]) {
		t.Errorf("columns not aligned:\n%s", out)
	}
	if strings.Contains(lines[3], "×") {
		t.Errorf("a data set without figures shows a ratio: %q", lines[3])
	}
	if times(0) != "-" || ratio(1, 0) != 0 {
		t.Error("no ratio without a denominator")
	}
}
