package rollups

import (
	"slices"

	"github.com/littlewarehouse/warehouse/internal/day"
)

// LifecycleDaily sorts the people of a product on a day by how their
// activity changed from the day before, as PostHog's lifecycle does.
// Grain: dt × product. Active means a user_daily row (see the rules at the
// top of windowed.go); the categories are exclusive and
// new_users + returning_users + resurrecting_users is the day's dau.
//
// A partition exists only for a built day. A (dt, product) row exists
// exactly when the product had someone active on dt, or on dt − 1 if that
// day is built (so the day after a product's last activity has a row of
// dormant people only). The day before the start of data holds nobody; a
// day before dt after the start of data that was never built makes
// returning_users, resurrecting_users and dormant_users NULL (not
// computed), since they compare with it.
//
// returning_users is not active_users_daily's returning_users (dau minus
// new_users): here it means active on the day before too.
type LifecycleDaily struct {
	Product string `parquet:"product" doc:"app or site; (none) if empty"`
	// NewUsers is active_users_daily's new_users: first seen ever on dt.
	NewUsers          int64  `parquet:"new_users" doc:"people using the product for the first time ever this day (as active_users_daily.new_users)"`
	ReturningUsers    *int64 `parquet:"returning_users,optional" doc:"people active this day and the day before (not new); unlike active_users_daily.returning_users, which counts every active person who is not new; null if the day before was never built"`
	ResurrectingUsers *int64 `parquet:"resurrecting_users,optional" doc:"people active this day, not the day before, and first seen on an earlier day; null if the day before was never built"`
	DormantUsers      *int64 `parquet:"dormant_users,optional" doc:"people active the day before and not this day, as a positive count (charts draw it below zero); null if the day before was never built"`
	Provisional       bool   `parquet:"provisional" doc:"true if this day or the day before is provisional: late events may still arrive and change this row"`
	Date              int32  `parquet:"date,date" doc:"the day (dt) as a DATE inside the files, to relate to dim_date.date (Athena reads the partition dt as a string)"`
}

// LifecycleSpan returns the user_daily days that lifecycle_daily of the
// days dts is computed from: the day before the first one through the last
// one. ok is false if dts is empty.
func LifecycleSpan(dts []day.Day) (from, to day.Day, ok bool) {
	if len(dts) == 0 {
		return 0, 0, false
	}
	return slices.Min(dts) - 1, slices.Max(dts), true
}

// LifecycleAffected returns the days of lifecycle_daily that read
// user_daily of day d: d and d + 1.
func LifecycleAffected(d day.Day) (from, to day.Day) { return d, d + 1 }

// activity is the user_daily rows of a span of days, each person's active
// days in order: the input the lifecycle and stickiness computations share.
type activity struct {
	in       *interner
	base     day.Day // offset 0
	span     int     // days
	pairProd []int32 // per pair: its product index
	// days holds, per pair and in pair order, the offsets of its active
	// days in increasing order, each once, as off<<1 | is_new; first[p]
	// is where pair p's start (first has one more entry than pairs).
	days  []uint32
	first []int32
}

// activityOf collects the rows of from..to on days b holds as built. A
// repeated (day, product, user_key) is one active day, new if any of its
// rows is.
func activityOf(rows []UserDay, from, to day.Day, b Built) *activity {
	a := &activity{in: newInterner(), base: from, span: int(to-from) + 1}
	isBuilt := make([]bool, a.span)
	for i := range isBuilt {
		isBuilt[i] = b.built(from + day.Day(i))
	}
	keys := make([]uint64, 0, len(rows))
	for i := range rows {
		r := &rows[i]
		if r.Day < from || r.Day > to || !isBuilt[r.Day-from] {
			continue
		}
		p, _ := a.in.product(dim(r.Product), true)
		id, added, _ := a.in.pair(p, r.UserKey, true)
		if added {
			a.pairProd = append(a.pairProd, p)
		}
		k := uint64(id)<<32 | uint64(r.Day-from)<<1
		if r.IsNew {
			k |= 1
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	a.first = make([]int32, a.in.pairs+1)
	a.days = make([]uint32, 0, len(keys))
	for i, k := range keys {
		id, v := int32(k>>32), uint32(k)
		if i > 0 && keys[i-1]>>1 == k>>1 { // the same day again: new if any is
			a.days[len(a.days)-1] |= v & 1
			continue
		}
		a.days = append(a.days, v)
		a.first[id+1] = int32(len(a.days))
	}
	for p := 1; p < len(a.first); p++ { // pairs with no day keep the previous end
		a.first[p] = max(a.first[p], a.first[p-1])
	}
	return a
}

// of returns pair p's active days.
func (a *activity) of(p int32) []uint32 { return a.days[a.first[p]:a.first[p+1]] }

// ComputeLifecycle computes lifecycle_daily for each day of dts from the
// user_daily rows of LifecycleSpan(dts) (rows outside it, and rows of days
// b does not hold as built, are ignored, so passing more is harmless). The
// rows may be in any order, and a repeated (day, product, user_key) counts
// once, as new if any of its rows is.
//
// Every day of dts is a key of the result; its rows are sorted by product
// (the slice is empty for a day that is not built). A person new on dt is
// counted new even if user_daily has them on dt − 1 too (which the users
// table makes impossible).
func ComputeLifecycle(dts []day.Day, rows []UserDay, b Built) map[day.Day][]LifecycleDaily {
	out := make(map[day.Day][]LifecycleDaily, len(dts))
	from, to, ok := LifecycleSpan(dts)
	if !ok {
		return out
	}
	a := activityOf(rows, from, to, b)
	type counts struct{ dau, news, returning, dormant []int64 }
	prods := make([]*counts, len(a.in.names))
	for i := range prods {
		prods[i] = &counts{make([]int64, a.span), make([]int64, a.span), make([]int64, a.span), make([]int64, a.span+1)}
	}
	for id := int32(0); id < a.in.pairs; id++ {
		c := prods[a.pairProd[id]]
		ds := a.of(id)
		for i, v := range ds {
			off := v >> 1
			c.dau[off]++
			switch {
			case v&1 == 1:
				c.news[off]++
			case i > 0 && ds[i-1]>>1 == off-1:
				c.returning[off]++
			}
			if i+1 == len(ds) || ds[i+1]>>1 != off+1 {
				c.dormant[off+1]++
			}
		}
	}
	porder := a.in.productOrder()
	for _, dt := range dts {
		if _, done := out[dt]; done {
			continue
		}
		res := []LifecycleDaily{}
		out[dt] = res
		if !b.built(dt) {
			continue
		}
		off := int(dt - from)
		prevBuilt := b.built(dt - 1)
		prevKnown := prevBuilt || dt-1 < b.Start
		for _, p := range porder {
			c := prods[p]
			if c.dau[off] == 0 && (!prevBuilt || c.dau[off-1] == 0) {
				continue
			}
			r := LifecycleDaily{Product: a.in.names[p], NewUsers: c.news[off], Provisional: b.Days[dt] || b.Days[dt-1]}
			if prevKnown {
				r.ReturningUsers = ptr(c.returning[off])
				r.ResurrectingUsers = ptr(c.dau[off] - c.news[off] - c.returning[off])
				r.DormantUsers = ptr(c.dormant[off])
			}
			res = append(res, r)
		}
		out[dt] = res
	}
	return out
}

// StickinessWindows are the window_days of stickiness_daily, in output
// order: the weeks and months of active_users_daily's wau and mau.
var StickinessWindows = [...]int{WAUDays, MAUDays}

// StickinessDaily is, for the people active in a product at least once in
// the window of window_days days ending on dt, how many were active on
// exactly days_active of its days (a histogram, as PostHog's stickiness).
// Grain: dt × product × window_days × days_active. For each (dt, product,
// window_days) the people of days_active 1 .. window_days sum to
// active_users_daily's wau (7) or mau (28) of that day.
//
// A partition exists only for a built day. The rows of a (dt, product,
// window_days) exist, one for each days_active from 1 to window_days
// (people may be 0), exactly when someone was active in the product on a
// built day of the window and every day of the window after the start of
// data is built: when active_users_daily's wau (mau) is not NULL and above
// 0. A window reaching back before the start of data counts the days it
// has.
type StickinessDaily struct {
	Product     string `parquet:"product" doc:"app or site; (none) if empty"`
	WindowDays  int64  `parquet:"window_days" doc:"the window: 7 (this day and the 6 before) or 28 (this day and the 27 before)"`
	DaysActive  int64  `parquet:"days_active" doc:"days of the window a person was active on, from 1 to window_days"`
	People      int64  `parquet:"people" doc:"people active on exactly days_active days of the window; over days_active they sum to wau (7) or mau (28)"`
	Provisional bool   `parquet:"provisional" doc:"true if a day of the window is provisional: late events may still arrive and change this row"`
	Date        int32  `parquet:"date,date" doc:"the day (dt) as a DATE inside the files, to relate to dim_date.date (Athena reads the partition dt as a string)"`
}

// ComputeStickiness computes stickiness_daily for each day of dts from the
// user_daily rows of ActiveUsersSpan(dts), the same span as
// active_users_daily (rows outside it, and rows of days b does not hold as
// built, are ignored). The rows may be in any order, and a repeated (day,
// product, user_key) counts once.
//
// Every day of dts is a key of the result; its rows are sorted by product,
// window_days and days_active (the slice is empty for a day that is not
// built). It runs in time linear in the rows times the window: each
// person's days of the span are walked with two pointers over their
// active days.
func ComputeStickiness(dts []day.Day, rows []UserDay, b Built) map[day.Day][]StickinessDaily {
	out := make(map[day.Day][]StickinessDaily, len(dts))
	from, to, ok := ActiveUsersSpan(dts)
	if !ok {
		return out
	}
	a := activityOf(rows, from, to, b)
	// need[w][off]: day off is asked for, built, and its window w known.
	var need [len(StickinessWindows)][]bool
	for w, n := range StickinessWindows {
		need[w] = make([]bool, a.span)
		for _, dt := range dts {
			if b.built(dt) && b.complete(dt-day.Day(n-1), dt) {
				need[w][dt-from] = true
			}
		}
	}
	// hist[product][w][off*(n+1)+k]: people active on k days of the window
	// of length n = StickinessWindows[w] ending at offset off.
	hist := make([][len(StickinessWindows)][]int64, len(a.in.names))
	for p := range hist {
		for w, n := range StickinessWindows {
			hist[p][w] = make([]int64, a.span*(n+1))
		}
	}
	for id := int32(0); id < a.in.pairs; id++ {
		ds := a.of(id)
		for w, n := range StickinessWindows {
			h := hist[a.pairProd[id]][w]
			lo, hi, next := 0, 0, 0 // next: the first offset not yet walked
			for _, v := range ds {
				off := int(v >> 1)
				for dt := max(off, next); dt < min(off+n, a.span); dt++ {
					for hi < len(ds) && int(ds[hi]>>1) <= dt {
						hi++
					}
					for int(ds[lo]>>1) <= dt-n {
						lo++
					}
					if need[w][dt] {
						h[dt*(n+1)+hi-lo]++
					}
				}
				next = max(next, off+n)
			}
		}
	}
	porder := a.in.productOrder()
	for _, dt := range dts {
		if _, done := out[dt]; done {
			continue
		}
		res := []StickinessDaily{}
		off := int(dt - from)
		for _, p := range porder {
			for w, n := range StickinessWindows {
				if !need[w][off] {
					continue
				}
				h := hist[p][w][off*(n+1) : (off+1)*(n+1)]
				var total int64
				for _, x := range h {
					total += x
				}
				if total == 0 {
					continue
				}
				prov := b.provisional(dt-day.Day(n-1), dt)
				for k := 1; k <= n; k++ {
					res = append(res, StickinessDaily{Product: a.in.names[p], WindowDays: int64(n), DaysActive: int64(k), People: h[k], Provisional: prov})
				}
			}
		}
		out[dt] = res
	}
	return out
}
