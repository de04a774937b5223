package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"github.com/littlewarehouse/warehouse/internal/cli/flagtext"
	"github.com/littlewarehouse/warehouse/internal/duckref"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/internal/views"
	"github.com/littlewarehouse/warehouse/internal/wait"
	"github.com/littlewarehouse/warehouse/rollups"
)

// run runs lwsql with args (without the program name), printing the result
// table to stdout and messages to stderr, and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("lwsql", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // Parse's own messages; ours follow it
	root := fs.String("store", "./data", "local store `directory`")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "lwsql runs SQL over the curated tables of a local store.\n\n"+
			"Example:\n  lwsql --store ./data \"SELECT * FROM data_quality_daily ORDER BY dt\"\n\n"+
			"The query is one argument; it may hold several statements separated by ;\n"+
			"and each one's result is printed, in order. Each table is a view over the\n"+
			"files of its current runs (as their manifests list them), with all the\n"+
			"daily tables of a day from one build; dt is a DATE, timestamps print in\n"+
			"UTC. A query whose files a rollup finishing meanwhile deleted runs again\n"+
			"over the new runs.\n\n"+
			"Tables: %s\n\nExit codes: 0 done, 1 the query failed, 2 bad usage (or no store there).\n\nFlags:\n", strings.Join(tableNames(""), ", "))
		flagtext.PrintDefaults(fs, fs.Output())
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return 0
		}
		fmt.Fprintf(stderr, "lwsql: %s (see lwsql --help)\n", flagtext.Message(err))
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "lwsql: want exactly one SQL query, in quotes (see lwsql --help)")
		return 2
	}
	stmts := splitStatements(fs.Arg(0))
	if len(stmts) == 0 {
		fmt.Fprintln(stderr, "lwsql: the query is empty; give one, e.g. \"SELECT * FROM data_quality_daily\" (see lwsql --help)")
		return 2
	}
	st, err := openStore(*root)
	if err != nil {
		fmt.Fprintln(stderr, "lwsql:", err)
		return 2
	}
	db, err := duckref.Open()
	if err != nil {
		fmt.Fprintln(stderr, "lwsql:", err)
		return 1
	}
	defer db.Close()
	if err := queryStore(ctx, db, st, stmts, stdout); err != nil {
		fmt.Fprintln(stderr, "lwsql:", err)
		return 1
	}
	return 0
}

// queryStore runs stmts in order over views of st's tables (viewTables)
// and prints each one's result to stdout, a blank line between them; if
// one fails, the results of those before it. A rebuild that finishes while
// the query runs deletes the runs it supersedes (at once, on a local
// store), which the views may name: if a file they name is gone, it
// resolves the tables again and runs the query again, after a pause that
// doubles (a run republishes its days and windowed partitions one after
// another, a burst of deletes).
func queryStore(ctx context.Context, db *duckref.DB, st *store.Dir, stmts []string, stdout io.Writer) error {
	pause := firstPause
	for attempt := 1; ; attempt++ {
		snap, present, err := viewTables(ctx, db, st)
		var out bytes.Buffer // the results of the statements that ran
		if err == nil {
			if err = queryAll(ctx, db, stmts, &out); err == nil {
				_, err = io.Copy(stdout, &out)
				return err
			}
			var se stmtError
			if errors.As(err, &se) {
				msg := explain(se.err, st.Root(), present)
				if len(stmts) > 1 {
					msg = fmt.Sprintf("statement %d of %d: %s", se.i+1, len(stmts), msg)
				}
				err = errors.New(msg)
			}
		}
		if attempt == attempts || !gone(st, snap) || wait.Sleep(ctx, pause) != nil {
			// The statements before the one that failed are shown.
			if _, werr := io.Copy(stdout, &out); werr != nil {
				return werr
			}
			return err
		}
		pause = min(2*pause, maxPause)
	}
}

// attempts bounds how often lwsql runs a query whose files a finished
// rebuild deleted meanwhile; it pauses firstPause after the first, then
// twice as long each time, up to maxPause: about 15 s of pauses in all,
// longer than a rollup's burst of commits of one day's tables.
const (
	attempts   = 20
	firstPause = 20 * time.Millisecond
	maxPause   = time.Second
)

// gone reports whether a data file snap names is no longer in the store.
func gone(st *store.Dir, snap publish.Snapshot) bool {
	for t := range snap {
		for _, k := range snap.Keys(t) {
			if _, err := os.Stat(filepath.Join(st.Root(), filepath.FromSlash(k))); errors.Is(err, fs.ErrNotExist) {
				return true
			}
		}
	}
	return false
}

// stmtError is the error of statement i (from 0) of a query.
type stmtError struct {
	i   int
	err error
}

func (e stmtError) Error() string { return e.err.Error() }

// queryAll runs stmts in order, printing each one's result to w with a
// blank line between them; it stops at the first that fails.
func queryAll(ctx context.Context, db *duckref.DB, stmts []string, w io.Writer) error {
	for i, q := range stmts {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if err := query(ctx, db, q, w); err != nil {
			return stmtError{i, err}
		}
	}
	return nil
}

// storeFolders are the top folders of a store: at least one is there once
// raw data landed or a rollup ran.
var storeFolders = []string{"curated", "_state", "raw"}

// openStore opens the local store at root, saying plainly, in rollup's
// words, when there is none: a missing path, a file, or a folder holding
// none of storeFolders (an empty one, or the wrong one).
func openStore(root string) (*store.Dir, error) {
	st, err := store.OpenDir(root, false)
	if err != nil {
		return nil, err
	}
	for _, f := range storeFolders {
		if fi, err := os.Stat(filepath.Join(st.Root(), f)); err == nil && fi.IsDir() {
			return st, nil
		}
	}
	return nil, fmt.Errorf("%s is not a store: it holds no curated/, _state/ or raw/ folder; is --store right? (rollup --store %s builds one from raw data)", st.Root(), st.Root())
}

// viewTables creates a view per curated table with at least one committed
// partition, over the files of the runs readers see (publish.Visible: the
// current runs, and one build of each day across a day's tables), and
// returns what it resolved and those tables' names, sorted. A view that
// fails still returns what was resolved (its files may be gone).
func viewTables(ctx context.Context, db *duckref.DB, st *store.Dir) (publish.Snapshot, []string, error) {
	names := tableNames(st.Root())
	snap, err := publish.Visible(ctx, st, names...)
	if err != nil {
		return nil, nil, err
	}
	var present []string
	var empty []rollups.Table
	for _, t := range names {
		keys := snap.Keys(t)
		if len(keys) == 0 {
			if tbl, ok := rollups.ByName(t); ok && tbl.History {
				empty = append(empty, tbl)
			}
			continue
		}
		paths := make([]string, len(keys))
		for i, k := range keys {
			paths[i] = filepath.Join(st.Root(), filepath.FromSlash(k))
		}
		if err := db.ViewFiles(ctx, t, paths); err != nil { // no paths: no view
			return snap, nil, err
		}
		if len(paths) > 0 {
			present = append(present, t)
		}
	}
	// In a store with data, a history table with nothing committed yet
	// (restatements after a clean build: no number was ever restated)
	// answers no rows.
	for _, tbl := range empty {
		if len(present) == 0 {
			break
		}
		cols := [][2]string{}
		for _, c := range tbl.Columns() {
			cols = append(cols, [2]string{c.Name, c.Type})
		}
		typ := "date"
		if tbl.PartitionKey() != "dt" {
			typ = "string"
		}
		if _, err := db.ExecContext(ctx, views.Empty(tbl.Name, append(cols, [2]string{tbl.PartitionKey(), typ}))); err != nil {
			return snap, nil, fmt.Errorf("table %s: %w", tbl.Name, err)
		}
	}
	return snap, present, nil
}

// tableNames lists the curated tables: those the project defines, and any
// other folder under curated/ in the store at root (if root is not empty).
func tableNames(root string) []string {
	var names []string
	for _, t := range rollups.All() {
		names = append(names, t.Name)
	}
	if root != "" {
		entries, _ := os.ReadDir(filepath.Join(root, "curated"))
		for _, e := range entries {
			if e.IsDir() && !slices.Contains(names, e.Name()) && !strings.HasPrefix(e.Name(), ".") {
				names = append(names, e.Name())
			}
		}
	}
	return names
}

var missingTable = regexp.MustCompile(`Table with name (\S+) does not exist`)

// explain rewrites DuckDB's "Table with name x does not exist! Did you mean
// ...?" into what the store holds.
func explain(err error, root string, present []string) string {
	m := missingTable.FindStringSubmatch(err.Error())
	if m == nil {
		return err.Error()
	}
	name := m[1]
	have := "tables with data: " + strings.Join(present, ", ")
	switch {
	case len(present) == 0:
		return fmt.Sprintf("no curated tables yet in %s; run rollup first", root)
	case slices.Contains(tableNames(root), name):
		return fmt.Sprintf("table %s has no committed partitions yet in %s; %s", name, root, have)
	}
	return fmt.Sprintf("no table %s in %s; %s", name, root, have)
}

// query runs q and prints its result as a table.
func query(ctx context.Context, db *duckref.DB, q string, stdout io.Writer) error {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	types, err := rows.ColumnTypes()
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, strings.Join(cols, "\t")+"\t")
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	cells := make([]string, len(vals))
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for i, v := range vals {
			cells[i] = format(v, types[i].DatabaseTypeName())
		}
		fmt.Fprintln(w, strings.Join(cells, "\t")+"\t")
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return w.Flush()
}

// format renders one value of a column of DuckDB type typ: dates as
// 2006-01-02, timestamps in UTC to the millisecond, maps as {k=v, ...} in
// the map's order, lists as [a, b].
func format(v any, typ string) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case float64:
		return fmt.Sprintf("%.4g", x)
	case time.Time:
		switch {
		case typ == "DATE":
			return x.Format(time.DateOnly)
		case typ == "TIME" || strings.HasPrefix(typ, "TIME "):
			return x.Format("15:04:05.000")
		}
		return x.UTC().Format("2006-01-02 15:04:05.000")
	case duckdb.OrderedMap:
		keys, vals := x.Keys(), x.Values()
		parts := make([]string, len(keys))
		for i := range keys {
			parts[i] = format(keys[i], "") + "=" + format(vals[i], "")
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case duckdb.Map:
		parts := make([]string, 0, len(x))
		for k, v := range x {
			parts = append(parts, format(k, "")+"="+format(v, ""))
		}
		sort.Strings(parts)
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = format(e, "")
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v)
}
