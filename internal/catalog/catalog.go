// Package catalog registers the warehouse's tables and their partitions in a
// metadata catalog, so that query engines find the current run of every
// partition without a crawler (docs/design.md §Publish and commit, §Where it runs, §The AWS stack): AWS Glue (read by Athena
// and, through Athena, Power BI), or a local folder of JSON table definitions
// under catalog/ in the store.
//
// # Tables
//
// Table definitions are derived, never retyped: a curated table's columns come
// from its Parquet struct in rollups (Curated, via rollups.Table.Columns), the
// raw table's from event.Columns (RawTableDef). Curated tables are external
// Parquet tables partitioned by dt (a string, YYYY-MM-DD: AWS's advice for
// partition keys; views cast it to date), with one registered partition per
// day whose location is the day's current run folder
// curated/<table>/dt=<day>/run=<ULID>/. The raw table uses partition
// projection over Firehose's raw/YYYY/MM/DD/HH/ layout, so it has no
// registered partitions at all.
//
// # Partitions and runs
//
// SetPartitions creates missing partitions and switches existing ones to a new
// location; partitions already at the location are left alone, so a rerun
// does nothing. The caller must switch a partition only to a run folder whose
// manifest exists (publish.Commit returned), or readers would see a partial
// run: VerifyCommitted checks that with store.Stat, and Registrar registers
// each partition's current run (publish.CurrentAt), so that a run another
// process superseded meanwhile is neither an error nor registered over the
// later one.
//
// Every partition records when the catalog started pointing at its location
// (Partition.Since). Collectable uses it to delete a superseded run folder
// only once no partition points at it and the grace period has passed since
// the switch, so that a query planned against the old location can finish.
//
// # Schema drift
//
// EnsureTables compares an existing table with its definition. Columns added
// at the end are applied in place: the existing partitions' column lists are
// updated first and the table last (so a crash in between is repaired by the
// next run, and Athena never sees partitions whose schema disagrees with the
// table, HIVE_PARTITION_SCHEMA_MISMATCH). Any other change — a column removed,
// renamed, retyped or moved, or a different partition key — is returned as a
// *DriftError that says what differs and how to migrate; that table is left
// untouched and the other tables are still brought up to date.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/rollups"
)

// Catalog is a metadata catalog of the warehouse's tables.
//
// Implementations: *Glue (AWS Glue Data Catalog) and *Local (JSON files in
// the store). Both behave the same way; the conformance tests check it.
type Catalog interface {
	// EnsureTables creates the tables that are missing and brings existing
	// ones up to their definitions (see the package comment on drift). It
	// handles every table even if one fails, and returns the errors joined:
	// a *DriftError for each table that cannot be updated in place.
	EnsureTables(ctx context.Context, tables []TableDef) error
	// SetPartitions makes each partition parts[i].DT of table point at
	// parts[i].Location, creating it if needed. Partitions not named are left
	// alone. A partition already at its location is not rewritten (its Since
	// is kept). On error, every partition points either at its old location
	// or at its new one, never at anything else; a retry converges.
	//
	// Contract: a location must be a run folder whose manifest exists (see
	// VerifyCommitted). The table must exist (else ErrNoTable) and must not
	// use partition projection.
	SetPartitions(ctx context.Context, table string, parts []Partition) error
	// Partitions returns the registered partitions of table by dt.
	// It returns ErrNoTable (wrapped) if the table does not exist.
	Partitions(ctx context.Context, table string) (map[string]Partition, error)
	// DropPartitions removes the partitions dts of table from the catalog
	// (not their data). Missing partitions are not an error.
	DropPartitions(ctx context.Context, table string, dts []string) error
	// Table returns table's definition as the catalog holds it, or
	// ErrNoTable (wrapped).
	Table(ctx context.Context, table string) (TableDef, error)
	// String names the catalog for messages, e.g. "glue database warehouse".
	String() string
}

// ErrNoTable is returned (wrapped) for a table the catalog does not have.
var ErrNoTable = errors.New("table not in catalog")

// Partition is one partition of a curated table.
type Partition struct {
	// DT is the partition value: the reporting day, YYYY-MM-DD.
	DT string `json:"-"`
	// Location is the partition's folder, with a trailing slash: the run
	// folder s3://bucket/prefix/curated/<table>/dt=<DT>/run=<ULID>/ (see
	// RunLocation).
	Location string `json:"location"`
	// Since is when the catalog started pointing at Location. It is set by
	// the catalog (ignored in SetPartitions' input) and is zero for a
	// partition registered by something else.
	Since time.Time `json:"since,omitzero"`
}

// Column is one column of a table definition.
type Column struct {
	Name    string `json:"name"`
	Type    string `json:"type"` // Hive/Athena type: string, bigint, double, boolean, timestamp, map<string,string>
	Comment string `json:"comment,omitempty"`
}

// TableDef is the full definition of one external table, as Athena needs it.
type TableDef struct {
	Name            string            `json:"name"`
	Comment         string            `json:"comment"`
	Columns         []Column          `json:"columns"`
	PartitionKeys   []Column          `json:"partition_keys"`
	Location        string            `json:"location"` // the table's folder, with a trailing slash
	TableType       string            `json:"table_type"`
	InputFormat     string            `json:"input_format"`
	OutputFormat    string            `json:"output_format"`
	SerDe           string            `json:"serde"`
	SerDeParameters map[string]string `json:"serde_parameters,omitempty"`
	Parameters      map[string]string `json:"parameters"`
}

// Fixed parts of every table definition.
const (
	// PartitionKey is the partition column of every curated table.
	PartitionKey = "dt"
	// RawTable is the name of the raw table (Firehose's raw/ objects).
	RawTable = "raw_events"
	// RawPartitionKey is the raw table's projected partition column: the
	// arrival hour, as the folder path YYYY/MM/DD/HH.
	RawPartitionKey = "hour"

	ExternalTable      = "EXTERNAL_TABLE"
	ParquetSerDe       = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
	ParquetInputFormat = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
	// ParquetOutputFormat is the output format of Parquet tables.
	ParquetOutputFormat = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

	// SinceParameter is the partition parameter in which the Glue catalog
	// records Partition.Since (RFC 3339, UTC).
	SinceParameter = "warehouse.since"
)

// DefaultRawStart is the first hour of the raw table's projection range when
// RawTableDef is given none.
var DefaultRawStart = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

func parquetDef(name, comment, location string, cols []Column, keys []Column, params map[string]string) TableDef {
	p := map[string]string{"classification": "parquet", "EXTERNAL": "TRUE"}
	maps.Copy(p, params)
	return TableDef{
		Name: name, Comment: comment, Columns: cols, PartitionKeys: keys,
		Location: dirURL(location), TableType: ExternalTable,
		InputFormat: ParquetInputFormat, OutputFormat: ParquetOutputFormat,
		SerDe: ParquetSerDe, SerDeParameters: map[string]string{"serialization.format": "1"},
		Parameters: p,
	}
}

// Curated returns the definition of the curated table t in the store whose
// root is root ("s3://bucket/prefix", as Root gives it): columns and comments
// from t's Parquet struct, partitioned by dt (string; users by bucket), located at
// <root>/curated/<table>/.
func Curated(t rollups.Table, root string) TableDef {
	var cols []Column
	for _, c := range t.Columns() {
		cols = append(cols, Column{Name: c.Name, Type: c.Type, Comment: c.Doc})
	}
	keys := []Column{{Name: PartitionKey, Type: "string", Comment: "reporting day, YYYY-MM-DD"}}
	if k := t.PartitionKey(); k != PartitionKey {
		keys = []Column{{Name: k, Type: "string", Comment: "hash bucket of product and user_key, 00.." + fmt.Sprintf("%02d", rollups.UserBuckets-1)}}
	}
	return parquetDef(t.Name, t.Doc, strings.TrimSuffix(root, "/")+"/curated/"+t.Name+"/", cols, keys,
		map[string]string{"parquet.compression": "ZSTD"})
}

// CuratedDefs returns Curated for every table of each list, e.g.
// CuratedDefs(root, rollups.All()).
func CuratedDefs(root string, lists ...[]rollups.Table) []TableDef {
	var defs []TableDef
	for _, l := range lists {
		for _, t := range l {
			defs = append(defs, Curated(t, root))
		}
	}
	return defs
}

// RawTableDef returns the definition of the raw table over location, the
// folder Firehose writes to ("s3://bucket/prefix/raw/"): columns from
// event.Columns, and partition projection over the hourly folders
// YYYY/MM/DD/HH from start (DefaultRawStart if zero) to now, so Athena needs
// no crawler and no registered partitions. Queries should filter on hour
// (e.g. WHERE hour BETWEEN '2026/11/24/00' AND '2026/11/24/23'), which is the
// arrival hour, not the event time.
func RawTableDef(location string, start time.Time) TableDef {
	if start.IsZero() {
		start = DefaultRawStart
	}
	var cols []Column
	for _, c := range event.Columns() {
		cols = append(cols, Column{Name: c.Name, Type: c.Type, Comment: c.Doc})
	}
	location = dirURL(location)
	keys := []Column{{Name: RawPartitionKey, Type: "string", Comment: "arrival hour (UTC) of the raw object, YYYY/MM/DD/HH"}}
	return parquetDef(RawTable, "raw events as Firehose delivered them, by arrival hour", location, cols, keys, map[string]string{
		"projection.enabled":                               "true",
		"projection." + RawPartitionKey + ".type":          "date",
		"projection." + RawPartitionKey + ".format":        "yyyy/MM/dd/HH",
		"projection." + RawPartitionKey + ".range":         start.UTC().Format("2006/01/02/15") + ",NOW",
		"projection." + RawPartitionKey + ".interval":      "1",
		"projection." + RawPartitionKey + ".interval.unit": "HOURS",
		"storage.location.template":                        location + "${" + RawPartitionKey + "}/",
	})
}

// Projected reports whether d uses partition projection (and so has no
// registered partitions).
func (d TableDef) Projected() bool { return d.Parameters["projection.enabled"] == "true" }

func (d TableDef) validate() error {
	if d.Name == "" || len(d.Columns) == 0 || d.Location == "" {
		return fmt.Errorf("catalog: table definition %q needs a name, columns and a location", d.Name)
	}
	return nil
}

// dirURL returns u with exactly one trailing slash.
func dirURL(u string) string { return strings.TrimRight(u, "/") + "/" }

// DriftError says that a table in the catalog differs from its definition in
// a way that cannot be applied in place. The table was left as it is.
type DriftError struct {
	Catalog  string   // e.g. "glue database warehouse"
	Table    string   // the table
	Problems []string // one line per difference
	Migrate  string   // what to do about it
}

func (e *DriftError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "catalog: table %s in %s differs from its definition and was not changed:", e.Table, e.Catalog)
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p)
	}
	b.WriteString("\nOnly columns added at the end can be applied in place. To migrate: ")
	b.WriteString(e.Migrate)
	return b.String()
}

// normType normalizes a Hive type for comparison (Glue keeps what it is
// given; Athena DDL may add spaces or capitals).
func normType(t string) string {
	return strings.ToLower(strings.Join(strings.Fields(t), ""))
}

func colList(cols []Column) string {
	var s []string
	for _, c := range cols {
		s = append(s, c.Name+" "+c.Type)
	}
	return "(" + strings.Join(s, ", ") + ")"
}

// diffColumns compares the columns a catalog has with the columns of the
// definition. added is the trailing columns the definition adds, when that
// is the only difference; otherwise problems says what differs.
func diffColumns(have, want []Column) (added []Column, problems []string) {
	wantIdx := map[string]int{}
	for i, c := range want {
		wantIdx[c.Name] = i
	}
	haveIdx := map[string]int{}
	for i, c := range have {
		haveIdx[c.Name] = i
	}
	var common []string
	for _, c := range have {
		j, ok := wantIdx[c.Name]
		if !ok {
			problems = append(problems, fmt.Sprintf("column %s (%s) is in the catalog but not in the definition (removed or renamed)", c.Name, c.Type))
			continue
		}
		common = append(common, c.Name)
		if normType(c.Type) != normType(want[j].Type) {
			problems = append(problems, fmt.Sprintf("column %s: the catalog has type %s, the definition has %s", c.Name, c.Type, want[j].Type))
		}
	}
	var wantCommon []string
	for _, c := range want {
		if _, ok := haveIdx[c.Name]; ok {
			wantCommon = append(wantCommon, c.Name)
		}
	}
	if !slices.Equal(common, wantCommon) {
		problems = append(problems, fmt.Sprintf("columns are in a different order: the catalog has (%s), the definition has (%s)",
			strings.Join(common, ", "), strings.Join(wantCommon, ", ")))
	}
	for i, c := range want {
		if _, ok := haveIdx[c.Name]; ok {
			continue
		}
		if i < len(have) {
			problems = append(problems, fmt.Sprintf("column %s (%s) is new in the definition at position %d, not at the end (after column %d)",
				c.Name, c.Type, i+1, len(have)))
			continue
		}
		added = append(added, c)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return added, nil
}

// diffKeys compares partition keys (names and types, in order).
func diffKeys(have, want []Column) []string {
	same := len(have) == len(want)
	for i := 0; same && i < len(have); i++ {
		same = have[i].Name == want[i].Name && normType(have[i].Type) == normType(want[i].Type)
	}
	if same {
		return nil
	}
	return []string{fmt.Sprintf("partition keys: the catalog has %s, the definition has %s", colList(have), colList(want))}
}

// dayRange returns the first and last dt of parts, for migration advice.
func dayRange(parts map[string]Partition) (string, string) {
	if len(parts) == 0 {
		return "<first day>", "<last day>"
	}
	keys := slices.Sorted(maps.Keys(parts))
	return keys[0], keys[len(keys)-1]
}

// checkParts validates and de-duplicates the input of SetPartitions.
func checkParts(table string, parts []Partition) ([]Partition, error) {
	seen := map[string]string{}
	var out []Partition
	for _, p := range parts {
		if p.DT == "" || p.Location == "" {
			return nil, fmt.Errorf("catalog: %s: partition %q needs a dt and a location", table, p.DT)
		}
		loc := dirURL(p.Location)
		if prev, ok := seen[p.DT]; ok {
			if prev != loc {
				return nil, fmt.Errorf("catalog: %s: partition dt=%s given twice, at %s and %s", table, p.DT, prev, loc)
			}
			continue
		}
		seen[p.DT] = loc
		out = append(out, Partition{DT: p.DT, Location: loc})
	}
	slices.SortFunc(out, func(a, b Partition) int { return strings.Compare(a.DT, b.DT) })
	return out, nil
}
