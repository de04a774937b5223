package rollups

import (
	"bytes"
	"cmp"
	"math"
	"math/bits"
	"slices"
	"strings"

	"github.com/littlewarehouse/warehouse/internal/frame"
)

// dim returns s, or None if s is empty.
func dim(s string) string {
	if s == "" {
		return None
	}
	return s
}

// ComputeDaily computes engagement_daily, user_daily and sessions_daily for
// one day from that day's events. The events may be in any order (the
// job's are sorted, but nothing here relies on it); ev is only read, so
// other readers may use it at the same time. The outputs are sorted by
// their grain and are never nil. They depend on the day's events alone (no
// first-seen state), so a day can be built in any order.
//
// It works on the dictionary ids of ev's columns: the distinct products,
// platforms, event names, countries and user keys get dense codes in the
// byte order of their strings, and events are grouped by radix-sorting
// integer keys (by person, then by session), so it holds no map, string or
// struct per event. Its transient memory is about 20 bytes per event, 4
// per string of ev.Dict and the outputs.
func ComputeDaily(ev *frame.Events) ([]EngagementDaily, []UserDaily, []SessionsDaily) {
	n := ev.Len()
	if n == 0 {
		return []EngagementDaily{}, []UserDaily{}, []SessionsDaily{}
	}
	ib := bits.Len(uint(n - 1))
	d := &daily{ev: ev, mark: make([]uint32, ev.Dict.Len()), keys: make([]uint64, n), ib: ib, imask: 1<<ib - 1}
	d.groups()
	userOut := d.users()
	sessOut := d.sessions()
	engOut := make([]EngagementDaily, len(d.gP))
	for j := range engOut {
		engOut[j] = EngagementDaily{Product: d.pStrs[d.gP[j]], Platform: d.lStrs[d.gL[j]], EventName: d.nStrs[d.gN[j]],
			Events: d.engEvents[j], Users: d.engUsers[j], Sessions: d.engSessions[j]}
	}
	return engOut, userOut, sessOut
}

// daily is the state of one ComputeDaily.
type daily struct {
	ev        *frame.Events
	mark      []uint32 // indexed by dictionary id; all zero between uses
	keys, buf []uint64 // one per event: sort keys, and the sort's scratch
	ib        int      // bits of an event's index
	imask     uint64   // 1<<ib - 1

	// Codes: products and platforms (dim'd) and event names in byte order;
	// (product, platform) pairs as product*len(lStrs) + platform, in
	// order; engagement groups (product, platform, event_name), in order.
	pStrs, lStrs, nStrs []string
	plVals              []uint64
	g                   []uint32 // each event's engagement group
	gPL, gP, gL, gN     []uint32 // each group's pair, product, platform, event name

	engEvents, engUsers, engSessions []int64  // by group
	stamp                            []uint32 // by group: the last person or session that counted it
}

// groups codes products, platforms and event names, and numbers each
// event's engagement group into g.
func (d *daily) groups() {
	ev, keys := d.ev, d.keys
	var pIDs, lIDs, nIDs []uint32
	pIDs, d.pStrs = d.codes(ev.Str[frame.Product], true)
	for i, id := range ev.Str[frame.Product] {
		keys[i] = uint64(d.mark[id])
	}
	d.reset(pIDs)
	lIDs, d.lStrs = d.codes(ev.Str[frame.Platform], true)
	nl := uint64(len(d.lStrs))
	for i, id := range ev.Str[frame.Platform] {
		keys[i] = keys[i]*nl + uint64(d.mark[id])
	}
	d.reset(lIDs)
	d.plVals = d.dense(keys, uint64(len(d.pStrs))*nl)
	nIDs, d.nStrs = d.codes(ev.Str[frame.EventName], false)
	ne := uint64(len(d.nStrs))
	for i, id := range ev.Str[frame.EventName] {
		keys[i] = keys[i]*ne + uint64(d.mark[id])
	}
	d.reset(nIDs)
	gVals := d.dense(keys, uint64(len(d.plVals))*ne)
	d.g = make([]uint32, len(keys))
	for i, k := range keys {
		d.g[i] = uint32(k)
	}
	ng := len(gVals)
	d.gPL, d.gP, d.gL, d.gN = make([]uint32, ng), make([]uint32, ng), make([]uint32, ng), make([]uint32, ng)
	for j, v := range gVals {
		pl := v / ne
		d.gPL[j], d.gN[j] = uint32(pl), uint32(v%ne)
		d.gP[j], d.gL[j] = uint32(d.plVals[pl]/nl), uint32(d.plVals[pl]%nl)
	}
	d.engEvents, d.engUsers, d.engSessions = make([]int64, ng), make([]int64, ng), make([]int64, ng)
	d.stamp = make([]uint32, ng)
}

// runs calls f for each run of equal keys (sorted[j] >> ib) of sorted.
func (d *daily) runs(sorted []uint64, f func(key uint64, run []uint64)) {
	for a := 0; a < len(sorted); {
		key := sorted[a] >> d.ib
		b := a + 1
		for b < len(sorted) && sorted[b]>>d.ib == key {
			b++
		}
		f(key, sorted[a:b])
		a = b
	}
}

// users computes user_daily, grouping the events by (product, user_key)
// pair, and counts each engagement group's events and people.
func (d *daily) users() []UserDaily {
	ev, keys, g := d.ev, d.keys, d.g
	// Number the (product, user_key) pairs in the order of user_daily.
	uIDs, uStrs := d.codes(ev.Str[frame.UserKey], false)
	ubits := bits.Len(uint(len(uStrs) - 1))
	for i, id := range ev.Str[frame.UserKey] {
		keys[i] = uint64(d.gP[g[i]])<<ubits | uint64(d.mark[id])
	}
	d.reset(uIDs)
	puVals := d.dense(keys, uint64(len(d.pStrs))<<ubits)
	// Sort the events by pair: keys become pair<<ib | index (the sort is
	// stable, so indexes ascend within a pair).
	for i := range keys {
		keys[i] = keys[i]<<d.ib | uint64(i)
	}
	d.buf = make([]uint64, len(keys))
	sorted := sortPacked(keys, d.buf, d.ib, bits.Len(uint(len(puVals)-1)))
	country := other(sorted, keys, d.buf) // the free buffer takes country codes
	cIDs, cStrs := d.codes(ev.Str[frame.Country], true)
	for i, id := range ev.Str[frame.Country] {
		country[i] = uint64(d.mark[id])
	}
	d.reset(cIDs)

	lCount := make([]int64, len(d.lStrs))
	cCount := make([]int64, len(cStrs))
	var touched []uint32
	// most returns the code with the most events (ties: the smallest code,
	// whose string is alphabetically first) and zeroes the counts.
	most := func(count []int64) uint32 {
		best := touched[0]
		for _, c := range touched[1:] {
			if count[c] > count[best] || (count[c] == count[best] && c < best) {
				best = c
			}
		}
		for _, c := range touched {
			count[c] = 0
		}
		touched = touched[:0]
		return best
	}
	sess, times := ev.Str[frame.SessionKey], ev.EventTime
	out := make([]UserDaily, len(puVals))
	umask := uint64(1)<<ubits - 1
	imask, gL, mark, stamps, engEvents, engUsers := d.imask, d.gL, d.mark, d.stamp, d.engEvents, d.engUsers
	d.runs(sorted, func(pu uint64, run []uint64) {
		// Stamps: stamps by group and mark by session id (zero now).
		stamp := uint32(pu) + 1
		first, last := int64(math.MaxInt64), int64(math.MinInt64)
		var sessions int64
		for _, e := range run {
			i := e & imask
			gi := g[i]
			engEvents[gi]++
			if stamps[gi] != stamp {
				stamps[gi] = stamp
				engUsers[gi]++
			}
			if s := sess[i]; mark[s] != stamp {
				mark[s] = stamp
				sessions++
			}
			t := times[i]
			first, last = min(first, t), max(last, t)
		}
		for _, e := range run {
			l := gL[g[e&imask]]
			if lCount[l] == 0 {
				touched = append(touched, l)
			}
			lCount[l]++
		}
		platform := most(lCount)
		for _, e := range run {
			c := uint32(country[e&imask])
			if cCount[c] == 0 {
				touched = append(touched, c)
			}
			cCount[c]++
		}
		v := puVals[pu]
		out[pu] = UserDaily{Product: d.pStrs[v>>ubits], UserKey: uStrs[v&umask],
			Platform: d.lStrs[platform], Country: cStrs[most(cCount)], Events: int64(len(run)), Sessions: sessions,
			FirstEventAt: first, LastEventAt: last}
	})
	clear(d.mark)
	clear(d.stamp)
	return out
}

// sessions computes sessions_daily, grouping the events by session, and
// counts each engagement group's sessions. A session is counted under the
// (product, platform) pair of its first event: the earliest, then the
// smallest event_id, then the first in ev.
func (d *daily) sessions() []SessionsDaily {
	ev, keys, g, times := d.ev, d.keys, d.g, d.ev.EventTime
	var maxSess uint32
	for i, s := range ev.Str[frame.SessionKey] {
		keys[i] = uint64(s)<<d.ib | uint64(i)
		maxSess = max(maxSess, s)
	}
	sorted := sortPacked(keys, d.buf, d.ib, bits.Len32(maxSess))
	// Session k's pair and length (ms) go to sorted[k] (k is at most the
	// index of its first event: read by then) and slen[k].
	slen := other(sorted, keys, d.buf)
	npl := len(d.plVals)
	plStart := make([]int64, npl+1) // sessions per pair, then where each pair's start
	plBounced := make([]int64, npl)
	plEvents := make([]int64, npl)
	ns := 0
	imask, stamps, engSessions := d.imask, d.stamp, d.engSessions
	d.runs(sorted, func(_ uint64, run []uint64) {
		stamp := uint32(ns + 1)
		fi := run[0] & imask // the first event
		first, last := times[fi], times[fi]
		for _, e := range run {
			i := e & imask
			gi := g[i]
			if stamps[gi] != stamp {
				stamps[gi] = stamp
				engSessions[gi]++
			}
			t := times[i]
			if t < first || (t == first && bytes.Compare(ev.ID(int(i)), ev.ID(int(fi))) < 0) {
				first, fi = t, i
			}
			last = max(last, t)
		}
		pl := d.gPL[g[fi]]
		sorted[ns], slen[ns] = uint64(pl), uint64(last-first)
		plStart[pl+1]++
		plEvents[pl] += int64(len(run))
		if len(run) == 1 {
			plBounced[pl]++
		}
		ns++
	})
	// Lengths bucketed by pair (a counting sort), each bucket then sorted.
	for j := 1; j <= npl; j++ {
		plStart[j] += plStart[j-1]
	}
	next := slices.Clone(plStart[:npl])
	byPL := make([]uint64, ns)
	for s := range ns {
		byPL[next[sorted[s]]] = slen[s]
		next[sorted[s]]++
	}
	var out []SessionsDaily
	var secs []float64
	nl := uint64(len(d.lStrs))
	for pl := range npl {
		ls := byPL[plStart[pl]:plStart[pl+1]]
		if len(ls) == 0 {
			continue
		}
		slices.Sort(ls) // lengths ≥ 0: as uint64 in the order of their seconds
		secs = secs[:0]
		var sum float64
		for _, ms := range ls {
			x := float64(int64(ms)) / 1000
			secs = append(secs, x)
			sum += x // in sorted order: the same sum on every run
		}
		cnt := float64(len(ls))
		out = append(out, SessionsDaily{Product: d.pStrs[d.plVals[pl]/nl], Platform: d.lStrs[d.plVals[pl]%nl],
			Sessions: int64(len(ls)), BouncedSessions: plBounced[pl], AvgSessionSeconds: sum / cnt,
			P50SessionSeconds: QuantileCont(secs, 0.5), P90SessionSeconds: QuantileCont(secs, 0.9),
			EventsPerSession: float64(plEvents[pl]) / cnt})
	}
	return out
}

// codes numbers the distinct strings col uses 0..k-1 in byte order (of
// dim(s) if dimmed: "" and None then share a code) and returns them by
// code. It leaves mark[id] = code for each id col uses and returns those
// ids, for reset.
func (d *daily) codes(col []uint32, dimmed bool) (ids []uint32, strs []string) {
	mark := d.mark
	for _, id := range col {
		if mark[id] == 0 {
			mark[id] = 1
			ids = append(ids, id)
		}
	}
	// Sort (string, id) pairs: the strings' headers sit beside each other,
	// not all over the dictionary.
	all := d.ev.Dict.Strings()
	type sid struct {
		s  string
		id uint32
	}
	sorted := make([]sid, len(ids))
	for j, id := range ids {
		sorted[j] = sid{all.At(id), id}
		if dimmed {
			sorted[j].s = dim(sorted[j].s)
		}
	}
	slices.SortFunc(sorted, func(a, b sid) int { return strings.Compare(a.s, b.s) })
	strs = make([]string, 0, len(sorted))
	for _, x := range sorted {
		if len(strs) == 0 || x.s != strs[len(strs)-1] {
			strs = append(strs, x.s)
		}
		mark[x.id] = uint32(len(strs) - 1)
	}
	return ids, strs
}

// reset zeroes mark at ids.
func (d *daily) reset(ids []uint32) {
	for _, id := range ids {
		d.mark[id] = 0
	}
}

// denseByMark lets tests force dense's sort path.
var denseByMark = true

// dense replaces each of keys (each < r) by its number among the distinct
// keys, numbered 0..k-1 in increasing order, and returns the distinct keys
// by number. With r no larger than the dictionary it marks keys in mark;
// else it sorts them.
func (d *daily) dense(keys []uint64, r uint64) []uint64 {
	var vals []uint64
	if denseByMark && r <= uint64(len(d.mark)) {
		mark := d.mark[:r]
		for _, k := range keys {
			mark[k] = 1
		}
		for v, m := range mark {
			if m != 0 {
				vals = append(vals, uint64(v))
				mark[v] = uint32(len(vals))
			}
		}
		for i, k := range keys {
			keys[i] = uint64(mark[k] - 1)
		}
		clear(mark)
		return vals
	}
	type ki struct {
		k uint64
		i uint32
	}
	pairs := make([]ki, len(keys))
	for i, k := range keys {
		pairs[i] = ki{k, uint32(i)}
	}
	slices.SortFunc(pairs, func(a, b ki) int { return cmp.Compare(a.k, b.k) })
	for j, p := range pairs {
		if j == 0 || p.k != pairs[j-1].k {
			vals = append(vals, p.k)
		}
		keys[p.i] = uint64(len(vals) - 1)
	}
	return vals
}

// digitBits is the widest digit of sortPacked: 2048 counters fit in L1.
const digitBits = 11

// sortPacked sorts elems stably by their bits [shift, shift+nbits) (the
// bits above must be zero) with an LSD radix sort that uses buf (of the
// same length) as scratch. It returns the sorted slice: elems or buf.
func sortPacked(elems, buf []uint64, shift, nbits int) []uint64 {
	n := len(elems)
	if nbits == 0 || n < 2 {
		return elems
	}
	passes := (nbits + digitBits - 1) / digitBits
	w := (nbits + passes - 1) / passes
	size := 1 << w
	mask := uint64(size - 1)
	count := make([]uint32, passes*size)
	for _, e := range elems {
		k := e >> shift
		for p := range passes {
			count[p*size+int(k>>(p*w)&mask)]++
		}
	}
	buf = buf[:n]
	for p := range passes {
		c := count[p*size : (p+1)*size]
		s := shift + p*w
		if c[elems[0]>>s&mask] == uint32(n) {
			continue // one digit value: this pass would not move anything
		}
		var sum uint32
		for j, x := range c {
			c[j], sum = sum, sum+x
		}
		for _, e := range elems {
			dg := e >> s & mask
			buf[c[dg]] = e
			c[dg]++
		}
		elems, buf = buf, elems
	}
	return elems
}

// other returns whichever of a and b is not s.
func other[T any](s, a, b []T) []T {
	if &s[0] == &a[0] {
		return b
	}
	return a
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
