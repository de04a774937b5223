package rollups

import (
	"github.com/littlewarehouse/warehouse/internal/day"
)

// DimDate is one calendar day of the store's time zone: the date table
// Power BI marks as such and relates every table's day to. Grain: dt (one
// row per partition), every day from the first built day through the last
// one, gaps included, so the dates are continuous.
type DimDate struct {
	Date        int32  `parquet:"date,date" doc:"the day (the same as dt, as a DATE): a calendar day in the store's time zone"`
	Year        int64  `parquet:"year" doc:"calendar year"`
	Quarter     int64  `parquet:"quarter" doc:"quarter of the year, 1 to 4"`
	Month       int64  `parquet:"month" doc:"month of the year, 1 to 12"`
	MonthName   string `parquet:"month_name" doc:"January ... December"`
	ISOYear     int64  `parquet:"iso_year" doc:"the ISO 8601 week-numbering year: the year of the week's Thursday (it differs from year in a few days around 1 January)"`
	ISOWeek     int64  `parquet:"iso_week" doc:"ISO 8601 week of iso_year, 1 to 53 (weeks start on Monday)"`
	Weekday     int64  `parquet:"weekday" doc:"ISO 8601 day of the week, 1 (Monday) to 7 (Sunday)"`
	WeekdayName string `parquet:"weekday_name" doc:"Monday ... Sunday"`
	Weekend     bool   `parquet:"weekend" doc:"true on Saturday and Sunday"`
	Built       bool   `parquet:"built" doc:"true if the day is built (its user_daily is committed); false for a day never built between built ones, whose numbers are not computed"`
	Provisional bool   `parquet:"provisional" doc:"true if the day is not final: built provisional (late events may still arrive), or never built"`
}

// DimDateSpan returns the days dim_date covers: the first built day
// through the last one (ok is false if no day is built).
func DimDateSpan(b Built) (from, to day.Day, ok bool) {
	for d := range b.Days {
		if !ok || d < from {
			from = d
		}
		if !ok || d > to {
			to = d
		}
		ok = true
	}
	return from, to, ok
}

// DimDateOf returns day d's row of dim_date, given what b says is built.
func DimDateOf(d day.Day, b Built) DimDate {
	t := d.UTC()
	isoYear, isoWeek := t.ISOWeek()
	wd := int64(t.Weekday())
	if wd == 0 {
		wd = 7
	}
	prov, built := b.Days[d]
	return DimDate{Date: int32(d), Year: int64(t.Year()), Quarter: int64(t.Month()-1)/3 + 1, Month: int64(t.Month()),
		MonthName: t.Month().String(), ISOYear: int64(isoYear), ISOWeek: int64(isoWeek), Weekday: wd, WeekdayName: t.Weekday().String(),
		Weekend: wd >= 6, Built: built, Provisional: prov || !built}
}
