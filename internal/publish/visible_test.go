package publish

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/store"
)

// build commits run (fingerprint fp) into partition part of each of tables,
// as one build of a day does, one row each.
func build(t *testing.T, st store.Store, part, run, fp string, tables ...string) {
	t.Helper()
	ctx := context.Background()
	for _, table := range tables {
		files, err := Write(ctx, st, RunPrefixAt(table, part, run), []listRow{{ID: run}}, WriterOptions{RowGroupSize: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		if err := Commit(ctx, st, &Manifest{Table: table, Partition: part, Run: run, Fingerprint: fp, Files: files}); err != nil {
			t.Fatal(err)
		}
	}
}

// runsOf says which run each partition of each table in s resolved to.
func runsOf(s Snapshot) map[string]map[string]string {
	out := map[string]map[string]string{}
	for table, pfs := range s {
		out[table] = map[string]string{}
		for _, pf := range pfs {
			out[table][pf.Part] = pf.Manifest.Run
		}
	}
	return out
}

// TestVisibleKeepsADayAtOneBuild: a run that failed between the commits of
// a day leaves its tables at two builds; readers see the last complete
// build in all of them (issue 29: events, engagement_daily and user_daily
// of a day were new while sessions_daily and data_quality_daily were old).
func TestVisibleKeepsADayAtOneBuild(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	all := DayTables()
	if all[len(all)-1] != "quarantine" || len(all) != 7 {
		t.Fatalf("DayTables() = %v; the test expects quarantine last of 7", all)
	}
	const d24, d25, d26, d27 = "dt=2026-11-24", "dt=2026-11-25", "dt=2026-11-26", "dt=2026-11-27"
	// 24th: build A complete, then build B died after three commits.
	build(t, st, d24, "01A", "fpA", all...)
	build(t, st, d24, "01B", "fpB", all[:3]...)
	// 25th: a first build died after two commits: no complete build.
	build(t, st, d25, "01C", "fpC", all[:2]...)
	// 26th: build D complete; a rebuild E from the same inputs replaced
	// its events and then died, and D's events were cleaned up.
	build(t, st, d26, "01D", "fpD", all...)
	build(t, st, d26, "01E", "fpD", all[0])
	if err := CleanupAt(ctx, st, all[0], d26, "01E", 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	// 27th: build H complete, but its events are gone and another build's
	// are there: after resolving again, that table's current run.
	build(t, st, d27, "01H", "fpH", all...)
	build(t, st, d27, "01I", "fpI", all[0])
	if err := CleanupAt(ctx, st, all[0], d27, "01I", 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	// A windowed table is not part of a day's build: its current run.
	build(t, st, d24, "01F", "", "active_users_daily")
	build(t, st, d24, "01G", "", "active_users_daily")

	s, err := Visible(ctx, st, append([]string{"active_users_daily"}, all...)...)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{"active_users_daily": {d24: "01G"}}
	for i, table := range all {
		want[table] = map[string]string{d24: "01A", d26: "01D", d27: "01H"}
		if i < 2 {
			want[table][d25] = "01C" // no complete build: what there is
		}
	}
	want[all[0]][d26] = "01E" // D's events are gone; E's are the same data
	want[all[0]][d27] = "01I"
	if diff := cmp.Diff(want, runsOf(s)); diff != "" {
		t.Errorf("Visible (-want +got):\n%s", diff)
	}
	// The job's view is each table's current run.
	cur, err := CurrentFiles(ctx, st, "events")
	if err != nil {
		t.Fatal(err)
	}
	if len(cur) != 4 || cur[0].Manifest.Run != "01B" {
		t.Errorf("CurrentFiles(events) = %+v; want 01B current on the 24th", cur)
	}
	// Keys are the chosen runs' files, partition by partition.
	keys := s.Keys("sessions_daily")
	if len(keys) != 3 || keys[0] != RunPrefixAt("sessions_daily", d24, "01A")+"part-00000.zstd.parquet" {
		t.Errorf("Keys(sessions_daily) = %q", keys)
	}
	// Asked for one day table alone, it is still resolved by the build.
	one, err := Visible(ctx, st, "user_daily")
	if err != nil {
		t.Fatal(err)
	}
	if got := runsOf(one)["user_daily"][d24]; got != "01A" {
		t.Errorf("Visible(user_daily) on the 24th: %s; want 01A", got)
	}
}
