package rollups

import (
	"fmt"
	"strings"
)

// PowerQuery returns the Power Query (M) text that loads t into Power BI:
// a let … in expression that opens the Amazon Athena connector on the
// ODBC data source named dsn (its DSN sets the region, the workgroup and
// the credentials), navigates to the AwsDataCatalog catalog, the Glue
// database and the object Power BI reads (PowerBIObject), and types every
// column with Table.TransformColumnTypes: the partition key first (dt as
// a date, or users' bucket as text), then t's columns in file order, each
// once, with MType of its Athena type. A column the Athena object lacks
// fails the refresh by name, so a view not recreated after an upgrade is
// seen at once.
func PowerQuery(t Table, dsn, database string) string {
	var b strings.Builder
	b.WriteString("let\n")
	fmt.Fprintf(&b, "    Source = AmazonAthena.Databases(%s),\n", mString(dsn))
	fmt.Fprintf(&b, "    Catalog = Source{[Name = %s]}[Data],\n", mString("AwsDataCatalog"))
	fmt.Fprintf(&b, "    Database = Catalog{[Name = %s]}[Data],\n", mString(database))
	fmt.Fprintf(&b, "    Data = Database{[Name = %s]}[Data],\n", mString(PowerBIObject(t)))
	b.WriteString("    Typed = Table.TransformColumnTypes(Data, {\n")
	cols := PowerBIColumns(t)
	for i, c := range cols {
		sep := ","
		if i == len(cols)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "        {%s, %s}%s\n", mString(c.Name), MType(c.Type), sep)
	}
	b.WriteString("    })\nin\n    Typed\n")
	return b.String()
}

// PowerBIObject returns the Athena object Power BI reads for t: the view
// <name>_v (dt cast to a date; rollup ddl --dialect athena --views-only
// prints it) for a table partitioned by day, the table itself otherwise.
func PowerBIObject(t Table) string {
	if t.PartitionKey() == "dt" {
		return t.Name + "_v"
	}
	return t.Name
}

// PowerBIColumns lists the columns of PowerBIObject(t) as Power BI sees
// them, with their Athena types: the partition key first for dt (a date
// in the view), last for any other key (a string, as in Glue), and t's
// columns in file order between.
func PowerBIColumns(t Table) []Column {
	key := t.PartitionKey()
	if key == "dt" {
		return append([]Column{{Name: "dt", Type: "date", Doc: "the reporting day (the partition), cast to a date by the view"}}, t.Columns()...)
	}
	return append(t.Columns(), Column{Name: key, Type: "string", Doc: "the partition"})
}

// MType returns the Power Query type of an Athena column type: string →
// type text, bigint and int → Int64.Type, double → type number, boolean →
// type logical, date → type date, timestamp → type datetime (a UTC time
// without a zone, as Glue stores it), and a map, which the Athena ODBC
// driver returns as its text, → type text. It panics on any other type, so
// a new column type cannot reach the docs unmapped.
func MType(athena string) string {
	switch {
	case athena == "string":
		return "type text"
	case athena == "bigint" || athena == "int":
		return "Int64.Type"
	case athena == "double":
		return "type number"
	case athena == "boolean":
		return "type logical"
	case athena == "date":
		return "type date"
	case athena == "timestamp":
		return "type datetime"
	case strings.HasPrefix(athena, "map<"):
		return "type text"
	}
	panic("rollups: no Power Query type for Athena type " + athena)
}

// mString quotes s as an M text literal (a quote is doubled).
func mString(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
