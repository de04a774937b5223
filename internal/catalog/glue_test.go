package catalog_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/catalog"
	"github.com/littlewarehouse/warehouse/internal/catalog/gluetest"
	"github.com/littlewarehouse/warehouse/rollups"
)

const db = "warehouse"

func sizes(calls []gluetest.Call) []int {
	var out []int
	for _, c := range calls {
		out = append(out, c.Entries)
	}
	return out
}

func vals(dts ...string) [][]string {
	var out [][]string
	for _, d := range dts {
		out = append(out, []string{d})
	}
	return out
}

// TestGlueTablesInFake checks the tables as Glue stores them (the fake's own
// state, not read back through the catalog package).
func TestGlueTablesInFake(t *testing.T) {
	e := newGlue(t)
	ctx := context.Background()
	if e.srv.HasDatabase(db) {
		t.Fatal("database exists before EnsureTables")
	}
	must(t, e.cat.EnsureTables(ctx, append(e.defs(), e.rawDef())))
	if !e.srv.HasDatabase(db) {
		t.Fatal("database not created")
	}
	if n := e.srv.Count("CreateDatabase"); n != 1 {
		t.Errorf("CreateDatabase called %d times", n)
	}
	for _, rt := range allTables() {
		tb, ok := e.srv.Table(db, rt.Name)
		if !ok {
			t.Fatalf("no table %s", rt.Name)
		}
		var cols []gluetest.Column
		for _, c := range rt.Columns() {
			cols = append(cols, gluetest.Column{Name: c.Name, Type: c.Type, Comment: c.Doc})
		}
		keys := []gluetest.Column{{Name: "dt", Type: "string", Comment: "reporting day, YYYY-MM-DD"}}
		if rt.PartitionKey() == "bucket" {
			keys = []gluetest.Column{{Name: "bucket", Type: "string", Comment: "hash bucket of product and user_key, 00..15"}}
		}
		want := gluetest.TableInput{
			Name: rt.Name, Description: rt.Doc, TableType: "EXTERNAL_TABLE",
			Parameters:    map[string]string{"classification": "parquet", "EXTERNAL": "TRUE", "parquet.compression": "ZSTD"},
			PartitionKeys: keys,
			StorageDescriptor: &gluetest.StorageDescriptor{
				Columns:      cols,
				Location:     "s3://test-bucket/wh/curated/" + rt.Name + "/",
				InputFormat:  "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
				OutputFormat: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
				SerdeInfo: &gluetest.SerDeInfo{
					SerializationLibrary: "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
					Parameters:           map[string]string{"serialization.format": "1"},
				},
			},
		}
		if d := cmp.Diff(want, tb.TableInput); d != "" {
			t.Errorf("glue table %s (-want +got):\n%s", rt.Name, d)
		}
	}
	raw, ok := e.srv.Table(db, catalog.RawTable)
	if !ok || raw.Parameters["projection.enabled"] != "true" || len(e.srv.Partitions(db, catalog.RawTable)) != 0 {
		t.Errorf("raw table %+v", raw)
	}

	// A second run reads and changes nothing.
	e.srv.ResetCalls()
	must(t, e.cat.EnsureTables(ctx, append(e.defs(), e.rawDef())))
	for _, c := range e.srv.Calls("") {
		if c.Op != "GetTable" {
			t.Errorf("second EnsureTables called %s", c.Op)
		}
	}
}

func TestGlueBatches(t *testing.T) {
	e := newGlue(t)
	ctx := context.Background()
	must(t, e.cat.EnsureTables(ctx, e.defs()))
	e.srv.ResetCalls()
	must(t, e.cat.SetPartitions(ctx, "events", e.parts("events", 250, 1)))
	if d := cmp.Diff([]int{100, 100, 50}, sizes(e.srv.Calls("BatchCreatePartition"))); d != "" {
		t.Errorf("BatchCreatePartition sizes (-want +got):\n%s", d)
	}
	if n := e.srv.Count("BatchUpdatePartition"); n != 0 {
		t.Errorf("%d BatchUpdatePartition calls for new partitions", n)
	}
	if got := len(e.srv.Partitions(db, "events")); got != 250 {
		t.Errorf("%d partitions in Glue", got)
	}
	// Partitions are created with the table's storage descriptor and their own location.
	tb, _ := e.srv.Table(db, "events")
	p := e.srv.Partitions(db, "events")[7]
	wantSD := *tb.StorageDescriptor
	wantSD.Location = catalog.RunLocation(e.root, "events", dayN(7), run(1))
	if d := cmp.Diff(&wantSD, p.StorageDescriptor); d != "" {
		t.Errorf("partition storage descriptor (-want +got):\n%s", d)
	}
	if p.Parameters[catalog.SinceParameter] != "2026-11-24T03:00:00Z" {
		t.Errorf("partition parameters %v", p.Parameters)
	}

	// Switching 150 uses BatchUpdatePartition only, in batches of ≤ 100.
	e.srv.ResetCalls()
	must(t, e.cat.SetPartitions(ctx, "events", e.parts("events", 150, 2)))
	if d := cmp.Diff([]int{100, 50}, sizes(e.srv.Calls("BatchUpdatePartition"))); d != "" {
		t.Errorf("BatchUpdatePartition sizes (-want +got):\n%s", d)
	}
	if n := e.srv.Count("BatchCreatePartition"); n != 0 {
		t.Errorf("%d BatchCreatePartition calls for a switch", n)
	}
	// A mix: 10 switched, 5 new, the rest unchanged.
	e.srv.ResetCalls()
	mix := append(e.parts("events", 10, 3), e.parts("events", 255, 1)[250:]...)
	mix = append(mix, e.parts("events", 150, 2)[10:]...)
	must(t, e.cat.SetPartitions(ctx, "events", mix))
	if a, b := sizes(e.srv.Calls("BatchUpdatePartition")), sizes(e.srv.Calls("BatchCreatePartition")); !slices.Equal(a, []int{10}) || !slices.Equal(b, []int{5}) {
		t.Errorf("mix: updates %v creates %v, want [10] and [5]", a, b)
	}
}

func TestGluePagination(t *testing.T) {
	e := newGlue(t)
	ctx := context.Background()
	must(t, e.cat.EnsureTables(ctx, e.defs()))
	must(t, e.cat.SetPartitions(ctx, "events", e.parts("events", 2500, 1)))
	if n := e.srv.Count("BatchCreatePartition"); n != 25 {
		t.Errorf("%d BatchCreatePartition calls for 2500 partitions, want 25", n)
	}
	e.srv.ResetCalls()
	ps, err := e.cat.Partitions(ctx, "events")
	must(t, err)
	if len(ps) != 2500 {
		t.Fatalf("%d partitions", len(ps))
	}
	if n := e.srv.Count("GetPartitions"); n != 3 {
		t.Errorf("%d GetPartitions pages for 2500 partitions, want 3 (pages of 1000)", n)
	}
	// A server that returns short pages is followed to the end.
	e.srv.SetPageSize(7)
	e.srv.ResetCalls()
	ps, err = e.cat.Partitions(ctx, "events")
	must(t, err)
	// 358 pages of 7; a loaded machine (make test on 2 cores) can make the
	// SDK retry a call whose response it lost, which the server counts too.
	if n := e.srv.Count("GetPartitions"); len(ps) != 2500 || n < 358 || n > 358+8 {
		t.Errorf("short pages: %d partitions in %d calls", len(ps), e.srv.Count("GetPartitions"))
	}
}

func TestGluePartialFailures(t *testing.T) {
	e := newGlue(t)
	ctx := context.Background()
	must(t, e.cat.EnsureTables(ctx, e.defs()))
	e.srv.ResetCalls()
	failed := vals("2026-01-02", "2026-03-15", "2026-08-01")
	e.srv.FailEntries("BatchCreatePartition", "InternalServiceException", failed...)
	must(t, e.cat.SetPartitions(ctx, "events", e.parts("events", 250, 1)))
	calls := e.srv.Calls("BatchCreatePartition")
	if d := cmp.Diff([]int{100, 100, 50, 3}, sizes(calls)); d != "" {
		t.Errorf("BatchCreatePartition sizes (-want +got):\n%s", d)
	}
	if d := cmp.Diff(failed, calls[3].Values); d != "" {
		t.Errorf("retried entries (-want +got):\n%s", d)
	}
	if len(e.srv.Partitions(db, "events")) != 250 {
		t.Errorf("not all partitions created")
	}
	if len(*e.sleeps) != 1 {
		t.Errorf("backoff pauses %v, want one", *e.sleeps)
	}

	// The same for a switch.
	e.srv.ResetCalls()
	e.srv.FailEntries("BatchUpdatePartition", "ConcurrentModificationException", vals("2026-01-01", "2026-05-05")...)
	must(t, e.cat.SetPartitions(ctx, "events", e.parts("events", 250, 2)))
	calls = e.srv.Calls("BatchUpdatePartition")
	if d := cmp.Diff([]int{100, 100, 50, 2}, sizes(calls)); d != "" {
		t.Errorf("BatchUpdatePartition sizes (-want +got):\n%s", d)
	}
	if d := cmp.Diff(vals("2026-01-01", "2026-05-05"), calls[3].Values); d != "" {
		t.Errorf("retried entries (-want +got):\n%s", d)
	}
	ps, err := e.cat.Partitions(ctx, "events")
	must(t, err)
	for dt, p := range ps {
		if !strings.Contains(p.Location, "/run="+run(2)+"/") {
			t.Errorf("dt=%s still at %s", dt, p.Location)
		}
	}
}

func TestGlueFailuresThatStay(t *testing.T) {
	e := newGlue(t)
	ctx := context.Background()
	must(t, e.cat.EnsureTables(ctx, e.defs()))
	must(t, e.cat.SetPartitions(ctx, "events", e.parts("events", 5, 1)))

	// An entry that keeps failing is tried EntryAttempts (5) times, with
	// growing pauses, and named in the error; the others are switched.
	var stuck [][]string
	for range 7 {
		stuck = append(stuck, []string{"2026-01-03"})
	}
	e.srv.FailEntries("BatchUpdatePartition", "InternalServiceException", stuck...)
	*e.sleeps = nil
	e.srv.ResetCalls()
	err := e.cat.SetPartitions(ctx, "events", e.parts("events", 5, 2))
	if err == nil || !strings.Contains(err.Error(), "dt=2026-01-03: InternalServiceException") || !strings.Contains(err.Error(), "after 5 tries") {
		t.Fatalf("SetPartitions: %v", err)
	}
	if d := cmp.Diff([]int{5, 1, 1, 1, 1}, sizes(e.srv.Calls("BatchUpdatePartition"))); d != "" {
		t.Errorf("BatchUpdatePartition sizes (-want +got):\n%s", d)
	}
	if len(*e.sleeps) != 4 {
		t.Errorf("pauses %v, want 4", *e.sleeps)
	}
	ps, _ := e.cat.Partitions(ctx, "events")
	for dt, p := range ps {
		want := run(2)
		if dt == "2026-01-03" {
			want = run(1) // still the old, complete run
		}
		if !strings.Contains(p.Location, want) {
			t.Errorf("dt=%s at %s, want run %s", dt, p.Location, want)
		}
	}
	// A rerun converges (the entry fails twice more, then succeeds).
	e.srv.ResetCalls()
	must(t, e.cat.SetPartitions(ctx, "events", e.parts("events", 5, 2)))
	if d := cmp.Diff([]int{1, 1, 1}, sizes(e.srv.Calls("BatchUpdatePartition"))); d != "" {
		t.Errorf("rerun BatchUpdatePartition sizes (-want +got):\n%s", d)
	}
	ps, _ = e.cat.Partitions(ctx, "events")
	if !strings.Contains(ps["2026-01-03"].Location, run(2)) {
		t.Errorf("rerun did not converge: %v", ps["2026-01-03"])
	}

	// A permanent error is not retried.
	e.srv.ResetCalls()
	e.srv.FailEntries("BatchUpdatePartition", "InvalidInputException", []string{"2026-01-04"})
	err = e.cat.SetPartitions(ctx, "events", e.parts("events", 5, 3))
	if err == nil || !strings.Contains(err.Error(), "dt=2026-01-04: InvalidInputException") {
		t.Fatalf("SetPartitions: %v", err)
	}
	if n := e.srv.Count("BatchUpdatePartition"); n != 1 {
		t.Errorf("%d calls, want 1 (no retry of a permanent error)", n)
	}
}

func TestGlueWholeCallFailures(t *testing.T) {
	e := newGlue(t)
	ctx := context.Background()
	must(t, e.cat.EnsureTables(ctx, e.defs()))
	// Throttling is retried by the SDK.
	e.srv.ResetCalls()
	e.srv.Throttle("BatchCreatePartition", 2)
	e.srv.Throttle("GetPartitions", 1)
	must(t, e.cat.SetPartitions(ctx, "events", e.parts("events", 250, 1)))
	if n := e.srv.Count("BatchCreatePartition"); n != 5 {
		t.Errorf("%d BatchCreatePartition calls, want 3 + 2 throttled", n)
	}
	if len(e.srv.Partitions(db, "events")) != 250 {
		t.Errorf("not all partitions created")
	}
	// A call that fails for good leaves each partition at its old or its
	// new location; the rerun converges.
	e.srv.ResetCalls()
	e.srv.FailCalls("BatchUpdatePartition", 6, "InternalServiceException") // beyond the client's 5 attempts
	err := e.cat.SetPartitions(ctx, "events", e.parts("events", 250, 2))
	if err == nil || !strings.Contains(err.Error(), "BatchUpdatePartition") {
		t.Fatalf("SetPartitions: %v", err)
	}
	ps, _ := e.cat.Partitions(ctx, "events")
	for dt, p := range ps {
		if !strings.Contains(p.Location, run(1)) && !strings.Contains(p.Location, run(2)) {
			t.Errorf("dt=%s at %s", dt, p.Location)
		}
	}
	must(t, e.cat.SetPartitions(ctx, "events", e.parts("events", 250, 2)))
	ps, _ = e.cat.Partitions(ctx, "events")
	for dt, p := range ps {
		if !strings.Contains(p.Location, run(2)) {
			t.Errorf("after rerun dt=%s at %s", dt, p.Location)
		}
	}
}

func TestGlueRaces(t *testing.T) {
	e := newGlue(t)
	ctx := context.Background()
	// Database created by someone else between GetDatabase and CreateDatabase.
	e.srv.Before("CreateDatabase", func() {
		e.srv.PutTable(db, gluetest.TableInput{Name: "unrelated"})
	})
	// Table created by someone else (an older definition, one column short)
	// between GetTable and CreateTable: AlreadyExists → compare and update.
	old := trimmed(e.def("events"), 1)
	e.srv.Before("CreateTable", func() {
		e.srv.PutTable(db, gluetest.TableInput{
			Name: old.Name, TableType: "EXTERNAL_TABLE",
			PartitionKeys: []gluetest.Column{{Name: "dt", Type: "string"}},
			StorageDescriptor: &gluetest.StorageDescriptor{
				Columns: func() (cs []gluetest.Column) {
					for _, c := range old.Columns {
						cs = append(cs, gluetest.Column{Name: c.Name, Type: c.Type})
					}
					return cs
				}(),
				Location: old.Location,
			},
		})
	})
	must(t, e.cat.EnsureTables(ctx, []catalog.TableDef{e.def("events")}))
	got, err := e.cat.Table(ctx, "events")
	must(t, err)
	if d := cmp.Diff(e.def("events"), got); d != "" {
		t.Errorf("events after the create race (-want +got):\n%s", d)
	}
	if n := e.srv.Count("UpdateTable"); n != 1 {
		t.Errorf("%d UpdateTable calls, want 1", n)
	}

	// A partition created by someone else after our listing:
	// AlreadyExists → switched with BatchUpdatePartition.
	must(t, e.cat.SetPartitions(ctx, "events", e.parts("events", 3, 1)))
	e.srv.ResetCalls()
	e.srv.Before("BatchCreatePartition", func() {
		must(t, e.srv.PutPartition(db, "events", gluetest.PartitionInput{Values: []string{"2026-01-05"},
			StorageDescriptor: &gluetest.StorageDescriptor{Location: "s3://elsewhere/"}}))
	})
	must(t, e.cat.SetPartitions(ctx, "events", e.parts("events", 6, 1)))
	if d := cmp.Diff([]int{3}, sizes(e.srv.Calls("BatchCreatePartition"))); d != "" {
		t.Errorf("creates (-want +got):\n%s", d)
	}
	if c := e.srv.Calls("BatchUpdatePartition"); len(c) != 1 || !slices.Equal(c[0].Values[0], []string{"2026-01-05"}) || c[0].Entries != 1 {
		t.Errorf("updates %+v, want one for 2026-01-05", c)
	}

	// A partition deleted by someone else after our listing:
	// EntityNotFound on update → created.
	e.srv.ResetCalls()
	e.srv.Before("BatchUpdatePartition", func() { e.srv.DeletePartition(db, "events", []string{"2026-01-02"}) })
	must(t, e.cat.SetPartitions(ctx, "events", e.parts("events", 6, 2)))
	if c := e.srv.Calls("BatchCreatePartition"); len(c) != 1 || c[0].Entries != 1 || c[0].Values[0][0] != "2026-01-02" {
		t.Errorf("creates %+v, want one for 2026-01-02", c)
	}
	ps, err := e.cat.Partitions(ctx, "events")
	must(t, err)
	for i := range 6 {
		if p := ps[dayN(i).String()]; p.Location != catalog.RunLocation(e.root, "events", dayN(i), run(2)) {
			t.Errorf("day %d at %q", i, p.Location)
		}
	}

	// The table deleted under us.
	e.srv.Before("GetTable", func() {
		_, err := e.srv.Client().DeleteTable(ctx, &glue.DeleteTableInput{DatabaseName: aws.String(db), Name: aws.String("events")})
		must(t, err)
	})
	err = e.cat.SetPartitions(ctx, "events", e.parts("events", 7, 3))
	if !errors.Is(err, catalog.ErrNoTable) {
		t.Errorf("SetPartitions without the table: %v, want ErrNoTable", err)
	}
}

func TestGlueNeedsS3(t *testing.T) {
	e := newGlue(t)
	ctx := context.Background()
	def := catalog.Curated(rollups.Daily[0], "file:///data")
	if err := e.cat.EnsureTables(ctx, []catalog.TableDef{def}); err == nil || !strings.Contains(err.Error(), "--catalog local") {
		t.Errorf("EnsureTables with a file:// location: %v", err)
	}
	must(t, e.cat.EnsureTables(ctx, e.defs()))
	err := e.cat.SetPartitions(ctx, "events", []catalog.Partition{{DT: "2026-01-01", Location: "file:///data/curated/events/dt=2026-01-01/run=1/"}})
	if err == nil || !strings.Contains(err.Error(), "s3://") {
		t.Errorf("SetPartitions with a file:// location: %v", err)
	}
}

func TestGlueDriftWithManyPartitions(t *testing.T) {
	e := newGlue(t)
	ctx := context.Background()
	full := e.def("user_daily")
	must(t, e.cat.EnsureTables(ctx, []catalog.TableDef{trimmed(full, 3)}))
	must(t, e.cat.SetPartitions(ctx, full.Name, e.parts(full.Name, 230, 1)))
	e.srv.ResetCalls()
	// One partition update fails once: retried alone.
	e.srv.FailEntries("BatchUpdatePartition", "InternalServiceException", []string{"2026-02-01"})
	must(t, e.cat.EnsureTables(ctx, []catalog.TableDef{full}))
	if d := cmp.Diff([]int{100, 100, 30, 1}, sizes(e.srv.Calls("BatchUpdatePartition"))); d != "" {
		t.Errorf("BatchUpdatePartition sizes (-want +got):\n%s", d)
	}
	tb, _ := e.srv.Table(db, full.Name)
	if len(tb.StorageDescriptor.Columns) != len(full.Columns) {
		t.Errorf("table has %d columns", len(tb.StorageDescriptor.Columns))
	}
	for _, p := range e.srv.Partitions(db, full.Name) {
		if len(p.StorageDescriptor.Columns) != len(full.Columns) {
			t.Fatalf("partition %v has %d columns", p.Values, len(p.StorageDescriptor.Columns))
		}
	}

	// If the partition rewrite fails, the table is not updated, so the
	// next run sees the difference and finishes the job.
	full2 := full
	full2.Columns = append(append([]catalog.Column{}, full.Columns...), catalog.Column{Name: "extra", Type: "bigint"})
	e.srv.FailCalls("BatchUpdatePartition", 6, "InternalServiceException")
	if err := e.cat.EnsureTables(ctx, []catalog.TableDef{full2}); err == nil {
		t.Fatal("EnsureTables succeeded although partitions could not be updated")
	}
	tb, _ = e.srv.Table(db, full.Name)
	if len(tb.StorageDescriptor.Columns) != len(full.Columns) {
		t.Errorf("table updated before its partitions")
	}
	must(t, e.cat.EnsureTables(ctx, []catalog.TableDef{full2}))
	for _, p := range e.srv.Partitions(db, full.Name) {
		if len(p.StorageDescriptor.Columns) != len(full2.Columns) {
			t.Fatalf("partition %v has %d columns", p.Values, len(p.StorageDescriptor.Columns))
		}
	}
}

func isolateAWS(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake-secret")
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL",
		"AWS_ENDPOINT_URL_GLUE", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func TestOpenGlue(t *testing.T) {
	isolateAWS(t)
	ctx := context.Background()
	if _, err := catalog.OpenGlue(ctx, catalog.GlueOptions{}); err == nil || !strings.Contains(err.Error(), "no AWS region") {
		t.Errorf("OpenGlue without a region: %v", err)
	}
	srv := gluetest.NewT(t)
	// With an endpoint, the region defaults to us-east-1.
	g, err := catalog.OpenGlue(ctx, catalog.GlueOptions{Endpoint: srv.URL, Database: "analytics"})
	must(t, err)
	if g.String() != "glue database analytics" {
		t.Errorf("String() = %q", g.String())
	}
	def := catalog.Curated(rollups.Daily[0], "s3://b/p")
	must(t, g.EnsureTables(ctx, []catalog.TableDef{def}))
	if _, ok := srv.Table("analytics", "events"); !ok {
		t.Error("table not created in database analytics")
	}
	// AWS_ENDPOINT_URL_GLUE is honoured too.
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ENDPOINT_URL_GLUE", srv.URL)
	g, err = catalog.OpenGlue(ctx, catalog.GlueOptions{})
	must(t, err)
	must(t, g.EnsureTables(ctx, []catalog.TableDef{def}))
	if _, ok := srv.Table("warehouse", "events"); !ok {
		t.Error("table not created in the default database")
	}
}
