package cli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/internal/views"
	"github.com/littlewarehouse/warehouse/rollups"
)

// ddl prints CREATE statements for the curated tables: for DuckDB,
// views over the files of each partition's current run, read from the
// manifests in the store now; for Athena, external tables at an S3
// location (their partitions are registered by rollup --catalog glue).
// With --views-only (athena), only the <table>_v views a Power BI user
// creates once: no store is needed.
func ddl(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rollup ddl", "rollup ddl prints CREATE statements for the curated tables.\n\n"+
		"Examples:\n  rollup ddl --dialect duckdb --store ./data | duckdb\n"+
		"  rollup ddl --dialect athena --store s3://bucket/warehouse\n"+
		"  rollup ddl --dialect athena --views-only      # the views for Power BI, nothing else\n\n"+
		"The DuckDB views are a snapshot of the current runs: regenerate them after\n"+
		"every rollup run (it deletes the files of the runs it supersedes).\n\nFlags:\n")
	dialect := fs.String("dialect", "duckdb", "`duckdb` (views over the current runs in the store) or athena (external tables)")
	loc := fs.String("store", "./data", "the store: a directory or s3://bucket/prefix. For duckdb, the views list the files of its current runs; for athena it must be s3:// unless --location is given")
	location := fs.String("location", "", "athena: the S3 `URL` of the store the tables live in (s3://bucket/prefix), when --store is not that store")
	s3Endpoint := fs.String("s3-endpoint", "", "S3-compatible endpoint `URL` for an s3:// --store (or set AWS_ENDPOINT_URL_S3)")
	db := fs.String("database", "warehouse", "Athena/Glue database name")
	viewsOnly := fs.Bool("views-only", false, "athena: print only the <table>_v views (dt as a date) that Power BI reads, to run once in the Athena console; the job creates the tables itself")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	switch *dialect {
	case "duckdb":
		if *viewsOnly {
			return usagef("--views-only is for --dialect athena (the duckdb output holds only views already)")
		}
		st, err := store.Open(ctx, *loc, store.Options{S3Endpoint: *s3Endpoint})
		if err != nil {
			return usagef("%v", err)
		}
		return duckDDL(ctx, stdout, st, filePrefix(*loc, st))
	case "athena":
		if *viewsOnly {
			athenaViews(stdout, *db)
			return nil
		}
		root := *location
		if root == "" {
			root = *loc
		}
		if !strings.HasPrefix(root, "s3://") {
			if *location != "" {
				return usagef("--location %s: want s3://bucket/prefix", *location)
			}
			return usagef("athena tables need the store's S3 location: --store s3://bucket/prefix, or --location s3://bucket/prefix (got --store %s)", *loc)
		}
		athenaDDL(stdout, strings.TrimSuffix(root, "/"), *db)
		return nil
	}
	return usagef("unknown --dialect %q (want duckdb or athena)", *dialect)
}

// filePrefix is what the keys of st follow in a path DuckDB can read: the
// directory as the user named it (so a relative --store gives relative
// paths), the absolute directory of a file:// URL, or the s3:// URL.
func filePrefix(loc string, st store.Store) string {
	if d, ok := st.(*store.Dir); ok {
		if !strings.Contains(loc, "://") {
			return strings.TrimSuffix(loc, "/") + "/"
		}
		return d.Root() + "/"
	}
	return st.String() + "/"
}

// duckDDL prints a DuckDB view per table over the files readers see
// (publish.Visible: the current runs, every daily table of a day from one
// build; keys prefixed with prefix); a table with no committed partition
// gets a comment instead.
func duckDDL(ctx context.Context, w io.Writer, st store.Store, prefix string) error {
	fmt.Fprintf(w, "-- DuckDB views over the curated tables of %s.\n", views.Comment(st.String()))
	fmt.Fprint(w, "-- A snapshot: each view lists the files of each partition's current run as\n"+
		"-- of now. Regenerate this file after every rollup run: a run's cleanup deletes\n"+
		"-- the files of the runs it supersedes, and new partitions are not listed.\n")
	if strings.HasPrefix(prefix, "s3://") {
		fmt.Fprint(w, "-- Reading s3:// needs DuckDB's httpfs extension and credentials (CREATE SECRET).\n")
	}
	fmt.Fprintln(w)
	var names []string
	for _, t := range rollups.All() {
		names = append(names, t.Name)
	}
	snap, err := publish.Visible(ctx, st, names...)
	if err != nil {
		return err
	}
	for _, t := range rollups.All() {
		parts := snap[t.Name]
		var paths []string
		for _, pf := range parts {
			for _, f := range pf.Manifest.Files {
				paths = append(paths, prefix+f.Key)
			}
		}
		fmt.Fprintf(w, "-- %s: %s (grain: %s)\n", t.Name, views.Comment(t.Doc), views.Comment(t.Grain))
		if len(paths) == 0 {
			fmt.Fprintf(w, "-- no committed partitions yet: no view; regenerate after a run.\n\n")
			continue
		}
		fmt.Fprintf(w, "-- %d partitions, %d files.\n%s;\n\n", len(parts), len(paths), views.DuckDB(t.Name, paths))
	}
	return nil
}

// athenaDDL prints an external table and a <table>_v view (dt as a date,
// for Power BI) per table, at root (s3://bucket/prefix).
func athenaDDL(w io.Writer, root, db string) {
	for _, t := range rollups.All() {
		fmt.Fprintf(w, "-- %s: %s (grain: %s)\nCREATE EXTERNAL TABLE IF NOT EXISTS %s.%s (\n", t.Name, views.Comment(t.Doc), views.Comment(t.Grain), db, t.Name)
		cols := t.Columns()
		for i, c := range cols {
			sep := ","
			if i == len(cols)-1 {
				sep = ""
			}
			fmt.Fprintf(w, "  `%s` %s COMMENT %s%s\n", c.Name, c.Type, views.Literal(c.Doc), sep)
		}
		fmt.Fprintf(w, ")\nCOMMENT %s\nPARTITIONED BY (`%s` string)\nSTORED AS PARQUET\nLOCATION %s\nTBLPROPERTIES ('classification'='parquet', 'parquet.compression'='ZSTD');\n\n",
			views.Literal(t.Doc), t.PartitionKey(), views.Literal(root+"/curated/"+t.Name+"/"))
		athenaView(w, db, t)
	}
}

// athenaViews prints, for Power BI, the <table>_v view of every table
// partitioned by day, and says how to use them.
func athenaViews(w io.Writer, db string) {
	fmt.Fprintf(w, "-- Views for Power BI over the tables of Glue database %s: each is its table\n", views.Comment(db))
	fmt.Fprint(w, "-- with dt as a date (Glue partition keys are strings). Run them once in the\n"+
		"-- Athena console, in the stack's workgroup, and again after an upgrade that\n"+
		"-- adds columns. The rollup job creates and updates the tables themselves.\n")
	var direct []string
	for _, t := range rollups.All() {
		if t.PartitionKey() != "dt" {
			direct = append(direct, t.Name)
		}
	}
	if len(direct) > 0 {
		fmt.Fprintf(w, "-- Read %s directly: no day to cast.\n", strings.Join(direct, ", "))
	}
	fmt.Fprintln(w)
	for _, t := range rollups.All() {
		if t.PartitionKey() == "dt" {
			fmt.Fprintf(w, "-- %s_v: %s (grain: %s)\n", t.Name, views.Comment(t.Doc), views.Comment(t.Grain))
			athenaView(w, db, t)
		}
	}
}

// athenaView prints t's <table>_v view, dt as a date, if t is partitioned
// by day.
func athenaView(w io.Writer, db string, t rollups.Table) {
	if t.PartitionKey() != "dt" {
		return // no day to cast: Power BI reads the table itself
	}
	cols := t.Columns()
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	fmt.Fprintf(w, "CREATE OR REPLACE VIEW %s.%s_v AS\nSELECT CAST(dt AS date) AS dt, %s\nFROM %s.%s;\n\n",
		db, t.Name, strings.Join(names, ", "), db, t.Name)
}
