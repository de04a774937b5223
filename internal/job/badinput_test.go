package job

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/raw/rawtest"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// TestLyingFootersAndInvalidUTF8: every lying footer and page header of
// the crafted set (a footer claiming 2^31 rows, a footer length before the
// file's start, random bytes between PAR1 magic, ...) beside good data: the
// run succeeds, each is counted as a bad file and quarantined, and the good
// rows are all there. Strings with invalid UTF-8 are repaired, counted, and
// DuckDB reads every table.
func TestLyingFootersAndInvalidUTF8(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	st, err := store.OpenDir(root, false)
	if err != nil {
		t.Fatal(err)
	}
	d0 := time.Date(2026, 4, 2, 0, 0, 0, 0, time.UTC)
	at := d0.Add(10 * time.Hour)
	writeRaw(t, st, rawKey(at, "good"), []event.Raw{
		{EventID: "e1", EventTime: at, ReceivedAt: at, EventName: "open", UserID: "u1", Product: "app", Platform: "web"},
		{EventID: "e2", EventTime: at, ReceivedAt: at, EventName: "caf\xe9", UserID: "u\xff2", Product: "app", Platform: "web",
			Properties: map[string]string{"k\xc3": "v\xa0x"}},
	})
	lies := rawtest.Lying(t)
	for i, c := range lies {
		if err := st.Put(ctx, rawKey(at.Add(time.Duration(i)*time.Minute), "lie-"+c.Name), c.Data); err != nil {
			t.Fatal(err)
		}
	}
	d := day.FromDate(2026, 4, 2)
	sum, err := Run(ctx, Config{Store: st, From: d, To: d, Rules: compact.DefaultRules(time.UTC)})
	if err != nil {
		t.Fatalf("a run with lying objects failed: %v", err)
	}
	q := sum.Days[0].Quality
	if q.BadFiles != int64(len(lies)) || len(sum.BadObjects) != len(lies) {
		t.Errorf("bad files %d, bad objects %d; want %d", q.BadFiles, len(sum.BadObjects), len(lies))
	}
	if q.KeptRows != 2 || q.InvalidUTF8Rows != 1 {
		t.Errorf("kept %d rows, %d with invalid UTF-8; want 2 and 1", q.KeptRows, q.InvalidUTF8Rows)
	}
	db := openDuck(t)
	if err := db.ViewCurated(ctx, root, tableNames()...); err != nil {
		t.Fatal(err)
	}
	// Every table with rows (one day has no retention yet).
	for _, table := range []string{"events", "engagement_daily", "user_daily", "sessions_daily", "data_quality_daily", "quarantine", "users", "active_users_daily"} {
		if _, err := db.Query(ctx, "SELECT * FROM "+table); err != nil {
			t.Errorf("DuckDB cannot read %s: %v", table, err)
		}
	}
	var name, user, props string
	if err := db.QueryRowContext(ctx, "SELECT event_name, user_id, CAST(properties AS VARCHAR) FROM events WHERE event_id = 'e2'").Scan(&name, &user, &props); err != nil {
		t.Fatal(err)
	}
	if name != "caf\uFFFD" || user != "u\uFFFD2" {
		t.Errorf("repaired strings %q, %q; want caf\\uFFFD and u\\uFFFD2", name, user)
	}
	var bad int64
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM quarantine WHERE reason LIKE 'bad_object_%'").Scan(&bad); err != nil || bad != int64(len(lies)) {
		t.Errorf("quarantine lists %d bad objects (%v), want %d", bad, err, len(lies))
	}
}

// flakyDeletes fails the first n deletes of lease objects, as S3 does now
// and then (a 503): a release that gives up at the first one leaves the
// lease behind and blocks the next run.
type flakyDeletes struct {
	store.Store
	mu sync.Mutex
	n  int
}

func (f *flakyDeletes) Delete(ctx context.Context, key string) error {
	f.mu.Lock()
	fail := strings.HasPrefix(key, lease.Prefix) && f.n > 0
	if fail {
		f.n--
	}
	f.mu.Unlock()
	if fail {
		return errors.New("503 Service Unavailable")
	}
	return f.Store.Delete(ctx, key)
}

// DeleteIf fails as Delete does: a lease is released with DeleteIf.
func (f *flakyDeletes) DeleteIf(ctx context.Context, key, tag string) error {
	f.mu.Lock()
	fail := strings.HasPrefix(key, lease.Prefix) && f.n > 0
	if fail {
		f.n--
	}
	f.mu.Unlock()
	if fail {
		return errors.New("503 Service Unavailable")
	}
	return f.Store.DeleteIf(ctx, key, tag)
}

// TestLeaseReleaseRetried: releases meet transient store errors; the run
// still leaves no lease behind, and the next run (which waits for no one)
// finds every day free.
func TestLeaseReleaseRetried(t *testing.T) {
	ctx := context.Background()
	dir, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	loadFixture(t, dir, "../../testdata/golden/raw.json")
	st := &flakyDeletes{Store: dir, n: 4} // fewer than Release tries one delete
	d1, d2 := mustDay(t, "2026-03-01"), mustDay(t, "2026-03-02")
	if _, err := Run(ctx, Config{Store: st, From: d1, To: d2}); err != nil {
		t.Fatal(err)
	}
	if st.n != 0 {
		t.Fatalf("%d injected failures not used: the test checked nothing", st.n)
	}
	left, err := dir.List(ctx, lease.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	var leases []string
	for _, o := range left {
		if strings.HasSuffix(o.Key, ".json") && !strings.Contains(o.Key, ".takeover.") {
			leases = append(leases, o.Key)
		}
	}
	if len(leases) != 0 {
		t.Errorf("leases left behind: %v", leases)
	}
	if _, err := Run(ctx, Config{Store: dir, From: d1, To: d2, Force: true, LockWait: 0}); err != nil {
		t.Errorf("the next run: %v", err)
	}
}
