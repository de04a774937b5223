// Package duckref runs reference SQL in an in-process DuckDB, the engine the
// tests check the warehouse's numbers against.
package duckref

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/duckdb/duckdb-go/v2" // also registers the "duckdb" driver

	"github.com/littlewarehouse/warehouse/internal/views"
)

// DB is an in-memory DuckDB.
type DB struct{ *sql.DB }

// Open opens a fresh in-memory DuckDB.
func Open() (*DB, error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1) // one connection, so views and settings persist
	return &DB{db}, nil
}

// ViewFiles creates (or replaces) a view named table over exactly the
// Parquet files at paths, with the Hive partition columns of their folders
// (dt, bucket) and without run (see views.DuckDB). With no paths it drops
// any view of that name and creates none: DuckDB cannot type a view over no
// files, so a query of the table then fails with "does not exist".
func (db *DB) ViewFiles(ctx context.Context, table string, paths []string) error {
	q := views.DuckDB(table, paths)
	if len(paths) == 0 {
		q = "DROP VIEW IF EXISTS " + views.Ident(table)
	}
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("view %s: %w", table, err)
	}
	return nil
}

// ViewCurated creates a view per table over the current runs of the local
// store at root (see ViewFiles): each partition's files as the manifest of
// its last committed run lists them. Run folders without a manifest and
// superseded runs are not read. A table with no committed partition gets no
// view. The views are a snapshot: re-run ViewCurated after a rebuild.
func (db *DB) ViewCurated(ctx context.Context, root string, tables ...string) error {
	for _, t := range tables {
		paths, err := currentPaths(root, t)
		if err != nil {
			return fmt.Errorf("view %s: %w", t, err)
		}
		if err := db.ViewFiles(ctx, t, paths); err != nil {
			return err
		}
	}
	return nil
}

// runManifest is the part of a publish.Manifest that says which run is
// current and what it holds.
type runManifest struct {
	Generation int64  `json:"generation"`
	Run        string `json:"run"`
	Files      []struct {
		Key string `json:"key"`
	} `json:"files"`
}

// currentPaths resolves table's partitions in the local store at root to
// their current runs and returns those runs' data files. It applies
// publish.CurrentAt's rule (the committed run of the highest generation;
// then the larger run id) to the manifest files directly, because duckref
// cannot import publish: publish imports rollups, whose in-package tests
// import duckref. TestViewCuratedAgreesWithPublish keeps the two in step.
func currentPaths(root, table string) ([]string, error) {
	manifests, err := filepath.Glob(filepath.Join(root, "curated", table, "*", "run=*", publishManifest))
	if err != nil {
		return nil, err
	}
	best := map[string]*runManifest{} // by partition folder
	var parts []string
	for _, p := range manifests {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted by a cleanup since the glob
		}
		if err != nil {
			return nil, err
		}
		var m runManifest
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		part := filepath.Dir(filepath.Dir(p))
		cur, ok := best[part]
		if !ok {
			parts = append(parts, part)
		}
		if !ok || m.Generation > cur.Generation || m.Generation == cur.Generation && m.Run > cur.Run {
			best[part] = &m
		}
	}
	sort.Strings(parts)
	var paths []string
	for _, part := range parts {
		for _, f := range best[part].Files {
			paths = append(paths, filepath.Join(root, filepath.FromSlash(f.Key)))
		}
	}
	return paths, nil
}

// publishManifest is publish.ManifestName.
const publishManifest = "_manifest.json"

// Query runs q and returns every row as a map from column name to value;
// DATE and TIMESTAMP values become "2006-01-02" strings and Unix
// milliseconds respectively, integers int64, so results compare easily.
func (db *DB) Query(ctx context.Context, q string, args ...any) ([]map[string]any, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		m := make(map[string]any, len(cols))
		for i, c := range cols {
			m[c] = normalize(vals[i], types[i].DatabaseTypeName())
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

func normalize(v any, typ string) any {
	switch x := v.(type) {
	case time.Time:
		if typ == "DATE" {
			return x.UTC().Format("2006-01-02")
		}
		return x.UnixMilli()
	case int32:
		return int64(x)
	case int16:
		return int64(x)
	case int8:
		return int64(x)
	case uint64:
		return int64(x)
	case uint32:
		return int64(x)
	case int:
		return int64(x)
	case float32:
		return float64(x)
	case duckdb.Map:
		m := make(map[string]any, len(x))
		for k, v := range x {
			m[fmt.Sprint(k)] = v
		}
		return m
	}
	return v
}
