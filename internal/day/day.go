// Package day is the calendar date of the reporting time zone that every
// curated partition is keyed by (docs/design.md §What every number means).
package day

import (
	"fmt"
	"time"
)

// Day is a calendar date, counted in days since 1970-01-01. It has no time
// zone of its own: which instants belong to it depends on the reporting zone
// (see Start and Of).
type Day int32

// Layout is how a Day is written: 2006-01-02.
const Layout = "2006-01-02"

// FromDate returns the Day of a calendar date.
func FromDate(y int, m time.Month, d int) Day {
	return Day(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// Parse parses YYYY-MM-DD.
func Parse(s string) (Day, error) {
	t, err := time.Parse(Layout, s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a date (want YYYY-MM-DD)", s)
	}
	return FromDate(t.Date()), nil
}

// Of returns the Day that the instant ms (Unix milliseconds) falls on in loc.
func Of(ms int64, loc *time.Location) Day {
	if loc == time.UTC {
		return Day(floorDiv(ms, 86_400_000))
	}
	return FromDate(time.UnixMilli(ms).In(loc).Date())
}

// Start returns the first instant of d in loc.
func (d Day) Start(loc *time.Location) time.Time {
	y, m, dd := d.UTC().Date()
	return time.Date(y, m, dd, 0, 0, 0, 0, loc)
}

// End returns the first instant of the next day in loc.
func (d Day) End(loc *time.Location) time.Time { return (d + 1).Start(loc) }

// UTC returns midnight UTC of d.
func (d Day) UTC() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

func (d Day) String() string { return d.UTC().Format(Layout) }

// Range returns the days from..to inclusive.
func Range(from, to Day) []Day {
	var out []Day
	for d := from; d <= to; d++ {
		out = append(out, d)
	}
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
