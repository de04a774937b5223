// Package views writes the DuckDB statements that show curated tables as
// views over explicit lists of Parquet files: the files the current runs'
// manifests name, never a glob over run folders (docs/design.md §Publish and commit). It builds
// SQL only, so the rollup binary can use it without linking DuckDB.
package views

import (
	"regexp"
	"strings"
)

// DuckDB returns a CREATE OR REPLACE VIEW statement for table over exactly
// the Parquet files at paths (local paths or s3:// URLs), in that order.
// The view has the files' columns (by name, across schema changes) plus the
// Hive partition columns of their folders (dt as a DATE, or bucket), but
// not the run folder: paths inside run=<id>/ folders say which run they
// belong to, and readers must not depend on it. For such paths the
// partition columns are read from the file names rather than by DuckDB's
// Hive partitioning, which would read run=<id> as a column and hide the
// files' own column of that name (restatements.run). paths must not be
// empty (DuckDB cannot type a view over no files; see Empty).
func DuckDB(table string, paths []string) string {
	var b strings.Builder
	b.WriteString("CREATE OR REPLACE VIEW ")
	b.WriteString(Ident(table))
	b.WriteString(" AS SELECT *")
	inRuns := len(paths) > 0 && strings.Contains(paths[0], "/run=")
	if inRuns {
		b.WriteString(" EXCLUDE (filename)")
		for _, seg := range strings.Split(paths[0], "/") {
			k, v, ok := strings.Cut(seg, "=")
			if !ok || k == "run" || k == "" {
				continue
			}
			col := "regexp_extract(filename, " + Literal("/"+regexp.QuoteMeta(k)+"=([^/]*)/") + ", 1)"
			if isDate.MatchString(v) {
				col = "CAST(" + col + " AS DATE)"
			}
			b.WriteString(", " + col + " AS " + Ident(k))
		}
	}
	b.WriteString(" FROM read_parquet([")
	for i, p := range paths {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(Literal(p))
	}
	if inRuns {
		b.WriteString("], hive_partitioning = false, union_by_name = true, filename = true)")
	} else {
		b.WriteString("], hive_partitioning = true, union_by_name = true)")
	}
	return b.String()
}

var isDate = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)

// Empty returns a CREATE OR REPLACE VIEW statement for table with no rows
// and the columns cols, each a name and an Athena type (string, bigint,
// double, boolean, timestamp, date, map<string,string>): the view of a
// table that has no committed partition yet, so that a query of it answers
// no rows instead of failing.
func Empty(table string, cols [][2]string) string {
	var b strings.Builder
	b.WriteString("CREATE OR REPLACE VIEW ")
	b.WriteString(Ident(table))
	b.WriteString(" AS SELECT ")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		typ := map[string]string{"string": "VARCHAR", "bigint": "BIGINT", "double": "DOUBLE", "boolean": "BOOLEAN",
			"timestamp": "TIMESTAMP WITH TIME ZONE", "date": "DATE", "map<string,string>": "MAP(VARCHAR, VARCHAR)"}[c[1]]
		if typ == "" {
			typ = "VARCHAR"
		}
		b.WriteString("CAST(NULL AS " + typ + ") AS " + Ident(c[0]))
	}
	b.WriteString(" WHERE false")
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
