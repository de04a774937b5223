// Package compact turns one reporting day's raw rows into the rows of the
// events and quarantine tables (DESIGN §3): it attributes each row to a day
// under the clock-skew rule, validates, deduplicates on event_id, derives
// user_key and session_key, and sorts.
//
// Work is split in two so that raw rows are never held longer than one
// object: Route turns one object's rows into per-day Parts (candidate events
// and quarantine rows) as soon as the object is read; Build then makes a day
// from all of its Parts.
//
// Events are held as columns (package frame): Route interns each Part's
// strings in a dictionary of its own, and Build merges the Parts into one
// frame.Events and works on integer ids, ranks and offsets only, with no
// struct, string or map per event.
package compact

import (
	"cmp"
	"fmt"
	"math"
	"time"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/frame"
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

// Bounds on received_at against the object's arrival hour (the hour of the
// oldest record in the object, from its key). The collector stamps
// received_at just before Firehose receives the record, so received_at is a
// little before the arrival; Firehose buffers up to 15 minutes and retries a
// failed S3 delivery for up to 24 hours. A received_at outside
// [arrival hour − MaxDeliveryDelay, arrival hour + MaxReceivedAhead] is not
// a time the row can have been received at (a collector clock in 2099 or
// 1970, a writer that is not our collector): the row is invalid
// (ReasonImplausibleReceivedAt) and counts, in quarantine, on its arrival
// day. So every row lands on a day near its object's arrival, which the
// planner's window covers: no row can fall on a day no run reads.
const (
	MaxDeliveryDelay = 25 * time.Hour
	MaxReceivedAhead = 3 * time.Hour
)

// PlausibleReceivedAt reports whether a row's received_at can be true of an
// object that arrived in the hour starting at arrival (Unix ms).
func PlausibleReceivedAt(row *raw.Row, arrival int64) bool {
	return row.ReceivedAt >= arrival-MaxDeliveryDelay.Milliseconds() && row.ReceivedAt <= arrival+MaxReceivedAhead.Milliseconds()
}

// Attribute decides when a row counts: its event_time, unless that is
// missing, earlier than received_at − MaxLateness or later than received_at +
// MaxAhead, in which case received_at (skewed). A row with no received_at
// counts at fallback, the arrival hour of its object (an event_time alone
// could be any date, and the row would land on a day no run builds); it is
// invalid anyway, and so reaches quarantine on its arrival day.
//
// A row whose received_at is implausible for its object (see
// PlausibleReceivedAt) also counts at fallback: it is invalid, and reaches
// quarantine on its arrival day.
func (r Rules) Attribute(row *raw.Row, fallback int64) (at int64, skewed bool) {
	if !row.HasReceivedAt || !PlausibleReceivedAt(row, fallback) {
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
	// ReasonImplausibleReceivedAt: received_at far from the object's
	// arrival hour (see PlausibleReceivedAt).
	ReasonImplausibleReceivedAt = "implausible_received_at"
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

// Part is what one raw object holds for one day. A Part stands alone (it
// may be stored by itself, as a segment file): its Events have a dictionary
// of their own.
type Part struct {
	// Events are the valid rows as candidate events: not deduplicated,
	// UserKey set (UserKey of user_id and device_id), SessionKey all ""
	// (id 0; Build sets it). EventTime is the attributed time (see
	// Attribute), ClientTime the client's event_time (0 if none), Skewed
	// whether event_time was replaced. Never nil when made by Route;
	// Build takes nil for no events.
	Events *frame.Events
	// Quarantine are the invalid rows, in the object's order.
	Quarantine []rollups.Quarantine
	// RepairedUTF8 counts the rows (valid or not) whose strings held
	// invalid UTF-8, replaced by U+FFFD when read (raw.Row.InvalidUTF8).
	RepairedUTF8 int64
}

// Route splits one object's rows by the day they count on (Attribute, then
// day.Of in r.Loc), keeping only the days want accepts (want is called once
// per day the rows fall on). fallback is the object's arrival hour (Unix
// ms). A row is invalid if Validate gives a reason or its received_at is
// implausible (ReasonImplausibleReceivedAt); invalid rows go to the Part's
// Quarantine, valid ones to its Events, both in the order of rows. Each Part
// gets its own frame.Dict, sized from its rows. rows are not modified; the
// Parts share their strings, and Quarantine their Properties maps.
//
// Route panics if one day's event ids in rows total 4 GiB or more (frame
// offsets are 32-bit).
func (r Rules) Route(rows []raw.Row, fallback int64, want func(day.Day) bool) map[day.Day]*Part {
	// First pass: attribute every row, and size each day.
	type routed struct {
		at     int64
		di     int32 // index in days
		skewed bool
	}
	type dayPart struct {
		d                day.Day
		rows, ids, props int
		p                *Part
		anon             []uint32 // device_id id → id of "anon:" + device_id (0: not yet)
		// Caches for the columns of few values: event_name, product,
		// platform, app_version, country, property keys and values.
		name, product, platform, version, country, key, val internCache
	}
	rs := make([]routed, len(rows))
	var days []dayPart // an object spans a day or two
	last := -1
	for i := range rows {
		row := &rows[i]
		at, skewed := r.Attribute(row, fallback)
		d := day.Of(at, r.Loc)
		if last < 0 || days[last].d != d {
			last = -1
			for j := range days {
				if days[j].d == d {
					last = j
					break
				}
			}
			if last < 0 {
				last = len(days)
				days = append(days, dayPart{d: d})
			}
		}
		rs[i] = routed{at: at, di: int32(last), skewed: skewed}
		dp := &days[last]
		dp.rows++
		dp.ids += len(row.EventID)
		dp.props += len(row.Properties)
	}
	parts := make(map[day.Day]*Part, len(days))
	for j := range days {
		dp := &days[j]
		if !want(dp.d) {
			continue
		}
		if dp.ids > math.MaxUint32 {
			panic(fmt.Sprintf("compact: more than 4 GiB of event ids for %s in one object", dp.d))
		}
		e := frame.New(frame.NewDict(dp.rows), dp.rows)
		e.IDBytes = make([]byte, 0, dp.ids)
		e.PropKey = make([]uint32, 0, dp.props)
		e.PropVal = make([]uint32, 0, dp.props)
		dp.p = &Part{Events: e}
		parts[dp.d] = dp.p
	}

	// Second pass: each row to its Part.
	var props []prop // scratch: one row's properties
	for i := range rows {
		row := &rows[i]
		dp := &days[rs[i].di]
		p := dp.p
		if p == nil {
			continue
		}
		if row.InvalidUTF8 {
			p.RepairedUTF8++
		}
		reason := Validate(row)
		if reason == "" && !PlausibleReceivedAt(row, fallback) {
			reason = ReasonImplausibleReceivedAt
		}
		if reason != "" {
			p.Quarantine = append(p.Quarantine, quarantineRow(row, reason))
			continue
		}
		e := p.Events
		dict := e.Dict
		e.IDBytes = append(e.IDBytes, row.EventID...)
		e.IDOff = append(e.IDOff, uint32(len(e.IDBytes)))
		e.EventTime = append(e.EventTime, rs[i].at)
		var client int64
		if row.HasEventTime {
			client = row.EventTime
		}
		e.ClientTime = append(e.ClientTime, client)
		e.ReceivedAt = append(e.ReceivedAt, row.ReceivedAt)
		e.Skewed = append(e.Skewed, rs[i].skewed)
		user, device := intern(dict, row.UserID), intern(dict, row.DeviceID)
		e.Str[frame.EventName] = append(e.Str[frame.EventName], dp.name.id(dict, row.EventName))
		e.Str[frame.UserID] = append(e.Str[frame.UserID], user)
		e.Str[frame.DeviceID] = append(e.Str[frame.DeviceID], device)
		e.Str[frame.SessionID] = append(e.Str[frame.SessionID], intern(dict, row.SessionID))
		e.Str[frame.Product] = append(e.Str[frame.Product], dp.product.id(dict, row.Product))
		e.Str[frame.Platform] = append(e.Str[frame.Platform], dp.platform.id(dict, row.Platform))
		e.Str[frame.AppVersion] = append(e.Str[frame.AppVersion], dp.version.id(dict, row.AppVersion))
		e.Str[frame.Country] = append(e.Str[frame.Country], dp.country.id(dict, row.Country))
		userKey := user
		if user == 0 {
			// Anonymous: "anon:" + device_id, one string per device.
			if int(device) >= len(dp.anon) {
				dp.anon = append(dp.anon, make([]uint32, dict.Len()-len(dp.anon))...)
			}
			if dp.anon[device] == 0 {
				dp.anon[device] = dict.ID(UserKey("", row.DeviceID))
			}
			userKey = dp.anon[device]
		}
		e.Str[frame.UserKey] = append(e.Str[frame.UserKey], userKey)
		e.Str[frame.SessionKey] = append(e.Str[frame.SessionKey], 0)
		if len(row.Properties) > 0 {
			props = props[:0]
			for k, v := range row.Properties {
				props = append(props, prop{k, v})
			}
			sortProps(props)
			for _, kv := range props {
				e.PropKey = append(e.PropKey, dp.key.id(dict, kv.k))
				e.PropVal = append(e.PropVal, dp.val.id(dict, kv.v))
			}
		}
		e.PropOff = append(e.PropOff, uint32(len(e.PropKey)))
	}
	return parts
}

// intern returns s's id in d; "" is always 0.
func intern(d *frame.Dict, s string) uint32 {
	if s == "" {
		return 0
	}
	return d.ID(s)
}

// internCache is a small direct-mapped cache in front of a Dict, for a
// column of few distinct values: a hit costs a string comparison (of one
// pointer, mostly: the raw reader shares equal strings) rather than a map
// lookup.
type internCache struct {
	strs [256]string
	ids  [256]uint32
}

// id returns s's id in d (0 for "").
func (c *internCache) id(d *frame.Dict, s string) uint32 {
	n := len(s)
	if n == 0 {
		return 0
	}
	// A hash of the length and the last bytes, where values of a column
	// mostly differ ("event_07", "1.10").
	h := uint(n)
	for i := max(0, n-6); i < n; i++ {
		h = h*31 + uint(s[i])
	}
	h = (h ^ h>>8) & 255
	if c.strs[h] == s {
		return c.ids[h]
	}
	id := d.ID(s)
	c.strs[h], c.ids[h] = s, id
	return id
}

type prop struct{ k, v string }

// sortProps sorts one row's properties by key, in byte order (an insertion
// sort: a row has a handful of properties; keys of a map are distinct).
func sortProps(ps []prop) {
	for i := 1; i < len(ps); i++ {
		for j := i; j > 0 && ps[j].k < ps[j-1].k; j-- {
			ps[j], ps[j-1] = ps[j-1], ps[j]
		}
	}
}

// UserKey is user_id if set, else "anon:" + device_id.
func UserKey(userID, deviceID string) string {
	if userID != "" {
		return userID
	}
	return "anon:" + deviceID
}

// compareQuarantine orders quarantine rows by reason, source object, then
// the row's own columns; rows equal in all of these stay in their order.
func compareQuarantine(a, b rollups.Quarantine) int {
	return cmp.Or(cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.SourceObject, b.SourceObject),
		cmp.Compare(a.EventID, b.EventID), cmp.Compare(a.ReceivedAt, b.ReceivedAt),
		cmp.Compare(a.EventTime, b.EventTime), cmp.Compare(a.EventName, b.EventName),
		cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.DeviceID, b.DeviceID))
}

// quarantineRow is r as read, with why it is invalid.
func quarantineRow(r *raw.Row, reason string) rollups.Quarantine {
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
