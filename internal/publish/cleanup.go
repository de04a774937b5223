package publish

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/littlewarehouse/warehouse/internal/store"
)

// CleanupAt deletes the runs of a partition that the committed run keep
// supersedes: committed runs of a lower generation, and run folders with no
// commit (debris of an interrupted build, or of a writer that lost its
// commit). The current run, and any run committed after keep, is never
// touched: cleanup never deletes what the current commit points to. Of a
// superseded run, its log entry goes first, then its data files, its
// manifest last. With olderThan > 0, only runs whose objects are all older
// than that (by the store's clock) are deleted: a grace period for readers
// that resolved the old run, and for a build still writing.
func CleanupAt(ctx context.Context, st store.Store, table, part, keep string, olderThan time.Duration, now time.Time) error {
	// The folders are listed before the commits are read: a run that
	// commits in between is then known as committed, not taken for debris.
	all, _, objs, err := runs(ctx, st, table, part)
	if err != nil {
		return err
	}
	ms, err := Committed(ctx, st, table, part)
	if err != nil {
		return err
	}
	var km *Manifest
	committed := map[string]*Manifest{}
	for _, m := range ms {
		committed[m.Run] = m
		if m.Run == keep {
			km = m
		}
	}
	if km == nil {
		return fmt.Errorf("cleanup %s: run %s has no commit", PartPrefix(table, part), keep)
	}
	drop := map[string]bool{}
	for _, run := range all {
		m, ok := committed[run]
		if run != keep && run != ms[0].Run && (!ok || newer(km, m)) {
			drop[run] = true
		}
	}
	prefix := PartPrefix(table, part) + "run="
	for _, o := range objs {
		run, _, _ := strings.Cut(strings.TrimPrefix(o.Key, prefix), "/")
		if olderThan > 0 && now.Sub(o.ModTime) < olderThan {
			delete(drop, run)
		}
	}
	var errs []error
	if gens, err := logGens(ctx, st, table, part); err == nil {
		for _, g := range gens {
			m, err := readEntry(ctx, st, table, part, g)
			if err == nil && drop[m.Run] && g < ms[0].Generation {
				errs = append(errs, st.Delete(ctx, logKey(table, part, g)))
			}
		}
	} else {
		errs = append(errs, err)
	}
	var data, manifests []string
	for _, o := range objs {
		run, file, _ := strings.Cut(strings.TrimPrefix(o.Key, prefix), "/")
		if !drop[run] {
			continue
		}
		if file == ManifestName {
			manifests = append(manifests, o.Key)
		} else {
			data = append(data, o.Key)
		}
	}
	for _, list := range [][]string{data, manifests} {
		for _, key := range list {
			if err := st.Delete(ctx, key); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// A run folder a killed writer made but wrote nothing into holds no
	// object to delete: remove such empty folders too.
	if fp, ok := st.(store.FolderPruner); ok {
		if err := fp.PruneEmpty(ctx, prefix[:len(prefix)-len("run=")]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
