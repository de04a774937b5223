package event

import "time"

// Limits of one raw event. The collector refuses an event past any of them,
// so every event that reaches raw/ fits them; readers of raw/ may rely on
// them (a page header holds a column's min and max value, so a string column
// bounds the header too). docs/collector.md lists them.
const (
	// MaxStringBytes bounds a string column (event_name, user_id, ...) and
	// a property value, in bytes of UTF-8.
	MaxStringBytes = 64 << 10
	// MaxPropertyKeyBytes bounds a property key, in bytes of UTF-8.
	MaxPropertyKeyBytes = 256
	// MaxProperties bounds the keys of an event's properties.
	MaxProperties = 256
)

// The range of a time the collector accepts (event_time), so that the
// tables keep it: they hold INT64 milliseconds since the epoch, where the
// rollup takes 0 for "no time", and the time 0001-01-01T00:00:00Z is Go's
// zero time, written as null. MinTime is 1970-01-01T00:00:00.001Z (the
// epoch itself and earlier times are refused), MaxTime
// 9999-12-31T23:59:59.999Z (the last millisecond of a four-digit year).
var (
	MinTime = time.UnixMilli(1).UTC()
	MaxTime = time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC)
)
