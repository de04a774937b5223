package infra

import (
	"fmt"
	"strings"
	"time"

	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/glue"
	"github.com/littlewarehouse/warehouse/internal/catalog"
	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/rollups"
)

// bucketRoot is the store root in the catalog's table definitions: a Fn::Sub
// of the stack's bucket, so the locations resolve to s3://<bucket>/...
const bucketRoot = "s3://${" + idBucket + "}"

// glueCommentMax is Glue's limit on a column comment.
const glueCommentMax = 255

// RawTableDef returns the raw table's definition with the columns cols (in
// practice event.Columns()): catalog.RawTableDef, the very definition the
// rollup job registers, with the columns taken from cols so that a test can
// show a changed column list reaching the table and Firehose together.
func RawTableDef(cols []event.Column) catalog.TableDef {
	d := catalog.RawTableDef(bucketRoot+"/raw/", time.Time{})
	d.Columns = make([]catalog.Column, 0, len(cols))
	for _, c := range cols {
		d.Columns = append(d.Columns, catalog.Column{Name: c.Name, Type: c.Type, Comment: c.Doc})
	}
	return d
}

// CuratedTableDefs returns the definitions of the curated tables ts, as the
// rollup job registers them (catalog.Curated): columns from each table's
// Parquet struct, partitioned by dt. Their partitions are registered by the
// job, each pointing at the day's current run folder, never by a crawler.
func CuratedTableDefs(ts []rollups.Table) []catalog.TableDef {
	return catalog.CuratedDefs(bucketRoot, ts)
}

// glueTable builds the AWS::Glue::Table of d in the stack's database.
func glueTable(d catalog.TableDef) (*glue.Table, error) {
	cols, err := glueColumns(d.Name, d.Columns)
	if err != nil {
		return nil, err
	}
	keys, err := glueColumns(d.Name, d.PartitionKeys)
	if err != nil {
		return nil, err
	}
	params := map[string]interface{}{}
	for k, v := range d.Parameters {
		params[k] = subBucket(v)
	}
	serde := map[string]interface{}{}
	for k, v := range d.SerDeParameters {
		serde[k] = v
	}
	return &glue.Table{
		CatalogId:    cloudformation.Ref("AWS::AccountId"),
		DatabaseName: cloudformation.Ref(idDatabase),
		TableInput: &glue.Table_TableInput{
			Name:          cloudformation.String(d.Name),
			Description:   cloudformation.String(d.Comment),
			TableType:     cloudformation.String(d.TableType),
			Parameters:    params,
			PartitionKeys: keys,
			StorageDescriptor: &glue.Table_StorageDescriptor{
				Columns:      cols,
				Location:     cloudformation.SubPtr(subBucketText(d.Location)),
				InputFormat:  cloudformation.String(d.InputFormat),
				OutputFormat: cloudformation.String(d.OutputFormat),
				SerdeInfo: &glue.Table_SerdeInfo{
					SerializationLibrary: cloudformation.String(d.SerDe),
					Parameters:           serde,
				},
			},
		},
	}, nil
}

// subBucket returns v as it is, or as a Fn::Sub if it names the bucket.
func subBucket(v string) string {
	if !strings.Contains(v, bucketRoot) {
		return v
	}
	return cloudformation.Sub(subBucketText(v))
}

// subBucketText escapes v for Fn::Sub: ${DataBucket} stays a reference, any
// other ${x} (Athena's ${hour}) is written ${!x} so it stays literal.
func subBucketText(v string) string {
	v = strings.ReplaceAll(v, "${", "${!")
	return strings.ReplaceAll(v, "${!"+idBucket+"}", "${"+idBucket+"}")
}

func glueColumns(table string, cols []catalog.Column) ([]glue.Table_Column, error) {
	out := make([]glue.Table_Column, 0, len(cols))
	for _, c := range cols {
		if len(c.Comment) > glueCommentMax {
			return nil, fmt.Errorf("table %s column %s: comment is %d bytes, Glue allows %d", table, c.Name, len(c.Comment), glueCommentMax)
		}
		gc := glue.Table_Column{Name: c.Name, Type: cloudformation.String(c.Type)}
		if c.Comment != "" {
			gc.Comment = cloudformation.String(c.Comment)
		}
		out = append(out, gc)
	}
	return out, nil
}

// logicalID turns a snake_case table name into a CloudFormation logical id
// suffix: engagement_daily → EngagementDaily.
func logicalID(name string) string {
	var b strings.Builder
	for _, part := range strings.FieldsFunc(name, func(r rune) bool { return r == '_' || r == '-' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}
