package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/littlewarehouse/warehouse/internal/duckref"
	"github.com/littlewarehouse/warehouse/internal/frame"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// openParquet opens a file written to st.
func openParquet(t *testing.T, st store.Store, key string) (*parquet.File, []byte) {
	t.Helper()
	b, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return f, b
}

// TestWriteEventsWorkersSameBytes: whatever the number of workers, and
// however their goroutines are scheduled, the same frame and options give
// the same files, byte for byte.
func TestWriteEventsWorkersSameBytes(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	ev := randomEvents(rand.New(rand.NewSource(8)), 30000)
	for _, opt := range []WriterOptions{
		{RowGroupSize: 200 << 10, TargetFileSize: 400 << 10, CreatedBy: "x"},
		{RowGroupSize: 1, TargetFileSize: 1},
		{RowGroupSize: 1 << 20},
	} {
		var first []File
		for k, workers := range []int{1, 4, 2, 3, 4, 1, 8, 4} {
			prefix := fmt.Sprintf("rg%d-file%d/w%d-%d/", opt.RowGroupSize, opt.TargetFileSize, workers, k)
			files, err := writeEvents(ctx, st, prefix, ev, opt, workers)
			if err != nil {
				t.Fatal(err)
			}
			for i := range files {
				files[i].Key = strings.TrimPrefix(files[i].Key, prefix)
			}
			if k == 0 {
				first = files
				continue
			}
			if diff := cmp.Diff(first, files); diff != "" {
				t.Fatalf("%+v: %d workers wrote other files than 1 (-1 worker +%d):\n%s", opt, workers, workers, diff)
			}
		}
		if opt.TargetFileSize > 0 && len(first) < 3 {
			t.Errorf("%+v: %d files, want several", opt, len(first))
		}
	}
}

// TestWriteEventsCuts checks where row groups and files end (see
// WriteEvents): whole batches, a group ending with the batch that brings
// its plain size to RowGroupSize, a file with the group that brings it
// to TargetFileSize; and that each file's row groups hold its rows.
func TestWriteEventsCuts(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	ev := randomEvents(rand.New(rand.NewSource(9)), 50000)
	opt := WriterOptions{RowGroupSize: 1 << 20, TargetFileSize: 1 << 20}
	files, err := writeEvents(ctx, st, "t/", ev, opt, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("%d files, want several", len(files))
	}
	c := groupCutter{ev: ev, strs: ev.Dict.Strings()}
	start, groups := 0, 0
	for i, fl := range files {
		f, b := openParquet(t, st, fl.Key)
		md := f.Metadata()
		var rows, written int64
		for k, rg := range md.RowGroups {
			groups++
			lo, hi := start+int(rows), start+int(rows+rg.NumRows)
			last := hi == ev.Len()
			if !last && (hi-lo)%eventBatch != 0 {
				t.Errorf("%s row group %d: %d events, not whole batches", fl.Key, k, hi-lo)
			}
			if size := c.plainSize(lo, hi); !last && size < opt.RowGroupSize {
				t.Errorf("%s row group %d: %d bytes, below RowGroupSize", fl.Key, k, size)
			}
			if size := c.plainSize(lo, lo+(hi-lo-1)/eventBatch*eventBatch); size >= opt.RowGroupSize {
				t.Errorf("%s row group %d: %d bytes before its last batch, RowGroupSize already", fl.Key, k, size)
			}
			if k == len(md.RowGroups)-1 && 4+written >= opt.TargetFileSize {
				t.Errorf("%s: %d bytes before its last row group, TargetFileSize already", fl.Key, 4+written)
			}
			rows += rg.NumRows
			written += rg.TotalCompressedSize
		}
		if i < len(files)-1 && 4+written < opt.TargetFileSize {
			t.Errorf("%s: %d bytes of row groups, below TargetFileSize", fl.Key, 4+written)
		}
		if rows != md.NumRows || rows != fl.Rows || int64(len(b)) != fl.Size {
			t.Errorf("%s: row groups hold %d rows, the footer says %d, File %+v (%d bytes)", fl.Key, rows, md.NumRows, fl, len(b))
		}
		start += int(rows)
	}
	if start != ev.Len() || groups < 2*len(files) {
		t.Errorf("%d rows in %d row groups of %d files, want %d rows and several groups a file", start, groups, len(files), ev.Len())
	}
}

// TestWriteEventsCopiesRowGroups: each row group of a file is, byte for
// byte, the row group encoded alone by a new encoder (not one reused from
// group to group), its metadata and page index included (only shifted), as
// Writer.WriteRowGroup copies it; and copying one allocates next to
// nothing: parquet-go did not decode and re-encode it.
func TestWriteEventsCopiesRowGroups(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	ev := randomEvents(rand.New(rand.NewSource(10)), 60000)
	opt := WriterOptions{RowGroupSize: 2 << 20, TargetFileSize: 1 << 20}
	files, err := writeEvents(ctx, st, "t/", ev, opt, 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg := append(writerConfig(opt), eventSchema)
	ncol := len(eventSchema.Columns())
	start, groups := 0, 0
	for _, fl := range files {
		f, b := openParquet(t, st, fl.Key)
		for k, rg := range f.Metadata().RowGroups {
			groups++
			tmpl, err := rowGroupTemplate()
			if err != nil {
				t.Fatal(err)
			}
			j := groupJob{lo: start, hi: start + int(rg.NumRows), g: newGroupEncoder(ev, ev.Dict.Strings(), ev.Dict.Ranks(), tmpl)}
			alone, err := j.encode(ctx)
			if err != nil {
				t.Fatal(err)
			}
			buf := bytes.NewBuffer(j.g.out)
			start += int(rg.NumRows)
			mini, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if err != nil {
				t.Fatal(err)
			}
			for i, cc := range rg.Columns {
				got, want := cc.MetaData, mini.Metadata().RowGroups[0].Columns[i].MetaData
				if !bytes.Equal(chunkBytes(b, &got), chunkBytes(buf.Bytes(), &want)) {
					t.Fatalf("%s row group %d column %v: its pages differ from the group's encoded alone", fl.Key, k, got.PathInSchema)
				}
				shift := got.DataPageOffset - want.DataPageOffset
				if got.DictionaryPageOffset != 0 && got.DictionaryPageOffset-want.DictionaryPageOffset != shift {
					t.Fatalf("%s row group %d column %v: dictionary page not where its data pages say", fl.Key, k, got.PathInSchema)
				}
				got.DataPageOffset, got.DictionaryPageOffset, want.DataPageOffset, want.DictionaryPageOffset = 0, 0, 0, 0
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("%s row group %d column %v: metadata (-alone +file):\n%s", fl.Key, k, got.PathInSchema, diff)
				}
				if diff := cmp.Diff(mini.ColumnIndexes()[i], f.ColumnIndexes()[k*ncol+i]); diff != "" {
					t.Fatalf("%s row group %d column %v: column index (-alone +file):\n%s", fl.Key, k, got.PathInSchema, diff)
				}
				gotLoc := slices.Clone(f.OffsetIndexes()[k*ncol+i].PageLocations)
				for j := range gotLoc {
					gotLoc[j].Offset -= shift
				}
				if diff := cmp.Diff(mini.OffsetIndexes()[i].PageLocations, gotLoc); diff != "" {
					t.Fatalf("%s row group %d column %v: page locations, shifted back (-alone +file):\n%s", fl.Key, k, got.PathInSchema, diff)
				}
			}
			pw := parquet.NewGenericWriter[any](io.Discard, cfg...)
			var ms0, ms1 runtime.MemStats
			runtime.ReadMemStats(&ms0)
			if _, err := pw.WriteRowGroup(alone); err != nil {
				t.Fatal(err)
			}
			runtime.ReadMemStats(&ms1)
			// Decoding and encoding again allocates more than the group's
			// size; copying, its metadata (tens of KiB).
			if a := ms1.TotalAlloc - ms0.TotalAlloc; a > 64<<10+uint64(buf.Len())/4 {
				t.Errorf("%s row group %d: writing its %d bytes allocated %d: not copied?", fl.Key, k, buf.Len(), a)
			}
		}
	}
	if start != ev.Len() || groups < 2*len(files) || len(files) < 2 {
		t.Fatalf("%d rows in %d row groups of %d files, want %d rows and several files of several groups", start, groups, len(files), ev.Len())
	}
}

// chunkBytes returns a column chunk's pages, its dictionary page first.
func chunkBytes(file []byte, md *format.ColumnMetaData) []byte {
	off := md.DataPageOffset
	if md.DictionaryPageOffset != 0 {
		off = md.DictionaryPageOffset
	}
	return file[off : off+md.TotalCompressedSize]
}

// TestWriteEventsDuckDBAggregates reads a write of many row groups in
// several files with DuckDB and compares rows per file and aggregates of
// every column with the frame's.
func TestWriteEventsDuckDBAggregates(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	ev := randomEvents(rand.New(rand.NewSource(11)), 60000)
	files, err := writeEvents(ctx, st, "t/", ev, WriterOptions{RowGroupSize: 512 << 10, TargetFileSize: 1 << 20}, 4)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	wantRows := map[string]int64{}
	for _, fl := range files {
		f, _ := openParquet(t, st, fl.Key)
		var rows int64
		for _, rg := range f.RowGroups() {
			rows += rg.NumRows()
		}
		if rows != f.NumRows() || (len(f.RowGroups()) < 2 && fl != files[len(files)-1]) {
			t.Errorf("%s: %d row groups of %d rows, the file has %d", fl.Key, len(f.RowGroups()), rows, f.NumRows())
		}
		p := filepath.Join(st.Root(), fl.Key)
		paths = append(paths, "'"+p+"'")
		wantRows[p] = fl.Rows
	}
	if len(files) < 3 {
		t.Fatalf("%d files, want several", len(files))
	}
	db, err := duckref.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	from := "read_parquet([" + strings.Join(paths, ", ") + "], filename = true)"
	rows, err := db.QueryContext(ctx, "SELECT filename, count(*) FROM "+from+" GROUP BY filename")
	if err != nil {
		t.Fatal(err)
	}
	gotRows := map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		gotRows[name] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if diff := cmp.Diff(wantRows, gotRows); diff != "" {
		t.Errorf("rows per file (-File.Rows +DuckDB):\n%s", diff)
	}

	type aggs struct {
		Events, IDs, Clients, Users, Countries, WithProps, Props, Skewed int64
		Times, Received, PropBytes                                       int64
		MinTime, MaxTime                                                 int64
	}
	var got aggs
	q := `SELECT count(*), count(DISTINCT event_id), count(client_event_time), count(user_id), count(DISTINCT country),
		count(properties), coalesce(sum(cardinality(properties)), 0), count(*) FILTER (WHERE clock_skewed),
		sum(epoch_ms(event_time) % 1000003), sum(epoch_ms(received_at) % 1000003),
		sum((SELECT coalesce(sum(strlen(k) + strlen(v)), 0) FROM (SELECT unnest(map_keys(properties)) AS k, unnest(map_values(properties)) AS v))),
		min(epoch_ms(event_time)), max(epoch_ms(event_time))
		FROM ` + from
	if err := db.QueryRowContext(ctx, q).Scan(&got.Events, &got.IDs, &got.Clients, &got.Users, &got.Countries, &got.WithProps,
		&got.Props, &got.Skewed, &got.Times, &got.Received, &got.PropBytes, &got.MinTime, &got.MaxTime); err != nil {
		t.Fatal(err)
	}
	want := aggs{Events: int64(ev.Len()), MinTime: ev.EventTime[0], MaxTime: ev.EventTime[0]}
	ids, countries := map[string]bool{}, map[uint32]bool{}
	for i := range ev.Len() {
		r := eventOf(ev, i)
		ids[r.EventID] = true
		if r.ClientEventTime != 0 {
			want.Clients++
		}
		if r.UserID != "" {
			want.Users++
		}
		if id := ev.Str[frame.Country][i]; id != 0 {
			countries[id] = true
		}
		if len(r.Properties) > 0 {
			want.WithProps++
		}
		want.Props += int64(len(r.Properties))
		for k, v := range r.Properties {
			want.PropBytes += int64(len(k) + len(v))
		}
		if r.ClockSkewed {
			want.Skewed++
		}
		want.Times += r.EventTime % 1000003
		want.Received += r.ReceivedAt % 1000003
		want.MinTime, want.MaxTime = min(want.MinTime, r.EventTime), max(want.MaxTime, r.EventTime)
	}
	want.IDs, want.Countries = int64(len(ids)), int64(len(countries))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("aggregates (-frame +DuckDB):\n%s", diff)
	}
}

// failingStore's writers fail as told, and it records that each writer got
// exactly one Close or Abort.
type failingStore struct {
	*store.Dir
	newWriter func(key string) error // fails NewWriter for key
	failWrite int64                  // fail a writer's Write past this many bytes (0: never)
	failClose bool                   // fail every Close
	onWrite   func()                 // called on each Write

	mu    sync.Mutex
	ended map[string]string // key: "close", "abort" (or the two, wrongly)
}

func (s *failingStore) NewWriter(ctx context.Context, key string) (store.Writer, error) {
	if s.newWriter != nil {
		if err := s.newWriter(key); err != nil {
			return nil, err
		}
	}
	w, err := s.Dir.NewWriter(ctx, key)
	if err != nil {
		return nil, err
	}
	return &failingWriter{Writer: w, s: s, key: key}, nil
}

func (s *failingStore) end(key, how string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended == nil {
		s.ended = map[string]string{}
	}
	if s.ended[key] != "" {
		how = s.ended[key] + " and " + how
	}
	s.ended[key] = how
}

var errDiskFull = errors.New("disk full")

type failingWriter struct {
	store.Writer
	s   *failingStore
	key string
	n   int64
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.s.onWrite != nil {
		w.s.onWrite()
	}
	if w.s.failWrite > 0 && w.n+int64(len(p)) > w.s.failWrite {
		return 0, errDiskFull
	}
	w.n += int64(len(p))
	return w.Writer.Write(p)
}

func (w *failingWriter) Close() error {
	w.s.end(w.key, "close")
	if w.s.failClose {
		w.Writer.Abort()
		return errDiskFull
	}
	return w.Writer.Close()
}

func (w *failingWriter) Abort() {
	w.s.end(w.key, "abort")
	w.Writer.Abort()
}

// TestWriteEventsFailures: a store that fails (to create a writer, to
// write, to close) or a context canceled during the write fails
// WriteEvents with that error, leaves no goroutine running and no object
// of the failed file, and ends every writer exactly once.
func TestWriteEventsFailures(t *testing.T) {
	ev := randomEvents(rand.New(rand.NewSource(12)), 40000)
	opt := WriterOptions{RowGroupSize: 256 << 10, TargetFileSize: 1 << 20}
	for _, tc := range []struct {
		name   string
		st     func(cancel func()) *failingStore
		want   error
		failed string // the key of the failed file
	}{
		{"NewWriter", func(func()) *failingStore {
			return &failingStore{newWriter: func(key string) error {
				if strings.HasSuffix(key, "part-00001.zstd.parquet") {
					return errDiskFull
				}
				return nil
			}}
		}, errDiskFull, "t/part-00001.zstd.parquet"},
		{"Write", func(func()) *failingStore { return &failingStore{failWrite: 600 << 10} }, errDiskFull, "t/part-00000.zstd.parquet"},
		{"Close", func(func()) *failingStore { return &failingStore{failClose: true} }, errDiskFull, "t/part-00000.zstd.parquet"},
		{"canceled", func(cancel func()) *failingStore {
			var n int
			return &failingStore{onWrite: func() {
				if n++; n == 20 {
					cancel()
				}
			}}
		}, context.Canceled, "t/part-00000.zstd.parquet"},
	} {
		for _, workers := range []int{1, 4} {
			t.Run(fmt.Sprintf("%s/workers=%d", tc.name, workers), func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				st := tc.st(cancel)
				st.Dir = openStore(t)
				before := runtime.NumGoroutine()
				files, err := writeEvents(ctx, st, "t/", ev, opt, workers)
				if !errors.Is(err, tc.want) || files != nil {
					t.Fatalf("got %v, %v; want %v", files, err, tc.want)
				}
				if !strings.Contains(err.Error(), tc.failed) {
					t.Errorf("the error %q does not name %s", err, tc.failed)
				}
				for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; {
					if time.Now().After(deadline) {
						buf := make([]byte, 1<<20)
						t.Fatalf("%d goroutines left running, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
					}
					time.Sleep(time.Millisecond)
				}
				if _, err := st.Stat(context.Background(), tc.failed); !errors.Is(err, store.ErrNotExist) {
					t.Errorf("%s: %v, want it absent", tc.failed, err)
				}
				for key, how := range st.ended {
					if how != "close" && how != "abort" {
						t.Errorf("%s: %s", key, how)
					}
				}
			})
		}
	}
}
