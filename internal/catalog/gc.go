package catalog

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// Collectable lists the run folders of table in st that may be deleted now,
// as store keys "curated/<table>/dt=<day>/run=<run>/", sorted. partitions
// is the catalog's view of the table (Catalog.Partitions, read after the
// last registration; nil when there is no catalog).
//
// A run folder of day D is collectable only if all of these hold:
//
//  1. no partition in partitions points at it;
//  2. it is not D's current run (the one committed last, publish.CurrentAt),
//     which a registration that failed or has not happened yet will still
//     point at;
//  3. D has a current run: a folder without a manifest in a partition that
//     was never committed may be its first build in progress; with a
//     current run, a folder without a manifest is a build in progress only
//     while younger than grace (rule 4), and debris after that;
//  4. every object in it is older than grace (a reader may have listed it);
//  5. if the catalog has a partition for D, it has pointed at its current
//     location for at least grace (Partition.Since), so a query planned
//     against the previous location has had grace to finish. When Since is
//     unknown (a partition registered by something else), the newest object
//     of the run it points at stands in for it; if that run is not in the
//     store either, nothing of D is collected.
//
// With grace 0 (the local default) superseded runs go at once; on S3 use a
// grace longer than any query (default 6 h). Delete what this returns with
// DeleteRuns.
func Collectable(ctx context.Context, st store.Store, table string, partitions map[string]Partition, grace time.Duration, now time.Time) ([]string, error) {
	prefix := "curated/" + table + "/"
	var objs []store.Object
	var err error
	if tl, ok := st.(store.TempLister); ok {
		objs, err = tl.ListWithTemp(ctx, prefix)
	} else {
		objs, err = st.List(ctx, prefix)
	}
	if err != nil {
		return nil, err
	}
	type runInfo struct {
		newest    time.Time
		committed bool
	}
	days := map[string]map[string]*runInfo{} // partition value -> run -> info
	partKey := map[string]string{}           // partition value -> its folder, "dt=<value>"
	for _, o := range objs {
		rest := strings.TrimPrefix(o.Key, prefix)
		dtPart, rest, ok1 := strings.Cut(rest, "/")
		runPart, file, ok2 := strings.Cut(rest, "/")
		_, dt, ok3 := strings.Cut(dtPart, "=")
		run, ok4 := strings.CutPrefix(runPart, "run=")
		if !ok1 || !ok2 || !ok3 || !ok4 || run == "" {
			continue
		}
		if days[dt] == nil {
			days[dt] = map[string]*runInfo{}
			partKey[dt] = dtPart
		}
		ri := days[dt][run]
		if ri == nil {
			ri = &runInfo{}
			days[dt][run] = ri
		}
		if o.ModTime.After(ri.newest) {
			ri.newest = o.ModTime
		}
		if file == publish.ManifestName {
			ri.committed = true
		}
	}
	referenced := map[string]bool{} // run folder keys the catalog points at
	for _, p := range partitions {
		if k, err := KeyOf(st, p.Location); err == nil {
			referenced[k] = true
		}
	}
	var out []string
	for dt, runs := range days {
		// The current run follows commit order (publish.CurrentAt), not
		// run ids. With no committed run, everything is young debris or
		// kept below.
		current := ""
		if m, err := publish.CurrentAt(ctx, st, table, partKey[dt]); err == nil {
			current = m.Run
		} else if !errors.Is(err, store.ErrNotExist) {
			return nil, err
		}
		// Since of D's partition, or a stand-in; ok=false keeps everything.
		since, ok := time.Time{}, true
		if p, has := partitions[dt]; has {
			since = p.Since
			if since.IsZero() {
				ok = false
				if k, err := KeyOf(st, p.Location); err == nil {
					if run, found := strings.CutPrefix(k, prefix+partKey[dt]+"/run="); found {
						if ri := runs[strings.TrimSuffix(run, "/")]; ri != nil {
							since, ok = ri.newest, true
						}
					}
				}
			}
		}
		if !ok || now.Sub(since) < grace {
			continue
		}
		for run, ri := range runs {
			key := prefix + partKey[dt] + "/run=" + run + "/"
			switch {
			case referenced[key], run == current:
			case !ri.committed && current == "":
			case now.Sub(ri.newest) < grace:
			default:
				out = append(out, key)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// DeleteRuns deletes the run folders runs (store keys ending in "/", as
// Collectable returns them): data files first and each manifest last, so an
// interrupted delete never leaves a manifest whose files are gone.
func DeleteRuns(ctx context.Context, st store.Store, runs []string) error {
	var errs []error
	for _, run := range runs {
		if !strings.HasSuffix(run, "/") || !strings.HasPrefix(run, "curated/") {
			errs = append(errs, errors.New("catalog: not a run folder: "+run))
			continue
		}
		var objs []store.Object
		var err error
		if tl, ok := st.(store.TempLister); ok {
			objs, err = tl.ListWithTemp(ctx, run)
		} else {
			objs, err = st.List(ctx, run)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var manifest []string
		failed := false
		for _, o := range objs {
			if strings.TrimPrefix(o.Key, run) == publish.ManifestName {
				manifest = append(manifest, o.Key)
				continue
			}
			if err := st.Delete(ctx, o.Key); err != nil {
				errs = append(errs, err)
				failed = true
			}
		}
		if !failed {
			for _, k := range manifest {
				if err := st.Delete(ctx, k); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}
