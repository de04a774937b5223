package job

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/segment"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/internal/store/storetest"
)

func segmentCount(t *testing.T, st store.Store) int {
	t.Helper()
	objs, err := st.List(context.Background(), segment.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	return len(objs)
}

// Segments are a cache: a forced rebuild from them reads no raw object,
// and with them deleted a forced rebuild reads each raw object once; both
// give byte-identical tables.
func TestSegmentsAreACache(t *testing.T) {
	ctx := context.Background()
	dir, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.CountReads(dir, "raw/")
	d1 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	if _, err := gen.Generate(ctx, dir, gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 2), EventsPerDay: 1200, Seed: 5})); err != nil {
		t.Fatal(err)
	}
	auckland, _ := time.LoadLocation("Pacific/Auckland")
	cfg := Config{Store: st, From: mustDay(t, "2026-04-30"), To: mustDay(t, "2026-05-04"), Rules: compact.DefaultRules(auckland)}
	first, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for k, n := range st.Take() {
		if n != 1 {
			t.Errorf("first run read %s %d times; want once", k, n)
		}
	}
	for _, d := range first.Days {
		if d.Quality.KeptRows == 0 && d.Day >= mustDay(t, "2026-05-01") && d.Day <= mustDay(t, "2026-05-03") {
			t.Errorf("day %s built without events", d.Day)
		}
	}
	if first.SegmentsWritten == 0 || segmentCount(t, dir) != first.SegmentsWritten {
		t.Fatalf("first run wrote %d segments, the store holds %d", first.SegmentsWritten, segmentCount(t, dir))
	}
	want, err := Snapshot(ctx, dir, cfg.From, cfg.To)
	if err != nil {
		t.Fatal(err)
	}

	cfg.Force = true
	fromSegs, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if reads := st.Take(); len(reads) != 0 || fromSegs.RawObjects != 0 {
		t.Errorf("a forced rebuild with every segment in place read raw objects: %v (summary: %d)", reads, fromSegs.RawObjects)
	}
	got, err := Snapshot(ctx, dir, cfg.From, cfg.To)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rebuilt from segments (-first +rebuilt):\n%s", diff)
	}

	if err := removeAll(ctx, dir, segment.Prefix); err != nil {
		t.Fatal(err)
	}
	again, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The first run read every new object of the range's arrival window
	// (each is routed once, ever); this one only those the range's days
	// need, each once.
	reads := st.Take()
	for k, n := range reads {
		if n != 1 {
			t.Errorf("rebuild without segments read %s %d times; want once", k, n)
		}
	}
	if len(reads) == 0 || len(reads) > first.RawObjects || again.RawObjects != len(reads) {
		t.Errorf("rebuild without segments read %d objects (summary %d); the first run read %d", len(reads), again.RawObjects, first.RawObjects)
	}
	got, err = Snapshot(ctx, dir, cfg.From, cfg.To)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rebuilt with the segments deleted (-first +rebuilt):\n%s", diff)
	}
}

func removeAll(ctx context.Context, st store.Store, prefix string) error {
	objs, err := st.List(ctx, prefix)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := st.Delete(ctx, o.Key); err != nil {
			return err
		}
	}
	return nil
}

// spread returns n events received at recv whose event times fall on the
// days recv−0 … recv−(days−1) (all within max lateness), of one user each.
func spread(prefix string, recv time.Time, days, n int) []event.Raw {
	var out []event.Raw
	for i := range n {
		k := i % days
		out = append(out, event.Raw{EventID: fmt.Sprintf("%s-%d", prefix, i), EventName: "open", UserID: fmt.Sprintf("u%d", i%7),
			Product: "shop", Platform: "ios", EventTime: recv.Add(-time.Duration(k)*24*time.Hour - time.Minute), ReceivedAt: recv})
	}
	return out
}

// An object whose rows count on 8 days is read once for all of them; a
// late object later rebuilds its days from their segments, reading no
// other raw object; and the tables equal a clean build of the same raw
// objects.
func TestObjectFeedingEightDaysIsReadOnce(t *testing.T) {
	ctx := context.Background()
	dir, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.CountReads(dir, "raw/")
	recv := time.Date(2026, 6, 10, 12, 30, 0, 0, time.UTC)
	wide := "raw/2026/06/10/12/events-1-2026-06-10-12-30-00-wide"
	writeRaw(t, dir, wide, spread("w", recv, 8, 400))
	for h := range 4 { // ordinary objects, one day each
		at := time.Date(2026, 6, 3+h, 9, 0, 0, 0, time.UTC)
		writeRaw(t, dir, fmt.Sprintf("raw/2026/06/%02d/09/events-1-plain-%d", 3+h, h), spread(fmt.Sprintf("p%d", h), at, 1, 50))
	}
	cfg := Config{Store: st, From: mustDay(t, "2026-06-03"), To: mustDay(t, "2026-06-10"), Rules: compact.DefaultRules(time.UTC)}
	sum, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	built := 0
	for _, d := range sum.Days {
		if !d.Skipped {
			built++
		}
	}
	if built != 8 {
		t.Fatalf("built %d days, want 8", built)
	}
	reads := st.Take()
	if reads[wide] != 1 {
		t.Errorf("the object feeding 8 days was read %d times; want once (reads: %v)", reads[wide], reads)
	}

	// A late object for three of the days.
	late := "raw/2026/06/11/02/events-1-2026-06-11-02-00-00-late"
	writeRaw(t, dir, late, spread("l", time.Date(2026, 6, 11, 2, 0, 0, 0, time.UTC), 3, 30))
	cfg.To = mustDay(t, "2026-06-11")
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if reads := st.Take(); len(reads) != 1 || reads[late] != 1 {
		t.Errorf("after a late object arrived the run read %v; want only %s, once", reads, late)
	}

	// The same raw objects built in one clean run.
	clean, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := dir.List(ctx, "raw/")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		b, err := dir.Get(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		if err := clean.Put(ctx, o.Key, b); err != nil {
			t.Fatal(err)
		}
	}
	cleanCfg := cfg
	cleanCfg.Store = clean
	if _, err := Run(ctx, cleanCfg); err != nil {
		t.Fatal(err)
	}
	if diff := tablesDiff(t, clean, dir, cfg.From, cfg.To); diff != "" {
		t.Errorf("incremental build differs from a clean build (-clean +incremental):\n%s", diff)
	}
	// data_quality_daily but for restated, which says what a build changed.
	for d := cfg.From; d <= cfg.To; d++ {
		if diff := cmp.Diff(qualityOf(t, clean, d), qualityOf(t, dir, d)); diff != "" {
			t.Errorf("data_quality_daily %s differs from a clean build (-clean +incremental):\n%s", d, diff)
		}
	}

	// Deleting a raw object deletes its segments.
	if err := dir.Delete(ctx, late); err != nil {
		t.Fatal(err)
	}
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	segs, err := dir.List(ctx, segment.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range segs {
		if strings.Contains(s.Key, "-late.") {
			t.Errorf("segment %s outlived its raw object", s.Key)
		}
	}
}

// ListedBefore leaves out an object the index does not hold and that was
// written after it (a Lambda day worker's view: the coordinator had every
// earlier object routed), and keeps every object written before it.
func TestListedBeforeLeavesOutLaterObjects(t *testing.T) {
	ctx := context.Background()
	dir, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	recv := time.Date(2026, 6, 10, 12, 30, 0, 0, time.UTC)
	writeRaw(t, dir, "raw/2026/06/10/12/events-1-a", spread("a", recv, 1, 20))
	cut := time.Now().Add(time.Second)
	time.Sleep(1100 * time.Millisecond)
	writeRaw(t, dir, "raw/2026/06/10/13/events-1-b", spread("b", recv.Add(time.Hour), 1, 30))
	cfg := Config{Store: dir, From: mustDay(t, "2026-06-10"), To: mustDay(t, "2026-06-10"), Rules: compact.DefaultRules(time.UTC)}
	sum, err := Run(ctx, cfg, ListedBefore(cut))
	if err != nil {
		t.Fatal(err)
	}
	if got := sum.Days[0].Quality.KeptRows; got != 20 {
		t.Errorf("listed before b was written: %d events, want a's 20", got)
	}
	sum, err = Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := sum.Days[0].Quality.KeptRows; got != 50 || sum.Days[0].Skipped {
		t.Errorf("the next run: %d events (skipped %v), want 50", got, sum.Days[0].Skipped)
	}
}

// The windowed stage reads a user_daily run from the store at most once,
// and none that this process has just built: the day built is taken from
// memory (publisher.built), a day built by an earlier run is read once for
// the users and windowed stages both.
func TestUserDailyReadOnce(t *testing.T) {
	ctx := context.Background()
	dir, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	st := storetest.CountReads(dir, "curated/user_daily/")
	writeRaw(t, dir, "raw/2026/06/10/09/events-1-one", spread("a", time.Date(2026, 6, 10, 9, 0, 0, 0, time.UTC), 1, 300))
	writeRaw(t, dir, "raw/2026/06/11/09/events-1-two", spread("b", time.Date(2026, 6, 11, 9, 0, 0, 0, time.UTC), 1, 300))
	reads := func(d string) (files, most int) {
		for key, n := range st.Take() {
			if strings.HasSuffix(key, ".parquet") && strings.Contains(key, "/dt="+d+"/") {
				files, most = files+1, max(most, n)
			}
		}
		return files, most
	}
	cfg := Config{Store: st, From: mustDay(t, "2026-06-10"), To: mustDay(t, "2026-06-10"), Rules: compact.DefaultRules(time.UTC)}
	if _, err := Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if files, _ := reads("2026-06-10"); files != 0 {
		t.Errorf("the day just built: %d user_daily files read back, want none", files)
	}
	cfg.From, cfg.To = mustDay(t, "2026-06-11"), mustDay(t, "2026-06-11")
	st.Take()
	sum, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Windowed == nil || sum.Windowed.ActiveDays == 0 {
		t.Fatalf("the windowed stage published nothing: %+v", sum.Windowed)
	}
	if files, most := reads("2026-06-10"); files == 0 || most != 1 {
		t.Errorf("the day an earlier run built: %d user_daily files read, one %d times; want read, once", files, most)
	}
	if files, _ := reads("2026-06-11"); files != 0 {
		t.Errorf("the day just built: %d user_daily files read back, want none", files)
	}
}
