package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/duckref"
	"github.com/littlewarehouse/warehouse/rollups"
)

// Rollups are the per-day rollup tables DuckDB computes from `events`, in
// the order it writes them.
var Rollups = []string{"engagement_daily", "user_daily", "sessions_daily", "paths_daily"}

// Window is how many UTC arrival days around the reporting days are listed
// when no key list is given: from the first day − WindowBefore to the last
// day + WindowAfter. It covers a reporting zone up to a day off UTC and the
// default max lateness of 7 days.
const (
	WindowBefore = 1
	WindowAfter  = 8
)

// Events modes: where the rollups read the events from.
const (
	// EventsTable materializes the events in a DuckDB table, copies it to
	// Parquet, and runs the rollups over the table.
	EventsTable = "table"
	// EventsFile copies the events query straight to Parquet and runs the
	// rollups over the written file.
	EventsFile = "file"
)

// Config is one DuckDB run.
type Config struct {
	Store    string   // local store root (the folder holding raw/)
	From, To day.Day  // reporting days, inclusive
	TZ       string   // reporting time zone, IANA name
	Keys     []string // raw object keys relative to Store; nil: every data object in the arrival window
	Out      string   // folder for the Parquet outputs; created
	Events   string   // EventsTable (default) or EventsFile
	Log      io.Writer
}

// Step is one timed statement.
type Step struct {
	Name    string  `json:"name"`
	Rows    int64   `json:"rows"` // rows written or created; 0 for views
	Seconds float64 `json:"seconds"`
}

// Result is what a run did.
type Result struct {
	DuckDB     string  `json:"duckdb_version"`
	Threads    int64   `json:"threads"`
	Memory     string  `json:"memory_limit"`
	Objects    int     `json:"objects"`
	EventsMode string  `json:"events_mode"`
	EventsRows int64   `json:"events_rows"`
	Steps      []Step  `json:"steps"`
	Seconds    float64 `json:"seconds"` // wall time of Run, DuckDB start to last file written
}

// Run computes, with DuckDB's default settings (threads = cores), what the
// rollup job computes for the days From..To: the deduplicated sorted events
// (rollups/routed.sql and events.sql) copied to <Out>/events.parquet, and
// every rollup in Rollups copied to <Out>/<table>.parquet, all zstd.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	start := time.Now()
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.TZ == "" {
		cfg.TZ = "UTC"
	}
	if cfg.Events == "" {
		cfg.Events = EventsTable
	}
	if cfg.Events != EventsTable && cfg.Events != EventsFile {
		return nil, fmt.Errorf("events mode %q: want %q or %q", cfg.Events, EventsTable, EventsFile)
	}
	if cfg.From > cfg.To {
		return nil, fmt.Errorf("from %s is after to %s", cfg.From, cfg.To)
	}
	if _, err := time.LoadLocation(cfg.TZ); err != nil {
		return nil, fmt.Errorf("time zone %q: %w", cfg.TZ, err)
	}
	root, err := filepath.Abs(cfg.Store)
	if err != nil {
		return nil, err
	}
	keys := cfg.Keys
	if keys == nil {
		if keys, err = ListWindow(root, cfg.From, cfg.To); err != nil {
			return nil, err
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no raw objects in %s for %s..%s", root, cfg.From, cfg.To)
	}
	out, err := filepath.Abs(cfg.Out)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, err
	}

	db, err := duckref.Open()
	if err != nil {
		return nil, err
	}
	defer db.Close()
	res := &Result{Objects: len(keys), EventsMode: cfg.Events}
	if err := db.QueryRowContext(ctx, "SELECT version(), current_setting('threads'), current_setting('memory_limit')").
		Scan(&res.DuckDB, &res.Threads, &res.Memory); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Log, "duckbench: DuckDB %s, threads %d, memory limit %s, %d raw objects, %s..%s in %s, events via %s\n",
		res.DuckDB, res.Threads, res.Memory, len(keys), cfg.From, cfg.To, cfg.TZ, cfg.Events)

	for _, s := range Statements(root, keys, cfg.From, cfg.To, cfg.TZ, out, cfg.Events) {
		t0 := time.Now()
		r, err := db.ExecContext(ctx, s.SQL)
		if err != nil {
			return nil, fmt.Errorf("%s: %w\n%s", s.Name, err, s.SQL)
		}
		st := Step{Name: s.Name, Seconds: time.Since(t0).Seconds()}
		if s.Counts {
			if st.Rows, err = r.RowsAffected(); err != nil {
				return nil, fmt.Errorf("%s: rows: %w", s.Name, err)
			}
		}
		if s.Name == "events.parquet" {
			res.EventsRows = st.Rows
		}
		res.Steps = append(res.Steps, st)
		if s.Counts || st.Seconds >= 0.01 {
			fmt.Fprintf(cfg.Log, "duckbench: %-24s %12d rows %8.2f s\n", st.Name, st.Rows, st.Seconds)
		}
	}
	res.Seconds = time.Since(start).Seconds()
	fmt.Fprintf(cfg.Log, "duckbench: wall %.2f s\n", res.Seconds)
	return res, nil
}

// Statement is one step of a run.
type Statement struct {
	Name   string
	SQL    string
	Counts bool // RowsAffected is the step's row count
}

// Statements returns the SQL a run executes, in order. raw is a view over
// the objects (read in UTC, filename relative to root like the job's keys),
// except outside UTC, where it is a table: DuckDB would otherwise cast the
// INT96 (naive) timestamps of some objects to TIMESTAMPTZ in the reporting
// zone when the view is read. routed is a view restricted to the days, so
// events.sql computes only them.
func Statements(root string, keys []string, from, to day.Day, tz, out, mode string) []Statement {
	rawKind := "VIEW"
	if !strings.EqualFold(tz, "UTC") {
		rawKind = "TABLE"
	}
	copyTo := func(name string) string {
		return fmt.Sprintf(" TO %s (FORMAT parquet, COMPRESSION zstd)", quote(filepath.Join(out, name+".parquet")))
	}
	s := []Statement{
		{Name: "set time zone UTC", SQL: "SET TimeZone = 'UTC'"},
		{Name: "raw", SQL: fmt.Sprintf("CREATE %s raw AS SELECT * REPLACE (replace(filename, %s, '') AS filename) FROM read_parquet(%s, union_by_name = true, filename = true)",
			rawKind, quote(root+"/"), list(root, keys))},
		{Name: "set time zone", SQL: "SET TimeZone = " + quote(tz)},
		{Name: "routed", SQL: fmt.Sprintf("CREATE VIEW routed AS SELECT * FROM (\n%s\n) WHERE dt BETWEEN DATE '%s' AND DATE '%s'",
			body(rollups.RefSQL("routed")), from, to)},
	}
	events := body(rollups.RefSQL("events"))
	switch mode {
	case EventsFile:
		s = append(s,
			Statement{Name: "events.parquet", SQL: "COPY (\n" + events + "\n)" + copyTo("events"), Counts: true},
			Statement{Name: "events view", SQL: "CREATE VIEW events AS SELECT * FROM read_parquet(" + quote(filepath.Join(out, "events.parquet")) + ")"})
	default:
		s = append(s,
			Statement{Name: "events table", SQL: "CREATE TABLE events AS " + events},
			Statement{Name: "events.parquet", SQL: "COPY events" + copyTo("events"), Counts: true})
	}
	for _, t := range Rollups {
		s = append(s, Statement{Name: t, SQL: "COPY (\n" + body(rollups.RefSQL(t)) + "\n)" + copyTo(t), Counts: true})
	}
	return s
}

// body trims a SQL file to one statement usable as a subquery: no trailing
// semicolon or blank space.
func body(sql string) string {
	return strings.TrimRight(strings.TrimSpace(sql), ";")
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func list(root string, keys []string) string {
	var b strings.Builder
	b.WriteString("[")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quote(filepath.Join(root, filepath.FromSlash(k))))
	}
	b.WriteString("]")
	return b.String()
}

// ListWindow lists the raw data objects (keys relative to root) whose UTC
// arrival day is from−WindowBefore .. to+WindowAfter: non-empty files under
// raw/YYYY/MM/DD/HH/ whose names do not start with "_" or ".". It cannot tell
// a bad object (not Parquet, truncated) from a good one; DuckDB fails on
// those, so pass the key list of the readable objects instead.
func ListWindow(root string, from, to day.Day) ([]string, error) {
	var keys []string
	for d := from - WindowBefore; d <= to+WindowAfter; d++ {
		dir := "raw/" + d.UTC().Format("2006/01/02")
		hours, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(dir)))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, h := range hours {
			if !h.IsDir() {
				continue
			}
			files, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(dir), h.Name()))
			if err != nil {
				return nil, err
			}
			for _, f := range files {
				if f.IsDir() || strings.HasPrefix(f.Name(), "_") || strings.HasPrefix(f.Name(), ".") {
					continue
				}
				info, err := f.Info()
				if err != nil {
					return nil, err
				}
				if info.Size() > 0 {
					keys = append(keys, dir+"/"+h.Name()+"/"+f.Name())
				}
			}
		}
	}
	slices.Sort(keys)
	return keys, nil
}
