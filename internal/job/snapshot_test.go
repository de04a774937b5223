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
	if want := 2 * len(rollups.All()); len(snap) != want {
		t.Fatalf("snapshot has %d partitions, want %d: %v", len(snap), want, snap)
	}
}
