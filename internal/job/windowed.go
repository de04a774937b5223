package job

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/day"
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
	ReadUserDay int     // user_daily partitions read
	// Partitions are every windowed partition the run covered, published
	// or up to date (the catalog registers them all).
	Partitions []Partition
	// Pending are the changed days this stage took care of, including ones
	// left pending by earlier runs; cleared once registered.
	Pending []day.Day
}

// Partition names one partition of a table.
type Partition struct {
	Table string
	Day   day.Day
}

// pendingPrefix holds one empty object per day whose daily tables changed
// but whose windowed dependants are not yet recomputed and registered, so
// that a run that dies between the stages (or a Lambda worker, which runs
// stage 1 only) leaves the work for the next windowed stage.
const pendingPrefix = "_state/pending/windowed/"

func markPending(ctx context.Context, st store.Store, d day.Day) error {
	return st.Put(ctx, pendingPrefix+d.String(), nil)
}

func loadPending(ctx context.Context, st store.Store) ([]day.Day, error) {
	objs, err := st.List(ctx, pendingPrefix)
	if err != nil {
		return nil, err
	}
	var out []day.Day
	for _, o := range objs {
		if d, err := day.Parse(strings.TrimPrefix(o.Key, pendingPrefix)); err == nil {
			out = append(out, d)
		}
	}
	return out, nil
}

func clearPending(ctx context.Context, st store.Store, days []day.Day) error {
	var errs []error
	for _, d := range days {
		errs = append(errs, st.Delete(ctx, pendingPrefix+d.String()))
	}
	return errors.Join(errs...)
}

// lastUserDay returns the last day with a published user_daily partition.
func lastUserDay(ctx context.Context, st store.Store) (day.Day, bool, error) {
	objs, err := st.List(ctx, "curated/user_daily/dt=")
	if err != nil {
		return 0, false, err
	}
	var last day.Day
	found := false
	for _, o := range objs {
		if !strings.HasSuffix(o.Key, "/"+publish.ManifestName) {
			continue
		}
		rest := strings.TrimPrefix(o.Key, "curated/user_daily/dt=")
		d, err := day.Parse(rest[:min(len(rest), 10)])
		if err != nil {
			continue
		}
		if !found || d > last {
			last, found = d, true
		}
	}
	return last, found, nil
}

// userDays reads the current user_daily of the days from..to, and says
// which run each day was read from ("" for a day never published).
func userDays(ctx context.Context, st store.Store, from, to day.Day) ([]rollups.UserDay, map[day.Day]string, error) {
	var out []rollups.UserDay
	runs := map[day.Day]string{}
	for d := from; d <= to; d++ {
		m, err := publish.Current(ctx, st, "user_daily", d)
		if errors.Is(err, store.ErrNotExist) {
			runs[d] = ""
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		runs[d] = m.Run
		for _, f := range m.Files {
			b, err := st.Get(ctx, f.Key)
			if err != nil {
				return nil, nil, err
			}
			rows, err := parquet.Read[rollups.UserDaily](bytes.NewReader(b), int64(len(b)))
			if err != nil {
				return nil, nil, fmt.Errorf("read %s: %w", f.Key, err)
			}
			for _, r := range rows {
				out = append(out, rollups.UserDay{Day: d, Product: r.Product, UserKey: r.UserKey, IsNew: r.IsNew})
			}
		}
	}
	return out, runs, nil
}

func windowFingerprint(table string, runs map[day.Day]string, from, to day.Day, extra string) string {
	h := sha256.New()
	fmt.Fprintf(h, "code=%s table=%s %s\n", CodeVersion, table, extra)
	for d := from; d <= to; d++ {
		fmt.Fprintf(h, "%s %s\n", d, runs[d])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// runWindowed computes the windowed tables (stage 2) for every day that the
// user_daily days in changed feed, plus the requested range, up to the last
// day with a published user_daily. A partition whose inputs (the user_daily
// runs it was computed from, and for retention the as-of day) are the same
// as its published manifest's is left alone.
func (c *Config) runWindowed(ctx context.Context, run string, changed []day.Day) (*WindowedSummary, error) {
	st := c.Store
	asOf, ok, err := lastUserDay(ctx, st)
	if err != nil || !ok {
		return nil, err
	}
	pending, err := loadPending(ctx, st)
	if err != nil {
		return nil, err
	}
	changed = append(slices.Clone(changed), pending...)
	ws := &WindowedSummary{AsOf: asOf, Pending: changed}
	au := map[day.Day]bool{}
	cohorts := map[day.Day]bool{}
	for d := c.From; d <= c.To && d <= asOf; d++ {
		au[d], cohorts[d] = true, true
	}
	for _, d := range changed {
		lo, hi := rollups.ActiveUsersAffected(d)
		for x := lo; x <= hi && x <= asOf; x++ {
			au[x] = true
		}
		for _, x := range rollups.RetentionAffected(d) {
			cohorts[x] = true
		}
	}
	// A later as-of day adds retention rows to recent cohorts.
	for _, n := range rollups.RetentionDays {
		cohorts[asOf-day.Day(n)] = true
	}
	auDays, cohortDays := sortedDays(au), sortedDays(cohorts)
	var lo, hi day.Day = asOf, asOf
	if from, to, ok := rollups.ActiveUsersSpan(auDays); ok {
		lo, hi = min(lo, from), max(hi, to)
	}
	if from, to, ok := rollups.RetentionSpan(cohortDays, asOf); ok {
		lo, hi = min(lo, from), max(hi, to)
	}
	rows, runs, err := userDays(ctx, st, lo, min(hi, asOf))
	if err != nil {
		return nil, err
	}
	ws.ReadUserDay = int(min(hi, asOf) - lo + 1)

	opt := publish.WriterOptions{TargetFileSize: c.TargetFileSize, RowGroupSize: c.RowGroupSize, CreatedBy: CreatedBy}
	active := rollups.ComputeActiveUsers(auDays, rows)
	for _, d := range auDays {
		fp := windowFingerprint("active_users_daily", runs, d-rollups.MAUDays+1, d, "")
		done, err := c.publishWindowed(ctx, run, "active_users_daily", d, fp, active[d], opt)
		if err != nil {
			return nil, err
		}
		ws.Partitions = append(ws.Partitions, Partition{"active_users_daily", d})
		if done {
			ws.ActiveDays++
		} else {
			ws.UpToDate++
		}
	}
	ret := rollups.ComputeRetention(cohortDays, asOf, rows)
	for _, d := range cohortDays {
		// A cohort reads only its own day and the days day_n after it.
		extra := "as_of=" + min(d+28, asOf).String()
		for _, n := range rollups.RetentionDays {
			if x := d + day.Day(n); x <= asOf {
				extra += " " + x.String() + "=" + runs[x]
			}
		}
		fp := windowFingerprint("retention_daily", runs, d, d, extra)
		done, err := c.publishWindowed(ctx, run, "retention_daily", d, fp, ret[d], opt)
		if err != nil {
			return nil, err
		}
		ws.Partitions = append(ws.Partitions, Partition{"retention_daily", d})
		if done {
			ws.Cohorts++
		} else {
			ws.UpToDate++
		}
	}
	return ws, nil
}

func sortedDays(m map[day.Day]bool) []day.Day {
	out := make([]day.Day, 0, len(m))
	for d := range m {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// publishWindowed publishes one windowed partition unless its current
// manifest already has fingerprint fp. It reports whether it published.
func (c *Config) publishWindowed(ctx context.Context, run, table string, d day.Day, fp string, rows any, opt publish.WriterOptions) (bool, error) {
	m, err := publish.Current(ctx, c.Store, table, d)
	switch {
	case err == nil && m.Fingerprint == fp && !c.Force:
		return false, nil
	case err != nil && !errors.Is(err, store.ErrNotExist):
		return false, err
	}
	tbl, _ := rollups.ByName(table)
	locks, err := c.lock(ctx, run, []rollups.Table{tbl}, d, c.LockWait)
	if err != nil {
		return false, err
	}
	defer locks.Release(context.WithoutCancel(ctx))
	run = newRunID(c.Now()) // made under the lease: run ids sort in publish order
	prefix := publish.RunPrefix(table, d, run)
	var files []publish.File
	switch r := rows.(type) {
	case []rollups.ActiveUsersDaily:
		files, err = publish.Write(ctx, c.Store, prefix, r, opt)
	case []rollups.RetentionDaily:
		files, err = publish.Write(ctx, c.Store, prefix, r, opt)
	default:
		return false, fmt.Errorf("windowed table %s: unexpected rows %T", table, rows)
	}
	if err != nil {
		return false, err
	}
	nm := &publish.Manifest{Table: table, Day: d.String(), Run: run, TimeZone: c.Rules.Loc.String(), CodeVersion: CodeVersion,
		Config: c.configMap(), Fingerprint: fp, Files: files, CreatedAt: c.Now().UTC()}
	for _, f := range files {
		nm.Rows += f.Rows
	}
	if err := locks.Check(ctx); err != nil {
		return false, fmt.Errorf("lost the lease before publishing: %w", err)
	}
	if err := publish.Commit(ctx, c.Store, nm); err != nil {
		return false, err
	}
	if !c.cleanupAtOnce() {
		return true, nil
	}
	if err := publish.Cleanup(ctx, c.Store, table, d, run, c.GracePeriod, c.Now()); err != nil {
		c.Log.Warn("superseded runs not all deleted; the next run retries", "table", table, "day", d.String(), "error", err.Error())
	}
	return true, nil
}
