package raw

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"

	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/store"
)

func writeParquet[T any](t *testing.T, rows []T, opts ...parquet.WriterOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf, opts...)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func read(t *testing.T, b []byte) ([]Row, error) {
	t.Helper()
	return ReadFrom(bytes.NewReader(b), int64(len(b)), "raw/2026/01/02/03/x")
}

func ms(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UnixMilli()
}

func TestReadOurSchema(t *testing.T) {
	at := time.UnixMilli(ms("2026-01-02T03:04:05.678Z")).UTC()
	in := []event.Raw{
		{EventID: "a", EventTime: at.Add(-time.Second), ReceivedAt: at, EventName: "view", UserID: "u1", Product: "shop", Platform: "web",
			Properties: map[string]string{"k": "v", "x": ""}},
		{EventID: "b", ReceivedAt: at, EventName: "click", DeviceID: "d1", SessionID: "s1", AppVersion: "1.2", Country: "NZ"},
		{EventID: "c", ReceivedAt: at},
	}
	for _, codec := range []struct {
		name string
		opt  parquet.WriterOption
	}{
		{"snappy", parquet.Compression(&parquet.Snappy)},
		{"gzip", parquet.Compression(&parquet.Gzip)},
		{"uncompressed", parquet.Compression(&parquet.Uncompressed)},
		{"zstd", parquet.Compression(&parquet.Zstd)},
	} {
		t.Run(codec.name, func(t *testing.T) {
			rows, err := read(t, writeParquet(t, in, codec.opt))
			if err != nil {
				t.Fatal(err)
			}
			src := "raw/2026/01/02/03/x"
			want := []Row{
				{EventID: "a", EventTime: at.UnixMilli() - 1000, HasEventTime: true, ReceivedAt: at.UnixMilli(), HasReceivedAt: true,
					EventName: "view", UserID: "u1", Product: "shop", Platform: "web", Properties: map[string]string{"k": "v", "x": ""}, Source: src},
				{EventID: "b", ReceivedAt: at.UnixMilli(), HasReceivedAt: true, EventName: "click", DeviceID: "d1", SessionID: "s1",
					AppVersion: "1.2", Country: "NZ", Source: src},
				{EventID: "c", ReceivedAt: at.UnixMilli(), HasReceivedAt: true, Source: src},
			}
			if diff := cmp.Diff(want, rows); diff != "" {
				t.Fatalf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

// int96Row is how Hive and Spark write timestamps.
type int96Row struct {
	EventID    string           `parquet:"event_id"`
	EventTime  deprecated.Int96 `parquet:"event_time"`
	ReceivedAt deprecated.Int96 `parquet:"received_at"`
	EventName  string           `parquet:"event_name"`
	Extra      int32            `parquet:"some_new_column"`
}

func toInt96(ms int64) deprecated.Int96 {
	days := floorDiv(ms, 86_400_000)
	nanos := uint64(ms-days*86_400_000) * 1_000_000
	return deprecated.Int96{uint32(nanos), uint32(nanos >> 32), uint32(days + julianUnixEpoch)}
}

type microsRow struct {
	EventID    string `parquet:"event_id"`
	EventTime  int64  `parquet:"event_time,timestamp(microsecond)"`
	ReceivedAt int64  `parquet:"received_at,timestamp(nanosecond)"`
	EventName  string `parquet:"event_name,dict"`
}

func TestReadTimestampEncodings(t *testing.T) {
	t1 := ms("2026-03-04T05:06:07.089Z")
	old := ms("1969-07-20T20:17:40.001Z")
	t.Run("INT96 is decoded from the Julian day, not dropped to 1970", func(t *testing.T) {
		rows, err := read(t, writeParquet(t, []int96Row{{"a", toInt96(t1), toInt96(t1 + 5), "x", 7}, {"b", toInt96(old), toInt96(old), "y", 0}}))
		if err != nil {
			t.Fatal(err)
		}
		if rows[0].EventTime != t1 || rows[0].ReceivedAt != t1+5 || rows[1].EventTime != old {
			t.Fatalf("got %v %v %v, want %v %v %v", rows[0].EventTime, rows[0].ReceivedAt, rows[1].EventTime, t1, t1+5, old)
		}
	})
	t.Run("INT64 micros and nanos become millis", func(t *testing.T) {
		rows, err := read(t, writeParquet(t, []microsRow{{"a", t1*1000 + 999, t1*1_000_000 + 999_999, "x"}}))
		if err != nil {
			t.Fatal(err)
		}
		if rows[0].EventTime != t1 || rows[0].ReceivedAt != t1 {
			t.Fatalf("got %d %d, want %d", rows[0].EventTime, rows[0].ReceivedAt, t1)
		}
	})
}

type wrongTypes struct {
	EventID    int64  `parquet:"event_id"`
	ReceivedAt int64  `parquet:"received_at"`
	EventName  string `parquet:"event_name"`
}

type missingColumn struct {
	EventID   string `parquet:"event_id"`
	EventName string `parquet:"event_name"`
}

func TestReadBadObjects(t *testing.T) {
	good := writeParquet(t, []event.Raw{{EventID: "a", ReceivedAt: time.Now(), EventName: "x", UserID: "u"}})
	tests := []struct {
		name   string
		data   []byte
		reason string
	}{
		{"zero bytes", nil, ReasonEmpty},
		{"not parquet", []byte(`{"event_id": "a", "this": "is json"}`), ReasonNotParquet},
		{"truncated", good[:len(good)/2], ReasonCorrupt},
		{"footer garbage", append(append([]byte{}, good[:len(good)-8]...), 0xff, 0xff, 0xff, 0x7f, 'P', 'A', 'R', '1'), ReasonCorrupt},
		{"wrong column types", writeParquet(t, []wrongTypes{{1, 2, "x"}}), ReasonSchemaMismatch},
		{"missing received_at", writeParquet(t, []missingColumn{{"a", "x"}}), ReasonSchemaMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := read(t, tc.data)
			var bad *BadObjectError
			if !errors.As(err, &bad) {
				t.Fatalf("err = %v, want a BadObjectError", err)
			}
			if bad.Reason != tc.reason || rows != nil {
				t.Fatalf("reason %q, %d rows; want %q and none", bad.Reason, len(rows), tc.reason)
			}
		})
	}
}

// foreignDir holds the Parquet files of the apache/parquet-testing project
// (Apache-2.0, see its LICENSE.txt), kept in the repository.
var foreignDir = filepath.Join("..", "..", "testdata", "parquet-testing")

// foreignFiles lists them; it fails the test if they are missing, so that a
// broken checkout cannot pass by testing nothing.
func foreignFiles(t testing.TB) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(foreignDir, "*.parquet"))
	if len(files) < 73 {
		t.Fatalf("%d foreign Parquet files at %s, want 73", len(files), foreignDir)
	}
	return files
}

// TestReadForeignFiles reads 73 Parquet files from other engines and broken
// ones: every one must be named bad, none may panic or yield rows.
func TestReadForeignFiles(t *testing.T) {
	for _, f := range foreignFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			var rows []Row
			go func() {
				defer close(done)
				rows, err = read(t, b)
			}()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("reader hung")
			}
			var bad *BadObjectError
			if !errors.As(err, &bad) || rows != nil {
				t.Fatalf("got %d rows, err %v; want a bad object", len(rows), err)
			}
		})
	}
}

// failingStore fails every ranged read after the first n bytes of reads.
type failingReader struct {
	store.Reader
	left int
}

func (f *failingReader) ReadAt(p []byte, off int64) (int, error) {
	if f.left <= 0 {
		return 0, errors.New("connection reset by peer")
	}
	f.left--
	return f.Reader.ReadAt(p, off)
}

type failingStore struct {
	store.Store
	reads int
}

func (f failingStore) Open(ctx context.Context, key string) (store.Reader, error) {
	r, err := f.Store.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	return &failingReader{Reader: r, left: f.reads}, nil
}

// TestReadFailureIsNotABadObject: a store read that fails in the middle of
// an object is an error to retry, not a bad object.
func TestReadFailureIsNotABadObject(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMem()
	b := writeParquet(t, []event.Raw{{EventID: "a", ReceivedAt: time.Now(), EventName: "x", UserID: "u"}})
	if err := mem.Put(ctx, "raw/k", b); err != nil {
		t.Fatal(err)
	}
	for reads := 0; reads < 6; reads++ {
		_, err := Read(ctx, failingStore{Store: mem, reads: reads}, "raw/k")
		var bad *BadObjectError
		if err == nil || errors.As(err, &bad) {
			t.Errorf("failing after %d reads: err = %v; want a plain error", reads, err)
		}
	}
	if rows, err := Read(ctx, mem, "raw/k"); err != nil || len(rows) != 1 {
		t.Fatalf("healthy read: %d rows, %v", len(rows), err)
	}
}
