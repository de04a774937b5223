package publish

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/store"
)

type listRow struct {
	ID string `parquet:"id"`
}

// writeRun writes rows into a run folder of a partition and, if commit is
// set, commits it; it returns the run's data file keys.
func writeRun(t *testing.T, st store.Store, table, part, run string, commit bool, ids ...string) []string {
	t.Helper()
	ctx := context.Background()
	rows := make([]listRow, len(ids))
	for i, id := range ids {
		rows[i] = listRow{ID: id}
	}
	files, err := Write(ctx, st, RunPrefixAt(table, part, run), rows, WriterOptions{RowGroupSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if commit {
		if err := Commit(ctx, st, &Manifest{Table: table, Partition: part, Run: run, Files: files}); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	for _, f := range files {
		keys = append(keys, f.Key)
	}
	return keys
}

// TestCurrentFilesHidesDebrisAndSupersededRuns: of two partitions, one has
// a superseded committed run (with the larger run id, so a clock-based
// choice would pick it) and a killed, uncommitted run; the other has no
// committed run at all, and a third a single committed run. Partitions
// lists all three; CurrentFiles gives only the current run of each
// partition that has one.
func TestCurrentFilesHidesDebrisAndSupersededRuns(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	writeRun(t, st, "x", "dt=2026-11-24", "01Z", true, "a", "b") // superseded
	cur24 := writeRun(t, st, "x", "dt=2026-11-24", "01A", true, "a", "b")
	writeRun(t, st, "x", "dt=2026-11-24", "01Y", false, "a", "b") // killed rebuild
	writeRun(t, st, "x", "dt=2026-11-25", "01B", false, "c")      // never committed
	cur26 := writeRun(t, st, "x", "dt=2026-11-26", "01C", true, "d")
	writeRun(t, st, "other", "dt=2026-11-24", "01D", true, "e")

	parts, err := Partitions(ctx, st, "x")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"dt=2026-11-24", "dt=2026-11-25", "dt=2026-11-26"}, parts); diff != "" {
		t.Errorf("Partitions (-want +got):\n%s", diff)
	}

	got, err := CurrentFiles(ctx, st, "x")
	if err != nil {
		t.Fatal(err)
	}
	type summary struct {
		Part, Run string
		Files     []string
	}
	var sums []summary
	for _, pf := range got {
		var keys []string
		for _, f := range pf.Manifest.Files {
			keys = append(keys, f.Key)
		}
		sums = append(sums, summary{pf.Part, pf.Manifest.Run, keys})
	}
	want := []summary{
		{"dt=2026-11-24", "01A", cur24},
		{"dt=2026-11-26", "01C", cur26},
	}
	if diff := cmp.Diff(want, sums); diff != "" {
		t.Errorf("CurrentFiles (-want +got):\n%s", diff)
	}
}

// TestCurrentFilesOfOtherPartitionKeys: partitions need not be days.
func TestCurrentFilesOfOtherPartitionKeys(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	b0 := writeRun(t, st, "users", "bucket=00", "01A", true, "u1")
	b7 := writeRun(t, st, "users", "bucket=07", "01B", true, "u2")
	got, err := CurrentFiles(ctx, st, "users")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Part != "bucket=00" || got[1].Part != "bucket=07" ||
		got[0].Manifest.Files[0].Key != b0[0] || got[1].Manifest.Files[0].Key != b7[0] {
		t.Errorf("CurrentFiles = %+v", got)
	}
}

// TestCurrentFilesOfAMissingTable: no folder is no partitions, not an error.
func TestCurrentFilesOfAMissingTable(t *testing.T) {
	got, err := CurrentFiles(context.Background(), store.NewMem(), "nope")
	if err != nil || len(got) != 0 {
		t.Errorf("CurrentFiles = %v, %v; want nothing", got, err)
	}
}
