// Command duckbench does with DuckDB (in process, default settings: threads
// = cores, memory limit 80% of RAM) the work the rollup job does for a local
// store and a range of reporting days, as the yardstick of `make bench`:
//
//  1. raw: a view over the raw Parquet objects (read_parquet with
//     union_by_name and filename), either the keys given with --keys or
//     every data object under raw/ whose UTC arrival day is from−1 .. to+8;
//  2. routed: rollups/routed.sql, restricted to the days;
//  3. events: rollups/events.sql (deduplicated, sorted) copied to
//     <out>/events.parquet, zstd;
//  4. engagement_daily, user_daily, sessions_daily, paths_daily: their reference SQL over
//     those events, each copied to <out>/<table>.parquet, zstd.
//
// It prints each step's rows and seconds and its own wall time (DuckDB
// start to last file written; the benchmark measures the whole process from
// outside). Data quality and quarantine, which the job also writes, are not
// computed.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/littlewarehouse/warehouse/internal/cli/flagtext"
	"github.com/littlewarehouse/warehouse/internal/day"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "duckbench: %v (see duckbench --help)\n", ue.error)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "duckbench: %v\n", err)
		os.Exit(1)
	}
}

// usageError is a mistake in the command line: exit 2.
type usageError struct{ error }

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("duckbench", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage of %s:\n", fs.Name())
		flagtext.PrintDefaults(fs, stdout)
	}
	var cfg Config
	fs.StringVar(&cfg.Store, "store", "./data", "local store root, the folder holding raw/ (e.g. --store .bench/1day/store)")
	from := fs.String("from", "", "first reporting day, YYYY-MM-DD (required)")
	to := fs.String("to", "", "last reporting day, inclusive, YYYY-MM-DD; default --from")
	fs.StringVar(&cfg.TZ, "tz", "UTC", "reporting time zone, an IANA name (e.g. --tz Pacific/Auckland)")
	keys := fs.String("keys", "", "file of raw object keys relative to the store, one a line; default: every object of the arrival days from−1 .. to+8")
	fs.StringVar(&cfg.Out, "out", "./duckbench-out", "folder for events.parquet and the rollups' Parquet; created")
	fs.StringVar(&cfg.Events, "events", EventsTable, "table: the rollups read a DuckDB table of the events; file: they read the written events.parquet")
	jsonOut := fs.String("json", "", "also write the result as JSON to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *from == "" {
		return usageError{errors.New("--from is required")}
	}
	if *to == "" {
		*to = *from
	}
	var err error
	if cfg.From, err = day.Parse(*from); err != nil {
		return usageError{fmt.Errorf("--from: %w", err)}
	}
	if cfg.To, err = day.Parse(*to); err != nil {
		return usageError{fmt.Errorf("--to: %w", err)}
	}
	if *keys != "" {
		if cfg.Keys, err = readKeys(*keys); err != nil {
			return err
		}
	}
	cfg.Log = stdout
	res, err := Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *jsonOut != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(*jsonOut, append(b, '\n'), 0o644)
	}
	return nil
}

// readKeys reads a key list: one key a line, blank lines and lines starting
// with # skipped.
func readKeys(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	keys := []string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k := strings.TrimSpace(sc.Text()); k != "" && !strings.HasPrefix(k, "#") {
			keys = append(keys, k)
		}
	}
	return keys, sc.Err()
}
