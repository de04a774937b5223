package publish

import (
	"bytes"
	cmpops "cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/littlewarehouse/warehouse/internal/duckref"
	"github.com/littlewarehouse/warehouse/internal/frame"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// eventOf returns event i of ev as the events table's row.
func eventOf(ev *frame.Events, i int) rollups.Event {
	r := ev.Row(i)
	return rollups.Event{EventID: r.EventID, EventTime: r.EventTime, ClientEventTime: r.ClientTime, ReceivedAt: r.ReceivedAt,
		EventName: r.Str[frame.EventName], UserID: r.Str[frame.UserID], DeviceID: r.Str[frame.DeviceID],
		SessionID: r.Str[frame.SessionID], Product: r.Str[frame.Product], Platform: r.Str[frame.Platform],
		AppVersion: r.Str[frame.AppVersion], Country: r.Str[frame.Country], Properties: r.Props,
		UserKey: r.Str[frame.UserKey], SessionKey: r.Str[frame.SessionKey], ClockSkewed: r.Skewed, Date: ev.Day}
}

// randomEvents returns n random events: nulls in every optional column,
// events without properties, with one and with many, strings that look
// odd (but are valid UTF-8), empty event ids and names, and long strings.
func randomEvents(rng *rand.Rand, n int) *frame.Events {
	odd := []string{"", "a", "é", "日本語", "\x00", "line\nbreak", "tab\t", "\u200b", "😀", "\ufffd", "(none)", "null", "NULL",
		strings.Repeat("x", 300), "key=value", `"quoted"`, "\\", " "}
	pick := func(pool []string, nullRate int) string {
		if rng.Intn(nullRate) == 0 {
			return ""
		}
		if rng.Intn(4) == 0 {
			return odd[rng.Intn(len(odd))]
		}
		return pool[rng.Intn(len(pool))]
	}
	pool := func(prefix string, k int) []string {
		p := make([]string, k)
		for i := range p {
			p[i] = fmt.Sprintf("%s%d", prefix, i)
		}
		return p
	}
	names, users, products, versions := pool("ev_", 30), pool("user-", 500), pool("prod", 4), pool("1.", 20)
	platforms, countries, keys := []string{"web", "ios", "android"}, pool("C", 40), pool("k", 25)
	ev := frame.New(nil, n)
	ev.Day = 20_000 + rng.Int31n(1000)
	t := int64(1_780_000_000_000)
	for range n {
		t += rng.Int63n(1000)
		r := frame.Row{EventID: fmt.Sprintf("%016x", rng.Uint64()), EventTime: t, ReceivedAt: t + rng.Int63n(10_000), Skewed: rng.Intn(7) == 0}
		if rng.Intn(100) == 0 {
			r.EventID = odd[rng.Intn(len(odd))]
		}
		if rng.Intn(3) > 0 {
			r.ClientTime = t - rng.Int63n(5000)
		}
		r.Str[frame.EventName] = pick(names, 50)
		r.Str[frame.UserID] = pick(users, 3)
		r.Str[frame.DeviceID] = pick(users, 5)
		r.Str[frame.SessionID] = pick(users, 2)
		r.Str[frame.Product] = pick(products, 4)
		r.Str[frame.Platform] = pick(platforms, 6)
		r.Str[frame.AppVersion] = pick(versions, 3)
		r.Str[frame.Country] = pick(countries, 5)
		r.Str[frame.UserKey] = pick(users, 100)
		r.Str[frame.SessionKey] = "s:" + pick(users, 100)
		switch rng.Intn(4) {
		case 0, 1: // none
		case 2:
			r.Props = map[string]string{pick(keys, 10): pick(names, 3)}
		default:
			r.Props = map[string]string{}
			for range 1 + rng.Intn(12) {
				r.Props[pick(keys, 20)] = pick(odd, 5)
			}
		}
		if err := ev.Append(&r); err != nil {
			panic(err)
		}
	}
	return ev
}

// readEvents reads back every file written, checking each file's row count
// and size against its File.
func readEvents(t testing.TB, st store.Store, files []File) []rollups.Event {
	t.Helper()
	var got []rollups.Event
	for _, f := range files {
		b, err := st.Get(context.Background(), f.Key)
		if err != nil {
			t.Fatal(err)
		}
		part, err := parquet.Read[rollups.Event](bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(part)) != f.Rows || int64(len(b)) != f.Size {
			t.Fatalf("%s: %d rows %d bytes, File says %d and %d", f.Key, len(part), len(b), f.Rows, f.Size)
		}
		got = append(got, part...)
	}
	return got
}

func TestWriteEventsRoundTrips(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		n         int
		opt       WriterOptions
		files     int // at least
		rowGroups int // at least, in the first file
	}{
		{n: 1, opt: WriterOptions{RowGroupSize: 1 << 20}, files: 1, rowGroups: 1},
		{n: 5000, opt: WriterOptions{RowGroupSize: 1 << 30}, files: 1, rowGroups: 1},
		{n: 20000, opt: WriterOptions{RowGroupSize: 64 << 10}, files: 1, rowGroups: 4},
		{n: 20000, opt: WriterOptions{RowGroupSize: 64 << 10, TargetFileSize: 200 << 10}, files: 3, rowGroups: 2},
		{n: 20000, opt: WriterOptions{RowGroupSize: 1, TargetFileSize: 1}, files: 19, rowGroups: 1},
	} {
		t.Run(fmt.Sprintf("n=%d/rg=%d/file=%d", tc.n, tc.opt.RowGroupSize, tc.opt.TargetFileSize), func(t *testing.T) {
			st := openStore(t)
			ev := randomEvents(rand.New(rand.NewSource(int64(tc.n))), tc.n)
			files, err := WriteEvents(ctx, st, "t/", ev, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if len(files) < tc.files {
				t.Errorf("%d files, want at least %d", len(files), tc.files)
			}
			for i, f := range files {
				if want := fmt.Sprintf("t/part-%05d.zstd.parquet", i); f.Key != want {
					t.Errorf("file %d is %s, want %s", i, f.Key, want)
				}
			}
			b, _ := st.Get(ctx, files[0].Key)
			pf, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			if len(pf.RowGroups()) < tc.rowGroups {
				t.Errorf("%d row groups in the first file, want at least %d", len(pf.RowGroups()), tc.rowGroups)
			}
			got := readEvents(t, st, files)
			want := make([]rollups.Event, ev.Len())
			for i := range want {
				want[i] = eventOf(ev, i)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("round trip (-frame +read):\n%s", diff)
			}
		})
	}
}

// TestWriteEventsSchema: the files have rollups.Event's schema exactly,
// dictionary-encode the columns its tags say dict (and only those), are
// zstd-compressed and carry CreatedBy.
func TestWriteEventsSchema(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	ev := randomEvents(rand.New(rand.NewSource(3)), 3000)
	files, err := WriteEvents(ctx, st, "t/", ev, WriterOptions{RowGroupSize: 1 << 20, CreatedBy: "test v1"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := st.Get(ctx, files[0].Key)
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(parquet.SchemaOf(rollups.Event{}).String(), "message Event", "message x", 1)
	got := strings.Replace(f.Schema().String(), "message Event", "message x", 1)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("the file's schema is not rollups.Event's (-Event +file):\n%s", diff)
	}
	// writeBatch writes every column.
	written := []eventCol{colEventID, colEventTime, colClientTime, colReceivedAt, colPropKey, colPropValue, colClockSkewed, colDate}
	written = append(written, colStr[:]...)
	var idx []int
	for _, c := range written {
		idx = append(idx, c.index)
	}
	slices.Sort(idx)
	for i, x := range idx {
		if x != i || len(idx) != len(eventSchema.Columns()) {
			t.Fatalf("WriteEvents writes columns %v of %d", idx, len(eventSchema.Columns()))
		}
	}
	if cb := f.Metadata().CreatedBy; !strings.HasPrefix(cb, "test v1") {
		t.Errorf("created_by %q", cb)
	}
	dict := map[string]bool{}
	for _, c := range rollups.Daily[0].Columns() {
		f, _ := reflect.TypeFor[rollups.Event]().FieldByName(fieldOf(c.Name))
		dict[c.Name] = strings.Contains(f.Tag.Get("parquet"), ",dict")
	}
	for _, rg := range f.Metadata().RowGroups {
		for _, cc := range rg.Columns {
			md := cc.MetaData
			name := md.PathInSchema[0]
			if md.Codec != format.Zstd {
				t.Errorf("%s: codec %v, want ZSTD", name, md.Codec)
			}
			hasDict := slices.Contains(md.Encoding, format.RLEDictionary)
			if hasDict != dict[name] {
				t.Errorf("%s: encodings %v; dictionary-encoded should be %v", name, md.Encoding, dict[name])
			}
		}
	}
}

// fieldOf returns the name of rollups.Event's field for column name.
func fieldOf(name string) string {
	t := reflect.TypeFor[rollups.Event]()
	for i := range t.NumField() {
		if n, _, _ := strings.Cut(t.Field(i).Tag.Get("parquet"), ","); n == name {
			return t.Field(i).Name
		}
	}
	panic("no field for " + name)
}

// rawRows reads the files' rows as parquet-go's values with their levels,
// one string per value: column, repetition and definition level, value.
func rawRows(t *testing.T, st store.Store, files []File) [][]string {
	t.Helper()
	var out [][]string
	for _, fl := range files {
		b, err := st.Get(context.Background(), fl.Key)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		for _, rg := range f.RowGroups() {
			rows := rg.Rows()
			buf := make([]parquet.Row, 100)
			for {
				n, err := rows.ReadRows(buf)
				for _, r := range buf[:n] {
					var vs []string
					for _, v := range r {
						s := "NULL"
						if !v.IsNull() {
							s = fmt.Sprintf("%q", v.String())
						}
						vs = append(vs, fmt.Sprintf("c%d r%d d%d %s", v.Column(), v.RepetitionLevel(), v.DefinitionLevel(), s))
					}
					out = append(out, vs)
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			rows.Close()
		}
	}
	return out
}

// TestWriteEventsLevels compares, value by value with their repetition and
// definition levels, what WriteEvents writes with what parquet-go's own
// writer makes of the same events as []rollups.Event (Write): the map
// column's levels, and a null wherever a string is empty, client_event_time
// is 0 or an event has no properties. It also checks those nulls directly.
func TestWriteEventsLevels(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	ev := randomEvents(rand.New(rand.NewSource(4)), 5000)
	rows := make([]rollups.Event, ev.Len())
	for i := range rows {
		rows[i] = eventOf(ev, i)
	}
	opt := WriterOptions{RowGroupSize: 64 << 10}
	files, err := WriteEvents(ctx, st, "a/", ev, opt)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := Write(ctx, st, "b/", rows, opt)
	if err != nil {
		t.Fatal(err)
	}
	got, want := rawRows(t, st, files), rawRows(t, st, ref)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("values and levels (-Write of []rollups.Event +WriteEvents):\n%s", diff)
	}
	optional := map[int]func(e *rollups.Event) bool{
		colClientTime.index: func(e *rollups.Event) bool { return e.ClientEventTime == 0 },
		colPropKey.index:    func(e *rollups.Event) bool { return len(e.Properties) == 0 },
		colPropValue.index:  func(e *rollups.Event) bool { return len(e.Properties) == 0 },
	}
	for _, c := range []frame.Column{frame.UserID, frame.DeviceID, frame.SessionID, frame.Product, frame.Platform, frame.AppVersion, frame.Country} {
		optional[colStr[c].index] = func(e *rollups.Event) bool { return ev.Dict.Str(0) == fieldString(e, c) }
	}
	nulls := map[int]int{}
	for i, r := range got {
		for _, v := range r {
			var col, rep, def int
			fmt.Sscanf(v, "c%d r%d d%d", &col, &rep, &def)
			isNull := strings.HasSuffix(v, " NULL")
			if isNull {
				nulls[col]++
			}
			if null, ok := optional[col]; ok && null(&rows[i]) != isNull {
				t.Fatalf("event %d: %s, but the event says null=%v", i, v, null(&rows[i]))
			}
			if _, ok := optional[col]; !ok && isNull {
				t.Fatalf("event %d: null in required column: %s", i, v)
			}
		}
	}
	for col := range optional {
		if nulls[col] == 0 || nulls[col] == len(rows) {
			t.Errorf("column %d: %d nulls in %d events: the test misses a case", col, nulls[col], len(rows))
		}
	}
}

// fieldString returns e's string of frame column c.
func fieldString(e *rollups.Event, c frame.Column) string {
	return [frame.NumColumns]string{e.EventName, e.UserID, e.DeviceID, e.SessionID, e.Product, e.Platform,
		e.AppVersion, e.Country, e.UserKey, e.SessionKey}[c]
}

// TestWriteEventsDeterministic: the same events give the same bytes, also
// when their strings have other dictionary ids.
func TestWriteEventsDeterministic(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	ev := randomEvents(rand.New(rand.NewSource(5)), 20000)
	// The same rows, with the strings interned in another order.
	other := frame.New(nil, ev.Len())
	other.Day = ev.Day
	for i := ev.Len() - 1; i >= 0; i-- {
		r := ev.Row(i)
		for c := range r.Str {
			other.Dict.ID(r.Str[c])
		}
	}
	for i := range ev.Len() {
		r := ev.Row(i)
		if err := other.Append(&r); err != nil {
			t.Fatal(err)
		}
	}
	// The same rows, event ids made canonical UUIDs, held as text and
	// packed (frame.Events.PackUUIDs): the files must not tell them apart.
	uuidText, uuidPacked := frame.New(nil, ev.Len()), frame.New(nil, ev.Len())
	for i := range ev.Len() {
		r := ev.Row(i)
		r.EventID = fmt.Sprintf("%08x-%04x-7%03x-8000-%012x", i*7919%ev.Len(), i%3, i%4096, i)
		if err := uuidText.Append(&r); err != nil {
			t.Fatal(err)
		}
		if err := uuidPacked.Append(&r); err != nil {
			t.Fatal(err)
		}
	}
	if !uuidPacked.PackUUIDs() {
		t.Fatal("ids not packed")
	}
	opt := WriterOptions{RowGroupSize: 100 << 10, TargetFileSize: 400 << 10, CreatedBy: "x"}
	// writeEach writes each of evs under its own prefix and returns their
	// files, the prefixes cut from the keys.
	writeEach := func(prefix string, evs ...*frame.Events) [][]File {
		var out [][]File
		for k, e := range evs {
			p := fmt.Sprintf("%s%d/", prefix, k)
			files, err := WriteEvents(ctx, st, p, e, opt)
			if err != nil {
				t.Fatal(err)
			}
			for i := range files {
				files[i].Key = strings.TrimPrefix(files[i].Key, p)
			}
			out = append(out, files)
		}
		return out
	}
	uuidSums := writeEach("u", uuidText, uuidPacked)
	if diff := cmp.Diff(uuidSums[0], uuidSums[1]); diff != "" {
		t.Errorf("packed ids write other files than their text (-text +packed):\n%s", diff)
	}
	sums := writeEach("r", ev, ev, other)
	if len(sums[0]) < 2 {
		t.Fatalf("%d files, want several", len(sums[0]))
	}
	for k := 1; k < len(sums); k++ {
		if diff := cmp.Diff(sums[0], sums[k]); diff != "" {
			t.Errorf("write %d differs from the first (-first +this):\n%s", k, diff)
		}
	}
}

// TestWriteEventsEmptyAndCanceled: no events, no files; a canceled write
// fails and leaves no file behind.
func TestWriteEventsEmptyAndCanceled(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	files, err := WriteEvents(ctx, st, "t/", frame.New(nil, 0), WriterOptions{RowGroupSize: 1 << 20})
	if err != nil || len(files) != 0 {
		t.Fatalf("no events: %v, %v", files, err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := WriteEvents(canceled, st, "t/", randomEvents(rand.New(rand.NewSource(6)), 100), WriterOptions{RowGroupSize: 1 << 20}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
	if objs, _ := st.List(ctx, "t/"); len(objs) != 0 {
		t.Fatalf("canceled write left %v", objs)
	}
}

// TestWriteEventsDuckDB reads the files back with DuckDB (the engine the
// tests check numbers with; Athena reads the same files) and compares
// every column, nulls included, with the frame.
func TestWriteEventsDuckDB(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	ev := randomEvents(rand.New(rand.NewSource(7)), 20000)
	files, err := WriteEvents(ctx, st, "t/", ev, WriterOptions{RowGroupSize: 64 << 10, TargetFileSize: 300 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("%d files, want several", len(files))
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(st.Root(), f.Key))
	}
	checkDuckDB(ctx, t, paths, ev)
}

// checkDuckDB reads the events files at paths, in order, with DuckDB and
// checks they hold ev's events, in order: "" and client time 0 null where
// optional, no empty property map.
func checkDuckDB(ctx context.Context, t *testing.T, files []string, ev *frame.Events) {
	t.Helper()
	db, err := duckref.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var paths []string
	for _, f := range files {
		paths = append(paths, "'"+f+"'")
	}
	q := `SELECT event_id, epoch_ms(event_time), epoch_ms(client_event_time), epoch_ms(received_at), event_name,
		user_id, device_id, session_id, product, platform, app_version, country, CAST(to_json(properties) AS VARCHAR),
		user_key, session_key, clock_skewed, date_diff('day', DATE '1970-01-01', date)
		FROM read_parquet([` + strings.Join(paths, ", ") + `], filename = true, file_row_number = true)
		ORDER BY filename, file_row_number`
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	null := func(s sql.NullString) string { // "" must be null: the frame cannot tell them apart
		if s.Valid && s.String == "" {
			return "<empty, not null>"
		}
		return s.String
	}
	i := 0
	for ; rows.Next(); i++ {
		var id, name, userKey, sessionKey string
		var userID, deviceID, sessionID, product, platform, version, country, props sql.NullString
		var at, received int64
		var client sql.NullInt64
		var skewed bool
		var date int32
		if err := rows.Scan(&id, &at, &client, &received, &name, &userID, &deviceID, &sessionID, &product, &platform,
			&version, &country, &props, &userKey, &sessionKey, &skewed, &date); err != nil {
			t.Fatal(err)
		}
		got := rollups.Event{EventID: id, EventTime: at, ClientEventTime: client.Int64, ReceivedAt: received, EventName: name,
			UserID: null(userID), DeviceID: null(deviceID), SessionID: null(sessionID), Product: null(product),
			Platform: null(platform), AppVersion: null(version), Country: null(country), UserKey: userKey,
			SessionKey: sessionKey, ClockSkewed: skewed, Date: date}
		if client.Valid && client.Int64 == 0 {
			got.ClientEventTime = -1 // 0 must be null
		}
		if props.Valid {
			if err := json.Unmarshal([]byte(props.String), &got.Properties); err != nil {
				t.Fatal(err)
			}
			if len(got.Properties) == 0 {
				t.Fatalf("event %d: an empty map, not null", i)
			}
		}
		if i >= ev.Len() {
			t.Fatalf("DuckDB read more than the %d events", ev.Len())
		}
		if diff := cmp.Diff(eventOf(ev, i), got); diff != "" {
			t.Fatalf("event %d (-frame +DuckDB):\n%s", i, diff)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if i != ev.Len() {
		t.Fatalf("DuckDB read %d events, want %d", i, ev.Len())
	}
}

// benchFrame is a day shaped like the generator's, sorted as the job sorts
// it: people in sessions of up to 40 events on one device, a handful of
// products and platforms, tens of countries and event names, one
// property.
func benchFrame(n int) *frame.Events {
	rng := rand.New(rand.NewSource(1))
	users := n / 20
	ev := frame.New(nil, n)
	for ev.Len() < n {
		u := rng.Intn(users)
		user, uid := fmt.Sprintf("user-%08d", u), fmt.Sprintf("user-%08d", u)
		if u%4 == 0 {
			user, uid = fmt.Sprintf("anon:%016x", uint64(u)*0x9e3779b97f4a7c15), ""
		}
		t := 1_780_000_000_000 + rng.Int63n(86_000_000)
		sid, key := "", fmt.Sprintf("i:p%d|%s|%d", u%3, user, t)
		if rng.Intn(3) == 0 {
			sid = fmt.Sprintf("%016x", rng.Uint64())
			key = "s:" + sid
		}
		for k := 1 + rng.Intn(40); k > 0 && ev.Len() < n; k-- {
			r := frame.Row{EventID: fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64()), EventTime: t, ClientTime: t - 1500, ReceivedAt: t + 1500}
			r.Str[frame.EventName] = fmt.Sprintf("event_%02d", rng.Intn(40))
			r.Str[frame.UserID], r.Str[frame.DeviceID], r.Str[frame.SessionID] = uid, fmt.Sprintf("dev-%d", u), sid
			r.Str[frame.Product], r.Str[frame.Platform] = []string{"shop", "news", "game"}[u%3], []string{"web", "ios", "android", ""}[u%4]
			r.Str[frame.Country], r.Str[frame.AppVersion] = fmt.Sprintf("C%02d", u%30), fmt.Sprintf("1.%d", u%7)
			r.Str[frame.UserKey], r.Str[frame.SessionKey] = user, key
			r.Props = map[string]string{"page": fmt.Sprintf("/p/%d", rng.Intn(1000))}
			if err := ev.Append(&r); err != nil {
				panic(err)
			}
			t += rng.Int63n(60_000)
		}
	}
	perm := make([]int32, n)
	for i := range perm {
		perm[i] = int32(i)
	}
	slices.SortFunc(perm, func(a, b int32) int {
		return cmpops.Or(strings.Compare(ev.S(frame.EventName, int(a)), ev.S(frame.EventName, int(b))),
			strings.Compare(ev.S(frame.UserKey, int(a)), ev.S(frame.UserKey, int(b))),
			cmpops.Compare(ev.EventTime[a], ev.EventTime[b]), bytes.Compare(ev.ID(int(a)), ev.ID(int(b))))
	})
	ev.Permute(perm)
	return ev
}

const benchEvents = 1 << 20

// discardStore's writers discard what they are given: benchmarks measure
// the writing, not the disk.
type discardStore struct{ store.Store }

func (discardStore) NewWriter(context.Context, string) (store.Writer, error) {
	return discardWriter{}, nil
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (discardWriter) Close() error                { return nil }
func (discardWriter) Abort()                      {}

// BenchmarkWriteEvents writes a day of benchEvents events with the job's
// default sizes (64 MiB row groups, 256 MiB files), e.g.
//
//	go test -run XXX -bench WriteEvents -benchtime 1x ./internal/publish/
//
// Besides ns/event and B/event (allocated), it reports cpu-ns/event (the
// process's CPU time, every goroutine and the collector included; Linux
// only); peak-heap-MB, the largest heap (live objects and garbage not yet
// collected) sampled during the timed writes; and peak-live-MB, the
// largest live heap of one more write with a collection at every 5% of
// growth (so within 5% of the frame's size); both over the heap before
// (the frame). It writes with one worker and with WriteEvents' number,
// min(GOMAXPROCS, maxEventWorkers). BenchmarkWriteEventsDay does the
// same with a real day.
func BenchmarkWriteEvents(b *testing.B) {
	ev := benchFrame(benchEvents)
	st := discardStore{}
	opt := WriterOptions{RowGroupSize: 64 << 20, TargetFileSize: 256 << 20}
	for _, workers := range slices.Compact([]int{1, min(runtime.GOMAXPROCS(0), maxEventWorkers)}) {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			measureWrites(b, benchEvents, func() {
				if _, err := writeEvents(context.Background(), st, "t/", ev, opt, workers); err != nil {
					b.Fatal(err)
				}
			})
		})
	}
}

// BenchmarkWriteEventsDay writes a real day again: the current events
// partition of the store at $PUBLISH_BENCH_STORE (only read), e.g. the 5M
// events of
//
//	PUBLISH_BENCH_STORE=/work/main/.bench/1day/store go test -run XXX -bench WriteEventsDay -benchtime 1x ./internal/publish/
//
// with the options its manifest records, with 1 worker and with
// WriteEvents' number (see BenchmarkWriteEvents for the figures; files
// and MB are those of the write).
func BenchmarkWriteEventsDay(b *testing.B) {
	root := os.Getenv("PUBLISH_BENCH_STORE")
	if root == "" {
		b.Skip("PUBLISH_BENCH_STORE is not set")
	}
	ctx := context.Background()
	src, err := store.OpenDir(root, false)
	if err != nil {
		b.Fatal(err)
	}
	parts, err := CurrentFiles(ctx, src, "events")
	if err != nil || len(parts) == 0 {
		b.Fatalf("%s: events partitions %v, %v", root, parts, err)
	}
	m := parts[0].Manifest
	ev := loadEvents(b, src, m)
	size, _ := strconv.ParseInt(m.Config["row_group_size"], 10, 64)
	target, _ := strconv.ParseInt(m.Config["target_file_size"], 10, 64)
	opt := WriterOptions{RowGroupSize: size, TargetFileSize: target}
	b.Logf("%s: %d events, %+v", parts[0].Part, ev.Len(), opt)
	for _, workers := range slices.Compact([]int{1, min(runtime.GOMAXPROCS(0), maxEventWorkers)}) {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			var files []File
			measureWrites(b, ev.Len(), func() {
				if files, err = writeEvents(ctx, discardStore{}, "t/", ev, opt, workers); err != nil {
					b.Fatal(err)
				}
			})
			var bytes int64
			for _, f := range files {
				bytes += f.Size
			}
			b.ReportMetric(float64(len(files)), "files")
			b.ReportMetric(float64(bytes)/(1<<20), "MB")
		})
	}
}

// loadEvents reads the files of manifest m of the events table into a
// frame.
func loadEvents(tb testing.TB, st store.Store, m *Manifest) *frame.Events {
	tb.Helper()
	ctx := context.Background()
	ev := frame.New(nil, int(m.Rows))
	buf := make([]rollups.Event, 4096)
	for _, fl := range m.Files {
		r, err := st.Open(ctx, fl.Key)
		if err != nil {
			tb.Fatal(err)
		}
		pr := parquet.NewGenericReader[rollups.Event](r)
		for {
			n, err := pr.Read(buf)
			for _, e := range buf[:n] {
				ev.Day = e.Date
				row := frame.Row{EventID: e.EventID, EventTime: e.EventTime, ClientTime: e.ClientEventTime, ReceivedAt: e.ReceivedAt,
					Skewed: e.ClockSkewed, Props: e.Properties}
				row.Str = [frame.NumColumns]string{e.EventName, e.UserID, e.DeviceID, e.SessionID, e.Product, e.Platform,
					e.AppVersion, e.Country, e.UserKey, e.SessionKey}
				if err := ev.Append(&row); err != nil {
					tb.Fatal(err)
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				tb.Fatal(err)
			}
		}
		pr.Close()
		r.Close()
	}
	return ev
}

// measureWrites runs write b.N times and reports, per event of n, the
// time, the bytes allocated and the CPU time, and the peak heaps over the
// one before (see BenchmarkWriteEvents).
func measureWrites(b *testing.B, n int, write func()) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	stop, base := sampleHeap("/memory/classes/heap/objects:bytes")
	cpu0 := procCPU()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		write()
	}
	b.StopTimer()
	cpu1 := procCPU()
	heap := stop()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/event")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/float64(n), "B/event")
	if cpu1 > 0 {
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(b.N)/float64(n), "cpu-ns/event")
	}
	b.ReportMetric(float64(heap-base)/(1<<20), "peak-heap-MB")

	// With a large frame live the collector runs seldom, so the peak heap
	// is mostly garbage: the bytes allocated since the last collection.
	// One more write, untimed, with a collection at every 5% of growth,
	// gives the peak of the live heap (within those 5%).
	old := debug.SetGCPercent(5)
	defer debug.SetGCPercent(old)
	runtime.GC()
	runtime.GC() // sync.Pools keep their objects through one collection
	stop, base = sampleHeap("/gc/heap/live:bytes")
	write()
	runtime.GC() // so that the last collection's sample is read
	b.ReportMetric(float64(stop()-base)/(1<<20), "peak-live-MB")
}

// readMetric reads one runtime metric of kind uint64.
func readMetric(name string) int64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// sampleHeap samples the metric every millisecond until stop is called,
// which returns the largest sample; base is the first.
func sampleHeap(metric string) (stop func() int64, base int64) {
	base = readMetric(metric)
	peak := base
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			peak = max(peak, readMetric(metric))
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 { close(quit); <-done; return peak }, base
}

// procCPU returns the process's CPU time, user and system, or 0 where
// /proc/self/stat is missing (10 ms steps).
func procCPU() time.Duration {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	// Fields 14 (utime) and 15 (stime), counting from 1, after the command
	// in parentheses (field 2).
	_, rest, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond // USER_HZ is 100
}
