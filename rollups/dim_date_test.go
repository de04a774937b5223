package rollups

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/day"
)

// TestDimDateAgainstDuckDB compares dim_date computed in Go with the
// reference SQL run by DuckDB over built days with gaps, across two year
// ends where ISO weeks and years differ from the calendar's (2020 has a
// week 53; 2021-01-01..03 belong to it, and 2024-12-30 is in week 1 of
// 2025).
func TestDimDateAgainstDuckDB(t *testing.T) {
	for _, span := range [][2]day.Day{
		{day.FromDate(2020, 12, 20), day.FromDate(2021, 1, 15)},
		{day.FromDate(2024, 12, 1), day.FromDate(2025, 3, 31)},
	} {
		b := builtDays(nil, span[0], span[1], []day.Day{span[0] + 3, span[0] + 4, span[0] + 20}, []day.Day{span[1] - 1, span[1]})
		from, to, ok := DimDateSpan(b)
		if !ok || from != span[0] || to != span[1] {
			t.Fatalf("span %s..%s, want %s..%s", from, to, span[0], span[1])
		}
		var want []DimDate
		for d := from; d <= to; d++ {
			want = append(want, DimDateOf(d, b))
		}
		db := openDuck(t)
		setBuilt(t, db, b)
		var got []DimDate
		for _, r := range refQuery(t, db, "dim_date") {
			if r["dt"] != r["date"] {
				t.Errorf("dt %v, date %v", r["dt"], r["date"])
			}
			got = append(got, DimDate{Date: int32(mustDay(t, r["date"])), Year: r["year"].(int64), Quarter: r["quarter"].(int64),
				Month: r["month"].(int64), MonthName: r["month_name"].(string), ISOYear: r["iso_year"].(int64), ISOWeek: r["iso_week"].(int64),
				Weekday: r["weekday"].(int64), WeekdayName: r["weekday_name"].(string), Weekend: r["weekend"].(bool),
				Built: r["built"].(bool), Provisional: r["provisional"].(bool)})
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("dim_date %s..%s: Go differs from the reference SQL (-go +sql):\n%s", from, to, diff)
		}
	}
	// By hand: 2021-01-03 is a Sunday in week 53 of 2020; a gap day is
	// not built and not final.
	b := builtDays(nil, day.FromDate(2021, 1, 1), day.FromDate(2021, 1, 5), []day.Day{day.FromDate(2021, 1, 4)}, nil)
	want := DimDate{Date: int32(day.FromDate(2021, 1, 3)), Year: 2021, Quarter: 1, Month: 1, MonthName: "January", ISOYear: 2020, ISOWeek: 53,
		Weekday: 7, WeekdayName: "Sunday", Weekend: true, Built: true}
	if diff := cmp.Diff(want, DimDateOf(day.FromDate(2021, 1, 3), b)); diff != "" {
		t.Errorf("2021-01-03 (-want +got):\n%s", diff)
	}
	if r := DimDateOf(day.FromDate(2021, 1, 4), b); r.Built || !r.Provisional || r.Weekday != 1 || r.ISOWeek != 1 {
		t.Errorf("2021-01-04, never built: %+v", r)
	}
	if _, _, ok := DimDateSpan(Built{}); ok {
		t.Error("span of nothing built")
	}
	db := openDuck(t)
	setBuilt(t, db, Built{})
	if rows := refQuery(t, db, "dim_date"); len(rows) != 0 {
		t.Errorf("nothing built: the SQL gives %v", rows)
	}
}
