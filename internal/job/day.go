package job

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/frame"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/raw"
	"github.com/littlewarehouse/warehouse/internal/segment"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// CreatedBy is written into every Parquet footer.
const CreatedBy = "littlewarehouse rollup v" + CodeVersion

// dayBuilder is the day stage: one day's parts to its tables (compact.Build,
// the daily rollups, data quality and quarantine), which it hands to the
// publisher to write and commit.
type dayBuilder struct {
	*Config
	bad      []BadObject         // the run's bad raw objects; a day quarantines those that arrived on it
	failures []conversionFailure // the run's conversion failures; likewise
	funnels  *rollups.Funnels    // the funnels whose funnel events a day's build writes (none: nil)
}

// dayTables are the tables of one day, and what its quality counts need.
type dayTables struct {
	events        *frame.Events
	eng           []rollups.EngagementDaily
	ud            []rollups.UserDaily
	sd            []rollups.SessionsDaily
	paths         []rollups.PathsDaily
	quarantine    []rollups.Quarantine
	badFiles      int64 // bad raw objects that arrived on the day
	failed        int64 // conversion failures that arrived on the day
	stats         compact.Stats
	inputObjects  int
	quality       rollups.DataQualityDaily
	eventsBefore  int64 // the day's events before this build; -1 if never built
	restatedFiles bool  // the build changes a published number (see restated)
}

// build builds and publishes every daily table of day p from its inputs.
func (b *dayBuilder) build(ctx context.Context, pub *publisher, run string, p *dayPlan, in *dayInputs, locks lease.Group) (DaySummary, error) {
	t0 := time.Now()
	// Routing's free lists go: the next reads and segment writes, if any,
	// come after the day is published.
	raw.DropReleased()
	segment.DropBuffers()
	res := compact.Build(in.parts, b.Rules)
	res.Events.Dict.Seal() // from here on only read: its index goes
	b.Log.Info("day built", "day", p.d.String(), "events", res.Events.Len(), "seconds", time.Since(t0).Seconds())
	t := &dayTables{events: res.Events, stats: res.Stats, inputObjects: in.objects}
	b.quarantine(p.d, res.Quarantine, t)
	// The events are written while the rollups are computed from them
	// (neither changes them).
	var eventFiles []publish.File
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		eventFiles, err = pub.writeEvents(gctx, run, p.d, t.events)
		return err
	})
	g.Go(func() error {
		// A head start for funnel_daily, which makes them from the events
		// if they are missing: not a reason to fail the day.
		if err := pub.writeFunnelEvents(gctx, run, p.d, t.events, b.funnels); err != nil && gctx.Err() == nil {
			b.Log.Warn("the day's funnel events not written; funnel_daily will read its events instead", "day", p.d.String(), "error", err.Error())
		}
		return nil
	})
	t.eng, t.ud, t.sd = rollups.ComputeDaily(t.events)
	t.paths = rollups.ComputePaths(t.events)
	markProvisional(t, p.provisional)
	if err := g.Wait(); err != nil {
		return DaySummary{}, err
	}
	b.Log.Info("day's events written", "day", p.d.String(), "files", len(eventFiles), "seconds", time.Since(t0).Seconds())
	files, err := pub.writeRollups(ctx, run, p.d, t)
	if err != nil {
		return DaySummary{}, err
	}
	files["events"] = eventFiles
	if t.restatedFiles, t.eventsBefore, err = b.restated(ctx, p, t.stats.KeptRows, files, t.eng, t.ud, t.sd); err != nil {
		return DaySummary{}, err
	}
	t.quality = b.quality(p, t, len(files["events"]))
	if err := pub.writeQuality(ctx, run, p.d, t, files); err != nil {
		return DaySummary{}, err
	}
	return pub.commitDay(ctx, run, p, t, files, locks)
}

// quarantine sets t's quarantine: the invalid rows q, then a row for each
// bad object and conversion failure that arrived on day d, sorted.
func (b *dayBuilder) quarantine(d day.Day, q []rollups.Quarantine, t *dayTables) {
	for _, o := range b.bad {
		if o.Day == d {
			t.badFiles++
			q = append(q, rollups.Quarantine{Reason: "bad_object_" + o.Reason, SourceObject: o.Key, Detail: o.Error})
		}
	}
	for _, f := range b.failures {
		if day.Of(f.Arrival, b.Rules.Loc) == d {
			t.failed++
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
	t.quarantine = q
}

// markProvisional marks t's rollup rows with the day's mark.
func markProvisional(t *dayTables, provisional bool) {
	for i := range t.eng {
		t.eng[i].Provisional = provisional
	}
	for i := range t.ud {
		t.ud[i].Provisional = provisional
	}
	for i := range t.sd {
		t.sd[i].Provisional = provisional
	}
	for i := range t.paths {
		t.paths[i].Provisional = provisional
	}
}

// quality is day p's data_quality_daily row.
func (b *dayBuilder) quality(p *dayPlan, t *dayTables, eventFiles int) rollups.DataQualityDaily {
	end := p.d.End(b.Rules.Loc).UnixMilli()
	var late [len(rollups.LateHours)]int64
	for _, at := range t.events.ReceivedAt {
		for i, h := range rollups.LateHours {
			if at < end+int64(h)*time.Hour.Milliseconds() {
				break
			}
			late[i]++
		}
	}
	s := t.stats
	return rollups.DataQualityDaily{
		RawRows: s.RawRows, ValidRows: s.ValidRows, KeptRows: s.KeptRows,
		DuplicatesDropped: s.Duplicates, InvalidRows: s.Invalid,
		ClockSkewedRows: s.Skewed, MissingEventTimeRows: s.MissingTime, InvalidUTF8Rows: s.RepairedUTF8,
		LateRows: late[0], LateRows6h: late[1], LateRows24h: late[2], LateRows72h: late[3], BadFiles: t.badFiles, ConversionFailedRecords: t.failed, InputObjects: int64(t.inputObjects),
		OutputFiles: int64(eventFiles), Restated: t.restatedFiles, Provisional: p.provisional,
	}
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
