package catalog_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/littlewarehouse/warehouse/internal/catalog"
	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/rollups"
)

// athenaType derives a column's Athena type from the Parquet schema that
// parquet-go builds for the row struct — independently of rollups.Columns
// and of the catalog package — so a struct change that the catalog does not
// follow fails TestEnsureTablesFromRollups.
func athenaType(t *testing.T, f parquet.Field) string {
	var lt any
	if l := f.Type().LogicalType(); l != nil {
		lt = l.Value
	}
	switch lt.(type) {
	case *format.MapType:
		kv := f.Fields()[0].Fields()
		if len(kv) != 2 || athenaType(t, kv[0]) != "string" || athenaType(t, kv[1]) != "string" {
			t.Fatalf("%s: only map<string,string> is expected", f.Name())
		}
		return "map<string,string>"
	case *format.TimestampType:
		return "timestamp"
	case *format.DateType:
		return "date"
	case *format.StringType:
		return "string"
	}
	switch f.Type().Kind() {
	case parquet.Int64:
		return "bigint"
	case parquet.Int32:
		return "int"
	case parquet.Double:
		return "double"
	case parquet.Boolean:
		return "boolean"
	}
	t.Fatalf("%s: no Athena type for %v", f.Name(), f.Type())
	return ""
}

func parquetColumns(t *testing.T, row reflect.Type) []catalog.Column {
	var cols []catalog.Column
	for _, f := range parquet.SchemaOf(reflect.New(row).Elem().Interface()).Fields() {
		cols = append(cols, catalog.Column{Name: f.Name(), Type: athenaType(t, f)})
	}
	return cols
}

func namesTypes(cols []catalog.Column) []catalog.Column {
	out := make([]catalog.Column, len(cols))
	for i, c := range cols {
		out[i] = catalog.Column{Name: c.Name, Type: c.Type}
	}
	return out
}

func TestEnsureTablesFromRollups(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		defs := append(e.defs(), e.rawDef())
		must(t, e.cat.EnsureTables(ctx, defs))
		for _, rt := range allTables() {
			got, err := e.cat.Table(ctx, rt.Name)
			must(t, err)
			// Columns: the Parquet schema of the struct, in file order.
			if d := cmp.Diff(parquetColumns(t, rt.Row), namesTypes(got.Columns)); d != "" {
				t.Errorf("%s columns differ from the Parquet struct (-struct +catalog):\n%s", rt.Name, d)
			}
			// Comments: the doc tags.
			for i, c := range rt.Columns() {
				if i < len(got.Columns) && got.Columns[i].Comment != c.Doc {
					t.Errorf("%s.%s comment %q, want the doc %q", rt.Name, c.Name, got.Columns[i].Comment, c.Doc)
				}
			}
			keys := []catalog.Column{{Name: "dt", Type: "string", Comment: "reporting day, YYYY-MM-DD"}}
			if rt.PartitionKey() == "bucket" {
				keys = []catalog.Column{{Name: "bucket", Type: "string", Comment: "hash bucket of product and user_key, 00..15"}}
			}
			want := catalog.TableDef{
				Name: rt.Name, Comment: rt.Doc, Columns: got.Columns,
				PartitionKeys:   keys,
				Location:        e.root + "/curated/" + rt.Name + "/",
				TableType:       "EXTERNAL_TABLE",
				InputFormat:     "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
				OutputFormat:    "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
				SerDe:           "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
				SerDeParameters: map[string]string{"serialization.format": "1"},
				Parameters:      map[string]string{"classification": "parquet", "EXTERNAL": "TRUE", "parquet.compression": "ZSTD"},
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("%s definition (-want +got):\n%s", rt.Name, d)
			}
			ps, err := e.cat.Partitions(ctx, rt.Name)
			must(t, err)
			if len(ps) != 0 {
				t.Errorf("%s: new table has partitions %v", rt.Name, ps)
			}
		}
		// Ensuring again changes nothing.
		before := e.snapshot(t)
		must(t, e.cat.EnsureTables(ctx, defs))
		if d := cmp.Diff(before, e.snapshot(t)); d != "" {
			t.Errorf("second EnsureTables changed the catalog:\n%s", d)
		}
	})
}

// snapshot is the catalog's state for before/after comparisons.
func (e *env) snapshot(t *testing.T) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, d := range append(e.defs(), e.rawDef()) {
		def, err := e.cat.Table(context.Background(), d.Name)
		if errors.Is(err, catalog.ErrNoTable) {
			continue
		}
		must(t, err)
		out[d.Name] = def
		if !d.Projected() {
			ps, err := e.cat.Partitions(context.Background(), d.Name)
			must(t, err)
			out[d.Name+" partitions"] = ps
		}
	}
	if e.srv != nil {
		for _, d := range append(e.defs(), e.rawDef()) {
			if tb, ok := e.srv.Table("warehouse", d.Name); ok {
				tb.UpdateTime, tb.VersionId = 0, ""
				out[d.Name+" glue"] = tb
				out[d.Name+" glue partitions"] = e.srv.Partitions("warehouse", d.Name)
			}
		}
	}
	return out
}

func TestRawTable(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		must(t, e.cat.EnsureTables(ctx, []catalog.TableDef{e.rawDef()}))
		got, err := e.cat.Table(ctx, catalog.RawTable)
		must(t, err)
		var want []catalog.Column
		for _, c := range event.Columns() {
			want = append(want, catalog.Column{Name: c.Name, Type: c.Type, Comment: c.Doc})
		}
		if d := cmp.Diff(want, got.Columns); d != "" {
			t.Errorf("raw columns differ from event.Columns (-want +got):\n%s", d)
		}
		if d := cmp.Diff([]catalog.Column{{Name: "hour", Type: "string", Comment: "arrival hour (UTC) of the raw object, YYYY/MM/DD/HH"}}, got.PartitionKeys); d != "" {
			t.Errorf("raw partition keys (-want +got):\n%s", d)
		}
		wantParams := map[string]string{
			"classification":                "parquet",
			"EXTERNAL":                      "TRUE",
			"projection.enabled":            "true",
			"projection.hour.type":          "date",
			"projection.hour.format":        "yyyy/MM/dd/HH",
			"projection.hour.range":         "2026/01/01/00,NOW",
			"projection.hour.interval":      "1",
			"projection.hour.interval.unit": "HOURS",
			"storage.location.template":     e.root + "/raw/${hour}/",
		}
		if d := cmp.Diff(wantParams, got.Parameters); d != "" {
			t.Errorf("raw parameters (-want +got):\n%s", d)
		}
		if got.Location != e.root+"/raw/" || got.SerDe != catalog.ParquetSerDe || got.TableType != "EXTERNAL_TABLE" {
			t.Errorf("raw table: location %q serde %q type %q", got.Location, got.SerDe, got.TableType)
		}
		ps, err := e.cat.Partitions(ctx, catalog.RawTable)
		must(t, err)
		if len(ps) != 0 {
			t.Errorf("raw table has partitions: %v", ps)
		}
		err = e.cat.SetPartitions(ctx, catalog.RawTable, []catalog.Partition{{DT: "2026/01/01/00", Location: e.root + "/raw/2026/01/01/00/"}})
		if err == nil || !strings.Contains(err.Error(), "projection") {
			t.Errorf("SetPartitions on the projected raw table: %v, want an error about projection", err)
		}
	})
}

func TestSetAndSwitchPartitions(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		must(t, e.cat.EnsureTables(ctx, e.defs()))
		const table = "user_daily"
		must(t, e.cat.SetPartitions(ctx, table, e.parts(table, 250, 1)))
		got, err := e.cat.Partitions(ctx, table)
		must(t, err)
		want := map[string]catalog.Partition{}
		for _, p := range e.parts(table, 250, 1) {
			want[p.DT] = catalog.Partition{DT: p.DT, Location: p.Location, Since: t0}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("partitions (-want +got):\n%s", d)
		}
		// Other tables are untouched.
		if ps, _ := e.cat.Partitions(ctx, "events"); len(ps) != 0 {
			t.Errorf("events has %d partitions", len(ps))
		}

		// Switch the first 120 days to run 2 an hour later.
		t1 := t0.Add(time.Hour)
		e.clk.Set(t1)
		must(t, e.cat.SetPartitions(ctx, table, e.parts(table, 120, 2)))
		got, err = e.cat.Partitions(ctx, table)
		must(t, err)
		for _, p := range e.parts(table, 120, 2) {
			want[p.DT] = catalog.Partition{DT: p.DT, Location: p.Location, Since: t1}
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("after the switch (-want +got):\n%s", d)
		}

		// Setting the same locations again is a no-op: Since is kept.
		e.clk.Set(t1.Add(time.Hour))
		before := e.snapshot(t)
		must(t, e.cat.SetPartitions(ctx, table, append(e.parts(table, 120, 2), e.parts(table, 250, 1)[120:]...)))
		if d := cmp.Diff(before, e.snapshot(t)); d != "" {
			t.Errorf("re-registering the same runs changed the catalog:\n%s", d)
		}
	})
}

func TestSetPartitionsInput(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		// No table.
		err := e.cat.SetPartitions(ctx, "events", e.parts("events", 1, 1))
		if !errors.Is(err, catalog.ErrNoTable) {
			t.Errorf("SetPartitions on a missing table: %v, want ErrNoTable", err)
		}
		if _, err := e.cat.Partitions(ctx, "events"); !errors.Is(err, catalog.ErrNoTable) {
			t.Errorf("Partitions of a missing table: %v, want ErrNoTable", err)
		}
		if _, err := e.cat.Table(ctx, "events"); !errors.Is(err, catalog.ErrNoTable) {
			t.Errorf("Table of a missing table: %v, want ErrNoTable", err)
		}
		must(t, e.cat.EnsureTables(ctx, e.defs()))
		// The same day twice at two locations.
		p := e.parts("events", 1, 1)[0]
		q := p
		q.Location = catalog.RunLocation(e.root, "events", dayN(0), run(2))
		if err := e.cat.SetPartitions(ctx, "events", []catalog.Partition{p, q}); err == nil {
			t.Error("two locations for one day: no error")
		}
		// The same day twice at one location is fine; a missing slash is added.
		p.Location = strings.TrimSuffix(p.Location, "/")
		must(t, e.cat.SetPartitions(ctx, "events", []catalog.Partition{p, p}))
		ps, err := e.cat.Partitions(ctx, "events")
		must(t, err)
		if len(ps) != 1 || ps[p.DT].Location != p.Location+"/" {
			t.Errorf("partitions %v", ps)
		}
		// Nothing to do.
		must(t, e.cat.SetPartitions(ctx, "events", nil))
	})
}

func TestDropPartitions(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		must(t, e.cat.EnsureTables(ctx, e.defs()))
		must(t, e.cat.SetPartitions(ctx, "events", e.parts("events", 70, 1)))
		var drop []string
		for i := range 60 {
			drop = append(drop, dayN(i).String())
		}
		drop = append(drop, "2030-01-01") // not there: fine
		must(t, e.cat.DropPartitions(ctx, "events", drop))
		ps, err := e.cat.Partitions(ctx, "events")
		must(t, err)
		if len(ps) != 10 {
			t.Fatalf("%d partitions left, want 10", len(ps))
		}
		if _, ok := ps[dayN(60).String()]; !ok {
			t.Errorf("day 60 dropped")
		}
		if e.srv != nil {
			var sizes []int
			for _, c := range e.srv.Calls("BatchDeletePartition") {
				sizes = append(sizes, c.Entries)
			}
			if d := cmp.Diff([]int{25, 25, 11}, sizes); d != "" {
				t.Errorf("BatchDeletePartition batch sizes (-want +got):\n%s", d)
			}
		}
	})
}

// trimmed returns def without its last n columns.
func trimmed(def catalog.TableDef, n int) catalog.TableDef {
	def.Columns = def.Columns[:len(def.Columns)-n]
	return def
}

func TestDriftTrailingColumns(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		full := e.def("sessions_daily")
		must(t, e.cat.EnsureTables(ctx, []catalog.TableDef{trimmed(full, 2)}))
		must(t, e.cat.SetPartitions(ctx, full.Name, e.parts(full.Name, 150, 1)))
		before, err := e.cat.Partitions(ctx, full.Name)
		must(t, err)
		e.clk.Set(t0.Add(time.Hour))
		if e.srv != nil {
			e.srv.ResetCalls()
		}

		must(t, e.cat.EnsureTables(ctx, []catalog.TableDef{full}))
		got, err := e.cat.Table(ctx, full.Name)
		must(t, err)
		if d := cmp.Diff(full, got); d != "" {
			t.Errorf("table after adding columns (-want +got):\n%s", d)
		}
		after, err := e.cat.Partitions(ctx, full.Name)
		must(t, err)
		if d := cmp.Diff(before, after); d != "" {
			t.Errorf("partition locations or Since changed (-before +after):\n%s", d)
		}
		if e.srv != nil {
			// Every partition's schema is the table's, so Athena sees no
			// HIVE_PARTITION_SCHEMA_MISMATCH.
			tb, _ := e.srv.Table("warehouse", full.Name)
			for _, p := range e.srv.Partitions("warehouse", full.Name) {
				if d := cmp.Diff(tb.StorageDescriptor.Columns, p.StorageDescriptor.Columns); d != "" {
					t.Fatalf("partition %v columns differ from the table's:\n%s", p.Values, d)
				}
				if !strings.Contains(p.StorageDescriptor.Location, "/run=") {
					t.Fatalf("partition %v lost its location: %q", p.Values, p.StorageDescriptor.Location)
				}
			}
			// Partitions first (in batches of 100), the table last.
			var ops []string
			for _, c := range e.srv.Calls("") {
				if c.Op == "BatchUpdatePartition" || c.Op == "UpdateTable" {
					ops = append(ops, c.Op)
				}
			}
			if d := cmp.Diff([]string{"BatchUpdatePartition", "BatchUpdatePartition", "UpdateTable"}, ops); d != "" {
				t.Errorf("update order (-want +got):\n%s", d)
			}
		}
		// And again: nothing to do.
		snap := e.snapshot(t)
		must(t, e.cat.EnsureTables(ctx, []catalog.TableDef{full}))
		if d := cmp.Diff(snap, e.snapshot(t)); d != "" {
			t.Errorf("second EnsureTables changed the catalog:\n%s", d)
		}
	})
}

func TestDriftIncompatible(t *testing.T) {
	type change struct {
		name   string
		old    func(catalog.TableDef) catalog.TableDef // what the catalog holds
		expect []string                                // in the message
	}
	changes := []change{
		{"removed", func(d catalog.TableDef) catalog.TableDef {
			d.Columns = append(d.Columns, catalog.Column{Name: "legacy_score", Type: "double"})
			return d
		}, []string{"column legacy_score (double) is in the catalog but not in the definition"}},
		{"retyped", func(d catalog.TableDef) catalog.TableDef {
			d.Columns = append([]catalog.Column{}, d.Columns...)
			d.Columns[3] = catalog.Column{Name: "events", Type: "int"}
			return d
		}, []string{"column events: the catalog has type int, the definition has bigint"}},
		{"reordered", func(d catalog.TableDef) catalog.TableDef {
			d.Columns = append([]catalog.Column{}, d.Columns...)
			d.Columns[4], d.Columns[5] = d.Columns[5], d.Columns[4]
			return d
		}, []string{"different order", "(product, platform, event_name, events, sessions, users, provisional, date)"}},
		{"inserted", func(d catalog.TableDef) catalog.TableDef {
			d.Columns = append(append([]catalog.Column{}, d.Columns[:2]...), d.Columns[3:]...)
			return d
		}, []string{"column event_name (string) is new in the definition at position 3, not at the end"}},
		{"partition key", func(d catalog.TableDef) catalog.TableDef {
			d.PartitionKeys = []catalog.Column{{Name: "dt", Type: "date"}}
			return d
		}, []string{"partition keys: the catalog has (dt date), the definition has (dt string)"}},
	}
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			forEach(t, func(t *testing.T, e *env) {
				ctx := context.Background()
				def := e.def("engagement_daily")
				must(t, e.cat.EnsureTables(ctx, []catalog.TableDef{c.old(def)}))
				must(t, e.cat.SetPartitions(ctx, def.Name, e.parts(def.Name, 3, 1)))
				before := e.snapshot(t)

				// The drifted table is left alone; the others are created.
				err := e.cat.EnsureTables(ctx, []catalog.TableDef{def, e.def("user_daily")})
				var de *catalog.DriftError
				if !errors.As(err, &de) {
					t.Fatalf("EnsureTables: %v, want a *DriftError", err)
				}
				msg := err.Error()
				for _, s := range append(c.expect, "engagement_daily", "was not changed", "rollup --force --from 2026-01-01 --to 2026-01-03") {
					if !strings.Contains(msg, s) {
						t.Errorf("message lacks %q:\n%s", s, msg)
					}
				}
				if e.srv != nil && !strings.Contains(msg, "aws glue delete-table --database-name warehouse --name engagement_daily") {
					t.Errorf("message lacks the delete-table command:\n%s", msg)
				}
				if e.srv == nil && !strings.Contains(msg, "delete catalog/engagement_daily.json") {
					t.Errorf("message lacks the local migration:\n%s", msg)
				}
				t.Log(msg)
				after := e.snapshot(t)
				delete(after, "user_daily")
				delete(after, "user_daily partitions")
				delete(after, "user_daily glue")
				delete(after, "user_daily glue partitions")
				if d := cmp.Diff(before, after); d != "" {
					t.Errorf("the drifted table changed:\n%s", d)
				}
				if _, err := e.cat.Table(ctx, "user_daily"); err != nil {
					t.Errorf("the other table was not created: %v", err)
				}
			})
		})
	}
}

func TestDriftRawTable(t *testing.T) {
	forEach(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		raw := e.rawDef()
		// A trailing column is added in place.
		must(t, e.cat.EnsureTables(ctx, []catalog.TableDef{trimmed(raw, 1)}))
		must(t, e.cat.EnsureTables(ctx, []catalog.TableDef{raw}))
		got, err := e.cat.Table(ctx, raw.Name)
		must(t, err)
		if d := cmp.Diff(raw, got); d != "" {
			t.Errorf("raw table after adding a column (-want +got):\n%s", d)
		}
		// A removed column is drift; the advice needs no rebuild.
		err = e.cat.EnsureTables(ctx, []catalog.TableDef{trimmed(raw, 1)})
		var de *catalog.DriftError
		if !errors.As(err, &de) || !strings.Contains(err.Error(), "column properties (map<string,string>) is in the catalog but not in the definition") ||
			!strings.Contains(err.Error(), "next run recreates") || strings.Contains(err.Error(), "rollup --force") {
			t.Fatalf("raw drift: %v", err)
		}
	})
}

func TestCuratedLocations(t *testing.T) {
	def := catalog.Curated(rollups.Daily[0], "s3://bucket/prefix/")
	if def.Location != "s3://bucket/prefix/curated/events/" {
		t.Errorf("location %q", def.Location)
	}
	if got := catalog.RunLocation("s3://bucket/prefix", "events", dayN(0), "01ABC"); got != "s3://bucket/prefix/curated/events/dt=2026-01-01/run=01ABC/" {
		t.Errorf("RunLocation %q", got)
	}
	raw := catalog.RawTableDef("s3://bucket/prefix/firehose/events", time.Time{})
	if raw.Location != "s3://bucket/prefix/firehose/events/" ||
		raw.Parameters["storage.location.template"] != "s3://bucket/prefix/firehose/events/${hour}/" ||
		raw.Parameters["projection.hour.range"] != "2020/01/01/00,NOW" {
		t.Errorf("raw def %+v", raw)
	}
}
