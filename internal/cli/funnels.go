package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// saveFunnels checks the funnel definition file path and writes it to the
// store's config/funnels.json (unless the store already holds the same
// bytes, or dryRun: then it only says it would). A file that is not valid
// is a usage error: nothing is written, and the run does not start.
func saveFunnels(ctx context.Context, st store.Store, path string, dryRun bool, stdout io.Writer) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return usagef("--funnels: %v", err)
	}
	f, err := rollups.ParseFunnels(b)
	if err != nil {
		return usagef("--funnels %s: %v", path, err)
	}
	old, err := st.Get(ctx, rollups.FunnelsKey)
	if err == nil && bytes.Equal(old, b) {
		return nil
	}
	if err != nil && !errors.Is(err, store.ErrNotExist) {
		return err
	}
	if dryRun {
		fmt.Fprintf(stdout, "funnels: %s is valid (%v); not saved (--dry-run)\n", path, f.FunnelNames())
		return nil
	}
	if err := st.Put(ctx, rollups.FunnelsKey, b); err != nil {
		return fmt.Errorf("save %s: %w", rollups.FunnelsKey, err)
	}
	fmt.Fprintf(stdout, "funnels: %d saved as the store's %s (%v)\n", len(f.Funnels), rollups.FunnelsKey, f.FunnelNames())
	return nil
}

// printFunnels prints what a run's windowed stage said of funnel_daily
// (job.WindowedSummary's FunnelsError, FunnelsFileBad, FunnelDaysRemade),
// for a local run's summary and a dispatched one's alike.
func printFunnels(w io.Writer, errText string, fileBad bool, remade int) {
	switch {
	case errText != "":
		fmt.Fprintf(w, "funnel_daily NOT (all) updated, the next run carries on: %s\n", errText)
		if fileBad {
			fmt.Fprintln(w, "  fix the file with rollup --funnels FILE")
		}
	case remade > 0:
		fmt.Fprintf(w, "funnels changed: funnel_daily recomputed from the events of %d days (no day rebuilt)\n", remade)
	}
}
