package job

import (
	"context"
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
	if len(snap) != 2*len(rollups.Daily) {
		t.Fatalf("snapshot has %d partitions, want %d: %v", len(snap), 2*len(rollups.Daily), snap)
	}
}
