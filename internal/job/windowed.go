package job

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// WindowedSummary says what stage 2 did.
type WindowedSummary struct {
	AsOf        day.Day // the last day with a published user_daily
	ActiveDays  int     // active_users_daily partitions (re)published
	Cohorts     int     // retention_daily partitions (re)published
	UpToDate    int     // partitions whose inputs had not changed
	Withdrawn   int     // partitions of days not built, republished empty
	ReadUserDay int     // user_daily partitions read
	// Partitions are every windowed partition the run covered, published
	// or up to date (the catalog registers them all).
	Partitions []Partition
	// Users is what the users stage did; UserParts every users partition
	// (bucket=NN), to register.
	Users     *UsersSummary
	UserParts []string
	// Restatements describe every number of a windowed partition that
	// changed from the run it superseded.
	Restatements []Restated
}

// Partition names one partition of a table.
type Partition struct {
	Table string
	Day   day.Day
}

func windowFingerprint(table string, cur userDays, from, to day.Day, extra string) string {
	h := sha256.New()
	fmt.Fprintf(h, "code=%s table=%s %s\n", CodeVersion, table, extra)
	for d := from; d <= to; d++ {
		fmt.Fprintf(h, "%s %s\n", d, cur.run(d))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// stage2Lease serializes stage 2 (users, then the windowed tables) between
// runs: it reads every current user_daily partition and rewrites shared
// state, so two of them at once would race. Stage 1 (days) never takes it.
const stage2Lease = "stage2"

// runWindowed runs stage 2: it brings the users table up to date with the
// current user_daily partitions, then republishes every windowed partition
// whose inputs changed, for every built day (one with a user_daily; a day
// never built gets no windowed partition, and one left by an earlier
// version is withdrawn). A windowed partition is a pure function of its
// inputs: active_users_daily of day d of the user_daily runs of d−27..d
// (none for a day not built), the start of data when it falls in that
// window, and the digest of the people first seen on d; retention_daily of
// cohort d of the user_daily runs of d and of those of d+1, 7, 14, 28 that
// are built, and the same digest. (A user_daily run carries its day's
// provisional mark, so a day turning final changes them too.) Its
// fingerprint records them, so whatever order and overlap the runs that
// built the days had, and whether a run died between the stages, the next
// stage 2 finds exactly the partitions that differ from a clean build. changed is unused: every day is checked (from manifests, so
// it costs a few small reads per day).
func (c *Config) runWindowed(ctx context.Context, run string, _ []day.Day) (_ *WindowedSummary, err error) {
	st := c.Store
	l, err := lease.Acquire(ctx, st, stage2Lease, lease.HolderID(run), c.LockTTL, c.LockWait, c.Now, c.leaseOptions()...)
	if err != nil {
		return nil, err
	}
	defer c.release(ctx, l, "lease", stage2Lease)
	stop := l.KeepAlive(ctx, c.LockTTL/3)
	defer func() {
		if kerr := stop(); kerr != nil && err == nil {
			err = fmt.Errorf("windowed stage: %w", kerr) // its commits were fenced; the next run redoes what it lost
		}
	}()
	// It reads every user_daily of the window at once, strings and all,
	// which after a backfill is more than a day's columns: at the default
	// GOGC the heap grew to twice that (the 30-day backfill of 100k-event
	// days peaked here at 110 MB against 72-76 MB for each of its days).
	defer collectOften(gcSmallPercent)()
	// Stage 1 of another run may republish a day (and delete the run this
	// one resolved) while this stage reads it: start again from the new
	// current runs, a few times.
	for attempt := 1; ; attempt++ {
		ws, err := c.windowedOnce(ctx, run)
		if !errors.Is(err, store.ErrNotExist) || attempt == 5 {
			return ws, err
		}
		c.Log.Info("a user_daily partition changed during the windowed stage; starting it again", "error", err.Error())
	}
}

// windowedOnce is one attempt of runWindowed, under its lease.
func (c *Config) windowedOnce(ctx context.Context, run string) (*WindowedSummary, error) {
	st := c.Store
	c.heads = map[string]map[string]int64{}
	for _, t := range append([]rollups.Table{rollups.UsersTable}, rollups.Windowed...) {
		h, err := publish.Heads(ctx, st, t.Name)
		if err != nil {
			return nil, err
		}
		c.heads[t.Name] = h
	}
	cur, err := currentUserDays(ctx, st)
	if err != nil || len(cur) == 0 {
		return nil, err
	}
	us, usum, err := c.updateUsers(ctx, cur)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	days := slices.Sorted(maps.Keys(cur))
	first, asOf := days[0], days[len(days)-1]
	built := cur.built()
	ws := &WindowedSummary{AsOf: asOf, Users: usum}
	// Every bucket is (re)registered, so a registration that failed
	// before is retried.
	for _, b := range us.buckets {
		if b.m != nil {
			ws.UserParts = append(ws.UserParts, b.part())
		}
	}
	digests := us.cohortDigests()

	// Which partitions differ from a clean build.
	type part struct {
		d  day.Day
		fp string
	}
	var auStale, retStale []part
	check := func(table string, d day.Day, fp string) (bool, error) {
		if c.Force && d >= c.From && d <= c.To {
			return true, nil
		}
		m, err := publish.Current(ctx, st, table, d)
		if errors.Is(err, store.ErrNotExist) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if m.Fingerprint == fp && c.cleanupAtOnce() {
			// A run killed between its commit and its cleanup left the
			// debris of earlier runs behind (stage 2's lease is ours).
			if err := publish.Cleanup(ctx, st, table, d, m.Run, c.GracePeriod, c.Now()); err != nil {
				c.Log.Warn("superseded runs not all deleted; the next run retries", "table", table, "day", d.String(), "error", err.Error())
			}
		}
		return m.Fingerprint != fp, nil
	}
	// Only built days get windowed partitions (a day never built is not
	// computed); a window reaching back before the start of data depends
	// on where that start is.
	for _, d := range days {
		cohort := fmt.Sprintf("cohort=%016x", digests[d])
		from := d - rollups.MAUDays + 1
		fp := windowFingerprint("active_users_daily", cur, from, d, fmt.Sprintf("%s start=%s", cohort, max(from, built.Start)))
		stale, err := check("active_users_daily", d, fp)
		if err != nil {
			return nil, err
		}
		if stale {
			auStale = append(auStale, part{d, fp})
		} else if d >= c.From && d <= c.To {
			ws.Partitions = append(ws.Partitions, Partition{"active_users_daily", d})
			ws.UpToDate++
		}
		// A cohort reads its own day and the days day_n after it that are
		// built.
		extra := cohort
		for _, n := range rollups.RetentionDays {
			if x := d + day.Day(n); cur[x] != nil {
				extra += " " + x.String() + "=" + cur.run(x)
			}
		}
		fp = windowFingerprint("retention_daily", cur, d, d, extra)
		if stale, err = check("retention_daily", d, fp); err != nil {
			return nil, err
		}
		if stale {
			retStale = append(retStale, part{d, fp})
		} else if d >= c.From && d <= c.To {
			ws.Partitions = append(ws.Partitions, Partition{"retention_daily", d})
			ws.UpToDate++
		}
	}
	opt := publish.WriterOptions{TargetFileSize: c.TargetFileSize, RowGroupSize: c.RowGroupSize, CreatedBy: CreatedBy}
	if err := c.withdrawUnbuilt(ctx, run, cur, ws, opt); err != nil {
		return nil, err
	}
	if len(auStale) == 0 && len(retStale) == 0 {
		return ws, nil
	}

	// Read the user_daily the stale partitions span, marking each row new
	// on the person's first day from the users state.
	var auDays, cohortDays []day.Day
	for _, p := range auStale {
		auDays = append(auDays, p.d)
	}
	for _, p := range retStale {
		cohortDays = append(cohortDays, p.d)
	}
	lo, hi := asOf, first
	if from, to, ok := rollups.ActiveUsersSpan(auDays); ok {
		lo, hi = min(lo, from), max(hi, to)
	}
	if from, to, ok := rollups.RetentionSpan(cohortDays, asOf); ok {
		lo, hi = min(lo, from), max(hi, to)
	}
	if err := us.loadAll(ctx, st); err != nil {
		return nil, err
	}
	var rows []rollups.UserDay
	for d := max(lo, first); d <= min(hi, asOf); d++ {
		m, ok := cur[d]
		if !ok {
			continue
		}
		uds, err := us.readUserDaily(ctx, st, m)
		if err != nil {
			return nil, err
		}
		ws.ReadUserDay++
		for _, r := range uds {
			f, _ := us.firstSeen(r.Product, r.UserKey)
			rows = append(rows, rollups.UserDay{Day: d, Product: r.Product, UserKey: r.UserKey, IsNew: f == d})
		}
	}

	active := rollups.ComputeActiveUsers(auDays, rows, built)
	for _, p := range auStale {
		moved, err := c.publishWindowed(ctx, run, "active_users_daily", p.d, p.fp, active[p.d], opt, false)
		if err != nil {
			return nil, err
		}
		ws.Restatements = append(ws.Restatements, moved...)
		ws.Partitions = append(ws.Partitions, Partition{"active_users_daily", p.d})
		ws.ActiveDays++
	}
	ret := rollups.ComputeRetention(cohortDays, built, rows)
	for _, p := range retStale {
		moved, err := c.publishWindowed(ctx, run, "retention_daily", p.d, p.fp, ret[p.d], opt, false)
		if err != nil {
			return nil, err
		}
		ws.Restatements = append(ws.Restatements, moved...)
		ws.Partitions = append(ws.Partitions, Partition{"retention_daily", p.d})
		ws.Cohorts++
	}
	return ws, nil
}

// withdrawnFingerprint is the fingerprint of a windowed partition
// withdrawn because its day is not built (publish.WithdrawnFingerprint).
const withdrawnFingerprint = publish.WithdrawnFingerprint

// withdrawUnbuilt republishes empty every windowed partition with rows
// whose day is not built: a day never built is not computed (an earlier
// version of this code published every day from the first to the last
// built one, as zeros). It lists the two tables' partition folders and
// reads the current manifest only of folders of days not built; a
// withdrawn partition is registered like the others, so a catalog points
// at its empty run. Its rows going away are logged, not recorded as
// restatements: they were never numbers of a built day.
func (c *Config) withdrawUnbuilt(ctx context.Context, run string, cur userDays, ws *WindowedSummary, opt publish.WriterOptions) error {
	for _, table := range []string{"active_users_daily", "retention_daily"} {
		parts, err := publish.Partitions(ctx, c.Store, table)
		if err != nil {
			return err
		}
		for _, part := range parts {
			d, err := day.Parse(strings.TrimPrefix(part, "dt="))
			if err != nil || cur[d] != nil {
				continue
			}
			m, err := publish.Current(ctx, c.Store, table, d)
			if errors.Is(err, store.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			if m.Rows == 0 {
				continue
			}
			var rows any = []rollups.ActiveUsersDaily{}
			if table == "retention_daily" {
				rows = []rollups.RetentionDaily{}
			}
			if _, err := c.publishWindowed(ctx, run, table, d, withdrawnFingerprint, rows, opt, true); err != nil {
				return err
			}
			c.Log.Info("withdrawn: a windowed partition of a day never built", "table", table, "day", d.String(), "rows", m.Rows)
			ws.Partitions = append(ws.Partitions, Partition{table, d})
			ws.Withdrawn++
		}
	}
	return nil
}

func sortedDays(m map[day.Day]bool) []day.Day {
	out := make([]day.Day, 0, len(m))
	for d := range m {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// publishWindowed publishes one windowed partition with fingerprint fp
// (the caller found it stale) and returns what changed in numbers from the
// run it supersedes, one line per changed row ("active_users_daily
// 2026-11-28 shop: new_users 1156 -> 1146"); none for a first publication,
// nor for a withdrawal (withdraw: the day is not built, rows is empty).
func (c *Config) publishWindowed(ctx context.Context, run, table string, d day.Day, fp string, rows any, opt publish.WriterOptions, withdraw bool) ([]Restated, error) {
	tbl, _ := rollups.ByName(table)
	locks, err := c.lock(ctx, run, []rollups.Table{tbl}, d, c.LockWait)
	if err != nil {
		return nil, err
	}
	defer c.release(ctx, locks, "partition", table+"/"+d.String())
	prev, err := publish.Current(ctx, c.Store, table, d)
	if err != nil && !errors.Is(err, store.ErrNotExist) {
		return nil, err
	}
	run = newRunID(c.Now())
	prefix := publish.RunPrefix(table, d, run)
	var files []publish.File
	var moved []Restated
	switch r := rows.(type) {
	case []rollups.ActiveUsersDaily:
		if files, err = publish.Write(ctx, c.Store, prefix, r, opt); err == nil && restates(prev) {
			var old []rollups.ActiveUsersDaily
			if old, err = manifestRows[rollups.ActiveUsersDaily](ctx, c.Store, prev); err == nil {
				// mau_window_days describes the window (how much of it has
				// data), it is not a count of people.
				moved = diffRows(table, d, old, r, func(x rollups.ActiveUsersDaily) string { return x.Product }, "product", "mau_window_days")
			}
		}
	case []rollups.RetentionDaily:
		if files, err = publish.Write(ctx, c.Store, prefix, r, opt); err == nil && restates(prev) {
			var old []rollups.RetentionDaily
			if old, err = manifestRows[rollups.RetentionDaily](ctx, c.Store, prev); err == nil {
				moved = diffRows(table, d, old, r, func(x rollups.RetentionDaily) string { return fmt.Sprintf("%s day %d", x.Product, x.DayN) }, "product", "day_n")
			}
		}
	default:
		return nil, fmt.Errorf("windowed table %s: unexpected rows %T", table, rows)
	}
	if err != nil {
		return nil, err
	}
	nm := &publish.Manifest{Table: table, Day: d.String(), Run: run, TimeZone: c.Rules.Loc.String(), CodeVersion: CodeVersion,
		Config: c.configMap(), Fingerprint: fp, Files: files, CreatedAt: c.Now().UTC()}
	for _, f := range files {
		nm.Rows += f.Rows
	}
	if err := locks.Check(ctx); err != nil {
		return nil, fmt.Errorf("lost the lease before publishing: %w", err)
	}
	if err := publish.CommitAfter(ctx, c.Store, nm, c.heads[table][publish.DayPart(d)]); err != nil {
		var lost *publish.CommitLostError
		if errors.As(err, &lost) && lost.Winner != nil && lost.Winner.Fingerprint == fp {
			return nil, nil // another run published the same partition
		}
		return nil, err
	}
	if withdraw {
		moved = nil
	}
	for _, m := range moved {
		c.Log.Info("restated", "change", m.String())
	}
	if err := c.recordRestatements(ctx, run, nm.CreatedAt, d, moved); err != nil {
		return nil, fmt.Errorf("record restatements: %w", err)
	}
	if c.cleanupAtOnce() {
		if err := publish.Cleanup(ctx, c.Store, table, d, run, c.GracePeriod, c.Now()); err != nil {
			c.Log.Warn("superseded runs not all deleted; the next run retries", "table", table, "day", d.String(), "error", err.Error())
		}
	}
	return moved, nil
}

// restates reports whether a new run of a partition whose current run is
// prev can restate its numbers: prev exists and was computed by this code
// version. A number that new code computes otherwise (a column it adds,
// a count it defines anew) is not a restatement: the data did not change.
func restates(prev *publish.Manifest) bool {
	return prev != nil && prev.CodeVersion == CodeVersion
}
