package job

import (
	"time"

	"github.com/littlewarehouse/warehouse/internal/day"
)

// CatchUp is the range of days the nightly run builds (a rollup with no
// --from/--to, the Lambda coordinator's scheduled event): the
// maxLateness + 1 reporting days (maxLateness rounded up to whole days) that
// end yesterday in loc, as seen at now. Today is unfinished, so it is left
// out unless includeToday, which adds it as one more day at the end.
// Raw objects arriving yesterday can hold events of any of those days.
// Its first day turns final (rollups.FinalAt) at 00:15 today in loc, when
// maxLateness is whole days: a nightly run after that rebuilds it as final
// (a run between midnight and 00:15 leaves it provisional until a run
// names it).
func CatchUp(now time.Time, loc *time.Location, maxLateness time.Duration, includeToday bool) (from, to day.Day) {
	today := day.Of(now.UnixMilli(), loc)
	to = today - 1
	lateDays := day.Day((maxLateness + 24*time.Hour - 1) / (24 * time.Hour))
	from = to - lateDays
	if includeToday {
		to = today
	}
	return from, to
}
