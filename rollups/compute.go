package rollups

import (
	"math"
	"sort"
)

// dim returns s, or None if s is empty.
func dim(s string) string {
	if s == "" {
		return None
	}
	return s
}

// SeenBefore reports whether userKey was seen in product on a day before the
// one being computed. It defines user_daily.is_new.
type SeenBefore func(product, userKey string) bool

type engKey struct{ product, platform, name string }

type engAgg struct {
	events   int64
	users    map[string]struct{}
	sessions map[string]struct{}
}

type userAgg struct {
	platforms   map[string]int64
	events      int64
	sessions    map[string]struct{}
	first, last int64
}

type sessAgg struct {
	product, platform string
	firstAt           int64
	firstID           string
	lastAt            int64
	events            int64
}

// ComputeDaily computes engagement_daily, user_daily and sessions_daily for
// one day from that day's events, in one pass over them. The events may be in
// any order; the outputs are sorted by their grain.
func ComputeDaily(events []Event, seen SeenBefore) ([]EngagementDaily, []UserDaily, []SessionsDaily) {
	eng := make(map[engKey]*engAgg)
	type uk struct{ product, user string }
	users := make(map[uk]*userAgg)
	sess := make(map[string]*sessAgg)
	for i := range events {
		e := &events[i]
		product, platform := dim(e.Product), dim(e.Platform)

		k := engKey{product, platform, e.EventName}
		a := eng[k]
		if a == nil {
			a = &engAgg{users: map[string]struct{}{}, sessions: map[string]struct{}{}}
			eng[k] = a
		}
		a.events++
		a.users[e.UserKey] = struct{}{}
		a.sessions[e.SessionKey] = struct{}{}

		u := users[uk{product, e.UserKey}]
		if u == nil {
			u = &userAgg{platforms: map[string]int64{}, sessions: map[string]struct{}{}, first: e.EventTime, last: e.EventTime}
			users[uk{product, e.UserKey}] = u
		}
		u.platforms[platform]++
		u.events++
		u.sessions[e.SessionKey] = struct{}{}
		u.first = min(u.first, e.EventTime)
		u.last = max(u.last, e.EventTime)

		s := sess[e.SessionKey]
		if s == nil {
			s = &sessAgg{product: product, platform: platform, firstAt: e.EventTime, firstID: e.EventID, lastAt: e.EventTime}
			sess[e.SessionKey] = s
		} else if e.EventTime < s.firstAt || (e.EventTime == s.firstAt && e.EventID < s.firstID) {
			s.product, s.platform, s.firstAt, s.firstID = product, platform, e.EventTime, e.EventID
		}
		s.lastAt = max(s.lastAt, e.EventTime)
		s.events++
	}

	engOut := make([]EngagementDaily, 0, len(eng))
	for k, a := range eng {
		engOut = append(engOut, EngagementDaily{Product: k.product, Platform: k.platform, EventName: k.name,
			Events: a.events, Users: int64(len(a.users)), Sessions: int64(len(a.sessions))})
	}
	sort.Slice(engOut, func(i, j int) bool {
		a, b := engOut[i], engOut[j]
		if a.Product != b.Product {
			return a.Product < b.Product
		}
		if a.Platform != b.Platform {
			return a.Platform < b.Platform
		}
		return a.EventName < b.EventName
	})

	userOut := make([]UserDaily, 0, len(users))
	for k, u := range users {
		best, bestN := "", int64(-1)
		for p, n := range u.platforms {
			if n > bestN || (n == bestN && p < best) {
				best, bestN = p, n
			}
		}
		userOut = append(userOut, UserDaily{Product: k.product, UserKey: k.user, Platform: best, Events: u.events,
			Sessions: int64(len(u.sessions)), FirstEventAt: u.first, LastEventAt: u.last,
			IsNew: seen == nil || !seen(k.product, k.user)})
	}
	sort.Slice(userOut, func(i, j int) bool {
		a, b := userOut[i], userOut[j]
		if a.Product != b.Product {
			return a.Product < b.Product
		}
		return a.UserKey < b.UserKey
	})

	type pp struct{ product, platform string }
	groups := make(map[pp][]*sessAgg)
	for _, s := range sess {
		k := pp{s.product, s.platform}
		groups[k] = append(groups[k], s)
	}
	sessOut := make([]SessionsDaily, 0, len(groups))
	for k, ss := range groups {
		secs := make([]float64, len(ss))
		var sum float64
		var bounced, evs int64
		for i, s := range ss {
			secs[i] = float64(s.lastAt-s.firstAt) / 1000
			evs += s.events
			if s.events == 1 {
				bounced++
			}
		}
		sort.Float64s(secs)
		for _, x := range secs { // in sorted order: the same sum on every run
			sum += x
		}
		n := float64(len(ss))
		sessOut = append(sessOut, SessionsDaily{Product: k.product, Platform: k.platform, Sessions: int64(len(ss)),
			BouncedSessions: bounced, AvgSessionSeconds: sum / n,
			P50SessionSeconds: QuantileCont(secs, 0.5), P90SessionSeconds: QuantileCont(secs, 0.9),
			EventsPerSession: float64(evs) / n})
	}
	sort.Slice(sessOut, func(i, j int) bool {
		a, b := sessOut[i], sessOut[j]
		if a.Product != b.Product {
			return a.Product < b.Product
		}
		return a.Platform < b.Platform
	})
	return engOut, userOut, sessOut
}

// QuantileCont is the continuous quantile q of sorted x, interpolating
// linearly between the two nearest ranks, as DuckDB's quantile_cont does.
func QuantileCont(x []float64, q float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	rn := q * float64(len(x)-1)
	frn, crn := math.Floor(rn), math.Ceil(rn)
	lo, hi := x[int(frn)], x[int(crn)]
	if frn == crn {
		return lo
	}
	return lo + (rn-frn)*(hi-lo)
}
