package rollups

import (
	"cmp"
	"slices"
	"sort"
)

// This file keeps the []Event implementation of ComputeDaily that the
// columnar one replaced, as the reference of TestComputeDailyMatchesReference.

// strIDs gives dense ids to strings.
type strIDs struct {
	ids  map[string]uint32
	strs []string
}

func newStrIDs(n int) *strIDs { return &strIDs{ids: make(map[string]uint32, n)} }

func (in *strIDs) id(s string) uint32 {
	if id, ok := in.ids[s]; ok {
		return id
	}
	id := uint32(len(in.strs))
	in.ids[s] = id
	in.strs = append(in.strs, s)
	return id
}

type sessAgg struct {
	product, platform uint32
	firstAt           int64
	firstIdx          int32
	lastAt            int64
	events            int64
}

// distinctPairs counts, for each group, the distinct values paired with it:
// keys are group<<32 | value.
func distinctPairs(keys []uint64, groups int) []int64 {
	slices.Sort(keys)
	out := make([]int64, groups)
	for i, k := range keys {
		if i == 0 || k != keys[i-1] {
			out[k>>32]++
		}
	}
	return out
}

// computeDailyRef is ComputeDaily as it was on []Event (maps keyed per
// event): the reference the columnar ComputeDaily must equal exactly.
func computeDailyRef(events []Event) ([]EngagementDaily, []UserDaily, []SessionsDaily) {
	dims := newStrIDs(64) // products, platforms, event names
	users := newStrIDs(0) // user keys
	sessions := newStrIDs(0)
	type engKey struct{ product, platform, name uint32 }
	engIDs := map[engKey]uint32{}
	var engKeys []engKey
	var engEvents []int64
	userPairs := make([]uint64, len(events))    // eng group << 32 | user
	sessionPairs := make([]uint64, len(events)) // eng group << 32 | session
	type upKey struct{ product, user uint32 }
	type userAgg struct {
		events      int64
		first, last int64
	}
	userAggs := map[upKey]*userAgg{}
	platformCount := map[[3]uint32]int64{} // product, user, platform → events
	countryCount := map[[3]uint32]int64{}  // product, user, country → events
	var sess []sessAgg
	for i := range events {
		e := &events[i]
		product, platform, name := dims.id(dim(e.Product)), dims.id(dim(e.Platform)), dims.id(e.EventName)
		user, session := users.id(e.UserKey), sessions.id(e.SessionKey)

		k := engKey{product, platform, name}
		g, ok := engIDs[k]
		if !ok {
			g = uint32(len(engKeys))
			engIDs[k] = g
			engKeys = append(engKeys, k)
			engEvents = append(engEvents, 0)
		}
		engEvents[g]++
		userPairs[i] = uint64(g)<<32 | uint64(user)
		sessionPairs[i] = uint64(g)<<32 | uint64(session)

		uk := upKey{product, user}
		u := userAggs[uk]
		if u == nil {
			u = &userAgg{first: e.EventTime, last: e.EventTime}
			userAggs[uk] = u
		}
		u.events++
		u.first = min(u.first, e.EventTime)
		u.last = max(u.last, e.EventTime)
		platformCount[[3]uint32{product, user, platform}]++
		countryCount[[3]uint32{product, user, dims.id(dim(e.Country))}]++

		if int(session) == len(sess) {
			sess = append(sess, sessAgg{product: product, platform: platform, firstAt: e.EventTime, firstIdx: int32(i), lastAt: e.EventTime})
		}
		s := &sess[session]
		if e.EventTime < s.firstAt || (e.EventTime == s.firstAt && e.EventID < events[s.firstIdx].EventID) {
			s.product, s.platform, s.firstAt, s.firstIdx = product, platform, e.EventTime, int32(i)
		}
		s.lastAt = max(s.lastAt, e.EventTime)
		s.events++
	}

	engUsers := distinctPairs(userPairs, len(engKeys))
	engSessions := distinctPairs(sessionPairs, len(engKeys))
	engOut := make([]EngagementDaily, len(engKeys))
	for g, k := range engKeys {
		engOut[g] = EngagementDaily{Product: dims.strs[k.product], Platform: dims.strs[k.platform], EventName: dims.strs[k.name],
			Events: engEvents[g], Users: engUsers[g], Sessions: engSessions[g]}
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

	// Sessions per (product, user): the pairs (product<<32|user, session).
	type us struct {
		pu      uint64
		session uint32
	}
	pairs := make([]us, len(events))
	for i := range events {
		pairs[i] = us{uint64(dims.ids[dim(events[i].Product)])<<32 | uint64(users.ids[events[i].UserKey]), sessions.ids[events[i].SessionKey]}
	}
	slices.SortFunc(pairs, func(a, b us) int {
		if a.pu != b.pu {
			return cmp.Compare(a.pu, b.pu)
		}
		return cmp.Compare(a.session, b.session)
	})
	userSessionCount := map[uint64]int64{}
	for i, p := range pairs {
		if i == 0 || p != pairs[i-1] {
			userSessionCount[p.pu]++
		}
	}
	// most picks, per (product, user), the value with the most events (ties:
	// alphabetically first).
	most := func(counts map[[3]uint32]int64) map[upKey]uint32 {
		best := map[upKey]uint32{}
		bestN := map[upKey]int64{}
		for k, n := range counts {
			uk := upKey{k[0], k[1]}
			b, ok := best[uk]
			if !ok || n > bestN[uk] || (n == bestN[uk] && dims.strs[k[2]] < dims.strs[b]) {
				best[uk], bestN[uk] = k[2], n
			}
		}
		return best
	}
	bestPlatform, bestCountry := most(platformCount), most(countryCount)
	userOut := make([]UserDaily, 0, len(userAggs))
	for k, u := range userAggs {
		product, user := dims.strs[k.product], users.strs[k.user]
		userOut = append(userOut, UserDaily{Product: product, UserKey: user, Platform: dims.strs[bestPlatform[k]],
			Country: dims.strs[bestCountry[k]], Events: u.events,
			Sessions: userSessionCount[uint64(k.product)<<32|uint64(k.user)], FirstEventAt: u.first, LastEventAt: u.last})
	}
	sort.Slice(userOut, func(i, j int) bool {
		a, b := userOut[i], userOut[j]
		if a.Product != b.Product {
			return a.Product < b.Product
		}
		return a.UserKey < b.UserKey
	})

	type pp struct{ product, platform uint32 }
	groups := make(map[pp][]*sessAgg)
	for i := range sess {
		s := &sess[i]
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
		sessOut = append(sessOut, SessionsDaily{Product: dims.strs[k.product], Platform: dims.strs[k.platform], Sessions: int64(len(ss)),
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
