package store_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/store"
)

// TestDirETagSeesInPlaceRewrites: a file rewritten in place, with its size
// kept and its modification time set back, gets another ETag (issue 29: a
// local raw object rewritten so was never read again, even by --force).
func TestDirETagSeesInPlaceRewrites(t *testing.T) {
	ctx := t.Context()
	d := openDir(t)
	if err := d.Put(ctx, "raw/obj.parquet", []byte("aaaa")); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(d.Root(), "raw", "obj.parquet")
	before, err := d.Stat(ctx, "raw/obj.parquet")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	// File times advance in clock ticks of a few milliseconds: let one pass.
	time.Sleep(30 * time.Millisecond)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("bbbb"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	after, err := d.Stat(ctx, "raw/obj.parquet")
	if err != nil {
		t.Fatal(err)
	}
	if after.Size != before.Size || !after.ModTime.Equal(before.ModTime) {
		t.Fatalf("the rewrite did not keep size and time: %+v, then %+v", before, after)
	}
	if after.ETag == before.ETag {
		t.Errorf("ETag %q unchanged by an in-place rewrite of the same size and modification time", after.ETag)
	}
	listed, err := d.List(ctx, "raw/")
	if err != nil || len(listed) != 1 || listed[0].ETag != after.ETag {
		t.Errorf("List = %+v, %v; want the ETag Stat gives, %q", listed, err, after.ETag)
	}
}

// TestRemoveStaleTemp: the temporary files of writes a killed process left
// are deleted once older than the cut-off, wherever they are under the
// prefix; younger ones (writes in flight) and objects stay.
func TestRemoveStaleTemp(t *testing.T) {
	ctx := t.Context()
	d := openDir(t)
	for _, k := range []string{"_state/index/entries.json", "_state/segments/d/x.parquet", "curated/t/x"} {
		if err := d.Put(ctx, k, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	temp := func(key string, at time.Time) {
		t.Helper()
		p := filepath.Join(d.Root(), filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("partial"), 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	temp("_state/.tmp-old1", old)
	temp("_state/segments/d/.tmp-old2", old)
	temp("_state/killed/only/.tmp-old3", old) // its folders go with it
	temp("_state/index/.tmp-young", time.Now())
	temp("curated/t/.tmp-old4", old) // not under the prefix
	n, err := store.RemoveStaleTemp(ctx, d, "_state/", time.Now().Add(-time.Hour))
	if err != nil || n != 3 {
		t.Errorf("RemoveStaleTemp = %d, %v; want 3", n, err)
	}
	objs, err := d.ListWithTemp(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	want := []string{"_state/index/.tmp-young", "_state/index/entries.json", "_state/segments/d/x.parquet", "curated/t/.tmp-old4", "curated/t/x"}
	if !slices.Equal(keys, want) {
		t.Errorf("left %q; want %q", keys, want)
	}
	if _, err := os.Stat(filepath.Join(d.Root(), "_state", "killed")); !os.IsNotExist(err) {
		t.Errorf("the folder that held only a stale temp file stays: %v", err)
	}
	if n, err := store.RemoveStaleTemp(ctx, store.NewMem(), "_state/", time.Now()); n != 0 || err != nil {
		t.Errorf("on a store without temp files: %d, %v", n, err)
	}
}
