package compact

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/frame"
	"github.com/littlewarehouse/warehouse/internal/raw"
	"github.com/littlewarehouse/warehouse/rollups"
)

func ms(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMilli()
}

func TestAttribute(t *testing.T) {
	r := DefaultRules(time.UTC)
	recv := ms("2026-03-10T12:00:00Z")
	arrival := ms("2026-03-10T12:00:00Z") // the object's arrival hour
	tests := []struct {
		name   string
		row    raw.Row
		at     int64
		skewed bool
	}{
		{"on time", raw.Row{EventTime: recv - 5000, HasEventTime: true, ReceivedAt: recv, HasReceivedAt: true}, recv - 5000, false},
		{"6 days late counts at its own time", raw.Row{EventTime: recv - 6*86400000, HasEventTime: true, ReceivedAt: recv, HasReceivedAt: true}, recv - 6*86400000, false},
		{"exactly 7 days late is not skewed", raw.Row{EventTime: recv - 7*86400000, HasEventTime: true, ReceivedAt: recv, HasReceivedAt: true}, recv - 7*86400000, false},
		{"more than 7 days late is skewed", raw.Row{EventTime: recv - 7*86400000 - 1, HasEventTime: true, ReceivedAt: recv, HasReceivedAt: true}, recv, true},
		{"10 minutes ahead is not skewed", raw.Row{EventTime: recv + 600000, HasEventTime: true, ReceivedAt: recv, HasReceivedAt: true}, recv + 600000, false},
		{"more than 10 minutes ahead is skewed", raw.Row{EventTime: recv + 600001, HasEventTime: true, ReceivedAt: recv, HasReceivedAt: true}, recv, true},
		{"no event_time is skewed", raw.Row{ReceivedAt: recv, HasReceivedAt: true}, recv, true},
		{"no received_at counts at the object's hour", raw.Row{EventTime: recv, HasEventTime: true}, arrival, true},
		{"no times at all count at the object's hour", raw.Row{}, arrival, true},
		{"received 25 hours before the arrival hour is plausible (a Firehose retry)", raw.Row{EventTime: arrival - 25*3600000, HasEventTime: true, ReceivedAt: arrival - 25*3600000, HasReceivedAt: true}, arrival - 25*3600000, false},
		{"received longer before the arrival hour counts at the object's hour", raw.Row{EventTime: recv, HasEventTime: true, ReceivedAt: arrival - 25*3600000 - 1, HasReceivedAt: true}, arrival, true},
		{"received 3 hours after the arrival hour is plausible", raw.Row{ReceivedAt: arrival + 3*3600000, HasReceivedAt: true}, arrival + 3*3600000, true},
		{"received in 2099 counts at the object's hour", raw.Row{EventTime: recv, HasEventTime: true, ReceivedAt: ms("2099-01-01T00:00:00Z"), HasReceivedAt: true}, arrival, true},
		{"received in 1970 counts at the object's hour", raw.Row{EventTime: recv, HasEventTime: true, ReceivedAt: 1000, HasReceivedAt: true}, arrival, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			at, skewed := r.Attribute(&tc.row, arrival)
			if at != tc.at || skewed != tc.skewed {
				t.Errorf("Attribute = %d, %v; want %d, %v", at, skewed, tc.at, tc.skewed)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	ok := raw.Row{EventID: "e", HasReceivedAt: true, EventName: "n", DeviceID: "d"}
	tests := []struct {
		name   string
		change func(*raw.Row)
		want   string
	}{
		{"valid with a device only", func(*raw.Row) {}, ""},
		{"no event_id", func(r *raw.Row) { r.EventID = "" }, ReasonMissingEventID},
		{"no received_at", func(r *raw.Row) { r.HasReceivedAt = false }, ReasonMissingReceivedAt},
		{"no event_name", func(r *raw.Row) { r.EventName = "" }, ReasonMissingEventName},
		{"neither user nor device", func(r *raw.Row) { r.DeviceID = "" }, ReasonMissingUser},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			tc.change(&r)
			if got := Validate(&r); got != tc.want {
				t.Errorf("Validate = %q, want %q", got, tc.want)
			}
		})
	}
}

// row is a valid raw row of user u at minute m of 2026-03-10 (UTC).
func row(id, u string, m int, session string) raw.Row {
	at := ms("2026-03-10T00:00:00Z") + int64(m)*60000
	return raw.Row{EventID: id, EventTime: at, HasEventTime: true, ReceivedAt: at, HasReceivedAt: true,
		EventName: "view", UserID: u, SessionID: session, Product: "shop", Source: "raw/x"}
}

func build(t *testing.T, rows []raw.Row) Day {
	t.Helper()
	r := DefaultRules(time.UTC)
	parts := r.Route(rows, ms("2026-03-10T01:00:00Z"), func(day.Day) bool { return true }) // the rows' arrival hour
	var ps []*Part
	for _, p := range parts {
		ps = append(ps, p)
	}
	return Build(ps, r)
}

func TestSessions(t *testing.T) {
	d := build(t, []raw.Row{
		row("a", "u1", 0, ""), row("b", "u1", 30, ""), // a gap of exactly 30 minutes continues
		row("c", "u1", 61, ""),                              // 31 minutes later: a new session
		row("d", "u1", 62, "s9"), row("e", "u1", 200, "s9"), // a client session, however long
		row("f", "u2", 61, ""), // another person: another session
	})
	keys := map[string]string{}
	for _, e := range eventsOf(d.Events) {
		keys[e.EventID] = e.SessionKey
	}
	if keys["a"] != keys["b"] || keys["b"] == keys["c"] || keys["d"] != "s:s9" || keys["e"] != "s:s9" || keys["c"] == keys["f"] {
		t.Errorf("session keys %v", keys)
	}
	if keys["a"] != "i:shop|u1|2026-03-10T00:00:00.000Z" {
		t.Errorf("inferred key %q", keys["a"])
	}
}

func TestBuildIsDeterministic(t *testing.T) {
	var rows []raw.Row
	for i := 0; i < 300; i++ {
		r := row(string(rune('a'+i%40)), []string{"u1", "u2", "u3"}[i%3], i%90, "")
		r.ReceivedAt += int64(i % 7) // duplicates with different received_at
		r.Source = []string{"raw/1", "raw/2"}[i%2]
		rows = append(rows, r)
	}
	want := dayOf(build(t, append([]raw.Row(nil), rows...)))
	rng := rand.New(rand.NewPCG(1, 1))
	for n := 0; n < 5; n++ {
		rng.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
		got := dayOf(build(t, append([]raw.Row(nil), rows...)))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("shuffled input gives another day (-first +shuffled):\n%s", diff)
		}
	}
	if want.Stats.KeptRows != 40 || want.Stats.Duplicates != 260 || want.Stats.RawRows != 300 {
		t.Errorf("stats %+v; want 40 kept and 260 duplicates of 300", want.Stats)
	}
	for i := 1; i < len(want.Events); i++ {
		a, b := want.Events[i-1], want.Events[i]
		if compareEvents(a, b) >= 0 {
			t.Fatalf("events out of order at %d: %v then %v", i, a, b)
		}
	}
	// The kept copy is the earliest delivery.
	for _, e := range want.Events {
		for _, r := range rows {
			if r.EventID == e.EventID && r.ReceivedAt < e.ReceivedAt {
				t.Fatalf("%s kept received_at %d, an earlier copy has %d", e.EventID, e.ReceivedAt, r.ReceivedAt)
			}
		}
	}
}

// plainDay is a Day with its events as structs, to compare days whatever
// their dictionaries.
type plainDay struct {
	Events     []rollups.Event
	Quarantine []rollups.Quarantine
	Stats      Stats
}

func dayOf(d Day) plainDay {
	return plainDay{Events: eventsOf(d.Events), Quarantine: d.Quarantine, Stats: d.Stats}
}

// eventsOf returns e's events as structs (nil properties if none).
func eventsOf(e *frame.Events) []rollups.Event {
	out := make([]rollups.Event, e.Len())
	for i := range out {
		r := e.Row(i)
		client, _ := frame.DecodeClientTime(r.ClientTime) // as the events table holds it
		out[i] = rollups.Event{
			EventID: r.EventID, EventTime: r.EventTime, ClientEventTime: client, ReceivedAt: r.ReceivedAt,
			EventName: r.Str[frame.EventName], UserID: r.Str[frame.UserID], DeviceID: r.Str[frame.DeviceID],
			SessionID: r.Str[frame.SessionID], Product: r.Str[frame.Product], Platform: r.Str[frame.Platform],
			AppVersion: r.Str[frame.AppVersion], Country: r.Str[frame.Country], Properties: r.Props,
			UserKey: r.Str[frame.UserKey], SessionKey: r.Str[frame.SessionKey], ClockSkewed: r.Skewed,
		}
	}
	return out
}

func compareEvents(a, b rollups.Event) int {
	switch {
	case a.EventName != b.EventName:
		return cmpStr(a.EventName, b.EventName)
	case a.UserKey != b.UserKey:
		return cmpStr(a.UserKey, b.UserKey)
	case a.EventTime != b.EventTime:
		if a.EventTime < b.EventTime {
			return -1
		}
		return 1
	}
	return cmpStr(a.EventID, b.EventID)
}

func cmpStr(a, b string) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

func TestRoute(t *testing.T) {
	r := DefaultRules(time.UTC)
	arrival := ms("2026-03-10T01:00:00Z")
	rows := []raw.Row{
		row("a", "u1", 0, "s1"),
		{EventID: "b", ReceivedAt: arrival, HasReceivedAt: true, EventName: "view", DeviceID: "d1", Source: "raw/x",
			Properties: map[string]string{"z": "1", "a": "2", "é": "3", "B": "4"}, InvalidUTF8: true},
		{EventID: "c", ReceivedAt: arrival, HasReceivedAt: true, EventName: "view", Source: "raw/x"}, // no user
		row("d", "u1", -60, ""), // the day before
	}
	want := func(d day.Day) bool { return d != day.FromDate(2026, 3, 8) }
	parts := r.Route(rows, arrival, want)
	if len(parts) != 2 {
		t.Fatalf("%d parts, want 2 (of 2026-03-09 and 2026-03-10)", len(parts))
	}
	p, prev := parts[day.FromDate(2026, 3, 10)], parts[day.FromDate(2026, 3, 9)]
	if p == nil || prev == nil || p.Events.Dict == prev.Events.Dict {
		t.Fatalf("parts %v: want one a day, each with its own dictionary", parts)
	}
	var got []frame.Row
	for i := range p.Events.Len() {
		got = append(got, p.Events.Row(i))
	}
	a := ms("2026-03-10T00:00:00Z")
	wantRows := []frame.Row{
		{EventID: "a", EventTime: a, ClientTime: a, ReceivedAt: a, Str: [frame.NumColumns]string{
			frame.EventName: "view", frame.UserID: "u1", frame.SessionID: "s1", frame.Product: "shop", frame.UserKey: "u1"}},
		{EventID: "b", EventTime: arrival, ReceivedAt: arrival, Skewed: true, Str: [frame.NumColumns]string{
			frame.EventName: "view", frame.DeviceID: "d1", frame.UserKey: "anon:d1"},
			Props: map[string]string{"z": "1", "a": "2", "é": "3", "B": "4"}},
	}
	if diff := cmp.Diff(wantRows, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if keys, _ := p.Events.Props(1); len(keys) != 4 || p.Events.Dict.Str(keys[0]) != "B" || p.Events.Dict.Str(keys[3]) != "é" {
		t.Errorf("property keys not in byte order")
	}
	if len(p.Quarantine) != 1 || p.Quarantine[0].EventID != "c" || p.Quarantine[0].Reason != ReasonMissingUser {
		t.Errorf("quarantine %+v", p.Quarantine)
	}
	if p.RepairedUTF8 != 1 || prev.RepairedUTF8 != 0 || prev.Events.Len() != 1 {
		t.Errorf("repaired %d and %d, %d events the day before", p.RepairedUTF8, prev.RepairedUTF8, prev.Events.Len())
	}
	if len(r.Route(rows, arrival, func(day.Day) bool { return false })) != 0 {
		t.Errorf("parts for days not wanted")
	}
}

func TestBuildEmpty(t *testing.T) {
	r := DefaultRules(time.UTC)
	for _, parts := range [][]*Part{nil, {{Quarantine: []rollups.Quarantine{{Reason: "b"}, {Reason: "a"}}, RepairedUTF8: 1}, {Events: frame.New(nil, 0)}}} {
		d := Build(parts, r)
		if d.Events == nil || d.Events.Len() != 0 {
			t.Fatalf("events %v, want none", d.Events)
		}
		if n := int64(len(d.Quarantine)); d.Stats != (Stats{RawRows: n, Invalid: n, RepairedUTF8: n / 2}) {
			t.Errorf("stats %+v", d.Stats)
		}
		if len(d.Quarantine) == 2 && d.Quarantine[0].Reason != "a" {
			t.Errorf("quarantine not sorted: %+v", d.Quarantine)
		}
	}
}

// TestBuildSplitsMissingAndSkewed checks that the kept events attributed to
// received_at are split: those without an event_time are MissingTime, those
// whose event_time was off (the epoch included, a time like any other) are
// Skewed; a dropped duplicate counts in neither.
func TestBuildSplitsMissingAndSkewed(t *testing.T) {
	r := DefaultRules(time.UTC)
	arrival := ms("2026-03-10T12:00:00Z")
	recv := arrival + 60000
	row := func(id string, eventTime int64, has bool) raw.Row {
		return raw.Row{EventID: id, EventName: "n", UserID: "u", ReceivedAt: recv, HasReceivedAt: true, EventTime: eventTime, HasEventTime: has}
	}
	dup := row("no-time-1", 0, false)
	dup.ReceivedAt++ // a later copy: dropped
	rows := []raw.Row{
		row("on-time", recv-5000, true),
		row("no-time-1", 0, false),
		dup,
		row("no-time-2", 0, false),
		row("ahead", recv+time.Hour.Milliseconds(), true),
		row("epoch", 0, true),
	}
	parts := r.Route(rows, arrival, func(day.Day) bool { return true })
	if len(parts) != 1 {
		t.Fatalf("%d days, want 1", len(parts))
	}
	var ps []*Part
	for _, p := range parts {
		ps = append(ps, p)
	}
	d := Build(ps, r)
	want := Stats{RawRows: 6, ValidRows: 6, KeptRows: 5, Duplicates: 1, MissingTime: 2, Skewed: 2}
	if d.Stats != want {
		t.Errorf("stats %+v, want %+v", d.Stats, want)
	}
	skewed := 0
	for _, s := range d.Events.Skewed {
		if s {
			skewed++
		}
	}
	if int64(skewed) != d.Stats.MissingTime+d.Stats.Skewed {
		t.Errorf("%d events attributed to received_at, want missing + skewed = %d", skewed, d.Stats.MissingTime+d.Stats.Skewed)
	}
}
