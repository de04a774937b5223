package firehose_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/duckref"
	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/firehose"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// clock is a settable clock for arrival times.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time   { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)  { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func newClock(t time.Time) *clock { return &clock{t: t} }
func at(h, m, s int) time.Time    { return time.Date(2026, 11, 24, h, m, s, 0, time.UTC) }
func mustStore(t *testing.T) *store.Dir {
	t.Helper()
	d, err := store.OpenDir(t.TempDir(), false)
	must(t, err)
	return d
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newLocal(t *testing.T, cfg firehose.LocalConfig) *firehose.Local {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	l, err := firehose.NewLocal(cfg)
	must(t, err)
	t.Cleanup(func() {
		// Bounded: a test whose store still fails must not hang the suite.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l.Close(ctx)
	})
	return l
}

func event1(i int) event.Raw {
	return event.Raw{
		EventID:    "id-" + string(rune('a'+i)),
		EventTime:  at(13, 0, i).Add(7 * time.Millisecond),
		ReceivedAt: at(13, 1, i),
		EventName:  "screen_view",
		UserID:     "u",
		Product:    "shop",
		Platform:   "web",
		Properties: map[string]string{"i": string(rune('a' + i))},
	}
}

// readRaw reads a raw object back with parquet-go.
func readRaw(t *testing.T, st store.Store, key string) ([]event.Raw, *parquet.File) {
	t.Helper()
	r, err := st.Open(context.Background(), key)
	must(t, err)
	defer r.Close()
	f, err := parquet.OpenFile(r, r.Size())
	must(t, err)
	pr := parquet.NewGenericReader[event.Raw](f)
	defer pr.Close()
	rows := make([]event.Raw, f.NumRows())
	n, err := pr.Read(rows)
	if err != nil && n != len(rows) {
		t.Fatalf("read %s: %v", key, err)
	}
	for i := range rows {
		rows[i].EventTime = utc(rows[i].EventTime)
		rows[i].ReceivedAt = utc(rows[i].ReceivedAt)
	}
	return rows[:n], f
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func keys(t *testing.T, st store.Store, prefix string) []string {
	t.Helper()
	objs, err := st.List(context.Background(), prefix)
	must(t, err)
	var out []string
	for _, o := range objs {
		out = append(out, o.Key)
	}
	return out
}

const uuidRE = `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`

func TestLocalWritesParquetAndConversionErrors(t *testing.T) {
	t.Parallel()
	st := mustStore(t)
	clk := newClock(at(13, 5, 9).Add(250 * time.Millisecond))
	l := newLocal(t, firehose.LocalConfig{Store: st, Stream: "demo", Now: clk.Now})
	ctx := context.Background()

	good := []event.Raw{event1(0), event1(1)}
	bad := [][]byte{
		[]byte(`{"event_name":"x","event_time":"yesterday"}` + "\n"),
		[]byte("not json\n"),
	}
	must(t, l.Put(ctx, [][]byte{firehose.Encode(&good[0]), bad[0]}))
	clk.Set(at(14, 0, 1)) // a later record does not move the object's hour
	must(t, l.Put(ctx, [][]byte{bad[1], firehose.Encode(&good[1])}))
	must(t, l.Flush(ctx))

	raw := keys(t, st, "raw/")
	if len(raw) != 1 || !regexp.MustCompile(`^raw/2026/11/24/13/demo-1-2026-11-24-13-05-09-`+uuidRE+`$`).MatchString(raw[0]) {
		t.Fatalf("raw objects = %q, want one named by the oldest arrival 13:05:09", raw)
	}
	rows, f := readRaw(t, st, raw[0])
	if diff := cmp.Diff(good, rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if cb := f.Metadata().CreatedBy; !strings.HasPrefix(cb, "littlewarehouse collector version ") {
		t.Errorf("CreatedBy = %q", cb)
	}
	for _, col := range f.Metadata().RowGroups[0].Columns {
		if c := col.MetaData.Codec.String(); c != "SNAPPY" {
			t.Errorf("column %v compressed with %s, want SNAPPY", col.MetaData.PathInSchema, c)
		}
	}

	errKeys := keys(t, st, "raw-errors/")
	if len(errKeys) != 1 || !regexp.MustCompile(`^raw-errors/format-conversion-failed/2026/11/24/13/demo-1-2026-11-24-13-05-09-`+uuidRE+`$`).MatchString(errKeys[0]) {
		t.Fatalf("raw-errors objects = %q", errKeys)
	}
	data, err := st.Get(ctx, errKeys[0])
	must(t, err)
	var lines []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var m map[string]any
		must(t, json.Unmarshal(sc.Bytes(), &m))
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("%d error lines, want 2:\n%s", len(lines), data)
	}
	wantErr := []struct {
		code    string
		arrival time.Time
		raw     []byte
	}{
		{firehose.CodeMalformedData, at(13, 5, 9).Add(250 * time.Millisecond), bad[0]},
		{firehose.CodeParseError, at(14, 0, 1), bad[1]},
	}
	for i, w := range wantErr {
		var got struct {
			AttemptsMade     int    `json:"attemptsMade"`
			ArrivalTimestamp int64  `json:"arrivalTimestamp"`
			ErrorCode        string `json:"errorCode"`
			ErrorMessage     string `json:"errorMessage"`
			RawData          []byte `json:"rawData"`
		}
		line, _ := json.Marshal(lines[i])
		must(t, json.Unmarshal(line, &got))
		if got.ErrorCode != w.code || got.ArrivalTimestamp != w.arrival.UnixMilli() || got.AttemptsMade != 1 ||
			!bytes.Equal(got.RawData, w.raw) || got.ErrorMessage == "" {
			t.Errorf("error line %d = %+v, want code %s, arrival %d, rawData %q", i, got, w.code, w.arrival.UnixMilli(), w.raw)
		}
	}
}

func TestLocalFlushesOnBufferingHints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  firehose.LocalConfig
	}{
		{"by size", firehose.LocalConfig{BufferSize: 300, BufferInterval: time.Hour}},
		{"by interval", firehose.LocalConfig{BufferSize: 1 << 30, BufferInterval: 30 * time.Millisecond}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := mustStore(t)
			tc.cfg.Store = st
			l := newLocal(t, tc.cfg)
			var recs [][]byte
			for i := range 3 {
				r := event1(i)
				recs = append(recs, firehose.Encode(&r))
			}
			must(t, l.Put(context.Background(), recs))
			// The object is in the store a moment before the stream
			// forgets the batch it wrote: wait for both.
			waitFor(t, func() bool { return len(keys(t, st, "raw/")) == 1 && l.Buffered() == 0 })
			if k := keys(t, st, "raw/"); len(k) != 1 {
				t.Errorf("raw objects = %q, want 1", k)
			}
		})
	}
}

func TestLocalDoesNotFlushBeforeAHintIsMet(t *testing.T) {
	t.Parallel()
	st := mustStore(t)
	l := newLocal(t, firehose.LocalConfig{Store: st, BufferSize: 1 << 20, BufferInterval: time.Hour})
	r := event1(0)
	must(t, l.Put(context.Background(), [][]byte{firehose.Encode(&r)}))
	time.Sleep(50 * time.Millisecond)
	if k := keys(t, st, ""); len(k) != 0 {
		t.Errorf("objects written early: %q", k)
	}
}

func TestLocalCloseFlushesAndRefusesMore(t *testing.T) {
	t.Parallel()
	st := mustStore(t)
	l := newLocal(t, firehose.LocalConfig{Store: st})
	r := event1(0)
	must(t, l.Put(context.Background(), [][]byte{firehose.Encode(&r)}))
	must(t, l.Close(context.Background()))
	if k := keys(t, st, "raw/"); len(k) != 1 {
		t.Fatalf("raw objects after Close = %q, want 1", k)
	}
	if err := l.Put(context.Background(), [][]byte{firehose.Encode(&r)}); !errors.Is(err, firehose.ErrClosed) {
		t.Errorf("Put after Close = %v, want ErrClosed", err)
	}
}

// flaky is a store whose writes fail while its counters are above zero.
type flaky struct {
	store.Store
	failWriters atomic.Int32 // NewWriter (Parquet objects)
	failPuts    atomic.Int32 // Put (raw-errors objects)
}

var _ store.Store = (*flaky)(nil)

func (f *flaky) heal() {
	f.failWriters.Store(0)
	f.failPuts.Store(0)
}

func (f *flaky) NewWriter(ctx context.Context, key string) (store.Writer, error) {
	if f.failWriters.Add(-1) >= 0 {
		return nil, errors.New("disk on fire")
	}
	return f.Store.NewWriter(ctx, key)
}

func (f *flaky) Put(ctx context.Context, key string, data []byte) error {
	if f.failPuts.Add(-1) >= 0 {
		return errors.New("disk on fire")
	}
	return f.Store.Put(ctx, key, data)
}

func TestLocalKeepsTheBufferWhenAWriteFails(t *testing.T) {
	t.Parallel()
	dir := mustStore(t)
	st := &flaky{Store: dir}
	st.failWriters.Store(1)
	st.failPuts.Store(1)
	l := newLocal(t, firehose.LocalConfig{Store: st, RetryInterval: time.Hour})
	ctx := context.Background()
	r0, r1 := event1(0), event1(1)
	must(t, l.Put(ctx, [][]byte{firehose.Encode(&r0), []byte("bad\n")}))

	// 1: the Parquet write fails; nothing is written, nothing is lost.
	if err := l.Flush(ctx); err == nil {
		t.Fatal("Flush succeeded on a failing store")
	}
	if n := l.Buffered(); n != 2 {
		t.Fatalf("%d records buffered after a failed write, want 2", n)
	}
	// Records put meanwhile wait for the next write.
	must(t, l.Put(ctx, [][]byte{firehose.Encode(&r1)}))
	// 2: the Parquet object is written, the raw-errors one fails.
	if err := l.Flush(ctx); err == nil {
		t.Fatal("Flush succeeded on a failing store")
	}
	// 3: the raw-errors object is written, the Parquet one not again; then
	// the records put meanwhile.
	must(t, l.Flush(ctx))

	raw := keys(t, dir, "raw/")
	if len(raw) != 2 {
		t.Fatalf("raw objects = %q, want 2 (the retried buffer once, then the next)", raw)
	}
	var all []event.Raw
	for _, k := range raw {
		rows, _ := readRaw(t, dir, k)
		all = append(all, rows...)
	}
	if diff := cmp.Diff([]event.Raw{r0, r1}, all, cmpSortByID); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
	if k := keys(t, dir, "raw-errors/"); len(k) != 1 {
		t.Errorf("raw-errors objects = %q, want 1", k)
	}
	if n := l.Buffered(); n != 0 {
		t.Errorf("%d records still buffered", n)
	}
}

var cmpSortByID = cmp.Transformer("sort", func(in []event.Raw) []event.Raw {
	out := append([]event.Raw(nil), in...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j].EventID < out[i].EventID {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
})

func TestLocalRetriesFailedWritesByItself(t *testing.T) {
	t.Parallel()
	dir := mustStore(t)
	st := &flaky{Store: dir}
	st.failWriters.Store(2)
	l := newLocal(t, firehose.LocalConfig{Store: st, BufferInterval: 10 * time.Millisecond, RetryInterval: 10 * time.Millisecond})
	r := event1(0)
	must(t, l.Put(context.Background(), [][]byte{firehose.Encode(&r)}))
	waitFor(t, func() bool { return len(keys(t, dir, "raw/")) == 1 })
}

func TestLocalPutWaitsForRoomUntilTheContextEnds(t *testing.T) {
	t.Parallel()
	st := &flaky{Store: mustStore(t)}
	st.failWriters.Store(1 << 30)
	st.failPuts.Store(1 << 30)
	l := newLocal(t, firehose.LocalConfig{Store: st, BufferSize: 100, MaxBuffered: 250, RetryInterval: time.Hour})
	t.Cleanup(st.heal) // runs before the stream's Close: cleanups run last in, first out
	ctx := context.Background()
	rec := bytes.Repeat([]byte("x"), 100)
	for i := range 3 {
		if err := l.Put(ctx, [][]byte{rec}); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := l.Put(short, [][]byte{rec}); !errors.Is(err, firehose.ErrFull) {
		t.Errorf("Put = %v, want ErrFull once the context ends", err)
	}
	if n := l.Buffered(); n != 3 {
		t.Errorf("%d records buffered, want the 3 that fit", n)
	}
	if err := l.Put(ctx, [][]byte{make([]byte, firehose.MaxRecordBytes+1)}); !errors.Is(err, firehose.ErrRecordTooLarge) {
		t.Errorf("Put of an oversized record = %v, want ErrRecordTooLarge", err)
	}
}

func TestLocalPutGetsRoomWhenAWriteSucceeds(t *testing.T) {
	t.Parallel()
	dir := mustStore(t)
	st := &flaky{Store: dir}
	st.failWriters.Store(1)
	l := newLocal(t, firehose.LocalConfig{Store: st, BufferSize: 100, MaxBuffered: 100, RetryInterval: 20 * time.Millisecond})
	ctx := context.Background()
	r := event1(0)
	rec := firehose.Encode(&r)
	must(t, l.Put(ctx, [][]byte{rec})) // fills the stream; its first write fails
	r1 := event1(1)
	done := make(chan error, 1)
	go func() { done <- l.Put(ctx, [][]byte{firehose.Encode(&r1)}) }()
	select {
	case err := <-done:
		must(t, err) // the retried write freed room
	case <-time.After(5 * time.Second):
		t.Fatal("Put still waiting 5s after the store recovered")
	}
	must(t, l.Close(ctx))
	var n int
	for _, k := range keys(t, dir, "raw/") {
		rows, _ := readRaw(t, dir, k)
		n += len(rows)
	}
	if n != 2 {
		t.Errorf("%d rows written, want 2", n)
	}
}

func TestLocalCloseWakesWaitingPuts(t *testing.T) {
	t.Parallel()
	st := &flaky{Store: mustStore(t)}
	st.failWriters.Store(1 << 30)
	st.failPuts.Store(1 << 30)
	l := newLocal(t, firehose.LocalConfig{Store: st, BufferSize: 10, MaxBuffered: 10, RetryInterval: time.Hour})
	t.Cleanup(st.heal) // runs before the stream's Close: cleanups run last in, first out
	must(t, l.Put(context.Background(), [][]byte{[]byte("0123456789")}))
	done := make(chan error, 1)
	go func() { done <- l.Put(context.Background(), [][]byte{[]byte("x")}) }()
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	l.Close(ctx) // cannot write: the store fails
	select {
	case err := <-done:
		if !errors.Is(err, firehose.ErrClosed) {
			t.Errorf("waiting Put = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiting Put not woken by Close")
	}
}

func TestLocalCloseGivesUpWhenTheContextEnds(t *testing.T) {
	t.Parallel()
	st := &flaky{Store: mustStore(t)}
	st.failWriters.Store(1 << 30)
	st.failPuts.Store(1 << 30)
	l := newLocal(t, firehose.LocalConfig{Store: st, RetryInterval: 5 * time.Millisecond})
	t.Cleanup(st.heal) // runs before the stream's Close: cleanups run last in, first out
	must(t, l.Put(context.Background(), [][]byte{[]byte(`{"event_name":"a"}`)}))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := l.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "1 records not written") {
		t.Errorf("Close = %v, want it to say 1 record was not written", err)
	}
}

func TestNewLocalChecksTheStreamName(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"a/b", "has space", strings.Repeat("x", 65)} {
		if _, err := firehose.NewLocal(firehose.LocalConfig{Store: mustStore(t), Stream: name}); err == nil {
			t.Errorf("NewLocal accepted stream name %q", name)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLocalParquetReadsInDuckDB checks the local stream's objects with the
// reference engine: DuckDB reads the same events, timestamps to the
// millisecond, and the properties map.
func TestLocalParquetReadsInDuckDB(t *testing.T) {
	t.Parallel()
	st := mustStore(t)
	l := newLocal(t, firehose.LocalConfig{Store: st})
	want := []event.Raw{event1(0), event1(1), {EventID: "id-z", ReceivedAt: at(13, 2, 0), EventName: "no_time", DeviceID: "d"}}
	var recs [][]byte
	for i := range want {
		recs = append(recs, firehose.Encode(&want[i]))
	}
	ctx := context.Background()
	must(t, l.Put(ctx, recs))
	must(t, l.Flush(ctx))
	k := keys(t, st, "raw/")
	if len(k) != 1 {
		t.Fatalf("raw objects %q", k)
	}

	db, err := duckref.Open()
	must(t, err)
	defer db.Close()
	got, err := db.Query(ctx, `SELECT event_id, event_time, received_at, event_name, user_id, device_id,
		map_extract_value(properties, 'i') AS prop_i
		FROM read_parquet(?) ORDER BY event_id`, filepath.Join(st.Root(), filepath.FromSlash(k[0])))
	must(t, err)
	var wantRows []map[string]any
	for _, r := range want {
		m := map[string]any{
			"event_id": r.EventID, "event_time": nil, "received_at": r.ReceivedAt.UnixMilli(), "event_name": r.EventName,
			"user_id": nil, "device_id": nil, "prop_i": nil,
		}
		if !r.EventTime.IsZero() {
			m["event_time"] = r.EventTime.UnixMilli()
		}
		if r.UserID != "" {
			m["user_id"] = r.UserID
		}
		if r.DeviceID != "" {
			m["device_id"] = r.DeviceID
		}
		if v, ok := r.Properties["i"]; ok {
			m["prop_i"] = v
		}
		wantRows = append(wantRows, m)
	}
	if diff := cmp.Diff(wantRows, got); diff != "" {
		t.Errorf("DuckDB rows (-want +got):\n%s", diff)
	}
}
