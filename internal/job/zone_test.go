package job

import (
	"context"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/store"
)

// TestRecordedZone: "" before any run, the zone the first run recorded
// after it, and reading writes nothing.
func TestRecordedZone(t *testing.T) {
	ctx := context.Background()
	st := store.NewMem()
	if z, err := RecordedZone(ctx, st); err != nil || z != "" {
		t.Fatalf("empty store: %q, %v; want \"\"", z, err)
	}
	if objs, _ := st.List(ctx, ""); len(objs) != 0 {
		t.Fatalf("RecordedZone wrote %v", objs)
	}
	auckland, err := time.LoadLocation("Pacific/Auckland")
	if err != nil {
		t.Fatal(err)
	}
	if err := checkTimeZone(ctx, st, auckland); err != nil {
		t.Fatal(err)
	}
	if z, err := RecordedZone(ctx, st); err != nil || z != "Pacific/Auckland" {
		t.Fatalf("after a run: %q, %v; want Pacific/Auckland", z, err)
	}
}
