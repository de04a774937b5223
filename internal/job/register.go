package job

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/littlewarehouse/warehouse/internal/catalog"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// Register registers in cfg.Catalog (if any) what a windowed stage ws and
// cfg's range cover and deletes the runs the catalog no longer needs: what
// Run does after its windowed stage, for a Lambda coordinator that ran
// RunWindowed itself.
func Register(ctx context.Context, cfg Config, ws *WindowedSummary) error {
	if err := cfg.defaults(); err != nil {
		return err
	}
	return cfg.register(ctx, ws)
}

// cleanupAtOnce reports whether superseded runs are deleted right after a
// manifest is written. With a catalog and a grace period they are not: a
// partition keeps pointing at its old run until it is registered anew, and
// readers may still hold it, so collect (below) deletes runs only once no
// partition points at them and the grace period has passed.
func (c *Config) cleanupAtOnce() bool { return c.Catalog == nil || c.GracePeriod == 0 }

// staleTemp is how long a temporary file of a local write under _state/ or
// catalog/ must have been left untouched (at least; the grace period if
// longer) before a run deletes it as left behind by a killed process. A
// write in flight writes its file continuously and renames it within
// seconds.
const staleTemp = time.Hour

// tempFolders are the folders whose stale temporary files a run deletes
// (curated/ run folders are cleaned with their runs, publish.Cleanup).
var tempFolders = []string{"_state/", catalog.LocalPrefix}

// removeStaleTemp deletes the temporary files that killed processes left
// in tempFolders of a local store (store.RemoveStaleTemp). Best effort: a
// failure is logged, and the next run tries again.
func (c *Config) removeStaleTemp(ctx context.Context) {
	// File times are the real clock's, whatever c.Now says.
	before := time.Now().Add(-max(staleTemp, c.GracePeriod))
	for _, prefix := range tempFolders {
		n, err := store.RemoveStaleTemp(ctx, c.Store, prefix, before)
		if n > 0 {
			c.Log.Info("temporary files of killed writers deleted", "folder", prefix, "files", n)
		}
		if err != nil {
			c.Log.Warn("temporary files of killed writers not all deleted; the next run retries", "folder", prefix, "error", err.Error())
		}
	}
}

// register points the catalog's partitions at the current run of every
// table and day the run covered (days skipped as up to date too, so that a
// registration that failed before is retried), then deletes the runs the
// catalog no longer needs, and the temporary files of killed writers
// (removeStaleTemp).
func (c *Config) register(ctx context.Context, windowed *WindowedSummary) error {
	c.removeStaleTemp(ctx)
	if c.Catalog == nil {
		return nil
	}
	root := catalog.Root(c.Store)
	defs := catalog.CuratedDefs(root, rollups.All())
	defs = append(defs, catalog.RawTableDef(root+"/"+c.RawPrefix, c.RawStart))
	reg := &catalog.Registrar{Catalog: c.Catalog, Store: c.Store, Tables: defs, Log: c.Log}
	var regs []catalog.Registration
	seen := map[Partition]bool{}
	add := func(table string, d day.Day) error {
		if seen[Partition{table, d}] {
			return nil
		}
		seen[Partition{table, d}] = true
		m, err := publish.Current(ctx, c.Store, table, d)
		if errors.Is(err, store.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		regs = append(regs, catalog.NewRegistration(c.Store, table, d, m.Run))
		return nil
	}
	for d := c.From; d <= c.To; d++ {
		for _, t := range append(rollups.Daily, rollups.RestatementsTable) {
			if err := add(t.Name, d); err != nil {
				return err
			}
		}
	}
	if windowed != nil {
		for _, d := range windowed.Partitions {
			if err := add(d.Table, d.Day); err != nil {
				return err
			}
		}
		for _, r := range windowed.Restatements {
			if err := add(rollups.RestatementsTable.Name, r.Day); err != nil {
				return err
			}
		}
		for _, part := range windowed.UserParts {
			m, err := publish.CurrentAt(ctx, c.Store, rollups.UsersTable.Name, part)
			if err != nil {
				return err
			}
			regs = append(regs, catalog.NewPartRegistration(c.Store, rollups.UsersTable.Name, part, m.Run))
		}
	}
	var errs []error
	if err := reg.Register(ctx, regs); err != nil {
		errs = append(errs, fmt.Errorf("register in %s: %w", c.Catalog, err))
	}
	if !c.cleanupAtOnce() {
		for _, t := range rollups.All() {
			parts, err := c.Catalog.Partitions(ctx, t.Name)
			if err != nil {
				continue // no table yet, or the catalog failed: keep every run
			}
			runs, err := catalog.Collectable(ctx, c.Store, t.Name, parts, c.GracePeriod, c.Now())
			if err == nil {
				err = catalog.DeleteRuns(ctx, c.Store, runs)
			}
			if err != nil {
				c.Log.Warn("superseded runs not all deleted; the next run retries", "table", t.Name, "error", err.Error())
			}
		}
	}
	return errors.Join(errs...)
}
