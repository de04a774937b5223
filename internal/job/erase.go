package job

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/erasure"
	"github.com/littlewarehouse/warehouse/internal/frame"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/raw"
	"github.com/littlewarehouse/warehouse/internal/segment"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// The erase stage (docs/design.md §Erasing a person): an erasure request
// (internal/erasure) is one more input of the pure function. Carrying it
// out rewrites every raw object and error file holding the request's rows
// without them (a new object, verified and written, then the old one and
// its segments deleted), rebuilds the built days those objects fed, then
// the windowed tables, scans every remaining file for the request's rows,
// and writes the receipt. What it has done (the objects rewritten, the
// days to rebuild) is kept in a work file under _state/erasures/ before
// anything is deleted, so that a run killed at any point is finished by
// the next one: that run scans every raw object and error file again
// from the start (which objects were found clean is known only in
// memory, for one run), rewrites those still holding rows, and rebuilds
// the days of the work file with those it finds.

// eraseLease is the lease one erase stage of a store holds at a time.
const eraseLease = "erase"

// maxEraseRounds bounds the scans of one request: a scan that still finds
// its rows after a rewrite means rows arrived meanwhile, or a rewrite
// failed; after this many the run fails, to be run again.
const maxEraseRounds = 3

// eraser is the erase stage of one run.
type eraser struct {
	cfg  *Config
	opts options
	key  []byte
	run  string

	// clean holds the objects (key to ETag) read in full and found to hold
	// none of the current request's rows (or written so and read back):
	// a later scan of the same request in this run does not read them
	// again. It is in memory only: a run that resumes a request after a
	// crash reads every object again.
	mu    sync.Mutex
	clean map[string]string
}

// forget starts a request: no object is known clean of it yet.
func (e *eraser) forget() {
	e.mu.Lock()
	e.clean = map[string]string{}
	e.mu.Unlock()
}

func (e *eraser) isClean(o store.Object) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return o.ETag != "" && e.clean[o.Key] == o.ETag
}

func (e *eraser) markClean(o store.Object) {
	e.mu.Lock()
	e.clean[o.Key] = o.ETag
	e.mu.Unlock()
}

// Erase carries out every pending erasure request of cfg.Store, oldest
// first, and the late checks of those done less than a day ago
// (erasure.Request.WatchUntil), and returns the receipt of each it
// finished (a late check that erased nothing and closed nothing writes
// none). It is what `rollup erase --now` and `rollup` run before
// building, and what the nightly state machine runs before its build.
// cfg's range is not used: the days rebuilt are the built days the
// request's rows fed.
//
// It is idempotent and safe to run again after a crash at any point: a
// request is done only once its receipt exists, which is written after a
// scan of every remaining file found none of its rows. One erase stage
// runs at a time per store, under a lease waited for LockWait; a lease
// still held after that is a *lease.HeldError (run again later). With
// nothing to do it returns (nil, nil) without taking the lease.
func Erase(ctx context.Context, cfg Config, opts ...Option) ([]*erasure.Receipt, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if reqs, err := erasureWork(ctx, cfg.Store); err != nil || len(reqs) == 0 {
		return nil, err
	}
	e := &eraser{cfg: &cfg, run: newRunID(cfg.Now())}
	for _, o := range opts {
		o(&e.opts)
	}
	var err error
	if e.key, err = erasure.Key(ctx, cfg.Store); err != nil {
		return nil, err
	}
	l, err := lease.Acquire(ctx, cfg.Store, eraseLease, lease.HolderID(e.run), cfg.LockTTL, cfg.LockWait, cfg.Now, lease.WithWaitLog(cfg.Log, 0))
	if err != nil {
		return nil, err
	}
	stop := l.KeepAlive(ctx, cfg.LockTTL/3)
	defer func() {
		if err := stop(); err != nil {
			cfg.Log.Warn("erase lease lost while erasing", "error", err.Error())
		}
		if err := l.Release(context.WithoutCancel(ctx)); err != nil {
			cfg.Log.Error("lease not released", "lease", eraseLease, "error", err.Error())
		}
	}()
	reqs, err := erasureWork(ctx, cfg.Store) // again: the last holder may have done some
	if err != nil {
		return nil, err
	}
	var out []*erasure.Receipt
	for _, s := range reqs {
		var rc *erasure.Receipt
		if s.Done() {
			rc, err = e.lateCheck(ctx, s)
		} else {
			rc, err = e.carryOut(ctx, s.Request, pass{request: s.ID, work: erasure.WorkKey(s.ID)})
		}
		if err != nil {
			return out, fmt.Errorf("erasure %s: %w", s.ID, err)
		}
		if rc != nil {
			out = append(out, rc)
		}
	}
	return out, nil
}

// pass is one carrying out of a request: the first, over every raw object,
// or a late check's, over the objects that arrived since the last scan.
type pass struct {
	request string    // the request's id: the cause of the restatements its rebuild makes
	work    string    // its work file
	late    bool      // a late check's
	since   time.Time // late: the first arrival hour searched
}

// lateCheck looks for rows of done request s in the raw objects that
// arrived since its last scan (Firehose delivers up to a day late), and
// carries them out as the first pass did. It writes a receipt when it
// erased rows, or when its scan is the first after watchUntil, which
// closes the request; otherwise it returns nil and the next run looks
// again. An interrupted late check is finished by the next run: its work
// file keeps what it rewrote and the days to rebuild, and its scans start
// again from its first arrival hour.
func (e *eraser) lateCheck(ctx context.Context, s erasure.Status) (*erasure.Receipt, error) {
	p := pass{request: s.ID, work: erasure.LateWorkKey(s.ID), late: true, since: s.CheckedAt().Add(-compact.MaxDeliveryDelay - time.Hour).Truncate(time.Hour)}
	w, err := erasure.ReadWork(ctx, e.cfg.Store, p.work)
	if err != nil {
		return nil, err
	}
	if !w.Started.IsZero() {
		return e.carryOut(ctx, s.Request, p) // finish it
	}
	at := e.cfg.Now().UTC()
	m := erasure.NewMatcher(e.key, s.Request)
	e.forget()
	sc, err := e.scanRaw(ctx, m, p.since)
	if err != nil {
		return nil, err
	}
	if len(sc.found) > 0 {
		return e.carryOut(ctx, s.Request, p)
	}
	if at.Before(s.WatchUntil()) {
		return nil, nil
	}
	rc := &erasure.Receipt{
		Request: s.ID, Late: true, Product: s.Product, RequestedAt: s.CreatedAt, DoneAt: at, RowsRemoved: map[string]int64{},
		Verification: erasure.Verification{At: at, RawObjects: sc.rawObjects, ErrorObjects: sc.errObjects, Unsearchable: sc.unsearchable},
	}
	return erasure.WriteReceipt(ctx, e.cfg.Store, erasure.LateReceiptKey(s.ID, at), rc)
}

// erasureWork lists the requests not done, or done but still watched for
// rows delivered late.
func erasureWork(ctx context.Context, st store.Store) ([]erasure.Status, error) {
	reqs, err := erasure.List(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("list erasures: %w", err)
	}
	return slices.DeleteFunc(reqs, func(s erasure.Status) bool {
		return s.Done() && !s.CheckedAt().Before(s.WatchUntil())
	}), nil
}

// hook is the test seam of a killed erase: called before each step.
func (e *eraser) hook(step string) error {
	if e.opts.eraseHook == nil {
		return nil
	}
	return e.opts.eraseHook(step)
}

// carryOut carries out request r in pass p. If a run died in it, the
// work file it left keeps the objects rewritten and the days to rebuild;
// every scan starts again from the beginning.
func (e *eraser) carryOut(ctx context.Context, r erasure.Request, p pass) (*erasure.Receipt, error) {
	st := e.cfg.Store
	m := erasure.NewMatcher(e.key, r)
	e.forget()
	w, err := erasure.ReadWork(ctx, st, p.work)
	if err != nil {
		return nil, err
	}
	if w.Started.IsZero() {
		w.Started, w.Since = e.cfg.Now().UTC(), p.since
	}
	if !w.HaveCounted {
		counts, err := e.scanTables(ctx, m, false)
		if err != nil {
			return nil, err
		}
		w.RowsBefore, w.HaveCounted = counts.byTable, true
		if err := erasure.SaveWork(ctx, st, p.work, w); err != nil {
			return nil, err
		}
	}
	for round := 0; ; round++ {
		sc, err := e.scanRaw(ctx, m, w.Since)
		if err != nil {
			return nil, err
		}
		if len(sc.found) == 0 {
			break
		}
		if round == maxEraseRounds {
			return nil, fmt.Errorf("%d objects still hold its rows after %d rewrites (rows arriving meanwhile?): run again", len(sc.found), round)
		}
		if err := e.rewriteAll(ctx, p, w, sc.found); err != nil {
			return nil, err
		}
	}
	if err := e.rebuild(ctx, p, w); err != nil {
		return nil, err
	}
	return e.finish(ctx, r, p, m, w)
}

// found is an object holding rows of the request.
type found struct {
	rawObject
	errors  bool     // a Firehose error file, not Parquet
	drop    []bool   // rows to drop (Parquet)
	keep    []byte   // the error file without the records (errors)
	rows    int64    // rows (records) it holds
	removed int64    // of the request's
	days    []string // the days its rows count on
}

// rawScan is one scan of every raw object and error file.
type rawScan struct {
	found                  []*found
	rawObjects, errObjects int
	unsearchable           []string             // bad objects, and objects no run reads
	listed                 map[string]rawObject // raw objects, by key
}

// scanRaw reads every raw object and error file of the store from
// arrival hour since on (zero: all), at most Parallel at a time, and
// returns those holding the request's rows.
func (e *eraser) scanRaw(ctx context.Context, m *erasure.Matcher, since time.Time) (*rawScan, error) {
	st := e.cfg.Store
	// Every object, those rewritten but not deleted yet included (a run
	// died between the two): they still hold the rows.
	objs, ignored, err := listAllRaw(ctx, st, e.cfg.RawPrefix, since, time.Unix(1<<40, 0))
	if err != nil {
		return nil, err
	}
	errObjs, ignoredErrs, err := listAllRaw(ctx, st, e.cfg.ErrorPrefix, since, time.Unix(1<<40, 0))
	if err != nil {
		return nil, err
	}
	// Objects no run reads (outside the hourly layout, or named _* or .*)
	// are not searched either: named, for someone to look at.
	sc := &rawScan{rawObjects: len(objs), errObjects: len(errObjs), listed: map[string]rawObject{},
		unsearchable: append(ignored, ignoredErrs...)}
	for _, o := range objs {
		sc.listed[o.Key] = o
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.cfg.Parallel)
	for i, o := range append(objs, errObjs...) {
		if e.isClean(o.Object) {
			continue // read clean earlier in this erase, and unchanged since
		}
		g.Go(func() error {
			f, bad, err := e.scanObject(gctx, o, i >= len(objs), m)
			if err == nil && !bad && f == nil {
				e.markClean(o.Object)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, store.ErrNotExist):
				return nil
			case err != nil:
				return err
			}
			if bad {
				sc.unsearchable = append(sc.unsearchable, o.Key)
			}
			if f != nil {
				sc.found = append(sc.found, f)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	slices.SortFunc(sc.found, func(a, b *found) int { return strings.Compare(a.Key, b.Key) })
	slices.Sort(sc.unsearchable)
	return sc, nil
}

// scanObject reads one object whole and returns it if it holds rows of
// the request (nil if not); bad says it cannot be read as rows, or (an
// error file) holds records that cannot be searched: its matched records
// are still returned, to be removed.
func (e *eraser) scanObject(ctx context.Context, o rawObject, isErrors bool, m *erasure.Matcher) (f *found, bad bool, err error) {
	if isErrors {
		b, err := e.cfg.Store.Get(ctx, o.Key)
		if err != nil {
			return nil, false, fmt.Errorf("read %s: %w", o.Key, err)
		}
		keep, records, removed, undecodable := erasure.FilterErrors(b, m, o.ModTime)
		if removed == 0 {
			return nil, undecodable > 0, nil
		}
		d := day.Of(o.Hour.UnixMilli(), e.cfg.Rules.Loc)
		days := []string{d.String()}
		if d2 := day.Of(o.Hour.Add(time.Hour).UnixMilli()-1, e.cfg.Rules.Loc); d2 != d {
			days = append(days, d2.String())
		}
		return &found{rawObject: o, errors: true, keep: keep, rows: records, removed: removed, days: days}, undecodable > 0, nil
	}
	cols, err := raw.ReadColumns(ctx, e.cfg.Store, o.Key)
	if _, isBad := errors.AsType[*raw.BadObjectError](err); isBad {
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	f = &found{rawObject: o, rows: int64(cols.Len())}
	if f.drop, f.removed = matchRows(cols, m, o.ModTime); f.removed == 0 {
		return nil, false, nil
	}
	for d := range e.cfg.Rules.RouteColumns(cols, o.Hour.UnixMilli(), func(day.Day) bool { return true }) {
		f.days = append(f.days, d.String())
	}
	slices.Sort(f.days)
	return f, false, nil
}

// matchRows returns which of cols' rows, of an object written at
// written, are m's request's, and how many, hashing each distinct id of
// the object once.
func matchRows(cols *raw.Columns, m *erasure.Matcher, written time.Time) ([]bool, int64) {
	d := cols.Dict
	ids, products := map[uint32]bool{}, map[uint32]bool{}
	cached := func(memo map[uint32]bool, id uint32, f func(string) bool) bool {
		v, ok := memo[id]
		if !ok {
			v = f(d.Str(id))
			memo[id] = v
		}
		return v
	}
	drop, n := make([]bool, cols.Len()), int64(0)
	for i := range drop {
		if !cached(products, cols.Str[frame.Product][i], m.Product) || !m.Received(cols.ReceivedAt[i], cols.HasReceivedAt[i], written) {
			continue
		}
		if cached(ids, cols.Str[frame.UserID][i], m.ID) || cached(ids, cols.Str[frame.DeviceID][i], m.ID) {
			drop[i] = true
			n++
		}
	}
	return drop, n
}

// newKey is where the rewrite of key holding data goes: beside it, in the
// same arrival hour, so that every day it feeds still lists it, and named
// by its content, so that a rewrite done again (after a crash) or on a
// copy of the store has the same key.
func newKey(key string, data []byte) string {
	h := sha256.Sum256(data)
	return key + erasedSep + hex.EncodeToString(h[:8])
}

// rewriteAll rewrites each of fs. Before it deletes an object, the work
// names it, its replacement and the days to rebuild, so that a crash
// after the delete still rebuilds them.
func (e *eraser) rewriteAll(ctx context.Context, p pass, w *erasure.Work, fs []*found) error {
	segs, err := e.segmentsByObject(ctx)
	if err != nil {
		return err
	}
	for _, f := range fs {
		data, err := e.filtered(ctx, f)
		if err != nil {
			return err
		}
		o := erasure.Object{Key: f.Key, Rows: f.rows, RowsRemoved: f.removed}
		if data != nil {
			o.NewKey = newKey(f.Key, data)
		}
		w.Objects[f.Key] = o
		w.Days = slices.Compact(slices.Sorted(slices.Values(append(w.Days, f.days...))))
		if err := erasure.SaveWork(ctx, e.cfg.Store, p.work, w); err != nil {
			return err
		}
		if err := e.write(ctx, f, o.NewKey, data); err != nil {
			return err
		}
		for _, k := range segs[f.Key] {
			if err := e.cfg.Store.Delete(ctx, k); err != nil {
				return fmt.Errorf("delete segment %s: %w", k, err)
			}
		}
		if err := e.hook("delete " + f.Key); err != nil {
			return err
		}
		if err := e.cfg.Store.Delete(ctx, f.Key); err != nil {
			return fmt.Errorf("delete %s: %w", f.Key, err)
		}
	}
	return nil
}

// segmentsByObject returns every segment's key by the raw key it was cut from.
func (e *eraser) segmentsByObject(ctx context.Context) (map[string][]string, error) {
	objs, err := e.cfg.Store.List(ctx, segment.Prefix)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, o := range objs {
		if _, rawKey, _, ok := segment.Parse(o.Key); ok {
			out[rawKey] = append(out[rawKey], o.Key)
		}
	}
	return out, nil
}

// filtered returns f's content without the request's rows, or nil if no
// row is left.
func (e *eraser) filtered(ctx context.Context, f *found) ([]byte, error) {
	if f.removed == f.rows {
		return nil, nil
	}
	if f.errors {
		return f.keep, nil
	}
	r, err := e.cfg.Store.Open(ctx, f.Key)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", f.Key, err)
	}
	defer r.Close()
	var buf bytes.Buffer
	if _, err := erasure.FilterParquet(r, r.Size(), f.drop, &buf); err != nil {
		return nil, fmt.Errorf("rewrite %s: %w", f.Key, err)
	}
	return buf.Bytes(), nil
}

// write writes data to to (nothing if to is empty: no row is left). The
// content is verified before it is written — its rows must be f's
// others, exactly — because builds list the rewrite in place of f from
// the moment it exists (withoutRewritten); it is read back after. A
// rewrite of f left by an earlier attempt under another name is deleted
// first, so that builds never list two. The old object is left for the
// caller to delete.
func (e *eraser) write(ctx context.Context, f *found, to string, data []byte) error {
	if to == "" {
		return nil
	}
	if err := e.hook("rewrite " + f.Key); err != nil {
		return err
	}
	if !f.errors {
		if err := e.verifyRewrite(ctx, f, to, data); err != nil {
			return err
		}
	}
	st := e.cfg.Store
	stale, err := st.List(ctx, f.Key+erasedSep)
	if err != nil {
		return err
	}
	for _, o := range stale {
		if o.Key == to {
			continue
		}
		if err := st.Delete(ctx, o.Key); err != nil {
			return fmt.Errorf("delete %s: %w", o.Key, err)
		}
	}
	if err := st.Put(ctx, to, data); err != nil {
		return fmt.Errorf("write %s: %w", to, err)
	}
	got, err := st.Get(ctx, to)
	if err != nil {
		return fmt.Errorf("verify %s: %w", to, err)
	}
	if !bytes.Equal(got, data) {
		// Not as written: no build may read it in place of f.
		if err := st.Delete(ctx, to); err != nil {
			return fmt.Errorf("verify %s: it does not read back as written, and deleting it failed: %w", to, err)
		}
		return fmt.Errorf("verify %s: it does not read back as written (deleted)", to)
	}
	o, err := st.Stat(ctx, to)
	if err != nil {
		return fmt.Errorf("verify %s: %w", to, err)
	}
	e.markClean(o) // it holds f's other rows, none of the request's
	return nil
}

// verifyRewrite checks that data, the rewrite of f to go to to, holds
// exactly f's rows that are not dropped, in order, as the job reads them.
func (e *eraser) verifyRewrite(ctx context.Context, f *found, to string, data []byte) error {
	old, err := raw.ReadColumns(ctx, e.cfg.Store, f.Key)
	if err != nil {
		return fmt.Errorf("read %s: %w", f.Key, err)
	}
	got, err := raw.ReadColumnsFrom(bytes.NewReader(data), int64(len(data)), to)
	if err != nil {
		return fmt.Errorf("verify %s: %w", to, err)
	}
	if int64(got.Len()) != f.rows-f.removed {
		return fmt.Errorf("verify %s: %d rows, want %d", to, got.Len(), f.rows-f.removed)
	}
	j := 0
	for i := range f.drop {
		if f.drop[i] {
			continue
		}
		a, b := old.Row(i), got.Row(j)
		a.Source, b.Source = "", ""
		if !sameRow(a, b) {
			return fmt.Errorf("verify %s: row %d differs from row %d of %s", to, j, i, f.Key)
		}
		j++
	}
	return nil
}

func sameRow(a, b raw.Row) bool { return reflect.DeepEqual(a, b) }

// rebuild rebuilds the built days of w (one run per block of consecutive
// days), then the windowed tables, and registers them.
func (e *eraser) rebuild(ctx context.Context, p pass, w *erasure.Work) error {
	var built []day.Day
	for _, s := range w.Days {
		d, err := day.Parse(s)
		if err != nil {
			return fmt.Errorf("%s: %w", p.work, err)
		}
		_, err = publish.Current(ctx, e.cfg.Store, "data_quality_daily", d)
		if errors.Is(err, store.ErrNotExist) {
			continue // never built: no table holds its rows
		}
		if err != nil {
			return err
		}
		built = append(built, d)
	}
	if err := e.hook("rebuild"); err != nil {
		return err
	}
	set := map[day.Day]bool{}
	for _, d := range built {
		set[d] = true
	}
	cause := "erasure " + p.request // never the person's id
	for _, b := range dayRuns(set) {
		cfg := *e.cfg
		cfg.From, cfg.To, cfg.Force, cfg.Cause = b[0], b[1], false, cause
		sum, err := BuildDays(ctx, cfg)
		if sum != nil {
			w.Runs = append(w.Runs, sum.Run)
		}
		if err != nil {
			return fmt.Errorf("rebuild %s..%s: %w", b[0], b[1], err)
		}
	}
	if err := erasure.SaveWork(ctx, e.cfg.Store, p.work, w); err != nil {
		return err
	}
	wcfg := *e.cfg
	wcfg.Cause = cause
	ws, err := RunWindowed(ctx, wcfg, built)
	if err != nil {
		return fmt.Errorf("windowed tables: %w", err)
	}
	return Register(ctx, *e.cfg, ws)
}

// dayRuns returns the runs of consecutive days in set, as [from, to].
func dayRuns(set map[day.Day]bool) [][2]day.Day {
	var out [][2]day.Day
	for _, d := range slices.Sorted(maps.Keys(set)) {
		if n := len(out); n > 0 && out[n-1][1] == d-1 {
			out[n-1][1] = d
			continue
		}
		out = append(out, [2]day.Day{d, d})
	}
	return out
}
