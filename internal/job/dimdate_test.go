package job

import (
	"context"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// TestDimDateCoversGaps builds two days three days apart: dim_date has
// every day between them, the two in the middle not built and not final;
// building those turns their rows built, and the rows of the days already
// right are not republished.
func TestDimDateCoversGaps(t *testing.T) {
	ctx := context.Background()
	d := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	first := day.FromDate(d.Date())
	now := func() time.Time { return d.AddDate(0, 1, 0) } // every day final
	rules := compact.DefaultRules(time.UTC)
	st := store.NewMem()
	for n := range 4 {
		at := d.AddDate(0, 0, n).Add(10 * time.Hour)
		writeRaw(t, st, "raw/"+at.Format("2006/01/02/15")+"/events-1-"+at.Format("2006-01-02-15-04-05")+"-x",
			[]event.Raw{{EventID: at.String(), EventTime: at, ReceivedAt: at, EventName: "view", UserID: "ann", Product: "shop"}})
	}
	check := func(when string, builtDays ...day.Day) {
		t.Helper()
		for x := first; x <= first+3; x++ {
			rows := readRows[rollups.DimDate](t, st, "dim_date", x)
			built := false
			for _, b := range builtDays {
				built = built || b == x
			}
			if len(rows) != 1 || rows[0].Date != int32(x) || rows[0].Built != built || rows[0].Provisional == built {
				t.Errorf("%s: dim_date %s = %+v, want built %t", when, x, rows, built)
			}
		}
	}
	for _, x := range []day.Day{first, first + 3} {
		if _, err := Run(ctx, Config{Store: st, From: x, To: x, Rules: rules, Now: now}); err != nil {
			t.Fatal(err)
		}
	}
	check("days 0 and 3 built", first, first+3)
	sum, err := Run(ctx, Config{Store: st, From: first + 1, To: first + 2, Rules: rules, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	check("every day built", first, first+1, first+2, first+3)
	if sum.Windowed == nil || sum.Windowed.Dates != 2 {
		t.Errorf("dim_date partitions republished: %+v, want the 2 days built now", sum.Windowed)
	}
}
