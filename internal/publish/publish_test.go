package publish

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

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/frame"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

func openStore(t *testing.T) *store.Dir {
	t.Helper()
	st, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestOptionalNullsSurvive writes events whose optional columns alternate
// between set and empty in patterns that made parquet-go's batched
// GenericWriter.Write turn nulls into zero values, and checks every null
// stays null.
func TestOptionalNullsSurvive(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	ev := frame.New(nil, 0)
	// The runs of set and empty values of a real day's app_version column
	// (starting with set) that parquet-go's batched Write got wrong.
	runs := []int{6, 2, 19, 3, 13, 2, 7, 2, 2, 6, 5, 1, 4, 3, 8, 1, 9, 4, 3, 1, 14, 1, 8, 3, 1, 1, 1, 5, 101, 14, 8, 3, 13, 2, 31, 7, 22, 11, 6, 3, 7, 11, 22, 3, 22, 5, 12, 3, 2, 1, 5, 3, 4, 2, 5, 1, 9, 2, 1, 1, 15, 3, 5, 2, 6, 1, 6, 2, 25, 1, 5, 2, 5, 2, 8, 2, 12, 2, 2, 1, 6, 1, 3, 3, 2, 1, 2, 1, 1, 1, 5, 9, 18, 10, 5, 13, 11, 6, 12, 37, 10, 1, 9, 8, 4, 9, 21, 3, 4, 1, 7, 3, 1, 5, 6, 1, 16, 1, 1, 1, 11, 1, 7, 4, 5, 1, 316, 1, 5, 3, 22, 1, 12, 8, 7, 2, 2, 2, 23, 3, 14, 3, 2, 2, 4, 6, 10, 2, 5, 4, 10, 3, 7, 1, 18, 1, 4, 8, 3, 1, 2, 5, 14, 2, 11, 2, 1, 3, 3, 5, 25, 1, 24, 3, 9, 2, 73, 10, 11, 2, 8, 6, 45, 4, 26, 4, 6, 3, 9, 11, 6, 4, 16, 4, 16, 3, 13, 4, 14, 5, 6, 4, 4, 1, 5, 8, 9, 3, 46, 2, 9, 1, 12, 7, 11, 4, 3, 3, 20, 1}
	set := true
	want := 0 // nulls
	for _, n := range runs {
		for k := 0; k < n; k++ {
			r := frame.Row{EventID: "e", EventTime: int64(ev.Len())}
			r.Str[frame.EventName], r.Str[frame.UserKey], r.Str[frame.SessionKey] = "n", "u", "s"
			if set {
				r.Str[frame.AppVersion] = "1.0"
				r.ClientTime = int64(ev.Len() + 1)
			} else {
				want++
			}
			if err := ev.Append(&r); err != nil {
				t.Fatal(err)
			}
		}
		set = !set
	}
	files, err := WriteEvents(ctx, st, "t/", ev, WriterOptions{RowGroupSize: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.Get(ctx, files[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"app_version", "client_event_time"} {
		col, _ := f.Schema().Lookup(name)
		var nulls int
		pages := f.RowGroups()[0].ColumnChunks()[col.ColumnIndex].Pages()
		for {
			p, err := pages.ReadPage()
			if err != nil {
				break
			}
			nulls += int(p.NumNulls())
		}
		if nulls != want {
			t.Errorf("%s: %d nulls written, want %d", name, nulls, want)
		}
	}
}

func TestWriteSplitsFilesAndRoundTrips(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	var rows []rollups.EngagementDaily
	for i := 0; i < 20000; i++ {
		rows = append(rows, rollups.EngagementDaily{Product: "p", Platform: "web", EventName: string(rune('a' + i%26)), Events: int64(i)})
	}
	files, err := Write(ctx, st, "t/", rows, WriterOptions{RowGroupSize: 10000, TargetFileSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("%d files, want the rows split over several", len(files))
	}
	var got []rollups.EngagementDaily
	for _, f := range files {
		b, err := st.Get(ctx, f.Key)
		if err != nil {
			t.Fatal(err)
		}
		part, err := parquet.Read[rollups.EngagementDaily](bytes.NewReader(b), int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(part)) != f.Rows || int64(len(b)) != f.Size {
			t.Errorf("%s: %d rows %d bytes, manifest says %d and %d", f.Key, len(part), len(b), f.Rows, f.Size)
		}
		got = append(got, part...)
	}
	if diff := cmp.Diff(rows, got); diff != "" {
		t.Fatalf("round trip (-want +got):\n%s", diff)
	}
}

func TestCommitCurrentCleanup(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	d, _ := day.Parse("2026-03-01")
	if _, err := Current(ctx, st, "x", d); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("Current of a new partition: %v, want ErrNotExist", err)
	}
	for _, run := range []string{"01A", "01B", "01C", "01D"} {
		if _, err := Write(ctx, st, RunPrefix("x", d, run), []rollups.DataQualityDaily{{RawRows: 1}}, WriterOptions{RowGroupSize: 1 << 20}); err != nil {
			t.Fatal(err)
		}
	}
	// 01B and 01C are committed; 01A and 01D are debris of crashed runs
	// (the caller of Cleanup holds the partition's lease: no one else is
	// writing it).
	for _, run := range []string{"01B", "01C"} {
		if err := Commit(ctx, st, &Manifest{Table: "x", Day: d.String(), Run: run}); err != nil {
			t.Fatal(err)
		}
	}
	if err := Commit(ctx, st, &Manifest{Table: "x", Day: d.String(), Run: "01C"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second commit of a run: %v, want ErrExists", err)
	}
	m, err := Current(ctx, st, "x", d)
	if err != nil || m.Run != "01C" {
		t.Fatalf("Current = %+v, %v; want run 01C", m, err)
	}
	now := time.Now()
	if err := Cleanup(ctx, st, "x", d, "01C", time.Hour, now); err != nil {
		t.Fatal(err)
	}
	objs, _ := st.List(ctx, PartitionPrefix("x", d))
	if len(objs) != 6 {
		t.Fatalf("grace period: %d objects left, want all 6", len(objs))
	}
	if err := Cleanup(ctx, st, "x", d, "01C", 0, now); err != nil {
		t.Fatal(err)
	}
	objs, _ = st.List(ctx, PartitionPrefix("x", d))
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key[len(PartitionPrefix("x", d)):])
	}
	want := []string{"run=01C/_manifest.json", "run=01C/part-00000.zstd.parquet"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Fatalf("after cleanup (-want +got):\n%s", diff)
	}
}

// TestCurrentFollowsCommitOrder commits a run whose id sorts first (minted
// by a machine whose clock is an hour behind) after one that sorts last: the
// later commit is current, and cleanup keeps it, not the larger id.
func TestCurrentFollowsCommitOrder(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	d, _ := day.Parse("2026-03-01")
	for _, run := range []string{"02Z", "01A"} { // commit order; 01A's clock is behind
		if _, err := Write(ctx, st, RunPrefix("x", d, run), []rollups.DataQualityDaily{{RawRows: 1}}, WriterOptions{RowGroupSize: 1 << 20}); err != nil {
			t.Fatal(err)
		}
		if err := Commit(ctx, st, &Manifest{Table: "x", Day: d.String(), Run: run}); err != nil {
			t.Fatal(err)
		}
	}
	m, err := Current(ctx, st, "x", d)
	if err != nil || m.Run != "01A" || m.Generation != 2 {
		t.Fatalf("Current = %+v, %v; want run 01A, generation 2", m, err)
	}
	if err := Cleanup(ctx, st, "x", d, "01A", 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	if m, err := Current(ctx, st, "x", d); err != nil || m.Run != "01A" {
		t.Fatalf("after cleanup Current = %+v, %v; want run 01A", m, err)
	}
	objs, _ := st.List(ctx, RunPrefix("x", d, "02Z"))
	if len(objs) != 0 {
		t.Fatalf("superseded run 02Z left %d objects", len(objs))
	}
}

// TestCleanupRemovesEmptyRunFolders: a run folder that a killed writer made
// but wrote nothing into holds no object, and goes too.
func TestCleanupRemovesEmptyRunFolders(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	d, _ := day.Parse("2026-03-01")
	if _, err := Write(ctx, st, RunPrefix("x", d, "01B"), []rollups.DataQualityDaily{{RawRows: 1}}, WriterOptions{RowGroupSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	if err := Commit(ctx, st, &Manifest{Table: "x", Day: d.String(), Run: "01B"}); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(st.Root(), "curated", "x", "dt=2026-03-01", "run=01C")
	if err := os.MkdirAll(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Cleanup(ctx, st, "x", d, "01B", 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(empty); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty run folder still there: %v", err)
	}
	if m, err := Current(ctx, st, "x", d); err != nil || m.Run != "01B" {
		t.Errorf("Current = %+v, %v", m, err)
	}
}
