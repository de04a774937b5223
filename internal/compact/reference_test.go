package compact

// The struct-based Route and Build as they were before events became
// columns: the reference the columnar implementation is tested against
// (TestMatchesReference). Attribute, Validate, PlausibleReceivedAt and
// UserKey are shared: they are the documented rules themselves. The
// quarantine rows and their order are derived here from the documented
// contract (refQuarantineRow, refSortQuarantine), not from production's
// quarantineRow and compareQuarantine, which the test thus checks.

import (
	"cmp"
	"fmt"
	"hash/maphash"
	"reflect"
	"slices"
	"sort"
	"time"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/raw"
	"github.com/littlewarehouse/warehouse/rollups"
)

// refPart is what one raw object holds for one day: valid rows as candidate
// events (not yet deduplicated, SessionKey unset) and invalid rows.
type refPart struct {
	Events []rollups.Event
	// NoTime says, per event, that the row had no event_time: rollups.Event
	// holds a client time of exactly the epoch as 0, like none.
	NoTime     []bool
	Quarantine []rollups.Quarantine
	// RepairedUTF8 counts the rows (valid or not) whose strings held
	// invalid UTF-8, replaced by U+FFFD when read (raw.Row.InvalidUTF8).
	RepairedUTF8 int64
}

// refRoute splits one object's rows by the day they count on, keeping only the
// days want accepts. fallback is the object's arrival hour (Unix ms).
func refRoute(r Rules, rows []raw.Row, fallback int64, want func(day.Day) bool) map[day.Day]*refPart {
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
	parts := map[day.Day]*refPart{}
	for d, n := range counts {
		if want(d) {
			parts[d] = &refPart{Events: make([]rollups.Event, 0, n)}
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
			p.Quarantine = append(p.Quarantine, refQuarantineRow(row, reason))
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
		p.NoTime = append(p.NoTime, !row.HasEventTime)
	}
	return parts
}

// refDay is the result of building one day.
type refDay struct {
	Events     []rollups.Event // deduplicated, sorted by (event_name, user_key, event_time, event_id)
	Quarantine []rollups.Quarantine
	Stats      Stats
}

// refBuild builds a day from all of its Parts, in any order. It is
// deterministic: the same rows in any order give the same result. The parts
// are consumed (emptied).
func refBuild(parts []*refPart, rules Rules) refDay {
	var out refDay
	n, nq := 0, 0
	for _, p := range parts {
		n += len(p.Events)
		nq += len(p.Quarantine)
		out.Stats.RepairedUTF8 += p.RepairedUTF8
	}
	var events []rollups.Event
	var noTime []bool
	if len(parts) == 1 {
		// The common case (the job merges a day's parts as it reads):
		// no copy of the day's events.
		events, noTime, out.Quarantine = parts[0].Events, parts[0].NoTime, parts[0].Quarantine
		parts[0].Events, parts[0].NoTime, parts[0].Quarantine = nil, nil, nil
	} else {
		events = make([]rollups.Event, 0, n)
		noTime = make([]bool, 0, n)
		out.Quarantine = make([]rollups.Quarantine, 0, nq)
		for _, p := range parts {
			events = append(events, p.Events...)
			noTime = append(noTime, p.NoTime...)
			out.Quarantine = append(out.Quarantine, p.Quarantine...)
			p.Events, p.NoTime, p.Quarantine = nil, nil, nil
		}
	}
	refSortQuarantine(out.Quarantine)
	out.Stats.Invalid = int64(nq)
	out.Stats.ValidRows = int64(n)
	out.Stats.RawRows = int64(n + nq)

	events, noTime = refDedupe(events, noTime)
	out.Stats.KeptRows = int64(len(events))
	out.Stats.Duplicates = int64(n - len(events))
	for i := range events {
		switch {
		case !events[i].ClockSkewed:
		case noTime[i]:
			out.Stats.MissingTime++
		default:
			out.Stats.Skewed++
		}
	}
	names := refRanks(events, func(e *rollups.Event) string { return e.EventName })
	users := refRanks(events, func(e *rollups.Event) string { return e.UserKey })
	products := refRanks(events, func(e *rollups.Event) string { return e.Product })
	refAssignSessions(events, products, users, rules.SessionGap.Milliseconds())

	// Sort by (event_name, user_key, event_time, event_id) through integer
	// refRanks of the strings, then refPermute in place.
	keys := make([]refSortKey, len(events))
	for i := range events {
		keys[i] = refSortKey{a: uint64(names[i])<<32 | uint64(users[i]), t: events[i].EventTime, idx: int32(i)}
	}
	slices.SortFunc(keys, func(x, y refSortKey) int { return refCompareKeys(events, x.a, y.a, x.t, y.t, x.idx, y.idx) })
	refPermute(events, keys)
	out.Events = events
	return out
}

// refCompareKeys orders by (a, t), then event_id; written out because cmp.Or
// would compare the ids every time.
func refCompareKeys(events []rollups.Event, xa, ya uint64, xt, yt int64, xi, yi int32) int {
	if xa != ya {
		return cmp.Compare(xa, ya)
	}
	if xt != yt {
		return cmp.Compare(xt, yt)
	}
	return cmp.Compare(events[xi].EventID, events[yi].EventID)
}

type refSortKey struct {
	a   uint64
	t   int64
	idx int32
}

// refPermute reorders events so that events[i] = old events[keys[i].idx],
// following cycles so that no second copy of the events is needed.
func refPermute(events []rollups.Event, keys []refSortKey) {
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

// refRanks maps each event's string (from key) to its rank among the distinct
// values in byte order, so that comparing refRanks compares the strings.
func refRanks(events []rollups.Event, key func(*rollups.Event) string) []uint32 {
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

var refSeed = maphash.MakeSeed()

// refDedupe keeps one event per event_id: the earliest received_at, and among
// copies received at the same instant the smallest by every other column,
// and last a copy without a client time before one of exactly the epoch
// (noTime, parallel to events), so the choice never depends on input
// order. It returns the kept events and their noTime.
func refDedupe(events []rollups.Event, noTime []bool) ([]rollups.Event, []bool) {
	type hk struct {
		h   uint64
		idx int32
	}
	keys := make([]hk, len(events))
	for i := range events {
		keys[i] = hk{maphash.String(refSeed, events[i].EventID), int32(i)}
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
			slices.SortFunc(group, func(a, b hk) int {
				return cmp.Or(refCompareCopies(&events[a.idx], &events[b.idx]), -cmp.Compare(b2i(noTime[a.idx]), b2i(noTime[b.idx])))
			})
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
		return events, noTime
	}
	kept, keptNoTime := events[:0], noTime[:0]
	for i := range events {
		if !drop[i] {
			kept = append(kept, events[i])
			keptNoTime = append(keptNoTime, noTime[i])
		}
	}
	clear(events[len(kept):]) // let the dropped copies' strings go
	return kept, keptNoTime
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// refCompareCopies orders rows by event_id, then the copy to keep first.
func refCompareCopies(a, b *rollups.Event) int {
	return cmp.Or(cmp.Compare(a.EventID, b.EventID), cmp.Compare(a.ReceivedAt, b.ReceivedAt),
		cmp.Compare(a.EventTime, b.EventTime), cmp.Compare(a.ClientEventTime, b.ClientEventTime),
		cmp.Compare(a.EventName, b.EventName), cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.DeviceID, b.DeviceID),
		cmp.Compare(a.SessionID, b.SessionID), cmp.Compare(a.Product, b.Product), cmp.Compare(a.Platform, b.Platform),
		cmp.Compare(a.AppVersion, b.AppVersion), cmp.Compare(a.Country, b.Country), refCompareMaps(a.Properties, b.Properties))
}

func refCompareMaps(a, b map[string]string) int {
	if c := cmp.Compare(len(a), len(b)); c != 0 || len(a) == 0 {
		return c
	}
	ka, kb := refSortedKeys(a), refSortedKeys(b)
	for i := range ka {
		if c := cmp.Or(cmp.Compare(ka[i], kb[i]), cmp.Compare(a[ka[i]], b[kb[i]])); c != 0 {
			return c
		}
	}
	return 0
}

func refSortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// refSortQuarantine sorts a day's quarantine rows as the quarantine table
// is documented to be (Day.Quarantine): by reason, source object, event_id,
// received_at, event_time (a null time first), event_name, user_id,
// device_id, then detail; rows equal in all of these keep their order. It
// does so by comparing, for each row, a list of strings whose byte order
// is that order.
func refSortQuarantine(qs []rollups.Quarantine) {
	key := func(q rollups.Quarantine) []string {
		return []string{q.Reason, q.SourceObject, q.EventID, refTimeKey(q.ReceivedAt), refTimeKey(q.EventTime),
			q.EventName, q.UserID, q.DeviceID, q.Detail}
	}
	keys := make([][]string, len(qs))
	order := make([]int, len(qs))
	for i := range qs {
		keys[i], order[i] = key(qs[i]), i
	}
	sort.SliceStable(order, func(a, b int) bool { return slices.Compare(keys[order[a]], keys[order[b]]) < 0 })
	sorted := make([]rollups.Quarantine, len(qs))
	for i, j := range order {
		sorted[i] = qs[j]
	}
	copy(qs, sorted)
}

// refTimeKey is an optional time as a string whose byte order is the
// times' order, null first: "" for null, else "t" and the time offset by
// 2^63 as 20 decimal digits.
func refTimeKey(t *int64) string {
	if t == nil {
		return ""
	}
	return fmt.Sprintf("t%020d", uint64(*t)^1<<63)
}

// refQuarantineRow is the quarantine row of an invalid raw row: its
// columns as read, copied by name (every quarantine column named like a
// raw row's field; a time null unless the row has it, raw.Row's HasX), and
// reason, source object and detail (raw.Row.TooLarge). It panics if a
// quarantine column has no source, so a column added to the table is
// never silently left empty here.
func refQuarantineRow(r *raw.Row, reason string) rollups.Quarantine {
	var q rollups.Quarantine
	qv, rv := reflect.ValueOf(&q).Elem(), reflect.ValueOf(r).Elem()
	for i := range qv.NumField() {
		name := qv.Type().Field(i).Name
		dst := qv.Field(i)
		switch name {
		case "Reason":
			dst.SetString(reason)
			continue
		case "SourceObject":
			dst.SetString(r.Source)
			continue
		case "Detail":
			dst.SetString(r.TooLarge)
			continue
		case "Date": // the partition's day, set when the files are written
			continue
		}
		src := rv.FieldByName(name)
		switch {
		case !src.IsValid():
			panic("reference: no raw column for quarantine column " + name)
		case src.Type() == dst.Type():
			dst.Set(src)
		case dst.Type() == reflect.TypeFor[*int64]() && src.Kind() == reflect.Int64:
			if rv.FieldByName("Has" + name).Bool() {
				t := src.Int()
				dst.Set(reflect.ValueOf(&t))
			}
		default:
			panic("reference: raw column " + name + " is not of its quarantine column's type")
		}
	}
	return q
}

// refAssignSessions sets SessionKey: "s:" + session_id when the client sent
// one; otherwise events of the same product and user_key without a
// session_id, in time order, form sessions that end after gap milliseconds
// without an event (a gap of exactly gap continues the session). The events
// are of one day, so sessions are split at midnight by construction.
// products and users are the events' string refRanks.
func refAssignSessions(events []rollups.Event, products, users []uint32, gap int64) {
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
	slices.SortFunc(inferred, func(x, y key) int { return refCompareKeys(events, x.a, y.a, x.t, y.t, x.idx, y.idx) })
	var sk string
	for n, k := range inferred {
		e := &events[k.idx]
		if n == 0 || inferred[n-1].a != k.a || k.t-inferred[n-1].t > gap {
			sk = refSessionKey(e)
		}
		e.SessionKey = sk
	}
}

func refSessionKey(e *rollups.Event) string {
	return "i:" + e.Product + "|" + e.UserKey + "|" + time.UnixMilli(e.EventTime).UTC().Format("2006-01-02T15:04:05.000Z")
}
