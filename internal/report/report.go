// Package report renders the warehouse's curated tables as one
// self-contained HTML page (inline CSS and SVG charts, no scripts, no
// network) that a small team opens instead of a BI tool.
//
// It reads only curated partitions, each through its current manifest
// (publish.Current), and only the files that manifest lists: run folders
// without a manifest are invisible to it, as to every reader the project
// ships.
package report

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// Options choose what the report covers.
type Options struct {
	// From and To bound the reporting days shown, inclusive; a zero Day
	// means no bound on that side. For retention_daily the day is the
	// cohort day.
	From, To day.Day
	// Product keeps only that product's rows ("" keeps all). The data
	// quality section is per day, not per product, and is always whole.
	Product string
	// Now stamps the page with its generation time; nil means time.Now.
	Now func() time.Time
}

// Write reads the current partitions of the tables of reportTables
// (active_users_daily, retention_daily, lifecycle_daily, stickiness_daily,
// funnel_daily, engagement_daily, paths_daily, sessions_daily and
// data_quality_daily) in st for the days of opt, and writes the report
// page to w. It only reads st. The page is rendered in memory first, so
// when reading fails nothing is written to w. An empty store gives a page
// that says it has no data, not an error.
func Write(ctx context.Context, st store.Store, w io.Writer, opt Options) error {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.From != 0 && opt.To != 0 && opt.From > opt.To {
		return fmt.Errorf("report: from %s is after to %s", opt.From, opt.To)
	}
	t, err := load(ctx, st, opt.From, opt.To)
	if err != nil {
		return err
	}
	p := build(t, opt)
	p.Store = st.String()
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		return fmt.Errorf("report: render: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// page is what the template renders.
type page struct {
	Generated string
	Store     string
	Range     string
	TimeZone  string
	Product   string
	Notes     []string
	Sections  []section
}

type section struct {
	ID, Title, Intro string
	Charts           []chart
	Tables           []table
}

// table is a table of numbers under a section's charts. Head holds the
// column names (curated column names where the column is one).
type table struct {
	ID, Caption string
	Head        []string
	Rows        []row
}

type row struct {
	Class string
	Cells []cell
}

type cell struct {
	Text  string
	Num   bool
	Title string
}

func num(n int64) cell { return cell{Text: thousands(n), Num: true} }
func dec(v float64, p int) cell {
	if math.IsNaN(v) {
		return cell{Text: "", Num: true}
	}
	return cell{Text: fmt.Sprintf("%.*f", p, v), Num: true}
}
func pct(v float64) cell { return cell{Text: fmt.Sprintf("%.1f%%", v*100), Num: true} }
func str(s string) cell  { return cell{Text: s} }

// build turns the tables read into the page.
func build(t *tables, opt Options) *page {
	p := &page{Generated: opt.Now().UTC().Format("2006-01-02 15:04 MST"), Product: opt.Product}
	keep := func(product string) bool { return opt.Product == "" || product == opt.Product }

	// Time zones, range and build times, from the manifests.
	zones := map[string]bool{}
	allDays := map[day.Day]bool{}
	builds := map[day.Day]map[string]*publish.Manifest{}
	note := func(table string, d day.Day, m *publish.Manifest) {
		zones[m.TimeZone] = true
		if builds[d] == nil {
			builds[d] = map[string]*publish.Manifest{}
		}
		builds[d][table] = m
		if m.Rows > 0 { // not an empty retention_daily of a day before any data
			allDays[d] = true
		}
	}
	for _, x := range t.Active {
		note("active_users_daily", x.Day, x.Manifest)
	}
	for _, x := range t.Retention {
		note("retention_daily", x.Day, x.Manifest)
	}
	for _, x := range t.Lifecycle {
		note("lifecycle_daily", x.Day, x.Manifest)
	}
	for _, x := range t.Stickiness {
		note("stickiness_daily", x.Day, x.Manifest)
	}
	for _, x := range t.Funnels {
		note("funnel_daily", x.Day, x.Manifest)
	}
	for _, x := range t.Engage {
		note("engagement_daily", x.Day, x.Manifest)
	}
	for _, x := range t.Paths {
		note("paths_daily", x.Day, x.Manifest)
	}
	for _, x := range t.Sessions {
		note("sessions_daily", x.Day, x.Manifest)
	}
	for _, x := range t.Quality {
		note("data_quality_daily", x.Day, x.Manifest)
	}
	var zl []string
	for z := range zones {
		if z == "" {
			z = "UTC"
		}
		zl = append(zl, z)
	}
	sort.Strings(zl)
	zl = slices.Compact(zl)
	p.TimeZone = strings.Join(zl, ", ")
	if len(zl) == 0 {
		p.TimeZone = "(no partitions)"
	}
	if len(zl) > 1 {
		p.Notes = append(p.Notes, "Partitions were built in different reporting time zones ("+p.TimeZone+"): their days do not line up. Rebuild with one --tz.")
	}
	days := sortedDays(allDays)
	p.Range = rangeText(days, opt)
	if len(days) == 0 {
		p.Notes = append(p.Notes, "No curated partition was found in this range. Run rollup first, or widen --from/--to.")
	}
	xl := "reporting day (" + p.TimeZone + ")"
	prov, last := provisionalDays(t.Quality)
	if len(prov) > 0 {
		pd := slices.Sorted(maps.Keys(prov))
		until := ""
		if !last.IsZero() {
			until = " (until " + last.UTC().Format("2006-01-02 15:04 UTC") + " for the last one; hover a day for its own)"
		}
		p.Notes = append(p.Notes, fmt.Sprintf("%d provisional days (shaded in the charts, grey in the tables): %s. "+
			"Late events may still arrive for them%s, so their numbers may still change: bounce rate and session lengths most, "+
			"as late events extend sessions. The first run after that time rebuilds each day as final.", len(pd), dayList(pd), until))
	}

	p.Sections = append(p.Sections,
		activeSection(t.Active, keep, xl, prov),
		retentionSection(t.Retention, keep),
		lifecycleSection(t.Lifecycle, keep, xl, prov),
		stickinessSection(t.Stickiness, keep),
		funnelsSection(t.Funnels, keep, prov),
		eventsSection(t.Engage, keep, xl, prov),
		pathsSection(t.Paths, keep, prov),
		sessionsSection(t.Sessions, keep, xl, prov),
		qualitySection(t.Quality, xl, prov),
		buildsSection(days, builds),
	)
	if opt.Product != "" && !hasProduct(t, opt.Product) {
		p.Notes = append(p.Notes, fmt.Sprintf("No rows for product %q in this range.", opt.Product))
	}
	return p
}

// rangeText says which days the report covers, and which it was asked for.
func rangeText(days []day.Day, opt Options) string {
	r := "no data"
	if len(days) > 0 {
		r = fmt.Sprintf("%s to %s (%d days with data)", days[0], days[len(days)-1], len(days))
	}
	if opt.From != 0 || opt.To != 0 {
		from, to := "the start", "the end"
		if opt.From != 0 {
			from = opt.From.String()
		}
		if opt.To != 0 {
			to = opt.To.String()
		}
		r += fmt.Sprintf("; asked for %s to %s", from, to)
	}
	return r
}

// provisionalDays returns the days whose data_quality_daily row is
// provisional, each with why and until when ("provisional: late events may
// still arrive until 2026-08-10 00:15 UTC", from the day's manifest: its
// zone and max_lateness) and, where the final days of parts measure it,
// its expected completeness; and the latest of those times (zero if none
// is known).
func provisionalDays(parts []partition[rollups.DataQualityDaily]) (map[day.Day]string, time.Time) {
	out := map[day.Day]string{}
	var last time.Time
	for _, x := range parts {
		if len(x.Rows) == 0 || !x.Rows[0].Provisional {
			continue
		}
		why := "provisional: late events may still arrive"
		loc, err := time.LoadLocation(x.Manifest.TimeZone)
		ml, err2 := time.ParseDuration(x.Manifest.Config["max_lateness"])
		if err == nil && err2 == nil {
			at := rollups.FinalAt(x.Day, loc, ml)
			why += " until " + at.UTC().Format("2006-01-02 15:04 UTC")
			if at.After(last) {
				last = at
			}
			if share, ok := expectedCompleteness(parts, x.Manifest.CreatedAt.Sub(x.Day.End(loc))); ok {
				why += fmt.Sprintf("; about %.0f%% of a day's events had arrived by the age this one was built at, over the final days shown", math.Floor(share*100))
			}
		}
		out[x.Day] = why
	}
	return out, last
}

// expectedCompleteness is the share of their events that the final days of
// parts had received by age after their end (rounded down to an age
// rollups.LateHours measures), pooled over those days; ok is false when no
// final day with events is shown, or the age is negative (the day was not
// over).
func expectedCompleteness(parts []partition[rollups.DataQualityDaily], age time.Duration) (share float64, ok bool) {
	if age < 0 {
		return 0, false
	}
	i := 0
	for j, h := range rollups.LateHours {
		if age >= time.Duration(h)*time.Hour {
			i = j
		}
	}
	var kept, late int64
	for _, x := range parts {
		for _, r := range x.Rows {
			if !r.Provisional {
				kept += r.KeptRows
				late += r.Late(i)
			}
		}
	}
	if kept == 0 {
		return 0, false
	}
	return float64(kept-late) / float64(kept), true
}

// dayList writes days as ranges: "2026-08-03 .. 2026-08-06, 2026-08-09".
// markedDays returns the days of days marked true (provisional), in
// order.
func markedDays(days map[day.Day]bool) []day.Day {
	var out []day.Day
	for d, p := range days {
		if p {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

func dayList(ds []day.Day) string {
	var parts []string
	for i := 0; i < len(ds); {
		j := i
		for j+1 < len(ds) && ds[j+1] == ds[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, ds[i].String()+" .. "+ds[j].String())
		} else {
			parts = append(parts, ds[i].String())
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

// provisionalRow marks a table row of a provisional day: greyed, with why
// as the tooltip of its first cell.
func provisionalRow(r row, why string) row {
	r.Class = strings.TrimSpace(r.Class + " provisional")
	if len(r.Cells) > 0 {
		r.Cells[0].Title = why
	}
	return r
}

func hasProduct(t *tables, product string) bool {
	for _, x := range t.Active {
		for _, r := range x.Rows {
			if r.Product == product {
				return true
			}
		}
	}
	for _, x := range t.Engage {
		for _, r := range x.Rows {
			if r.Product == product {
				return true
			}
		}
	}
	return false
}

func sortedDays(m map[day.Day]bool) []day.Day {
	out := make([]day.Day, 0, len(m))
	for d := range m {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// nans returns n NaNs: a series with no value yet on any day.
func nans(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = math.NaN()
	}
	return v
}

func partDays[T any](parts []partition[T]) []day.Day {
	out := make([]day.Day, len(parts))
	for i, x := range parts {
		out[i] = x.Day
	}
	return out
}

// notComputed is the tooltip of a windowed number that is NULL.
const notComputed = "not computed: a day of its window after the start of data was never built"

func activeSection(parts []partition[rollups.ActiveUsersDaily], keep func(string) bool, xl string, prov map[day.Day]string) section {
	s := section{ID: "active", Title: "Active people",
		Intro: "Distinct people (user_key) per product: DAU on the day, WAU over the 7 days and MAU over the 28 days ending it; new = first day ever seen in the product, returning = the rest of DAU. From active_users_daily."}
	days := partDays(parts)
	byProduct := map[string]*activeValues{}
	tb := table{ID: "t-active", Caption: "active_users_daily",
		Head: []string{"dt", "product", "dau", "wau", "mau", "new_users", "returning_users", "stickiness", "mau_window_days"}}
	var firstDay day.Day // the first day of data, if in the range
	for i, x := range parts {
		for _, r := range x.Rows {
			if !keep(r.Product) {
				continue
			}
			v := byProduct[r.Product]
			if v == nil {
				v = &activeValues{nans(len(days)), nans(len(days)), nans(len(days)), nans(len(days)), nans(len(days)), make([]int64, len(days))}
				byProduct[r.Product] = v
			}
			v.set(i, &r)
			if r.MAUWindowDays == 1 {
				firstDay = x.Day
			}
			tb.Rows = append(tb.Rows, activeRow(x.Day, &r, prov))
		}
	}
	// A built day without a row for a product had nobody in 28 days: 0
	// (but a number not computed stays a gap).
	for _, v := range byProduct {
		for i := range days {
			if v.window[i] != 0 {
				continue
			}
			for _, sl := range [][]float64{v.dau, v.wau, v.mau, v.nw, v.ret} {
				sl[i] = 0
			}
		}
	}
	var partial []string
	for k, product := range sortedKeys(byProduct) {
		charts, short := byProduct[product].charts(k, product, days, xl, prov)
		s.Charts = append(s.Charts, charts...)
		if short {
			partial = append(partial, product)
		}
	}
	if len(byProduct) == 0 {
		s.Charts = append(s.Charts, timeChart{ID: "c-active-0", Title: "Active people", XLabel: xl}.render())
	}
	if len(partial) > 0 {
		s.Intro += " Start of data (rows in italics): mau_window_days says how many of the 28 days of the window have data; until it reaches 28 MAU counts a shorter history, and while it is under 7 WAU does too, so WAU and MAU can be equal (then drawn as one line)."
	}
	if firstDay != 0 {
		s.Intro += fmt.Sprintf(" %s is the first day of data: everyone active that day is new.", firstDay)
	}
	s.Intro += " An empty wau, mau or stickiness is not computed: a day of its window was never built."
	s.Tables = append(s.Tables, tb)
	return s
}

// activeValues are one product's active_users_daily numbers, by day of
// the report: NaN where not computed (or no row).
type activeValues struct {
	dau, wau, mau, nw, ret []float64
	window                 []int64 // mau_window_days; 0 where the product has no row
}

// set records r's numbers as those of day i.
func (v *activeValues) set(i int, r *rollups.ActiveUsersDaily) {
	v.dau[i], v.nw[i], v.ret[i] = float64(r.DAU), float64(r.NewUsers), float64(r.ReturningUsers)
	v.window[i] = r.MAUWindowDays
	if r.WAU != nil {
		v.wau[i] = float64(*r.WAU)
	}
	if r.MAU != nil {
		v.mau[i] = float64(*r.MAU)
	}
}

// charts returns product's two charts (the k-th product): active people,
// and new and returning people. short reports whether the MAU window has
// fewer than 28 days of data on some day; then, if WAU and MAU are equal
// on every day, they are drawn as one line.
func (v *activeValues) charts(k int, product string, days []day.Day, xl string, prov map[day.Day]string) (charts []chart, short bool) {
	same := true
	for i := range days {
		if v.window[i] != 0 && v.window[i] < rollups.MAUDays {
			short = true
		}
		if !math.IsNaN(v.wau[i]) && !math.IsNaN(v.mau[i]) && v.wau[i] != v.mau[i] {
			same = false
		}
	}
	ser := []series{{Name: "DAU (day)", Color: color(0), Values: v.dau}, {Name: "WAU (7 days)", Color: color(1), Values: v.wau}, {Name: "MAU (28 days)", Color: color(2), Values: v.mau}}
	if short && same {
		ser = []series{ser[0], {Name: "WAU = MAU (under 28 days of data)", Color: color(1), Values: v.wau}}
	}
	return []chart{
		timeChart{ID: fmt.Sprintf("c-active-%d", k), Title: "Active people: " + product, YLabel: "people", XLabel: xl, Days: days, Provisional: prov,
			Series: ser}.render(),
		timeChart{ID: fmt.Sprintf("c-newret-%d", k), Title: "New and returning people: " + product, YLabel: "people per day", XLabel: xl, Days: days, Stacked: true, Provisional: prov,
			Series: []series{{Name: "returning", Color: color(0), Values: v.ret}, {Name: "new", Color: color(1), Values: v.nw}}}.render(),
	}, short
}

// activeRow is r's row of the active_users_daily table, d its day: a
// number not computed is an empty cell that says so, and the start of
// data and provisional days (why from prov) are marked.
func activeRow(d day.Day, r *rollups.ActiveUsersDaily, prov map[day.Day]string) row {
	wau, mau, stick := cell{Num: true, Title: notComputed}, cell{Num: true, Title: notComputed}, cell{Num: true, Title: notComputed}
	if r.WAU != nil {
		wau = num(*r.WAU)
	}
	if r.MAU != nil {
		mau = num(*r.MAU)
	}
	if r.Stickiness != nil {
		stick = dec(*r.Stickiness, 3)
	}
	window := num(r.MAUWindowDays)
	if r.MAUWindowDays < rollups.MAUDays {
		window.Title = fmt.Sprintf("start of data: only %d of the 28 days of the MAU window have data", r.MAUWindowDays)
		mau.Title, stick.Title = window.Title, window.Title
	}
	rw := row{Cells: []cell{str(d.String()), str(r.Product), num(r.DAU), wau, mau, num(r.NewUsers), num(r.ReturningUsers), stick, window}}
	if r.MAUWindowDays < rollups.MAUDays {
		rw.Class = "start"
		rw.Cells[0].Title = window.Title
	}
	if r.MAUWindowDays == 1 {
		rw.Cells[0].Title = "first day of data: everyone is new"
	}
	if r.Provisional {
		why := prov[d]
		if why == "" {
			why = "provisional: a day of its 28-day window is provisional; late events may still change it"
		}
		rw = provisionalRow(rw, why)
	}
	return rw
}

func retentionSection(parts []partition[rollups.RetentionDaily], keep func(string) bool) section {
	s := section{ID: "retention", Title: "Retention by cohort",
		Intro: "Of the people first seen in a product on a day (the cohort), the share who used it again exactly 1, 7, 14 and 28 days later. Grey cells are days not reached (or not built) yet; a cell marked * is provisional (the cohort day or its return day may still get late events). On the first day of data everyone is new, so its cohort is everyone seen that day. From retention_daily."}
	cols := rollups.RetentionDays[:]
	head := []string{"dt", "product", "cohort_users"}
	for _, n := range cols {
		head = append(head, fmt.Sprintf("day %d retained", n), fmt.Sprintf("day %d %%", n))
	}
	tb := table{ID: "t-retention", Caption: "retention_daily (one row per cohort day and product)", Head: head}
	type cohort struct {
		d     day.Day
		size  int64
		cells []heatCell
	}
	byProduct := map[string][]*cohort{}
	for _, x := range parts {
		rows := map[string]*cohort{}
		var products []string
		for _, r := range x.Rows {
			if !keep(r.Product) {
				continue
			}
			c := rows[r.Product]
			if c == nil {
				c = &cohort{d: x.Day, cells: make([]heatCell, len(cols))}
				rows[r.Product] = c
				products = append(products, r.Product)
			}
			c.size = r.CohortUsers
			if j := slices.Index(cols, int(r.DayN)); j >= 0 {
				c.cells[j] = heatCell{Known: true, Retained: r.RetainedUsers, Cohort: r.CohortUsers, Rate: r.Retention, Provisional: r.Provisional}
			}
		}
		sort.Strings(products)
		for _, product := range products {
			c := rows[product]
			byProduct[product] = append(byProduct[product], c)
			cells := []cell{str(x.Day.String()), str(product), num(c.size)}
			for _, hc := range c.cells {
				if hc.Known {
					p := pct(hc.Rate)
					if hc.Provisional {
						p.Text += "*"
						p.Title = "provisional: the cohort day or its return day may still get late events"
					}
					cells = append(cells, num(hc.Retained), p)
				} else {
					cells = append(cells, cell{Num: true, Title: "not measured yet"}, cell{Num: true, Title: "not measured yet"})
				}
			}
			tb.Rows = append(tb.Rows, row{Cells: cells})
		}
	}
	for k, product := range sortedKeys(byProduct) {
		var ds []day.Day
		var sizes []int64
		var cells [][]heatCell
		for _, c := range byProduct[product] {
			ds, sizes, cells = append(ds, c.d), append(sizes, c.size), append(cells, c.cells)
		}
		s.Charts = append(s.Charts, heatMap(fmt.Sprintf("c-retention-%d", k), "Retention: "+product, ds, sizes, cols, cells))
	}
	if len(byProduct) == 0 {
		s.Charts = append(s.Charts, heatMap("c-retention-0", "Retention", nil, nil, cols, nil))
	}
	s.Tables = append(s.Tables, tb)
	return s
}

// topEvents is how many event names the events section ranks, and
// trendEvents how many of them it draws over time.
const (
	topEvents   = 10
	trendEvents = 5
)

func eventsSection(parts []partition[rollups.EngagementDaily], keep func(string) bool, xl string, prov map[day.Day]string) section {
	s := section{ID: "events", Title: "Top events",
		Intro: fmt.Sprintf("The %d most frequent event names over the range (all platforms), and the daily trend of the top %d. From engagement_daily.", topEvents, trendEvents)}
	days := partDays(parts)
	total := map[string]int64{}
	perDay := make([]map[string]int64, len(parts))
	dayTotal := make([]int64, len(parts))
	var all int64
	for i, x := range parts {
		perDay[i] = map[string]int64{}
		for _, r := range x.Rows {
			if !keep(r.Product) {
				continue
			}
			total[r.EventName] += r.Events
			perDay[i][r.EventName] += r.Events
			dayTotal[i] += r.Events
			all += r.Events
		}
	}
	names := sortedKeys(total)
	sort.SliceStable(names, func(i, j int) bool { return total[names[i]] > total[names[j]] })
	top := names[:min(len(names), topEvents)]
	var bars []hbar
	tb := table{ID: "t-top-events", Caption: "events per event_name over the range (sum of engagement_daily.events)", Head: []string{"event_name", "events", "share"}}
	for _, n := range top {
		bars = append(bars, hbar{Label: n, Value: float64(total[n])})
		tb.Rows = append(tb.Rows, row{Cells: []cell{str(n), num(total[n]), pct(float64(total[n]) / float64(max(all, 1)))}})
	}
	trend := top[:min(len(top), trendEvents)]
	var ser []series
	for k, n := range trend {
		v := make([]float64, len(days))
		for i := range days {
			v[i] = float64(perDay[i][n])
		}
		ser = append(ser, series{Name: n, Color: color(k), Values: v})
	}
	s.Charts = append(s.Charts,
		barChart("c-top-events", fmt.Sprintf("Top %d events, whole range", len(top)), "events in the range", bars),
		timeChart{ID: "c-event-trend", Title: fmt.Sprintf("Top %d events per day", len(trend)), YLabel: "events per day", XLabel: xl, Days: days, Series: ser, Provisional: prov}.render())
	tt := table{ID: "t-event-trend", Caption: "events per day (sum of engagement_daily.events)", Head: append([]string{"dt", "all events"}, trend...)}
	for i, d := range days {
		cells := []cell{str(d.String()), num(dayTotal[i])}
		for _, n := range trend {
			cells = append(cells, num(perDay[i][n]))
		}
		rw := row{Cells: cells}
		if why, ok := prov[d]; ok {
			rw = provisionalRow(rw, why)
		}
		tt.Rows = append(tt.Rows, rw)
	}
	s.Tables = append(s.Tables, tb, tt)
	return s
}

func sessionsSection(parts []partition[rollups.SessionsDaily], keep func(string) bool, xl string, prov map[day.Day]string) section {
	s := section{ID: "sessions", Title: "Sessions",
		Intro: "Sessions per day (a session is counted under the product and platform of its first event), the share that bounced (one event only), and the median (p50) and 90th percentile (p90) session length per platform. From sessions_daily."}
	days := partDays(parts)
	n := len(days)
	sessions, bounced := map[string][]float64{}, map[string][]float64{}
	p50, p90 := map[string]map[string][]float64{}, map[string]map[string][]float64{}
	platforms := map[string]bool{}
	tb := table{ID: "t-sessions", Caption: "sessions_daily", Head: []string{"dt", "product", "platform", "sessions", "bounced_sessions", "bounce rate",
		"avg_session_seconds", "p50_session_seconds", "p90_session_seconds", "events_per_session"}}
	for i, x := range parts {
		for _, r := range x.Rows {
			if !keep(r.Product) {
				continue
			}
			if sessions[r.Product] == nil {
				sessions[r.Product], bounced[r.Product] = make([]float64, n), make([]float64, n)
				p50[r.Product], p90[r.Product] = map[string][]float64{}, map[string][]float64{}
			}
			if p50[r.Product][r.Platform] == nil {
				p50[r.Product][r.Platform], p90[r.Product][r.Platform] = nans(n), nans(n)
			}
			platforms[r.Platform] = true
			sessions[r.Product][i] += float64(r.Sessions)
			bounced[r.Product][i] += float64(r.BouncedSessions)
			p50[r.Product][r.Platform][i], p90[r.Product][r.Platform][i] = r.P50SessionSeconds, r.P90SessionSeconds
			rate := 0.0
			if r.Sessions > 0 {
				rate = float64(r.BouncedSessions) / float64(r.Sessions)
			}
			rw := row{Cells: []cell{str(x.Day.String()), str(r.Product), str(r.Platform), num(r.Sessions), num(r.BouncedSessions), pct(rate),
				dec(r.AvgSessionSeconds, 1), dec(r.P50SessionSeconds, 1), dec(r.P90SessionSeconds, 1), dec(r.EventsPerSession, 2)}}
			if why, ok := prov[x.Day]; ok {
				rw = provisionalRow(rw, why)
			}
			tb.Rows = append(tb.Rows, rw)
		}
	}
	products := sortedKeys(sessions)
	var count, rate []series
	for k, product := range products {
		r := make([]float64, n)
		for i := range r {
			r[i] = math.NaN()
			if sessions[product][i] > 0 {
				r[i] = bounced[product][i] / sessions[product][i]
			}
		}
		count = append(count, series{Name: product, Color: color(k), Values: sessions[product]})
		rate = append(rate, series{Name: product, Color: color(k), Values: r})
	}
	s.Charts = append(s.Charts,
		timeChart{ID: "c-sessions", Title: "Sessions per day", YLabel: "sessions", XLabel: xl, Days: days, Series: count, Provisional: prov}.render(),
		timeChart{ID: "c-bounce", Title: "Bounce rate", YLabel: "% of sessions with one event", XLabel: xl, Days: days, Series: rate, Percent: true, Provisional: prov}.render())
	platformColor := map[string]string{}
	for k, pl := range sortedKeys(platforms) {
		platformColor[pl] = color(k)
	}
	// p50 and p90 apart: on one axis the longest p90 flattens every p50.
	for k, product := range products {
		var s50, s90 []series
		for _, pl := range sortedKeys(p50[product]) {
			s50 = append(s50, series{Name: pl, Color: platformColor[pl], Values: p50[product][pl]})
			s90 = append(s90, series{Name: pl, Color: platformColor[pl], Values: p90[product][pl]})
		}
		s.Charts = append(s.Charts,
			timeChart{ID: fmt.Sprintf("c-p50-%d", k), Title: "Median session length (p50): " + product, YLabel: "seconds", XLabel: xl, Days: days, Series: s50, Provisional: prov}.render(),
			timeChart{ID: fmt.Sprintf("c-p90-%d", k), Title: "Long sessions (p90 length): " + product, YLabel: "seconds", XLabel: xl, Days: days, Series: s90, Provisional: prov}.render())
	}
	s.Tables = append(s.Tables, tb)
	return s
}

// qualityColumns are data_quality_daily's columns, from the struct (so
// columns added to it appear in the report without a change here).
func qualityColumns() (names []string, idx []int) {
	t := reflect.TypeFor[rollups.DataQualityDaily]()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("parquet"), ",")
		switch t.Field(i).Type.Kind() {
		case reflect.Int64, reflect.Bool, reflect.Float64, reflect.String:
			names, idx = append(names, name), append(idx, i)
		}
	}
	return names, idx
}

func qualitySection(parts []partition[rollups.DataQualityDaily], xl string, prov map[day.Day]string) section {
	s := section{ID: "quality", Title: "Data quality",
		Intro: "What came in each day (all products) and what became of it: raw rows = kept + duplicates dropped + invalid (quarantined). Late rows arrived after their day ended. Clock-skewed rows carried an event_time too far from received_at and were counted at received_at; rows without an event_time (normal for server-side events) were counted at received_at too, and are not a problem (missing_event_time_rows, in the table). Bad files and conversion failures are raw objects and Firehose records that could not be read. A restated day was published before and its numbers changed. From data_quality_daily."}
	days := partDays(parts)
	n := len(days)
	get := func(f func(r rollups.DataQualityDaily) int64) []float64 {
		v := nans(n)
		for i, x := range parts {
			v[i] = 0
			for _, r := range x.Rows {
				v[i] += float64(f(r))
			}
		}
		return v
	}
	s.Charts = append(s.Charts,
		timeChart{ID: "c-quality-rows", Title: "Raw rows per day, and what became of them", YLabel: "rows", XLabel: xl, Days: days, Stacked: true, Provisional: prov, Series: []series{
			{Name: "kept", Color: color(2), Values: get(func(r rollups.DataQualityDaily) int64 { return r.KeptRows })},
			{Name: "duplicates dropped", Color: color(1), Values: get(func(r rollups.DataQualityDaily) int64 { return r.DuplicatesDropped })},
			{Name: "invalid", Color: color(3), Values: get(func(r rollups.DataQualityDaily) int64 { return r.InvalidRows })},
		}}.render(),
		timeChart{ID: "c-quality-problems", Title: "Rows needing attention", YLabel: "rows", XLabel: xl, Days: days, Provisional: prov, Series: []series{
			{Name: "duplicates", Color: color(1), Values: get(func(r rollups.DataQualityDaily) int64 { return r.DuplicatesDropped })},
			{Name: "invalid", Color: color(3), Values: get(func(r rollups.DataQualityDaily) int64 { return r.InvalidRows })},
			{Name: "late", Color: color(0), Values: get(func(r rollups.DataQualityDaily) int64 { return r.LateRows })},
			{Name: "clock-skewed", Color: color(4), Values: get(func(r rollups.DataQualityDaily) int64 { return r.ClockSkewedRows })},
		}}.render(),
		timeChart{ID: "c-quality-bad", Title: "Unreadable input", YLabel: "files / records", XLabel: xl, Days: days, Grouped: true, Provisional: prov, Series: []series{
			{Name: "bad files", Color: color(3), Values: get(func(r rollups.DataQualityDaily) int64 { return r.BadFiles })},
			{Name: "conversion failures (records)", Color: color(6), Values: get(func(r rollups.DataQualityDaily) int64 { return r.ConversionFailedRecords })},
		}}.render(),
	)
	names, idx := qualityColumns()
	tb := table{ID: "t-quality", Caption: "data_quality_daily", Head: append([]string{"dt"}, names...)}
	var restated []string
	for _, x := range parts {
		for _, r := range x.Rows {
			rv := reflect.ValueOf(r)
			cells := []cell{str(x.Day.String())}
			for _, i := range idx {
				f := rv.Field(i)
				switch f.Kind() {
				case reflect.Int64:
					cells = append(cells, num(f.Int()))
				case reflect.Float64:
					cells = append(cells, dec(f.Float(), 3))
				case reflect.Bool:
					c := cell{}
					if f.Bool() {
						c.Text = "yes"
					}
					cells = append(cells, c)
				default:
					cells = append(cells, str(f.String()))
				}
			}
			rw := row{Cells: cells}
			if r.Provisional {
				rw = provisionalRow(rw, prov[x.Day])
			}
			if r.Restated {
				rw.Class = "restated"
				restated = append(restated, x.Day.String())
			}
			tb.Rows = append(tb.Rows, rw)
		}
	}
	if len(restated) > 0 {
		s.Intro += " Restated days (highlighted): " + strings.Join(restated, ", ") + "."
	} else if n > 0 {
		s.Intro += " No day in this range has been restated."
	}
	s.Tables = append(s.Tables, tb)
	return s
}

// reportTables are the tables the report reads, in the order of its
// partition table.
var reportTables = []string{"active_users_daily", "retention_daily", "lifecycle_daily", "stickiness_daily", "funnel_daily", "engagement_daily", "paths_daily", "sessions_daily", "data_quality_daily"}

func buildsSection(days []day.Day, builds map[day.Day]map[string]*publish.Manifest) section {
	s := section{ID: "partitions", Title: "Partitions this report was read from",
		Intro: "When each partition's current run was published (manifest created_at, UTC). Hover a time for the run id and row count. A blank cell: no partition that day. retention_daily's day is the cohort day."}
	tb := table{ID: "t-partitions", Caption: "current manifests", Head: append([]string{"dt"}, reportTables...)}
	for _, d := range days {
		cells := []cell{str(d.String())}
		for _, name := range reportTables {
			m := builds[d][name]
			if m == nil {
				cells = append(cells, cell{})
				continue
			}
			cells = append(cells, cell{Text: m.CreatedAt.UTC().Format("2006-01-02 15:04:05Z"),
				Title: fmt.Sprintf("run %s: %d rows in %d files, zone %s", m.Run, m.Rows, len(m.Files), m.TimeZone)})
		}
		tb.Rows = append(tb.Rows, row{Cells: cells})
	}
	s.Tables = append(s.Tables, tb)
	return s
}
