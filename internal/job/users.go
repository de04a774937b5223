package job

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"
	"golang.org/x/sync/errgroup"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// The users stage (stage 2, before the windowed tables) derives the users
// table from the current user_daily partitions, and nothing else: a
// person's first day is the smallest day whose current user_daily has them,
// so it moves later when a day loses them and earlier when a late day gains
// them, whatever order the days were built in (docs/design.md §What every number means "New user").
//
// The table and its state are split into rollups.UserBuckets buckets by a
// hash of (product, user_key). Each bucket is a partition of its own,
// curated/users/bucket=NN/run=<id>/, whose manifest records the user_daily
// run of every day it was computed from (its Inputs) and a state file under
// _state/users/ holding each person's active days. A run compares those
// inputs with the current user_daily runs and applies only the days that
// differ: it reads the user_daily of changed days, never the others.

// usersStatePrefix holds the users state files, one per bucket run.
const usersStatePrefix = "_state/users/"

// userRec is one person's state in a bucket: their active days (sorted) and
// user_daily's platform and country on the first of them.
type userRec struct {
	days              []day.Day
	platform, country string
	unknownFirst      bool // the first day changed; platform/country must be read again
}

// userStateRow is one row of a bucket's state file. Days holds the active
// days as uvarint deltas (the first from day 0).
type userStateRow struct {
	Product       string `parquet:"product"`
	UserKey       string `parquet:"user_key"`
	Days          []byte `parquet:"days"`
	FirstPlatform string `parquet:"first_platform"`
	FirstCountry  string `parquet:"first_country"`
}

func encodeDays(ds []day.Day) []byte {
	var out []byte
	prev := day.Day(0)
	for _, d := range ds {
		out = binary.AppendUvarint(out, uint64(d-prev))
		prev = d
	}
	return out
}

func decodeDays(b []byte) ([]day.Day, error) {
	var out []day.Day
	prev := day.Day(0)
	for len(b) > 0 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errors.New("corrupt day list")
		}
		prev += day.Day(v)
		out = append(out, prev)
		b = b[n:]
	}
	return out, nil
}

// userBucket is one bucket of the users state, in memory.
type userBucket struct {
	n      int
	m      *publish.Manifest // current manifest; nil if never published
	inputs map[day.Day]string
	users  map[string]*userRec // product + "\x00" + user_key
	loaded bool
	dirty  bool
}

func (b *userBucket) part() string { return rollups.BucketPart(b.n) }

// load reads the bucket's state file (once).
func (b *userBucket) load(ctx context.Context, st store.Store) error {
	if b.loaded {
		return nil
	}
	b.loaded = true
	b.users = map[string]*userRec{}
	if b.m == nil || b.m.State == "" {
		return nil
	}
	data, err := st.Get(ctx, b.m.State)
	if err != nil {
		return fmt.Errorf("users state %s: %w", b.m.State, err)
	}
	rows, err := parquet.Read[userStateRow](bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("read %s: %w", b.m.State, err)
	}
	for _, r := range rows {
		ds, err := decodeDays(r.Days)
		if err != nil {
			return fmt.Errorf("read %s: %s %s: %w", b.m.State, r.Product, r.UserKey, err)
		}
		b.users[r.Product+"\x00"+r.UserKey] = &userRec{days: ds, platform: r.FirstPlatform, country: r.FirstCountry}
	}
	return nil
}

// usersState is every bucket of the users state.
type usersState struct {
	buckets []*userBucket
	// The user_daily run read last, kept for the windowed stage, which
	// reads the same run of the run's last day again. Only one: a backfill's
	// days are not all held. It starts as the last day this process built
	// (publisher.built), whose rows were just written.
	lastKey  string
	lastRows []rollups.UserDaily
}

// readUserDaily reads the rows of one run of a user_daily partition, the
// last one read from memory. The rows are shared: not to be modified.
func (u *usersState) readUserDaily(ctx context.Context, st store.Store, m *publish.Manifest) ([]rollups.UserDaily, error) {
	key := m.Day + "/" + m.Run
	if key == u.lastKey {
		return u.lastRows, nil
	}
	rows, err := readUserDaily(ctx, st, m)
	if err != nil {
		return nil, err
	}
	u.lastKey, u.lastRows = key, rows
	return rows, nil
}

// firstSeen returns a person's first day in a product (ok false if unknown).
// The bucket must be loaded.
func (u *usersState) firstSeen(product, userKey string) (day.Day, bool) {
	b := u.buckets[rollups.UserBucket(product, userKey)]
	r := b.users[product+"\x00"+userKey]
	if r == nil || len(r.days) == 0 {
		return 0, false
	}
	return r.days[0], true
}

// loadAll loads every bucket's state.
func (u *usersState) loadAll(ctx context.Context, st store.Store) error {
	for _, b := range u.buckets {
		if err := b.load(ctx, st); err != nil {
			return err
		}
	}
	return nil
}

// cohortDigests sums the buckets' cohort digests per first-seen day.
func (u *usersState) cohortDigests() map[day.Day]uint64 {
	out := map[day.Day]uint64{}
	for _, b := range u.buckets {
		if b.m == nil {
			continue
		}
		for k, v := range b.m.Cohorts {
			if d, err := day.Parse(k); err == nil {
				out[d] += v
			}
		}
	}
	return out
}

// userDays is the current user_daily partition of every day that has one:
// what stage 2 reads, resolved once.
type userDays map[day.Day]*publish.Manifest

// built returns what the windowed tables know of the days: the built ones
// (with a current user_daily), which of them were built provisional (their
// manifest's status), and the start of data (the first with a row; the
// first built day if none has one).
func (u userDays) built() rollups.Built {
	b := rollups.Built{Days: make(map[day.Day]bool, len(u))}
	start, found := day.Day(0), false
	for d, m := range u {
		b.Days[d] = m.Config[statusKey] == rollups.Status(true)
		if m.Rows > 0 && (!found || d < start) {
			start, found = d, true
		}
	}
	if !found {
		for d := range u {
			if !found || d < start {
				start, found = d, true
			}
		}
	}
	b.Start = start
	return b
}

// has reports whether day d is built (has a current user_daily).
func (u userDays) has(d day.Day) bool { return u[d] != nil }

// run returns the run of day d's current user_daily ("" if it has none).
func (u userDays) run(d day.Day) string {
	if m := u[d]; m != nil {
		return m.Run
	}
	return ""
}

// currentUserDays resolves the current user_daily partition of every day.
func currentUserDays(ctx context.Context, st store.Store) (userDays, error) {
	parts, err := publish.CurrentFiles(ctx, st, "user_daily")
	if err != nil {
		return nil, err
	}
	out := make(userDays, len(parts))
	for _, p := range parts {
		if d, err := day.Parse(strings.TrimPrefix(p.Part, "dt=")); err == nil {
			out[d] = p.Manifest
		}
	}
	return out, nil
}

// readUserDaily reads the rows of one run of a user_daily partition.
func readUserDaily(ctx context.Context, st store.Store, m *publish.Manifest) ([]rollups.UserDaily, error) {
	return manifestRows[rollups.UserDaily](ctx, st, m)
}

// UsersSummary says what the users stage did.
type UsersSummary struct {
	DaysRead int      // user_daily partitions read
	Buckets  []string // bucket partitions (re)published
	// FirstSeenLater counts people whose first day moved later (a day lost
	// them), and Gone people no longer in any user_daily.
	FirstSeenLater, Gone int
}

// updateUsers brings every users bucket up to date with the current
// user_daily partitions cur, publishing the buckets whose inputs differ. The
// caller holds the stage-2 lease, so no other run updates the buckets
// meanwhile.
func (w *windowed) updateUsers(ctx context.Context, cur userDays) (*usersState, *UsersSummary, error) {
	us := &usersState{lastKey: w.built.key, lastRows: w.built.rows} // the last day built, already in memory
	sum := &UsersSummary{}
	diffs, changed, err := w.openBuckets(ctx, us, cur)
	if err != nil || len(changed) == 0 {
		return us, sum, err
	}
	if err := us.takeOut(ctx, w.Store, diffs); err != nil {
		return nil, nil, err
	}
	if err := us.putBack(ctx, w.Store, cur, diffs, changed, sum); err != nil {
		return nil, nil, err
	}
	if err := us.fixFirstDays(ctx, w.Store, cur, sum); err != nil {
		return nil, nil, err
	}
	// Buckets are published in parallel: each is its own partition.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(bucketParallel())
	for _, b := range us.buckets {
		if b.dirty {
			g.Go(func() error { return w.publishBucket(gctx, b, cur) })
			sum.Buckets = append(sum.Buckets, b.part())
		} else if b.m != nil && w.cleanupAtOnce() {
			// A run killed between its commit and its cleanup left the
			// debris of earlier runs behind (stage 2's lease is ours).
			w.cleanup(ctx, rollups.UsersTable.Name, b.part(), b.m.Run, w.Now())
		}
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return us, sum, nil
}

// openBuckets reads every bucket's current manifest into us, and returns,
// for each bucket, the days whose user_daily it must (re)apply, and the
// union of those days.
func (w *windowed) openBuckets(ctx context.Context, us *usersState, cur userDays) ([]map[day.Day]bool, map[day.Day]bool, error) {
	changed := map[day.Day]bool{}
	diffs := make([]map[day.Day]bool, rollups.UserBuckets)
	for n := range rollups.UserBuckets {
		b := &userBucket{n: n, inputs: map[day.Day]string{}}
		us.buckets = append(us.buckets, b)
		m, err := publish.CurrentAt(ctx, w.Store, rollups.UsersTable.Name, b.part())
		switch {
		case errors.Is(err, store.ErrNotExist):
		case err != nil:
			return nil, nil, err
		case m.CodeVersion != CodeVersion || m.TimeZone != w.Rules.Loc.String():
			b.m = m // rebuilt from scratch: no inputs, no state
			b.m.State = ""
		default:
			b.m = m
			for _, in := range m.Inputs {
				if d, err := day.Parse(strings.TrimPrefix(in.Key, "dt=")); err == nil {
					b.inputs[d] = in.ETag
				}
			}
		}
		diff := map[day.Day]bool{}
		for d, m := range cur {
			if b.inputs[d] != m.Run {
				diff[d] = true
			}
		}
		for d := range b.inputs {
			if _, ok := cur[d]; !ok {
				diff[d] = true
			}
		}
		diffs[n] = diff
		for d := range diff {
			changed[d] = true
		}
	}
	return diffs, changed, nil
}

// takeOut loads every bucket with days to (re)apply (in parallel: each is
// its own files) and takes those days out of it.
func (u *usersState) takeOut(ctx context.Context, st store.Store, diffs []map[day.Day]bool) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(bucketParallel())
	for n, b := range u.buckets {
		if len(diffs[n]) > 0 {
			g.Go(func() error { return b.load(gctx, st) })
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for n, b := range u.buckets {
		if len(diffs[n]) == 0 {
			continue
		}
		b.dirty = true
		for _, r := range b.users {
			first := r.days[0]
			r.days = slices.DeleteFunc(r.days, func(d day.Day) bool { return diffs[n][d] })
			if len(r.days) == 0 || r.days[0] != first {
				r.unknownFirst = true
			}
		}
	}
	return nil
}

// putBack puts back what the current user_daily of the changed days says,
// day by day in order, so a person's platform and country are their first
// day's.
func (u *usersState) putBack(ctx context.Context, st store.Store, cur userDays, diffs []map[day.Day]bool, changed map[day.Day]bool, sum *UsersSummary) error {
	for _, d := range slices.Sorted(maps.Keys(changed)) {
		m, ok := cur[d]
		if !ok {
			continue // the day is gone
		}
		rows, err := u.readUserDaily(ctx, st, m)
		if err != nil {
			return err
		}
		sum.DaysRead++
		for _, r := range rows {
			n := rollups.UserBucket(r.Product, r.UserKey)
			if !diffs[n][d] {
				continue
			}
			b := u.buckets[n]
			k := r.Product + "\x00" + r.UserKey
			rec := b.users[k]
			if rec == nil {
				rec = &userRec{unknownFirst: true}
				b.users[k] = rec
			}
			i, found := slices.BinarySearch(rec.days, d)
			if found {
				continue
			}
			rec.days = slices.Insert(rec.days, i, d)
			if i == 0 {
				rec.platform, rec.country, rec.unknownFirst = r.Platform, r.Country, false
			}
		}
	}
	return nil
}

// fixFirstDays drops people no longer in any user_daily, and reads the
// platform and country of people whose first day became one that was not
// re-read from that day (rare: a day lost them).
func (u *usersState) fixFirstDays(ctx context.Context, st store.Store, cur userDays, sum *UsersSummary) error {
	fix := map[day.Day]map[string]*userRec{}
	for _, b := range u.buckets {
		if !b.dirty {
			continue
		}
		for k, r := range b.users {
			switch {
			case len(r.days) == 0:
				delete(b.users, k)
				sum.Gone++
			case r.unknownFirst:
				sum.FirstSeenLater++
				if fix[r.days[0]] == nil {
					fix[r.days[0]] = map[string]*userRec{}
				}
				fix[r.days[0]][k] = r
			}
		}
	}
	for _, d := range slices.Sorted(maps.Keys(fix)) {
		rows, err := u.readUserDaily(ctx, st, cur[d])
		if err != nil {
			return err
		}
		sum.DaysRead++
		for _, r := range rows {
			if rec := fix[d][r.Product+"\x00"+r.UserKey]; rec != nil {
				rec.platform, rec.country, rec.unknownFirst = r.Platform, r.Country, false
			}
		}
	}
	return nil
}

// bucketParallel is how many users buckets are loaded or published at
// once: a few per core (they also wait on the store).
func bucketParallel() int { return 2 * runtime.GOMAXPROCS(0) }
