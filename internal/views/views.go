// Package views writes the DuckDB statements that show curated tables as
// views over explicit lists of Parquet files: the files the current runs'
// manifests name, never a glob over run folders (DESIGN §5.4). It builds
// SQL only, so the rollup binary can use it without linking DuckDB.
package views

import (
	"strings"
)

// DuckDB returns a CREATE OR REPLACE VIEW statement for table over exactly
// the Parquet files at paths (local paths or s3:// URLs), in that order.
// The view has the files' columns (by name, across schema changes) plus the
// Hive partition columns of their folders (dt as a DATE, or bucket), but
// not the run column: paths inside run=<id>/ folders say which run they
// belong to, and readers must not depend on it. paths must not be empty
// (DuckDB cannot type a view over no files).
func DuckDB(table string, paths []string) string {
	var b strings.Builder
	b.WriteString("CREATE OR REPLACE VIEW ")
	b.WriteString(Ident(table))
	b.WriteString(" AS SELECT *")
	if len(paths) > 0 && strings.Contains(paths[0], "/run=") {
		b.WriteString(" EXCLUDE (run)")
	}
	b.WriteString(" FROM read_parquet([")
	for i, p := range paths {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(Literal(p))
	}
	b.WriteString("], hive_partitioning = true, union_by_name = true)")
	return b.String()
}

// Ident quotes a SQL identifier: "name", with inner quotes doubled.
func Ident(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// Literal quotes a SQL string literal: 'text', with inner apostrophes
// doubled.
func Literal(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// Comment makes text safe for a "--" comment line: apostrophes stay as
// they are (a comment is not a literal), and line breaks become spaces so
// the text cannot end the comment.
func Comment(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
