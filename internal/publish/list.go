package publish

import (
	"context"
	"errors"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/littlewarehouse/warehouse/internal/store"
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
// left out, as are run folders without a manifest and superseded runs: the
// files of the returned manifests are exactly what a reader may read. The
// answer is a snapshot: a later commit and its cleanup may delete the files
// of a run returned here (after the grace period, on S3).
func CurrentFiles(ctx context.Context, st store.Store, table string) ([]PartFiles, error) {
	parts, err := Partitions(ctx, st, table)
	if err != nil {
		return nil, err
	}
	out := make([]PartFiles, len(parts))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(listParallel)
	for i, part := range parts {
		g.Go(func() error {
			m, err := CurrentAt(gctx, st, table, part)
			if errors.Is(err, store.ErrNotExist) {
				return nil
			}
			if err != nil {
				return err
			}
			out[i] = PartFiles{Part: part, Manifest: m}
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
	var keys []string
	for _, pf := range parts {
		for _, f := range pf.Manifest.Files {
			keys = append(keys, f.Key)
		}
	}
	return keys, nil
}
