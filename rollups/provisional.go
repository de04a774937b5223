package rollups

import (
	"time"

	"github.com/littlewarehouse/warehouse/internal/day"
)

// FirehoseBufferBound is how long Firehose holds a record before delivering
// it to S3: its largest buffering interval (900 seconds).
const FirehoseBufferBound = 15 * time.Minute

// FinalAt is when day d (in loc) becomes final: its end, plus maxLateness
// (the latest an event of the day can be received, docs/design.md §What every number means), plus
// FirehoseBufferBound (the latest such an event is in S3). A day built
// before FinalAt is provisional: its late events may still arrive, and its
// numbers still grow. A day built at or after it is final. (Firehose retries
// a failed delivery to S3 for up to 24 hours; a record so delayed can still
// restate a final day, which the restatements table records.)
func FinalAt(d day.Day, loc *time.Location, maxLateness time.Duration) time.Time {
	return d.End(loc).Add(maxLateness + FirehoseBufferBound)
}

// Provisional reports whether day d, built at builtAt, is provisional.
func Provisional(d day.Day, loc *time.Location, maxLateness time.Duration, builtAt time.Time) bool {
	return builtAt.Before(FinalAt(d, loc, maxLateness))
}

// Status is "provisional" or "final": the mark of a day built at builtAt,
// as manifests record it.
func Status(provisional bool) string {
	if provisional {
		return "provisional"
	}
	return "final"
}
