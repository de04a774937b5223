package job

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/frame"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// publisher is the stage that writes and commits: every lease a run takes,
// every data file it writes and every manifest it commits go through it.
// It remembers the user_daily rows of the last day it committed, which the
// windowed stage takes instead of reading them back.
type publisher struct {
	*Config
	run     string                // the run's id: the holder of its leases
	dayHook func(d day.Day) error // test seam: called before a day is committed
	// heads are the generations of the users and windowed partitions
	// (table -> partition -> generation) read at the windowed stage's
	// start, before its inputs: what its commits build on.
	heads map[string]map[string]int64
	built struct {
		key  string // day/run of the last user_daily committed
		rows []rollups.UserDaily
	}
}

func (pub *publisher) writerOptions() publish.WriterOptions {
	return publish.WriterOptions{TargetFileSize: pub.TargetFileSize, RowGroupSize: pub.RowGroupSize, CreatedBy: CreatedBy}
}

// writeEvents writes day d's events into run's folder.
func (pub *publisher) writeEvents(ctx context.Context, run string, d day.Day, ev *frame.Events) ([]publish.File, error) {
	ev.Day = int32(d)
	return publish.WriteEvents(ctx, pub.Store, publish.RunPrefix("events", d, run), ev, pub.writerOptions())
}

// writeRollups writes day d's per-day rollups into run's folders.
func (pub *publisher) writeRollups(ctx context.Context, run string, d day.Day, t *dayTables) (map[string][]publish.File, error) {
	opt, files := pub.writerOptions(), map[string][]publish.File{}
	rollups.SetDate(t.eng, d)
	rollups.SetDate(t.ud, d)
	rollups.SetDate(t.sd, d)
	rollups.SetDate(t.paths, d)
	var err error
	if files["engagement_daily"], err = publish.Write(ctx, pub.Store, publish.RunPrefix("engagement_daily", d, run), t.eng, opt); err != nil {
		return nil, err
	}
	if files["user_daily"], err = publish.Write(ctx, pub.Store, publish.RunPrefix("user_daily", d, run), t.ud, opt); err != nil {
		return nil, err
	}
	if files["sessions_daily"], err = publish.Write(ctx, pub.Store, publish.RunPrefix("sessions_daily", d, run), t.sd, opt); err != nil {
		return nil, err
	}
	if files["paths_daily"], err = publish.Write(ctx, pub.Store, publish.RunPrefix("paths_daily", d, run), t.paths, opt); err != nil {
		return nil, err
	}
	return files, nil
}

// writeQuality writes day d's data quality and quarantine into run's
// folders, adding them to files.
func (pub *publisher) writeQuality(ctx context.Context, run string, d day.Day, t *dayTables, files map[string][]publish.File) error {
	opt := pub.writerOptions()
	quality := []rollups.DataQualityDaily{t.quality}
	rollups.SetDate(quality, d)
	rollups.SetDate(t.quarantine, d)
	var err error
	if files["data_quality_daily"], err = publish.Write(ctx, pub.Store, publish.RunPrefix("data_quality_daily", d, run), quality, opt); err != nil {
		return err
	}
	files["quarantine"], err = publish.Write(ctx, pub.Store, publish.RunPrefix("quarantine", d, run), t.quarantine, opt)
	return err
}

// commitDay commits the manifests of every daily table of day p (files
// written by run), in rollups.Daily's order, while locks are still held;
// then deletes superseded runs (when at once) and records what the build
// restated.
func (pub *publisher) commitDay(ctx context.Context, run string, p *dayPlan, t *dayTables, files map[string][]publish.File, locks lease.Group) (DaySummary, error) {
	d, quality := p.d, t.quality
	if pub.dayHook != nil {
		if err := pub.dayHook(d); err != nil {
			return DaySummary{}, err
		}
	}
	// What this build changes in the day's published counts.
	var moved []Restated
	if prev, err := publish.Current(ctx, pub.Store, "data_quality_daily", d); err == nil && restates(prev) {
		old, err := manifestRows[rollups.DataQualityDaily](ctx, pub.Store, prev)
		if err != nil {
			return DaySummary{}, err
		}
		moved = diffRows("data_quality_daily", d, old, []rollups.DataQualityDaily{quality}, func(rollups.DataQualityDaily) string { return "" })
	} else if err != nil && !errors.Is(err, store.ErrNotExist) {
		return DaySummary{}, err
	}
	// Publish only while the partitions are still ours.
	if err := locks.Check(ctx); err != nil {
		return DaySummary{}, fmt.Errorf("lost the lease before publishing: %w", err)
	}
	now := pub.Now().UTC()
	sum := DaySummary{Day: d, Why: p.why, Quality: quality, EventsBefore: t.eventsBefore, Restatements: moved}
	stats := qualityStats(quality)
	for _, tbl := range rollups.Daily {
		m := &publish.Manifest{
			Table: tbl.Name, Day: d.String(), Run: run, TimeZone: pub.Rules.Loc.String(), CodeVersion: CodeVersion,
			Config: p.config, Fingerprint: p.fingerprint, Files: files[tbl.Name], Inputs: p.inputs,
			Stats: stats, CreatedAt: now,
		}
		for _, f := range m.Files {
			m.Rows += f.Rows
			sum.FilesWritten++
			sum.BytesWritten += f.Size
		}
		if err := publish.CommitAfter(ctx, pub.Store, m, p.base[tbl.Name]); err != nil {
			// Another run committed the day since this one read it: its
			// build stands if it is from inputs at least as new.
			var lost *publish.CommitLostError
			if errors.As(err, &lost) && lost.Winner != nil {
				if covers, cerr := publish.Covers(ctx, pub.Store, lost.Winner.Inputs, p.inputs); cerr == nil && covers {
					return DaySummary{Day: d, Skipped: true, Why: "built meanwhile by another run from inputs at least as new"}, nil
				}
			}
			return DaySummary{}, err
		}
		if tbl.Name == "user_daily" {
			pub.built.key, pub.built.rows = m.Day+"/"+m.Run, t.ud
		}
	}
	// A run that lost its leases leaves cleanup to the next: the run that
	// took them over may be writing a folder this one would delete.
	if locks.Check(ctx) == nil {
		pub.cleanupDay(ctx, d, run, now)
	}
	for _, m := range moved {
		pub.Log.Info("restated", "change", m.String())
	}
	if err := pub.recordRestatements(ctx, run, now, d, moved); err != nil {
		return DaySummary{}, fmt.Errorf("record restatements: %w", err)
	}
	return sum, nil
}

// qualityStats are the manifest stats of a day's quality row.
func qualityStats(q rollups.DataQualityDaily) map[string]int64 {
	return map[string]int64{
		"raw_rows": q.RawRows, "valid_rows": q.ValidRows, "kept_rows": q.KeptRows,
		"duplicates_dropped": q.DuplicatesDropped, "invalid_rows": q.InvalidRows,
		"clock_skewed_rows": q.ClockSkewedRows, "missing_event_time_rows": q.MissingEventTimeRows, "bad_files": q.BadFiles,
		"conversion_failed_records": q.ConversionFailedRecords, "late_rows": q.LateRows,
		"restated": b2i(q.Restated), "invalid_utf8_rows": q.InvalidUTF8Rows,
	}
}

// cleanup deletes the runs of a partition of table that keep supersedes
// (publish.CleanupAt), and logs a failure: the next run retries.
func (pub *publisher) cleanup(ctx context.Context, table, part, keep string, now time.Time) {
	if err := publish.CleanupAt(ctx, pub.Store, table, part, keep, pub.GracePeriod, now); err != nil {
		pub.Log.Warn("superseded runs not all deleted; the next run retries", "table", table, "partition", part, "error", err.Error())
	}
}

// cleanupDay deletes the runs of day d's tables that run superseded, when
// superseded runs are deleted at once (cleanupAtOnce).
func (pub *publisher) cleanupDay(ctx context.Context, d day.Day, run string, now time.Time) {
	if !pub.cleanupAtOnce() {
		return
	}
	for _, t := range rollups.Daily {
		pub.cleanup(ctx, t.Name, publish.DayPart(d), run, now)
	}
}

// cleanupUpToDate deletes superseded runs of day d, up to date and not
// rebuilt: a run killed between its manifests and its cleanup leaves them
// behind. Only if no other run is writing the day now.
func (pub *publisher) cleanupUpToDate(ctx context.Context, d day.Day) {
	if !pub.cleanupAtOnce() {
		return
	}
	locks, err := pub.lock(ctx, pub.run, rollups.Daily, d, 0)
	if err != nil {
		return
	}
	defer pub.release(ctx, locks, "day", d.String())
	for _, t := range rollups.Daily {
		if m, err := publish.Current(ctx, pub.Store, t.Name, d); err == nil {
			pub.cleanup(ctx, t.Name, publish.DayPart(d), m.Run, pub.Now())
		}
	}
}

// lockDay takes the leases of day d's daily partitions for the run,
// waiting up to wait for another holder (a *LockedError if it still holds
// them), and renews them until unlock, which releases them and returns an
// error if a renewal found them lost. The leases are renewed while the day
// builds, so a day longer than their lifetime still publishes.
func (pub *publisher) lockDay(ctx context.Context, d day.Day, wait time.Duration) (locks lease.Group, unlock func() error, err error) {
	locks, err = pub.lock(ctx, pub.run, rollups.Daily, d, wait)
	if err != nil {
		return nil, nil, err
	}
	stop := locks.KeepAlive(ctx, 0)
	return locks, func() error {
		err := stop()
		pub.release(ctx, locks, "day", d.String())
		return err
	}, nil
}

// lockWindowed takes the windowed stage's lease for run (one windowed
// stage at a time), renewed until the returned function releases it; that
// function returns an error if a renewal found the lease lost.
func (pub *publisher) lockWindowed(ctx context.Context, run string) (unlock func() error, err error) {
	l, err := lease.Acquire(ctx, pub.Store, stage2Lease, lease.HolderID(run), pub.LockTTL, pub.LockWait, pub.Now, pub.leaseOptions()...)
	if err != nil {
		return nil, err
	}
	stop := l.KeepAlive(ctx, pub.LockTTL/3)
	return func() error {
		err := stop()
		pub.release(ctx, l, "lease", stage2Lease)
		return err
	}, nil
}

// lock takes the leases of the partitions of tables for day d, so that
// two runs (the nightly one and a manual backfill, say) never write one
// partition at once. It waits up to LockWait for another holder.
func (pub *publisher) lock(ctx context.Context, run string, tables []rollups.Table, d day.Day, wait time.Duration) (lease.Group, error) {
	names := make([]string, len(tables))
	for i, t := range tables {
		names[i] = t.Name + "/dt=" + d.String()
	}
	g, err := lease.AcquireAll(ctx, pub.Store, names, lease.HolderID(run), pub.LockTTL, wait, pub.Now, pub.leaseOptions()...)
	var held *lease.HeldError
	if errors.As(err, &held) {
		return nil, &LockedError{Day: d, Held: held, Waited: wait}
	}
	return g, err
}

func (pub *publisher) leaseOptions() []lease.Option {
	// No silent wait: say who holds it, until when. (On a local store,
	// lease.Acquire itself takes over the lease of a dead local process.)
	return []lease.Option{lease.WithWaitLog(pub.Log, 0)}
}

// release releases a lease (or a group of them) even when ctx is done, and
// logs a failure: Release has retried by then, and its error names the
// lease object to delete and when it expires by itself. what and id name
// what the lease protects, for the log.
func (pub *publisher) release(ctx context.Context, l interface{ Release(context.Context) error }, what, id string) {
	if err := l.Release(context.WithoutCancel(ctx)); err != nil {
		pub.Log.Error("lease not released", what, id, "error", err.Error())
	}
}

// LockedError says another run holds a partition this run needs.
type LockedError struct {
	Day    day.Day
	Held   *lease.HeldError
	Waited time.Duration
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("day %s is being written by another rollup (waited %s, see --lock-wait): %v", e.Day, e.Waited, e.Held)
}

func (e *LockedError) Unwrap() error { return e.Held }

// recordRestatements appends rs, the changes run made (at time at) to day
// d's partitions, to d's partition of the restatements table: under its
// lease, it republishes the partition with the earlier rows and these. It
// is called after the changed partitions are committed; a run killed in
// between loses that record, never a number of the tables themselves.
func (pub *publisher) recordRestatements(ctx context.Context, run string, at time.Time, d day.Day, rs []Restated) error {
	if len(rs) == 0 {
		return nil
	}
	table := rollups.RestatementsTable
	locks, err := pub.lock(ctx, run, []rollups.Table{table}, d, pub.LockWait)
	if err != nil {
		return err
	}
	defer pub.release(ctx, locks, "partition", table.Name+"/"+d.String())
	var rows []rollups.Restatement
	prev, err := publish.Current(ctx, pub.Store, table.Name, d)
	switch {
	case err == nil:
		if rows, err = manifestRows[rollups.Restatement](ctx, pub.Store, prev); err != nil {
			return err
		}
	case !errors.Is(err, store.ErrNotExist):
		return err
	}
	for _, r := range rs {
		r.Run, r.RestatedAt, r.Cause = run, at.UnixMilli(), pub.Cause
		rows = append(rows, r.Restatement)
	}
	rollups.SetDate(rows, d)
	id := newRunID(pub.Now())
	opt := pub.writerOptions()
	files, err := publish.Write(ctx, pub.Store, publish.RunPrefix(table.Name, d, id), rows, opt)
	if err != nil {
		return err
	}
	m := &publish.Manifest{Table: table.Name, Day: d.String(), Run: id, TimeZone: pub.Rules.Loc.String(), CodeVersion: CodeVersion,
		Config: pub.configMap(), Files: files, Rows: int64(len(rows)), CreatedAt: pub.Now().UTC()}
	if err := locks.Check(ctx); err != nil {
		return fmt.Errorf("lost the lease before publishing: %w", err)
	}
	var parent int64 // the generation whose rows this run extends
	if prev != nil {
		parent = prev.Generation
	}
	if err := publish.CommitAfter(ctx, pub.Store, m, parent); err != nil {
		return err
	}
	if pub.cleanupAtOnce() && locks.Check(ctx) == nil {
		pub.cleanup(ctx, table.Name, publish.DayPart(d), id, pub.Now())
	}
	return nil
}

// publishWindowed publishes one windowed partition with fingerprint fp
// (the caller found it stale) and returns what changed in numbers from the
// run it supersedes, one line per changed row ("active_users_daily
// 2026-11-28 shop: new_users 1156 -> 1146"); none for a first publication,
// nor for a withdrawal (withdraw: the day is not built, rows is empty).
func (pub *publisher) publishWindowed(ctx context.Context, run, table string, d day.Day, fp string, rows any, opt publish.WriterOptions, withdraw bool) ([]Restated, error) {
	tbl, _ := rollups.ByName(table)
	locks, err := pub.lock(ctx, run, []rollups.Table{tbl}, d, pub.LockWait)
	if err != nil {
		return nil, err
	}
	defer pub.release(ctx, locks, "partition", table+"/"+d.String())
	prev, err := publish.Current(ctx, pub.Store, table, d)
	if err != nil && !errors.Is(err, store.ErrNotExist) {
		return nil, err
	}
	run = newRunID(pub.Now())
	prefix := publish.RunPrefix(table, d, run)
	var files []publish.File
	var moved []Restated
	restate := restates(prev)
	switch r := rows.(type) {
	case []rollups.ActiveUsersDaily:
		// mau_window_days describes the window (how much of it has data),
		// it is not a count of people.
		files, moved, err = writeWindowed(ctx, pub.Store, prefix, table, d, r, opt, prev, restate,
			func(x rollups.ActiveUsersDaily) string { return x.Product }, "product", "mau_window_days")
	case []rollups.RetentionDaily:
		files, moved, err = writeWindowed(ctx, pub.Store, prefix, table, d, r, opt, prev, restate,
			func(x rollups.RetentionDaily) string { return fmt.Sprintf("%s day %d", x.Product, x.DayN) }, "product", "day_n")
	case []rollups.LifecycleDaily:
		files, moved, err = writeWindowed(ctx, pub.Store, prefix, table, d, r, opt, prev, restate,
			func(x rollups.LifecycleDaily) string { return x.Product }, "product")
	case []rollups.StickinessDaily:
		files, moved, err = writeWindowed(ctx, pub.Store, prefix, table, d, r, opt, prev, restate,
			func(x rollups.StickinessDaily) string {
				return fmt.Sprintf("%s window %d days %d", x.Product, x.WindowDays, x.DaysActive)
			}, "product", "window_days", "days_active")
	case []rollups.FunnelDaily:
		// New funnel definitions are not a restatement: the data did not
		// change.
		files, moved, err = writeWindowed(ctx, pub.Store, prefix, table, d, r, opt, prev, restate && sameFunnels(prev.Fingerprint, fp),
			func(x rollups.FunnelDaily) string {
				return fmt.Sprintf("%s funnel %s step %d", x.Product, x.Funnel, x.Step)
			},
			"product", "step", "window_seconds")
	case []rollups.DimDate: // calendar facts: nothing to restate
		files, err = publish.Write(ctx, pub.Store, prefix, r, opt)
	default:
		return nil, fmt.Errorf("windowed table %s: unexpected rows %T", table, rows)
	}
	if err != nil {
		return nil, err
	}
	nm := &publish.Manifest{Table: table, Day: d.String(), Run: run, TimeZone: pub.Rules.Loc.String(), CodeVersion: CodeVersion,
		Config: pub.configMap(), Fingerprint: fp, Files: files, CreatedAt: pub.Now().UTC()}
	for _, f := range files {
		nm.Rows += f.Rows
	}
	if err := locks.Check(ctx); err != nil {
		return nil, fmt.Errorf("lost the lease before publishing: %w", err)
	}
	if err := publish.CommitAfter(ctx, pub.Store, nm, pub.heads[table][publish.DayPart(d)]); err != nil {
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
		pub.Log.Info("restated", "change", m.String())
	}
	if err := pub.recordRestatements(ctx, run, nm.CreatedAt, d, moved); err != nil {
		return nil, fmt.Errorf("record restatements: %w", err)
	}
	if pub.cleanupAtOnce() && locks.Check(ctx) == nil {
		pub.cleanup(ctx, table, publish.DayPart(d), run, pub.Now())
	}
	return moved, nil
}

// writeWindowed writes rows, their date column set to d, into prefix; with
// restate, it also returns every number that changed from the rows of prev
// (diffRows, rows matched by key).
func writeWindowed[T any](ctx context.Context, st store.Store, prefix, table string, d day.Day, rows []T, opt publish.WriterOptions,
	prev *publish.Manifest, restate bool, key func(T) string, keyCols ...string) ([]publish.File, []Restated, error) {
	rollups.SetDate(rows, d)
	files, err := publish.Write(ctx, st, prefix, rows, opt)
	if err != nil || !restate {
		return files, nil, err
	}
	old, err := manifestRows[T](ctx, st, prev)
	if err != nil {
		return nil, nil, err
	}
	return files, diffRows(table, d, old, rows, key, keyCols...), nil
}

// publishBucket writes a bucket's users table rows and state and commits
// its manifest, recording cur as its inputs.
func (pub *publisher) publishBucket(ctx context.Context, b *userBucket, cur userDays) error {
	st := pub.Store
	table := rollups.UsersTable
	keys := slices.Sorted(maps.Keys(b.users))
	rows := make([]rollups.User, 0, len(keys))
	state := make([]userStateRow, 0, len(keys))
	cohorts := map[string]uint64{}
	for _, k := range keys {
		r := b.users[k]
		product, user, _ := strings.Cut(k, "\x00")
		first, last := r.days[0], r.days[len(r.days)-1]
		rows = append(rows, rollups.User{Product: product, UserKey: user, FirstSeenDt: int32(first), LastSeenDt: int32(last),
			DaysActive: int64(len(r.days)), FirstPlatform: r.platform, FirstCountry: r.country})
		state = append(state, userStateRow{Product: product, UserKey: user, Days: encodeDays(r.days), FirstPlatform: r.platform, FirstCountry: r.country})
		cohorts[first.String()] += rollups.UserDigest(product, user)
	}
	run := newRunID(pub.Now())
	opt := pub.writerOptions()
	files, err := publish.Write(ctx, st, publish.RunPrefixAt(table.Name, b.part(), run), rows, opt)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := parquet.Write(&buf, state); err != nil {
		return err
	}
	stateKey := usersStatePrefix + b.part() + "/" + run + ".parquet"
	if err := st.Put(ctx, stateKey, buf.Bytes()); err != nil {
		return err
	}
	m := &publish.Manifest{Table: table.Name, Partition: b.part(), Run: run, TimeZone: pub.Rules.Loc.String(), CodeVersion: CodeVersion,
		Config: pub.configMap(), Files: files, State: stateKey, Cohorts: cohorts, CreatedAt: pub.Now().UTC()}
	for _, d := range slices.Sorted(maps.Keys(cur)) {
		m.Inputs = append(m.Inputs, publish.Input{Key: publish.DayPart(d), ETag: cur.run(d)})
	}
	for _, f := range files {
		m.Rows += f.Rows
	}
	if err := publish.CommitAfter(ctx, st, m, pub.heads[table.Name][b.part()]); err != nil {
		return err
	}
	b.m = m
	if pub.cleanupAtOnce() {
		pub.cleanup(ctx, table.Name, b.part(), run, pub.Now())
	}
	// Only the job reads the state, under the stage-2 lease: superseded
	// state goes at once, whatever the grace period of the data files.
	if err := pub.cleanupUserState(ctx, b); err != nil {
		pub.Log.Warn("superseded users state not all deleted; the next run retries", "partition", b.part(), "error", err.Error())
	}
	return nil
}

// cleanupUserState deletes a bucket's state files other than its current
// run's: superseded ones, and those of runs that died before committing.
func (pub *publisher) cleanupUserState(ctx context.Context, b *userBucket) error {
	objs, err := pub.Store.List(ctx, usersStatePrefix+b.part()+"/")
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range objs {
		if b.m != nil && o.Key == b.m.State {
			continue
		}
		errs = append(errs, pub.Store.Delete(ctx, o.Key))
	}
	return errors.Join(errs...)
}
