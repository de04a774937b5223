package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/littlewarehouse/warehouse/internal/cli/flagtext"
	"github.com/littlewarehouse/warehouse/internal/erasure"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/store"
)

const eraseUsage = `rollup erase removes a person from the warehouse: every raw object, table
and cache that holds their events (the right to be forgotten).

Usage:
  rollup erase --store S --user u-42 [--user anon:3f9c…] [--product shop] [--now]
  rollup erase --store S --users-file ids.txt [--now]    one id a line
  rollup erase --store S --now                           carry out the pending requests now
  rollup erase --store S --status                        list the requests, pending or done

An id is a user_id, or the device id an anonymous user_key is made of
(anon:<device_id>, or the device id alone), trimmed of spaces around it
(an id empty once trimmed is refused): a row is the person's when its
user_id or device_id is one of the ids. Give both the user id and the device
id of someone who used the app before signing in. --product limits the
erasure to one product's rows; without it, every product's.

The request is recorded under _state/erasures/ and never rewritten. It holds
a keyed hash (HMAC-SHA256, with a key kept once per store under
_state/erasure-key) of each id, never the id, and the time it was made: it
covers every event received up to then. Events received later are new data
(the person came back).

The next run carries it out: --now at once, else the next rollup (the CLI,
or the nightly run on AWS), before it builds; a rollup that finds another
one carrying out erasures (waiting --lock-wait) builds without them. It
rewrites each raw object and Firehose error file holding the person's rows
without them (a new object beside it, checked before it is written and
read back after; from then on builds read it in the old one's place, and
the old one and its segments are deleted), rebuilds the built days those
objects fed, then users and the windowed tables, searches every remaining
raw object, error file and table file for their rows (and deletes every
segment not cut from a raw object found clean), and only then writes the
receipt _state/erasures/<request>.done.json: the objects rewritten, the
days rebuilt, the rows removed per table, and the scan (rows found: 0). It
holds counts and keys, never ids or event contents. A run killed part way
is finished by the next one, which searches every object again from the
start; nothing is left half erased. A row is received before the request
if its received_at says so, or if the object holding it was stored before
the request (whatever its received_at says: a bad clock's 2099 is erased
too). Firehose may deliver an object up to a day after the events in it
were received: until then, each run also reads the objects that arrived
since the last scan, erases any of the person's rows they hold (received
before the request), and writes a late receipt
(_state/erasures/<request>.late-<time>.json) when it erased some, or when
it closes the request.

Objects that cannot be read as rows (not Parquet, truncated), and Firehose
error files holding a record that cannot be decoded, cannot be searched
whole: the receipt names them (unsearchable). On S3, superseded runs of
the tables are kept for --grace-period (6h) for readers, and non-current
object versions expire by the bucket's lifecycle: see infra/README.md.

Exit codes: 0 recorded (and with --now, done), 1 it failed (run it again),
2 bad usage.

Flags:
`

// eraseCmd is `rollup erase`.
func eraseCmd(ctx context.Context, now time.Time, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rollup erase", eraseUsage)
	var o options
	var users multiFlag
	var usersFile, product string
	var atOnce, status bool
	fs.StringVar(&o.store, "store", "./data", "where the warehouse lives: a directory (`./data`, file:///abs/path) or s3://bucket/prefix")
	fs.Var(&users, "user", "an `id` to erase: a user_id, or anon:<device_id> (repeat the flag for several)")
	fs.StringVar(&usersFile, "users-file", "", "a `file` of ids to erase, one a line (blank lines and lines starting with # are skipped)")
	fs.StringVar(&product, "product", "", "erase only this `product`'s rows (default: every product)")
	fs.BoolVar(&atOnce, "now", false, "carry out every pending request at once, instead of at the next run")
	fs.BoolVar(&status, "status", false, "list the requests, each pending or done, and change nothing")
	fs.StringVar(&o.tz, "tz", "UTC", "the store's reporting time zone, an IANA `name` (with --now: the days rebuilt are in it)")
	flagtext.DurationVar(fs, &o.maxLateness, "max-lateness", 7*24*time.Hour, "as for rollup (with --now, the rebuilt days use it)")
	fs.StringVar(&o.rawPrefix, "raw-prefix", "raw/", "where Firehose writes raw objects in the store")
	fs.IntVar(&o.parallel, "parallel", 8, "objects read at once")
	fs.StringVar(&o.catalog, "catalog", "", "where rebuilt partitions are registered: local, glue or none (as for rollup)")
	fs.StringVar(&o.glueDatabase, "glue-database", "warehouse", "Glue database for --catalog glue")
	fs.StringVar(&o.s3Endpoint, "s3-endpoint", "", "S3-compatible endpoint `URL`")
	fs.Var(&o.gracePeriod, "grace-period", "as for rollup: how long superseded runs are kept for readers (default 6h on s3://, 0 locally)")
	flagtext.DurationVar(fs, &o.lockWait, "lock-wait", 30*time.Second, "how long (a `duration`) to wait for another rollup holding the erase or a day to rebuild")
	fs.Var(&o.leaseTTL, "lease-ttl", "how long (a `duration`) a lease lasts unless renewed (default 30m)")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{msg: fmt.Sprintf("unexpected argument %q", fs.Arg(0)), help: "rollup erase --help"}
	}
	o.targetFileSize, o.rowGroupSize = "256MiB", "64MiB"
	cfg, err := o.config(ctx, now)
	if err != nil {
		return err
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if status {
		if len(users) > 0 || usersFile != "" || atOnce {
			return usageError{msg: "--status lists requests: it takes no --user, --users-file or --now", help: "rollup erase --help"}
		}
		return printErasures(ctx, cfg.Store, stdout)
	}
	ids, err := readIDs(users, usersFile)
	if err != nil {
		return err
	}
	if len(ids) == 0 && atOnce {
		if err := o.checkZone(ctx, cfg, now); err != nil {
			return err
		}
		return runErasures(ctx, cfg, stdout) // the pending requests only
	}
	if len(ids) == 0 {
		return usageError{msg: "no id to erase: give --user or --users-file (or --now alone, to carry out the pending requests)", help: "rollup erase --help"}
	}
	req, err := erasure.Record(ctx, cfg.Store, product, ids, now)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "recorded erasure %s of %d ids (events received up to %s)\n", req.ID, len(req.Hashes), req.CreatedAt.Format(time.RFC3339))
	if !atOnce {
		fmt.Fprintln(stdout, "the next rollup run carries it out; --now does it at once")
		return nil
	}
	if err := o.checkZone(ctx, cfg, now); err != nil {
		return err
	}
	return runErasures(ctx, cfg, stdout)
}

// runErasures carries out the store's pending erasures (job.Erase) and
// prints a line per receipt.
func runErasures(ctx context.Context, cfg job.Config, stdout io.Writer) error {
	rcs, err := job.Erase(ctx, cfg)
	printReceipts(stdout, rcs)
	if err != nil {
		return fmt.Errorf("%w (run again: it finishes the erase, searching every raw object again)", err)
	}
	return nil
}

// erasuresBeforeBuild is runErasures for a run that builds next: another
// rollup holding the erase lease is carrying them out, so this run goes on
// to build, and says so.
func erasuresBeforeBuild(ctx context.Context, cfg job.Config, stdout io.Writer) error {
	rcs, err := job.Erase(ctx, cfg)
	printReceipts(stdout, rcs)
	if he := (*lease.HeldError)(nil); errors.As(err, &he) {
		fmt.Fprintf(stdout, "erasures: another rollup is carrying them out (%v); building without them\n", he)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w (run again: it finishes the erase, searching every raw object again)", err)
	}
	return nil
}

func printReceipts(stdout io.Writer, rcs []*erasure.Receipt) {
	for _, rc := range rcs {
		what := "erased"
		if rc.Late {
			what = "erased (rows delivered late)"
		}
		fmt.Fprintf(stdout, "%s %s: %d objects rewritten, %d days rebuilt, rows removed %v; receipts under %s\n",
			what, rc.Request, len(rc.Objects), len(rc.DaysRebuilt), rc.RowsRemoved, erasure.Prefix)
	}
}

// printErasures lists the store's requests.
func printErasures(ctx context.Context, st store.Store, w io.Writer) error {
	list, err := erasure.List(ctx, st)
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(w, "no erasure requests")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REQUEST\tPRODUCT\tIDS\tREQUESTED\tSTATUS")
	for _, s := range list {
		state := "pending"
		if s.Done() {
			objs, days := len(s.Receipt.Objects), len(s.Receipt.DaysRebuilt)
			for _, l := range s.Late {
				objs, days = objs+len(l.Objects), days+len(l.DaysRebuilt)
			}
			state = fmt.Sprintf("done %s: %d objects rewritten, %d days rebuilt", s.Receipt.DoneAt.Format(time.RFC3339), objs, days)
			if s.CheckedAt().Before(s.WatchUntil()) {
				state += fmt.Sprintf("; runs until %s look for rows delivered late", s.WatchUntil().Format(time.RFC3339))
			}
		}
		p := s.Product
		if p == "" {
			p = "(all)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", s.ID, p, len(s.Hashes), s.CreatedAt.Format(time.RFC3339), state)
	}
	return tw.Flush()
}

// printPendingErasures says, under a plan, how many erasure requests the
// run would carry out before it builds (nothing if none).
func printPendingErasures(ctx context.Context, st store.Store, w io.Writer) error {
	list, err := erasure.List(ctx, st)
	if err != nil {
		return err
	}
	n := 0
	for _, s := range list {
		if !s.Done() {
			n++
		}
	}
	if n > 0 {
		fmt.Fprintf(w, "\n%d erasure requests pending: the run carries them out first (rollup erase --status)\n", n)
	}
	return nil
}

// readIDs gathers the ids of --user flags and --users-file, each trimmed
// of spaces (cleanID).
func readIDs(users []string, file string) ([]string, error) {
	var ids []string
	for _, u := range users {
		id, err := cleanID(u)
		if err != nil {
			return nil, usageError{msg: fmt.Sprintf("--user %q: %v", u, err), help: "rollup erase --help"}
		}
		ids = append(ids, id)
	}
	if file == "" {
		return ids, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, usageError{msg: fmt.Sprintf("--users-file: %v", err), help: "rollup erase --help"}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		id, err := cleanID(l)
		if err != nil {
			return nil, usageError{msg: fmt.Sprintf("--users-file %s, line %d: %v", file, n, err), help: "rollup erase --help"}
		}
		ids = append(ids, id)
	}
	return ids, sc.Err()
}

// cleanID returns id without the spaces around it (and around the device
// id of anon:<device_id>): ids are matched exactly, and " u-42" would
// match no row. An id empty once trimmed is an error.
func cleanID(id string) (string, error) {
	id = strings.TrimSpace(id)
	if dev, ok := strings.CutPrefix(id, "anon:"); ok {
		if dev = strings.TrimSpace(dev); dev == "" {
			return "", errors.New("anon: names no device id")
		}
		return "anon:" + dev, nil
	}
	if id == "" {
		return "", errors.New("an empty id (only spaces)")
	}
	return id, nil
}

// multiFlag is a string flag that may be given several times.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

// Set keeps s as given; readIDs trims and checks it.
func (m *multiFlag) Set(s string) error {
	*m = append(*m, s)
	return nil
}

var _ flag.Value = (*multiFlag)(nil)
