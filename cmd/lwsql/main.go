// Command lwsql runs SQL over a local warehouse store with an embedded
// DuckDB: every curated table is a view (dt comes from the partition
// folders), so no DuckDB install is needed to look at the data.
//
//	lwsql --store ./data "SELECT dt, sum(events) FROM engagement_daily GROUP BY dt ORDER BY dt"
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/littlewarehouse/warehouse/internal/duckref"
	"github.com/littlewarehouse/warehouse/rollups"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:]))
}

func run(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("lwsql", flag.ContinueOnError)
	root := fs.String("store", "./data", "local store `directory`")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "lwsql runs one SQL query over the curated tables of a local store.\n\nExample:\n  lwsql --store ./data \"SELECT * FROM data_quality_daily ORDER BY dt\"\n\nTables: %s\n\nFlags:\n", strings.Join(tableNames(), ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "lwsql: want exactly one SQL query (see lwsql --help)")
		return 2
	}
	abs, err := filepath.Abs(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lwsql:", err)
		return 2
	}
	db, err := duckref.Open()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lwsql:", err)
		return 1
	}
	defer db.Close()
	var present []string
	for _, t := range tableNames() {
		if m, _ := filepath.Glob(filepath.Join(abs, "curated", t, "dt=*", "run=*", "*.parquet")); len(m) > 0 {
			present = append(present, t)
		}
	}
	if err := db.ViewCurated(ctx, abs, present...); err != nil {
		fmt.Fprintln(os.Stderr, "lwsql:", err)
		return 1
	}
	rows, err := db.QueryContext(ctx, fs.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "lwsql:", err)
		return 1
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, strings.Join(cols, "\t")+"\t")
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			fmt.Fprintln(os.Stderr, "lwsql:", err)
			return 1
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			cells[i] = format(v)
		}
		fmt.Fprintln(w, strings.Join(cells, "\t")+"\t")
	}
	w.Flush()
	if err := rows.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "lwsql:", err)
		return 1
	}
	return 0
}

func format(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case float64:
		return fmt.Sprintf("%.4g", x)
	case interface{ Format(string) string }:
		return x.Format("2006-01-02")
	}
	return fmt.Sprint(v)
}

func tableNames() []string {
	var names []string
	for _, t := range rollups.All() {
		names = append(names, t.Name)
	}
	return names
}
