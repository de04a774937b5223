package publish

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// PartFiles is the current run of one partition of a table.
type PartFiles struct {
	Part     string    // the partition folder, e.g. "dt=2026-11-24" or "bucket=07"
	Manifest *Manifest // the current run's manifest; Manifest.Files are the partition's data
}

// Partitions lists the distinct partition folders under curated/<table>/
// ("dt=2026-11-24", "bucket=07"), sorted, whether or not any of their runs
// is committed: a folder counts once it holds a run folder. A table with no
// partitions gives an empty list, not an error.
func Partitions(ctx context.Context, st store.Store, table string) ([]string, error) {
	prefix := "curated/" + table + "/"
	objs, err := st.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var parts []string
	for _, o := range objs {
		part, rest, ok := strings.Cut(strings.TrimPrefix(o.Key, prefix), "/")
		if !ok || !strings.Contains(part, "=") || !strings.HasPrefix(rest, "run=") || seen[part] {
			continue
		}
		seen[part] = true
		parts = append(parts, part)
	}
	sort.Strings(parts)
	return parts, nil
}

// listParallel bounds the partitions CurrentFiles resolves at once.
const listParallel = 8

// CurrentFiles resolves every partition of table to its current run
// (CurrentAt), sorted by partition. Partitions with no committed run are
// left out, as are run folders without a manifest and superseded runs. It
// is what the job builds on; readers use Visible, which also keeps a day's
// tables at one build. The answer is a snapshot: a later commit and its
// cleanup may delete the files of a run returned here (after the grace
// period, on S3).
func CurrentFiles(ctx context.Context, st store.Store, table string) ([]PartFiles, error) {
	return resolve(ctx, st, table, nil)
}

// resolve resolves every partition of table to the run pick chooses of its
// committed runs (current first; nil picks the current run), sorted by
// partition, leaving out partitions with no committed run.
func resolve(ctx context.Context, st store.Store, table string, pick func(ms []*Manifest, part string) *Manifest) ([]PartFiles, error) {
	current := pick == nil // the head alone: CurrentAt, without the older runs
	parts, err := Partitions(ctx, st, table)
	if err != nil {
		return nil, err
	}
	out := make([]PartFiles, len(parts))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(listParallel)
	for i, part := range parts {
		g.Go(func() error {
			if current {
				m, err := CurrentAt(gctx, st, table, part)
				if errors.Is(err, store.ErrNotExist) {
					return nil
				}
				out[i] = PartFiles{Part: part, Manifest: m}
				return err
			}
			ms, err := Committed(gctx, st, table, part)
			if errors.Is(err, store.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			out[i] = PartFiles{Part: part, Manifest: pick(ms, part)}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	kept := out[:0]
	for _, pf := range out {
		if pf.Manifest != nil {
			kept = append(kept, pf)
		}
	}
	return kept, nil
}

// CurrentKeys lists the keys of every data file of table's current runs,
// partition by partition in sorted order, each run's files in manifest
// order: what a view of the table reads (see CurrentFiles). A table with no
// committed partition gives an empty list.
func CurrentKeys(ctx context.Context, st store.Store, table string) ([]string, error) {
	parts, err := CurrentFiles(ctx, st, table)
	if err != nil {
		return nil, err
	}
	return Snapshot{table: parts}.Keys(table), nil
}

// Snapshot is what a reader sees of some curated tables: for each table,
// the run each of its partitions resolves to, sorted by partition (see
// Visible).
type Snapshot map[string][]PartFiles

// Keys lists the keys of every data file of table in s, partition by
// partition, each run's files in manifest order: what a view of the table
// reads.
func (s Snapshot) Keys(table string) []string {
	var keys []string
	for _, pf := range s[table] {
		for _, f := range pf.Manifest.Files {
			keys = append(keys, f.Key)
		}
	}
	return keys
}

// DayTables are the tables one build of a day commits together
// (rollups.Daily), in the order it commits them: a build that committed the
// last one committed them all.
func DayTables() []string {
	names := make([]string, len(rollups.Daily))
	for i, t := range rollups.Daily {
		names[i] = t.Name
	}
	return names
}

// Visible resolves tables for readers (lwsql, the DuckDB views, the
// report): every partition to its current run, as CurrentFiles does, except
// that all the DayTables of one day show one build of that day, so that no
// reader sees one build's events beside another's sessions_daily (a run
// that failed between two commits of a day leaves the day's tables at two
// builds until the next run).
//
// A day's build is the current run of the last of its DayTables
// (quarantine), which a build commits after all the others: a complete
// build. Each of the day's tables then resolves to that run; if it lacks it,
// to its newest run with the build's fingerprint (the same inputs, code and
// config, so the same data); and failing that, or if the day has no
// complete build at all, to its own current run. The build is resolved
// before the tables; a table found without the build's run (a later build
// committed and cleaned it up meanwhile) makes Visible resolve everything
// again, a few times, before it settles for that table's current run.
//
// Like CurrentFiles, the answer is a snapshot: a later commit and its
// cleanup may delete files it names (at once on a local store without a
// grace period). A reader that finds a file gone resolves again.
func Visible(ctx context.Context, st store.Store, tables ...string) (Snapshot, error) {
	for attempt := 1; ; attempt++ {
		s, settled, err := visible(ctx, st, tables)
		if err != nil || settled || attempt == visibleAttempts {
			return s, err
		}
	}
}

// visibleAttempts bounds how often Visible resolves the tables again.
const visibleAttempts = 3

// visible is one attempt of Visible. settled is false if a day's table
// lacked its build's run and had no run of its fingerprint either.
func visible(ctx context.Context, st store.Store, tables []string) (s Snapshot, settled bool, err error) {
	dayTables := DayTables()
	grouped := false
	for _, t := range tables {
		grouped = grouped || slices.Contains(dayTables, t)
	}
	builds := map[string]*Manifest{} // day partition -> its complete build
	if grouped {
		last, err := CurrentFiles(ctx, st, dayTables[len(dayTables)-1])
		if err != nil {
			return nil, false, err
		}
		for _, pf := range last {
			builds[pf.Part] = pf.Manifest
		}
	}
	var unsettled atomic.Bool
	s = Snapshot{}
	for _, t := range tables {
		if _, done := s[t]; done {
			continue
		}
		var pick func([]*Manifest, string) *Manifest
		if slices.Contains(dayTables, t) {
			pick = func(ms []*Manifest, part string) *Manifest {
				m, ok := ofBuild(ms, builds[part])
				if !ok {
					unsettled.Store(true)
				}
				return m
			}
		}
		pfs, err := resolve(ctx, st, t, pick)
		if err != nil {
			return nil, false, err
		}
		s[t] = pfs
	}
	return s, !unsettled.Load(), nil
}

// ofBuild picks, of a partition's committed runs ms (current first), build's
// run, else the newest with build's fingerprint, else (ok false) the
// current run. With no build (nil) it picks the current run.
func ofBuild(ms []*Manifest, build *Manifest) (m *Manifest, ok bool) {
	if build == nil {
		return ms[0], true
	}
	for _, m := range ms {
		if m.Run == build.Run {
			return m, true
		}
	}
	for _, m := range ms {
		if build.Fingerprint != "" && m.Fingerprint == build.Fingerprint {
			return m, true
		}
	}
	return ms[0], false
}
