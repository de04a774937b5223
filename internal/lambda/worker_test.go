package lambda

import (
	"testing"

	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/rollups"
)

// TestDayStatsSplitMissingAndSkewedTimes: a day's events sent without an
// event_time and those whose event_time was off reach the worker's report,
// the run's totals and the EMF metrics as two numbers
// (MissingEventTimeRows, ClockSkewedRows), not one.
func TestDayStatsSplitMissingAndSkewedTimes(t *testing.T) {
	q := rollups.DataQualityDaily{KeptRows: 9, MissingEventTimeRows: 2, ClockSkewedRows: 1}
	s := dayStats(&job.Summary{}, job.DaySummary{Quality: q})
	var total DayStats
	total.add(s)
	total.add(s)
	for _, c := range []struct {
		stats           *DayStats
		missing, skewed float64
	}{{s, 2, 1}, {&total, 4, 2}} {
		got := map[string]float64{}
		for _, m := range c.stats.metrics(1) {
			got[m.Name] = m.Value
		}
		if got["MissingEventTimeRows"] != c.missing || got["ClockSkewedRows"] != c.skewed {
			t.Errorf("metrics %v: want MissingEventTimeRows %v and ClockSkewedRows %v", got, c.missing, c.skewed)
		}
	}
}
