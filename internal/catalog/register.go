package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// Root returns the URL of st's root as catalog locations are written,
// without a trailing slash: "s3://bucket/prefix" for S3, "file:///abs/dir"
// for a local directory.
func Root(st store.Store) string { return strings.TrimSuffix(st.String(), "/") }

// RunLocation returns the location of a run folder:
// <root>/curated/<table>/dt=<d>/run=<run>/.
func RunLocation(root, table string, d day.Day, run string) string {
	return strings.TrimSuffix(root, "/") + "/" + publish.RunPrefix(table, d, run)
}

// KeyOf returns the store key (a folder, ending in "/") of a location in st,
// or an error if the location is not inside st.
func KeyOf(st store.Store, location string) (string, error) {
	root := Root(st) + "/"
	loc := dirURL(location)
	if !strings.HasPrefix(loc, root) || len(loc) == len(root) {
		return "", fmt.Errorf("catalog: location %s is not inside the store %s", location, st)
	}
	return loc[len(root):], nil
}

// VerifyCommitted checks that every location is a run folder of st whose
// manifest (publish.ManifestName) exists, that is, a complete run that a
// partition may be switched to. It returns an error naming each location
// that is not.
func VerifyCommitted(ctx context.Context, st store.Store, locations ...string) error {
	var mu sync.Mutex
	var errs []error
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, loc := range locations {
		g.Go(func() error {
			k, err := KeyOf(st, loc)
			if err == nil {
				_, err = st.Stat(gctx, k+publish.ManifestName)
				if errors.Is(err, store.ErrNotExist) {
					err = notCommitted(loc)
				}
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// Registration says that partition Day of Table (or, for a table not
// partitioned by day, the partition whose value is Value) is now the run
// folder at Location (see NewRegistration).
type Registration struct {
	Table    string
	Day      day.Day
	Value    string // the partition value, if not Day (e.g. "07" for bucket=07)
	Location string
	// Part is the partition's folder ("dt=2026-11-24", "bucket=07"); empty
	// means dt=Day when Value is empty. NewPartRegistration sets it.
	Part string
}

// value is the partition value of r.
func (r Registration) value() string {
	if r.Value != "" {
		return r.Value
	}
	return r.Day.String()
}

// part is the partition folder of r, or "" if it is not known.
func (r Registration) part() string {
	switch {
	case r.Part != "":
		return r.Part
	case r.Value == "":
		return publish.DayPart(r.Day)
	}
	return ""
}

// NewRegistration returns the registration of run of table's partition d in st.
func NewRegistration(st store.Store, table string, d day.Day, run string) Registration {
	return Registration{Table: table, Day: d, Location: RunLocation(Root(st), table, d, run)}
}

// NewPartRegistration returns the registration of run of table's partition
// part ("bucket=07") in st.
func NewPartRegistration(st store.Store, table, part, run string) Registration {
	_, v, _ := strings.Cut(part, "=")
	return Registration{Table: table, Value: v, Part: part, Location: strings.TrimSuffix(Root(st), "/") + "/" + publish.RunPrefixAt(table, part, run)}
}

// Registrar registers published runs in a catalog. The job creates one per
// run with every table's definition and calls Register after publishing
// (after publish.Commit of the runs it registers).
type Registrar struct {
	Catalog Catalog
	Store   store.Store // where the runs are, to check their manifests
	Tables  []TableDef  // every table to create or update (curated and raw)
	// SkipVerify skips the manifest check and the resolution to the current
	// run (the caller has just committed the runs and knows they exist and
	// are current).
	SkipVerify bool
	// Log, if set, gets one warning per Register call that registered
	// another run than asked (see Register).
	Log *slog.Logger

	mu      sync.Mutex
	ensured bool
	drift   map[string]error // tables in drift, with their *DriftError
}

// Register makes each registration's partition point at its run folder, or
// at a later one: the partition's current run (publish.CurrentAt).
//
// The first call (and every call until one succeeds) runs EnsureTables on
// all of r.Tables. A table in drift (a *DriftError) is left alone: its
// registrations are skipped, and its DriftError is part of the returned
// error, while the other tables are registered. Then (unless SkipVerify)
// every registration is resolved: a run that is no longer its partition's
// current run — another process committed a later one, and may have
// deleted this one since — is replaced by the current run, and r.Log says
// so in one line; a partition with no committed run at all is an error
// ("not a committed run"). The partitions are set table by table, in
// batches, and then resolved again: one that another process republished
// meanwhile is set again to its current run (a few rounds at most), so
// that two processes registering one partition at once leave it at the
// later run, not at whichever wrote last. A failure for one table does not
// stop the others; the errors are joined. Partitions that failed still
// point at their previous run, so the caller must keep those runs
// (Collectable does, as it reads the catalog) and a later Register
// converges.
func (r *Registrar) Register(ctx context.Context, regs []Registration) error {
	var errs []error
	if err := r.ensure(ctx); err != nil {
		return err
	}
	defs := map[string]TableDef{}
	for _, d := range r.Tables {
		defs[d.Name] = d
	}
	byTable := map[string][]Registration{}
	for _, reg := range regs {
		def, ok := defs[reg.Table]
		if !ok || def.Projected() {
			return fmt.Errorf("catalog: cannot register %s partition %s: not a curated table the registrar knows", reg.Table, reg.value())
		}
		byTable[reg.Table] = append(byTable[reg.Table], reg)
	}
	r.mu.Lock()
	drift := maps.Clone(r.drift)
	r.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(drift)) {
		errs = append(errs, drift[name])
	}
	var moved []string // "table part: run -> run", for the log
	for _, table := range slices.Sorted(maps.Keys(byTable)) {
		if drift[table] != nil {
			continue
		}
		m, err := r.registerTable(ctx, table, byTable[table])
		moved = append(moved, m...)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
	}
	if len(moved) > 0 && r.Log != nil {
		r.Log.Warn("partitions republished by another process while this one registered them: registered their current runs instead (not an error)",
			"partitions", len(moved), "changes", strings.Join(moved, "; "))
	}
	return errors.Join(errs...)
}

// registerRounds bounds how often Register sets one table's partitions
// again because other processes keep republishing them.
const registerRounds = 4

// registerTable registers regs, all of one table: resolved to their current
// runs (unless SkipVerify), set, and set again while resolving them once
// more finds a partition republished meanwhile. It returns what it moved
// to another run than asked, for the log.
func (r *Registrar) registerTable(ctx context.Context, table string, regs []Registration) ([]string, error) {
	if r.SkipVerify {
		return nil, r.set(ctx, table, regs)
	}
	asked := regs
	regs, err := r.resolve(ctx, regs)
	if err != nil {
		return nil, err
	}
	for round := 1; ; round++ {
		if err := r.set(ctx, table, regs); err != nil {
			return movedRuns(asked, regs), err
		}
		again, err := r.resolve(ctx, regs)
		if err != nil {
			return movedRuns(asked, regs), err
		}
		changed := false
		for i := range regs {
			changed = changed || again[i].Location != regs[i].Location
		}
		if !changed {
			return movedRuns(asked, regs), nil
		}
		regs = again
		if round == registerRounds {
			// Set what was resolved last, so that what is returned (and
			// logged) is what the catalog holds.
			return movedRuns(asked, regs), r.set(ctx, table, regs)
		}
	}
}

func (r *Registrar) set(ctx context.Context, table string, regs []Registration) error {
	parts := make([]Partition, len(regs))
	for i, reg := range regs {
		parts[i] = Partition{DT: reg.value(), Location: reg.Location}
	}
	if err := r.Catalog.SetPartitions(ctx, table, parts); err != nil {
		return fmt.Errorf("register %s in %s: %w", table, r.Catalog, err)
	}
	return nil
}

// movedRuns describes the registrations of got whose location is not the
// one asked for.
func movedRuns(asked, got []Registration) []string {
	var out []string
	for i := range asked {
		if asked[i].Location != got[i].Location {
			out = append(out, fmt.Sprintf("%s %s: %s -> %s", asked[i].Table, asked[i].value(), runOf(asked[i].Location), runOf(got[i].Location)))
		}
	}
	return out
}

// runOf is the run id in a run folder's location, or the location.
func runOf(loc string) string {
	_, run, ok := strings.Cut(strings.TrimSuffix(loc, "/"), "/run=")
	if !ok {
		return loc
	}
	return run
}

// resolve returns regs with each location replaced by its partition's
// current run folder, in the same order. A registration whose partition
// has no committed run is an error naming its location ("not a committed
// run"), as one outside the store is. A location that is not a run folder
// of its table's partition (another layout) is only checked to hold a
// manifest, as VerifyCommitted does.
func (r *Registrar) resolve(ctx context.Context, regs []Registration) ([]Registration, error) {
	out := slices.Clone(regs)
	errs := make([]error, len(regs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, reg := range regs {
		g.Go(func() error {
			out[i], errs[i] = r.current(gctx, reg)
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var bad []error
	for _, err := range errs {
		if err != nil {
			bad = append(bad, err)
		}
	}
	slices.SortFunc(bad, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return out, errors.Join(bad...)
}

// current resolves one registration (see resolve).
func (r *Registrar) current(ctx context.Context, reg Registration) (Registration, error) {
	k, err := KeyOf(r.Store, reg.Location)
	if err != nil {
		return reg, err
	}
	part := reg.part()
	prefix := publish.PartPrefix(reg.Table, part) + "run="
	if part == "" || !strings.HasPrefix(k, prefix) || strings.Count(k[len(prefix):], "/") != 1 {
		return reg, VerifyCommitted(ctx, r.Store, reg.Location)
	}
	m, err := publish.CurrentAt(ctx, r.Store, reg.Table, part)
	if errors.Is(err, store.ErrNotExist) {
		return reg, notCommitted(reg.Location)
	}
	if err != nil {
		return reg, err
	}
	reg.Location = strings.TrimSuffix(Root(r.Store), "/") + "/" + publish.RunPrefixAt(reg.Table, part, m.Run)
	return reg, nil
}

func notCommitted(loc string) error {
	return fmt.Errorf("catalog: %s has no %s: not a committed run, not registering it", loc, publish.ManifestName)
}

// Drift returns the tables found in drift so far, with their *DriftError.
func (r *Registrar) Drift() map[string]error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.drift)
}

func (r *Registrar) ensure(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ensured {
		return nil
	}
	err := r.Catalog.EnsureTables(ctx, r.Tables)
	drift := map[string]error{}
	var other []error
	for _, e := range flatten(err) {
		var de *DriftError
		if errors.As(e, &de) {
			drift[de.Table] = e
		} else {
			other = append(other, e)
		}
	}
	r.drift = drift
	if len(other) > 0 {
		return errors.Join(other...)
	}
	r.ensured = true
	return nil
}

// flatten splits a joined error into its parts.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}
