package report

import (
	"context"
	"fmt"
	"html"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// wantPair is one pair of a product over the range, summed from the
// curated rows.
type wantPair struct {
	from, to    string
	transitions int64
	days, prov  int
	inOther     int // the product's days with an (other) row and no row of this pair
}

// wantProduct is one product over the range, summed from the curated rows.
type wantProduct struct {
	total, other              int64
	days, otherDays, provDays int
	pairs                     []*wantPair // ranked as the section must
}

// pathsPage is a rendered page to check against the curated paths_daily
// rows that keep keeps.
type pathsPage struct {
	page   string
	tables map[string]htmlTable
	cur    map[day.Day][]rollups.PathsDaily
	keep   func(string) bool
	want   map[string]*wantProduct
}

// isOther says whether r is a product's (other) row of a day.
func isOther(r rollups.PathsDaily) bool {
	return r.IsOther
}

// wantPaths sums the curated rows that keep keeps as the section must.
func wantPaths(cur map[day.Day][]rollups.PathsDaily, keep func(string) bool) map[string]*wantProduct {
	out := map[string]*wantProduct{}
	pairs := map[string]map[string]*wantPair{}
	pairDays := map[string]map[day.Day]bool{}
	otherDays := map[string][]day.Day{}
	for d, rs := range cur {
		dayOf := map[string]bool{}
		for _, r := range rs {
			if !keep(r.Product) {
				continue
			}
			w := out[r.Product]
			if w == nil {
				w, pairs[r.Product] = &wantProduct{}, map[string]*wantPair{}
				out[r.Product] = w
			}
			if !dayOf[r.Product] {
				dayOf[r.Product] = true
				w.days++
				if r.Provisional {
					w.provDays++
				}
			}
			w.total += r.Transitions
			if isOther(r) {
				w.other += r.Transitions
				w.otherDays++
				otherDays[r.Product] = append(otherDays[r.Product], d)
				continue
			}
			k := r.FromEvent + "\x00" + r.ToEvent
			p := pairs[r.Product][k]
			if p == nil {
				p = &wantPair{from: r.FromEvent, to: r.ToEvent}
				pairs[r.Product][k] = p
			}
			p.transitions += r.Transitions
			p.days++
			if r.Provisional {
				p.prov++
			}
			if pairDays[r.Product+"\x00"+k] == nil {
				pairDays[r.Product+"\x00"+k] = map[day.Day]bool{}
			}
			pairDays[r.Product+"\x00"+k][d] = true
		}
	}
	for product, w := range out {
		for k, p := range pairs[product] {
			for _, d := range otherDays[product] {
				if !pairDays[product+"\x00"+k][d] {
					p.inOther++
				}
			}
			w.pairs = append(w.pairs, p)
		}
		sort.Slice(w.pairs, func(i, j int) bool {
			a, b := w.pairs[i], w.pairs[j]
			if a.transitions != b.transitions {
				return a.transitions > b.transitions
			}
			if a.from != b.from {
				return a.from < b.from
			}
			return a.to < b.to
		})
		w.pairs = w.pairs[:min(len(w.pairs), topPaths)]
	}
	return out
}

// checkPathsPage renders st's report for product and checks the paths
// section against the curated paths_daily; it returns how many (other)
// rows it checked.
func checkPathsPage(t *testing.T, st store.Store, product string) (others int) {
	cur := curated[rollups.PathsDaily](t, st, "paths_daily")
	page := render(t, st, Options{Product: product})
	pp := &pathsPage{page: page, tables: tablesOf(t, page), cur: cur, keep: func(p string) bool { return product == "" || p == product }}
	pp.want = wantPaths(cur, pp.keep)
	if len(pp.want) == 0 {
		t.Fatalf("fixture: no paths_daily rows for product %q", product)
	}
	for _, w := range pp.want {
		others += w.otherDays
	}
	t.Run(fmt.Sprintf("product %q: totals per product", product), pp.checkProducts)
	t.Run(fmt.Sprintf("product %q: top pairs over the range", product), pp.checkTop)
	t.Run(fmt.Sprintf("product %q: paths_daily row for row", product), pp.checkDaily)
	t.Run(fmt.Sprintf("product %q: charts", product), pp.checkCharts)
	t.Run(fmt.Sprintf("product %q: notes", product), pp.checkNotes)
	return others
}

// TestPathsEqualCuratedRows: the paths section's totals, top pairs (in
// tables and charts) and per-day rows are those of the curated paths_daily
// of the test warehouse, for all products and for one.
func TestPathsEqualCuratedRows(t *testing.T) {
	t.Parallel()
	st := warehouse(t)
	for _, product := range []string{"", "shop"} {
		checkPathsPage(t, st, product)
	}
}

func (pp *pathsPage) checkProducts(t *testing.T) {
	rows, keys := pp.tables["t-paths-products"].byKey(t, 1)
	if len(keys) != len(pp.want) {
		t.Errorf("page has %d products, curated table %d", len(keys), len(pp.want))
	}
	for product, w := range pp.want {
		got := rows[product]
		if got == nil {
			t.Errorf("no row for product %q", product)
			continue
		}
		checkInt(t, product+" transitions", got["transitions"], w.total)
		checkInt(t, product+" (other) transitions", got["(other) transitions"], w.other)
		checkFloat(t, product+" (other) share", got["(other) share"], float64(w.other)/float64(w.total), 100)
		checkInt(t, product+" days", got["days"], int64(w.days))
		checkInt(t, product+" days with (other)", got["days with (other)"], int64(w.otherDays))
		checkInt(t, product+" provisional days", got["provisional days"], int64(w.provDays))
		n := map[string]bool{}
		for _, rs := range pp.cur {
			for _, r := range rs {
				if r.Product == product && !isOther(r) {
					n[r.FromEvent+"\x00"+r.ToEvent] = true
				}
			}
		}
		checkInt(t, product+" pairs", got["pairs"], int64(len(n)))
	}
}

func (pp *pathsPage) checkTop(t *testing.T) {
	rows, keys := pp.tables["t-paths"].byKey(t, 2)
	n := 0
	for product, w := range pp.want {
		for j, p := range w.pairs {
			n++
			k := fmt.Sprintf("%s|%d", product, j+1)
			got := rows[k]
			if got == nil {
				t.Errorf("no row %s", k)
				continue
			}
			if got["from_event"] != p.from || got["to_event"] != p.to {
				t.Errorf("%s: page shows %s → %s, curated ranking has %s → %s", k, got["from_event"], got["to_event"], p.from, p.to)
			}
			if p.from == rollups.Other {
				t.Errorf("%s: (other) ranked as a pair", k)
			}
			checkInt(t, k+" transitions", got["transitions"], p.transitions)
			checkFloat(t, k+" share", got["share"], float64(p.transitions)/float64(w.total), 100)
			checkInt(t, k+" days", got["days"], int64(p.days))
			checkInt(t, k+" days possibly in (other)", got["days possibly in (other)"], int64(p.inOther))
			checkInt(t, k+" provisional days", got["provisional days"], int64(p.prov))
		}
	}
	if n == 0 || len(keys) != n {
		t.Errorf("page has %d rows, curated table %d (product, rank)", len(keys), n)
	}
}

func (pp *pathsPage) checkDaily(t *testing.T) {
	rows, keys := pp.tables["t-paths-daily"].byKey(t, 4)
	classes := rowClasses(t, pp.page, "t-paths-daily", 4)
	n, other := 0, 0
	for d, rs := range pp.cur {
		for _, r := range rs {
			w := pp.want[r.Product]
			if !pp.keep(r.Product) || w == nil {
				continue
			}
			shown := isOther(r) || slices.ContainsFunc(w.pairs, func(p *wantPair) bool { return p.from == r.FromEvent && p.to == r.ToEvent })
			k := fmt.Sprintf("%s|%s|%s|%s", d, r.Product, r.FromEvent, r.ToEvent)
			got := rows[k]
			if !shown {
				if got != nil {
					t.Errorf("row %s is of no top pair", k)
				}
				continue
			}
			n++
			if isOther(r) {
				other++
			}
			if got == nil {
				t.Errorf("no row %s", k)
				continue
			}
			checkInt(t, k+" transitions", got["transitions"], r.Transitions)
			checkInt(t, k+" people", got["people"], r.People)
			if grey := strings.Contains(classes[k], "provisional"); grey != r.Provisional {
				t.Errorf("%s: row class %q, curated provisional %v", k, classes[k], r.Provisional)
			}
		}
	}
	if n == 0 || len(keys) != n {
		t.Errorf("page has %d rows, curated table %d (rows of top pairs and (other))", len(keys), n)
	}
	t.Logf("%d rows, %d of them (other)", n, other)
}

func (pp *pathsPage) checkCharts(t *testing.T) {
	charts := regexp.MustCompile(`(?s)<svg id="c-paths-\d+" class="chart"[^>]*aria-label="([^"]*)">(.*?)</svg>`).FindAllStringSubmatch(pp.page, -1)
	if len(charts) != len(pp.want) {
		t.Errorf("%d paths charts, want one per product: %d", len(charts), len(pp.want))
	}
	for _, c := range charts {
		title := html.UnescapeString(c[1])
		product := strings.TrimPrefix(strings.TrimSuffix(title, " (provisional)"), "Top paths: ")
		w := pp.want[product]
		if w == nil {
			t.Errorf("chart %q is of no product of paths_daily", title)
			continue
		}
		if provisional := w.provDays > 0; provisional != strings.HasSuffix(title, " (provisional)") {
			t.Errorf("chart %q: provisional days %d", title, w.provDays)
		}
		body := html.UnescapeString(c[2])
		if got, want := strings.Count(body, `class="mark"`), len(w.pairs); got != want {
			t.Errorf("chart %q: %d bars, want %d", title, got, want)
		}
		if strings.Contains(body, rollups.Other+" → ") {
			t.Errorf("chart %q draws (other) as a pair", title)
		}
		for _, p := range w.pairs {
			label, nums := p.from+" → "+p.to, fmt.Sprintf("%s · %.1f%%", thousands(p.transitions), float64(p.transitions)/float64(w.total)*100)
			if !strings.Contains(body, ">"+label+"<") || !strings.Contains(body, ">"+nums+"<") {
				t.Errorf("chart %q: no label %q or numbers %q", title, label, nums)
			}
		}
		foot := fmt.Sprintf("transitions · %% of %s in all · %d days", thousands(w.total), w.days)
		if w.other > 0 {
			foot += fmt.Sprintf(" · %s in (other), not drawn", thousands(w.other))
		}
		if !strings.Contains(body, ">"+foot+"<") {
			t.Errorf("chart %q: no footer %q", title, foot)
		}
	}
}

func (pp *pathsPage) checkNotes(t *testing.T) {
	m := regexp.MustCompile(`(?s)<section id="paths">.*?<p class="intro">(.*?)</p>`).FindStringSubmatch(pp.page)
	if m == nil {
		t.Fatal("no paths section")
	}
	intro := html.UnescapeString(m[1])
	var other, total int64
	n, all := 0, 0
	days := map[day.Day]bool{}
	var open []day.Day
	for d, rs := range pp.cur {
		for _, r := range rs {
			if !pp.keep(r.Product) {
				continue
			}
			days[d] = true
			if r.Provisional && !slices.Contains(open, d) {
				open = append(open, d)
			}
		}
	}
	for _, w := range pp.want {
		other, total, n, all = other+w.other, total+w.total, n+w.otherDays, all+w.days
	}
	note := fmt.Sprintf("No product had more than %d pairs on a day in this range", rollups.PathsTop)
	if n > 0 {
		note = fmt.Sprintf("In this range %s of the %s transitions (%.1f%%) fell outside their day's top %d pairs (the (other) rows, on %d of the %d days with rows, counted per product)",
			thousands(other), thousands(total), 100*float64(other)/float64(total), rollups.PathsTop, n, all)
	}
	if !strings.Contains(intro, note) {
		t.Errorf("the intro does not say %q:\n%s", note, intro)
	}
	for _, want := range []string{"People are not summed", "lower bound"} {
		if !strings.Contains(intro, want) {
			t.Errorf("the intro does not say %q", want)
		}
	}
	slices.Sort(open)
	if len(open) > 0 {
		if note := fmt.Sprintf("%d of the %d days shown are provisional (%s;", len(open), len(days), dayList(open)); !strings.Contains(intro, note) {
			t.Errorf("the intro does not say %q", note)
		}
	}
}

// TestPathsOtherRows: a warehouse built by the real job from events with
// more than rollups.PathsTop pairs of one product on both its days, the
// pairs ranked differently each day (so some pair is in the top on one day
// and in (other) on the other), and a second product with few pairs: the
// section equals the curated rows, (other) included.
func TestPathsOtherRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	d1, d2 := fixFrom, fixFrom+1
	var raw []event.Raw
	add := func(d day.Day, product, user, from, to string) {
		at := d.UTC().Add(10 * time.Hour)
		for k, name := range []string{from, to} {
			raw = append(raw, event.Raw{EventID: fmt.Sprintf("%s-%s-%d", d, user, k), EventTime: at.Add(time.Duration(k) * time.Minute),
				ReceivedAt: at.Add(time.Hour), EventName: name, UserID: user, Product: product, Platform: "web"})
		}
	}
	// Pair i of the shop is a%02d → b%02d; on d1 the pairs 0..259 occur
	// 1 + i%5 times, on d2 the pairs 40..279 occur 1 + (i+2)%5 times;
	// a13 → b18 (pair 278) also 50 times on d1.
	for _, x := range []struct {
		d          day.Day
		lo, hi, sh int
	}{{d1, 0, 260, 0}, {d2, 40, 280, 2}} {
		for i := x.lo; i < x.hi; i++ {
			for j := 0; j < 1+(i+x.sh)%5; j++ {
				add(x.d, "shop", fmt.Sprintf("u%d-%d", i, j), fmt.Sprintf("a%02d", i/20), fmt.Sprintf("b%02d", i%20))
			}
		}
		if x.d == d1 { // the range's top pair; on d2 it is past the top 200 (once, late in byte order)
			for j := 0; j < 50; j++ {
				add(x.d, "shop", fmt.Sprintf("v%d", j), "a13", "b18")
			}
		}
		for j := 0; j < 3; j++ {
			add(x.d, "blog", fmt.Sprintf("r%d", j), "open", fmt.Sprintf("read%d", j%2))
		}
	}
	for _, d := range []day.Day{d1, d2} { // each day's events in a file of its own arrival hour
		var rows []event.Raw
		for _, r := range raw {
			if day.Of(r.EventTime.UnixMilli(), time.UTC) == d {
				rows = append(rows, r)
			}
		}
		w, err := st.NewWriter(ctx, "raw/"+d.UTC().Add(11*time.Hour).Format("2006/01/02/15")+"/events-1")
		if err != nil {
			t.Fatal(err)
		}
		if err := parquet.Write(w, rows); err != nil {
			w.Abort()
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := job.Run(ctx, job.Config{Store: st, From: d1, To: d2, Rules: compact.DefaultRules(time.UTC), Now: builtAt}); err != nil {
		t.Fatal(err)
	}
	// The data must make what the section tells apart: (other) rows, and a
	// top pair that is in (other) on a day.
	want := wantPaths(curated[rollups.PathsDaily](t, st, "paths_daily"), func(string) bool { return true })
	if want["shop"] == nil || want["shop"].otherDays != 2 || want["blog"] == nil || want["blog"].otherDays != 0 {
		for p, w := range want {
			t.Logf("%s: %+v", p, *w)
		}
		t.Fatalf("fixture: want (other) rows for shop on both days and none for blog")
	}
	inOther := 0
	for _, p := range want["shop"].pairs {
		inOther += p.inOther
	}
	if inOther == 0 {
		t.Errorf("fixture: no top pair of the range is in (other) on a day")
	}
	for _, product := range []string{"", "shop", "blog"} {
		checkPathsPage(t, st, product)
	}
}

// TestPathsWithoutRows: a store with no paths_daily rows gets a section
// that says where paths come from, not an empty chart; with only another
// product's rows it says so.
func TestPathsWithoutRows(t *testing.T) {
	t.Parallel()
	st := store.NewMem()
	d := day.FromDate(2026, 11, 20)
	commit(t, st, "active_users_daily", d, "01A", []rollups.ActiveUsersDaily{{Product: "shop", DAU: 3}})
	commit(t, st, "paths_daily", d, "01A", []rollups.PathsDaily{})
	section := func(page string) string {
		m := regexp.MustCompile(`(?s)<section id="paths">(.*?)</section>`).FindStringSubmatch(page)
		if m == nil {
			t.Fatal("no paths section")
		}
		return m[1]
	}
	s := section(render(t, st, Options{}))
	if !strings.Contains(s, "No paths_daily rows in this range: paths come from sessions with at least two events") {
		t.Errorf("the section does not say where paths come from:\n%s", s)
	}
	if strings.Contains(s, "<svg") || strings.Contains(s, "<table") {
		t.Errorf("the section has a chart or table without rows:\n%s", s)
	}
	commit(t, st, "paths_daily", d+1, "01B", []rollups.PathsDaily{{Product: "blog", FromEvent: "a", ToEvent: "b", Transitions: 2, People: 1}})
	if s := section(render(t, st, Options{Product: "shop"})); !strings.Contains(s, "No paths_daily rows for this product in this range") {
		t.Errorf("with another product's rows only, the section does not say so:\n%s", s)
	}
}

// TestPathsChartLongLabel: a pair too long for its line is cut with an
// ellipsis before it reaches its numbers.
func TestPathsChartLongLabel(t *testing.T) {
	long := strings.Repeat("checkout_confirmation_", 4)
	p := &pathSum{product: "shop", total: 3_000_000, days: 1, pairs: []*pathPair{
		{from: long, to: long, transitions: 2_000_000, days: map[day.Day]bool{1: false}},
	}}
	c := pathsChart("c-paths-0", p)
	var label, nums *svgText
	for i := range c.Texts {
		switch {
		case strings.HasPrefix(c.Texts[i].Text, "checkout"):
			label = &c.Texts[i]
		case strings.HasPrefix(c.Texts[i].Text, "2,000,000"):
			nums = &c.Texts[i]
		}
	}
	if label == nil || nums == nil {
		t.Fatalf("no label or numbers in %+v", c.Texts)
	}
	if want := "2,000,000 · 66.7%"; nums.Text != want {
		t.Errorf("numbers %q, want %q", nums.Text, want)
	}
	if !strings.HasSuffix(label.Text, "…") {
		t.Errorf("label %q is not cut", label.Text)
	}
	if end, start := label.X+7*float64(len([]rune(label.Text))), nums.X-6.5*float64(len([]rune(nums.Text))); end > start {
		t.Errorf("label %q (to about x=%.0f) runs into the numbers %q (from about x=%.0f)", label.Text, end, nums.Text, start)
	}
}
