// Package cli is the rollup command line: flags in, one job.Run, a summary
// out. Exit codes: 0 done (bad data is reported, not a failure), 1 the run
// failed, 2 bad usage.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/littlewarehouse/warehouse/internal/catalog"
	"github.com/littlewarehouse/warehouse/internal/cli/flagtext"
	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// usageError is bad usage: exit code 2, with a pointer to the command's
// --help (help, "rollup --help" when empty).
type usageError struct{ msg, help string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{msg: fmt.Sprintf(format, a...)} }

// refusedError is a run refused before it wrote anything, whose message
// already says what to do (a --tz other than the store's, a range past
// today): exit code 2, as re-running the same command cannot help.
type refusedError struct{ msg string }

func (e refusedError) Error() string { return e.msg }

const usageText = `rollup builds the warehouse's curated tables from raw Firehose Parquet.

Usage:
  rollup [flags]                     catch up (what the nightly run does): build every
                                     stale day of the last --max-lateness + 1 days
                                     ending yesterday in the --tz zone (8 days by
                                     default); --include-today adds today, unfinished
  rollup --from 2026-11-01 --to 2026-11-07 [flags]
                                     build (or backfill) those reporting days; a
                                     range past today is refused, and --to today
                                     needs --include-today
  rollup plan [same flags]           print which days are stale and why, the bytes a
                                     run would read and the windowed days it would
                                     touch; it changes no table (it keeps its
                                     index of raw objects, a cache under _state/)
                                     (same as --dry-run)
  rollup ddl --dialect duckdb|athena print CREATE statements for the curated tables
  rollup report --out report.html    write an HTML report of the curated tables
  rollup erase --user U [--now]      erase a person from every raw object, table and
                                     cache, with a receipt (rollup erase --help);
                                     every run first carries out pending erasures

A day already built from the same inputs, code and config is skipped; --force
rebuilds it. Each raw object is read once, ever: a run splits each new object
by reporting day into segments (_state/segments/, a cache that is safe to
delete) and builds each day from its segments, one day at a time, so memory
is bounded by one day, not by the range.
Bad raw objects and invalid rows never fail a run: they are
counted in data_quality_daily, listed in quarantine and reported at the end.

Exit codes: 0 done, 1 the run failed (re-run it: nothing is doubled or lost),
2 bad usage (including a --tz other than the store's, and a range that ends
after today), and then nothing is written.

Flags:
`

// Main runs the rollup command with args (without the program name) and
// returns the exit code. Usage and --help go to stdout; errors, logs and
// the progress bar to stderr.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return mainAt(ctx, time.Now(), args, stdout, stderr)
}

// mainAt is Main with the clock read once by the caller: now decides the
// catch-up range (no --from/--to) and the dates named in messages.
func mainAt(ctx context.Context, now time.Time, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "ddl" {
		return exit(stderr, ddl(ctx, args[1:], stdout, stderr))
	}
	if len(args) > 0 && args[0] == "report" {
		return exit(stderr, reportCmd(ctx, args[1:], stdout, stderr))
	}
	if len(args) > 0 && args[0] == "erase" {
		return exit(stderr, eraseCmd(ctx, now, args[1:], stdout, stderr))
	}
	if len(args) > 0 && args[0] == "plan" {
		return exit(stderr, runCmd(ctx, now, "rollup plan", append([]string{"--dry-run"}, args[1:]...), stdout, stderr))
	}
	return exit(stderr, runCmd(ctx, now, "rollup", args, stdout, stderr))
}

func exit(stderr io.Writer, err error) int {
	var ue usageError
	var re refusedError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		help := ue.help
		if help == "" {
			help = "rollup --help"
		}
		fmt.Fprintf(stderr, "rollup: %s (see %s)\n", ue.msg, help)
		return 2
	case errors.As(err, &re):
		fmt.Fprintf(stderr, "rollup: %s\n", re.msg)
		return 2
	default:
		fmt.Fprintf(stderr, "rollup: %v\n", err)
		return 1
	}
}

// newFlagSet returns the flag set of a command named name ("rollup",
// "rollup ddl", ...) whose --help prints usage and then the flags, named
// with two dashes as the documentation names them. It
// prints nothing while parsing: parseFlags reports errors and help.
func newFlagSet(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		flagtext.PrintDefaults(fs, fs.Output())
	}
	return fs
}

// parseFlags parses args into fs. On -h or --help it prints the usage and
// flags to stdout and returns flag.ErrHelp (exit 0); anything wrong (an
// unknown flag, a bad value) is a one-line usageError (exit 2) that names
// the flag as --flag and points at the command's --help.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			fs.SetOutput(io.Discard)
			return err
		}
		return usageError{msg: flagtext.Message(err), help: fs.Name() + " --help"}
	}
	return nil
}

// options are the flags shared by the commands that run or plan the job.
type options struct {
	store, tz, from, to, rawPrefix string
	parallel                       int
	targetFileSize, rowGroupSize   string
	maxLateness, lockWait          time.Duration
	force, quiet, dryRun           bool
	cpuProfile, memProfile         string
	logFormat                      string
	catalog, glueDatabase          string
	s3Endpoint                     string
	gracePeriod, leaseTTL          optionalDuration
	includeToday                   bool
	dispatch                       string
	dispatchWait                   time.Duration
	funnels                        string
	// given holds the flags given on the command line, by name, as
	// their values print (see rerun).
	given map[string]string
}

// optionalDuration is a duration flag that knows whether it was given, so
// its default can depend on other flags without a sentinel value showing
// in --help.
type optionalDuration struct {
	d   time.Duration
	set bool
}

// String is "" until the flag is set, so --help prints no "(default ...)".
func (o *optionalDuration) String() string {
	if o == nil || !o.set {
		return ""
	}
	return flagtext.FormatDuration(o.d)
}

// Set parses a duration as the other duration flags do (flagtext.ParseDuration:
// 6h, 30m, 1d, 0; never negative).
func (o *optionalDuration) Set(s string) error {
	d, err := flagtext.ParseDuration(s)
	if err != nil {
		return err
	}
	o.d, o.set = d, true
	return nil
}

func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.store, "store", "./data", "where the warehouse lives: a directory (`./data`, file:///abs/path) or s3://bucket/prefix")
	fs.StringVar(&o.from, "from", "", "first reporting day to build, `YYYY-MM-DD` (e.g. --from 2026-11-01); with --to")
	fs.StringVar(&o.to, "to", "", "last reporting day to build, `YYYY-MM-DD`, inclusive (e.g. --to 2026-11-07)")
	fs.StringVar(&o.tz, "tz", "UTC", "reporting time zone, an IANA `name` (e.g. --tz Pacific/Auckland); one per store")
	fs.IntVar(&o.parallel, "parallel", 8, "raw objects read at once (e.g. --parallel 16)")
	fs.StringVar(&o.targetFileSize, "target-file-size", "256MiB", "target size of each events file (e.g. --target-file-size 128MiB)")
	fs.StringVar(&o.rowGroupSize, "row-group-size", "64MiB", "target (uncompressed) size of a Parquet row group")
	flagtext.DurationVar(fs, &o.maxLateness, "max-lateness", 7*24*time.Hour, "how late an event may arrive and still count at its own time; older event_times count at received_at: a `duration` in hours or days (e.g. --max-lateness 72h or 3d)")
	fs.StringVar(&o.rawPrefix, "raw-prefix", "raw/", "where Firehose writes raw objects in the store (e.g. --raw-prefix firehose/events/)")
	fs.BoolVar(&o.force, "force", false, "rebuild days that are already up to date")
	fs.BoolVar(&o.includeToday, "include-today", false, "also build today, which is unfinished: its numbers are partial until a run after midnight rebuilds it (the catch-up adds today; with --from/--to, --to may then be today)")
	fs.StringVar(&o.catalog, "catalog", "", "where to register tables and partitions: `local` (JSON under catalog/ in the store; the default for a local store), glue (the default for s3://) or none")
	fs.StringVar(&o.glueDatabase, "glue-database", "warehouse", "Glue database for --catalog glue (created if missing)")
	fs.StringVar(&o.s3Endpoint, "s3-endpoint", "", "S3-compatible endpoint `URL` (or set AWS_ENDPOINT_URL_S3); region and credentials come from the standard AWS chain")
	fs.Var(&o.gracePeriod, "grace-period", "keep superseded runs for this `duration` after the catalog stopped pointing at them, for readers still holding them (e.g. --grace-period 1h; default 6h on an s3:// store, 0 on a local one)")
	flagtext.DurationVar(fs, &o.lockWait, "lock-wait", 30*time.Second, "how long (a `duration`) to wait when another rollup holds a day, a windowed partition or the windowed stage this run needs, logging who holds it while it waits, then exit 1 naming the holder (e.g. --lock-wait 10m)")
	fs.Var(&o.leaseTTL, "lease-ttl", "how long (a `duration`) a lease on a day lasts unless renewed, after which another rollup may take the day over (default 30m, or $LW_LEASE_TTL); a run renews it every third of that (e.g. --lease-ttl 5m)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	fs.BoolVar(&o.dryRun, "dry-run", false, "print the plan (see rollup plan) and stop")
	fs.StringVar(&o.funnels, "funnels", "", "check this funnel definition `file` (JSON; see docs/tables.md#funnel_daily) and save it as the store's config/funnels.json before the run: this and every later run, the nightly one too, computes funnel_daily from it (changing it recomputes funnel_daily, not the days)")
	fs.StringVar(&o.dispatch, "dispatch", "", "run on AWS instead of here: `sfn:STATE_MACHINE_ARN` starts one execution of the nightly state machine for --from..--to (any length; the stack's StateMachineArn output), follows it (days done, failed, running) and prints its summary; lambda:FUNCTION builds one day (--from D --to D) on the rollup function, then the windowed tables and registration run here")
	flagtext.DurationVar(fs, &o.dispatchWait, "dispatch-wait", 0, "with --dispatch sfn:, stop following the execution after this `duration` (it goes on in AWS; the console shows it); 0 follows it to its end (e.g. --dispatch-wait 3h)")
	fs.StringVar(&o.logFormat, "log", "auto", "log `format`: text (warnings only, for people), json (structured, for CloudWatch), or auto (text on a terminal)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile to this `file` (for go tool pprof)")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a heap profile to this `file` at the end")
}

// leaseTTL is --lease-ttl, else $LW_LEASE_TTL, else 0 (the job's default).
func leaseTTL(flag optionalDuration) (time.Duration, error) {
	if flag.set {
		if flag.d <= 0 {
			return 0, usagef("--lease-ttl must be positive")
		}
		return flag.d, nil
	}
	v := os.Getenv("LW_LEASE_TTL")
	if v == "" {
		return 0, nil
	}
	d, err := flagtext.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, usagef("LW_LEASE_TTL=%q: want a positive duration such as 30m", v)
	}
	return d, nil
}

// parseSize parses 256MiB, 64MB, 1GiB, 4096.
func parseSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(v), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size (e.g. 256MiB)", s)
	}
	return n * mult, nil
}

// config turns the flags into a job config. now is used only when no dates
// are given.
func (o *options) config(ctx context.Context, now time.Time) (job.Config, error) {
	var cfg job.Config
	loc, err := time.LoadLocation(o.tz)
	if err != nil || o.tz == "" || strings.EqualFold(o.tz, "local") {
		return cfg, usagef("unknown time zone %q (want an IANA name such as UTC or Pacific/Auckland)", o.tz)
	}
	if o.maxLateness <= 0 {
		return cfg, usagef("--max-lateness must be positive")
	}
	rules := compact.DefaultRules(loc)
	rules.MaxLateness = o.maxLateness
	var from, to day.Day
	switch {
	case o.from == "" && o.to == "":
		from, to = job.CatchUp(now, loc, o.maxLateness, o.includeToday)
	case o.from == "" || o.to == "":
		return cfg, usagef("--from and --to go together")
	default:
		if from, err = day.Parse(o.from); err != nil {
			return cfg, usagef("--from: %v", err)
		}
		if to, err = day.Parse(o.to); err != nil {
			return cfg, usagef("--to: %v", err)
		}
		if from > to {
			return cfg, usagef("--from %s is after --to %s", from, to)
		}
		if err := checkNotFuture(to, now, loc, o.includeToday); err != nil {
			return cfg, err
		}
	}
	tfs, err := parseSize(o.targetFileSize)
	if err != nil {
		return cfg, usagef("--target-file-size: %v", err)
	}
	rgs, err := parseSize(o.rowGroupSize)
	if err != nil {
		return cfg, usagef("--row-group-size: %v", err)
	}
	if o.parallel < 1 {
		return cfg, usagef("--parallel must be at least 1")
	}
	if !strings.HasSuffix(o.rawPrefix, "/") {
		o.rawPrefix += "/"
	}
	st, err := store.Open(ctx, o.store, store.Options{S3Endpoint: o.s3Endpoint})
	if err != nil {
		return cfg, usagef("%v", err)
	}
	isS3 := strings.HasPrefix(o.store, "s3://")
	if o.catalog == "" {
		o.catalog = "local"
		if isS3 {
			o.catalog = "glue"
		}
	}
	var cat catalog.Catalog
	switch o.catalog {
	case "none":
	case "local":
		cat = catalog.NewLocal(st, time.Now)
	case "glue":
		g, err := catalog.OpenGlue(ctx, catalog.GlueOptions{Database: o.glueDatabase})
		if err != nil {
			return cfg, err
		}
		cat = g
	default:
		return cfg, usagef("--catalog %q: want local, glue or none", o.catalog)
	}
	cfg = job.Config{
		Store: st, From: from, To: to, Rules: rules, RawPrefix: o.rawPrefix, Parallel: o.parallel,
		TargetFileSize: tfs, RowGroupSize: rgs, Force: o.force, LockWait: o.lockWait, Catalog: cat,
	}
	if cfg.LockTTL, err = leaseTTL(o.leaseTTL); err != nil {
		return cfg, err
	}
	switch {
	case o.gracePeriod.set:
		cfg.GracePeriod = o.gracePeriod.d
	case isS3:
		cfg.GracePeriod = 6 * time.Hour
	}
	return cfg, nil
}

// checkNotFuture refuses a range whose last day, to, is after today in
// loc as seen at now (nothing has happened there yet: building it would
// publish zeros), or is today without includeToday (today is not over).
func checkNotFuture(to day.Day, now time.Time, loc *time.Location, includeToday bool) error {
	today := day.Of(now.UnixMilli(), loc)
	switch {
	case to > today:
		return refusedError{fmt.Sprintf("--to %s is after today (%s in time zone %s): a day that has not happened has no data, and building it would publish zeros; "+
			"end the range at --to %s (or at today, %s, with --include-today)", to, today, loc, today-1, today)}
	case to == today && !includeToday:
		return refusedError{fmt.Sprintf("--to %s is today in time zone %s, which is not over: its numbers are partial until a run after midnight rebuilds it; "+
			"end the range at --to %s, or add --include-today to build today anyway", to, loc, today-1)}
	}
	return nil
}

// rebuildFlags are the flags a suggested command repeats when this run
// gave them (besides --store, always, and --tz): those that say where the
// data is and how days are built. The range, the mode and the output are
// the suggestion's own.
var rebuildFlags = []string{"raw-prefix", "max-lateness", "target-file-size", "row-group-size", "catalog", "glue-database", "s3-endpoint"}

// rerun returns a rollup command line, as a shell takes it, that builds
// from..to in this run's store with this run's settings: --store, --tz
// (tz, or this run's zone when tz is ""; left out when UTC), the
// rebuildFlags given, then extra.
func (o *options) rerun(from, to day.Day, tz string, extra ...string) string {
	if tz == "" {
		tz = o.tz
	}
	args := []string{"rollup", "--store", shellQuote(o.store), "--from", from.String(), "--to", to.String()}
	if tz != "UTC" {
		args = append(args, "--tz", shellQuote(tz))
	}
	for _, name := range rebuildFlags {
		if v, ok := o.given[name]; ok {
			args = append(args, "--"+name, shellQuote(v))
		}
	}
	return strings.Join(append(args, extra...), " ")
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// letters, digits and _ - . / : = @ % + ,
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-./:=@%+,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// checkZone refuses, before anything is written or logged, a run whose
// --tz is not the zone the store's tables are in (job.RecordedZone). A
// store no run has recorded a zone in yet takes this run's.
func (o *options) checkZone(ctx context.Context, cfg job.Config, now time.Time) error {
	err := job.CheckZone(ctx, cfg.Store, cfg.Rules.Loc)
	if ze := (*job.ZoneError)(nil); errors.As(err, &ze) {
		return refusedError{o.zoneMessage(ctx, cfg.Store, ze, now)}
	}
	return err
}

// zoneMessage replaces job.ZoneError's message (whose rebuild command has
// FIRST-DAY and LAST-DAY placeholders) with one whose command works as
// printed: it rebuilds, in the wanted zone, every day the store has built
// (the days of data_quality_daily, one per built day, seen in the wanted
// zone and ending yesterday there), or, when none was built, this
// command's days.
func (o *options) zoneMessage(ctx context.Context, st store.Store, ze *job.ZoneError, now time.Time) string {
	want, err := time.LoadLocation(ze.Want)
	if err != nil {
		want = time.UTC
	}
	have, err := time.LoadLocation(ze.Have)
	if err != nil {
		have = time.UTC
	}
	yesterday := day.Of(now.UnixMilli(), want) - 1
	var from, to day.Day
	if parts, err := publish.Partitions(ctx, st, "data_quality_daily"); err == nil && len(parts) > 0 {
		first, err1 := day.Parse(strings.TrimPrefix(parts[0], "dt="))
		last, err2 := day.Parse(strings.TrimPrefix(parts[len(parts)-1], "dt="))
		if err1 == nil && err2 == nil {
			from = day.Of(first.Start(have).UnixMilli(), want)
			to = day.Of(last.End(have).UnixMilli()-1, want)
		}
	}
	if from == 0 {
		from, to = job.CatchUp(now, want, o.maxLateness, false)
		if o.from != "" && o.to != "" {
			from, _ = day.Parse(o.from)
			to, _ = day.Parse(o.to)
		}
	}
	to = min(to, yesterday)
	from = min(from, to)
	return fmt.Sprintf("the tables in %s are in time zone %s, not %s; days of two zones cannot be mixed. "+
		"Run with --tz %s, or rebuild every built day in %s: delete curated/ and _state/ from the store (raw/ stays) and run: %s",
		o.store, ze.Have, ze.Want, ze.Have, ze.Want, o.rerun(from, to, ze.Want))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// runCmd runs (or with --dry-run plans) the job. name is the command as
// typed ("rollup" or "rollup plan"), for usage messages.
func runCmd(ctx context.Context, now time.Time, name string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet(name, usageText)
	var o options
	o.register(fs)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	o.given = map[string]string{}
	fs.Visit(func(f *flag.Flag) { o.given[f.Name] = f.Value.String() })
	cfg, err := o.config(ctx, now)
	if err != nil {
		return err
	}
	if err := o.checkZone(ctx, cfg, now); err != nil {
		return err
	}
	err = o.run(ctx, cfg, stdout, stderr)
	if ze := (*job.ZoneError)(nil); errors.As(err, &ze) { // the store got a zone since checkZone
		return refusedError{o.zoneMessage(ctx, cfg.Store, ze, now)}
	}
	if nw := (*job.NotWarehouseError)(nil); errors.As(err, &nw) {
		return usageError{msg: nw.Error()} // exit 2, nothing written
	}
	return err
}

// run does what the parsed options ask with cfg: plan, dispatch, or run
// here, printing the plan or summary to stdout and logging to stderr.
func (o *options) run(ctx context.Context, cfg job.Config, stdout, stderr io.Writer) error {
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if o.memProfile != "" {
		defer func() {
			if f, err := os.Create(o.memProfile); err == nil {
				pprof.WriteHeapProfile(f)
				f.Close()
			}
		}()
	}
	if o.dispatch != "" && o.force {
		return usagef("--force does not go with --dispatch: the function plans by the same fingerprints as a local run; rebuild with a local rollup --force, or delete the days' manifests")
	}
	if o.funnels != "" {
		if err := saveFunnels(ctx, cfg.Store, o.funnels, o.dryRun, stdout); err != nil {
			return err
		}
	}
	if o.dryRun {
		p, err := job.Plan(ctx, cfg)
		if err != nil {
			return err
		}
		printPlan(stdout, cfg, p)
		return printPendingErasures(ctx, cfg.Store, stdout)
	}
	if o.dispatch != "" {
		// The state machine carries out pending erasures itself (its Erase
		// state); a one-day dispatch builds there and erases here.
		if !strings.HasPrefix(o.dispatch, "sfn:") {
			if err := erasuresBeforeBuild(ctx, cfg, stdout); err != nil {
				return err
			}
		}
		return dispatch(ctx, cfg, o.dispatch, o.dispatchWait, stdout, stderr)
	}
	tty := isTerminal(stderr)
	switch o.logFormat {
	case "auto", "text", "json":
	default:
		return usagef("--log %q: want text, json or auto", o.logFormat)
	}
	jsonLog := !(o.logFormat == "text" || (o.logFormat == "auto" && tty))
	if jsonLog {
		cfg.Log = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	} else {
		cfg.Log = slog.New(summarizedHandler{slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})})
	}
	bar := &progressBar{w: stderr, on: tty && !o.quiet}
	cfg.Progress = bar.update
	cfg.Log.Info("rollup starting", "store", cfg.Store.String(), "from", cfg.From.String(), "to", cfg.To.String(), "tz", cfg.Rules.Loc.String())
	if err := erasuresBeforeBuild(ctx, cfg, stdout); err != nil {
		return err
	}
	sum, err := job.Run(ctx, cfg)
	bar.finish()
	if sum != nil && len(sum.Days) > 0 {
		printSummary(stdout, sum, o)
	}
	if sum != nil && jsonLog {
		logSkipped(cfg.Log, sum)
	}
	if err != nil {
		var ze *job.ZoneError
		var le *job.LockedError
		var he *lease.HeldError
		switch {
		case errors.As(err, &ze) || errors.As(err, &le):
			return err
		case errors.As(err, &he):
			// Stage 2 (users and the windowed tables) or a partition held
			// by another rollup past --lock-wait: the days this run built
			// are published; the holder or the next run finishes the rest.
			return fmt.Errorf("another rollup is writing what this run needs (waited %s, see --lock-wait); re-run when it is done (nothing is doubled or lost): %w", o.lockWait, he)
		}
		return fmt.Errorf("run failed, re-run to finish (nothing is doubled or lost): %w", err)
	}
	cfg.Log.Info("rollup done", "run", sum.Run, "days", len(sum.Days), "bad_objects", len(sum.BadObjects), "ignored_keys", len(sum.IgnoredKeys), "seconds", sum.Seconds)
	return nil
}

// summarizedWarnings are the prefixes of the job's warnings whose every
// fact the summary printed at the end of a run repeats: each bad raw
// object (its "bad raw objects" section names them all, and where they are
// counted) and each day before the range holding rows no table counts
// (its section lists them, and the command that builds them).
var summarizedWarnings = []string{"bad raw object", "a day before this run holds rows"}

// summarizedHandler is the log for people (--log text): it leaves out the
// summarizedWarnings, so that each of those facts is read once, in the
// summary, and not first as a warning that looks like a problem of the run
// (the demo's deliberately bad objects). The JSON log keeps them all.
type summarizedHandler struct{ slog.Handler }

// Handle drops the summarized warnings and passes on the rest.
func (h summarizedHandler) Handle(ctx context.Context, r slog.Record) error {
	for _, p := range summarizedWarnings {
		if strings.HasPrefix(r.Message, p) {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the filter on the derived handler.
func (h summarizedHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return summarizedHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the filter on the derived handler.
func (h summarizedHandler) WithGroup(name string) slog.Handler {
	return summarizedHandler{h.Handler.WithGroup(name)}
}

// logSkipped logs, at the end of a run, one warning per bad raw object
// (key, day, reason, error) and per object ignored under the raw prefix:
// the complete list the terminal summary shows, for whoever reads only the
// JSON log. (The job also warns when it first meets one; objects already
// known bad from the index are named only here.)
func logSkipped(log *slog.Logger, s *job.Summary) {
	for _, b := range s.BadObjects {
		log.Warn("bad raw object: counted in data_quality_daily.bad_files and quarantined, its rows are not used",
			"key", b.Key, "day", b.Day.String(), "reason", b.Reason, "error", b.Error, "run", s.Run)
	}
	for _, k := range s.IgnoredKeys {
		log.Warn("object under the raw prefix not read: not in the YYYY/MM/DD/HH/ layout, or named _* or .* (not data)", "key", k, "run", s.Run)
	}
}

// progressBar draws one line on a terminal.
type progressBar struct {
	w     io.Writer
	on    bool
	drawn bool
	last  time.Time
}

func (b *progressBar) update(p job.Progress) {
	if !b.on || (time.Since(b.last) < 100*time.Millisecond && p.Done != p.Total) {
		return
	}
	b.last = time.Now()
	const width = 30
	filled := 0
	if p.Total > 0 {
		filled = width * p.Done / p.Total
	}
	label := fmt.Sprintf("reading raw objects %d/%d", p.Done, p.Total)
	if p.Phase == "build" {
		label = fmt.Sprintf("built day %s (%d/%d)", p.Day, p.Done, p.Total)
	}
	fmt.Fprintf(b.w, "\r[%s%s] %-40s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), label)
	b.drawn = true
}

func (b *progressBar) finish() {
	if b.drawn {
		fmt.Fprintf(b.w, "\r%s\r", strings.Repeat(" ", 75))
	}
}

// printSummary prints the summary of a run made with the options o (its
// suggested commands repeat o's store and settings).
// dayRow is a built day's line of a summary, under printDayHeader.
const dayRow = "%-10s  %10d  %10d  %9d  %8d  %8d  %8d  %7d  %5d  %9s  %6.1f  %s\n"

// printDayHeader prints the header of a summary's day lines (a local run's
// and a dispatched one's). "no time" is
// data_quality_daily.missing_event_time_rows (events sent without an
// event_time), "bad time" its clock_skewed_rows (an event_time too far
// from received_at): both counted at their arrival.
func printDayHeader(w io.Writer) {
	fmt.Fprintf(w, "%-10s  %10s  %10s  %9s  %8s  %8s  %8s  %7s  %5s  %9s  %6s  %s\n",
		"day", "raw rows", "events", "dupes", "invalid", "no time", "bad time", "bad obj", "files", "bytes", "secs", "")
}

func printSummary(w io.Writer, s *job.Summary, o *options) {
	fmt.Fprintf(w, "run %s: %d raw objects read (%s) into %d segments (%s) in %.1fs\n\n", s.Run, s.RawObjects, store.HumanSize(s.RawBytes),
		s.SegmentsWritten, store.HumanSize(s.SegmentBytes), s.Seconds)
	printDayHeader(w)
	for _, d := range s.Days {
		if d.Skipped {
			fmt.Fprintf(w, "%-10s  %s\n", d.Day, d.Why+", skipped (--force rebuilds)")
			continue
		}
		q := d.Quality
		fmt.Fprintf(w, dayRow, d.Day, q.RawRows, q.KeptRows, q.DuplicatesDropped, q.InvalidRows, q.MissingEventTimeRows, q.ClockSkewedRows, q.BadFiles,
			d.FilesWritten, store.HumanSize(d.BytesWritten), d.Seconds, d.Why)
	}
	var restated []string
	for _, d := range s.Days {
		if d.Quality.Restated {
			restated = append(restated, fmt.Sprintf("%s (%d -> %d events)", d.Day, d.EventsBefore, d.Quality.KeptRows))
		}
	}
	if len(restated) > 0 {
		fmt.Fprintf(w, "\nrestated days (published before, numbers changed): %s\n", strings.Join(restated, ", "))
	}
	if ws := s.Windowed; ws != nil {
		fmt.Fprintf(w, "\nwindowed tables (as of %s): %d active_users_daily, %d retention_daily and %d lifecycle_daily, stickiness_daily and funnel_daily partitions published, %d up to date\n",
			ws.AsOf, ws.ActiveDays, ws.Cohorts, ws.Others, ws.UpToDate)
		printFunnels(w, ws.FunnelsError, ws.FunnelsFileBad, ws.FunnelDaysRemade)
		if u := ws.Users; u != nil && len(u.Buckets) > 0 {
			fmt.Fprintf(w, "users: %d of %d buckets republished from %d user_daily partitions read (%d people gone, %d whose first day moved later)\n",
				len(u.Buckets), rollups.UserBuckets, u.DaysRead, u.Gone, u.FirstSeenLater)
		}
	}
	var moved []job.Restated
	for _, d := range s.Days {
		moved = append(moved, d.Restatements...)
	}
	if s.Windowed != nil {
		moved = append(moved, s.Windowed.Restatements...)
	}
	const most = 20
	for i, r := range moved {
		if i == most {
			fmt.Fprintf(w, "  ... and %d more restated numbers (table restatements, and the JSON log)\n", len(moved)-most)
			break
		}
		fmt.Fprintf(w, "  restated: %s\n", r)
	}
	if len(s.BadObjects) > 0 {
		fmt.Fprintf(w, "\n%d bad raw objects (counted in data_quality_daily.bad_files, listed in quarantine):\n", len(s.BadObjects))
		for _, b := range s.BadObjects {
			fmt.Fprintf(w, "  %s  %s  %s\n", b.Day, b.Reason, b.Key)
		}
	}
	if len(s.IgnoredKeys) > 0 {
		fmt.Fprintf(w, "\n%d objects under the raw prefix were not read (not in the YYYY/MM/DD/HH/ layout, or named _* or .*), e.g. %s\n", len(s.IgnoredKeys), s.IgnoredKeys[0])
	}
	if len(s.Earlier) > 0 {
		fmt.Fprintf(w, "\n%d days before this run's range hold rows that no published table counts yet:\n", len(s.Earlier))
		for _, e := range s.Earlier {
			fmt.Fprintf(w, "  %s  %s (%d objects)\n", e.Day, e.Why, e.Objects)
		}
		fmt.Fprintf(w, "  build them with: %s\n", o.rerun(s.Earlier[0].Day, s.Earlier[len(s.Earlier)-1].Day, ""))
	}
}

func printPlan(w io.Writer, cfg job.Config, p *job.PlanSummary) {
	fmt.Fprintf(w, "plan for %s .. %s (time zone %s) in %s\n\n", cfg.From, cfg.To, cfg.Rules.Loc, cfg.Store)
	fmt.Fprintf(w, "%-10s  %-5s  %7s  %9s  %s\n", "day", "build", "objects", "bytes", "why")
	builds := 0
	for _, d := range p.Days {
		b := "no"
		if d.Build {
			b = "yes"
			builds++
		}
		fmt.Fprintf(w, "%-10s  %-5s  %7d  %9s  %s\n", d.Day, b, d.Inputs, store.HumanSize(d.InputBytes), d.Why)
	}
	fmt.Fprintf(w, "\n%d of %d days to build; %d raw objects (%s) to read, each once; the days' other inputs come from their segments\n",
		builds, len(p.Days), p.ReadCount, store.HumanSize(p.ReadBytes))
	if len(p.ActiveDays) > 0 {
		fmt.Fprintf(w, "windowed: active_users_daily %s .. %s and retention_daily cohorts %s .. %s, up to the last day with data\n",
			p.ActiveDays[0], p.ActiveDays[len(p.ActiveDays)-1], p.Cohorts[0], p.Cohorts[len(p.Cohorts)-1])
	}
}
