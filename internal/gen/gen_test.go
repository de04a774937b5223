package gen

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/store"
)

var day1 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func small(mod func(*Config)) Config {
	c := Config{From: day1, To: day1, EventsPerDay: 3000, Seed: 7}
	if mod != nil {
		mod(&c)
	}
	return c
}

func generate(t testing.TB, cfg Config) (*store.Dir, Report) {
	t.Helper()
	st, err := store.OpenDir(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Generate(context.Background(), st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st, rep
}

// snapshot returns every object (key → bytes) in st.
func snapshot(t *testing.T, st store.Store) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	objs, err := st.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, o := range objs {
		b, err := st.Get(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		out[o.Key] = b
	}
	return out
}

func TestDeterminism(t *testing.T) {
	cfg := Nasty(small(func(c *Config) { c.To = day1.AddDate(0, 0, 1); c.Compression = "gzip" }))
	st1, rep1 := generate(t, cfg)
	prev := runtime.GOMAXPROCS(1) // concurrency must not change the output
	st2, rep2 := generate(t, cfg)
	runtime.GOMAXPROCS(prev)
	a, b := snapshot(t, st1), snapshot(t, st2)
	if len(a) != len(b) {
		t.Fatalf("%d objects vs %d", len(a), len(b))
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok {
			t.Fatalf("key %s only in the first run", k)
		}
		if !bytes.Equal(v, w) {
			t.Fatalf("object %s differs between runs", k)
		}
	}
	if !slices.Equal(rep1.Objects, rep2.Objects) || rep1.RawRows != rep2.RawRows {
		t.Fatal("reports differ")
	}

	// Another seed gives other data.
	cfg.Seed++
	_, rep3 := generate(t, cfg)
	if slices.Equal(rep1.Objects, rep3.Objects) {
		t.Fatal("seed does not change the keys")
	}
}

var keyRE = regexp.MustCompile(`^raw/(\d{4})/(\d{2})/(\d{2})/(\d{2})/([A-Za-z0-9_.-]+)-1-(\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// keyTime parses a raw key and checks that its folder is the hour of the
// time in its name.
func keyTime(t *testing.T, key, stream string) time.Time {
	t.Helper()
	m := keyRE.FindStringSubmatch(key)
	if m == nil {
		t.Fatalf("key %q does not match the Firehose layout", key)
	}
	if m[5] != stream {
		t.Fatalf("key %q: stream %q, want %q", key, m[5], stream)
	}
	ts, err := time.Parse("2006-01-02-15-04-05", m[6])
	if err != nil {
		t.Fatal(err)
	}
	if dir := strings.Join(m[1:5], "/"); dir != ts.Format("2006/01/02/15") {
		t.Fatalf("key %q: folder %s is not the hour of %s", key, dir, ts)
	}
	return ts
}

func TestLayoutAndCounts(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"one day default", small(nil)},
		{"two days 12 per hour", small(func(c *Config) { c.To = day1.AddDate(0, 0, 1); c.ObjectsPerHour = 12; c.EventsPerDay = 2000 })},
		{"one per hour, own stream, bad objects", small(func(c *Config) {
			c.ObjectsPerHour = 1
			c.Stream = "app-events"
			c.NotParquet, c.Truncated, c.ZeroByte = 2, 1, 3
		})},
		{"tiny: every object still gets rows", small(func(c *Config) { c.EventsPerDay = 10 })},
		{"range given as non-midnight times", small(func(c *Config) { c.From = day1.Add(13 * time.Hour); c.To = day1.Add(-time.Hour).AddDate(0, 0, 1) })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, rep := generate(t, tt.cfg)
			c := tt.cfg.withDefaults()
			days := int(day(c.To).Sub(day(c.From)).Hours()/24) + 1
			nBad := c.NotParquet + c.Truncated + c.ZeroByte
			raw, err := st.List(context.Background(), "raw/")
			if err != nil {
				t.Fatal(err)
			}
			if want := days*24*c.ObjectsPerHour + nBad; len(raw) != want {
				t.Fatalf("%d raw objects, want %d", len(raw), want)
			}
			if len(rep.Objects)+len(rep.BadObjects) != len(raw) || len(rep.BadObjects) != nBad {
				t.Fatalf("report: %d objects + %d bad, store has %d", len(rep.Objects), len(rep.BadObjects), len(raw))
			}
			perHour := map[string]int{}
			lo, hi := day(c.From), day(c.To).AddDate(0, 0, 1)
			for _, o := range raw {
				ts := keyTime(t, o.Key, c.Stream)
				if ts.Before(lo) || !ts.Before(hi) {
					t.Errorf("%s: arrival outside the range", o.Key)
				}
				if _, bad := rep.BadObjectKinds[o.Key]; !bad {
					perHour[ts.Format("2006010215")]++
				}
			}
			if len(perHour) != days*24 {
				t.Errorf("%d arrival hours have objects, want %d", len(perHour), days*24)
			}
			for h, n := range perHour {
				if n != c.ObjectsPerHour {
					t.Errorf("hour %s has %d objects, want %d", h, n, c.ObjectsPerHour)
				}
			}
			if want := int64(days * max(c.EventsPerDay, 0)); c.EventsPerDay >= 24*c.ObjectsPerHour && rep.Events != want {
				t.Errorf("%d events, want %d", rep.Events, want)
			}
			for _, k := range rep.Objects {
				if rep.ObjectRows[k] == 0 {
					t.Errorf("object %s is empty", k)
				}
			}

			// The report is stored where tests look for it.
			b, err := st.Get(context.Background(), ReportKey(tt.cfg))
			if err != nil {
				t.Fatal(err)
			}
			var stored Report
			if err := json.Unmarshal(b, &stored); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(stored.BadObjects, rep.BadObjects) || stored.RawRows != rep.RawRows {
				t.Fatal("stored report differs from the returned one")
			}
		})
	}
}

// scan is what the files hold, counted independently of the generator.
type scan struct {
	rows          []event.Raw
	objectOf      []string
	objectRows    map[string]int64
	int96Objects  []string
	nameTimes     map[string]time.Time
	rep           Report // counts recomputed from the rows
	distinctValid map[string]event.Raw
}

// readBack reads every readable object of rep, decoding INT96 columns
// explicitly, and recomputes the report's counts the way the warehouse
// defines them (docs/design.md §What every number means).
func readBack(t *testing.T, st store.Store, rep Report) *scan {
	t.Helper()
	ctx := context.Background()
	s := &scan{objectRows: map[string]int64{}, nameTimes: map[string]time.Time{}, distinctValid: map[string]event.Raw{}}
	for _, key := range rep.Objects {
		b, err := st.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if got := f.Metadata().CreatedBy; got != createdBy {
			t.Errorf("%s: created_by %q", key, got)
		}
		et, _ := f.Schema().Lookup("event_time")
		ra, _ := f.Schema().Lookup("received_at")
		en, _ := f.Schema().Lookup("event_name")
		dict := false
		for _, rg := range f.Metadata().RowGroups {
			dict = dict || slices.Contains(rg.Columns[en.ColumnIndex].MetaData.Encoding, format.RLEDictionary)
		}
		if isInt96 := et.Node.Type().Kind() == parquet.Int96; dict == isInt96 {
			t.Errorf("%s: event_name dictionary-encoded %v, INT96 %v; want dictionary exactly in the INT64 objects", key, dict, isInt96)
		}
		var rows []event.Raw
		switch kind := et.Node.Type().Kind(); kind {
		case parquet.Int96:
			if ra.Node.Type().Kind() != parquet.Int96 {
				t.Fatalf("%s: event_time is INT96 but received_at is %v", key, ra.Node.Type())
			}
			s.int96Objects = append(s.int96Objects, key)
			rows = readINT96(t, key, f, b)
		case parquet.Int64:
			if ra.Node.Type().Kind() != parquet.Int64 {
				t.Fatalf("%s: received_at is %v", key, ra.Node.Type())
			}
			rows, err = parquet.Read[event.Raw](bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
		default:
			t.Fatalf("%s: event_time has physical type %v", key, kind)
		}
		if !slices.IsSortedFunc(rows, func(a, b event.Raw) int { return a.ReceivedAt.Compare(b.ReceivedAt) }) {
			t.Errorf("%s: rows not sorted by received_at", key)
		}
		s.objectRows[key] = int64(len(rows))
		s.nameTimes[key] = keyTime(t, key, rep.Stream)
		for _, r := range rows {
			s.rows = append(s.rows, r)
			s.objectOf = append(s.objectOf, key)
		}
	}

	r := &s.rep
	byID := map[string]event.Raw{}
	for _, e := range s.rows {
		r.RawRows++
		switch {
		case e.EventName == "":
			r.Invalid++
			r.InvalidNoName++
			continue
		case e.UserID == "" && e.DeviceID == "":
			r.Invalid++
			r.InvalidNoWho++
			continue
		}
		if p, ok := byID[e.EventID]; ok {
			r.Duplicates++
			if !e.ReceivedAt.Equal(p.ReceivedAt) {
				r.DupLaterTime++
			}
			if e.ReceivedAt.Before(p.ReceivedAt) {
				byID[e.EventID] = e
			}
			continue
		}
		byID[e.EventID] = e
	}
	for id, e := range byID {
		s.distinctValid[id] = e
		r.Events++
		if e.UserID == "" {
			r.AnonEvents++
		}
		if e.SessionID != "" {
			r.SessionIDs++
		}
		if len(e.Properties) > 0 {
			r.WithProperties++
		}
		lag := e.ReceivedAt.Sub(e.EventTime)
		switch {
		case e.EventTime.IsZero():
			r.MissingTime++
		case lag < -10*time.Minute:
			r.Skewed++
			r.SkewedFuture++
		case lag > 7*24*time.Hour:
			r.Skewed++
			r.SkewedPast++
		case lag >= time.Hour:
			r.Late++
			if lag > 6*24*time.Hour {
				t.Errorf("event %s is late by %v, more than 6 days", id, lag)
			}
		case lag < 0 || lag > 5*time.Second:
			t.Errorf("event %s: event_time %v is %v before received_at, want 0..5s", id, e.EventTime, lag)
		}
	}
	return s
}

// readINT96 reads an object whose time columns are INT96, decoding those by
// hand from the 12 raw bytes (nanoseconds of the day, little-endian, then
// the Julian day) — not through parquet-go's time.Time mapping.
func readINT96(t *testing.T, key string, f *parquet.File, b []byte) []event.Raw {
	t.Helper()
	rows, err := parquet.Read[raw96](bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	etCol, _ := f.Schema().Lookup("event_time")
	raCol, _ := f.Schema().Lookup("received_at")
	decode := func(v parquet.Value) time.Time {
		if v.IsNull() {
			return time.Time{}
		}
		raw := v.ByteArray()
		if len(raw) != 12 {
			t.Fatalf("%s: INT96 value of %d bytes", key, len(raw))
		}
		nanos := int64(binary.LittleEndian.Uint64(raw[:8]))
		julian := int64(binary.LittleEndian.Uint32(raw[8:]))
		return time.Unix((julian-2440588)*86400, nanos).UTC()
	}
	var ets, ras []time.Time
	for _, rg := range f.RowGroups() {
		rr := rg.Rows()
		buf := make([]parquet.Row, 256)
		for {
			n, err := rr.ReadRows(buf)
			for _, row := range buf[:n] {
				for _, v := range row {
					switch v.Column() {
					case etCol.ColumnIndex:
						ets = append(ets, decode(v))
					case raCol.ColumnIndex:
						ras = append(ras, decode(v))
					}
				}
			}
			if err != nil {
				break
			}
		}
		rr.Close()
	}
	if len(ets) != len(rows) || len(ras) != len(rows) {
		t.Fatalf("%s: %d rows, %d event_time and %d received_at values", key, len(rows), len(ets), len(ras))
	}
	out := make([]event.Raw, len(rows))
	for i, r := range rows {
		if got := FromInt96(*r.ReceivedAt); !got.Equal(ras[i]) {
			t.Fatalf("%s: FromInt96 gives %v, bytes say %v", key, got, ras[i])
		}
		out[i] = event.Raw{
			EventID: r.EventID, EventTime: ets[i], ReceivedAt: ras[i], EventName: r.EventName,
			UserID: r.UserID, DeviceID: r.DeviceID, SessionID: r.SessionID, Product: r.Product,
			Platform: r.Platform, AppVersion: r.AppVersion, Country: r.Country, Properties: r.Properties,
		}
	}
	return out
}

func TestReportMatchesFiles(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"clean", small(nil)},
		{"nasty", Nasty(small(func(c *Config) { c.To = day1.AddDate(0, 0, 1) }))},
		{"nasty heavy", small(func(c *Config) {
			c.DuplicateRate, c.LateRate, c.SkewedRate, c.MissingTimeRate, c.InvalidRate = 0.2, 0.2, 0.2, 0.2, 0.2
			c.ObjectsPerHour = 20
		})},
		{"nasty heavy, late from the start", small(func(c *Config) {
			c.DuplicateRate, c.LateRate, c.SkewedRate, c.MissingTimeRate, c.InvalidRate = 0.2, 0.2, 0.2, 0.2, 0.2
			c.StartOnFrom = true
		})},
		{"nasty heavy, int96 everywhere", small(func(c *Config) {
			c.DuplicateRate, c.LateRate, c.SkewedRate, c.MissingTimeRate, c.InvalidRate = 0.2, 0.2, 0.2, 0.2, 0.2
			c.INT96Objects = 96
			c.ObjectsPerHour = 4
			c.Compression = "none"
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, rep := generate(t, tt.cfg)
			s := readBack(t, st, rep)
			got, want := s.rep, rep
			for _, c := range []struct {
				name      string
				got, want int64
			}{
				{"raw rows", got.RawRows, want.RawRows},
				{"events", got.Events, want.Events},
				{"duplicates", got.Duplicates, want.Duplicates},
				{"dups with later received_at", got.DupLaterTime, want.DupLaterTime},
				{"invalid", got.Invalid, want.Invalid},
				{"invalid: no name", got.InvalidNoName, want.InvalidNoName},
				{"invalid: no who", got.InvalidNoWho, want.InvalidNoWho},
				{"late", got.Late, want.Late},
				{"skewed", got.Skewed, want.Skewed},
				{"skewed future", got.SkewedFuture, want.SkewedFuture},
				{"skewed past", got.SkewedPast, want.SkewedPast},
				{"missing time", got.MissingTime, want.MissingTime},
				{"anon events", got.AnonEvents, want.AnonEvents},
				{"session ids", got.SessionIDs, want.SessionIDs},
				{"properties", got.WithProperties, want.WithProperties},
			} {
				if c.got != c.want {
					t.Errorf("%s: files hold %d, report says %d", c.name, c.got, c.want)
				}
			}
			for k, n := range rep.ObjectRows {
				if s.objectRows[k] != n {
					t.Errorf("%s: %d rows, report says %d", k, s.objectRows[k], n)
				}
			}
			if !slices.Equal(s.int96Objects, rep.INT96Objects) {
				t.Errorf("INT96 objects %v, report says %v", s.int96Objects, rep.INT96Objects)
			}
			if tt.cfg.INT96Objects != len(rep.INT96Objects) {
				t.Errorf("%d INT96 objects, want %d", len(rep.INT96Objects), tt.cfg.INT96Objects)
			}
			// Each object's name carries the arrival of its oldest record,
			// which is in the object's window; without redelivered copies it
			// is exactly the oldest received_at.
			oldest := map[string]time.Time{}
			for i, e := range s.rows {
				k := s.objectOf[i]
				if o, ok := oldest[k]; !ok || e.ReceivedAt.Before(o) {
					oldest[k] = e.ReceivedAt
				}
			}
			for k, ts := range s.nameTimes {
				if rep.DupOtherObject == 0 && !oldest[k].Truncate(time.Second).Equal(ts) {
					t.Errorf("%s: name time %v, oldest record %v", k, ts, oldest[k])
				}
			}
		})
	}
}

func TestInt96Encoding(t *testing.T) {
	tests := []struct {
		t      time.Time
		julian uint32
		nanos  uint64
	}{
		{time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), 2440588, 0},
		{time.Date(2000, 1, 1, 12, 0, 0, 0, time.UTC), 2451545, 12 * 3600e9},
		{time.Date(2026, 1, 1, 23, 59, 59, 999e6, time.UTC), 2461042, 86399999e6},
		{time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC), 2440587, 23 * 3600e9},
	}
	for _, tt := range tests {
		v := ToInt96(tt.t)
		if v[2] != tt.julian || uint64(v[1])<<32|uint64(v[0]) != tt.nanos {
			t.Errorf("ToInt96(%v) = julian %d nanos %d, want %d %d", tt.t, v[2], uint64(v[1])<<32|uint64(v[0]), tt.julian, tt.nanos)
		}
		if back := FromInt96(v); !back.Equal(tt.t) {
			t.Errorf("FromInt96(ToInt96(%v)) = %v", tt.t, back)
		}
	}
	if !ToInt96(time.Time{}).IsZero() {
		t.Error("zero time must give the zero (null) Int96")
	}
}

// TestKnobs turns on one knob at a time and checks that its case appears in
// the files and no other does.
func TestKnobs(t *testing.T) {
	type counts struct{ dup, late, skew, miss, invalid int64 }
	tests := []struct {
		name string
		mod  func(*Config)
		want func(counts) bool
	}{
		{"none", func(c *Config) {}, func(n counts) bool { return n == counts{} }},
		{"duplicates", func(c *Config) { c.DuplicateRate = 0.05 }, func(n counts) bool { return n.dup > 0 && n.late+n.skew+n.miss+n.invalid == 0 }},
		{"late", func(c *Config) { c.LateRate = 0.05 }, func(n counts) bool { return n.late > 0 && n.dup+n.skew+n.miss+n.invalid == 0 }},
		{"skewed", func(c *Config) { c.SkewedRate = 0.05 }, func(n counts) bool { return n.skew > 0 && n.dup+n.late+n.miss+n.invalid == 0 }},
		{"missing time", func(c *Config) { c.MissingTimeRate = 0.05 }, func(n counts) bool { return n.miss > 0 && n.dup+n.late+n.skew+n.invalid == 0 }},
		{"invalid", func(c *Config) { c.InvalidRate = 0.05 }, func(n counts) bool { return n.invalid > 0 && n.dup+n.late+n.skew+n.miss == 0 }},
	}
	clean := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, rep := generate(t, small(tt.mod))
			s := readBack(t, st, rep)
			n := counts{s.rep.Duplicates, s.rep.Late, s.rep.Skewed, s.rep.MissingTime, s.rep.Invalid}
			if !tt.want(n) {
				t.Fatalf("files hold %+v", n)
			}
			if s.rep.Duplicates != rep.Duplicates || s.rep.Late != rep.Late || s.rep.Skewed != rep.Skewed ||
				s.rep.MissingTime != rep.MissingTime || s.rep.Invalid != rep.Invalid {
				t.Fatalf("report %+v disagrees with files %+v", rep, s.rep)
			}
			// A knob only adds rows or changes event_time: the good events
			// are the same ones as without it.
			if tt.name == "none" {
				for id := range s.distinctValid {
					clean[id] = true
				}
				return
			}
			if len(s.distinctValid) != len(clean) {
				t.Fatalf("%d good events, %d without knobs", len(s.distinctValid), len(clean))
			}
			for id := range s.distinctValid {
				if !clean[id] {
					t.Fatalf("event %s not in the clean data", id)
				}
			}
		})
	}
	t.Run("duplicates: same and later objects, later received_at", func(t *testing.T) {
		_, rep := generate(t, small(func(c *Config) { c.DuplicateRate = 0.1 }))
		if rep.DupLaterTime == 0 || rep.DupOtherObject == 0 || rep.DupOtherObject == rep.Duplicates {
			t.Fatalf("duplicates %d, later time %d, other object %d", rep.Duplicates, rep.DupLaterTime, rep.DupOtherObject)
		}
	})
	t.Run("skewed both ways, invalid both ways", func(t *testing.T) {
		_, rep := generate(t, small(func(c *Config) { c.SkewedRate, c.InvalidRate = 0.05, 0.05 }))
		if rep.SkewedFuture == 0 || rep.SkewedPast == 0 || rep.InvalidNoName == 0 || rep.InvalidNoWho == 0 {
			t.Fatalf("%+v", rep)
		}
	})
}

func TestBadObjects(t *testing.T) {
	st, rep := generate(t, small(func(c *Config) { c.NotParquet, c.Truncated, c.ZeroByte = 1, 2, 1 }))
	kinds := map[string]int{}
	for _, k := range rep.BadObjects {
		kind := rep.BadObjectKinds[k]
		kinds[kind]++
		b, err := st.Get(context.Background(), k)
		if err != nil {
			t.Fatal(err)
		}
		switch kind {
		case KindZeroByte:
			if len(b) != 0 {
				t.Errorf("%s: %d bytes", k, len(b))
			}
		case KindNotParquet:
			if !json.Valid(bytes.SplitN(b, []byte("\n"), 2)[0]) {
				t.Errorf("%s: not JSON lines", k)
			}
		case KindTruncated:
			if len(b) == 0 || !bytes.HasPrefix(b, []byte("PAR1")) {
				t.Errorf("%s: does not start like Parquet", k)
			}
		default:
			t.Errorf("%s: kind %q", k, kind)
		}
		if _, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b))); err == nil {
			t.Errorf("%s (%s) opens as Parquet", k, kind)
		}
	}
	if kinds[KindNotParquet] != 1 || kinds[KindTruncated] != 2 || kinds[KindZeroByte] != 1 {
		t.Fatalf("kinds %v", kinds)
	}
}

// TestShape checks the behavioural shape of the data: sessions, anonymous
// users who sign in, products, platforms and properties.
func TestShape(t *testing.T) {
	cfg := small(func(c *Config) { c.To = day1.AddDate(0, 0, 2); c.EventsPerDay = 4000; c.SessionIDRate = 1 })
	st, rep := generate(t, cfg)
	s := readBack(t, st, rep)

	type span struct {
		first, last time.Time
		device      string
		n           int
	}
	sessions := map[string]*span{}
	products, platforms, names := map[string]bool{}, map[string]bool{}, map[string]int{}
	anonDevices, signedDevices := map[string]bool{}, map[string]bool{}
	for _, e := range s.distinctValid {
		products[e.Product] = true
		platforms[e.Platform] = true
		names[e.EventName]++
		if e.UserID == "" {
			anonDevices[e.DeviceID] = true
		} else {
			signedDevices[e.DeviceID] = true
		}
		sp := sessions[e.SessionID]
		if sp == nil {
			sp = &span{first: e.ReceivedAt, last: e.ReceivedAt, device: e.DeviceID}
			sessions[e.SessionID] = sp
		}
		sp.n++
		if e.ReceivedAt.Before(sp.first) {
			sp.first = e.ReceivedAt
		}
		if e.ReceivedAt.After(sp.last) {
			sp.last = e.ReceivedAt
		}
		if sp.device != e.DeviceID {
			t.Fatalf("session %s on two devices", e.SessionID)
		}
	}
	if len(products) != 3 || len(platforms) != 3 {
		t.Errorf("products %v platforms %v", products, platforms)
	}
	if names["session_start"] == 0 || names["screen_view"] == 0 || names["page_view"] == 0 || names["purchase"] == 0 || names["login"] == 0 {
		t.Errorf("event names %v", names)
	}
	if names["screen_view"] < names["purchase"] {
		t.Errorf("screen_view (%d) should be far more common than purchase (%d)", names["screen_view"], names["purchase"])
	}
	if int64(len(sessions)) != rep.Sessions {
		t.Errorf("%d session ids, report says %d sessions", len(sessions), rep.Sessions)
	}
	signIns := 0
	for d := range anonDevices {
		if signedDevices[d] {
			signIns++
		}
	}
	if signIns == 0 || rep.SignIns == 0 {
		t.Errorf("no anonymous device later signed in (%d; report %d)", signIns, rep.SignIns)
	}
	if rep.AnonEvents == 0 || rep.AnonEvents > rep.Events/2 {
		t.Errorf("%d anonymous events of %d", rep.AnonEvents, rep.Events)
	}
	frac := float64(rep.WithProperties) / float64(rep.Events)
	if frac < 0.15 || frac > 0.25 {
		t.Errorf("%.2f of events have properties, want about 0.2", frac)
	}

	// Sessions cross midnight; sessions of one device are > 30 min apart.
	crossing, multi := 0, 0
	byDevice := map[string][]*span{}
	for _, sp := range sessions {
		if day(sp.first) != day(sp.last) {
			crossing++
		}
		if sp.n > 1 {
			multi++
		}
		byDevice[sp.device] = append(byDevice[sp.device], sp)
	}
	if crossing == 0 {
		t.Error("no session crosses UTC midnight")
	}
	if multi < len(sessions)/2 {
		t.Errorf("only %d of %d sessions have more than one event", multi, len(sessions))
	}
	close, pairs := 0, 0
	for _, sps := range byDevice {
		slices.SortFunc(sps, func(a, b *span) int { return a.first.Compare(b.first) })
		for i := 1; i < len(sps); i++ {
			pairs++
			if sps[i].first.Sub(sps[i-1].last) <= 30*time.Minute {
				close++
			}
		}
	}
	if pairs == 0 || close*100 > pairs {
		t.Errorf("%d of %d consecutive sessions of a device are 30 min apart or less", close, pairs)
	}

	// Zipf users: the busiest tenth of the devices sends a large share.
	perDevice := map[string]int{}
	for _, e := range s.distinctValid {
		perDevice[e.DeviceID]++
	}
	cnt := make([]int, 0, len(perDevice))
	for _, n := range perDevice {
		cnt = append(cnt, n)
	}
	slices.Sort(cnt)
	slices.Reverse(cnt)
	top := 0
	for _, n := range cnt[:len(cnt)/10] {
		top += n
	}
	share := float64(top) / float64(rep.Events)
	t.Logf("top 10%% of %d devices send %.2f of events; %d sessions, %d crossing midnight, %d of %d device session pairs close", len(cnt), share, len(sessions), crossing, close, pairs)
	if share < 0.35 {
		t.Errorf("top 10%% of devices send %.2f of events; want a skewed distribution", share)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want string // substring of the error; "" = valid
	}{
		{"ok", func(c *Config) {}, ""},
		{"no from", func(c *Config) { c.From = time.Time{} }, "required"},
		{"to before from", func(c *Config) { c.To = day1.AddDate(0, 0, -1) }, "before"},
		{"no events", func(c *Config) { c.EventsPerDay = 0 }, "events per day"},
		{"objects per hour", func(c *Config) { c.ObjectsPerHour = 61 }, "objects per hour"},
		{"rate > 1", func(c *Config) { c.LateRate = 1.5 }, "late rate"},
		{"negative rate", func(c *Config) { c.DuplicateRate = -0.1 }, "duplicate rate"},
		{"rates sum", func(c *Config) { c.LateRate, c.SkewedRate, c.MissingTimeRate = 0.5, 0.4, 0.2 }, "add up"},
		{"compression", func(c *Config) { c.Compression = "lzo" }, "compression"},
		{"stream", func(c *Config) { c.Stream = "a/b" }, "stream"},
		{"int96 too many", func(c *Config) { c.INT96Objects = 97 }, "int96"},
		{"negative bad", func(c *Config) { c.ZeroByte = -1 }, "negative"},
		{"anon off", func(c *Config) { c.AnonRate = -1 }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := small(tt.mod).Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one about %q", err, tt.want)
			}
		})
	}
	if _, err := Generate(context.Background(), nil, small(func(c *Config) { c.EventsPerDay = -1 })); err == nil {
		t.Fatal("Generate accepted a bad config")
	}
}

func TestAnonOff(t *testing.T) {
	_, rep := generate(t, small(func(c *Config) { c.AnonRate, c.SessionIDRate = -1, -1 }))
	if rep.AnonEvents != 0 || rep.SignIns != 0 || rep.SessionIDs != 0 {
		t.Fatalf("anon %d sign-ins %d session ids %d", rep.AnonEvents, rep.SignIns, rep.SessionIDs)
	}
}

// BenchmarkGenerate generates one day of 200,000 events per op.
func BenchmarkGenerate(b *testing.B) {
	cfg := Config{From: day1, To: day1, EventsPerDay: 200_000, Seed: 1}
	for b.Loop() {
		st, err := store.OpenDir(b.TempDir(), true)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Generate(context.Background(), st, cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(200_000, "events/op")
}

// TestStartOnFrom: with StartOnFrom no row (late, on time, or invalid;
// clock-skewed rows are off on purpose) is dated before From, so no day before the range holds rows, and there are
// still late events; without it, the first day's late events reach days
// before From.
func TestStartOnFrom(t *testing.T) {
	for _, on := range []bool{false, true} {
		st, rep := generate(t, small(func(c *Config) { c.LateRate, c.InvalidRate, c.StartOnFrom = 0.3, 0.1, on }))
		s := readBack(t, st, rep)
		before := 0
		for _, e := range s.rows {
			if !e.EventTime.IsZero() && e.EventTime.Before(day1) {
				before++
			}
		}
		switch {
		case on && before > 0:
			t.Errorf("StartOnFrom: %d rows dated before %s", before, day1.Format(time.DateOnly))
		case !on && before == 0:
			t.Errorf("without StartOnFrom no row is dated before %s; the test shows nothing", day1.Format(time.DateOnly))
		case rep.Late < 100:
			t.Errorf("StartOnFrom %v: only %d late events", on, rep.Late)
		}
	}
}
