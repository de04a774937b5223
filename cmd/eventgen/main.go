// Command eventgen writes deterministic synthetic raw events to a store in the
// exact layout Kinesis Data Firehose uses (raw/YYYY/MM/DD/HH/...), for demos,
// tests and benchmarks. See package internal/gen for the model.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/littlewarehouse/warehouse/internal/cli/flagtext"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/store"
)

const usageHead = `eventgen writes synthetic Firehose-style raw Parquet events to a store.

Usage:
  eventgen [flags]

Examples:
  eventgen --out ./data                                  # a week ending yesterday, 200000 events a day
  eventgen --out ./data --from 2026-01-01 --to 2026-01-07 --seed 7 --nasty
  eventgen --out s3://bucket/prefix --from 2026-01-01 --to 2026-01-01 --events-per-day 5000000
  eventgen --out ./data --late-rate 0.05 --int96-objects 3 --compression gzip

The same flags and seed always give the same object keys and bytes. A report of
what was written (bad objects, counts) goes to _eventgen/<seed>-<from>-<to>.json.

Flags:
`

// usageError is a mistake in the command line: exit 2.
type usageError struct{ error }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	err := run(ctx, os.Args[1:], time.Now(), os.Stdout, os.Stderr)
	var ue usageError
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ue):
		fmt.Fprintf(os.Stderr, "eventgen: %v (see eventgen --help)\n", ue.error)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "eventgen: %v\n", err)
		os.Exit(1)
	}
}

// run parses args into a gen.Config, generates, and prints a summary. now
// only sets the default range.
func run(ctx context.Context, args []string, now time.Time, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eventgen", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	yesterday := now.UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	weekAgo := now.UTC().AddDate(0, 0, -7).Format(time.DateOnly)

	var cfg gen.Config
	out := fs.String("out", "./data", "store to write to: a path, file:// or s3:// URL; created if missing (e.g. --out ./data)")
	from := fs.String("from", weekAgo, "first UTC arrival day, YYYY-MM-DD; default: 7 days ago (e.g. --from 2026-01-01)")
	to := fs.String("to", yesterday, "last UTC arrival day, inclusive, YYYY-MM-DD; default: yesterday (e.g. --to 2026-01-07)")
	fs.IntVar(&cfg.EventsPerDay, "events-per-day", 200000, "good events per day, before duplicates and invalid rows (e.g. --events-per-day 5000000)")
	fs.IntVar(&cfg.ObjectsPerHour, "objects-per-hour", gen.DefaultObjectsPerHour, "objects per arrival hour; 4 = Firehose's 15-minute buffer (e.g. --objects-per-hour 12)")
	fs.Int64Var(&cfg.Seed, "seed", 1, "random seed; same seed, same data (e.g. --seed 42)")
	fs.StringVar(&cfg.Stream, "stream", gen.DefaultStream, "Firehose stream name in the object names (e.g. --stream app-events)")
	fs.IntVar(&cfg.Users, "users", 0, "distinct users; 0 = events-per-day/20, at least 10 (e.g. --users 50000)")
	nasty := fs.Bool("nasty", false, "turn on every nasty case at small rates: 2% duplicates, 3% late, 1% skewed, 1% missing time, 1% invalid, 2 INT96 objects, one bad object of each kind; the knob flags below override")
	fs.Float64Var(&cfg.DuplicateRate, "duplicate-rate", 0, "fraction of events delivered twice, same event_id (e.g. --duplicate-rate 0.02)")
	fs.Float64Var(&cfg.LateRate, "late-rate", 0, "fraction of events with event_time 1 h to 6 days before received_at (e.g. --late-rate 0.03)")
	fs.BoolVar(&cfg.StartOnFrom, "start-on-from", false, "start the data on --from, as for a service that went live that day: no row but a clock-skewed one is dated before it, so no day before the range holds rows (by default the first days' late events reach up to 6 days before --from)")
	fs.Float64Var(&cfg.SkewedRate, "skewed-rate", 0, "fraction of events with event_time >10 min ahead or >7 days behind received_at (e.g. --skewed-rate 0.01)")
	fs.Float64Var(&cfg.MissingTimeRate, "missing-time-rate", 0, "fraction of events with a null event_time (e.g. --missing-time-rate 0.01)")
	fs.Float64Var(&cfg.InvalidRate, "invalid-rate", 0, "fraction of extra rows with no event_name or no user_id/device_id (e.g. --invalid-rate 0.01)")
	fs.Float64Var(&cfg.AnonRate, "anon-rate", gen.DefaultAnonRate, "share of users that are anonymous (device_id only); a third of them sign in later; 0 = none (e.g. --anon-rate 0.5)")
	fs.Float64Var(&cfg.SessionIDRate, "session-id-rate", gen.DefaultSessionIDRate, "share of sessions whose events carry a session_id; 0 = none (e.g. --session-id-rate 1)")
	fs.IntVar(&cfg.INT96Objects, "int96-objects", 0, "objects whose event_time/received_at are physical INT96, as Hive writes (e.g. --int96-objects 2)")
	fs.IntVar(&cfg.NotParquet, "not-parquet", 0, "bad objects holding JSON text instead of Parquet (e.g. --not-parquet 1)")
	fs.IntVar(&cfg.Truncated, "truncated", 0, "bad objects holding a Parquet file cut in half (e.g. --truncated 1)")
	fs.IntVar(&cfg.ZeroByte, "zero-byte", 0, "bad objects of zero bytes (e.g. --zero-byte 1)")
	fs.StringVar(&cfg.Compression, "compression", gen.DefaultCompression, "Parquet compression: snappy (as Firehose), gzip, zstd or none (e.g. --compression gzip)")

	fs.Usage = func() {} // errors are one line; --help prints usage below
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, fs)
			return err
		}
		return usageError{errors.New(flagtext.Message(err))}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	var err error
	if cfg.From, err = time.Parse(time.DateOnly, *from); err != nil {
		return usageError{fmt.Errorf("--from %q: want YYYY-MM-DD", *from)}
	}
	if cfg.To, err = time.Parse(time.DateOnly, *to); err != nil {
		return usageError{fmt.Errorf("--to %q: want YYYY-MM-DD", *to)}
	}
	// In gen, 0 means "default"; on the command line it means none.
	for _, p := range []*float64{&cfg.AnonRate, &cfg.SessionIDRate} {
		if *p == 0 {
			*p = -1
		}
	}
	if *nasty {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		n := gen.Nasty(gen.Config{})
		knobs := []struct {
			flag string
			f    *float64
			v    float64
		}{
			{"duplicate-rate", &cfg.DuplicateRate, n.DuplicateRate},
			{"late-rate", &cfg.LateRate, n.LateRate},
			{"skewed-rate", &cfg.SkewedRate, n.SkewedRate},
			{"missing-time-rate", &cfg.MissingTimeRate, n.MissingTimeRate},
			{"invalid-rate", &cfg.InvalidRate, n.InvalidRate},
		}
		for _, k := range knobs {
			if !set[k.flag] {
				*k.f = k.v
			}
		}
		counts := []struct {
			flag string
			p    *int
			v    int
		}{
			{"int96-objects", &cfg.INT96Objects, n.INT96Objects},
			{"not-parquet", &cfg.NotParquet, n.NotParquet},
			{"truncated", &cfg.Truncated, n.Truncated},
			{"zero-byte", &cfg.ZeroByte, n.ZeroByte},
		}
		for _, k := range counts {
			if !set[k.flag] {
				*k.p = k.v
			}
		}
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}

	st, err := store.Open(ctx, *out, store.Options{Create: true})
	if err != nil {
		return err
	}
	start := time.Now()
	rep, err := gen.Generate(ctx, st, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, summary(rep, st.String(), time.Since(start)))
	return nil
}

// printUsage prints the usage and the flags, named with two dashes.
func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, usageHead)
	flagtext.PrintDefaults(fs, w)
}

func summary(r gen.Report, where string, took time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "eventgen: wrote %d raw rows (%d events, %d duplicates, %d invalid) in %d Parquet objects",
		r.RawRows, r.Events, r.Duplicates, r.Invalid, len(r.Objects))
	if len(r.INT96Objects) > 0 {
		fmt.Fprintf(&b, " (%d with INT96 times)", len(r.INT96Objects))
	}
	if len(r.BadObjects) > 0 {
		fmt.Fprintf(&b, " plus %d deliberately bad objects", len(r.BadObjects))
	}
	fmt.Fprintf(&b, ", %.1f MiB, to %s/raw/ for arrival days %s to %s (seed %d, %s, %d objects an hour) in %s.",
		float64(r.Bytes)/(1<<20), strings.TrimSuffix(where, "/"), r.From, r.To, r.Seed, r.Compression, r.ObjectsPerHour, took.Round(10*time.Millisecond))
	fmt.Fprintf(&b, " %d sessions of %d users; %d late, %d clock-skewed, %d without event_time, %d anonymous events, %d sign-ins.",
		r.Sessions, r.Users, r.Late, r.Skewed, r.MissingTime, r.AnonEvents, r.SignIns)
	fmt.Fprintf(&b, " Report: %s.", r.Key)
	return b.String()
}
