package rollups

import (
	"slices"
	"strings"

	"github.com/littlewarehouse/warehouse/internal/day"
)

// The windowed tables (docs/design.md §What every number means, §Tables) are computed from user_daily
// alone, never from events: a person is "active" on a day when user_daily has
// a row for them (in that product) on that day, and "new" when that row has
// is_new, which comes from the users first-seen state table and so means
// first ever seen, not first seen inside the window being computed.
//
// Only built days count. A day is built when its user_daily partition is
// committed (a built day with no events is a real zero); a day never built
// is "not computed", and no number may depend on it:
//   - a day that is not built has no active_users_daily rows at all;
//   - days before the start of data (the first built day with at least one
//     user_daily row) are before anything was collected: a window reaching
//     back past the start is "not yet full" (mau_window_days says how many
//     of its 28 days are on or after the start), not wrong;
//   - a day after the start of data that is not built, inside a day's 7-day
//     (28-day) window, makes that day's wau (mau, stickiness) NULL: it cannot
//     be known without that day;
//   - a retention_daily row (cohort dt, day_n) exists only once dt + day_n is
//     built.
// Rows of user_daily on days that are not built are ignored.

const (
	// WAUDays is the length of the weekly window: the day itself and the 6
	// days before it.
	WAUDays = 7
	// MAUDays is the length of the monthly window: the day itself and the 27
	// days before it.
	MAUDays = 28
)

// RetentionDays are the day_n values of retention_daily, in output order.
var RetentionDays = [...]int{1, 7, 14, 28}

// Built is what the windowed tables know of the days: which are built (their
// user_daily is committed), which of those are provisional, and where the
// data starts.
type Built struct {
	// Days maps every built day to whether it is provisional (see
	// Provisional); a day that is not a key was never built.
	Days map[day.Day]bool
	// Start is the start of data: the first built day with at least one
	// user_daily row. Days before it hold nobody, built or not.
	Start day.Day
}

// built reports whether d is built.
func (b Built) built(d day.Day) bool {
	_, ok := b.Days[d]
	return ok
}

// complete reports whether every day of from..to on or after the start of
// data is built.
func (b Built) complete(from, to day.Day) bool {
	for d := max(from, b.Start); d <= to; d++ {
		if !b.built(d) {
			return false
		}
	}
	return true
}

// provisional reports whether a built day of from..to is provisional.
func (b Built) provisional(from, to day.Day) bool {
	for d := from; d <= to; d++ {
		if b.Days[d] {
			return true
		}
	}
	return false
}

// ActiveUsersDaily counts the people active in a product on a day and over the
// week and the 28 days ending that day.
// Grain: dt × product. dt is the day being reported on (the partition).
//
// A partition exists only for a built day. A (dt, product) row exists
// exactly when the product had at least one active person on a built day of
// the 28 days ending dt: a day with no activity right after active days
// still gets a row with dau 0, so charts show the dip instead of skipping
// the day; a product silent for 28 days or more has no row until it is used
// again. wau (mau and stickiness) is NULL when a day of its window after the
// start of data was never built (see the package's rules above).
type ActiveUsersDaily struct {
	Product string `parquet:"product" doc:"app or site; (none) if empty"`
	// DAU, WAU and MAU count distinct people (user_key): a person active on
	// several days of a window counts once.
	DAU int64  `parquet:"dau" doc:"daily active users: distinct people who used the product this day"`
	WAU *int64 `parquet:"wau,optional" doc:"weekly active users: distinct people who used the product at least once in the 7 days ending this day (this day and the 6 before); null (not computed) if one of those days after the start of data was never built"`
	MAU *int64 `parquet:"mau,optional" doc:"monthly active users: distinct people who used the product at least once in the 28 days ending this day (this day and the 27 before); null (not computed) if one of those days after the start of data was never built"`
	// NewUsers counts people whose first day ever in the product is dt.
	NewUsers       int64    `parquet:"new_users" doc:"people using the product for the first time ever this day (on the first day of data, everyone)"`
	ReturningUsers int64    `parquet:"returning_users" doc:"people active this day who had used the product on an earlier day (dau minus new_users)"`
	Stickiness     *float64 `parquet:"stickiness,optional" doc:"dau / mau: the share of the last 28 days' users who used the product this day (between 0 and 1); null when mau is"`
	// MAUWindowDays is 28 once the data is 28 days old; before, the windows
	// are not full and wau, mau and stickiness describe a shorter history.
	MAUWindowDays int64 `parquet:"mau_window_days" doc:"days of the 28-day window on or after the start of data (the first day with any data): 28 when the window is full; below 7 the weekly window is not full either, and 1 is the first day of data, when everyone is new"`
	Provisional   bool  `parquet:"provisional" doc:"true if a day these numbers count (dt or one of the 27 before) is provisional: its late events may still arrive"`
	Date          int32 `parquet:"date,date" doc:"the day (dt) as a DATE inside the files, to relate to dim_date.date (Athena reads the partition dt as a string)"`
}

// RetentionDaily says how many of the people who first used a product on a
// day (the cohort) came back exactly 1, 7, 14 and 28 days later.
// Grain: cohort day × product × day_n. The partition dt is the cohort day:
// the day these people were first seen, not the day they came back.
//
// A (dt, product) has rows only if dt is built and at least one person was
// first seen in the product on dt (cohort_users > 0), and a row for day_n
// only once day dt + day_n has been built, so a recent cohort has fewer rows
// and gains the others as days are built; a missing row means "not known
// yet", never "nobody came back".
type RetentionDaily struct {
	Product       string  `parquet:"product" doc:"app or site; (none) if empty"`
	DayN          int64   `parquet:"day_n" doc:"days after the cohort day (dt) on which return is checked: 1, 7, 14 or 28"`
	CohortUsers   int64   `parquet:"cohort_users" doc:"people who used the product for the first time ever on the cohort day (dt)"`
	RetainedUsers int64   `parquet:"retained_users" doc:"of those, people who used the product on the day exactly day_n days after the cohort day"`
	Retention     float64 `parquet:"retention" doc:"retained_users / cohort_users (between 0 and 1)"`
	Provisional   bool    `parquet:"provisional" doc:"true while the cohort day or the day dt + day_n is provisional: late events may still change this row"`
	Date          int32   `parquet:"date,date" doc:"the cohort day (dt) as a DATE inside the files, to relate to dim_date.date"`
}

// UserDay is the part of a user_daily row the windowed tables need: who was
// active in which product on which day, and whether it was their first day
// ever in that product.
type UserDay struct {
	Day     day.Day
	Product string
	UserKey string
	IsNew   bool
}

// ActiveUsersSpan returns the user_daily days that active_users_daily of the
// days dts is computed from: the 27 days before the first one through the
// last one. ok is false if dts is empty.
func ActiveUsersSpan(dts []day.Day) (from, to day.Day, ok bool) {
	if len(dts) == 0 {
		return 0, 0, false
	}
	return slices.Min(dts) - (MAUDays - 1), slices.Max(dts), true
}

// ActiveUsersAffected returns the days of active_users_daily that read
// user_daily of day d: d through d + 27.
func ActiveUsersAffected(d day.Day) (from, to day.Day) { return d, d + MAUDays - 1 }

// RetentionSpan returns the user_daily days that retention_daily of the
// cohort days cohorts is computed from, as of day asOf: the first cohort
// through the last cohort + 28, but not after asOf. ok is false if there is
// nothing to read.
func RetentionSpan(cohorts []day.Day, asOf day.Day) (from, to day.Day, ok bool) {
	if len(cohorts) == 0 {
		return 0, 0, false
	}
	from, to = slices.Min(cohorts), min(slices.Max(cohorts)+day.Day(RetentionDays[len(RetentionDays)-1]), asOf)
	return from, to, from <= to
}

// RetentionAffected returns the cohort days of retention_daily that read
// user_daily of day d: d itself (its new users are the cohort) and d − n for
// each day_n n (its people may have come back on d). A cohort day c also
// gains rows when the as-of day reaches c + n, without any input changing.
func RetentionAffected(d day.Day) []day.Day {
	out := []day.Day{d}
	for _, n := range RetentionDays {
		out = append(out, d-day.Day(n))
	}
	return out
}

// interner numbers products in order of first appearance, and the people
// of each product (user_key) with one sequence of pair ids across products,
// so that the computations below work on small ints instead of strings.
type interner struct {
	products map[string]int32
	names    []string
	users    []map[string]int32 // per product: user_key → pair id
	pairs    int32              // pair ids handed out
	lastName string             // the last product looked up, and its index
	last     int32
}

func newInterner() *interner { return &interner{products: map[string]int32{}, last: -1} }

// product returns the index of product name, adding it if add is set; ok is
// false if it is unknown and not added.
func (in *interner) product(name string, add bool) (p int32, ok bool) {
	if in.last >= 0 && name == in.lastName {
		return in.last, true
	}
	p, ok = in.products[name]
	if !ok {
		if !add {
			return -1, false
		}
		p = int32(len(in.names))
		in.products[name] = p
		in.names = append(in.names, name)
		in.users = append(in.users, map[string]int32{})
	}
	in.lastName, in.last = name, p
	return p, true
}

// pair returns the pair id of user in product p, adding it if add is set;
// added is true if it was added now, ok false if unknown and not added.
func (in *interner) pair(p int32, user string, add bool) (id int32, added, ok bool) {
	if id, ok := in.users[p][user]; ok {
		return id, false, true
	}
	if !add {
		return -1, false, false
	}
	id = in.pairs
	in.pairs++
	in.users[p][user] = id
	return id, true, true
}

// productOrder returns the product indexes sorted by name.
func (in *interner) productOrder() []int32 {
	order := make([]int32, len(in.names))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return strings.Compare(in.names[a], in.names[b]) })
	return order
}

// ComputeActiveUsers computes active_users_daily for each day of dts from the
// user_daily rows of ActiveUsersSpan(dts) (rows outside it, and rows of days
// b does not hold as built, are ignored, so passing more is harmless; passing
// fewer undercounts). The rows may be in any order, and a repeated (day,
// product, user_key) counts once.
//
// Every day of dts is a key of the result; its rows are sorted by product,
// and there is one for each product with a person active on a built day of
// the 28 days ending that day (the slice is empty if there is none, and for
// a day that is not built). Counts are exact; wau, mau and stickiness are nil
// when their window holds a day after b.Start that is not built.
//
// It runs in time linear in the rows plus products × span days: each
// person's active days are visited in day order, and each one extends the
// days whose 7- and 28-day windows contain the person by the days not
// already covered by their previous active day (a difference array per
// product), so no per-day set of people is ever built.
func ComputeActiveUsers(dts []day.Day, rows []UserDay, b Built) map[day.Day][]ActiveUsersDaily {
	out := make(map[day.Day][]ActiveUsersDaily, len(dts))
	base, last, ok := ActiveUsersSpan(dts)
	if !ok {
		return out
	}
	span := int(last-base) + 1
	isBuilt := make([]bool, span)
	for i := range isBuilt {
		isBuilt[i] = b.built(base + day.Day(i))
	}

	type counts struct {
		dau, news    []int64
		wdiff, mdiff []int64 // difference arrays of wau and mau, one longer than span
	}
	var prods []*counts
	// Intern the rows of the span in input order (which is cache friendly
	// for sorted input: consecutive rows of one person are looked up once),
	// then counting-sort them by day as pair<<1 | is_new.
	in := newInterner()
	var pairProd []int32 // per pair: product index
	start := make([]int32, span+1)
	ids := make([]uint32, 0, len(rows))
	prevP, prevID := int32(-1), int32(-1)
	var prevUser string
	for i := range rows {
		r := &rows[i]
		if r.Day < base || r.Day > last || !isBuilt[r.Day-base] {
			continue
		}
		p, _ := in.product(dim(r.Product), true)
		id := prevID
		if p != prevP || r.UserKey != prevUser {
			var added bool
			id, added, _ = in.pair(p, r.UserKey, true)
			if added {
				pairProd = append(pairProd, p)
			}
			prevP, prevUser, prevID = p, r.UserKey, id
		}
		if int(p) == len(prods) {
			prods = append(prods, &counts{dau: make([]int64, span), news: make([]int64, span),
				wdiff: make([]int64, span+1), mdiff: make([]int64, span+1)})
		}
		e := uint32(id) << 1
		if r.IsNew {
			e |= 1
		}
		ids = append(ids, e)
		start[r.Day-base+1]++
	}
	for i := 1; i <= span; i++ {
		start[i] += start[i-1]
	}
	byDay := make([]uint32, len(ids))
	next := slices.Clone(start[:span])
	j := 0
	for i := range rows {
		if d := rows[i].Day; d >= base && d <= last && isBuilt[d-base] {
			byDay[next[d-base]] = ids[j]
			next[d-base]++
			j++
		}
	}
	ids = nil

	// cover adds 1 to diff over the offsets [from, to), clipped to the span.
	cover := func(diff []int64, from, to int) {
		to = min(to, span)
		if from < to {
			diff[from]++
			diff[to]--
		}
	}
	const never = -1 << 20
	lastDay := make([]int, in.pairs) // per pair: offset of its last active day seen
	newOn := make([]bool, in.pairs)  // per pair: counted as new on lastDay
	for i := range lastDay {
		lastDay[i] = never
	}
	for off := 0; off < span; off++ {
		for _, e := range byDay[start[off]:start[off+1]] {
			id := e >> 1
			c := prods[pairProd[id]]
			if prev := lastDay[id]; off != prev {
				lastDay[id], newOn[id] = off, false
				c.dau[off]++
				// Days dt whose window contains off: [off, off+W). Those
				// up to prev+W are already counted for this person.
				cover(c.wdiff, max(off, prev+WAUDays), off+WAUDays)
				cover(c.mdiff, max(off, prev+MAUDays), off+MAUDays)
			}
			if e&1 == 1 && !newOn[id] {
				newOn[id] = true
				c.news[off]++
			}
		}
	}

	// Prefix sums turn the difference arrays into wau and mau per day.
	for _, c := range prods {
		var w, m int64
		for i := 0; i < span; i++ {
			w += c.wdiff[i]
			m += c.mdiff[i]
			c.wdiff[i], c.mdiff[i] = w, m
		}
	}
	porder := in.productOrder()
	for _, dt := range dts {
		if _, done := out[dt]; done {
			continue
		}
		off := int(dt - base)
		res := []ActiveUsersDaily{}
		if !b.built(dt) {
			out[dt] = res
			continue
		}
		wauFrom, mauFrom := dt-(WAUDays-1), dt-(MAUDays-1)
		wauKnown, mauKnown := b.complete(wauFrom, dt), b.complete(mauFrom, dt)
		windowDays := int64(dt - max(mauFrom, b.Start) + 1)
		provisional := b.provisional(mauFrom, dt)
		for _, p := range porder {
			c := prods[p]
			mau := c.mdiff[off]
			if mau == 0 {
				continue
			}
			r := ActiveUsersDaily{Product: in.names[p], DAU: c.dau[off], NewUsers: c.news[off],
				ReturningUsers: c.dau[off] - c.news[off], MAUWindowDays: windowDays, Provisional: provisional}
			if wauKnown {
				r.WAU = ptr(c.wdiff[off])
			}
			if mauKnown {
				r.MAU, r.Stickiness = ptr(mau), ptr(ratio(c.dau[off], mau))
			}
			res = append(res, r)
		}
		out[dt] = res
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// ratio returns a/b, or 0 if b is 0.
func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// ComputeRetention computes retention_daily for each cohort day of cohorts
// from the user_daily rows of RetentionSpan(cohorts, asOf), asOf being the
// last built day of b (rows outside it, and rows of days b does not hold as
// built, are ignored). The rows may be in any order, and a repeated (day,
// product, user_key) counts once.
//
// The cohort of (c, product) is the people with an is_new row on day c; one
// of them is retained for day_n n if they have a row on day c + n exactly
// (activity on other days does not count). Every cohort day is a key of the
// result; its rows are sorted by product and day_n, one for each product
// with a non-empty cohort and each n with c + n built (the slice is empty if
// there is none, and for a cohort day that is not built). A row is
// provisional if c or c + n is.
func ComputeRetention(cohorts []day.Day, b Built, rows []UserDay) map[day.Day][]RetentionDaily {
	out := make(map[day.Day][]RetentionDaily, len(cohorts))
	if len(cohorts) == 0 {
		return out
	}
	isCohort := make(map[day.Day]bool, len(cohorts))
	returnDay := map[day.Day]bool{} // built days c + n on which someone may count as retained
	for _, c := range cohorts {
		if !b.built(c) {
			continue
		}
		isCohort[c] = true
		for _, n := range RetentionDays {
			if d := c + day.Day(n); b.built(d) {
				returnDay[d] = true
			}
		}
	}

	// tally is one (cohort day, product): its size and retained count per
	// RetentionDays index.
	type tally struct {
		size     int64
		retained [len(RetentionDays)]int64
	}
	type cohortKey struct {
		c       day.Day
		product int32
	}
	// member is one cohort a person belongs to (normally exactly one),
	// chained per person through next; got marks the day_n already counted.
	type member struct {
		c    day.Day
		t    *tally
		got  uint8
		next int32
	}
	tallies := map[cohortKey]*tally{}
	in := newInterner()
	var heads []int32 // per pair: its latest member, -1 for none
	var members []member
	for i := range rows {
		r := &rows[i]
		if !r.IsNew || !isCohort[r.Day] {
			continue
		}
		p, _ := in.product(dim(r.Product), true)
		id, added, _ := in.pair(p, r.UserKey, true)
		if added {
			heads = append(heads, -1)
		}
		dup := false
		for m := heads[id]; m >= 0; m = members[m].next {
			if members[m].c == r.Day {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		ck := cohortKey{r.Day, p}
		t := tallies[ck]
		if t == nil {
			t = &tally{}
			tallies[ck] = t
		}
		t.size++
		members = append(members, member{c: r.Day, t: t, next: heads[id]})
		heads[id] = int32(len(members) - 1)
	}
	if len(members) > 0 {
		for i := range rows {
			r := &rows[i]
			if !returnDay[r.Day] {
				continue
			}
			p, ok := in.product(dim(r.Product), false)
			if !ok {
				continue
			}
			id, _, ok := in.pair(p, r.UserKey, false)
			if !ok {
				continue
			}
			for m := heads[id]; m >= 0; m = members[m].next {
				mm := &members[m]
				j := slices.Index(RetentionDays[:], int(r.Day-mm.c))
				if j >= 0 && mm.got&(1<<j) == 0 {
					mm.got |= 1 << j
					mm.t.retained[j]++
				}
			}
		}
	}

	porder := in.productOrder()
	for _, c := range cohorts {
		if _, done := out[c]; done {
			continue
		}
		res := []RetentionDaily{}
		for _, p := range porder {
			t := tallies[cohortKey{c, p}]
			if t == nil {
				continue
			}
			for j, n := range RetentionDays {
				r := c + day.Day(n)
				if !b.built(r) {
					continue
				}
				res = append(res, RetentionDaily{Product: in.names[p], DayN: int64(n), CohortUsers: t.size,
					RetainedUsers: t.retained[j], Retention: ratio(t.retained[j], t.size), Provisional: b.Days[c] || b.Days[r]})
			}
		}
		out[c] = res
	}
	return out
}
