package report

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// goneOnce is a store whose first opens of curated data files fail as a
// rebuild's cleanup makes them fail: the file is gone.
type goneOnce struct {
	store.Store
	left atomic.Int32 // opens still to fail
}

func (g *goneOnce) Open(ctx context.Context, key string) (store.Reader, error) {
	if strings.HasPrefix(key, "curated/") && g.left.Add(-1) >= 0 {
		return nil, store.ErrNotExist
	}
	return g.Store.Open(ctx, key)
}

// TestLoadRereadsWhenAFileIsGone: a report read while a rebuild finishes
// (its cleanup deleted a file the report had resolved) resolves the tables
// again and reads the same rows, instead of failing.
func TestLoadRereadsWhenAFileIsGone(t *testing.T) {
	t.Parallel()
	st := warehouse(t)
	ctx := context.Background()
	want, err := load(ctx, st, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	g := &goneOnce{Store: st}
	g.left.Store(loadAttempts - 1)
	got, err := load(ctx, g, 0, 0)
	if err != nil {
		t.Fatalf("load with %d files gone in turn: %v", loadAttempts-1, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tables read again differ (-first +again):\n%s", diff)
	}
	// More gone files in a row than it retries: the error says so.
	g.left.Store(loadAttempts)
	if _, err := load(ctx, g, 0, 0); err == nil {
		t.Errorf("load succeeded with every attempt's file gone")
	}
}

// TestWithdrawnDaysAreNotShown: a windowed partition published empty
// because its day was never built (publish.WithdrawnFingerprint) is not a
// day of the report: it would be drawn as zeros.
func TestWithdrawnDaysAreNotShown(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	built, never := day.FromDate(2026, 11, 24), day.FromDate(2026, 11, 25)
	commit := func(d day.Day, run, fp string, rows []rollups.ActiveUsersDaily) {
		t.Helper()
		files, err := publish.Write(ctx, st, publish.RunPrefix("active_users_daily", d, run), rows, publish.WriterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := publish.Commit(ctx, st, &publish.Manifest{Table: "active_users_daily", Day: d.String(), Run: run, Fingerprint: fp, Files: files}); err != nil {
			t.Fatal(err)
		}
	}
	commit(built, "01KA0000000000000000000001", "built", []rollups.ActiveUsersDaily{{Product: "shop", DAU: 3}})
	commit(never, "01KA0000000000000000000002", publish.WithdrawnFingerprint, nil)
	tb, err := load(ctx, st, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var days []day.Day
	for _, p := range tb.Active {
		days = append(days, p.Day)
	}
	if len(days) != 1 || days[0] != built {
		t.Errorf("active_users_daily days %v, want only %s", days, built)
	}
}
