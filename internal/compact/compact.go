// Package compact turns one reporting day's raw rows into the rows of the
// events and quarantine tables (docs/design.md §What every number means): it attributes each row to a day
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
	"slices"
	"time"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/frame"
	"github.com/littlewarehouse/warehouse/internal/raw"
	"github.com/littlewarehouse/warehouse/rollups"
)

// Rules are the semantic knobs of docs/design.md §What every number means.
type Rules struct {
	Loc         *time.Location // reporting time zone
	MaxLateness time.Duration  // event_time earlier than received_at − this is skewed (default 7 days)
	MaxAhead    time.Duration  // event_time later than received_at + this is skewed (10 minutes)
	SessionGap  time.Duration  // inactivity that starts a new inferred session (30 minutes)
}

// DefaultRules returns the rules of docs/design.md §What every number means for loc.
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
	return plausible(row.ReceivedAt, arrival)
}

func plausible(receivedAt, arrival int64) bool {
	return receivedAt >= arrival-MaxDeliveryDelay.Milliseconds() && receivedAt <= arrival+MaxReceivedAhead.Milliseconds()
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
	return r.attribute(row.HasReceivedAt, row.ReceivedAt, row.HasEventTime, row.EventTime, fallback)
}

func (r Rules) attribute(hasReceived bool, receivedAt int64, hasEventTime bool, eventTime, fallback int64) (at int64, skewed bool) {
	if !hasReceived || !plausible(receivedAt, fallback) {
		return fallback, true
	}
	if !hasEventTime ||
		eventTime < receivedAt-r.MaxLateness.Milliseconds() ||
		eventTime > receivedAt+r.MaxAhead.Milliseconds() {
		return receivedAt, true
	}
	return eventTime, false
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
	// ReasonValueTooLarge: a string value over raw.MaxValueBytes (see
	// raw.Row.TooLarge, which the quarantined row's detail holds). It
	// comes before every other reason: the row's values over the limit
	// are held cut, so the others would judge what was not sent.
	ReasonValueTooLarge = "value_too_large"
)

// Validate returns why row cannot be used, or "" if it can.
func Validate(row *raw.Row) string {
	if row.TooLarge != "" {
		return ReasonValueTooLarge
	}
	return validate(row.EventID != "", row.HasReceivedAt, row.EventName != "", row.UserID != "" || row.DeviceID != "")
}

func validate(hasID, hasReceived, hasName, hasWho bool) string {
	switch {
	case !hasID:
		return ReasonMissingEventID
	case !hasReceived:
		return ReasonMissingReceivedAt
	case !hasName:
		return ReasonMissingEventName
	case !hasWho:
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
	// (id 0; Build sets it), event ids packed if all are canonical
	// UUIDs (frame.Events.PackUUIDs). EventTime is the attributed time (see
	// Attribute), ClientTime the client's event_time (0 if none, else
	// frame.EncodeClientTime of it, so that the epoch is not null), Skewed
	// whether event_time was replaced. Never nil when made by Route;
	// Build takes nil for no events.
	Events *frame.Events
	// Quarantine are the invalid rows, in the object's order.
	Quarantine []rollups.Quarantine
	// RepairedUTF8 counts the rows (valid or not) whose strings held
	// invalid UTF-8, replaced by U+FFFD when read (raw.Row.InvalidUTF8).
	RepairedUTF8 int64
}

// Route is RouteColumns of rows (raw.ColumnsOf): for tests and callers
// holding rows. rows are not modified.
func (r Rules) Route(rows []raw.Row, fallback int64, want func(day.Day) bool) map[day.Day]*Part {
	return r.RouteColumns(raw.ColumnsOf(rows), fallback, want)
}

// RouteColumns splits one object's rows by the day they count on
// (Attribute, then day.Of in r.Loc), keeping only the days want accepts
// (want is called once per day the rows fall on). fallback is the object's
// arrival hour (Unix ms). A row is invalid if Validate gives a reason
// (ReasonValueTooLarge first) or its received_at is implausible
// (ReasonImplausibleReceivedAt); invalid rows go to the Part's Quarantine,
// valid ones to its Events, both in the order of the rows.
//
// The Parts take c's strings: if the rows fall on one day, its Part's
// dictionary is c.Dict itself (with the anonymous user keys added);
// otherwise each Part gets a dictionary of the strings it uses. No Part
// holds any other memory of c, which may be released (c.Release) but not
// otherwise used afterwards.
//
// RouteColumns panics if one day's event ids in c total 4 GiB or more
// (frame offsets are 32-bit).
func (r Rules) RouteColumns(c *raw.Columns, fallback int64, want func(day.Day) bool) map[day.Day]*Part {
	rt := r.attributeAll(c, fallback)
	reasons := invalidReasons(c, fallback)
	if len(rt.days) == 1 && len(reasons) == 0 {
		// The common case, an object of valid rows of one day: its Part
		// is c's columns as they are.
		parts := make(map[day.Day]*Part, 1)
		if want(rt.days[0].d) {
			parts[rt.days[0].d] = &Part{Events: wholePart(c, rt.at, rt.skewed, rt.userKey)}
			for _, rep := range c.Repaired {
				if rep {
					parts[rt.days[0].d].RepairedUTF8++
				}
			}
		}
		return parts
	}
	parts := rt.newParts(c, want)
	rt.fill(c, reasons)
	for _, p := range parts {
		p.Events.PackUUIDs()
	}
	return parts
}

// routing is one object's rows attributed to days: the first pass of
// RouteColumns.
type routing struct {
	at      []int64  // each row's attributed time (Rules.Attribute)
	skewed  []bool   // whether at is not the row's event_time
	di      []int32  // each row's day, an index in days
	userKey []uint32 // each row's user_key (UserKey), in c's dictionary; 0 if it has no user
	days    []dayPart
}

// dayPart is one day that an object's rows fall on.
type dayPart struct {
	d                day.Day
	start, end       int64    // the day's bounds, Unix ms
	rows, ids, props int      // the day's rows, bytes of event ids and properties
	p                *Part    // nil if not wanted
	remap            []uint32 // c's ids → the Part's, 0: not yet (nil: the same)
}

// attributeAll attributes every row of c (fallback its arrival hour),
// sizes each day the rows fall on, in order of first row, and keys the
// users: the "anon:" keys are added to c.Dict.
func (r Rules) attributeAll(c *raw.Columns, fallback int64) routing {
	n := c.Len()
	user, device := c.Str[frame.UserID], c.Str[frame.DeviceID]
	rt := routing{at: make([]int64, n), skewed: make([]bool, n), di: make([]int32, n), userKey: make([]uint32, n)}
	var anon []uint32 // device_id id → id of "anon:" + device_id (0: not yet)
	last := -1
	for i := range n {
		t, sk := r.attribute(c.HasReceivedAt[i], c.ReceivedAt[i], c.HasEventTime[i], c.EventTime[i], fallback)
		rt.at[i], rt.skewed[i] = t, sk
		if last < 0 || t < rt.days[last].start || t >= rt.days[last].end {
			last = r.dayIndex(&rt.days, t)
		}
		rt.di[i] = int32(last)
		dp := &rt.days[last]
		dp.rows++
		dp.ids += int(c.IDOff[i+1] - c.IDOff[i])
		dp.props += int(c.PropOff[i+1] - c.PropOff[i])
		uk := user[i]
		if uk == 0 && device[i] != 0 {
			if anon == nil {
				anon = make([]uint32, c.Dict.Len())
			}
			if anon[device[i]] == 0 {
				anon[device[i]] = c.Dict.ID(UserKey("", c.Dict.Str(device[i])))
			}
			uk = anon[device[i]]
		}
		rt.userKey[i] = uk
	}
	return rt
}

// dayIndex returns the index in *days of the day holding time t (Unix
// ms), appending that day if it is not there.
func (r Rules) dayIndex(days *[]dayPart, t int64) int {
	d := day.Of(t, r.Loc)
	for j := range *days {
		if (*days)[j].d == d {
			return j
		}
	}
	*days = append(*days, dayPart{d: d, start: d.Start(r.Loc).UnixMilli(), end: d.End(r.Loc).UnixMilli()})
	return len(*days) - 1
}

// invalidReasons returns why each row of c is invalid ("" if it is not),
// or nil if every row is valid.
func invalidReasons(c *raw.Columns, fallback int64) []string {
	n := c.Len()
	user, device, name := c.Str[frame.UserID], c.Str[frame.DeviceID], c.Str[frame.EventName]
	var reasons []string
	for i := range n {
		reason := validate(c.IDOff[i+1] > c.IDOff[i], c.HasReceivedAt[i], name[i] != 0, user[i] != 0 || device[i] != 0)
		if len(c.TooLarge) > 0 && c.TooLarge[i] != "" {
			reason = ReasonValueTooLarge
		}
		if reason == "" && !plausible(c.ReceivedAt[i], fallback) {
			reason = ReasonImplausibleReceivedAt
		}
		if reason != "" && len(reasons) == 0 {
			reasons = make([]string, n)
		}
		if len(reasons) > 0 {
			reasons[i] = reason
		}
	}
	return reasons
}

// newParts makes an empty Part, sized for its rows, for each day of rt
// that want accepts, and returns them by day. If the rows fall on more
// than one day, each Part gets a dictionary of its own.
func (rt *routing) newParts(c *raw.Columns, want func(day.Day) bool) map[day.Day]*Part {
	parts := make(map[day.Day]*Part, len(rt.days))
	for j := range rt.days {
		dp := &rt.days[j]
		if !want(dp.d) {
			continue
		}
		if dp.ids > math.MaxUint32 {
			panic(fmt.Sprintf("compact: more than 4 GiB of event ids for %s in one object", dp.d))
		}
		dict := c.Dict
		if len(rt.days) > 1 {
			dict = frame.NewDict(min(dp.rows, c.Dict.Len()))
			dp.remap = make([]uint32, c.Dict.Len())
		}
		e := frame.New(dict, dp.rows)
		e.IDBytes = make([]byte, 0, dp.ids)
		e.PropKey = make([]uint32, 0, dp.props)
		e.PropVal = make([]uint32, 0, dp.props)
		dp.p = &Part{Events: e}
		parts[dp.d] = dp.p
	}
	return parts
}

// fill appends each row of c to its day's Part, if that day has one
// (newParts): to its Quarantine if reasons gives a reason, else to its
// Events.
func (rt *routing) fill(c *raw.Columns, reasons []string) {
	for i := range c.Len() {
		dp := &rt.days[rt.di[i]]
		p := dp.p
		if p == nil {
			continue
		}
		if c.Repaired[i] {
			p.RepairedUTF8++
		}
		if len(reasons) > 0 && reasons[i] != "" {
			row := c.Row(i)
			p.Quarantine = append(p.Quarantine, quarantineRow(&row, reasons[i]))
			continue
		}
		e := p.Events
		id := func(x uint32) uint32 { return x }
		if dp.remap != nil {
			dict, remap := e.Dict, dp.remap
			id = func(x uint32) uint32 {
				if x == 0 {
					return 0
				}
				if y := remap[x]; y != 0 {
					return y
				}
				y := dict.ID(c.Dict.Str(x))
				remap[x] = y
				return y
			}
		}
		e.IDBytes = append(e.IDBytes, c.ID(i)...)
		e.IDOff = append(e.IDOff, uint32(len(e.IDBytes)))
		e.EventTime = append(e.EventTime, rt.at[i])
		var client int64
		if c.HasEventTime[i] {
			client = frame.EncodeClientTime(c.EventTime[i])
		}
		e.ClientTime = append(e.ClientTime, client)
		e.ReceivedAt = append(e.ReceivedAt, c.ReceivedAt[i])
		e.Skewed = append(e.Skewed, rt.skewed[i])
		for col := range raw.NumStrings {
			e.Str[col] = append(e.Str[col], id(c.Str[col][i]))
		}
		e.Str[frame.UserKey] = append(e.Str[frame.UserKey], id(rt.userKey[i]))
		e.Str[frame.SessionKey] = append(e.Str[frame.SessionKey], 0)
		// c's properties are in key order, each key once; so are the
		// Part's, the strings being the same.
		for j := c.PropOff[i]; j < c.PropOff[i+1]; j++ {
			e.PropKey = append(e.PropKey, id(c.PropKey[j]))
			e.PropVal = append(e.PropVal, id(c.PropVal[j]))
		}
		e.PropOff = append(e.PropOff, uint32(len(e.PropKey)))
	}
}

// wholePart returns all of c's rows, valid and of one day, as a Part's
// events in c's dictionary: at, skewed and userKey are taken (they are
// the rows' attributed times, skew flags and user keys), the rest copied.
func wholePart(c *raw.Columns, at []int64, skewed []bool, userKey []uint32) *frame.Events {
	n := c.Len()
	e := &frame.Events{Dict: c.Dict, EventTime: at, ClientTime: make([]int64, n), ReceivedAt: slices.Clone(c.ReceivedAt), Skewed: skewed,
		PropOff: slices.Clone(c.PropOff), PropKey: slices.Clone(c.PropKey), PropVal: slices.Clone(c.PropVal)}
	if packed, ok := frame.PackIDs(c.IDBytes, c.IDOff); ok {
		e.IDBytes, e.UUIDs = packed, true
	} else {
		e.IDBytes, e.IDOff = slices.Clone(c.IDBytes), slices.Clone(c.IDOff)
	}
	for i, has := range c.HasEventTime {
		if has {
			e.ClientTime[i] = frame.EncodeClientTime(c.EventTime[i])
		}
	}
	for col := range raw.NumStrings {
		e.Str[col] = slices.Clone(c.Str[col])
	}
	e.Str[frame.UserKey] = userKey
	e.Str[frame.SessionKey] = make([]uint32, n)
	return e
}

// UserKey is user_id if set, else "anon:" + device_id.
func UserKey(userID, deviceID string) string {
	if userID != "" {
		return userID
	}
	return "anon:" + deviceID
}

// compareQuarantine orders quarantine rows by reason, source object, then
// the row's own columns and detail; rows equal in all of these stay in
// their order.
func compareQuarantine(a, b rollups.Quarantine) int {
	return cmp.Or(cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.SourceObject, b.SourceObject),
		cmp.Compare(a.EventID, b.EventID), rollups.CompareTimes(a.ReceivedAt, b.ReceivedAt),
		rollups.CompareTimes(a.EventTime, b.EventTime), cmp.Compare(a.EventName, b.EventName),
		cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.DeviceID, b.DeviceID), cmp.Compare(a.Detail, b.Detail))
}

// quarantineRow is r as read, with why it is invalid; its detail names
// the values over raw.MaxValueBytes, if any (held cut, as r holds them).
func quarantineRow(r *raw.Row, reason string) rollups.Quarantine {
	q := rollups.Quarantine{
		Reason: reason, SourceObject: r.Source, Detail: r.TooLarge, EventID: r.EventID, EventName: r.EventName,
		UserID: r.UserID, DeviceID: r.DeviceID, SessionID: r.SessionID, Product: r.Product,
		Platform: r.Platform, AppVersion: r.AppVersion, Country: r.Country, Properties: r.Properties,
	}
	if r.HasEventTime {
		t := r.EventTime
		q.EventTime = &t
	}
	if r.HasReceivedAt {
		t := r.ReceivedAt
		q.ReceivedAt = &t
	}
	return q
}
