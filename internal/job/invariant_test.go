package job

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/erasure"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/raw"
	"github.com/littlewarehouse/warehouse/internal/segment"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// TestInvariantAnyRunSequence states docs/design.md §The invariant directly: after
// any sequence of runs — random ranges in random order, two at once, runs
// killed between or within days or while routing, stage 1 without stage 2,
// segments deleted or damaged, people erased (the erase stopped at a
// random step or not) — over raw objects that arrive late, disappear or
// turn unreadable, every table equals a clean build of the raw objects
// present at the end (same bytes, same rows), and those hold every row but
// the erased people's (checked object by object after each erase).
//
// Each sequence ends with the nightly kind of run: one over the days built
// so far, without --force, at a time when every day is final (the sequence
// ran with a clock that made them provisional, then some final). A clean build is a fresh store holding the final
// raw objects, built with one run per block of consecutive days the sequence
// built (days never built stay unbuilt in both).
func TestInvariantAnyRunSequence(t *testing.T) {
	ctx := context.Background()
	d1 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	const days = 10
	// A pool of raw objects: ten days of users who come back, arriving late,
	// with duplicates, skew and bad objects.
	pool := store.NewMem()
	gcfg := gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, days-1), EventsPerDay: 300, ObjectsPerHour: 1, Users: 60, Seed: 21})
	if _, err := gen.Generate(ctx, pool, gcfg); err != nil {
		t.Fatal(err)
	}
	objs, err := pool.List(ctx, "raw/")
	if err != nil {
		t.Fatal(err)
	}
	first := day.FromDate(2026, 5, 1)
	rules := compact.DefaultRules(time.UTC)
	people := peopleByObject(t, pool)
	eraseAt := d1.AddDate(0, 0, 30) // erasure requests are made after every event was received

	for seq := range 6 {
		t.Run(fmt.Sprintf("sequence %d", seq), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seq), 99))
			root := t.TempDir()
			st, err := store.OpenDir(root, false)
			if err != nil {
				t.Fatal(err)
			}
			present := map[string][]byte{} // key -> bytes as now in st
			// added are the pool's objects put in st; gone, those of them
			// the sequence removed or corrupted.
			added, gone := map[string]bool{}, map[string]bool{}
			var absent []string
			for _, o := range objs {
				absent = append(absent, o.Key)
			}
			rng.Shuffle(len(absent), func(i, j int) { absent[i], absent[j] = absent[j], absent[i] })
			// Start with most objects; the rest arrive late.
			add := func(n int) {
				for ; n > 0 && len(absent) > 0; n-- {
					k := absent[len(absent)-1]
					absent = absent[:len(absent)-1]
					b, err := pool.Get(ctx, k)
					if err != nil {
						t.Fatal(err)
					}
					if err := st.Put(ctx, k, b); err != nil {
						t.Fatal(err)
					}
					present[k] = b
					added[k] = true
				}
			}
			pick := func() string {
				keys := make([]string, 0, len(present))
				for k := range present {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				return keys[rng.IntN(len(keys))]
			}
			add(len(absent) * 8 / 10)
			putFunnels(t, st, testFunnels)
			built := map[day.Day]bool{}
			var erased []person
			run := func(cfg Config, opts ...Option) {
				if _, err := Run(ctx, cfg, opts...); err != nil {
					t.Logf("run %s..%s: %v (a failed run is part of the sequence)", cfg.From, cfg.To, err)
				}
			}
			randomRange := func() (day.Day, day.Day) {
				a := first + day.Day(rng.IntN(days))
				b := min(a+day.Day(rng.IntN(4)), first+days-1)
				return a, b
			}
			var log []string
			// forced rebuilds cfg's days, reading what segments it can.
			forced := func(cfg Config) {
				cfg.Force = true
				run(cfg)
				for d := cfg.From; d <= cfg.To; d++ {
					built[d] = true
				}
				log = append(log, fmt.Sprintf("run %s..%s force=true", cfg.From, cfg.To))
			}
			// The sequence's clock starts three days after the first day
			// and moves a day or so per step: days are built provisional,
			// some turn final during the sequence, and the last runs (at
			// the real time) find them all final.
			clock := d1.Add(72 * time.Hour)
			for step := range 8 {
				from, to := randomRange()
				now := clock
				clock = clock.Add(24*time.Hour + time.Duration(rng.IntN(180))*time.Minute)
				cfg := Config{Store: st, From: from, To: to, Rules: rules, Parallel: 2, LockWait: time.Minute, Now: func() time.Time { return now }}
				switch op := rng.IntN(13); op {
				case 11, 12: // a person is erased; the erase is killed at a random step, or not
					p, ok := erasable(people, present, erased)
					if !ok {
						log = append(log, "no one to erase")
						break
					}
					erased = append(erased, p)
					if _, err := erasure.Record(ctx, st, "", []string{p.user, "anon:" + p.device}, eraseAt); err != nil {
						t.Fatal(err)
					}
					orig := store.NewMem()
					copyPrefixes(t, st, orig, "raw/")
					limit, steps := rng.IntN(8), 0
					var opts []Option
					if op == 11 {
						opts = append(opts, withEraseHook(func(string) error {
							if steps++; steps > limit {
								return errors.New("killed")
							}
							return nil
						}))
					}
					if _, err := Erase(ctx, cfg, opts...); err != nil {
						log = append(log, fmt.Sprintf("erase %s killed after %d steps", p.user, limit))
						break
					}
					// An erase carries out every request pending, those of
					// erases killed before too.
					rawRowsWithout(t, orig, st, erased...)
					log = append(log, "erase "+p.user)
				case 0: // late objects arrive
					n := 1 + rng.IntN(6)
					add(n)
					log = append(log, fmt.Sprintf("add %d", n))
				case 1: // an object disappears
					k := pick()
					gone[k] = true
					if err := st.Delete(ctx, k); err != nil {
						t.Fatal(err)
					}
					delete(present, k)
					log = append(log, "remove "+k)
				case 2: // an object turns unreadable
					k := pick()
					gone[k] = true
					b := []byte("PAR1 not really parquet PAR1")
					if err := st.Put(ctx, k, b); err != nil {
						t.Fatal(err)
					}
					present[k] = b
					log = append(log, "corrupt "+k)
				case 3: // two runs at once
					from2, to2 := randomRange()
					cfg2 := cfg
					cfg2.From, cfg2.To = from2, to2
					var wg sync.WaitGroup
					for _, c := range []Config{cfg, cfg2} {
						wg.Add(1)
						go func() { defer wg.Done(); run(c) }()
					}
					wg.Wait()
					for d := min(from, from2); d <= max(to, to2); d++ {
						if (d >= from && d <= to) || (d >= from2 && d <= to2) {
							built[d] = true
						}
					}
					log = append(log, fmt.Sprintf("runs %s..%s and %s..%s at once", from, to, from2, to2))
				case 4: // killed after its first day, before stage 2
					// Which day is first depends on the run's order (its
					// last day first): the hook records it.
					n := 0
					run(cfg, withDayHook(func(d day.Day) error {
						if n++; n > 1 {
							return errors.New("killed")
						}
						built[d] = true
						return nil
					}))
					log = append(log, fmt.Sprintf("run %s..%s killed after one day", from, to))
				case 5: // stage 1 only (a Lambda worker, or a run that died between the stages)
					if _, err := BuildDays(ctx, cfg); err != nil {
						t.Logf("stage 1 of %s..%s: %v (a failed run is part of the sequence)", cfg.From, cfg.To, err)
					}
					for d := from; d <= to; d++ {
						built[d] = true
					}
					log = append(log, fmt.Sprintf("stage 1 of %s..%s", from, to))
				case 8: // the segments cache is partly lost (S3 lifecycle, a user's rm)
					segs, err := st.List(ctx, segment.Prefix)
					if err != nil {
						t.Fatal(err)
					}
					n := 0
					for _, o := range segs {
						if rng.IntN(3) == 0 {
							if err := st.Delete(ctx, o.Key); err != nil {
								t.Fatal(err)
							}
							n++
						}
					}
					log = append(log, fmt.Sprintf("%d segments deleted", n))
					forced(cfg)
				case 9: // a segment is damaged
					segs, err := st.List(ctx, segment.Prefix)
					if err != nil {
						t.Fatal(err)
					}
					if len(segs) > 0 {
						k := segs[rng.IntN(len(segs))].Key
						if err := st.Put(ctx, k, []byte("not a segment")); err != nil {
							t.Fatal(err)
						}
						log = append(log, "segment damaged: "+k)
						// A forced run over the damaged segment's day.
						if d, _, _, ok := segment.Parse(k); ok {
							cfg.From, cfg.To = d, d
						}
					}
					forced(cfg)
				case 10: // killed while routing: some objects read, their segments written, the index not saved
					var reads atomic.Int32
					limit := int32(1 + rng.IntN(5))
					killRouting := withReadHook(func(string) error {
						if reads.Add(1) > limit {
							return errors.New("killed")
						}
						return nil
					})
					// Days whose objects were all read before the kill are
					// built: the hook records them.
					run(cfg, killRouting, withDayHook(func(d day.Day) error {
						built[d] = true
						return nil
					}))
					log = append(log, fmt.Sprintf("run %s..%s killed while routing, after %d objects", from, to, limit))
				default:
					cfg.Force = op == 7
					if op == 6 { // the funnels change: funnel_daily follows, the days do not
						putFunnels(t, st, []string{testFunnels, otherFunnels}[rng.IntN(2)])
						log = append(log, "funnels changed")
					}
					run(cfg)
					for d := from; d <= to; d++ {
						built[d] = true
					}
					log = append(log, fmt.Sprintf("run %s..%s force=%t", from, to, cfg.Force))
				}
				_ = step
			}
			blocks := dayBlocks(built)
			// Pending (killed) erasures are carried out first, as the CLI
			// and the nightly state machine do; then the raw objects are
			// what the erasures left, and hold no row of the people erased.
			if _, err := Erase(ctx, Config{Store: st, Rules: rules, Parallel: 2}); err != nil {
				t.Fatalf("final erase: %v\nsteps: %v", err, log)
			}
			present = rawObjectsOf(t, st)
			noRowsOf(t, st, erased)
			rawRowsAfterErasures(t, pool, st, added, gone, erased)
			// The nightly kind of run over what was built.
			turned := 0
			for _, b := range blocks {
				sum, err := Run(ctx, Config{Store: st, From: b[0], To: b[1], Rules: rules, Parallel: 2})
				if err != nil {
					t.Fatalf("final run %s..%s: %v\nsteps: %v", b[0], b[1], err, log)
				}
				for _, d := range sum.Days {
					if strings.HasPrefix(d.Why, "turned final") {
						turned++
					}
				}
			}
			if turned == 0 {
				t.Errorf("no day built provisional turned final in the last runs: the sequence does not exercise it\nsteps: %v", log)
			}
			clean := store.NewMem()
			copyPrefixes(t, st, clean, "raw-errors/", rollups.FunnelsKey)
			for k, b := range present {
				if err := clean.Put(ctx, k, b); err != nil {
					t.Fatal(err)
				}
			}
			for _, b := range blocks {
				if _, err := Run(ctx, Config{Store: clean, From: b[0], To: b[1], Rules: rules, Parallel: 2}); err != nil {
					t.Fatal(err)
				}
			}
			lo, hi := first-1, first+days+30
			if diff := tablesDiff(t, clean, st, lo, hi); diff != "" {
				t.Errorf("after %v\nthe tables differ from a clean build of the objects present (-clean +incremental):\n%s", log, diff)
			}
			// The windowed tables equal DuckDB running their reference SQL
			// over the user_daily and users the sequence left.
			windowedAgainstDuckDB(t, root, blocks[0][0], blocks[len(blocks)-1][1])
			// data_quality_daily too, but for restated, which says what a
			// build changed and so depends on the builds before it.
			for d := lo; d <= hi; d++ {
				w, g := qualityOf(t, clean, d), qualityOf(t, st, d)
				if diff := cmp.Diff(w, g); diff != "" {
					t.Errorf("after %v\ndata_quality_daily %s differs from a clean build (-clean +incremental):\n%s", log, d, diff)
				}
			}
		})
	}
}

// dayBlocks returns the runs of consecutive days in set, as [from, to].
func dayBlocks(set map[day.Day]bool) [][2]day.Day {
	ds := make([]day.Day, 0, len(set))
	for d := range set {
		ds = append(ds, d)
	}
	slices.Sort(ds)
	var out [][2]day.Day
	for _, d := range ds {
		if n := len(out); n > 0 && out[n-1][1] == d-1 {
			out[n-1][1] = d
			continue
		}
		out = append(out, [2]day.Day{d, d})
	}
	return out
}

// qualityOf returns day d's data_quality_daily row with restated cleared,
// or nil if the day has none.
func qualityOf(t *testing.T, st store.Store, d day.Day) *rollups.DataQualityDaily {
	t.Helper()
	if _, err := publish.Current(context.Background(), st, "data_quality_daily", d); errors.Is(err, store.ErrNotExist) {
		return nil
	}
	rows := readRows[rollups.DataQualityDaily](t, st, "data_quality_daily", d)
	if len(rows) != 1 {
		t.Fatalf("data_quality_daily %s has %d rows", d, len(rows))
	}
	rows[0].Restated = false
	return &rows[0]
}

// windowedAgainstDuckDB checks every windowed table and dim_date of the
// local store at root, for the days first..asOf, against DuckDB running
// their reference SQL over the store's user_daily and users.
func windowedAgainstDuckDB(t *testing.T, root string, first, asOf day.Day) {
	t.Helper()
	ctx := context.Background()
	db := openDuck(t)
	if err := db.ViewCurated(ctx, root, append([]string{"user_daily", "users", "data_quality_daily", "dim_date"}, windowedNames()...)...); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		fmt.Sprintf("CREATE TABLE days AS SELECT unnest(range(DATE '%s', DATE '%s' + 1, INTERVAL 1 DAY))::DATE AS dt", first, asOf),
		"CREATE TABLE built AS SELECT dt, provisional FROM data_quality_daily",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	orders := maps.Clone(windowedOrder)
	orders["dim_date"] = "dt"
	for table, order := range orders {
		ref, err := db.Query(ctx, fmt.Sprintf("SELECT * FROM (%s) ORDER BY %s", rollups.RefSQL(table), order))
		if err != nil {
			t.Fatal(err)
		}
		cols := "*"
		if table != rollups.DimDateTable.Name {
			cols = "* EXCLUDE (date)" // dt inside the files, not in the SQL
		}
		ours, err := db.Query(ctx, fmt.Sprintf("SELECT %s FROM %s WHERE dt BETWEEN DATE '%s' AND DATE '%s' ORDER BY %s", cols, table, first, asOf, order))
		if err != nil {
			t.Fatal(err)
		}
		if len(ref) == 0 {
			t.Fatalf("%s: the reference has no rows", table)
		}
		if diff := cmp.Diff(ref, ours, cmpopts.EquateApprox(1e-9, 0)); diff != "" {
			t.Errorf("%s (-DuckDB reference +ours):\n%s", table, diff)
		}
	}
}

// peopleByObject returns the people (user_id and the device_id they
// signed in on) of the pool's raw objects, with the objects holding any of
// their rows.
func peopleByObject(t *testing.T, pool store.Store) map[person][]string {
	t.Helper()
	ctx := context.Background()
	objs, err := pool.List(ctx, "raw/")
	if err != nil {
		t.Fatal(err)
	}
	device := map[string]string{}
	rows := map[string][]raw.Row{}
	for _, o := range objs {
		rs, err := raw.Read(ctx, pool, o.Key)
		if err != nil {
			continue
		}
		rows[o.Key] = rs
		for _, r := range rs {
			if r.UserID != "" && r.DeviceID != "" {
				device[r.UserID] = r.DeviceID
			}
		}
	}
	out := map[person][]string{}
	for u, d := range device {
		p := person{user: u, device: d}
		for k, rs := range rows {
			if slices.ContainsFunc(rs, func(r raw.Row) bool { return r.UserID == u || r.DeviceID == d }) {
				out[p] = append(out[p], k)
			}
		}
		slices.Sort(out[p])
	}
	return out
}

// windowedOrder is the grain of each windowed table, to compare rows in.
var windowedOrder = map[string]string{
	"active_users_daily": "dt, product",
	"retention_daily":    "dt, product, day_n",
	"lifecycle_daily":    "dt, product",
	"stickiness_daily":   "dt, product, window_days, days_active",
}

func windowedNames() []string {
	var out []string
	for _, t := range rollups.Windowed {
		out = append(out, t.Name)
	}
	return out
}

// erasable returns a person not erased yet all of whose objects are
// present (none is still to arrive late), the first in user order.
func erasable(people map[person][]string, present map[string][]byte, erased []person) (person, bool) {
	var ps []person
	for p, keys := range people {
		if slices.Contains(erased, p) {
			continue
		}
		if !slices.ContainsFunc(keys, func(k string) bool { _, ok := present[k]; return !ok }) {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, func(a, b person) int { return strings.Compare(a.user, b.user) })
	if len(ps) == 0 {
		return person{}, false
	}
	return ps[0], true
}

// rawRowsAfterErasures checks that, once every erasure is done, each
// good object of pool added to st and neither removed nor corrupted by the
// sequence holds exactly its rows in pool but the erased people's, in
// order, under its key or its rewrite's (<key>~erased-…), one object
// only, and none if no row is left: killed and resumed erases lose no
// good row and keep none of the people's.
func rawRowsAfterErasures(t *testing.T, pool, st store.Store, added, gone map[string]bool, erased []person) {
	t.Helper()
	ctx := context.Background()
	objs, err := st.List(ctx, "raw/")
	if err != nil {
		t.Fatal(err)
	}
	byOrigin := map[string][]string{}
	for _, o := range objs {
		origin, _, _ := strings.Cut(o.Key, erasedSep)
		byOrigin[origin] = append(byOrigin[origin], o.Key)
	}
	for k := range added {
		want, err := raw.Read(ctx, pool, k)
		if gone[k] || err != nil {
			continue // removed, corrupted, or bad from the start
		}
		want = slices.DeleteFunc(want, func(r raw.Row) bool {
			return slices.ContainsFunc(erased, func(p person) bool { return r.UserID == p.user || r.DeviceID == p.device })
		})
		keys := byOrigin[k]
		if len(want) == 0 {
			if len(keys) > 0 {
				t.Errorf("%s: every row was the erased people's, yet %v are left", k, keys)
			}
			continue
		}
		if len(keys) != 1 {
			t.Errorf("%s: %d objects hold its rows (%v), want 1", k, len(keys), keys)
			continue
		}
		got, err := raw.Read(ctx, st, keys[0])
		if err != nil {
			t.Errorf("%s: %v", keys[0], err)
			continue
		}
		for i := range got {
			got[i].Source = k
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s (-original rows without the erased people's +now):\n%s", keys[0], diff)
		}
	}
}

// rawObjectsOf returns the raw objects of st by key.
func rawObjectsOf(t *testing.T, st store.Store) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	objs, err := st.List(ctx, "raw/")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, o := range objs {
		if out[o.Key], err = st.Get(ctx, o.Key); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// noRowsOf fails if a readable raw object of st holds a row of one of ps.
func noRowsOf(t *testing.T, st store.Store, ps []person) {
	t.Helper()
	ctx := context.Background()
	objs, err := st.List(ctx, "raw/")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		rs, err := raw.Read(ctx, st, o.Key)
		if err != nil {
			continue
		}
		for _, p := range ps {
			if slices.ContainsFunc(rs, func(r raw.Row) bool { return r.UserID == p.user || r.DeviceID == p.device }) {
				t.Errorf("%s holds rows of %s, erased", o.Key, p.user)
			}
		}
	}
}

// TestWindowedTablesListed checks that the windowed stage builds every
// table of rollups.Windowed, in its order, and that this file compares
// each of them.
func TestWindowedTablesListed(t *testing.T) {
	var stage []string
	for _, w := range windowedTables {
		stage = append(stage, w.name)
	}
	stage = append(stage, FunnelTable) // from the events, by funnelDaily
	if diff := cmp.Diff(windowedNames(), stage); diff != "" {
		t.Errorf("windowedTables (-rollups.Windowed +stage):\n%s", diff)
	}
	for _, name := range stage[:len(stage)-1] {
		if windowedOrder[name] == "" {
			t.Errorf("%s: no grain in windowedOrder", name)
		}
	}
}
