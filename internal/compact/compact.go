// Package compact turns one reporting day's raw rows into the rows of the
// events and quarantine tables (DESIGN §3): it attributes each row to a day
// under the clock-skew rule, validates, deduplicates on event_id, derives
// user_key and session_key, and sorts.
package compact

import (
	"cmp"
	"slices"
	"time"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/raw"
	"github.com/littlewarehouse/warehouse/rollups"
)

// Rules are the semantic knobs of DESIGN §3.
type Rules struct {
	Loc         *time.Location // reporting time zone
	MaxLateness time.Duration  // event_time earlier than received_at − this is skewed (default 7 days)
	MaxAhead    time.Duration  // event_time later than received_at + this is skewed (10 minutes)
	SessionGap  time.Duration  // inactivity that starts a new inferred session (30 minutes)
}

// DefaultRules returns the rules of DESIGN §3 for loc.
func DefaultRules(loc *time.Location) Rules {
	return Rules{Loc: loc, MaxLateness: 7 * 24 * time.Hour, MaxAhead: 10 * time.Minute, SessionGap: 30 * time.Minute}
}

// Routed is a raw row attributed to a day.
type Routed struct {
	raw.Row
	Time   int64 // the time the row counts at (event_time or received_at), ms
	Skewed bool  // Time is received_at because event_time was missing or off
}

// Attribute decides when a row counts: its event_time, unless that is
// missing, earlier than received_at − MaxLateness or later than received_at +
// MaxAhead, in which case received_at (skewed). A row with no received_at
// counts at fallback (the arrival hour of its object) and is invalid anyway.
func (r Rules) Attribute(row *raw.Row, fallback int64) (at int64, skewed bool) {
	if !row.HasReceivedAt {
		if row.HasEventTime {
			return row.EventTime, false
		}
		return fallback, true
	}
	if !row.HasEventTime ||
		row.EventTime < row.ReceivedAt-r.MaxLateness.Milliseconds() ||
		row.EventTime > row.ReceivedAt+r.MaxAhead.Milliseconds() {
		return row.ReceivedAt, true
	}
	return row.EventTime, false
}

// Invalid reasons.
const (
	ReasonMissingEventID    = "missing_event_id"
	ReasonMissingReceivedAt = "missing_received_at"
	ReasonMissingEventName  = "missing_event_name"
	ReasonMissingUser       = "missing_user"
)

// Validate returns why row cannot be used, or "" if it can.
func Validate(row *raw.Row) string {
	switch {
	case row.EventID == "":
		return ReasonMissingEventID
	case !row.HasReceivedAt:
		return ReasonMissingReceivedAt
	case row.EventName == "":
		return ReasonMissingEventName
	case row.UserID == "" && row.DeviceID == "":
		return ReasonMissingUser
	}
	return ""
}

// Stats counts what Build did with a day's rows.
type Stats struct {
	RawRows, ValidRows, KeptRows, Duplicates, Invalid, Skewed int64
}

// Day is the result of building one day.
type Day struct {
	Events     []rollups.Event // deduplicated, sorted by (event_name, user_key, event_time, event_id)
	Quarantine []rollups.Quarantine
	Stats      Stats
}

// Build builds day d from all the rows attributed to it, in any order. It is
// deterministic: the same rows in any order give the same result. rows is
// reordered.
func Build(d day.Day, rows []Routed, rules Rules) Day {
	var out Day
	out.Stats.RawRows = int64(len(rows))
	valid := rows[:0:0]
	for i := range rows {
		r := &rows[i]
		if reason := Validate(&r.Row); reason != "" {
			out.Quarantine = append(out.Quarantine, quarantineRow(r, reason))
			continue
		}
		valid = append(valid, *r)
	}
	rows = nil
	out.Stats.Invalid = int64(len(out.Quarantine))
	out.Stats.ValidRows = int64(len(valid))
	slices.SortFunc(out.Quarantine, compareQuarantine)

	// Dedupe: sort by event_id, then the earliest received_at, then source,
	// so that the kept copy is the same whatever order rows came in.
	slices.SortFunc(valid, func(a, b Routed) int {
		return cmp.Or(cmp.Compare(a.EventID, b.EventID), cmp.Compare(a.ReceivedAt, b.ReceivedAt),
			cmp.Compare(a.Source, b.Source), cmp.Compare(a.Time, b.Time))
	})
	kept := valid[:0]
	for i := range valid {
		if i > 0 && valid[i].EventID == valid[i-1].EventID {
			continue
		}
		kept = append(kept, valid[i])
	}
	out.Stats.Duplicates = int64(len(valid) - len(kept))
	out.Stats.KeptRows = int64(len(kept))

	events := make([]rollups.Event, len(kept))
	for i := range kept {
		r := &kept[i]
		e := &events[i]
		*e = rollups.Event{
			EventID: r.EventID, EventTime: r.Time, ReceivedAt: r.ReceivedAt,
			EventName: r.EventName, UserID: r.UserID, DeviceID: r.DeviceID, SessionID: r.SessionID,
			Product: r.Product, Platform: r.Platform, AppVersion: r.AppVersion, Country: r.Country,
			Properties: r.Properties, ClockSkewed: r.Skewed,
		}
		if r.HasEventTime {
			e.ClientEventTime = r.EventTime
		}
		if r.Skewed {
			out.Stats.Skewed++
		}
		e.UserKey = UserKey(r.UserID, r.DeviceID)
	}
	kept, valid = nil, nil
	assignSessions(events, rules.SessionGap.Milliseconds())
	slices.SortFunc(events, compareEvents)
	out.Events = events
	return out
}

// UserKey is user_id if set, else "anon:" + device_id.
func UserKey(userID, deviceID string) string {
	if userID != "" {
		return userID
	}
	return "anon:" + deviceID
}

func compareEvents(a, b rollups.Event) int {
	return cmp.Or(cmp.Compare(a.EventName, b.EventName), cmp.Compare(a.UserKey, b.UserKey),
		cmp.Compare(a.EventTime, b.EventTime), cmp.Compare(a.EventID, b.EventID))
}

func compareQuarantine(a, b rollups.Quarantine) int {
	return cmp.Or(cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.SourceObject, b.SourceObject),
		cmp.Compare(a.EventID, b.EventID), cmp.Compare(a.ReceivedAt, b.ReceivedAt),
		cmp.Compare(a.EventTime, b.EventTime), cmp.Compare(a.EventName, b.EventName),
		cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.DeviceID, b.DeviceID))
}

func quarantineRow(r *Routed, reason string) rollups.Quarantine {
	q := rollups.Quarantine{
		Reason: reason, SourceObject: r.Source, EventID: r.EventID, EventName: r.EventName,
		UserID: r.UserID, DeviceID: r.DeviceID, SessionID: r.SessionID, Product: r.Product,
		Platform: r.Platform, AppVersion: r.AppVersion, Country: r.Country, Properties: r.Properties,
	}
	if r.HasEventTime {
		q.EventTime = r.EventTime
	}
	if r.HasReceivedAt {
		q.ReceivedAt = r.ReceivedAt
	}
	return q
}

// assignSessions sets SessionKey: "s:" + session_id when the client sent
// one; otherwise events of the same product and user_key without a
// session_id, in time order, form sessions that end after gap milliseconds
// without an event (a gap of exactly gap continues the session). The events
// are of one day, so sessions are split at midnight by construction.
func assignSessions(events []rollups.Event, gap int64) {
	var inferred []int
	for i := range events {
		if events[i].SessionID != "" {
			events[i].SessionKey = "s:" + events[i].SessionID
		} else {
			inferred = append(inferred, i)
		}
	}
	slices.SortFunc(inferred, func(i, j int) int {
		a, b := &events[i], &events[j]
		return cmp.Or(cmp.Compare(a.Product, b.Product), cmp.Compare(a.UserKey, b.UserKey),
			cmp.Compare(a.EventTime, b.EventTime), cmp.Compare(a.EventID, b.EventID))
	})
	var key string
	for n, i := range inferred {
		e := &events[i]
		if n == 0 {
			key = sessionKey(e)
		} else {
			p := &events[inferred[n-1]]
			if p.Product != e.Product || p.UserKey != e.UserKey || e.EventTime-p.EventTime > gap {
				key = sessionKey(e)
			}
		}
		e.SessionKey = key
	}
}

func sessionKey(e *rollups.Event) string {
	return "i:" + e.Product + "|" + e.UserKey + "|" + time.UnixMilli(e.EventTime).UTC().Format("2006-01-02T15:04:05.000Z")
}
