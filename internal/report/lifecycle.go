package report

import (
	"fmt"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/rollups"
)

// lifecycleSection draws, per product, the people of each day as stacked
// bars: new, returning and resurrecting above zero (they sum to DAU),
// dormant below it; and lists lifecycle_daily row for row.
func lifecycleSection(parts []partition[rollups.LifecycleDaily], keep func(string) bool, xl string, prov map[day.Day]string) section {
	s := section{ID: "lifecycle", Title: "Lifecycle",
		Intro: "The people of each day against the day before: new (first day ever), returning (active the day before too), resurrecting (back after at least a day away) and, below zero, dormant (active the day before, not this day). New + returning + resurrecting is DAU. An empty cell is not computed: the day before was never built. From lifecycle_daily."}
	days := partDays(parts)
	type values struct{ nw, ret, res, dor []float64 }
	byProduct := map[string]*values{}
	tb := table{ID: "t-lifecycle", Caption: "lifecycle_daily",
		Head: []string{"dt", "product", "new_users", "returning_users", "resurrecting_users", "dormant_users"}}
	for i, x := range parts {
		for _, r := range x.Rows {
			if !keep(r.Product) {
				continue
			}
			v := byProduct[r.Product]
			if v == nil {
				v = &values{nans(len(days)), nans(len(days)), nans(len(days)), nans(len(days))}
				byProduct[r.Product] = v
			}
			v.nw[i] = float64(r.NewUsers)
			rw := row{Cells: []cell{str(x.Day.String()), str(r.Product), num(r.NewUsers)}}
			for _, c := range []struct {
				n    *int64
				into []float64
				sign float64
			}{{r.ReturningUsers, v.ret, 1}, {r.ResurrectingUsers, v.res, 1}, {r.DormantUsers, v.dor, -1}} {
				if c.n == nil {
					rw.Cells = append(rw.Cells, cell{Num: true, Title: "not computed: the day before was never built"})
					continue
				}
				c.into[i] = c.sign * float64(*c.n)
				rw.Cells = append(rw.Cells, num(*c.n))
			}
			if r.Provisional {
				why := prov[x.Day]
				if why == "" {
					why = "provisional: the day before is provisional; late events may still change it"
				}
				rw = provisionalRow(rw, why)
			}
			tb.Rows = append(tb.Rows, rw)
		}
	}
	for k, product := range sortedKeys(byProduct) {
		v := byProduct[product]
		s.Charts = append(s.Charts, timeChart{ID: fmt.Sprintf("c-lifecycle-%d", k), Title: "Lifecycle: " + product, YLabel: "people per day",
			XLabel: xl, Days: days, Stacked: true, Provisional: prov,
			Series: []series{{Name: "new", Color: color(1), Values: v.nw}, {Name: "returning", Color: color(0), Values: v.ret},
				{Name: "resurrecting", Color: color(2), Values: v.res}, {Name: "dormant", Color: color(3), Values: v.dor}}}.render())
	}
	if len(byProduct) == 0 {
		s.Charts = append(s.Charts, timeChart{ID: "c-lifecycle-0", Title: "Lifecycle", XLabel: xl}.render())
	}
	s.Tables = append(s.Tables, tb)
	return s
}

// stickinessSection draws, per product, how many of the people of the
// last week (and of the last 28 days) of the range came on 1, 2, … of its
// days, for the last day whose window is computed; and lists the weekly
// histogram of every day.
func stickinessSection(parts []partition[rollups.StickinessDaily], keep func(string) bool) section {
	s := section{ID: "stickiness", Title: "Stickiness",
		Intro: "Of the people active at least once in the 7 (or 28) days ending a day, how many were active on exactly 1, 2, … of those days; the bars sum to WAU (MAU). The charts show the last day of the range whose window is computed (no day of it after the start of data was never built). From stickiness_daily."}
	head := []string{"dt", "product", "people"}
	for k := 1; k <= rollups.WAUDays; k++ {
		head = append(head, fmt.Sprintf("%d of 7 days", k))
	}
	tb := table{ID: "t-stickiness", Caption: "stickiness_daily, window_days = 7 (one row per day and product)", Head: head}
	type last struct {
		d    day.Day
		hist []int64
		prov bool
	}
	latest := map[string]map[int64]*last{} // product → window_days → its last histogram
	for _, x := range parts {
		week := map[string][]int64{}
		var products []string
		for _, r := range x.Rows {
			if !keep(r.Product) {
				continue
			}
			if latest[r.Product] == nil {
				latest[r.Product] = map[int64]*last{}
			}
			l := latest[r.Product][r.WindowDays]
			if l == nil || l.d != x.Day {
				l = &last{d: x.Day, hist: make([]int64, r.WindowDays)}
				latest[r.Product][r.WindowDays] = l
			}
			if r.DaysActive >= 1 && r.DaysActive <= r.WindowDays {
				l.hist[r.DaysActive-1] = r.People
			}
			l.prov = l.prov || r.Provisional
			if r.WindowDays == rollups.WAUDays {
				if week[r.Product] == nil {
					week[r.Product] = make([]int64, rollups.WAUDays)
					products = append(products, r.Product)
				}
				week[r.Product][r.DaysActive-1] = r.People
			}
		}
		for _, product := range products {
			var total int64
			for _, n := range week[product] {
				total += n
			}
			cells := []cell{str(x.Day.String()), str(product), num(total)}
			for _, n := range week[product] {
				cells = append(cells, num(n))
			}
			tb.Rows = append(tb.Rows, row{Cells: cells})
		}
	}
	k := 0
	for _, product := range sortedKeys(latest) {
		for _, w := range rollups.StickinessWindows {
			l := latest[product][int64(w)]
			if l == nil {
				continue
			}
			// Trailing zeros (a window longer than the data) are one bar.
			n := len(l.hist)
			for n > 1 && l.hist[n-1] == 0 {
				n--
			}
			var bars []hbar
			for i, people := range l.hist[:n] {
				bars = append(bars, hbar{Label: fmt.Sprintf("%d of %d days", i+1, w), Value: float64(people)})
			}
			switch {
			case n == w-1:
				bars = append(bars, hbar{Label: fmt.Sprintf("%d of %d days", w, w)})
			case n < w:
				bars = append(bars, hbar{Label: fmt.Sprintf("%d–%d of %d days", n+1, w, w)})
			}
			title := fmt.Sprintf("Days active in the %d days ending %s: %s", w, l.d, product)
			if l.prov {
				title += " (provisional)"
			}
			s.Charts = append(s.Charts, barChart(fmt.Sprintf("c-stickiness-%d", k), title, "people", bars))
			k++
		}
	}
	if k == 0 {
		s.Charts = append(s.Charts, barChart("c-stickiness-0", "Stickiness", "people", nil))
	}
	s.Tables = append(s.Tables, tb)
	return s
}
