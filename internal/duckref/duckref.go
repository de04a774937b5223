// Package duckref runs reference SQL in an in-process DuckDB, the engine the
// tests check the warehouse's numbers against.
package duckref

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2" // also registers the "duckdb" driver
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

// ViewCurated creates a view per table over the curated Parquet of a local
// store at root, with dt from the Hive partition folders.
func (db *DB) ViewCurated(ctx context.Context, root string, tables ...string) error {
	for _, t := range tables {
		q := fmt.Sprintf(`CREATE OR REPLACE VIEW %s AS SELECT * EXCLUDE (run) FROM read_parquet('%s/curated/%s/dt=*/run=*/*.parquet', hive_partitioning = true, union_by_name = true)`,
			t, strings.ReplaceAll(root, "'", "''"), t)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("view %s: %w", t, err)
		}
	}
	return nil
}

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
