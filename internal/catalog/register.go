package catalog

import (
	"context"
	"errors"
	"fmt"
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
					err = fmt.Errorf("catalog: %s has no %s: not a committed run, not registering it", loc, publish.ManifestName)
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
}

// value is the partition value of r.
func (r Registration) value() string {
	if r.Value != "" {
		return r.Value
	}
	return r.Day.String()
}

// NewRegistration returns the registration of run of table's partition d in st.
func NewRegistration(st store.Store, table string, d day.Day, run string) Registration {
	return Registration{Table: table, Day: d, Location: RunLocation(Root(st), table, d, run)}
}

// NewPartRegistration returns the registration of run of table's partition
// part ("bucket=07") in st.
func NewPartRegistration(st store.Store, table, part, run string) Registration {
	_, v, _ := strings.Cut(part, "=")
	return Registration{Table: table, Value: v, Location: strings.TrimSuffix(Root(st), "/") + "/" + publish.RunPrefixAt(table, part, run)}
}

// Registrar registers published runs in a catalog. The job creates one per
// run with every table's definition and calls Register after publishing
// (after publish.Commit of the runs it registers).
type Registrar struct {
	Catalog Catalog
	Store   store.Store // where the runs are, to check their manifests
	Tables  []TableDef  // every table to create or update (curated and raw)
	// SkipVerify skips the manifest check (the caller has just committed
	// the runs and knows they exist).
	SkipVerify bool

	mu      sync.Mutex
	ensured bool
	drift   map[string]error // tables in drift, with their *DriftError
}

// Register makes each registration's partition point at its run folder.
//
// The first call (and every call until one succeeds) runs EnsureTables on
// all of r.Tables. A table in drift (a *DriftError) is left alone: its
// registrations are skipped, and its DriftError is part of the returned
// error, while the other tables are registered. Then every location is
// checked to hold a committed run (unless SkipVerify), and the partitions
// are set table by table, in batches. A failure for one table does not stop
// the others; the errors are joined. Partitions that failed still point at
// their previous run, so the caller must keep those runs (Collectable does,
// as it reads the catalog) and a later Register converges.
func (r *Registrar) Register(ctx context.Context, regs []Registration) error {
	var errs []error
	if err := r.ensure(ctx); err != nil {
		return err
	}
	defs := map[string]TableDef{}
	for _, d := range r.Tables {
		defs[d.Name] = d
	}
	byTable := map[string][]Partition{}
	for _, reg := range regs {
		def, ok := defs[reg.Table]
		if !ok || def.Projected() {
			return fmt.Errorf("catalog: cannot register %s partition %s: not a curated table the registrar knows", reg.Table, reg.value())
		}
		byTable[reg.Table] = append(byTable[reg.Table], Partition{DT: reg.value(), Location: reg.Location})
	}
	r.mu.Lock()
	drift := maps.Clone(r.drift)
	r.mu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(drift)) {
		errs = append(errs, drift[name])
	}
	for _, table := range slices.Sorted(maps.Keys(byTable)) {
		if drift[table] != nil {
			continue
		}
		parts := byTable[table]
		if !r.SkipVerify {
			locs := make([]string, len(parts))
			for i, p := range parts {
				locs[i] = p.Location
			}
			if err := VerifyCommitted(ctx, r.Store, locs...); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if err := r.Catalog.SetPartitions(ctx, table, parts); err != nil {
			errs = append(errs, fmt.Errorf("register %s in %s: %w", table, r.Catalog, err))
			if ctx.Err() != nil {
				break
			}
		}
	}
	return errors.Join(errs...)
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
