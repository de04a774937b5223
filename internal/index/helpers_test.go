package index

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/raw"
	"github.com/littlewarehouse/warehouse/internal/store"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// hourOf parses the arrival hour out of raw/YYYY/MM/DD/HH/<name>, as the
// job does.
func hourOf(t testing.TB, key string) time.Time {
	t.Helper()
	parts := strings.Split(strings.TrimPrefix(key, "raw/"), "/")
	if len(parts) != 5 {
		t.Fatalf("key %s is not in the hourly layout", key)
	}
	h, err := time.Parse("2006/01/02/15", strings.Join(parts[:4], "/"))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// listRaw lists the raw objects of st as ObjectRefs.
func listRaw(t testing.TB, st store.Store) []ObjectRef {
	t.Helper()
	objs, err := st.List(context.Background(), "raw/")
	if err != nil {
		t.Fatal(err)
	}
	var out []ObjectRef
	for _, o := range objs {
		out = append(out, ObjectRef{Key: o.Key, ETag: o.ETag, Size: o.Size, Hour: hourOf(t, o.Key)})
	}
	return out
}

// slowEntry is what Scan must return, computed the slow way: every row read
// by raw.ReadFrom, its day found by compact.Rules.Attribute and day.Of.
func slowEntry(t testing.TB, data []byte, key string, hour time.Time, rules compact.Rules) Entry {
	t.Helper()
	e := Entry{Key: key, Size: int64(len(data)), Hour: hour.UTC()}
	rows, err := raw.ReadFrom(bytes.NewReader(data), int64(len(data)), key)
	var bad *raw.BadObjectError
	if errors.As(err, &bad) {
		e.Bad, e.Detail = bad.Reason, bad.Err.Error()
		return e
	}
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	e.Rows = int64(len(rows))
	seen := map[day.Day]int64{}
	first := true
	for i := range rows {
		r := &rows[i]
		at, _ := rules.Attribute(r, hour.UnixMilli())
		seen[day.Of(at, rules.Loc)]++
		if r.HasReceivedAt {
			if first || r.ReceivedAt < e.FirstArrival {
				e.FirstArrival = r.ReceivedAt
			}
			if first || r.ReceivedAt > e.LastArrival {
				e.LastArrival = r.ReceivedAt
			}
			first = false
		}
	}
	for d := range seen {
		e.Days = append(e.Days, d)
	}
	slices.Sort(e.Days)
	for _, d := range e.Days {
		e.DayRows = append(e.DayRows, seen[d])
	}
	return e
}

// compareEntries fails unless got agrees with the slow way. Details of
// panics hold a stack trace, so only their first line is compared.
func compareEntries(t testing.TB, want, got Entry) {
	t.Helper()
	if strings.HasPrefix(want.Detail, "parquet reader panicked") {
		want.Detail, _, _ = strings.Cut(want.Detail, "\n")
		got.Detail, _, _ = strings.Cut(got.Detail, "\n")
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s: entry (-slow +Scan):\n%s", want.Key, diff)
	}
}

var (
	genOnce sync.Once
	genDir  string
	genRep  gen.Report
	genErr  error
)

// nastyStore returns a store (shared, read-only) with four days of nasty
// eventgen data across the end of New Zealand daylight saving time
// (2026-04-05): late, skewed and timeless rows, duplicates, INT96 objects
// and bad objects of every kind. Tests that change a store copy it.
func nastyStore(t testing.TB) (string, gen.Report) {
	t.Helper()
	genOnce.Do(func() {
		dir, err := mkdirTemp()
		if err != nil {
			genErr = err
			return
		}
		st, err := store.OpenDir(dir, true)
		if err != nil {
			genErr = err
			return
		}
		cfg := gen.Nasty(gen.Config{
			From: time.Date(2026, 4, 3, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 4, 6, 0, 0, 0, 0, time.UTC),
			EventsPerDay: 1500, Seed: 11, INT96Objects: 4, NotParquet: 2, Truncated: 2, ZeroByte: 1,
		})
		genRep, genErr = gen.Generate(context.Background(), st, cfg)
		genDir = dir
	})
	if genErr != nil {
		t.Fatal(genErr)
	}
	return genDir, genRep
}

// copyStore copies every object of the shared nasty store into a fresh
// directory store.
func copyStore(t testing.TB) *store.Dir {
	t.Helper()
	src, _ := nastyStore(t)
	from, err := store.OpenDir(src, false)
	if err != nil {
		t.Fatal(err)
	}
	to, err := store.OpenDir(t.TempDir(), true)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	objs, err := from.List(ctx, "raw/")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		b, err := from.Get(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		if err := to.Put(ctx, o.Key, b); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// writeParquet writes rows as one Parquet file.
func writeParquet[T any](t testing.TB, rows []T, opts ...parquet.WriterOption) []byte {
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

// countingStore counts calls and can fail reads, to see what the index
// touches.
type countingStore struct {
	store.Store
	gets, puts, opens, deletes atomic.Int64
	mu                         sync.Mutex
	got                        []string
	failRead                   func(key string) error // if set, reads of an opened object fail with it
}

var _ store.Store = (*countingStore)(nil)

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	c.gets.Add(1)
	c.mu.Lock()
	c.got = append(c.got, key)
	c.mu.Unlock()
	return c.Store.Get(ctx, key)
}

func (c *countingStore) Put(ctx context.Context, key string, data []byte) error {
	c.puts.Add(1)
	return c.Store.Put(ctx, key, data)
}

func (c *countingStore) Delete(ctx context.Context, key string) error {
	c.deletes.Add(1)
	return c.Store.Delete(ctx, key)
}

func (c *countingStore) Open(ctx context.Context, key string) (store.Reader, error) {
	c.opens.Add(1)
	r, err := c.Store.Open(ctx, key)
	if err != nil || c.failRead == nil {
		return r, err
	}
	if ferr := c.failRead(key); ferr != nil {
		return failingReader{r, ferr}, nil
	}
	return r, nil
}

func (c *countingStore) reset() {
	c.gets.Store(0)
	c.puts.Store(0)
	c.opens.Store(0)
	c.deletes.Store(0)
	c.mu.Lock()
	c.got = nil
	c.mu.Unlock()
}

// failingReader fails every read after the first 4 bytes of the object, as
// a connection dropped mid-object would.
type failingReader struct {
	store.Reader
	err error
}

func (f failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 4 || off >= f.Size()-4 {
		return f.Reader.ReadAt(p, off)
	}
	return 0, f.err
}

var sharedTmp string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "index-test-")
	if err != nil {
		panic(err)
	}
	sharedTmp = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func mkdirTemp() (string, error) { return os.MkdirTemp(sharedTmp, "nasty-") }
