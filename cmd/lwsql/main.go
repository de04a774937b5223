// Command lwsql runs SQL over a local warehouse store with an embedded
// DuckDB: every curated table is a view over the files of its current runs,
// as their manifests list them (dt comes from the partition folders), so no
// DuckDB install is needed to look at the data.
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
