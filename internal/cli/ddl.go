package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/littlewarehouse/warehouse/rollups"
)

// ddl prints CREATE statements for the curated tables.
func ddl(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rollup ddl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dialect := fs.String("dialect", "duckdb", "`duckdb` (views over the local store) or athena (external tables)")
	loc := fs.String("store", "./data", "the store the statements point at: a directory, or s3://bucket/prefix for athena (tables, which the job creates itself with --catalog glue, and <table>_v views with dt as a date, for Power BI)")
	db := fs.String("database", "warehouse", "Athena/Glue database name")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "rollup ddl prints CREATE statements for the curated tables.\n\nExample:\n  rollup ddl --dialect duckdb --store ./data | duckdb\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	root := strings.TrimSuffix(*loc, "/")
	switch *dialect {
	case "duckdb":
		for _, t := range rollups.All() {
			fmt.Fprintf(stdout, "-- %s: %s (grain: %s)\nCREATE OR REPLACE VIEW %s AS SELECT * FROM read_parquet('%s/curated/%s/dt=*/run=*/*.parquet', hive_partitioning = true, union_by_name = true);\n\n",
				t.Name, t.Doc, t.Grain, t.Name, root, t.Name)
		}
	case "athena":
		for _, t := range rollups.All() {
			fmt.Fprintf(stdout, "-- %s: %s (grain: %s)\nCREATE EXTERNAL TABLE IF NOT EXISTS %s.%s (\n", t.Name, t.Doc, t.Grain, *db, t.Name)
			cols := t.Columns()
			for i, c := range cols {
				sep := ","
				if i == len(cols)-1 {
					sep = ""
				}
				fmt.Fprintf(stdout, "  `%s` %s COMMENT '%s'%s\n", c.Name, c.Type, strings.ReplaceAll(c.Doc, "'", "''"), sep)
			}
			fmt.Fprintf(stdout, ")\nCOMMENT '%s'\nPARTITIONED BY (`dt` string)\nSTORED AS PARQUET\nLOCATION '%s/curated/%s/'\nTBLPROPERTIES ('classification'='parquet', 'parquet.compression'='ZSTD');\n\n",
				strings.ReplaceAll(t.Doc, "'", "''"), root, t.Name)
			// For Power BI: dt as a date (partition keys are strings in Glue).
			names := make([]string, len(cols))
			for i, c := range cols {
				names[i] = c.Name
			}
			fmt.Fprintf(stdout, "CREATE OR REPLACE VIEW %s.%s_v AS\nSELECT CAST(dt AS date) AS dt, %s\nFROM %s.%s;\n\n",
				*db, t.Name, strings.Join(names, ", "), *db, t.Name)
		}
	default:
		return usagef("unknown --dialect %q (want duckdb or athena)", *dialect)
	}
	return nil
}
