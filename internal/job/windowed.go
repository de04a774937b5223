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
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// WindowedSummary says what stage 2 did.
type WindowedSummary struct {
	AsOf        day.Day // the last day with a published user_daily
	ActiveDays  int     // active_users_daily partitions (re)published
	Cohorts     int     // retention_daily partitions (re)published
	Others      int     // partitions of the other windowed tables (lifecycle_daily, stickiness_daily, funnel_daily) (re)published
	Dates       int     // dim_date partitions (re)published
	UpToDate    int     // partitions whose inputs had not changed
	Withdrawn   int     // partitions of days not built, republished empty
	ReadUserDay int     // user_daily partitions read
	// FunnelsError says why funnel_daily was not (all) brought up to date
	// ("" if it was): the store's config/funnels.json is not valid
	// (FunnelsFileBad), the stage's time ran out, or a read failed. What
	// was not done, the next run does.
	FunnelsError   string
	FunnelsFileBad bool
	// FunnelDaysRemade counts the days whose funnel events were made
	// again from their events files (the funnels changed since the day
	// was built).
	FunnelDaysRemade int
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

// windowed is the windowed stage (stage 2): the users table, then the
// tables of rollups.Windowed (windowedTables), from the current user_daily
// partitions, published through its publisher.
type windowed struct{ *publisher }

// runWindowed runs stage 2: it brings the users table up to date with the
// current user_daily partitions, then republishes every windowed partition
// whose inputs changed, for every built day (one with a user_daily; a day
// never built gets no windowed partition, and one left by an earlier
// version is withdrawn). A windowed partition is a pure function of its
// inputs: active_users_daily of day d of the user_daily runs of d−27..d
// (none for a day not built), the start of data when it falls in that
// window, and the digest of the people first seen on d; retention_daily of
// cohort d of the user_daily runs of d and of those of d+1, 7, 14, 28 that
// are built, and the same digest; lifecycle_daily of d as
// active_users_daily but over d−1..d; stickiness_daily of d as
// active_users_daily but without the digest (windowedTable.reads says each
// table's). (A user_daily run carries its day's
// provisional mark, so a day turning final changes them too.) Its
// fingerprint records them, so whatever order and overlap the runs that
// built the days had, and whether a run died between the stages, the next
// stage 2 finds exactly the partitions that differ from a clean build. changed is unused: every day is checked (from manifests, so
// it costs a few small reads per day).
func (w *windowed) runWindowed(ctx context.Context, run string, _ []day.Day) (_ *WindowedSummary, err error) {
	unlock, err := w.lockWindowed(ctx, run)
	if err != nil {
		return nil, err
	}
	defer func() {
		if kerr := unlock(); kerr != nil && err == nil {
			err = fmt.Errorf("windowed stage: %w", kerr) // its commits were fenced; the next run redoes what it lost
		}
	}()
	// Stage 1 of another run may republish a day (and delete the run this
	// one resolved) while this stage reads it: start again from the new
	// current runs, a few times.
	for attempt := 1; ; attempt++ {
		ws, err := w.windowedOnce(ctx, run)
		if !errors.Is(err, store.ErrNotExist) || attempt == 5 {
			return ws, err
		}
		w.Log.Info("a user_daily partition changed during the windowed stage; starting it again", "error", err.Error())
	}
}

// windowedOnce is one attempt of runWindowed, under its lease.
func (w *windowed) windowedOnce(ctx context.Context, run string) (*WindowedSummary, error) {
	// The heads are read before the inputs: a commit builds on them.
	w.heads = map[string]map[string]int64{}
	for _, t := range append([]rollups.Table{rollups.UsersTable, rollups.DimDateTable}, rollups.Windowed...) {
		h, err := publish.Heads(ctx, w.Store, t.Name)
		if err != nil {
			return nil, err
		}
		w.heads[t.Name] = h
	}
	cur, err := currentUserDays(ctx, w.Store)
	if err != nil || len(cur) == 0 {
		return nil, err
	}
	us, usum, err := w.updateUsers(ctx, cur)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	days := slices.Sorted(maps.Keys(cur))
	built := cur.built()
	ws := &WindowedSummary{AsOf: days[len(days)-1], Users: usum}
	// Every bucket is (re)registered, so a registration that failed
	// before is retried.
	for _, b := range us.buckets {
		if b.m != nil {
			ws.UserParts = append(ws.UserParts, b.part())
		}
	}
	stale, err := w.staleWindowed(ctx, cur, days, us.cohortDigests(), built, ws)
	if err != nil {
		return nil, err
	}
	opt := w.writerOptions()
	if err := w.withdrawUnbuilt(ctx, run, cur, ws, opt); err != nil {
		return nil, err
	}
	if err := w.dimDate(ctx, run, built, ws, opt); err != nil {
		return nil, err
	}
	if len(slices.Concat(slices.Collect(maps.Values(stale))...)) > 0 {
		if err := w.publishStale(ctx, run, us, cur, days, stale, built, ws, opt); err != nil {
			return nil, err
		}
	}
	// Last, and never failing the stage: the tables above do not wait on
	// funnel_daily, which reads the events.
	w.funnelDaily(ctx, run, cur, days, ws, opt)
	return ws, nil
}

// publishStale computes and publishes the stale partitions of the tables
// of windowedTables.
func (w *windowed) publishStale(ctx context.Context, run string, us *usersState, cur userDays, days []day.Day, stale map[string][]windowPart,
	built rollups.Built, ws *WindowedSummary, opt publish.WriterOptions) error {
	rows, err := w.userDayRows(ctx, us, cur, days, stale, ws)
	if err != nil {
		return err
	}
	for _, t := range windowedTables {
		parts := stale[t.name]
		if len(parts) == 0 {
			continue
		}
		computed := t.compute(windowDays(parts), rows, built)
		for _, p := range parts {
			moved, err := w.publishWindowed(ctx, run, t.name, p.d, p.fp, computed(p.d), opt, false)
			if err != nil {
				return err
			}
			ws.Restatements = append(ws.Restatements, moved...)
			ws.Partitions = append(ws.Partitions, Partition{t.name, p.d})
			switch t.name {
			case "active_users_daily":
				ws.ActiveDays++
			case "retention_daily":
				ws.Cohorts++
			default:
				ws.Others++
			}
		}
	}
	return nil
}

// windowedTable is how the windowed stage builds one table of
// rollups.Windowed: the user_daily days a partition of day d reads (its
// fingerprint covers their runs), what else it depends on, and its
// computation.
type windowedTable struct {
	name string
	// reads returns the span of user_daily days that day d's partition
	// reads, and the extra inputs of its fingerprint.
	reads func(d day.Day, cur userDays, cohort string, built rollups.Built) (from, to day.Day, extra string)
	// span returns the user_daily days the partitions of days dts read
	// (ok is false if none).
	span func(dts []day.Day, asOf day.Day) (from, to day.Day, ok bool)
	// compute returns the rows of each day of dts.
	compute func(dts []day.Day, rows []rollups.UserDay, built rollups.Built) func(day.Day) any
	// empty is a partition with no rows (a withdrawn one).
	empty any
}

func rowsOf[T any](m map[day.Day][]T) func(day.Day) any { return func(d day.Day) any { return m[d] } }

// startIn is the part of a windowed fingerprint that says where the start
// of data is, as far as a window from..d can tell.
func startIn(from day.Day, built rollups.Built) string {
	return fmt.Sprintf("start=%s", max(from, built.Start))
}

// windowedTables lists every table of rollups.Windowed, in its order.
var windowedTables = []windowedTable{
	{name: "active_users_daily",
		reads: func(d day.Day, _ userDays, cohort string, built rollups.Built) (day.Day, day.Day, string) {
			from := d - rollups.MAUDays + 1
			return from, d, cohort + " " + startIn(from, built)
		},
		span: func(dts []day.Day, _ day.Day) (day.Day, day.Day, bool) { return rollups.ActiveUsersSpan(dts) },
		compute: func(dts []day.Day, rows []rollups.UserDay, b rollups.Built) func(day.Day) any {
			return rowsOf(rollups.ComputeActiveUsers(dts, rows, b))
		},
		empty: []rollups.ActiveUsersDaily{}},
	{name: "retention_daily",
		// A cohort reads its own day and the days day_n after it that are
		// built.
		reads: func(d day.Day, cur userDays, cohort string, _ rollups.Built) (day.Day, day.Day, string) {
			extra := cohort
			for _, n := range rollups.RetentionDays {
				if x := d + day.Day(n); cur[x] != nil {
					extra += " " + x.String() + "=" + cur.run(x)
				}
			}
			return d, d, extra
		},
		span: rollups.RetentionSpan,
		compute: func(dts []day.Day, rows []rollups.UserDay, b rollups.Built) func(day.Day) any {
			return rowsOf(rollups.ComputeRetention(dts, b, rows))
		},
		empty: []rollups.RetentionDaily{}},
	{name: "lifecycle_daily",
		reads: func(d day.Day, _ userDays, cohort string, built rollups.Built) (day.Day, day.Day, string) {
			return d - 1, d, cohort + " " + startIn(d-1, built)
		},
		span: func(dts []day.Day, _ day.Day) (day.Day, day.Day, bool) { return rollups.LifecycleSpan(dts) },
		compute: func(dts []day.Day, rows []rollups.UserDay, b rollups.Built) func(day.Day) any {
			return rowsOf(rollups.ComputeLifecycle(dts, rows, b))
		},
		empty: []rollups.LifecycleDaily{}},
	{name: "stickiness_daily",
		reads: func(d day.Day, _ userDays, _ string, built rollups.Built) (day.Day, day.Day, string) {
			from := d - rollups.MAUDays + 1
			return from, d, startIn(from, built)
		},
		span: func(dts []day.Day, _ day.Day) (day.Day, day.Day, bool) { return rollups.ActiveUsersSpan(dts) },
		compute: func(dts []day.Day, rows []rollups.UserDay, b rollups.Built) func(day.Day) any {
			return rowsOf(rollups.ComputeStickiness(dts, rows, b))
		},
		empty: []rollups.StickinessDaily{}},
}

// windowPart is a windowed partition to publish: its day and fingerprint.
type windowPart struct {
	d  day.Day
	fp string
}

func windowDays(ps []windowPart) []day.Day {
	out := make([]day.Day, len(ps))
	for i, p := range ps {
		out[i] = p.d
	}
	return out
}

// staleWindowed returns, per table, the windowed partitions of the built
// days that differ from a clean build (all of the range's with Force), and
// counts the range's others in ws as up to date. Only built days get
// windowed partitions (a day never built is not computed); a window
// reaching back before the start of data depends on where that start is.
func (w *windowed) staleWindowed(ctx context.Context, cur userDays, days []day.Day, digests map[day.Day]uint64, built rollups.Built, ws *WindowedSummary) (map[string][]windowPart, error) {
	stale := map[string][]windowPart{}
	for _, d := range days {
		cohort := fmt.Sprintf("cohort=%016x", digests[d])
		for _, t := range windowedTables {
			from, to, extra := t.reads(d, cur, cohort, built)
			fp := windowFingerprint(t.name, cur, from, to, extra)
			s, err := w.stale(ctx, t.name, d, fp)
			if err != nil {
				return nil, err
			}
			if s {
				stale[t.name] = append(stale[t.name], windowPart{d, fp})
			} else if d >= w.From && d <= w.To {
				ws.Partitions = append(ws.Partitions, Partition{t.name, d})
				ws.UpToDate++
			}
		}
	}
	return stale, nil
}

// stale reports whether the partition of table for day d differs from
// one of fingerprint fp (always, for a day of the range with Force).
func (w *windowed) stale(ctx context.Context, table string, d day.Day, fp string) (bool, error) {
	if w.Force && d >= w.From && d <= w.To {
		return true, nil
	}
	m, err := publish.Current(ctx, w.Store, table, d)
	if errors.Is(err, store.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if m.Fingerprint == fp && w.cleanupAtOnce() {
		// A run killed between its commit and its cleanup left the
		// debris of earlier runs behind (stage 2's lease is ours).
		w.cleanup(ctx, table, publish.DayPart(d), m.Run, w.Now())
	}
	return m.Fingerprint != fp, nil
}

// userDayRows reads the user_daily the stale partitions span, marking
// each row new on the person's first day from the users state.
func (w *windowed) userDayRows(ctx context.Context, us *usersState, cur userDays, days []day.Day, stale map[string][]windowPart, ws *WindowedSummary) ([]rollups.UserDay, error) {
	first, asOf := days[0], days[len(days)-1]
	lo, hi := asOf, first
	for _, t := range windowedTables {
		if from, to, ok := t.span(windowDays(stale[t.name]), asOf); ok {
			lo, hi = min(lo, from), max(hi, to)
		}
	}
	if err := us.loadAll(ctx, w.Store); err != nil {
		return nil, err
	}
	var rows []rollups.UserDay
	for d := max(lo, first); d <= min(hi, asOf); d++ {
		m, ok := cur[d]
		if !ok {
			continue
		}
		uds, err := us.readUserDaily(ctx, w.Store, m)
		if err != nil {
			return nil, err
		}
		ws.ReadUserDay++
		for _, r := range uds {
			f, _ := us.firstSeen(r.Product, r.UserKey)
			rows = append(rows, rollups.UserDay{Day: d, Product: r.Product, UserKey: r.UserKey, IsNew: f == d})
		}
	}
	return rows, nil
}

// withdrawnFingerprint is the fingerprint of a windowed partition
// withdrawn because its day is not built (publish.WithdrawnFingerprint).
const withdrawnFingerprint = publish.WithdrawnFingerprint

// withdrawUnbuilt republishes empty every windowed partition with rows
// whose day is not built: a day never built is not computed (an earlier
// version of this code published every day from the first to the last
// built one, as zeros). It lists the tables' partition folders and
// reads the current manifest only of folders of days not built; a
// withdrawn partition is registered like the others, so a catalog points
// at its empty run. Its rows going away are logged, not recorded as
// restatements: they were never numbers of a built day.
func (w *windowed) withdrawUnbuilt(ctx context.Context, run string, cur userDays, ws *WindowedSummary, opt publish.WriterOptions) error {
	for _, t := range windowedTables {
		if err := w.withdrawTable(ctx, run, t.name, cur.has, t.empty, ws, opt); err != nil {
			return err
		}
	}
	return nil
}

// withdrawTable republishes empty (as the partition with no rows, empty)
// every partition of table with rows whose day keep does not hold: for
// withdrawUnbuilt a day not built, for dim_date a day outside its span.
// It reads the current manifest only of the folders of such days.
func (w *windowed) withdrawTable(ctx context.Context, run, table string, keep func(day.Day) bool, empty any, ws *WindowedSummary, opt publish.WriterOptions) error {
	parts, err := publish.Partitions(ctx, w.Store, table)
	if err != nil {
		return err
	}
	for _, part := range parts {
		d, err := day.Parse(strings.TrimPrefix(part, "dt="))
		if err != nil || keep(d) {
			continue
		}
		m, err := publish.Current(ctx, w.Store, table, d)
		if errors.Is(err, store.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if m.Rows == 0 {
			continue
		}
		if _, err := w.publishWindowed(ctx, run, table, d, withdrawnFingerprint, empty, opt, true); err != nil {
			return err
		}
		w.Log.Info("withdrawn: a windowed partition of a day not computed", "table", table, "day", d.String(), "rows", m.Rows)
		ws.Partitions = append(ws.Partitions, Partition{table, d})
		ws.Withdrawn++
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

// restates reports whether a new run of a partition whose current run is
// prev can restate its numbers: prev exists and was computed by this code
// version. A number that new code computes otherwise (a column it adds,
// a count it defines anew) is not a restatement: the data did not change.
func restates(prev *publish.Manifest) bool {
	return prev != nil && prev.CodeVersion == CodeVersion
}
