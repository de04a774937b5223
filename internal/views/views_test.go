package views

import "testing"

func TestDuckDB(t *testing.T) {
	tests := []struct {
		name, table string
		paths       []string
		want        string
	}{
		{"run folders: no run folder column", "events", []string{"/d/curated/events/dt=2026-11-24/run=01A/part-00000.zstd.parquet", "/d/it's/run=01B/p.parquet"},
			`CREATE OR REPLACE VIEW "events" AS SELECT * EXCLUDE (filename), CAST(regexp_extract(filename, '/dt=([^/]*)/', 1) AS DATE) AS "dt" FROM read_parquet(['/d/curated/events/dt=2026-11-24/run=01A/part-00000.zstd.parquet', '/d/it''s/run=01B/p.parquet'], hive_partitioning = false, union_by_name = true, filename = true)`},
		{"buckets", "users", []string{"/d/curated/users/bucket=03/run=01A/p.parquet"},
			`CREATE OR REPLACE VIEW "users" AS SELECT * EXCLUDE (filename), regexp_extract(filename, '/bucket=([^/]*)/', 1) AS "bucket" FROM read_parquet(['/d/curated/users/bucket=03/run=01A/p.parquet'], hive_partitioning = false, union_by_name = true, filename = true)`},
		{"plain files", `a"b`, []string{"s3://b/x.parquet"},
			`CREATE OR REPLACE VIEW "a""b" AS SELECT * FROM read_parquet(['s3://b/x.parquet'], hive_partitioning = true, union_by_name = true)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DuckDB(tc.table, tc.paths); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestCommentKeepsApostrophesAndOneLine(t *testing.T) {
	if got, want := Comment("the client's\nsession  id"), "the client's session id"; got != want {
		t.Errorf("Comment = %q, want %q", got, want)
	}
	if got, want := Literal("the client's"), "'the client''s'"; got != want {
		t.Errorf("Literal = %q, want %q", got, want)
	}
}
