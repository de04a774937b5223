package job

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/raw"
	"github.com/littlewarehouse/warehouse/internal/segment"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// CreatedBy is written into every Parquet footer.
const CreatedBy = "littlewarehouse rollup v" + CodeVersion

// buildDay builds and publishes every daily table of one day.
func (c *Config) buildDay(ctx context.Context, run string, p *dayPlan, parts []*compact.Part, inputObjects int,
	bad []BadObject, failures []conversionFailure, locks lease.Group) (DaySummary, error) {
	d := p.d
	t0 := time.Now()
	// Collect what routing and reading left behind before the day's
	// columns are allocated, so that they reuse that memory instead of
	// growing the heap (a few hundred MB less peak on a 5M-event day).
	// Routing's free lists go too: the next reads and segment writes, if
	// any, come after the day is published.
	raw.DropReleased()
	segment.DropBuffers()
	runtime.GC()
	n := 0
	for _, p := range parts {
		if p.Events != nil {
			n += p.Events.Len()
		}
	}
	big := n >= bigDayEvents
	defer collectOften(gcPercent(big))()
	peak := func() {}
	if big {
		peak = collectOften(gcPeakPercent) // lower still while the build runs: the day's peak
	}
	res := compact.Build(parts, c.Rules)
	peak()
	res.Events.Dict.Seal() // from here on only read: its index goes
	c.Log.Info("day built", "day", d.String(), "events", res.Events.Len(), "seconds", time.Since(t0).Seconds())
	q := res.Quarantine
	var badFiles, failed int64
	for _, b := range bad {
		if b.Day == d {
			badFiles++
			q = append(q, rollups.Quarantine{Reason: "bad_object_" + b.Reason, SourceObject: b.Key, Detail: b.Error})
		}
	}
	for _, f := range failures {
		if day.Of(f.Arrival, c.Rules.Loc) == d {
			failed++
			detail := f.Code
			if f.Message != "" {
				detail += ": " + f.Message
			}
			q = append(q, rollups.Quarantine{Reason: "conversion_failed", SourceObject: f.Source, Detail: detail, ReceivedAt: &f.Arrival})
		}
	}
	slices.SortStableFunc(q, func(a, b rollups.Quarantine) int {
		return cmp.Or(strings.Compare(a.Reason, b.Reason), strings.Compare(a.SourceObject, b.SourceObject),
			rollups.CompareTimes(a.ReceivedAt, b.ReceivedAt), strings.Compare(a.Detail, b.Detail))
	})

	// The events are written while the rollups are computed from them
	// (neither changes them).
	opt := publish.WriterOptions{TargetFileSize: c.TargetFileSize, RowGroupSize: c.RowGroupSize, CreatedBy: CreatedBy}
	files := map[string][]publish.File{}
	var eventFiles []publish.File
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		eventFiles, err = publish.WriteEvents(gctx, c.Store, publish.RunPrefix("events", d, run), res.Events, opt)
		return err
	})
	eng, ud, sd := rollups.ComputeDaily(res.Events)
	for i := range eng {
		eng[i].Provisional = p.provisional
	}
	for i := range ud {
		ud[i].Provisional = p.provisional
	}
	for i := range sd {
		sd[i].Provisional = p.provisional
	}
	if err := g.Wait(); err != nil {
		return DaySummary{}, err
	}
	c.Log.Info("day's events written", "day", d.String(), "files", len(eventFiles), "seconds", time.Since(t0).Seconds())
	files["events"] = eventFiles
	var err error
	if files["engagement_daily"], err = publish.Write(ctx, c.Store, publish.RunPrefix("engagement_daily", d, run), eng, opt); err != nil {
		return DaySummary{}, err
	}
	if files["user_daily"], err = publish.Write(ctx, c.Store, publish.RunPrefix("user_daily", d, run), ud, opt); err != nil {
		return DaySummary{}, err
	}
	if files["sessions_daily"], err = publish.Write(ctx, c.Store, publish.RunPrefix("sessions_daily", d, run), sd, opt); err != nil {
		return DaySummary{}, err
	}
	end := d.End(c.Rules.Loc).UnixMilli()
	var late [len(rollups.LateHours)]int64
	for _, at := range res.Events.ReceivedAt {
		for i, h := range rollups.LateHours {
			if at < end+int64(h)*time.Hour.Milliseconds() {
				break
			}
			late[i]++
		}
	}
	restated, before, err := c.restated(ctx, p, res.Stats.KeptRows, files, eng, ud, sd)
	if err != nil {
		return DaySummary{}, err
	}
	quality := rollups.DataQualityDaily{
		RawRows: res.Stats.RawRows, ValidRows: res.Stats.ValidRows, KeptRows: res.Stats.KeptRows,
		DuplicatesDropped: res.Stats.Duplicates, InvalidRows: res.Stats.Invalid,
		ClockSkewedRows: res.Stats.Skewed, MissingEventTimeRows: res.Stats.MissingTime, InvalidUTF8Rows: res.Stats.RepairedUTF8,
		LateRows: late[0], LateRows6h: late[1], LateRows24h: late[2], LateRows72h: late[3], BadFiles: badFiles, ConversionFailedRecords: failed, InputObjects: int64(inputObjects),
		OutputFiles: int64(len(files["events"])), Restated: restated, Provisional: p.provisional,
	}
	if files["data_quality_daily"], err = publish.Write(ctx, c.Store, publish.RunPrefix("data_quality_daily", d, run), []rollups.DataQualityDaily{quality}, opt); err != nil {
		return DaySummary{}, err
	}
	if files["quarantine"], err = publish.Write(ctx, c.Store, publish.RunPrefix("quarantine", d, run), q, opt); err != nil {
		return DaySummary{}, err
	}

	if c.dayHook != nil {
		if err := c.dayHook(d); err != nil {
			return DaySummary{}, err
		}
	}
	// What this build changes in the day's published counts.
	var moved []Restated
	if prev, err := publish.Current(ctx, c.Store, "data_quality_daily", d); err == nil && restates(prev) {
		old, err := manifestRows[rollups.DataQualityDaily](ctx, c.Store, prev)
		if err != nil {
			return DaySummary{}, err
		}
		moved = diffRows("data_quality_daily", d, old, []rollups.DataQualityDaily{quality}, func(rollups.DataQualityDaily) string { return "" })
	} else if err != nil && !errors.Is(err, store.ErrNotExist) {
		return DaySummary{}, err
	}
	// Publish only while the partitions are still ours.
	if err := locks.Check(ctx); err != nil {
		return DaySummary{}, fmt.Errorf("lost the lease before publishing: %w", err)
	}
	now := c.Now().UTC()
	sum := DaySummary{Day: d, Why: p.why, Quality: quality, EventsBefore: before, Restatements: moved}
	stats := map[string]int64{
		"raw_rows": quality.RawRows, "valid_rows": quality.ValidRows, "kept_rows": quality.KeptRows,
		"duplicates_dropped": quality.DuplicatesDropped, "invalid_rows": quality.InvalidRows,
		"clock_skewed_rows": quality.ClockSkewedRows, "missing_event_time_rows": quality.MissingEventTimeRows, "bad_files": quality.BadFiles,
		"conversion_failed_records": quality.ConversionFailedRecords, "late_rows": quality.LateRows,
		"restated": b2i(quality.Restated), "invalid_utf8_rows": quality.InvalidUTF8Rows,
	}
	for _, t := range rollups.Daily {
		m := &publish.Manifest{
			Table: t.Name, Day: d.String(), Run: run, TimeZone: c.Rules.Loc.String(), CodeVersion: CodeVersion,
			Config: p.config, Fingerprint: p.fingerprint, Files: files[t.Name], Inputs: p.inputs,
			Stats: stats, CreatedAt: now,
		}
		for _, f := range m.Files {
			m.Rows += f.Rows
			sum.FilesWritten++
			sum.BytesWritten += f.Size
		}
		if err := publish.CommitAfter(ctx, c.Store, m, p.base[t.Name]); err != nil {
			// Another run committed the day since this one read it: its
			// build stands if it is from inputs at least as new.
			var lost *publish.CommitLostError
			if errors.As(err, &lost) && lost.Winner != nil {
				if covers, cerr := publish.Covers(ctx, c.Store, lost.Winner.Inputs, p.inputs); cerr == nil && covers {
					return DaySummary{Day: d, Skipped: true, Why: "built meanwhile by another run from inputs at least as new"}, nil
				}
			}
			return DaySummary{}, err
		}
		if t.Name == "user_daily" {
			c.built.key, c.built.rows = m.Day+"/"+m.Run, ud
		}
	}
	for _, t := range rollups.Daily {
		if !c.cleanupAtOnce() {
			break
		}
		if err := publish.Cleanup(ctx, c.Store, t.Name, d, run, c.GracePeriod, now); err != nil {
			c.Log.Warn("superseded runs not all deleted; the next run retries", "table", t.Name, "day", d.String(), "error", err.Error())
		}
	}
	for _, m := range moved {
		c.Log.Info("restated", "change", m.String())
	}
	if err := c.recordRestatements(ctx, run, now, d, moved); err != nil {
		return DaySummary{}, fmt.Errorf("record restatements: %w", err)
	}
	return sum, nil
}

// restated reports whether day d had been published completely before
// (its data_quality_daily manifest, committed after the events and the
// rollups, exists) with other numbers: another count of events, or a rollup
// file with other content (outputs are deterministic, so equal checksums
// mean equal numbers). A day whose earlier publication was cut short by a
// crash is not restated by finishing it. A day that only turned final (its
// mark changed, so its files did) is not restated either: its rows are
// compared without the mark. It also returns the events count published
// before (-1 if never).
func (c *Config) restated(ctx context.Context, p *dayPlan, kept int64, files map[string][]publish.File,
	eng []rollups.EngagementDaily, ud []rollups.UserDaily, sd []rollups.SessionsDaily) (bool, int64, error) {
	d := p.d
	prev, err := publish.Current(ctx, c.Store, "data_quality_daily", d)
	if errors.Is(err, store.ErrNotExist) {
		return false, -1, nil
	}
	if err != nil {
		return false, 0, err
	}
	before := prev.Stats["kept_rows"]
	if before != kept {
		return true, before, nil
	}
	markChanged := prev.Config[statusKey] != p.config[statusKey]
	for _, t := range []string{"engagement_daily", "user_daily", "sessions_daily"} {
		m, err := publish.Current(ctx, c.Store, t, d)
		if err != nil {
			return false, 0, err
		}
		if markChanged {
			var same bool
			switch t {
			case "engagement_daily":
				same, err = sameRows(ctx, c.Store, m, eng, func(r *rollups.EngagementDaily) { r.Provisional = false })
			case "user_daily":
				same, err = sameRows(ctx, c.Store, m, ud, func(r *rollups.UserDaily) { r.Provisional = false })
			default:
				same, err = sameRows(ctx, c.Store, m, sd, func(r *rollups.SessionsDaily) { r.Provisional = false })
			}
			if err != nil {
				return false, 0, err
			}
			if !same {
				return true, before, nil
			}
			continue
		}
		if len(m.Files) != len(files[t]) {
			return true, before, nil
		}
		for i, f := range m.Files {
			if f.SHA256 != files[t][i].SHA256 {
				return true, before, nil
			}
		}
	}
	// Same numbers. If the run that published them was cut short before its
	// last manifest (quarantine), this build finishes it: keep its verdict.
	q, err := publish.Current(ctx, c.Store, "quarantine", d)
	if err != nil && !errors.Is(err, store.ErrNotExist) {
		return false, 0, err
	}
	unfinished := q == nil || q.Run != prev.Run
	return unfinished && prev.Stats["restated"] == 1, before, nil
}

// sameRows reports whether the rows of run m equal rows once clear has
// been applied to both (it clears the columns not to compare).
func sameRows[T comparable](ctx context.Context, st store.Store, m *publish.Manifest, rows []T, clear func(*T)) (bool, error) {
	old, err := manifestRows[T](ctx, st, m)
	if err != nil || len(old) != len(rows) {
		return false, err
	}
	for i := range old {
		a, b := old[i], rows[i]
		clear(&a)
		clear(&b)
		if a != b {
			return false, nil
		}
	}
	return true, nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// stateKey records the store's reporting time zone.
const stateKey = "_state/warehouse.json"

type warehouseState struct {
	TimeZone string `json:"time_zone"`
}

// checkIsWarehouse refuses a store that has neither the warehouse marker
// (written by the first run) nor anything under the raw or raw-errors
// prefix: most likely --store names the wrong folder, and a run there
// would read nothing and write curated/ and _state/ into it.
func checkIsWarehouse(ctx context.Context, st store.Store, rawPrefix, errorPrefix string) error {
	if _, err := st.Stat(ctx, stateKey); err == nil || !errors.Is(err, store.ErrNotExist) {
		return err
	}
	for _, p := range []string{rawPrefix, errorPrefix} {
		objs, err := st.List(ctx, p)
		if err != nil {
			return err
		}
		if len(objs) > 0 {
			return nil
		}
	}
	return &NotWarehouseError{Store: st.String(), RawPrefix: rawPrefix}
}

// NotWarehouseError says a store holds no raw data and was never rolled up.
type NotWarehouseError struct{ Store, RawPrefix string }

func (e *NotWarehouseError) Error() string {
	return fmt.Sprintf("no %s under %s, and no earlier rollup there: is --store right? (Firehose writes raw/YYYY/MM/DD/HH/...; see --raw-prefix)", e.RawPrefix, e.Store)
}

// checkTimeZone refuses to mix reporting time zones in one store: it
// records loc if no run has recorded a zone yet (CheckZone only checks).
func checkTimeZone(ctx context.Context, st store.Store, loc *time.Location) error {
	err := checkZone(ctx, st, loc)
	if !errors.Is(err, errNoZone) {
		return err
	}
	nb, _ := json.Marshal(warehouseState{TimeZone: loc.String()})
	err = st.Create(ctx, stateKey, nb)
	if errors.Is(err, store.ErrExists) {
		return checkTimeZone(ctx, st, loc)
	}
	return err
}

// ZoneError says a run asked for another reporting time zone than the one
// the store's tables are in.
type ZoneError struct{ Store, Have, Want string }

func (e *ZoneError) Error() string {
	return fmt.Sprintf("the tables in %s are in time zone %s, not %s; days of two zones cannot be mixed. "+
		"Run with --tz %s, or rebuild everything in %s: delete curated/ and _state/ from the store (raw/ stays) and run rollup --from FIRST-DAY --to LAST-DAY --tz %s",
		e.Store, e.Have, e.Want, e.Have, e.Want, e.Want)
}

// The garbage collector's GOGC while days are routed, loaded, built and
// written: gcSmallPercent for small days, gcBigPercent for big ones (at
// least bigDayEvents events, or bigDayRawBytes of raw objects arriving on
// the day), and gcPeakPercent for a big day while compact.Build runs, its
// peak. Measured on the 5M-event day's first build, two or three runs
// each: 25 throughout gave 1,193–1,256 MiB peak in 12.2–14.3 s, 10 gave
// 1,003–1,073 MiB in 13.0–13.8 s, 5 gave 957–974 MiB but 1–1.5 s and
// 2.5 s of CPU more, and 10 with 5 during the build 974–978 MiB in
// 12.6–15.0 s: the heap is mostly pointer-free columns, so a collection
// costs little but the marking of the day's dictionary. Small heaps are
// another matter: 10 made the 30-day backfill of 100k-event days 19–20 s
// instead of 13–16 s, a collection every few megabytes.
const (
	gcSmallPercent = 25
	gcBigPercent   = 10
	gcPeakPercent  = 5
	bigDayEvents   = 1 << 20
	bigDayRawBytes = 64 << 20
)

// gcPercent is the GOGC for a day, big or not.
func gcPercent(big bool) int {
	if big {
		return gcBigPercent
	}
	return gcSmallPercent
}

var gcMu struct {
	sync.Mutex
	active map[int]int // the GOGC values asked for, and by how many callers
	prev   int         // the GOGC to restore
}

// collectOften sets GOGC to percent, or to a lower value another caller
// asked for, until the returned function is called; the last caller
// restores the GOGC before the first, unless the GOGC environment
// variable is set. While a day's columns are built and written, the heap
// is mostly the day's pointer-free columns, cheap to mark, and what is
// freed (the parts' columns, as they are gathered) is large: collecting
// often keeps the heap near its live size instead of twice it (see
// gcSmallPercent). Routing and loading too: the day grows while each
// object or segment read leaves its columns behind (at GOGC=25,
// 1.13–1.21 GiB peak instead of 1.44–1.46 GiB on the 5M-event day's
// first build).
func collectOften(percent int) (restore func()) {
	if os.Getenv("GOGC") != "" {
		return func() {}
	}
	gcMu.Lock()
	defer gcMu.Unlock()
	if len(gcMu.active) == 0 {
		gcMu.active = map[int]int{}
		gcMu.prev = debug.SetGCPercent(percent)
	}
	gcMu.active[percent]++
	setLowestGC()
	return func() {
		gcMu.Lock()
		defer gcMu.Unlock()
		if gcMu.active[percent]--; gcMu.active[percent] == 0 {
			delete(gcMu.active, percent)
		}
		setLowestGC()
	}
}

// setLowestGC sets GOGC to the lowest value asked for, or back to the one
// before the first ask if none is. gcMu is held.
func setLowestGC() {
	if len(gcMu.active) == 0 {
		debug.SetGCPercent(gcMu.prev)
		return
	}
	debug.SetGCPercent(slices.Min(slices.Collect(maps.Keys(gcMu.active))))
}
