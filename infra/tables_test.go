package infra

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/littlewarehouse/warehouse/internal/catalog"
	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/rollups"
)

// resolve renders a template value as a string for comparisons: literal
// strings as they are, Fn::Sub with the stack's names replaced by
// placeholders (BUCKET, DB, REGION, ACCOUNT, STACK, WORKGROUP; ${!x} as
// ${x}), Ref and GetAtt as REF:<id> and GETATT:<id>.<attr>.
func resolve(t *testing.T, v interface{}) string {
	t.Helper()
	switch n := v.(type) {
	case string:
		return n
	case map[string]interface{}:
		if s, ok := n["Fn::Sub"].(string); ok {
			return strings.NewReplacer(
				"${AWS::Partition}", "aws", "${AWS::Region}", "REGION", "${AWS::AccountId}", "ACCOUNT",
				"${AWS::StackName}", "STACK",
				"${"+idBucket+"}", "BUCKET", "${"+idDatabase+"}", "DB", "${"+idWorkGroup+"}", "WORKGROUP",
				"${!", "${",
			).Replace(s)
		}
		if id, ok := n["Ref"].(string); ok {
			return "REF:" + id
		}
		if a, ok := n["Fn::GetAtt"].([]interface{}); ok {
			return "GETATT:" + a[0].(string) + "." + a[1].(string)
		}
	}
	t.Fatalf("cannot resolve %#v", v)
	return ""
}

// tableDef reads the Glue table resource id of tmpl back into a
// catalog.TableDef, with the bucket as BUCKET.
func tableDef(t *testing.T, tmpl map[string]interface{}, id string) catalog.TableDef {
	t.Helper()
	p := props(t, tmpl, id, "AWS::Glue::Table")
	if p["DatabaseName"].(map[string]interface{})["Ref"] != idDatabase {
		t.Errorf("%s: not in the stack's database", id)
	}
	in := p["TableInput"].(map[string]interface{})
	sd := in["StorageDescriptor"].(map[string]interface{})
	cols := func(v interface{}) []catalog.Column {
		var out []catalog.Column
		for _, c := range v.([]interface{}) {
			c := c.(map[string]interface{})
			col := catalog.Column{Name: c["Name"].(string), Type: c["Type"].(string)}
			if s, ok := c["Comment"].(string); ok {
				col.Comment = s
			}
			out = append(out, col)
		}
		return out
	}
	strs := func(v interface{}) map[string]string {
		out := map[string]string{}
		for k, x := range v.(map[string]interface{}) {
			out[k] = resolve(t, x)
		}
		return out
	}
	serde := sd["SerdeInfo"].(map[string]interface{})
	return catalog.TableDef{
		Name: in["Name"].(string), Comment: in["Description"].(string),
		Columns: cols(sd["Columns"]), PartitionKeys: cols(in["PartitionKeys"]),
		Location: resolve(t, sd["Location"]), TableType: in["TableType"].(string),
		InputFormat: sd["InputFormat"].(string), OutputFormat: sd["OutputFormat"].(string),
		SerDe: serde["SerializationLibrary"].(string), SerDeParameters: strs(serde["Parameters"]),
		Parameters: strs(in["Parameters"]),
	}
}

// firehoseSchema returns the Glue table Firehose converts records with: the
// table resource its SchemaConfiguration names. Firehose has no column list
// of its own; these are its conversion columns.
func firehoseSchema(t *testing.T, tmpl map[string]interface{}) catalog.TableDef {
	t.Helper()
	conv := at(t, props(t, tmpl, idStream, "AWS::KinesisFirehose::DeliveryStream"),
		"ExtendedS3DestinationConfiguration", "DataFormatConversionConfiguration").(map[string]interface{})
	if conv["Enabled"] != true {
		t.Fatal("Firehose record format conversion is off")
	}
	sc := conv["SchemaConfiguration"].(map[string]interface{})
	if !cmp.Equal(sc["DatabaseName"], ref(idDatabase)) {
		t.Errorf("Firehose schema database is %v, want the stack's", sc["DatabaseName"])
	}
	if sc["VersionId"] != "LATEST" {
		t.Errorf("Firehose schema VersionId is %v: a pinned version would not follow the table", sc["VersionId"])
	}
	id, ok := sc["TableName"].(map[string]interface{})["Ref"].(string)
	if !ok {
		t.Fatalf("Firehose schema TableName %v is not a reference to a table of the stack", sc["TableName"])
	}
	return tableDef(t, tmpl, id)
}

func rawColumns(cols []event.Column) []catalog.Column {
	var out []catalog.Column
	for _, c := range cols {
		out = append(out, catalog.Column{Name: c.Name, Type: c.Type, Comment: c.Doc})
	}
	return out
}

// TestFirehoseConvertsWithTheEventColumns: the conversion schema is the
// raw Glue table, whose columns are event.Columns(), and the raw table is
// exactly the one the rollup job registers (catalog.RawTableDef), so
// CloudFormation and the job never fight over it.
func TestFirehoseConvertsWithTheEventColumns(t *testing.T) {
	tmpl := committedTree(t)
	got := firehoseSchema(t, tmpl)
	if diff := cmp.Diff(rawColumns(event.Columns()), got.Columns); diff != "" {
		t.Errorf("Firehose conversion columns differ from event.Columns() (-want +got):\n%s", diff)
	}
	want := catalog.RawTableDef("s3://BUCKET/raw/", time.Time{})
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("raw table differs from catalog.RawTableDef (-want +got):\n%s", diff)
	}
	// The projection the brief and docs/design.md §The raw event ask for, spelled out.
	for k, v := range map[string]string{
		"projection.enabled":            "true",
		"projection.hour.type":          "date",
		"projection.hour.format":        "yyyy/MM/dd/HH",
		"projection.hour.interval":      "1",
		"projection.hour.interval.unit": "HOURS",
		"storage.location.template":     "s3://BUCKET/raw/${hour}/",
	} {
		if got.Parameters[k] != v {
			t.Errorf("raw table %s = %q, want %q", k, got.Parameters[k], v)
		}
	}
	if !cmp.Equal(got.PartitionKeys, []catalog.Column{{Name: "hour", Type: "string", Comment: got.PartitionKeys[0].Comment}}) {
		t.Errorf("raw partition keys %v, want hour string", got.PartitionKeys)
	}
}

func TestFirehoseDelivery(t *testing.T) {
	tmpl := committedTree(t)
	s3 := at(t, props(t, tmpl, idStream, "AWS::KinesisFirehose::DeliveryStream"), "ExtendedS3DestinationConfiguration").(map[string]interface{})
	for _, c := range []struct {
		path []string
		want interface{}
	}{
		{[]string{"Prefix"}, "raw/!{timestamp:yyyy/MM/dd/HH}/"},
		{[]string{"ErrorOutputPrefix"}, "raw-errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/"},
		{[]string{"BufferingHints", "SizeInMBs"}, "128"},
		{[]string{"BufferingHints", "IntervalInSeconds"}, "900"},
		{[]string{"CompressionFormat"}, "UNCOMPRESSED"},
		{[]string{"BucketARN"}, "GETATT:DataBucket.Arn"},
		{[]string{"CloudWatchLoggingOptions", "Enabled"}, "true"},
		{[]string{"CloudWatchLoggingOptions", "LogGroupName"}, "REF:" + idFirehoseLogGroup},
		{[]string{"DataFormatConversionConfiguration", "OutputFormatConfiguration", "Serializer", "ParquetSerDe", "Compression"}, "SNAPPY"},
	} {
		v := at(t, s3, c.path...)
		got := fmt.Sprint(v)
		if m, ok := v.(map[string]interface{}); ok {
			got = resolve(t, m)
		}
		if got != c.want {
			t.Errorf("%s = %s, want %s", strings.Join(c.path, "."), got, c.want)
		}
	}
	de := at(t, s3, "DataFormatConversionConfiguration", "InputFormatConfiguration", "Deserializer").(map[string]interface{})
	if _, ok := de["OpenXJsonSerDe"]; !ok || len(de) != 1 {
		t.Errorf("Firehose input deserializer is %v, want the OpenX JSON SerDe (it reads yyyy-MM-ddTHH:mm:ss.SSSZ)", de)
	}
}

// TestCuratedTablesMatchRollups: every curated table of rollups is in the
// template with its columns (names, Athena types, docs), the dt partition
// key and the Parquet SerDe, exactly as the job registers it; and the
// template has no other Glue tables.
func TestCuratedTablesMatchRollups(t *testing.T) {
	tmpl := committedTree(t)
	tables := map[string]bool{TableID(catalog.RawTable): true}
	for _, rt := range rollups.All() {
		id := TableID(rt.Name)
		tables[id] = true
		got := tableDef(t, tmpl, id)
		var cols []catalog.Column
		for _, c := range rt.Columns() {
			cols = append(cols, catalog.Column{Name: c.Name, Type: c.Type, Comment: c.Doc})
		}
		if diff := cmp.Diff(cols, got.Columns); diff != "" {
			t.Errorf("%s: columns differ from rollups (-want +got):\n%s", rt.Name, diff)
		}
		if len(got.PartitionKeys) != 1 || got.PartitionKeys[0].Name != rt.PartitionKey() || got.PartitionKeys[0].Type != "string" {
			t.Errorf("%s: partition keys %v, want %s string", rt.Name, got.PartitionKeys, rt.PartitionKey())
		}
		if got.SerDe != catalog.ParquetSerDe || got.InputFormat != catalog.ParquetInputFormat || got.OutputFormat != catalog.ParquetOutputFormat {
			t.Errorf("%s: not a Parquet table: %s %s %s", rt.Name, got.SerDe, got.InputFormat, got.OutputFormat)
		}
		if got.Location != "s3://BUCKET/curated/"+rt.Name+"/" {
			t.Errorf("%s: location %s", rt.Name, got.Location)
		}
		if diff := cmp.Diff(catalog.Curated(rt, "s3://BUCKET"), got); diff != "" {
			t.Errorf("%s: differs from catalog.Curated (-want +got):\n%s", rt.Name, diff)
		}
	}
	for id, r := range tmpl["Resources"].(map[string]interface{}) {
		if r.(map[string]interface{})["Type"] == "AWS::Glue::Table" && !tables[id] {
			t.Errorf("Glue table %s is neither the raw table nor a rollups table", id)
		}
	}
}

// TestOneColumnListFeedsTableAndFirehose proves the single source: a
// template built from a changed event column list changes the raw Glue table
// and Firehose's conversion schema together, because they are one thing.
func TestOneColumnListFeedsTableAndFirehose(t *testing.T) {
	cfg := DefaultConfig()
	extra := event.Column{Name: "experiment_id", Type: "string", Doc: "A/B test arm, if any"}
	cfg.RawColumns = append(slices.Clone(cfg.RawColumns), extra)
	changed := generatedTree(t, cfg)

	want := rawColumns(cfg.RawColumns)
	table := tableDef(t, changed, TableID(catalog.RawTable))
	conversion := firehoseSchema(t, changed)
	if diff := cmp.Diff(want, table.Columns); diff != "" {
		t.Errorf("raw table did not follow the column list (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, conversion.Columns); diff != "" {
		t.Errorf("Firehose conversion schema did not follow the column list (-want +got):\n%s", diff)
	}
	before := firehoseSchema(t, committedTree(t))
	if slices.ContainsFunc(before.Columns, func(c catalog.Column) bool { return c.Name == extra.Name }) {
		t.Fatal("the committed template already has the extra column")
	}
	// Nothing else about the stream changed: the schema reaches it only
	// through the table.
	stream := func(tmpl map[string]interface{}) interface{} {
		return props(t, tmpl, idStream, "AWS::KinesisFirehose::DeliveryStream")
	}
	if diff := cmp.Diff(stream(committedTree(t)), stream(changed)); diff != "" {
		t.Errorf("the delivery stream itself changed (-before +after):\n%s", diff)
	}
}

// TestOneStructFeedsItsTable: a new field in a rollup struct reaches its
// Glue table.
func TestOneStructFeedsItsTable(t *testing.T) {
	type widerEngagement struct {
		rollups.EngagementDaily
		Revenue float64 `parquet:"revenue" doc:"sum of purchase values"`
	}
	row := reflect.TypeOf(rollups.EngagementDaily{})
	var fields []reflect.StructField
	for i := range row.NumField() {
		fields = append(fields, row.Field(i))
	}
	extra, _ := reflect.TypeOf(widerEngagement{}).FieldByName("Revenue")
	fields = append(fields, extra)

	cfg := DefaultConfig()
	cfg.Curated = slices.Clone(cfg.Curated)
	i := slices.IndexFunc(cfg.Curated, func(t rollups.Table) bool { return t.Name == "engagement_daily" })
	cfg.Curated[i].Row = reflect.StructOf(fields)

	got := tableDef(t, generatedTree(t, cfg), TableID("engagement_daily"))
	last := got.Columns[len(got.Columns)-1]
	if last != (catalog.Column{Name: "revenue", Type: "double", Comment: "sum of purchase values"}) {
		t.Errorf("last column of engagement_daily is %+v, want revenue double", last)
	}
}

func TestLongCommentsAreRefused(t *testing.T) {
	cfg := DefaultConfig()
	cfg.RawColumns = append(slices.Clone(cfg.RawColumns), event.Column{Name: "x", Type: "string", Doc: strings.Repeat("x", 256)})
	if _, err := JSON(cfg); err == nil || !strings.Contains(err.Error(), "255") {
		t.Errorf("JSON with a 256-byte comment: err = %v, want Glue's 255-byte limit", err)
	}
}
