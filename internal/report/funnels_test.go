package report

import (
	"fmt"
	"html"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// fixtureFunnels are the test warehouse's funnels: those of
// examples/funnels.json, and one with a window so short that on some
// days nobody reaches its second step (a null median_seconds).
const fixtureFunnels = `{"funnels": [
  {"name": "checkout", "window": "24h",
   "steps": [{"event": "view_item"}, {"event": "add_to_cart"}, {"event": "begin_checkout"}, {"event": "purchase"}]},
  {"name": "product_to_cart", "window": "30m",
   "steps": [{"event": "screen_view", "property": "screen", "equals": "product"}, {"event": "add_to_cart"}]},
  {"name": "quick_purchase", "window": "1m",
   "steps": [{"event": "search"}, {"event": "purchase"}]}
]}`

// funnelKey names a (funnel, product) over the range.
func funnelKey(r rollups.FunnelDaily) string { return r.Funnel + "|" + r.Product }

// rowClasses returns the class of each row of the page's table id, by its
// first n cells joined with "|".
func rowClasses(t *testing.T, page, id string, n int) map[string]string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<table id="` + id + `">(.*?)</table>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no table %s", id)
	}
	out := map[string]string{}
	for _, r := range regexp.MustCompile(`(?s)<tr(?: class="([^"]*)")?>(.*?)</tr>`).FindAllStringSubmatch(m[1], -1) {
		var cells []string
		for _, c := range regexp.MustCompile(`(?s)<td[^>]*>(.*?)</td>`).FindAllStringSubmatch(r[2], -1) {
			cells = append(cells, html.UnescapeString(c[1]))
		}
		if len(cells) >= n {
			out[strings.Join(cells[:n], "|")] = r[1]
		}
	}
	return out
}

// wantStep is one step of a funnel and product over the range, summed
// from the curated rows: the people over the entry days, the lowest and
// highest daily median, the entry days and the provisional ones.
type wantStep struct {
	name         string
	people       int64
	lo, hi       *float64
	days, provis int
}

// sumCurated adds up funnel_daily's rows that keep keeps as the section
// must, by "funnel|product", then step.
func sumCurated(rows map[day.Day][]rollups.FunnelDaily, keep func(string) bool) map[string][]*wantStep {
	out := map[string][]*wantStep{}
	for _, rs := range rows {
		for _, r := range rs {
			if !keep(r.Product) {
				continue
			}
			k := funnelKey(r)
			for int64(len(out[k])) < r.Step {
				out[k] = append(out[k], &wantStep{})
			}
			w := out[k][r.Step-1]
			w.name = r.StepName
			w.people += r.People
			w.days++
			if r.Provisional {
				w.provis++
			}
			if m := r.MedianSeconds; m != nil {
				if w.lo == nil || *m < *w.lo {
					w.lo = m
				}
				if w.hi == nil || *m > *w.hi {
					w.hi = m
				}
			}
		}
	}
	return out
}

// timeText is what the section shows for a step's daily medians.
func (w *wantStep) timeText() string {
	switch {
	case w.lo == nil:
		return "—"
	case duration(*w.lo) == duration(*w.hi):
		return duration(*w.lo)
	}
	return duration(*w.lo) + " – " + duration(*w.hi)
}

// funnelPage is a rendered page to check against the curated funnel_daily
// rows that keep keeps.
type funnelPage struct {
	page   string
	tables map[string]htmlTable
	cur    map[day.Day][]rollups.FunnelDaily
	keep   func(string) bool
}

// TestFunnelsEqualCuratedRows: the funnels section lists funnel_daily row
// for row (provisional rows grey, saying why), names its provisional
// entry days, and its sums over the range, in the table and in the
// charts, are those of the curated rows; for all products and for one.
func TestFunnelsEqualCuratedRows(t *testing.T) {
	t.Parallel()
	st := warehouse(t)
	cur := curated[rollups.FunnelDaily](t, st, "funnel_daily")
	for _, product := range []string{"", "shop"} {
		page := render(t, st, Options{Product: product})
		fp := &funnelPage{page: page, tables: tablesOf(t, page), cur: cur, keep: func(p string) bool { return product == "" || p == product }}
		want := sumCurated(cur, fp.keep)
		t.Run(fmt.Sprintf("product %q: funnel_daily row for row", product), fp.checkRows)
		t.Run(fmt.Sprintf("product %q: the provisional entry days are named", product), fp.checkNote)
		t.Run(fmt.Sprintf("product %q: sums over the range", product), func(t *testing.T) { fp.checkSums(t, want) })
		t.Run(fmt.Sprintf("product %q: charts", product), func(t *testing.T) { fp.checkCharts(t, want) })
	}
}

func (fp *funnelPage) checkRows(t *testing.T) {
	rows, keys := fp.tables["t-funnel-daily"].byKey(t, 4)
	classes := rowClasses(t, fp.page, "t-funnel-daily", 4)
	n, null, provFinal, final := 0, 0, 0, 0
	for d, rs := range fp.cur {
		for _, r := range rs {
			if !fp.keep(r.Product) {
				continue
			}
			n++
			k := fmt.Sprintf("%s|%s|%s|%d", d, r.Product, r.Funnel, r.Step)
			got := rows[k]
			if got == nil {
				t.Errorf("no row %s", k)
				continue
			}
			if got["step_name"] != r.StepName {
				t.Errorf("%s step_name: page shows %q, curated table has %q", k, got["step_name"], r.StepName)
			}
			checkInt(t, k+" people", got["people"], r.People)
			checkFloat(t, k+" conversion", got["conversion"], r.Conversion, 100)
			checkInt(t, k+" window_seconds", got["window_seconds"], r.WindowSeconds)
			if r.MedianSeconds == nil {
				null++
				if got["median_seconds"] != "" || got["median from step 1"] != "—" {
					t.Errorf("%s median: page shows %q and %q, curated table has null", k, got["median_seconds"], got["median from step 1"])
				}
			} else {
				checkFloat(t, k+" median_seconds", got["median_seconds"], *r.MedianSeconds, 1)
				if want := duration(*r.MedianSeconds); got["median from step 1"] != want {
					t.Errorf("%s median from step 1: page shows %q, want %q (%v s)", k, got["median from step 1"], want, *r.MedianSeconds)
				}
			}
			if grey := strings.Contains(classes[k], "provisional"); grey != r.Provisional {
				t.Errorf("%s: row class %q, curated provisional %v", k, classes[k], r.Provisional)
			}
			switch {
			case !r.Provisional:
				final++
			case d == fixFrom+1: // a final entry day whose window reaches a provisional day
				provFinal++
			}
		}
	}
	if n == 0 || len(keys) != n {
		t.Errorf("page has %d rows, curated table %d", len(keys), n)
	}
	t.Logf("%d rows: %d with a null median, %d provisional of a final entry day, %d final", n, null, provFinal, final)
	if tip := `<td title="` + html.EscapeString(funnelProvisional) + `">` + (fixFrom + 1).String() + `</td>`; provFinal > 0 && !strings.Contains(fp.page, tip) {
		t.Errorf("a provisional row of a final entry day does not say why: no %s", tip)
	}
	// The fixture must exercise what the section distinguishes.
	if null == 0 || provFinal == 0 || final == 0 {
		t.Errorf("fixture: %d rows with a null median, %d provisional rows of a final entry day, %d final rows: want some of each", null, provFinal, final)
	}
}

func (fp *funnelPage) checkNote(t *testing.T) {
	days := map[day.Day]bool{}
	var open []day.Day
	for d, rs := range fp.cur {
		for _, r := range rs {
			if fp.keep(r.Product) {
				days[d] = true
				if r.Provisional && !slices.Contains(open, d) {
					open = append(open, d)
				}
			}
		}
	}
	slices.Sort(open)
	note := fmt.Sprintf("%d of the %d entry days shown are provisional (%s; grey rows", len(open), len(days), dayList(open))
	if len(open) == 0 || len(open) == len(days) || !strings.Contains(fp.page, note) {
		t.Errorf("no note %q (or the fixture has no final or no provisional entry day)", note)
	}
}

func (fp *funnelPage) checkSums(t *testing.T, want map[string][]*wantStep) {
	rows, keys := fp.tables["t-funnels"].byKey(t, 3)
	n := 0
	for fk, steps := range want {
		for j, w := range steps {
			n++
			k := fmt.Sprintf("%s|%d", fk, j+1)
			got := rows[k]
			if got == nil {
				t.Errorf("no row %s", k)
				continue
			}
			checkInt(t, k+" people", got["people"], w.people)
			checkFloat(t, k+" conversion", got["conversion"], float64(w.people)/float64(steps[0].people), 100)
			checkInt(t, k+" entry days", got["entry days"], int64(w.days))
			checkInt(t, k+" provisional entry days", got["provisional entry days"], int64(w.provis))
			if got["time from step 1"] != w.timeText() {
				t.Errorf("%s time from step 1: page shows %q, want %q", k, got["time from step 1"], w.timeText())
			}
		}
	}
	if n == 0 || len(keys) != n {
		t.Errorf("page has %d rows, curated table %d (funnel, product, step)", len(keys), n)
	}
}

func (fp *funnelPage) checkCharts(t *testing.T, want map[string][]*wantStep) {
	charts := regexp.MustCompile(`(?s)<svg id="c-funnel-\d+" class="chart"[^>]*aria-label="([^"]*)">(.*?)</svg>`).FindAllStringSubmatch(fp.page, -1)
	if len(charts) != len(want) {
		t.Errorf("%d funnel charts, want one per funnel and product: %d", len(charts), len(want))
	}
	for _, c := range charts {
		title := html.UnescapeString(c[1])
		fk := strings.Replace(strings.TrimSuffix(title, " (provisional)"), ": ", "|", 1)
		steps := want[fk]
		if steps == nil {
			t.Errorf("chart %q is of no funnel and product of funnel_daily", title)
			continue
		}
		if provisional := steps[0].provis > 0; provisional != strings.HasSuffix(title, " (provisional)") {
			t.Errorf("chart %q: provisional entry days %d", title, steps[0].provis)
		}
		body := html.UnescapeString(c[2])
		for j, w := range steps {
			text := fmt.Sprintf("%s people · %.1f%%", thousands(w.people), float64(w.people)/float64(steps[0].people)*100)
			if j > 0 {
				text += " · " + w.timeText()
			}
			if !strings.Contains(body, fmt.Sprintf(">%d. %s<", j+1, w.name)) || !strings.Contains(body, ">"+text+"<") {
				t.Errorf("chart %q step %d: no label %q or numbers %q", title, j+1, w.name, text)
			}
		}
	}
}

// TestFunnelsWithoutRows: a store with no funnel_daily rows gets a section
// that says how to define funnels, not an empty chart.
func TestFunnelsWithoutRows(t *testing.T) {
	t.Parallel()
	st := store.NewMem()
	d := day.FromDate(2026, 11, 20)
	commit(t, st, "active_users_daily", d, "01A", []rollups.ActiveUsersDaily{{Product: "shop", DAU: 3}})
	commit(t, st, "funnel_daily", d, "01A", []rollups.FunnelDaily{})
	page := render(t, st, Options{})
	m := regexp.MustCompile(`(?s)<section id="funnels">(.*?)</section>`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no funnels section")
	}
	if !strings.Contains(m[1], "rollup --funnels FILE") || !strings.Contains(m[1], "docs/tables.md") {
		t.Errorf("the section does not say how to define funnels:\n%s", m[1])
	}
	if strings.Contains(m[1], "<svg") || strings.Contains(m[1], "<table") {
		t.Errorf("the section has a chart or table without rows:\n%s", m[1])
	}
	// Rows of another product only: the section says so, not how to
	// define funnels.
	commit(t, st, "funnel_daily", d+1, "01B", []rollups.FunnelDaily{{Product: "blog", Funnel: "f", Step: 1, StepName: "a", People: 2, Conversion: 1}})
	page = render(t, st, Options{Product: "shop"})
	if !strings.Contains(page, "No funnel_daily rows for this product in this range") || strings.Contains(page, "rollup --funnels FILE") {
		t.Errorf("with another product's rows only, the section does not say so")
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		secs float64
		want string
	}{
		{0, "0s"}, {0.4, "0s"}, {44.6, "45s"}, {59.6, "1m"}, {60, "1m"}, {200, "3m 20s"},
		{3599.4, "59m 59s"}, {3599.6, "1h"}, {8040, "2h 14m"}, {86369, "23h 59m"}, {86370, "1d"},
		{97200, "1d 3h"}, {7 * 86400, "7d"},
	} {
		if got := duration(tc.secs); got != tc.want {
			t.Errorf("duration(%v) = %q, want %q", tc.secs, got, tc.want)
		}
	}
	for secs, want := range map[int64]string{86400: "24h", 1800: "30m", 5400: "1h30m", 60: "1m", 45: "45s"} {
		if got := windowText(secs); got != want {
			t.Errorf("windowText(%d) = %q, want %q", secs, got, want)
		}
	}
}

// TestFunnelChartLongStepName: a step name too long for its line is cut
// with an ellipsis before it reaches the step's numbers, and a step nobody
// reached is an empty bar with "—" as its time.
func TestFunnelChartLongStepName(t *testing.T) {
	long := strings.Repeat("checkout_confirmation_", 5) + "(plan = enterprise)"
	f := &funnelSum{funnel: "f", product: "shop", window: 86400, days: 2, steps: []funnelStepSum{
		{name: "view_item", people: 1_234_567, median: 2},
		{name: long, people: 1_234_000, lo: 44700, hi: 86369, median: 2},
		{name: "purchase"},
	}}
	c := funnelChart("c-funnel-0", f)
	text := func(prefix string) *svgText {
		for i := range c.Texts {
			if strings.HasPrefix(c.Texts[i].Text, prefix) {
				return &c.Texts[i]
			}
		}
		t.Fatalf("no text %q in %+v", prefix, c.Texts)
		return nil
	}
	label, nums := text("2. "), text("1,234,000 people")
	if want := "1,234,000 people · 100.0% · 12h 25m – 23h 59m"; nums.Text != want {
		t.Errorf("numbers %q, want %q", nums.Text, want)
	}
	if !strings.HasSuffix(label.Text, "…") {
		t.Errorf("label %q is not cut", label.Text)
	}
	if end, start := label.X+7*float64(len([]rune(label.Text))), nums.X-6.5*float64(len([]rune(nums.Text))); end > start {
		t.Errorf("label %q (to about x=%.0f) runs into the numbers %q (from about x=%.0f)", label.Text, end, nums.Text, start)
	}
	if got := text("0 people").Text; got != "0 people · 0.0% · —" {
		t.Errorf("step 3's numbers %q, want %q", got, "0 people · 0.0% · —")
	}
	for _, r := range c.Rects {
		if r.Mark && strings.HasPrefix(r.Title, "step 3") && r.W != 0 {
			t.Errorf("step 3's bar is %.1f wide with nobody there", r.W)
		}
	}
}
