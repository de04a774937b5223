package job

import (
	"context"
	"strings"
	"testing"

	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

func TestSnapshotSeesEveryTable(t *testing.T) {
	ctx := context.Background()
	st, _ := store.OpenDir(t.TempDir(), false)
	loadFixture(t, st, "../../testdata/golden/raw.json")
	from, to := mustDay(t, "2026-03-01"), mustDay(t, "2026-03-02")
	if _, err := Run(ctx, Config{Store: st, From: from, To: to}); err != nil {
		t.Fatal(err)
	}
	snap, err := Snapshot(ctx, st, from, to)
	if err != nil {
		t.Fatal(err)
	}
	users := 0
	for k := range snap {
		if strings.HasPrefix(k, "users/bucket=") {
			users++
		}
	}
	if users == 0 || users > rollups.UserBuckets {
		t.Errorf("snapshot has %d users buckets", users)
	}
	if want := 2*(len(tableNames())-1) + users; len(snap) != want {
		t.Fatalf("snapshot has %d partitions, want %d: %v", len(snap), want, snap)
	}
}
