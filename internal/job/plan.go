package job

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/index"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// fingerprint hashes what a day is computed from.
func fingerprint(cfg map[string]string, inputs []publish.Input) string {
	h := sha256.New()
	fmt.Fprintf(h, "code=%s\n", CodeVersion)
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(h, "%s=%s\n", k, cfg[k])
	}
	for _, in := range inputs {
		fmt.Fprintf(h, "%s %s %d\n", in.Key, in.ETag, in.Size)
	}
	return hex.EncodeToString(h.Sum(nil))
}

type dayPlan struct {
	d           day.Day
	inputs      []publish.Input // what the day is computed from (its fingerprint)
	good        map[string]bool // readable raw objects among the inputs
	rows        int64           // their rows on the day, as the index counts them (0 if it does not)
	bad         []BadObject     // bad raw objects that arrived on the day
	fingerprint string
	build       bool
	why         string
	// provisional is the day's mark as planned (rollups.Provisional at the
	// run's Now); config is the configuration its manifests record, with
	// that mark under statusKey.
	provisional bool
	config      map[string]string
	base        map[string]int64 // each daily table's generation as stale last read it: the build commits the next (publish.CommitAfter)
}

// statusKey is the entry of a day table manifest's config that records the
// day's mark when it was built: "provisional" or "final" (rollups.Status).
const statusKey = "status"

// EarlierDay is a day before the run's range with rows this run saw but no
// published table counts (see Summary.Earlier).
type EarlierDay struct {
	Day     day.Day
	Objects int    // listed objects with rows of the day that its build lacks
	Why     string // "never built" or "built without them"
}

// plan is the plan stage's value: the objects the range can need, the
// index, and each day's plan (stale or not, and why).
type plan struct {
	objs, errObjs []rawObject
	ignored       []string
	earlier       []EarlierDay
	days          []*dayPlan
	ix            *index.Index
	scanned       int // objects newly scanned into the index
	rangeDays     []day.Day
	byKey         map[string]rawObject // objs by key
	segs          map[string]bool      // the segments of the range's days
	routed        *routeStats          // new objects routed while indexing (nil for a plan)
}

// toRoute returns the objects a stale day needs whose segment of that day
// is missing: the raw objects the run reads, each once, sorted by key.
func (pl *plan) toRoute(c *Config) []rawObject {
	need := map[string]bool{}
	for _, p := range pl.days {
		if !p.build {
			continue
		}
		for k := range p.good {
			if o, ok := pl.byKey[k]; ok && !pl.segs[c.segmentKey(p.d, o.Object)] {
				need[k] = true
			}
		}
	}
	var out []rawObject
	for _, o := range pl.objs {
		if need[o.Key] {
			out = append(out, o)
		}
	}
	return out
}

// makePlan lists everything the range can need, once, indexes new objects
// and decides which days are stale (from the index, the published
// manifests and the run's now). Objects the index lacks that were written
// at or after listedBefore, if set, are left out (ListedBefore).
//
// With route set, new objects are routed as they are indexed (see
// routeScan); without, planning writes nothing but the index.
func makePlan(ctx context.Context, rt *router, route bool, listedBefore time.Time) (*plan, error) {
	cfg := rt.Config
	if err := cfg.checkStore(ctx, route); err != nil {
		return nil, err
	}
	pl, err := listPlan(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pl.index(ctx, rt, route, listedBefore); err != nil {
		return nil, err
	}
	if pl.earlier, err = cfg.earlierDays(ctx, pl.objs, pl.ix); err != nil {
		return nil, err
	}
	for _, e := range pl.earlier {
		cfg.Log.Warn("a day before this run holds rows no published table counts; build it with --from/--to",
			"day", e.Day.String(), "objects", e.Objects, "why", e.Why)
	}
	pl.rangeDays = day.Range(cfg.From, cfg.To)
	pl.byKey = make(map[string]rawObject, len(pl.objs))
	for _, o := range pl.objs {
		pl.byKey[o.Key] = o
	}
	if pl.segs, err = rt.listSegments(ctx, pl.rangeDays); err != nil {
		return nil, err
	}
	cfgMap := cfg.configMap()
	for _, d := range pl.rangeDays {
		p, err := pl.planDay(ctx, cfg, d, cfgMap)
		if err != nil {
			return nil, err
		}
		pl.days = append(pl.days, p)
	}
	return pl, nil
}

// checkStore refuses a store that is not a warehouse or is in another
// zone. A run records the zone if none is; a plan records nothing.
func (cfg *Config) checkStore(ctx context.Context, record bool) error {
	if err := checkIsWarehouse(ctx, cfg.Store, cfg.RawPrefix, cfg.ErrorPrefix); err != nil {
		return err
	}
	if record {
		return checkTimeZone(ctx, cfg.Store, cfg.Rules.Loc)
	}
	return CheckZone(ctx, cfg.Store, cfg.Rules.Loc)
}

// listPlan lists the raw objects and conversion failures of the range's
// windows.
func listPlan(ctx context.Context, cfg *Config) (*plan, error) {
	lo, _ := cfg.window(cfg.From)
	_, hi := cfg.window(cfg.To)
	objs, ignored, err := listRaw(ctx, cfg.Store, cfg.RawPrefix, lo, hi)
	if err != nil {
		return nil, err
	}
	for _, k := range ignored {
		cfg.Log.Warn("object under the raw prefix not read: not in the YYYY/MM/DD/HH/ layout, or named _* or .* (not data)", "key", k)
	}
	errObjs, _, err := listHours(ctx, cfg.Store, cfg.ErrorPrefix, cfg.From.Start(cfg.Rules.Loc).Add(-2*time.Hour), cfg.To.End(cfg.Rules.Loc).Add(2*time.Hour))
	if err != nil {
		return nil, err
	}
	return &plan{objs: objs, errObjs: errObjs, ignored: ignored}, nil
}

// index loads the index of the listed hours and scans new objects into
// it. The index says which days each object feeds, from its time columns
// only. It is a cache: failing to save it costs a rescan next time, never
// a wrong answer.
func (pl *plan) index(ctx context.Context, rt *router, route bool, listedBefore time.Time) error {
	cfg := rt.Config
	lo, _ := cfg.window(cfg.From)
	_, hi := cfg.window(cfg.To)
	ix, err := index.LoadHours(ctx, cfg.Store, lo, hi)
	if err != nil {
		return err
	}
	if !listedBefore.IsZero() {
		var late int
		pl.objs, late = arrivedBefore(pl.objs, ix, listedBefore)
		if late > 0 {
			cfg.Log.Info("raw objects not indexed yet left for the next run", "objects", late)
		}
	}
	refs := refsOf(pl.objs)
	// A run reads each new object whole, once: its segments and its
	// entry come from the same rows. A plan only scans the time columns.
	if route {
		pl.routed = &routeStats{keepDay: cfg.To, keeping: true}
		for _, o := range pl.objs {
			if day.Of(o.Hour.UnixMilli(), cfg.Rules.Loc) == cfg.To {
				pl.routed.keepBytes += o.Size
			}
		}
		pl.scanned, err = ix.UpdateWith(ctx, cfg.Store, refs, cfg.Rules, cfg.Parallel, rt.routeScan(pl.routed))
	} else {
		pl.scanned, err = ix.Update(ctx, cfg.Store, refs, cfg.Rules, cfg.Parallel)
	}
	if err != nil {
		return err
	}
	for _, w := range ix.Warnings() {
		cfg.Log.Warn("raw object index: " + w)
	}
	if err := ix.Save(ctx, cfg.Store); err != nil {
		cfg.Log.Warn("raw object index not saved; the next run rescans", "error", err.Error())
	}
	pl.ix = ix
	return nil
}

// planDay plans day d: its inputs, its fingerprint and whether it is stale.
func (pl *plan) planDay(ctx context.Context, cfg *Config, d day.Day, cfgMap map[string]string) (*dayPlan, error) {
	p := &dayPlan{d: d, good: map[string]bool{}}
	wlo, whi := cfg.window(d)
	for _, e := range pl.ix.InputsOf(d) {
		if !e.Hour.Before(wlo) && e.Hour.Before(whi) {
			p.inputs = append(p.inputs, publish.Input{Key: e.Key, ETag: e.ETag, Size: e.Size})
			p.good[e.Key] = true
			if j := slices.Index(e.Days, d); j >= 0 && len(e.DayRows) == len(e.Days) {
				p.rows += e.DayRows[j]
			}
		}
	}
	for _, e := range pl.ix.BadIn(d, cfg.Rules.Loc) {
		p.inputs = append(p.inputs, publish.Input{Key: e.Key, ETag: e.ETag, Size: e.Size})
		p.bad = append(p.bad, BadObject{Key: e.Key, Day: d, Reason: e.Bad, Error: e.Detail})
	}
	elo, ehi := d.Start(cfg.Rules.Loc).Add(-2*time.Hour), d.End(cfg.Rules.Loc).Add(2*time.Hour)
	for _, o := range pl.errObjs {
		if !o.Hour.Before(elo) && o.Hour.Before(ehi) {
			p.inputs = append(p.inputs, publish.Input{Key: o.Key, ETag: o.ETag, Size: o.Size})
		}
	}
	// The day's mark is part of what it is computed from: a day built
	// provisional is stale once it turns final, and the next run over it
	// rebuilds it (from its segments) with the mark final.
	p.provisional = rollups.Provisional(d, cfg.Rules.Loc, cfg.Rules.MaxLateness, cfg.Now())
	p.config = maps.Clone(cfgMap)
	p.config[statusKey] = rollups.Status(p.provisional)
	p.fingerprint = fingerprint(p.config, p.inputs)
	var err error
	p.build, p.why, err = stale(ctx, cfg.Store, p, cfg.Force)
	return p, err
}

// errorObjectsNeeded returns the conversion-failure objects that a day to
// build takes as input.
func (pl *plan) errorObjectsNeeded() []rawObject {
	var out []rawObject
	for _, o := range pl.errObjs {
		for _, p := range pl.days {
			if p.build && slices.ContainsFunc(p.inputs, func(in publish.Input) bool { return in.Key == o.Key }) {
				out = append(out, o)
				break
			}
		}
	}
	return out
}

// earlierDays finds the days before cfg.From that listed objects hold rows
// of (from the index) whose current build lacks those objects: late rows
// that the run's range does not reach. Their rows are not lost (the objects
// stay), but no table counts them until the day is built.
func (cfg *Config) earlierDays(ctx context.Context, objs []rawObject, ix *index.Index) ([]EarlierDay, error) {
	feeds := map[day.Day][]rawObject{}
	for _, o := range objs {
		e, ok := ix.Lookup(o.Key)
		if !ok {
			continue
		}
		for _, d := range e.Days {
			if d < cfg.From {
				feeds[d] = append(feeds[d], o)
			}
		}
	}
	var out []EarlierDay
	for _, d := range sortedDays(dayKeys(feeds)) {
		// quarantine is the last daily table a build commits.
		m, err := publish.Current(ctx, cfg.Store, "quarantine", d)
		if errors.Is(err, store.ErrNotExist) {
			out = append(out, EarlierDay{Day: d, Objects: len(feeds[d]), Why: "never built"})
			continue
		}
		if err != nil {
			return nil, err
		}
		have := map[string]string{}
		for _, in := range m.Inputs {
			have[in.Key] = in.ETag
		}
		missing := 0
		for _, o := range feeds[d] {
			if etag, ok := have[o.Key]; !ok || etag != o.ETag {
				missing++
			}
		}
		if missing > 0 {
			out = append(out, EarlierDay{Day: d, Objects: missing, Why: "built without them"})
		}
	}
	return out, nil
}

// arrivedBefore returns the objects ix holds an entry of (same ETag and
// size) or that were written before t, and how many it left out.
func arrivedBefore(objs []rawObject, ix *index.Index, t time.Time) ([]rawObject, int) {
	var out []rawObject
	for _, o := range objs {
		if e, ok := ix.Lookup(o.Key); ok && e.ETag == o.ETag && e.Size == o.Size || o.ModTime.Before(t) {
			out = append(out, o)
		}
	}
	return out, len(objs) - len(out)
}

func dayKeys[V any](m map[day.Day]V) map[day.Day]bool {
	out := make(map[day.Day]bool, len(m))
	for d := range m {
		out[d] = true
	}
	return out
}

// DayPlan says what a run would do for one day.
type DayPlan struct {
	Day        day.Day
	Build      bool
	Why        string
	Inputs     int   // raw objects the day is computed from
	InputBytes int64 // their size
}

// PlanSummary is what Plan reports: the days, and the raw objects a run
// would read: each once, however many days it feeds, and only those not
// yet routed into segments.
type PlanSummary struct {
	Days      []DayPlan
	ReadBytes int64
	ReadCount int
	Route     []index.ObjectRef // the raw objects to read (RouteObjects routes them)
	// Windowed lists the windowed partitions a run would recompute
	// (active_users_daily days; retention cohorts), as far as they can be
	// known before the run.
	ActiveDays, Cohorts []day.Day
}

// Plan reports what Run would do with cfg, writing nothing.
func Plan(ctx context.Context, cfg Config) (*PlanSummary, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	pl, err := makePlan(ctx, &router{Config: &cfg}, false, time.Time{})
	if err != nil {
		return nil, err
	}
	out := &PlanSummary{}
	au, cohorts := map[day.Day]bool{}, map[day.Day]bool{}
	for _, o := range pl.toRoute(&cfg) {
		out.ReadBytes += o.Size
		out.ReadCount++
		out.Route = append(out.Route, index.ObjectRef{Key: o.Key, ETag: o.ETag, Size: o.Size, Hour: o.Hour})
	}
	for _, p := range pl.days {
		dp := DayPlan{Day: p.d, Build: p.build, Why: p.why, Inputs: len(p.inputs)}
		for _, in := range p.inputs {
			dp.InputBytes += in.Size
		}
		if p.build {
			lo, hi := rollups.ActiveUsersAffected(p.d)
			for d := lo; d <= hi; d++ {
				au[d] = true
			}
			for _, d := range rollups.RetentionAffected(p.d) {
				cohorts[d] = true
			}
		}
		out.Days = append(out.Days, dp)
	}
	out.ActiveDays, out.Cohorts = sortedDays(au), sortedDays(cohorts)
	return out, nil
}

// whyChanged says how a day's plan differs from its published manifest.
func whyChanged(m *publish.Manifest, p *dayPlan) string {
	inputs := p.inputs
	old := map[string]string{}
	for _, in := range m.Inputs {
		old[in.Key] = in.ETag
	}
	var added, changed int
	for _, in := range inputs {
		etag, ok := old[in.Key]
		switch {
		case !ok:
			added++
		case etag != in.ETag:
			changed++
		}
		delete(old, in.Key)
	}
	var why []string
	if added > 0 {
		why = append(why, fmt.Sprintf("%d new objects", added))
	}
	if changed > 0 {
		why = append(why, fmt.Sprintf("%d changed objects", changed))
	}
	if len(old) > 0 {
		why = append(why, fmt.Sprintf("%d objects gone", len(old)))
	}
	if len(why) == 0 {
		if m.CodeVersion != CodeVersion {
			return "code changed (v" + m.CodeVersion + " -> v" + CodeVersion + ")"
		}
		if was, now := m.Config[statusKey], p.config[statusKey]; was != now && maps.EqualFunc(withoutStatus(m.Config), withoutStatus(p.config), func(a, b string) bool { return a == b }) {
			return "turned " + now + " (was " + was + ")"
		}
		return "config changed"
	}
	return strings.Join(why, ", ")
}

// stale decides whether day d must be built: it must unless every daily
// table's current manifest has the same fingerprint.
func stale(ctx context.Context, st store.Store, p *dayPlan, force bool) (bool, string, error) {
	d, fp := p.d, p.fingerprint
	p.base = map[string]int64{}
	build, why := false, ""
	for _, t := range rollups.Daily {
		m, err := publish.Current(ctx, st, t.Name, d)
		if errors.Is(err, store.ErrNotExist) {
			build, why = true, cmp.Or(why, "never built")
			continue
		}
		if err != nil {
			return false, "", err
		}
		p.base[t.Name] = m.Generation
		if m.Fingerprint != fp {
			// A build by this code and config from raw objects this plan
			// lacks, still there, is newer than this plan: never publish
			// over it, whichever of the day's tables holds it.
			if m.CodeVersion == CodeVersion && maps.Equal(withoutStatus(m.Config), withoutStatus(p.config)) {
				if covers, err := publish.Covers(ctx, st, p.inputs, m.Inputs); err != nil || !covers {
					return false, "built meanwhile from newer raw objects; the next run plans the day again", err
				}
			}
			if !build {
				why = whyChanged(m, p)
			}
			build = true
		}
	}
	if build {
		return true, why, nil
	}
	if force {
		return true, "up to date, rebuilt (--force)", nil
	}
	return false, "up to date", nil
}

// withoutStatus returns cfg without statusKey.
func withoutStatus(cfg map[string]string) map[string]string {
	out := maps.Clone(cfg)
	delete(out, statusKey)
	return out
}
