package job

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/littlewarehouse/warehouse/internal/erasure"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/segment"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// tableScan is what a scan of the tables' Parquet files found.
type tableScan struct {
	files   int
	byTable map[string]int64 // rows of the request in current files, by table ("users_state": _state/users/)
	// superseded are files of runs no longer current that still hold rows
	// of the request: kept for the grace period (S3), then deleted.
	superseded []string
	// daily counts the request's ids in current user_daily files by
	// partition (dt=…); cameBack holds the events partitions with rows of
	// the request's ids received after it (the person came back). Neither
	// user_daily nor users has received_at: their rows of a person who came
	// back are the later rows' (see left).
	daily    map[string]int64
	cameBack map[string]bool
}

// left returns the request's rows the current table files still hold,
// but for the person's rows that came back: those of user_daily
// partitions whose events partition holds rows of the person received
// after the request, and, if such a partition holds the person, those of
// users and users_state. The days rebuilt hold no row of the person
// received before the request, so those user_daily rows are the later
// rows'; a user_daily partition of a day without such events is counted
// whole.
func (ts *tableScan) left() int64 {
	var n int64
	came := false
	for part, k := range ts.daily {
		if ts.cameBack[part] {
			came = came || k > 0
			continue
		}
		n += k
	}
	for t, k := range ts.byTable {
		switch t {
		case "user_daily": // counted by partition above
		case "users", "users_state":
			if !came {
				n += k
			}
		default:
			n += k
		}
	}
	return n
}

// scanTables reads every Parquet file under curated/ and _state/users/
// and counts the request's rows in them. The files of current runs
// count in byTable; rows in others are listed in superseded. With all,
// it reads superseded files too (the verification), else current ones
// only (the count before).
func (e *eraser) scanTables(ctx context.Context, m *erasure.Matcher, all bool) (*tableScan, error) {
	st := e.cfg.Store
	current, err := currentFiles(ctx, st)
	if err != nil {
		return nil, err
	}
	// A run folder is current if a file of a current manifest is in it.
	currentRuns := map[string]bool{}
	for k := range current {
		currentRuns[path.Dir(k)] = true
	}
	var keys []string
	for _, prefix := range []string{"curated/", usersStatePrefix} {
		objs, err := st.List(ctx, prefix)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			switch {
			case strings.HasSuffix(o.Key, ".parquet") && (all || current[o.Key]):
				keys = append(keys, o.Key)
			case all && strings.Contains(o.Key, "/"+funnelEventsPrefix) && !currentRuns[path.Dir(o.Key)]:
				// A superseded run's funnel events: the same people as its
				// events, listed with them. (A current run's follow its
				// events, verified above.)
				keys = append(keys, o.Key)
			}
		}
	}
	ts := &tableScan{byTable: map[string]int64{}, daily: map[string]int64{}, cameBack: map[string]bool{}}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.cfg.Parallel)
	for _, k := range keys {
		g.Go(func() error {
			f, err := scanTableFile(gctx, st, k, m)
			if errors.Is(err, store.ErrNotExist) {
				return nil // a superseded run deleted meanwhile
			}
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			ts.files++
			table, part := tableOfKey(k)
			switch {
			case current[k]:
				ts.byTable[table] += f.Matched
				if table == "user_daily" {
					ts.daily[part] += f.Matched
				}
				if table == "events" && f.Later > 0 {
					ts.cameBack[part] = true
				}
			case f.Matched > 0:
				ts.superseded = append(ts.superseded, k)
			}
			return nil
		})
	}
	return ts, g.Wait()
}

func scanTableFile(ctx context.Context, st store.Store, key string, m *erasure.Matcher) (erasure.Found, error) {
	if strings.Contains(key, "/"+funnelEventsPrefix) {
		return scanFunnelEvents(ctx, st, key, m)
	}
	r, err := st.Open(ctx, key)
	if err != nil {
		return erasure.Found{}, err
	}
	defer r.Close()
	f, err := erasure.ScanParquet(r, r.Size(), m)
	if err != nil {
		return f, fmt.Errorf("scan %s: %w", key, err)
	}
	return f, nil
}

// tableOfKey names the table and partition of a file:
// curated/<table>/<partition>/…, or users_state (no partition).
func tableOfKey(k string) (table, partition string) {
	if strings.HasPrefix(k, usersStatePrefix) {
		return "users_state", ""
	}
	parts := strings.SplitN(k, "/", 4)
	if len(parts) < 4 {
		return parts[1], ""
	}
	return parts[1], parts[2]
}

// currentFiles returns the keys of every file of a current run: each
// partition's current manifest's files (and, for users, its state file).
func currentFiles(ctx context.Context, st store.Store) (map[string]bool, error) {
	objs, err := st.List(ctx, "curated/")
	if err != nil {
		return nil, err
	}
	parts := map[[2]string]bool{}
	for _, o := range objs {
		p := strings.Split(o.Key, "/")
		if len(p) >= 4 {
			parts[[2]string{p[1], p[2]}] = true
		}
	}
	out := map[string]bool{}
	for tp := range parts {
		m, err := publish.CurrentAt(ctx, st, tp[0], tp[1])
		if errors.Is(err, store.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, f := range m.Files {
			out[f.Key] = true
		}
		if m.State != "" {
			out[m.State] = true
		}
	}
	return out, nil
}

// finish verifies that no remaining file holds the request's rows, drops
// the segments of objects no longer listed, and writes the receipt.
func (e *eraser) finish(ctx context.Context, r erasure.Request, p pass, m *erasure.Matcher, w *erasure.Work) (*erasure.Receipt, error) {
	st := e.cfg.Store
	if err := e.hook("verify"); err != nil {
		return nil, err
	}
	at := e.cfg.Now().UTC() // objects listed after it are searched by the next late check
	sc, err := e.scanRaw(ctx, m, time.Time{})
	if err != nil {
		return nil, err
	}
	nseg, err := e.dropOrphanSegments(ctx, sc.listed)
	if err != nil {
		return nil, err
	}
	ts, err := e.scanTables(ctx, m, true)
	if err != nil {
		return nil, err
	}
	found := ts.left() // but the person's later rows: new data
	for _, f := range sc.found {
		found += f.removed
	}
	if found > 0 {
		return nil, fmt.Errorf("verification found %d rows of it left (%d in raw objects, tables %v): run again", found, len(sc.found), ts.byTable)
	}
	rc := &erasure.Receipt{
		Request: r.ID, Late: p.late, Product: r.Product, RequestedAt: r.CreatedAt, DoneAt: e.cfg.Now().UTC(),
		DaysRebuilt: w.Days, Runs: w.Runs, RowsRemoved: map[string]int64{},
		Verification: erasure.Verification{
			At: at, RawObjects: sc.rawObjects, ErrorObjects: sc.errObjects,
			Segments: nseg, TableFiles: ts.files, Unsearchable: sc.unsearchable,
			AwaitingCleanup: ts.superseded,
		},
	}
	for _, k := range sortedKeys(w.Objects) {
		o := w.Objects[k]
		rc.Objects = append(rc.Objects, o)
		table := "raw"
		if strings.HasPrefix(o.Key, e.cfg.ErrorPrefix) {
			table = "raw-errors"
		}
		rc.RowsRemoved[table] += o.RowsRemoved
	}
	for t, n := range w.RowsBefore {
		if n -= ts.byTable[t]; n > 0 {
			rc.RowsRemoved[t] = n
		}
	}
	if err := e.hook("receipt"); err != nil {
		return nil, err
	}
	key := erasure.ReceiptKey(r.ID)
	if p.late {
		key = erasure.LateReceiptKey(r.ID, w.Started)
	}
	rc, err = erasure.WriteReceipt(ctx, st, key, rc)
	if err != nil {
		return nil, err
	}
	if err := st.Delete(ctx, p.work); err != nil {
		return nil, err
	}
	e.cfg.Log.Info("erased", "request", r.ID, "late", p.late, "objects", len(rc.Objects), "days", len(rc.DaysRebuilt))
	return rc, nil
}

// dropOrphanSegments deletes the segments whose raw object is not listed
// (any more) under the tag of its listed version, and returns how many
// segments it checked: every segment left is the cut of a raw object the
// scan read clean.
func (e *eraser) dropOrphanSegments(ctx context.Context, listed map[string]rawObject) (int, error) {
	objs, err := e.cfg.Store.List(ctx, segment.Prefix)
	if err != nil {
		return 0, err
	}
	for _, o := range objs {
		_, rawKey, tag, ok := segment.Parse(o.Key)
		if ok && !strings.HasPrefix(rawKey, e.cfg.RawPrefix) {
			continue // of another raw prefix: not ours to judge (as routing)
		}
		if ok {
			if ro, have := listed[rawKey]; have && segment.Tag(ro.Key, ro.ETag, e.cfg.routeRules()) == tag {
				continue
			}
		}
		if err := e.cfg.Store.Delete(ctx, o.Key); err != nil {
			return 0, fmt.Errorf("delete segment %s: %w", o.Key, err)
		}
	}
	return len(objs), nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
