package job

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// TestInPlaceRewriteIsNoticed: a local raw object rewritten in place, with
// its size kept and its modification time set back, makes its day stale
// and is read again (issue 29: it was never noticed, even by --force,
// because the local ETag was its size, time and inode).
func TestInPlaceRewriteIsNoticed(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	raw := func(user string) []byte {
		scratch, err := store.OpenDir(t.TempDir(), false)
		if err != nil {
			t.Fatal(err)
		}
		writeRaw(t, scratch, "x", []event.Raw{{EventID: "e1", EventTime: at, ReceivedAt: at, EventName: "open", UserID: user, Product: "shop", Platform: "web"}})
		b, err := scratch.Get(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	before, after := raw("alice"), raw("bobby")
	if len(before) != len(after) || bytes.Equal(before, after) {
		t.Fatalf("the two objects are %d and %d bytes; want the same size, other bytes", len(before), len(after))
	}
	const key = "raw/2026/03/01/12/stream-1-2026-03-01-12-00-00-x.parquet"
	if err := st.Put(ctx, key, before); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Store: st, From: mustDay(t, "2026-03-01"), To: mustDay(t, "2026-03-01")}
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	users := func() []string {
		m, err := currentUserDays(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := manifestRows[rollups.UserDaily](ctx, st, m[cfg.From])
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range rows {
			out = append(out, r.UserKey)
		}
		return out
	}
	if got := users(); len(got) != 1 || got[0] != "alice" {
		t.Fatalf("users %v; want alice", got)
	}

	// Rewrite the object in place: same inode, size and modification time.
	p := filepath.Join(st.Root(), filepath.FromSlash(key))
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond) // a clock tick of the file system
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(after, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}

	sum, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Days) != 1 || sum.Days[0].Skipped || sum.Days[0].Why != "1 changed objects" {
		t.Errorf("days %+v; want the day rebuilt for 1 changed object", sum.Days)
	}
	if got := users(); len(got) != 1 || got[0] != "bobby" {
		t.Errorf("users %v after the rewrite; want bobby", got)
	}
}
