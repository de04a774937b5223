// Command lwsql runs SQL over a local warehouse store with an embedded
// DuckDB: every curated table is a view over the files of its current runs,
// as their manifests list them (dt comes from the partition folders), the
// daily tables of each day from one build (publish.Visible), so no DuckDB
// install is needed to look at the data. A query that a rollup finishing
// meanwhile pulls files from under runs again over the new runs.
//
//	lwsql --store ./data "SELECT dt, sum(events) FROM engagement_daily GROUP BY dt ORDER BY dt"
//
// Exit codes: 0 done, 1 the query failed, 2 bad usage (or no store there).
package main

import (
	"context"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
