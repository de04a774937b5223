package report

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/store"
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
