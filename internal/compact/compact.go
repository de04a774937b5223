// Package compact turns one reporting day's raw rows into the rows of the
// events and quarantine tables (DESIGN §3): it attributes each row to a day
// under the clock-skew rule, validates, deduplicates on event_id, derives
// user_key and session_key, and sorts.
//
// Work is split in two so that raw rows are never held longer than one
// object: Route turns one object's rows into per-day Parts (candidate events
// and quarantine rows) as soon as the object is read; Build then makes a day
// from all of its Parts.
package compact

import (
	"cmp"
	"hash/maphash"
	"slices"
	"sort"
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

// Part is what one raw object holds for one day: valid rows as candidate
// events (not yet deduplicated, SessionKey unset) and invalid rows.
type Part struct {
	Events     []rollups.Event
	Quarantine []rollups.Quarantine
	// RepairedUTF8 counts the rows (valid or not) whose strings held
	// invalid UTF-8, replaced by U+FFFD when read (raw.Row.InvalidUTF8).
	RepairedUTF8 int64
}

// Route splits one object's rows by the day they count on, keeping only the
// days want accepts. fallback is the object's arrival hour (Unix ms).
func (r Rules) Route(rows []raw.Row, fallback int64, want func(day.Day) bool) map[day.Day]*Part {
	type routed struct {
		at     int64
		d      day.Day
		skewed bool
	}
	rs := make([]routed, len(rows))
	counts := map[day.Day]int{}
	for i := range rows {
		at, skewed := r.Attribute(&rows[i], fallback)
		rs[i] = routed{at: at, d: day.Of(at, r.Loc), skewed: skewed}
		counts[rs[i].d]++
	}
	parts := map[day.Day]*Part{}
	for d, n := range counts {
		if want(d) {
			parts[d] = &Part{Events: make([]rollups.Event, 0, n)}
		}
	}
	anon := map[string]string{} // device_id → "anon:" + device_id, shared within the object
	for i := range rows {
		row := &rows[i]
		at, skewed := rs[i].at, rs[i].skewed
		p := parts[rs[i].d]
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
		e := rollups.Event{
			EventID: row.EventID, EventTime: at, ReceivedAt: row.ReceivedAt,
			EventName: row.EventName, UserID: row.UserID, DeviceID: row.DeviceID, SessionID: row.SessionID,
			Product: row.Product, Platform: row.Platform, AppVersion: row.AppVersion, Country: row.Country,
			Properties: row.Properties, ClockSkewed: skewed, UserKey: row.UserID,
		}
		if row.HasEventTime {
			e.ClientEventTime = row.EventTime
		}
		if e.UserKey == "" {
			k, ok := anon[row.DeviceID]
			if !ok {
				k = UserKey("", row.DeviceID)
				anon[row.DeviceID] = k
			}
			e.UserKey = k
		}
		p.Events = append(p.Events, e)
	}
	return parts
}

// Stats counts what Build did with a day's rows.
type Stats struct {
	RawRows, ValidRows, KeptRows, Duplicates, Invalid, Skewed int64
	RepairedUTF8                                              int64 // rows whose invalid UTF-8 was replaced
}

// Day is the result of building one day.
type Day struct {
	Events     []rollups.Event // deduplicated, sorted by (event_name, user_key, event_time, event_id)
	Quarantine []rollups.Quarantine
	Stats      Stats
}

// Build builds a day from all of its Parts, in any order. It is
// deterministic: the same rows in any order give the same result. The parts
// are consumed (emptied).
func Build(parts []*Part, rules Rules) Day {
	var out Day
	n, nq := 0, 0
	for _, p := range parts {
		n += len(p.Events)
		nq += len(p.Quarantine)
		out.Stats.RepairedUTF8 += p.RepairedUTF8
	}
	var events []rollups.Event
	if len(parts) == 1 {
		// The common case (the job merges a day's parts as it reads):
		// no copy of the day's events.
		events, out.Quarantine = parts[0].Events, parts[0].Quarantine
		parts[0].Events, parts[0].Quarantine = nil, nil
	} else {
		events = make([]rollups.Event, 0, n)
		out.Quarantine = make([]rollups.Quarantine, 0, nq)
		for _, p := range parts {
			events = append(events, p.Events...)
			out.Quarantine = append(out.Quarantine, p.Quarantine...)
			p.Events, p.Quarantine = nil, nil
		}
	}
	slices.SortStableFunc(out.Quarantine, compareQuarantine) // ties keep their order in the object
	out.Stats.Invalid = int64(nq)
	out.Stats.ValidRows = int64(n)
	out.Stats.RawRows = int64(n + nq)

	events = dedupe(events)
	out.Stats.KeptRows = int64(len(events))
	out.Stats.Duplicates = int64(n - len(events))
	for i := range events {
		if events[i].ClockSkewed {
			out.Stats.Skewed++
		}
	}
	names := ranks(events, func(e *rollups.Event) string { return e.EventName })
	users := ranks(events, func(e *rollups.Event) string { return e.UserKey })
	products := ranks(events, func(e *rollups.Event) string { return e.Product })
	assignSessions(events, products, users, rules.SessionGap.Milliseconds())

	// Sort by (event_name, user_key, event_time, event_id) through integer
	// ranks of the strings, then permute in place.
	keys := make([]sortKey, len(events))
	for i := range events {
		keys[i] = sortKey{a: uint64(names[i])<<32 | uint64(users[i]), t: events[i].EventTime, idx: int32(i)}
	}
	slices.SortFunc(keys, func(x, y sortKey) int { return compareKeys(events, x.a, y.a, x.t, y.t, x.idx, y.idx) })
	permute(events, keys)
	out.Events = events
	return out
}

// compareKeys orders by (a, t), then event_id; written out because cmp.Or
// would compare the ids every time.
func compareKeys(events []rollups.Event, xa, ya uint64, xt, yt int64, xi, yi int32) int {
	if xa != ya {
		return cmp.Compare(xa, ya)
	}
	if xt != yt {
		return cmp.Compare(xt, yt)
	}
	return cmp.Compare(events[xi].EventID, events[yi].EventID)
}

type sortKey struct {
	a   uint64
	t   int64
	idx int32
}

// permute reorders events so that events[i] = old events[keys[i].idx],
// following cycles so that no second copy of the events is needed.
func permute(events []rollups.Event, keys []sortKey) {
	done := make([]bool, len(events))
	for i := range events {
		if done[i] || int(keys[i].idx) == i {
			done[i] = true
			continue
		}
		tmp := events[i]
		j := i
		for {
			k := int(keys[j].idx)
			done[j] = true
			if k == i {
				events[j] = tmp
				break
			}
			events[j] = events[k]
			j = k
		}
	}
}

// ranks maps each event's string (from key) to its rank among the distinct
// values in byte order, so that comparing ranks compares the strings.
func ranks(events []rollups.Event, key func(*rollups.Event) string) []uint32 {
	ids := make(map[string]uint32)
	var distinct []string
	out := make([]uint32, len(events))
	for i := range events {
		s := key(&events[i])
		id, ok := ids[s]
		if !ok {
			id = uint32(len(distinct))
			ids[s] = id
			distinct = append(distinct, s)
		}
		out[i] = id
	}
	order := make([]uint32, len(distinct))
	for i := range order {
		order[i] = uint32(i)
	}
	sort.Slice(order, func(a, b int) bool { return distinct[order[a]] < distinct[order[b]] })
	rank := make([]uint32, len(distinct))
	for r, id := range order {
		rank[id] = uint32(r)
	}
	for i, id := range out {
		out[i] = rank[id]
	}
	return out
}

var seed = maphash.MakeSeed()

// dedupe keeps one event per event_id: the earliest received_at, and among
// copies received at the same instant the smallest by every other column,
// so the choice never depends on input order.
func dedupe(events []rollups.Event) []rollups.Event {
	type hk struct {
		h   uint64
		idx int32
	}
	keys := make([]hk, len(events))
	for i := range events {
		keys[i] = hk{maphash.String(seed, events[i].EventID), int32(i)}
	}
	slices.SortFunc(keys, func(a, b hk) int { return cmp.Compare(a.h, b.h) })
	drop := make([]bool, len(events))
	dups := 0
	for i := 0; i < len(keys); {
		j := i + 1
		for j < len(keys) && keys[j].h == keys[i].h {
			j++
		}
		if j-i > 1 {
			// One hash, possibly several ids: keep the best copy of each id.
			group := keys[i:j]
			slices.SortFunc(group, func(a, b hk) int { return compareCopies(&events[a.idx], &events[b.idx]) })
			for k := 1; k < len(group); k++ {
				if events[group[k].idx].EventID == events[group[k-1].idx].EventID {
					drop[group[k].idx] = true
					dups++
				}
			}
		}
		i = j
	}
	if dups == 0 {
		return events
	}
	kept := events[:0]
	for i := range events {
		if !drop[i] {
			kept = append(kept, events[i])
		}
	}
	clear(events[len(kept):]) // let the dropped copies' strings go
	return kept
}

// compareCopies orders rows by event_id, then the copy to keep first.
func compareCopies(a, b *rollups.Event) int {
	return cmp.Or(cmp.Compare(a.EventID, b.EventID), cmp.Compare(a.ReceivedAt, b.ReceivedAt),
		cmp.Compare(a.EventTime, b.EventTime), cmp.Compare(a.ClientEventTime, b.ClientEventTime),
		cmp.Compare(a.EventName, b.EventName), cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.DeviceID, b.DeviceID),
		cmp.Compare(a.SessionID, b.SessionID), cmp.Compare(a.Product, b.Product), cmp.Compare(a.Platform, b.Platform),
		cmp.Compare(a.AppVersion, b.AppVersion), cmp.Compare(a.Country, b.Country), compareMaps(a.Properties, b.Properties))
}

func compareMaps(a, b map[string]string) int {
	if c := cmp.Compare(len(a), len(b)); c != 0 || len(a) == 0 {
		return c
	}
	ka, kb := sortedKeys(a), sortedKeys(b)
	for i := range ka {
		if c := cmp.Or(cmp.Compare(ka[i], kb[i]), cmp.Compare(a[ka[i]], b[kb[i]])); c != 0 {
			return c
		}
	}
	return 0
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// UserKey is user_id if set, else "anon:" + device_id.
func UserKey(userID, deviceID string) string {
	if userID != "" {
		return userID
	}
	return "anon:" + deviceID
}

func compareQuarantine(a, b rollups.Quarantine) int {
	return cmp.Or(cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.SourceObject, b.SourceObject),
		cmp.Compare(a.EventID, b.EventID), cmp.Compare(a.ReceivedAt, b.ReceivedAt),
		cmp.Compare(a.EventTime, b.EventTime), cmp.Compare(a.EventName, b.EventName),
		cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.DeviceID, b.DeviceID))
}

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

// assignSessions sets SessionKey: "s:" + session_id when the client sent
// one; otherwise events of the same product and user_key without a
// session_id, in time order, form sessions that end after gap milliseconds
// without an event (a gap of exactly gap continues the session). The events
// are of one day, so sessions are split at midnight by construction.
// products and users are the events' string ranks.
func assignSessions(events []rollups.Event, products, users []uint32, gap int64) {
	type key struct {
		a   uint64
		t   int64
		idx int32
	}
	var inferred []key
	explicit := map[string]string{} // session_id → "s:" + session_id, one string per session
	for i := range events {
		if id := events[i].SessionID; id != "" {
			k, ok := explicit[id]
			if !ok {
				k = "s:" + id
				explicit[id] = k
			}
			events[i].SessionKey = k
		} else {
			inferred = append(inferred, key{uint64(products[i])<<32 | uint64(users[i]), events[i].EventTime, int32(i)})
		}
	}
	slices.SortFunc(inferred, func(x, y key) int { return compareKeys(events, x.a, y.a, x.t, y.t, x.idx, y.idx) })
	var sk string
	for n, k := range inferred {
		e := &events[k.idx]
		if n == 0 || inferred[n-1].a != k.a || k.t-inferred[n-1].t > gap {
			sk = sessionKey(e)
		}
		e.SessionKey = sk
	}
}

func sessionKey(e *rollups.Event) string {
	return "i:" + e.Product + "|" + e.UserKey + "|" + time.UnixMilli(e.EventTime).UTC().Format("2006-01-02T15:04:05.000Z")
}
