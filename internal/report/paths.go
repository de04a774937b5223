package report

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/rollups"
)

// topPaths is how many (from_event, to_event) pairs of a product the paths
// section draws and lists over the range.
const topPaths = 15

// pathsIntro says what the paths section shows; what sums over days and
// what does not is exact on purpose.
var pathsIntro = fmt.Sprintf("Which event people do next. A transition is one event of a person directly followed by their next event in the same session "+
	"(sessions end after 30 minutes without events and at midnight; a transition never crosses one, and counts under the product of its first event). "+
	"Per product, the %d pairs from_event → to_event with the most transitions over the range: transitions are summed over the days, which is exact, "+
	"and the %% is of all the product's transitions in the range, those in (other) included. "+
	"People are not summed: someone with the same transition on two days would count twice, so people are only in the per-day table (distinct people that day). "+
	"paths_daily keeps the top %d pairs of a product a day and sums the rest into one (other) row, never drawn as a pair: "+
	"a pair that ranked past %d on some day counts in these sums only for the days it was in the top, so its sum is a lower bound ("+
	"\"days possibly in (other)\" says on how many of its product's days with an (other) row the pair has no row of its own). From paths_daily.",
	topPaths, rollups.PathsTop, rollups.PathsTop)

// pathPair is one (from_event, to_event) pair of a product over the range.
type pathPair struct {
	from, to    string
	transitions int64            // sum over the days it has a row
	days        map[day.Day]bool // days it has a row, each true if provisional
}

// pathSum is one product's paths_daily over the range.
type pathSum struct {
	product   string
	total     int64 // every transition, (other) included
	other     int64 // the (other) rows' transitions
	otherDays []day.Day
	pairs     []*pathPair // by transitions, then from_event, then to_event
	days      int         // days with rows
	prov      int         // of which provisional
}

// share is n over the product's transitions in the range.
func (p *pathSum) share(n int64) float64 {
	if p.total == 0 {
		return 0
	}
	return float64(n) / float64(p.total)
}

// maybeOther is how many of the product's days with an (other) row the
// pair has no row of its own: days its transitions, if any, are in (other).
func (p *pathSum) maybeOther(pp *pathPair) int {
	n := 0
	for _, d := range p.otherDays {
		if _, ok := pp.days[d]; !ok {
			n++
		}
	}
	return n
}

// top is the product's first topPaths pairs.
func (p *pathSum) top() []*pathPair { return p.pairs[:min(len(p.pairs), topPaths)] }

// sumPaths adds up paths_daily's rows kept by keep, per product (sorted),
// and returns the days with rows, each true if provisional.
func sumPaths(parts []partition[rollups.PathsDaily], keep func(string) bool) (sums []*pathSum, days map[day.Day]bool) {
	byProduct := map[string]*pathSum{}
	byPair := map[[3]string]*pathPair{}
	days = map[day.Day]bool{}
	for _, x := range parts {
		seen := map[string]bool{}
		for _, r := range x.Rows {
			if !keep(r.Product) {
				continue
			}
			p := byProduct[r.Product]
			if p == nil {
				p = &pathSum{product: r.Product}
				byProduct[r.Product] = p
			}
			if !seen[r.Product] {
				seen[r.Product] = true
				p.days++
				if r.Provisional {
					p.prov++
				}
			}
			days[x.Day] = days[x.Day] || r.Provisional
			p.total += r.Transitions
			if r.IsOther {
				p.other += r.Transitions
				p.otherDays = append(p.otherDays, x.Day)
				continue
			}
			k := [3]string{r.Product, r.FromEvent, r.ToEvent}
			pp := byPair[k]
			if pp == nil {
				pp = &pathPair{from: r.FromEvent, to: r.ToEvent, days: map[day.Day]bool{}}
				byPair[k] = pp
				p.pairs = append(p.pairs, pp)
			}
			pp.transitions += r.Transitions
			pp.days[x.Day] = pp.days[x.Day] || r.Provisional
		}
	}
	for _, p := range byProduct {
		slices.SortFunc(p.pairs, func(a, b *pathPair) int {
			return cmp.Or(cmp.Compare(b.transitions, a.transitions), strings.Compare(a.from, b.from), strings.Compare(a.to, b.to))
		})
		sums = append(sums, p)
	}
	slices.SortFunc(sums, func(a, b *pathSum) int { return strings.Compare(a.product, b.product) })
	return sums, days
}

// pathsSection draws each product's top pairs over the range as bars,
// lists them and each product's totals in tables, and the paths_daily rows
// of those pairs and the (other) rows day by day. Without rows it says
// where paths come from.
func pathsSection(parts []partition[rollups.PathsDaily], keep func(string) bool, prov map[day.Day]string) section {
	s := section{ID: "paths", Title: "Top paths", Intro: pathsIntro}
	sums, days := sumPaths(parts, keep)
	if len(parts) == 0 {
		s.Intro = "No paths_daily partition in this range: its days were built before paths_daily existed, or not built; the next run over them builds it."
		return s
	}
	if len(sums) == 0 {
		s.Intro = "No paths_daily rows in this range: paths come from sessions with at least two events, and no session on these days had two."
		for _, x := range parts {
			if len(x.Rows) > 0 {
				s.Intro = "No paths_daily rows for this product in this range: paths come from sessions with at least two events, and none of its sessions on these days had two (other products have rows)."
				break
			}
		}
		return s
	}
	s.Intro += " " + otherNote(sums)
	open := markedDays(days)
	if len(open) > 0 {
		s.Intro += fmt.Sprintf(" %d of the %d days shown are provisional (%s; grey rows, charts marked provisional): late events may still arrive and change their transitions.",
			len(open), len(days), dayList(open))
	}
	tp := table{ID: "t-paths-products", Caption: "transitions per product over the range (sums of paths_daily.transitions)",
		Head: []string{"product", "transitions", "pairs", "(other) transitions", "(other) share", "days", "days with (other)", "provisional days"}}
	tb := table{ID: "t-paths", Caption: fmt.Sprintf("the top %d pairs per product over the range (sums of paths_daily.transitions; share of the product's transitions)", topPaths),
		Head: []string{"product", "rank", "from_event", "to_event", "transitions", "share", "days", "days possibly in (other)", "provisional days"}}
	for k, p := range sums {
		s.Charts = append(s.Charts, pathsChart(fmt.Sprintf("c-paths-%d", k), p))
		rw := row{Cells: []cell{str(p.product), num(p.total), num(int64(len(p.pairs))), num(p.other), pct(p.share(p.other)),
			num(int64(p.days)), num(int64(len(p.otherDays))), num(int64(p.prov))}}
		if p.prov > 0 {
			rw = provisionalRow(rw, fmt.Sprintf("%d of its %d days provisional: late events may still change their transitions", p.prov, p.days))
		}
		tp.Rows = append(tp.Rows, rw)
		for j, pp := range p.top() {
			np := 0
			for _, v := range pp.days {
				if v {
					np++
				}
			}
			rw := row{Cells: []cell{str(p.product), num(int64(j + 1)), str(pp.from), str(pp.to), num(pp.transitions), pct(p.share(pp.transitions)),
				num(int64(len(pp.days))), num(int64(p.maybeOther(pp))), num(int64(np))}}
			if np > 0 {
				rw = provisionalRow(rw, fmt.Sprintf("%d of its %d days provisional: late events may still change their transitions", np, len(pp.days)))
			}
			tb.Rows = append(tb.Rows, rw)
		}
	}
	s.Tables = append(s.Tables, tp, tb, pathsDailyTable(parts, sums, prov))
	return s
}

// otherNote says how many transitions of the range are in (other) rows.
func otherNote(sums []*pathSum) string {
	var other, total int64
	n, all := 0, 0
	for _, p := range sums {
		other, total, n, all = other+p.other, total+p.total, n+len(p.otherDays), all+p.days
	}
	if n == 0 {
		return fmt.Sprintf("No product had more than %d pairs on a day in this range: paths_daily has no (other) row here, and every transition is in its pair's sum.", rollups.PathsTop)
	}
	return fmt.Sprintf("In this range %s of the %s transitions (%.1f%%) fell outside their day's top %d pairs (the (other) rows, on %d of the %d days with rows, counted per product): they are in no pair's sum, only in the totals.",
		thousands(other), thousands(total), 100*float64(other)/float64(max(total, 1)), rollups.PathsTop, n, all)
}

// pathsDailyTable lists, row for row, the paths_daily rows of each
// product's top pairs over the range and its (other) rows.
func pathsDailyTable(parts []partition[rollups.PathsDaily], sums []*pathSum, prov map[day.Day]string) table {
	tb := table{ID: "t-paths-daily", Caption: fmt.Sprintf("paths_daily per day: the rows of each product's top %d pairs over the range, and its (other) rows (people: distinct that day)", topPaths),
		Head: []string{"dt", "product", "from_event", "to_event", "transitions", "people"}}
	shown, products := map[[3]string]bool{}, map[string]bool{}
	for _, p := range sums {
		products[p.product] = true
		for _, pp := range p.top() {
			shown[[3]string{p.product, pp.from, pp.to}] = true
		}
	}
	for _, x := range parts {
		for _, r := range x.Rows {
			if !(r.IsOther && products[r.Product]) && !shown[[3]string{r.Product, r.FromEvent, r.ToEvent}] {
				continue
			}
			rw := row{Cells: []cell{str(x.Day.String()), str(r.Product), str(r.FromEvent), str(r.ToEvent), num(r.Transitions), num(r.People)}}
			if r.Provisional {
				why := prov[x.Day]
				if why == "" {
					why = "provisional: late events may still arrive and change this row"
				}
				rw = provisionalRow(rw, why)
			}
			tb.Rows = append(tb.Rows, rw)
		}
	}
	return tb
}

// pathsChart draws one product's top pairs: per pair, "from → to" and its
// numbers on a line, then a bar as long as its transitions against a track
// as long as the first pair's.
func pathsChart(id string, p *pathSum) chart {
	const rowH, barH, left = 38.0, 14.0, 16.0
	title := "Top paths: " + p.product
	if p.prov > 0 {
		title += " (provisional)"
	}
	top := p.top()
	c := chart{ID: id, Title: title, W: chartW, H: titleH + 16 + rowH*float64(len(top)) + 34}
	c.Texts = append(c.Texts, svgText{X: 10, Y: 18, Text: title, Class: "title", Anchor: "start"})
	x1 := c.W - marginR
	for j, pp := range top {
		y := titleH + 16 + rowH*float64(j)
		nums := fmt.Sprintf("%s · %.1f%%", thousands(pp.transitions), p.share(pp.transitions)*100)
		// The label gets the room the numbers leave (about 7 px a
		// character at 12 px, 6.5 at 11), cut with an ellipsis.
		label := pp.from + " → " + pp.to
		if r, room := []rune(label), int((x1-left-6.5*float64(len([]rune(nums)))-16)/7); len(r) > max(room, 12) {
			label = string(r[:max(room, 12)-1]) + "…"
		}
		c.Texts = append(c.Texts, svgText{X: left, Y: y + 11, Text: label, Class: "tick", Anchor: "start"},
			svgText{X: x1, Y: y + 11, Text: nums, Class: "value", Anchor: "end"})
		c.Rects = append(c.Rects, svgRect{X: left, Y: y + 16, W: x1 - left, H: barH, Fill: "#eef1f4"})
		w := 0.0
		if top[0].transitions > 0 {
			w = (x1 - left) * float64(pp.transitions) / float64(top[0].transitions)
		}
		tip := fmt.Sprintf("%s → %s: %s transitions, %.1f%% of %s's, on %d days", pp.from, pp.to, thousands(pp.transitions), p.share(pp.transitions)*100, p.product, len(pp.days))
		c.Rects = append(c.Rects, svgRect{X: left, Y: y + 16, W: w, H: barH, Fill: color(0), Mark: true, Title: tip})
	}
	foot := fmt.Sprintf("transitions · %% of %s in all · %d days", thousands(p.total), p.days)
	if p.other > 0 {
		foot += fmt.Sprintf(" · %s in (other), not drawn", thousands(p.other))
	}
	c.Texts = append(c.Texts, svgText{X: left, Y: c.H - 12, Text: foot, Class: "axis", Anchor: "start"})
	return c
}
