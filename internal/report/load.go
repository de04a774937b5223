package report

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/internal/wait"
	"github.com/littlewarehouse/warehouse/rollups"
)

// partition is one current partition read for the report: its manifest
// and its rows.
type partition[T any] struct {
	Day      day.Day
	Manifest *publish.Manifest
	Rows     []T
}

// readTable reads the partitions of table that snap resolves, for the
// days in [from, to] (to == 0: no upper bound), in day order. Only the
// files the manifest lists are read.
func readTable[T any](ctx context.Context, st store.Store, snap publish.Snapshot, table string, from, to day.Day) ([]partition[T], error) {
	var out []partition[T]
	for _, pf := range snap[table] {
		s, ok := strings.CutPrefix(pf.Part, "dt=")
		if !ok {
			continue
		}
		d, err := day.Parse(s)
		if err != nil || d < from || (to != 0 && d > to) {
			continue
		}
		// A windowed partition withdrawn because its day was never built
		// is not computed: not a day of zeros.
		if pf.Manifest.Fingerprint == publish.WithdrawnFingerprint {
			continue
		}
		p := partition[T]{Day: d, Manifest: pf.Manifest}
		for _, f := range pf.Manifest.Files {
			rows, err := readFile[T](ctx, st, f.Key)
			if err != nil {
				return nil, err
			}
			p.Rows = append(p.Rows, rows...)
		}
		out = append(out, p)
	}
	return out, nil
}

// readFile reads every row of one Parquet object into T. Columns of the
// file that T lacks are skipped; fields of T the file lacks are left zero
// (files written before a column was added).
func readFile[T any](ctx context.Context, st store.Store, key string) (rows []T, err error) {
	r, err := st.Open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	defer r.Close()
	f, err := parquet.OpenFile(r, r.Size())
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	defer func() {
		if p := recover(); p != nil { // parquet-go panics on some corrupt pages
			rows, err = nil, fmt.Errorf("read %s: %v", key, p)
		}
	}()
	pr := parquet.NewGenericReader[T](f)
	defer pr.Close()
	rows = make([]T, f.NumRows())
	n, err := pr.Read(rows)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if int64(n) != f.NumRows() {
		return nil, fmt.Errorf("read %s: %d of %d rows", key, n, f.NumRows())
	}
	return rows, nil
}

// tables is what the report reads: the current partitions of the curated
// tables it shows.
type tables struct {
	Active     []partition[rollups.ActiveUsersDaily]
	Retention  []partition[rollups.RetentionDaily]
	Lifecycle  []partition[rollups.LifecycleDaily]
	Stickiness []partition[rollups.StickinessDaily]
	Funnels    []partition[rollups.FunnelDaily]
	Engage     []partition[rollups.EngagementDaily]
	Paths      []partition[rollups.PathsDaily]
	Sessions   []partition[rollups.SessionsDaily]
	Quality    []partition[rollups.DataQualityDaily]
}

// load reads the report's tables for the days in [from, to], as readers
// see them (publish.Visible: every daily table of a day from one build). A
// rebuild that finishes meanwhile may delete files it resolved (at once on
// a local store): load then resolves the tables again and reads them
// again, up to loadAttempts times, after a pause that doubles from
// firstPause (a run republishes its days one after another, a burst of
// deletes).
func load(ctx context.Context, st store.Store, from, to day.Day) (*tables, error) {
	pause := firstPause
	for attempt := 1; ; attempt++ {
		t, err := loadOnce(ctx, st, from, to)
		if err == nil || !errors.Is(err, store.ErrNotExist) || attempt == loadAttempts {
			return t, err
		}
		if err := wait.Sleep(ctx, pause); err != nil {
			return nil, err
		}
		pause = min(2*pause, time.Second)
	}
}

// loadAttempts bounds how often load reads the tables again; with
// firstPause, about 5 s of pauses in all.
const (
	loadAttempts = 10
	firstPause   = 20 * time.Millisecond
)

func loadOnce(ctx context.Context, st store.Store, from, to day.Day) (*tables, error) {
	snap, err := publish.Visible(ctx, st, reportTables...)
	if err != nil {
		return nil, err
	}
	var t tables
	if t.Active, err = readTable[rollups.ActiveUsersDaily](ctx, st, snap, "active_users_daily", from, to); err != nil {
		return nil, err
	}
	if t.Retention, err = readTable[rollups.RetentionDaily](ctx, st, snap, "retention_daily", from, to); err != nil {
		return nil, err
	}
	if t.Lifecycle, err = readTable[rollups.LifecycleDaily](ctx, st, snap, "lifecycle_daily", from, to); err != nil {
		return nil, err
	}
	if t.Stickiness, err = readTable[rollups.StickinessDaily](ctx, st, snap, "stickiness_daily", from, to); err != nil {
		return nil, err
	}
	if t.Funnels, err = readTable[rollups.FunnelDaily](ctx, st, snap, "funnel_daily", from, to); err != nil {
		return nil, err
	}
	if t.Engage, err = readTable[rollups.EngagementDaily](ctx, st, snap, "engagement_daily", from, to); err != nil {
		return nil, err
	}
	if t.Paths, err = readTable[rollups.PathsDaily](ctx, st, snap, "paths_daily", from, to); err != nil {
		return nil, err
	}
	if t.Sessions, err = readTable[rollups.SessionsDaily](ctx, st, snap, "sessions_daily", from, to); err != nil {
		return nil, err
	}
	if t.Quality, err = readTable[rollups.DataQualityDaily](ctx, st, snap, "data_quality_daily", from, to); err != nil {
		return nil, err
	}
	return &t, nil
}
