package report

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/rollups"
)

// funnelsIntro says what the funnels section shows; the median part is
// exact on purpose: a median over several days cannot be made from the
// days' medians.
const funnelsIntro = "Of the people who entered a funnel of funnels.json (their first step-1 event of a day, the entry day), how many reached each step, " +
	"each strictly after the one before and within the funnel's window from step 1. One chart per funnel and product, over the range: " +
	"people are summed over the entry days (someone who entered on two days counts twice), the % is of step 1's people over the same days, " +
	"and the time is the lowest to the highest of the entry days' median times from step 1 (median_seconds; — if nobody reached the step on any day): " +
	"a median over several days cannot be made from daily medians, so each day's is in the second table. From funnel_daily."

// funnelsHowTo replaces the charts when funnel_daily has no row in the
// range.
const funnelsHowTo = "No funnel_daily rows in this range: either the store defines no funnels, or nobody entered one on these days. " +
	"To define funnels, write them in a JSON file (a name, 2 to 10 steps, each an event name and optionally one property equal to a value, " +
	"and a conversion window, 24h by default; examples/funnels.json has two) and run rollup --funnels FILE with your other flags: " +
	"it checks the file, saves it in the store as funnels.json, and that run and every later one compute funnel_daily for every built day, " +
	"without rebuilding the days. See docs/tables.md (funnel_daily)."

// funnelProvisional is the tooltip of a provisional funnel_daily row whose
// entry day is itself final.
const funnelProvisional = "provisional: the window of an entry reaches a day that is provisional or not built; people may still reach later steps"

// funnelSum is one funnel of one product over the range: its steps' sums.
type funnelSum struct {
	funnel, product string
	window          int64 // window_seconds (of the latest entry day)
	steps           []funnelStepSum
	days, prov      int // entry days, and how many of them are provisional
}

// funnelStepSum is one step of a funnelSum.
type funnelStepSum struct {
	name   string  // step_name (of the latest entry day)
	people int64   // sum of people over the entry days
	lo, hi float64 // the lowest and highest daily median_seconds
	median int     // entry days with a median (somebody reached the step)
}

// conversion is the step's people over step 1's, over the same days.
func (f *funnelSum) conversion(j int) float64 {
	if f.steps[0].people == 0 {
		return 0
	}
	return float64(f.steps[j].people) / float64(f.steps[0].people)
}

// medians is the range of the step's daily medians as durations: "—" if
// nobody reached it, one duration if the days' medians are equal.
func (s *funnelStepSum) medians() string {
	switch {
	case s.median == 0:
		return "—"
	case duration(s.lo) == duration(s.hi):
		return duration(s.lo)
	}
	return duration(s.lo) + " – " + duration(s.hi)
}

// sumFunnels adds up funnel_daily's rows kept by keep, per funnel and
// product (sorted by funnel, then product), and returns the entry days
// with rows, each true if provisional.
func sumFunnels(parts []partition[rollups.FunnelDaily], keep func(string) bool) (sums []*funnelSum, days map[day.Day]bool) {
	byKey := map[[2]string]*funnelSum{}
	days = map[day.Day]bool{}
	for _, x := range parts { // in day order: the latest day's names win
		seen := map[[2]string]bool{}
		for _, r := range x.Rows {
			if !keep(r.Product) || r.Step < 1 || r.Step > rollups.MaxFunnelSteps {
				continue
			}
			k := [2]string{r.Funnel, r.Product}
			f := byKey[k]
			if f == nil {
				f = &funnelSum{funnel: r.Funnel, product: r.Product}
				byKey[k] = f
			}
			if !seen[k] {
				seen[k] = true
				f.days++
				if r.Provisional {
					f.prov++
				}
			}
			days[x.Day] = days[x.Day] || r.Provisional
			for int64(len(f.steps)) < r.Step {
				f.steps = append(f.steps, funnelStepSum{})
			}
			s := &f.steps[r.Step-1]
			f.window, s.name = r.WindowSeconds, r.StepName
			s.people += r.People
			if m := r.MedianSeconds; m != nil {
				if s.median == 0 || *m < s.lo {
					s.lo = *m
				}
				if s.median == 0 || *m > s.hi {
					s.hi = *m
				}
				s.median++
			}
		}
	}
	for _, f := range byKey {
		sums = append(sums, f)
	}
	slices.SortFunc(sums, func(a, b *funnelSum) int {
		return cmp.Or(strings.Compare(a.funnel, b.funnel), strings.Compare(a.product, b.product))
	})
	return sums, days
}

// funnelsSection draws each funnel of each product as a bar per step
// (people over the range, conversion from step 1, the range of the daily
// median times), sums them in a table, and lists funnel_daily row for row.
// Without rows it says how to define funnels.
func funnelsSection(parts []partition[rollups.FunnelDaily], keep func(string) bool, prov map[day.Day]string) section {
	s := section{ID: "funnels", Title: "Funnels", Intro: funnelsIntro}
	sums, days := sumFunnels(parts, keep)
	if len(sums) == 0 {
		s.Intro = funnelsHowTo
		for _, x := range parts {
			if len(x.Rows) > 0 {
				s.Intro = "No funnel_daily rows for this product in this range: nobody entered one of its funnels on these days (other products have rows)."
				break
			}
		}
		return s
	}
	open := markedDays(days)
	if len(open) > 0 {
		s.Intro += fmt.Sprintf(" %d of the %d entry days shown are provisional (%s; grey rows, charts marked provisional): the window of an entry reaches a day that is provisional or not built, "+
			"so people may still reach later steps and these numbers may change.", len(open), len(days), dayList(open))
	}
	tb := table{ID: "t-funnels", Caption: "funnels over the range (sums of funnel_daily.people; time: lowest – highest daily median_seconds)",
		Head: []string{"funnel", "product", "step", "step_name", "people", "conversion", "time from step 1", "entry days", "provisional entry days"}}
	for k, f := range sums {
		s.Charts = append(s.Charts, funnelChart(fmt.Sprintf("c-funnel-%d", k), f))
		for j := range f.steps {
			st := &f.steps[j]
			rw := row{Cells: []cell{str(f.funnel), str(f.product), num(int64(j + 1)), str(st.name), num(st.people), pct(f.conversion(j)),
				{Text: st.medians(), Num: true}, num(int64(f.days)), num(int64(f.prov))}}
			if f.prov > 0 {
				rw = provisionalRow(rw, fmt.Sprintf("%d of its %d entry days provisional: people may still reach later steps", f.prov, f.days))
			}
			tb.Rows = append(tb.Rows, rw)
		}
	}
	s.Tables = append(s.Tables, tb, funnelDailyTable(parts, keep, prov))
	return s
}

// funnelDailyTable lists funnel_daily row for row.
func funnelDailyTable(parts []partition[rollups.FunnelDaily], keep func(string) bool, prov map[day.Day]string) table {
	tb := table{ID: "t-funnel-daily", Caption: "funnel_daily (one row per entry day, product, funnel and step)",
		Head: []string{"dt", "product", "funnel", "step", "step_name", "people", "conversion", "median_seconds", "median from step 1", "window_seconds"}}
	for _, x := range parts {
		for _, r := range x.Rows {
			if !keep(r.Product) {
				continue
			}
			median, readable := cell{Num: true, Title: "null: nobody reached the step"}, cell{Text: "—", Num: true}
			if r.MedianSeconds != nil {
				median, readable.Text = dec(*r.MedianSeconds, 1), duration(*r.MedianSeconds)
			}
			rw := row{Cells: []cell{str(x.Day.String()), str(r.Product), str(r.Funnel), num(r.Step), str(r.StepName), num(r.People),
				pct(r.Conversion), median, readable, num(r.WindowSeconds)}}
			if r.Provisional {
				why := prov[x.Day]
				if why == "" {
					why = funnelProvisional
				}
				rw = provisionalRow(rw, why)
			}
			tb.Rows = append(tb.Rows, rw)
		}
	}
	return tb
}

// funnelChart draws one funnel of one product: per step, its name and
// numbers on a line, then a bar as long as its people against a track as
// long as step 1's.
func funnelChart(id string, f *funnelSum) chart {
	const rowH, barH, left = 46.0, 16.0, 16.0
	title := fmt.Sprintf("%s: %s", f.funnel, f.product)
	if f.prov > 0 {
		title += " (provisional)"
	}
	c := chart{ID: id, Title: title, W: chartW, H: titleH + 16 + rowH*float64(len(f.steps)) + 34}
	c.Texts = append(c.Texts, svgText{X: 10, Y: 18, Text: title, Class: "title", Anchor: "start"})
	x1 := c.W - marginR
	for j := range f.steps {
		st := &f.steps[j]
		y := titleH + 16 + rowH*float64(j)
		nums := fmt.Sprintf("%s people · %.1f%%", thousands(st.people), f.conversion(j)*100)
		if j > 0 {
			nums += " · " + st.medians()
		}
		// The name gets the room the numbers leave (about 7 px a
		// character at 12 px, 6.5 at 11), cut with an ellipsis.
		label := fmt.Sprintf("%d. %s", j+1, st.name)
		if r, room := []rune(label), int((x1-left-6.5*float64(len([]rune(nums)))-16)/7); len(r) > max(room, 12) {
			label = string(r[:max(room, 12)-1]) + "…"
		}
		c.Texts = append(c.Texts, svgText{X: left, Y: y + 12, Text: label, Class: "tick", Anchor: "start"},
			svgText{X: x1, Y: y + 12, Text: nums, Class: "value", Anchor: "end"})
		c.Rects = append(c.Rects, svgRect{X: left, Y: y + 18, W: x1 - left, H: barH, Fill: "#eef1f4"})
		w := 0.0
		if f.steps[0].people > 0 {
			w = (x1 - left) * float64(st.people) / float64(f.steps[0].people)
		}
		tip := fmt.Sprintf("step %d, %s: %s people, %.1f%% of step 1", j+1, st.name, thousands(st.people), f.conversion(j)*100)
		if j > 0 {
			tip += "; time from step 1, lowest – highest daily median: " + st.medians()
		}
		c.Rects = append(c.Rects, svgRect{X: left, Y: y + 18, W: w, H: barH, Fill: color(0), Mark: true, Title: tip})
	}
	c.Texts = append(c.Texts, svgText{X: left, Y: c.H - 12,
		Text: fmt.Sprintf("window %s · %d entry days · time: lowest – highest daily median from step 1", windowText(f.window), f.days), Class: "axis", Anchor: "start"})
	return c
}

// duration writes seconds as a readable duration: "45s", "3m 20s",
// "2h 14m", "1d 3h", rounded to its last unit.
func duration(secs float64) string {
	if math.IsNaN(secs) || secs < 0 {
		return "—"
	}
	both := func(a int64, ua string, b int64, ub string) string {
		if b == 0 {
			return fmt.Sprintf("%d%s", a, ua)
		}
		return fmt.Sprintf("%d%s %d%s", a, ua, b, ub)
	}
	d := time.Duration(math.Round(secs)) * time.Second
	if d < time.Minute {
		return fmt.Sprintf("%ds", int64(d/time.Second))
	}
	if d < time.Hour {
		return both(int64(d/time.Minute), "m", int64(d%time.Minute/time.Second), "s")
	}
	if m := int64(math.Round(secs / 60)); m < 24*60 {
		return both(m/60, "h", m%60, "m")
	}
	h := int64(math.Round(secs / 3600))
	return both(h/24, "d", h%24, "h")
}

// windowText writes a funnel's window as funnels.json would: "24h",
// "30m", "1h30m".
func windowText(secs int64) string {
	s := (time.Duration(secs) * time.Second).String()
	if t, ok := strings.CutSuffix(s, "m0s"); ok {
		s = t + "m"
	}
	if t, ok := strings.CutSuffix(s, "h0m"); ok {
		s = t + "h"
	}
	return s
}
