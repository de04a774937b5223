// Command bench is `make bench`: it times the rollup job against DuckDB
// doing the same work (cmd/duckbench) on the same synthetic raw data, and
// prints wall seconds, peak RSS and the ratios ours/DuckDB.
//
// It measures, for each data set, two child processes started from the same
// state (no curated output, no _state/ index; raw objects warm in the page
// cache, as eventgen or the previous run just wrote or read them):
//
//   - ours: bin/rollup --store S --from D1 --to D2 --quiet --force, with
//     every output and state folder of the store deleted first; then the
//     same with --funnels examples/funnels.json (two funnels), whose wall
//     time over the run without is printed (the target is at most 1.10×);
//   - DuckDB: bin/duckbench over the exact same raw objects and days, which
//     copies the deduplicated sorted events and every per-day rollup's
//     reference SQL to zstd Parquet.
//
// Wall seconds are the child's lifetime seen from here (start to exit);
// peak RSS is the child's ru_maxrss from wait4. Best of --runs: the lowest
// wall and the lowest peak RSS, each over the runs. Each run runs ours and
// then DuckDB back to back, so it also prints each run's wall ratio and
// their median: on a shared machine whose speed drifts from minute to
// minute, the best of each side may come from runs minutes apart, while a
// run's two sides saw about the same machine. The data sets, generated
// once and cached under .bench/ (a marker file holds their config):
//
//   - 1day: one day of 5,000,000 events in 96 raw objects (4 an hour);
//   - 30day: 30 days of 100,000 events a day; ours also builds its middle
//     day alone, and the table shows the peak RSS of the whole range over
//     that day's (the target is at most 1.5×).
//
// Results also go to .bench/results.json. It exits non-zero if a child
// fails; a differing events row count is only a warning (the differential
// tests live in internal/job).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/littlewarehouse/warehouse/internal/cli/flagtext"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "bench: %v (see bench --help)\n", ue.error)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// usageError is a mistake in the command line: exit 2.
type usageError struct{ error }

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage of %s:\n", fs.Name())
		flagtext.PrintDefaults(fs, stdout)
	}
	cfg := Config{Args: args, Out: stdout}
	fs.StringVar(&cfg.Only, "only", "", "run one data set only: 1day or 30day")
	fs.IntVar(&cfg.Runs, "runs", 1, "runs of each side per data set; the best (lowest) wall and RSS are reported")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the last run's outputs (the store's curated/ and _state/, DuckDB's Parquet) under .bench/")
	fs.BoolVar(&cfg.Nasty, "nasty", false, "generate with eventgen's nasty cases (duplicates, late, skewed, invalid rows, INT96) but no unreadable objects; cached separately")
	fs.StringVar(&cfg.Dir, "dir", "", "cache and output folder; default .bench in the module root")
	fs.StringVar(&cfg.Rollup, "rollup", "", "use this rollup binary instead of building ./cmd/rollup")
	fs.StringVar(&cfg.DuckBench, "duckbench", "", "use this duckbench binary instead of building ./cmd/duckbench")
	fs.StringVar(&cfg.Funnels, "funnels", "examples/funnels.json", "also run ours with this funnel definition `file` (relative to the module root) after each run without, and print the ratio of the two (\"\" to skip)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if cfg.Runs < 1 {
		return usageError{fmt.Errorf("--runs %d: want at least 1", cfg.Runs)}
	}
	if cfg.Only != "" {
		if _, ok := dataSet(cfg.Only); !ok {
			return usageError{fmt.Errorf("--only %q: want one of %s", cfg.Only, dataSetNames())}
		}
	}
	return Run(ctx, cfg)
}
