package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/raw"
	"github.com/littlewarehouse/warehouse/internal/raw/rawtest"
	"github.com/littlewarehouse/warehouse/internal/store"
)

var zones = []string{"UTC", "Pacific/Auckland"}

func TestScanAgreesWithRawOnEventgenData(t *testing.T) {
	dir, rep := nastyStore(t)
	st, err := store.OpenDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	objs := listRaw(t, st)
	if len(rep.INT96Objects) == 0 || len(rep.BadObjects) == 0 || rep.Late == 0 || rep.Skewed == 0 || rep.MissingTime == 0 {
		t.Fatalf("the data is not nasty enough: %+v", rep)
	}
	for _, zone := range zones {
		t.Run(zone, func(t *testing.T) {
			rules := compact.DefaultRules(mustLoc(t, zone))
			var multiDay, bad, int96 int
			for _, o := range objs {
				data, err := st.Get(ctx, o.Key)
				if err != nil {
					t.Fatal(err)
				}
				want := slowEntry(t, data, o.Key, o.Hour, rules)
				got, err := Scan(bytes.NewReader(data), int64(len(data)), o.Key, o.Hour, rules)
				if err != nil {
					t.Fatalf("scan %s: %v", o.Key, err)
				}
				compareEntries(t, want, got)
				if rep.ObjectRows[o.Key] != got.Rows {
					t.Errorf("%s: %d rows, eventgen wrote %d", o.Key, got.Rows, rep.ObjectRows[o.Key])
				}
				if (got.Bad != "") != slices.Contains(rep.BadObjects, o.Key) {
					t.Errorf("%s: bad %q, but eventgen's bad objects are %v", o.Key, got.Bad, rep.BadObjects)
				}
				if len(got.Days) > 1 {
					multiDay++
				}
				if got.Bad != "" {
					bad++
				}
				if slices.Contains(rep.INT96Objects, o.Key) && got.Bad == "" && got.Rows > 0 {
					int96++
				}
			}
			t.Logf("%d objects: %d feed more than one day, %d bad, %d INT96", len(objs), multiDay, bad, int96)
			if multiDay == 0 || bad != len(rep.BadObjects) || int96 != len(rep.INT96Objects) {
				t.Errorf("expected objects feeding several days, %d bad and %d INT96 objects", len(rep.BadObjects), len(rep.INT96Objects))
			}
		})
	}
}

// Schemas and encodings that raw.ReadFrom accepts or rejects.
type (
	int96Row struct {
		EventID    string            `parquet:"event_id"`
		EventTime  *deprecated.Int96 `parquet:"event_time,optional"`
		ReceivedAt *deprecated.Int96 `parquet:"received_at,optional"`
		EventName  string            `parquet:"event_name"`
		Extra      int32             `parquet:"some_new_column"`
	}
	unitsRow struct {
		EventID    string `parquet:"event_id"`
		EventTime  int64  `parquet:"event_time,timestamp(microsecond)"`
		ReceivedAt int64  `parquet:"received_at,timestamp(nanosecond)"`
		EventName  string `parquet:"event_name,dict"`
	}
	plainInt64Row struct {
		EventID    string `parquet:"event_id"`
		EventTime  *int64 `parquet:"event_time,optional,dict"`
		ReceivedAt int64  `parquet:"received_at,delta"`
		EventName  string `parquet:"event_name"`
	}
	noEventTimeRow struct {
		EventID    string    `parquet:"event_id"`
		ReceivedAt time.Time `parquet:"received_at,timestamp(millisecond)"`
		EventName  string    `parquet:"event_name"`
		UserID     string    `parquet:"user_id,optional"`
	}
	mapOfIntsRow struct {
		EventID    string           `parquet:"event_id"`
		ReceivedAt time.Time        `parquet:"received_at,timestamp(millisecond)"`
		EventName  string           `parquet:"event_name"`
		Properties map[string]int64 `parquet:"properties"`
	}
	idIsIntRow struct {
		EventID    int64  `parquet:"event_id"`
		ReceivedAt int64  `parquet:"received_at"`
		EventName  string `parquet:"event_name"`
	}
	noReceivedAtRow struct {
		EventID   string `parquet:"event_id"`
		EventName string `parquet:"event_name"`
	}
	noEventNameRow struct {
		EventID    string `parquet:"event_id"`
		ReceivedAt int64  `parquet:"received_at"`
	}
	timeIsStringRow struct {
		EventID    string `parquet:"event_id"`
		EventTime  string `parquet:"event_time"`
		ReceivedAt int64  `parquet:"received_at"`
		EventName  string `parquet:"event_name"`
	}
	timeIsInt32Row struct {
		EventID    string `parquet:"event_id"`
		ReceivedAt int32  `parquet:"received_at"`
		EventName  string `parquet:"event_name"`
	}
	repeatedRow struct {
		EventID    string   `parquet:"event_id"`
		ReceivedAt int64    `parquet:"received_at"`
		EventName  string   `parquet:"event_name"`
		UserID     []string `parquet:"user_id"`
	}
	repeatedTimeRow struct {
		EventID    string  `parquet:"event_id"`
		ReceivedAt []int64 `parquet:"received_at"`
		EventName  string  `parquet:"event_name"`
	}
)

func ms(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMilli()
}

func i96(ms int64) *deprecated.Int96 {
	v := gen.ToInt96(time.UnixMilli(ms))
	return &v
}

// rawEvents are rows of our own schema that cover every branch of the
// clock-skew rule, around Auckland and UTC midnights.
func rawEvents() []event.Raw {
	at := func(s string) time.Time { return time.UnixMilli(ms(s)).UTC() }
	return []event.Raw{
		{EventID: "ok", EventTime: at("2026-04-04T10:59:59.999Z"), ReceivedAt: at("2026-04-04T11:00:00.500Z"), EventName: "a", UserID: "u"},
		{EventID: "late", EventTime: at("2026-03-30T23:00:00Z"), ReceivedAt: at("2026-04-04T11:00:01Z"), EventName: "a", UserID: "u"},
		{EventID: "too-late", EventTime: at("2026-03-01T00:00:00Z"), ReceivedAt: at("2026-04-04T11:00:02Z"), EventName: "a", UserID: "u"},
		{EventID: "ahead", EventTime: at("2026-04-04T11:20:00Z"), ReceivedAt: at("2026-04-04T11:00:03Z"), EventName: "a", UserID: "u"},
		{EventID: "just-ahead", EventTime: at("2026-04-04T11:10:04Z"), ReceivedAt: at("2026-04-04T11:00:04Z"), EventName: "a", UserID: "u"},
		{EventID: "no-event-time", ReceivedAt: at("2026-04-04T11:00:05Z"), EventName: "a", UserID: "u"},
		{EventID: "no-received-at", EventTime: at("2026-04-01T12:00:00Z"), EventName: "a", UserID: "u"},
		{EventID: "no-times", EventName: "a", UserID: "u"},
		{EventID: "epoch", EventTime: at("1970-01-01T00:00:00.001Z"), ReceivedAt: at("2026-04-04T11:00:06Z"), EventName: "a", UserID: "u"},
	}
}

func TestScanAgreesWithRawOnSchemas(t *testing.T) {
	t1 := ms("2026-04-04T11:30:00.123Z")
	old := ms("1969-07-20T20:17:40.001Z")
	ev := rawEvents()
	good := writeParquet(t, ev)
	var goodTimes []byte // a file whose time columns have a corrupt page
	{
		f, err := parquet.OpenFile(bytes.NewReader(good), int64(len(good)))
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := f.Schema().Lookup("received_at")
		cc := f.Metadata().RowGroups[0].Columns[leaf.ColumnIndex].MetaData
		goodTimes = slices.Clone(good)
		for i := cc.DataPageOffset; i < cc.DataPageOffset+cc.TotalCompressedSize; i++ {
			goodTimes[i] = 0xff
		}
	}
	p := func(v int64) *int64 { return &v }
	tests := []struct {
		name string
		data []byte
		bad  string // expected reason, "" for readable
	}{
		{"our schema, every branch of the clock-skew rule", good, ""},
		{"our schema, gzip, several row groups and pages", writeParquet(t, append(append(ev, ev...), ev...),
			parquet.Compression(&parquet.Gzip), parquet.MaxRowsPerRowGroup(4), parquet.PageBufferSize(64)), ""},
		{"INT96 times with nulls and an old date", writeParquet(t, []int96Row{
			{"a", i96(t1), i96(t1 + 5), "x", 7}, {"b", i96(old), i96(old), "y", 0}, {"c", nil, i96(t1), "z", 0}, {"d", i96(t1), nil, "z", 0}}), ""},
		{"INT64 micros and nanos", writeParquet(t, []unitsRow{{"a", t1*1000 + 999, t1*1_000_000 + 999_999, "x"}, {"b", -1, -1, "x"}}), ""},
		{"unannotated INT64, dictionary and delta encoded", writeParquet(t, []plainInt64Row{{"a", p(t1), t1, "x"}, {"b", nil, t1 + 1, "y"}, {"c", p(t1), t1 + 2, "z"}}), ""},
		{"no event_time column", writeParquet(t, []noEventTimeRow{{"a", time.UnixMilli(t1), "x", ""}, {"b", time.UnixMilli(old), "x", "u"}}), ""},
		{"properties of another type are ignored", writeParquet(t, []mapOfIntsRow{{"a", time.UnixMilli(t1), "x", map[string]int64{"k": 1}}}), ""},
		{"no rows", writeParquet(t, []event.Raw{}), ""},

		{"zero bytes", nil, "empty"},
		{"JSON", []byte(`{"event_id": "a", "this": "is json"}`), "not_parquet"},
		{"too small", []byte("PAR1PAR1"), "not_parquet"},
		{"truncated", good[:len(good)/2], "corrupt"},
		{"no magic at the end", append(slices.Clone(good[:len(good)-1]), 'X'), "corrupt"},
		{"footer garbage", append(append([]byte{}, good[:len(good)-8]...), 0xff, 0xff, 0xff, 0x7f, 'P', 'A', 'R', '1'), "corrupt"},
		{"a corrupt time column page", goodTimes, "corrupt"},
		{"event_id is an integer", writeParquet(t, []idIsIntRow{{1, 2, "x"}}), "schema_mismatch"},
		{"no received_at column", writeParquet(t, []noReceivedAtRow{{"a", "x"}}), "schema_mismatch"},
		{"no event_name column", writeParquet(t, []noEventNameRow{{"a", 1}}), "schema_mismatch"},
		{"event_time is a string", writeParquet(t, []timeIsStringRow{{"a", "now", 1, "x"}}), "schema_mismatch"},
		{"received_at is INT32", writeParquet(t, []timeIsInt32Row{{"a", 1, "x"}}), "schema_mismatch"},
		{"user_id is a list", writeParquet(t, []repeatedRow{{"a", 1, "x", []string{"u"}}}), "schema_mismatch"},
		{"received_at is repeated", writeParquet(t, []repeatedTimeRow{{"a", []int64{1}, "x"}}), "schema_mismatch"},
	}
	hour := time.Date(2026, 4, 4, 11, 0, 0, 0, time.UTC)
	for _, zone := range zones {
		rules := compact.DefaultRules(mustLoc(t, zone))
		for _, tc := range tests {
			t.Run(zone+"/"+tc.name, func(t *testing.T) {
				key := "raw/2026/04/04/11/x"
				want := slowEntry(t, tc.data, key, hour, rules)
				if want.Bad != tc.bad {
					t.Fatalf("raw.ReadFrom says bad %q (%s), the test expects %q", want.Bad, want.Detail, tc.bad)
				}
				got, err := Scan(bytes.NewReader(tc.data), int64(len(tc.data)), key, hour, rules)
				if err != nil {
					t.Fatal(err)
				}
				compareEntries(t, want, got)
			})
		}
	}
}

func TestScanEveryBranchOfTheRule(t *testing.T) {
	data := writeParquet(t, rawEvents())
	hour := time.Date(2026, 4, 4, 11, 0, 0, 0, time.UTC)
	tests := []struct {
		zone string
		want []string
	}{
		// too-late and ahead count at received_at (04-04), rows without
		// received_at (with or without event_time) at the hour, epoch at
		// received_at.
		{"UTC", []string{"2026-03-30", "2026-04-04"}},
		// 11:00Z is 00:00 in Auckland (NZDT, +13) on 04-05; ok (10:59:59Z)
		// is still 04-04 there; late is 03-31 12:00.
		{"Pacific/Auckland", []string{"2026-03-31", "2026-04-04", "2026-04-05"}},
	}
	for _, tc := range tests {
		t.Run(tc.zone, func(t *testing.T) {
			e, err := Scan(bytes.NewReader(data), int64(len(data)), "k", hour, compact.DefaultRules(mustLoc(t, tc.zone)))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range e.Days {
				got = append(got, d.String())
			}
			if !slices.Equal(got, tc.want) || e.Rows != 9 {
				t.Fatalf("days %v, %d rows; want %v, 9", got, e.Rows, tc.want)
			}
			if e.FirstArrival != ms("2026-04-04T11:00:00.500Z") || e.LastArrival != ms("2026-04-04T11:00:06Z") {
				t.Fatalf("arrivals %d..%d", e.FirstArrival, e.LastArrival)
			}
		})
	}
}

// TestScanForeignFiles: every foreign or broken Parquet file that
// raw.ReadFrom rejects, Scan rejects for the same reason.
func TestScanForeignFiles(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "parquet-testing")
	files, _ := filepath.Glob(filepath.Join(dir, "*.parquet"))
	if len(files) < 73 {
		t.Fatalf("%d foreign Parquet files at %s, want 73 (apache/parquet-testing, kept in the repository)", len(files), dir)
	}
	rules := compact.DefaultRules(time.UTC)
	hour := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			want := slowEntry(t, b, "k", hour, rules)
			got, err := Scan(bytes.NewReader(b), int64(len(b)), "k", hour, rules)
			if err != nil {
				t.Fatal(err)
			}
			compareEntries(t, want, got)
		})
	}
}

// TestScanCorruptedBytes damages a good file one byte at a time and
// compares Scan with raw.ReadFrom. They must agree (same reason, or the
// same entry), except that damage to a column Scan does not read can only be
// found by raw.ReadFrom: such bytes must lie outside the time columns.
func TestScanCorruptedBytes(t *testing.T) {
	var evs []event.Raw
	for i := range 300 {
		at := time.Date(2026, 4, 4, 10, 0, 0, 0, time.UTC).Add(time.Duration(i) * 17 * time.Second)
		e := event.Raw{EventID: fmt.Sprintf("e%04d", i), EventTime: at.Add(-time.Duration(i%50) * 3 * time.Hour), ReceivedAt: at,
			EventName: []string{"view", "click"}[i%2], UserID: fmt.Sprint("u", i%7)}
		if i%11 == 0 {
			e.EventTime = time.Time{}
		}
		if i%5 == 0 {
			e.Properties = map[string]string{"k": fmt.Sprint(i)}
		}
		evs = append(evs, e)
	}
	good := writeParquet(t, evs, parquet.PageBufferSize(512), parquet.MaxRowsPerRowGroup(120))
	f, err := parquet.OpenFile(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	var timeRanges [][2]int64
	for _, name := range []string{"event_time", "received_at"} {
		leaf, _ := f.Schema().Lookup(name)
		for _, rg := range f.Metadata().RowGroups {
			md := rg.Columns[leaf.ColumnIndex].MetaData
			start := md.DataPageOffset
			if md.DictionaryPageOffset > 0 && md.DictionaryPageOffset < start {
				start = md.DictionaryPageOffset
			}
			timeRanges = append(timeRanges, [2]int64{start, start + md.TotalCompressedSize})
		}
	}
	inTime := func(off int64) bool {
		for _, r := range timeRanges {
			if off >= r[0] && off < r[1] {
				return true
			}
		}
		return false
	}
	rules := compact.DefaultRules(mustLoc(t, "Pacific/Auckland"))
	hour := time.Date(2026, 4, 4, 13, 0, 0, 0, time.UTC)
	var agreeBad, agreeGood, onlyRaw int
	step := int64(1)
	if testing.Short() {
		step = 7
	}
	for off := int64(0); off < int64(len(good)); off += step {
		data := slices.Clone(good)
		data[off] ^= 0x5a
		want, got := scanBoth(t, data, hour, rules)
		switch {
		case got.Bad != "" && want.Bad == "":
			t.Fatalf("byte %d: Scan says %s (%s), raw.ReadFrom reads it", off, got.Bad, got.Detail)
		case got.Bad == "" && want.Bad != "":
			onlyRaw++
			if inTime(off) {
				t.Errorf("byte %d in a time column: raw.ReadFrom says %s (%s), Scan reads it", off, want.Bad, want.Detail)
			}
		case got.Bad != "":
			// raw.ReadFrom names the first column it failed on, which
			// may be one that Scan does not read: compare reasons only.
			agreeBad++
			if got.Bad != want.Bad {
				t.Errorf("byte %d: Scan says %s (%s), raw.ReadFrom %s (%s)", off, got.Bad, got.Detail, want.Bad, want.Detail)
			}
		default:
			agreeGood++
			compareEntries(t, want, got)
		}
	}
	t.Logf("%d bytes damaged one at a time: %d bad for both, %d readable for both, %d bad only for raw.ReadFrom (outside the time columns)",
		agreeBad+agreeGood+onlyRaw, agreeBad, agreeGood, onlyRaw)
}

// scanBoth runs raw.ReadFrom and Scan on data, each with a time limit.
func scanBoth(t *testing.T, data []byte, hour time.Time, rules compact.Rules) (want, got Entry) {
	t.Helper()
	var wg sync.WaitGroup
	var err error
	wg.Go(func() { want = slowEntry(t, data, "k", hour, rules) })
	wg.Go(func() { got, err = Scan(bytes.NewReader(data), int64(len(data)), "k", hour, rules) })
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a reader hung")
	}
	if err != nil {
		t.Fatal(err)
	}
	return want, got
}

// rangeReader records the byte ranges read.
type rangeReader struct {
	r      *bytes.Reader
	mu     sync.Mutex
	ranges [][2]int64
}

func (r *rangeReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.r.ReadAt(p, off)
	r.mu.Lock()
	r.ranges = append(r.ranges, [2]int64{off, off + int64(n)})
	r.mu.Unlock()
	return n, err
}

func TestScanReadsOnlyFooterAndTimeColumns(t *testing.T) {
	dir, rep := nastyStore(t)
	st, err := store.OpenDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	rules := compact.DefaultRules(time.UTC)
	for _, key := range []string{rep.Objects[0], rep.INT96Objects[0]} {
		data, err := st.Get(context.Background(), key)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		size := int64(len(data))
		footer := int64(uint32(data[size-8]) | uint32(data[size-7])<<8 | uint32(data[size-6])<<16 | uint32(data[size-5])<<24)
		allowed := [][2]int64{{0, 4}, {size - 8 - footer, size}}
		var timeBytes int64
		for _, name := range []string{"event_time", "received_at"} {
			leaf, _ := f.Schema().Lookup(name)
			for _, rg := range f.Metadata().RowGroups {
				md := rg.Columns[leaf.ColumnIndex].MetaData
				start := md.DataPageOffset
				if md.DictionaryPageOffset > 0 && md.DictionaryPageOffset < start {
					start = md.DictionaryPageOffset
				}
				allowed = append(allowed, [2]int64{start, start + md.TotalCompressedSize})
				timeBytes += md.TotalCompressedSize
			}
		}
		rr := &rangeReader{r: bytes.NewReader(data)}
		if _, err := Scan(rr, size, key, hourOf(t, key), rules); err != nil {
			t.Fatal(err)
		}
		var read int64
		for _, r := range rr.ranges {
			read += r[1] - r[0]
			if !slices.ContainsFunc(allowed, func(a [2]int64) bool { return r[0] >= a[0] && r[1] <= a[1] }) {
				t.Errorf("%s: read bytes %d..%d, outside the magic, the footer and the time columns %v", key, r[0], r[1], allowed)
			}
		}
		t.Logf("%s: read %d of %d bytes (time columns %d, footer %d)", key, read, size, timeBytes, footer)
	}
}

// TestDayCacheAgreesWithDayOf checks the zone-period cache against day.Of
// in zones with daylight saving time, odd offsets and skipped days.
func TestDayCacheAgreesWithDayOf(t *testing.T) {
	zones := []string{"UTC", "Pacific/Auckland", "America/Los_Angeles", "Asia/Kathmandu", "Australia/Lord_Howe",
		"Pacific/Chatham", "America/Santiago", "Africa/Monrovia", "Pacific/Apia", "America/Havana", "Europe/Dublin"}
	r := rand.New(rand.NewPCG(1, 2))
	for _, zone := range zones {
		t.Run(zone, func(t *testing.T) {
			loc := mustLoc(t, zone)
			c := dayCache{loc: loc}
			check := func(ms int64) {
				if got, want := c.of(ms), day.Of(ms, loc); got != want {
					t.Fatalf("%d (%s): cache says %s, day.Of %s", ms, time.UnixMilli(ms).UTC(), got, want)
				}
			}
			// Every 7 minutes 13.7 seconds across 1968..1974 and 2010..2030,
			// forward then backward, then random jumps.
			for _, span := range [][2]string{{"1968-01-01T00:00:00Z", "1974-01-01T00:00:00Z"}, {"2010-01-01T00:00:00Z", "2030-01-01T00:00:00Z"}} {
				lo, hi := ms(span[0]), ms(span[1])
				for m := lo; m < hi; m += 433_700 {
					check(m)
				}
				for m := hi; m > lo; m -= 433_700 {
					check(m)
				}
			}
			for range 200_000 {
				check(r.Int64N(ms("2100-01-01T00:00:00Z")-ms("1900-01-01T00:00:00Z")) + ms("1900-01-01T00:00:00Z"))
			}
			// Both sides of every transition.
			for t0 := time.Date(1965, 1, 1, 0, 0, 0, 0, loc); t0.Year() < 2040; {
				_, end := t0.ZoneBounds()
				if end.IsZero() {
					break
				}
				for _, d := range []int64{-1, 0, 1} {
					check(end.UnixMilli() + d)
				}
				t0 = end
			}
		})
	}
}

func TestScanNeedsAZone(t *testing.T) {
	data := writeParquet(t, rawEvents())
	if _, err := Scan(bytes.NewReader(data), int64(len(data)), "k", time.Now(), compact.Rules{}); err == nil {
		t.Fatal("no error for rules without a time zone")
	}
}

// errAt fails reads of the magic bytes.
type errAt struct{}

func (errAt) ReadAt([]byte, int64) (int, error) { return 0, errors.New("connection reset") }

func TestScanReturnsReadErrorsOfTheMagic(t *testing.T) {
	if _, err := Scan(errAt{}, 100, "k", time.Now(), compact.DefaultRules(time.UTC)); err == nil {
		t.Fatal("no error")
	}
}

// TestScanLyingObjects: objects whose footer or time-column page headers
// claim more than their bytes hold are bad for Scan with the reason
// raw.ReadFrom gives, also through a store whose reader fails on offsets
// outside the object (as S3 does on a negative one); Scan allocates little
// for them. Before the bounds, a footer length pointing before the start
// failed the run with "index: scan …: negative offset" and a 2^31-row
// footer ran the process out of memory.
func TestScanLyingObjects(t *testing.T) {
	ctx := context.Background()
	rules := compact.DefaultRules(time.UTC)
	hour := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	mem := store.NewMem()
	for i, tc := range rawtest.Lying(t) {
		t.Run(tc.Name, func(t *testing.T) {
			var e Entry
			var err error
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			e, err = Scan(bytes.NewReader(tc.Data), int64(len(tc.Data)), "k", hour, rules)
			runtime.ReadMemStats(&after)
			if err != nil || e.Bad != tc.Reason || e.Days != nil || e.Rows != 0 {
				t.Fatalf("Scan: bad %q (%s), %d rows, err %v; want bad %q", e.Bad, e.Detail, e.Rows, err, tc.Reason)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 64<<20 {
				t.Fatalf("Scan allocated %d MiB", n>>20)
			}
			_, rerr := raw.ReadFrom(bytes.NewReader(tc.Data), int64(len(tc.Data)), "k")
			var bad *raw.BadObjectError
			if !errors.As(rerr, &bad) || bad.Reason != e.Bad {
				t.Fatalf("raw.ReadFrom: %v; Scan says %q", rerr, e.Bad)
			}

			key := fmt.Sprintf("raw/2026/01/02/03/lie-%d", i)
			if err := mem.Put(ctx, key, tc.Data); err != nil {
				t.Fatal(err)
			}
			e, err = scanObject(ctx, rawtest.StrictStore{Store: mem}, ObjectRef{Key: key, Hour: hour}, rules)
			if err != nil || e.Bad != tc.Reason {
				t.Fatalf("scanObject: bad %q, err %v; want bad %q", e.Bad, err, tc.Reason)
			}
		})
	}
}
