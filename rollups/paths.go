package rollups

import (
	"bytes"
	"cmp"
	"math/bits"
	"slices"

	"github.com/littlewarehouse/warehouse/internal/frame"
)

// PathsTop is how many (from_event, to_event) pairs of a product paths_daily
// keeps a day, by transitions; the others share one Other row.
const PathsTop = 200

// Other is the from_event and to_event of the paths_daily row that stands
// for the pairs of a product and day past its top PathsTop, the row whose
// is_other is true (an event may really be named "(other)").
const Other = "(other)"

// PathsDaily counts the steps people take from one event to the next within
// a session. Grain: dt × product × from_event × to_event.
//
// Within a day, a person's path in a session is their events of that
// session, grouped by (session_key, user_key) and ordered by (event_time,
// event_id). Each pair of consecutive events in that order is one
// transition from_event → to_event; the same name twice is one too
// (screen_view → screen_view). session_key already splits sessions at
// midnight and after 30 minutes of inactivity, so a transition never crosses
// a session boundary: two consecutive events of a person in two sessions
// are not a transition. A transition counts under the product of its from
// event.
//
// Per product and day, the PathsTop pairs with the most transitions are
// kept (ties: from_event, then to_event, in byte order). If a product has
// more pairs, all the others are one row with is_other true and
// from_event = to_event = Other: their transitions summed (so a day's
// transitions add up exactly) and the distinct people among them. Rows are
// in that order per product, the is_other row last. Grain: dt × product ×
// from_event × to_event × is_other (is_other tells that row from a pair of
// events really named "(other)"). A day without transitions has no rows.
type PathsDaily struct {
	Product     string `parquet:"product" doc:"app or site of the transition's from event; (none) if empty"`
	FromEvent   string `parquet:"from_event" doc:"the event a person went from; (other) for the one row that sums every pair past the product's top 200 of the day"`
	ToEvent     string `parquet:"to_event" doc:"the person's next event in the same session (ordered by event_time, then event_id); (other) as from_event"`
	IsOther     bool   `parquet:"is_other" doc:"true for the one row of a product and day that sums every pair past its top 200 (from_event and to_event are then (other)); false for a pair of events"`
	Transitions int64  `parquet:"transitions" doc:"how many times from_event was directly followed by to_event within a person's session"`
	People      int64  `parquet:"people" doc:"distinct people (user_key) with at least one of these transitions"`
	Provisional bool   `parquet:"provisional" doc:"true if the day was built before it was final (its end + max_lateness + 15 minutes): late events may still arrive and change this row; a later run rebuilds it as final"`
	Date        int32  `parquet:"date,date" doc:"the day (dt) as a DATE inside the files, to relate to dim_date.date (Athena reads the partition dt as a string)"`
}

// ComputePaths computes paths_daily for one day from that day's events (see
// PathsDaily), sorted as it is written and never nil. The events may be in
// any order; ev is only read, so other readers may use it at the same time.
//
// Like ComputeDaily it works on dictionary ids and holds no map, string or
// struct per event: the events are grouped by (user_key, session_key) with
// a radix sort of packed integer codes and each group is put in
// (event_time, event_id) order (see pathTransitions), so consecutive events
// of a group are its transitions and a person's transitions are
// consecutive. Its transient memory is about 20 bytes per event, 4 per
// string of ev.Dict and the outputs.
func ComputePaths(ev *frame.Events) []PathsDaily {
	n := ev.Len()
	if n < 2 {
		return []PathsDaily{}
	}
	ib := bits.Len(uint(n - 1))
	d := &daily{ev: ev, mark: make([]uint32, ev.Dict.Len()), keys: make([]uint64, n), buf: make([]uint64, n), ib: ib, imask: 1<<ib - 1}
	pn, pnVals, ne := d.productNames()
	tr, who := d.pathTransitions(pn, pnVals, ne)
	if len(tr) == 0 {
		return []PathsDaily{}
	}
	// Edge codes, each edge's transitions and people: a person's
	// transitions are consecutive, so one stamp per edge counts them once.
	eVals := d.dense(tr, uint64(len(pnVals))*ne)
	trans, people, stamp := make([]int64, len(eVals)), make([]int64, len(eVals)), make([]uint32, len(eVals))
	for k, c := range tr {
		trans[c]++
		if u := uint32(who[k]) + 1; stamp[c] != u {
			stamp[c], people[c] = u, people[c]+1
		}
	}
	return d.topPaths(tr, who, eVals, pnVals, ne, trans, people)
}

// productNames codes each event's (product, event_name) pair: products
// (dim'd) and names get codes in the byte order of their strings, pairs
// dense codes in the order of product*ne + name. It returns each event's
// pair code, each pair's product*ne + name, and ne, the number of names.
func (d *daily) productNames() (pn []uint32, pnVals []uint64, ne uint64) {
	ev, keys := d.ev, d.keys
	pIDs, pStrs := d.codes(ev.Str[frame.Product], true)
	for i, id := range ev.Str[frame.Product] {
		keys[i] = uint64(d.mark[id])
	}
	d.reset(pIDs)
	nIDs, nStrs := d.codes(ev.Str[frame.EventName], false)
	ne = uint64(len(nStrs))
	for i, id := range ev.Str[frame.EventName] {
		keys[i] = keys[i]*ne + uint64(d.mark[id])
	}
	d.reset(nIDs)
	d.pStrs, d.nStrs = pStrs, nStrs
	pnVals = d.dense(keys, uint64(len(pStrs))*ne)
	pn = make([]uint32, len(keys))
	for i, k := range keys {
		pn[i] = uint32(k)
	}
	return pn, pnVals, ne
}

// pathsWide lets tests take pathTransitions' way for keys too wide to pack.
var pathsWide = false

// pathTransitions returns each transition's edge (the from event's pair
// code * ne + the to event's name code) and person (a number per
// user_key), a person's transitions consecutive. They are in d.keys and
// d.buf.
//
// The events are radix-sorted by (person, session) codes packed into one
// key, then each session of a person is put in (event_time, event_id)
// order on its own: it holds a handful of events, and this reads each
// event's time and codes once, in the order of the sessions. If the codes
// and an event's index do not fit in 64 bits together, the events are
// sorted by time, session and person instead (pathOrder).
func (d *daily) pathTransitions(pn []uint32, pnVals []uint64, ne uint64) (tr, who []uint64) {
	ev, ib, keys, buf := d.ev, d.ib, d.keys, d.buf
	ub := d.firstUse(ev.Str[frame.UserKey], keys)
	sb := d.firstUse(ev.Str[frame.SessionKey], buf)
	if ub+sb+ib > 64 || pathsWide {
		return d.transitions(d.pathOrder(), pn, pnVals, ne)
	}
	for i := range keys {
		keys[i] = (keys[i]<<sb|buf[i])<<ib | uint64(i)
	}
	sorted := sortPacked(keys, buf, ib, ub+sb)
	tr = other(sorted, keys, buf)
	var local []uint64
	k := 0
	d.runs(sorted, func(key uint64, run []uint64) {
		if len(run) < 2 {
			return
		}
		// Transition k goes to tr[k] and sorted[k]: k is at most the
		// run's start, and the run is copied into local by then.
		local = d.byTime(run, local)
		person := key >> sb
		from := pn[local[0]]
		for _, i := range local[1:] {
			to := pn[i]
			tr[k], sorted[k] = uint64(from)*ne+pnVals[to]%ne, person
			k++
			from = to
		}
	})
	return tr[:k], sorted[:k]
}

// byTime returns the indexes of the events of run (elements key<<ib |
// index, in index order) in (event_time, event_id, index) order, in local.
func (d *daily) byTime(run, local []uint64) []uint64 {
	ev, imask := d.ev, d.imask
	times := ev.EventTime
	t0, t1 := times[run[0]&imask], times[run[0]&imask]
	for _, e := range run[1:] {
		t := times[e&imask]
		t0, t1 = min(t0, t), max(t1, t)
	}
	byID := func(a, b uint64) int {
		i, j := int(a), int(b)
		return cmp.Or(bytes.Compare(ev.ID(i), ev.ID(j)), cmp.Compare(i, j))
	}
	local = local[:0]
	lb := bits.Len(uint(len(run) - 1))
	if bits.Len64(uint64(t1)-uint64(t0))+lb > 64 {
		for _, e := range run {
			local = append(local, e&imask)
		}
		slices.SortFunc(local, func(a, b uint64) int { return cmp.Or(cmp.Compare(times[a], times[b]), byID(a, b)) })
		return local
	}
	for j, e := range run {
		local = append(local, (uint64(times[e&imask])-uint64(t0))<<lb|uint64(j))
	}
	slices.Sort(local) // by time, then j (index order)
	jmask := uint64(1)<<lb - 1
	for a := 0; a < len(local); {
		b := a + 1
		for b < len(local) && local[b]>>lb == local[a]>>lb {
			b++
		}
		for j := a; j < b; j++ {
			local[j] = run[local[j]&jmask] & imask
		}
		if b-a > 1 { // equal times: by event_id
			slices.SortFunc(local[a:b], byID)
		}
		a = b
	}
	return local
}

// firstUse sets codes[i] to the code of col[i]: the distinct ids of col
// are numbered 0, 1, ... in order of first use. It returns the bits of
// the largest code.
func (d *daily) firstUse(col []uint32, codes []uint64) int {
	var ids []uint32
	for i, id := range col {
		c := d.mark[id]
		if c == 0 {
			ids = append(ids, id)
			c = uint32(len(ids))
			d.mark[id] = c
		}
		codes[i] = uint64(c - 1)
	}
	d.reset(ids)
	return bits.Len(uint(len(ids) - 1))
}

// pathOrder returns the events' indexes, each as key<<ib | index, in
// (user_key id, session_key id, event_time, event_id, index) order: LSD
// radix sorts are stable, so it sorts by time, then by session, then by
// person. Its result is d.keys or d.buf.
func (d *daily) pathOrder() []uint64 {
	ev, ib, imask := d.ev, d.ib, d.imask
	times := ev.EventTime
	t0, t1 := slices.Min(times), slices.Max(times)
	tb := bits.Len64(uint64(t1) - uint64(t0))
	shift := max(0, tb-(64-ib)) // a span too wide to pack is sorted coarsely, then by ties
	for i, t := range times {
		d.keys[i] = (uint64(t)-uint64(t0))>>shift<<ib | uint64(i)
	}
	sorted := sortPacked(d.keys, d.buf, ib, tb-shift)
	// Equal keys: by time, then event_id, then index.
	d.runs(sorted, func(_ uint64, run []uint64) {
		if len(run) > 1 {
			slices.SortFunc(run, func(a, b uint64) int {
				i, j := int(a&imask), int(b&imask)
				return cmp.Or(cmp.Compare(times[i], times[j]), bytes.Compare(ev.ID(i), ev.ID(j)), cmp.Compare(i, j))
			})
		}
	})
	for _, col := range []frame.Column{frame.SessionKey, frame.UserKey} {
		ids := ev.Str[col]
		next := other(sorted, d.keys, d.buf)
		var maxID uint32
		for j, e := range sorted {
			i := e & imask
			id := ids[i]
			next[j] = uint64(id)<<ib | i
			maxID = max(maxID, id)
		}
		sorted = sortPacked(next, other(next, d.keys, d.buf), ib, bits.Len32(maxID))
	}
	return sorted
}

// transitions walks the events in path order (pathOrder's) and returns,
// for each transition, its edge (the from event's pair code * ne + the to
// event's name code) and its person's user_key id. Transition k goes to
// tr[k], the buffer other than sorted, and who[k] = sorted[k] (k is below
// the index of its to event: read by then).
func (d *daily) transitions(sorted []uint64, pn []uint32, pnVals []uint64, ne uint64) (tr, who []uint64) {
	ib, imask := d.ib, d.imask
	sess := d.ev.Str[frame.SessionKey]
	tr = other(sorted, d.keys, d.buf)
	k := 0
	prev := sorted[0]
	pi := prev & imask
	for _, e := range sorted[1:] {
		i := e & imask
		if e>>ib == prev>>ib && sess[i] == sess[pi] {
			tr[k] = uint64(pn[pi])*ne + pnVals[pn[i]]%ne
			sorted[k] = prev >> ib
			k++
		}
		prev, pi = e, i
	}
	return tr[:k], sorted[:k]
}

// topPaths returns the rows of paths_daily: per product (in byte order),
// its edges ranked, the first PathsTop of them, then one Other row for the
// rest. tr holds each transition's edge code (eVals: pair code * ne + to
// name), who its person's user_key id, in path order.
func (d *daily) topPaths(tr, who, eVals, pnVals []uint64, ne uint64, trans, people []int64) []PathsDaily {
	type edge struct {
		p, from, to uint32
		c           int
	}
	es := make([]edge, len(eVals))
	for c, v := range eVals {
		pv := pnVals[v/ne]
		es[c] = edge{p: uint32(pv / ne), from: uint32(pv % ne), to: uint32(v % ne), c: c}
	}
	// Codes are in the byte order of their strings.
	slices.SortFunc(es, func(a, b edge) int {
		return cmp.Or(cmp.Compare(a.p, b.p), cmp.Compare(trans[b.c], trans[a.c]), cmp.Compare(a.from, b.from), cmp.Compare(a.to, b.to))
	})
	out := make([]PathsDaily, 0, min(len(es), len(d.pStrs)*(PathsTop+1)))
	var rest []bool   // by edge code: past its product's top
	var otherAt []int // by product: its Other row in out
	for a := 0; a < len(es); {
		b := a
		for b < len(es) && es[b].p == es[a].p {
			b++
		}
		for _, e := range es[a:min(b, a+PathsTop)] {
			out = append(out, PathsDaily{Product: d.pStrs[e.p], FromEvent: d.nStrs[e.from], ToEvent: d.nStrs[e.to],
				Transitions: trans[e.c], People: people[e.c]})
		}
		if b-a > PathsTop {
			if rest == nil {
				rest, otherAt = make([]bool, len(es)), make([]int, len(d.pStrs))
			}
			o := PathsDaily{Product: d.pStrs[es[a].p], FromEvent: Other, ToEvent: Other, IsOther: true}
			for _, e := range es[a+PathsTop : b] {
				rest[e.c] = true
				o.Transitions += trans[e.c]
			}
			otherAt[es[a].p] = len(out)
			out = append(out, o)
		}
		a = b
	}
	if rest == nil {
		return out
	}
	// The people of each product's rest, each counted once: a person's
	// transitions are consecutive.
	stamp := make([]uint32, len(d.pStrs))
	for k, c := range tr {
		if !rest[c] {
			continue
		}
		p := pnVals[eVals[c]/ne] / ne
		if u := uint32(who[k]) + 1; stamp[p] != u {
			stamp[p] = u
			out[otherAt[p]].People++
		}
	}
	return out
}
