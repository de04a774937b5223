package compact

import (
	"bytes"
	"cmp"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/littlewarehouse/warehouse/internal/frame"
	"github.com/littlewarehouse/warehouse/rollups"
)

// Stats counts what Build did with a day's rows.
type Stats struct {
	RawRows, ValidRows, KeptRows, Duplicates, Invalid, Skewed int64
	RepairedUTF8                                              int64 // rows whose invalid UTF-8 was replaced
}

// Day is the result of building one day.
type Day struct {
	// Events are the day's events, never nil: one per event_id, sorted by
	// (event_name, user_key, event_time, event_id), strings and event ids
	// compared in byte order, with SessionKey set. Their Dict may also
	// hold strings no event uses (those of dropped duplicates, say).
	Events     *frame.Events
	Quarantine []rollups.Quarantine // sorted by compareQuarantine
	Stats      Stats
}

// Build builds a day from all of its Parts, in any order: the result is
// the same, byte for byte, whatever the order of parts and of the events in
// them (only dictionary ids may differ). The parts are consumed: Build
// takes their Events and Quarantine (and sets them to nil), and may modify
// the Events it takes.
//
// Build deduplicates on event_id, keeping the copy with the earliest
// received_at and, among copies received at the same instant, the smallest
// by event_time, client event_time, event_name, user_id, device_id,
// session_id, product, platform, app_version, country, then properties (by
// count, then key by key in key order, key before value); so the choice
// never depends on input order. It sets session_key: "s:" + session_id when
// the client sent one; otherwise the events of one (product, user_key)
// without a session_id, in time order, form sessions that end after
// rules.SessionGap without an event (a gap of exactly SessionGap continues
// the session), keyed "i:<product>|<user_key>|<start>", start being the
// session's first event_time formatted 2006-01-02T15:04:05.000Z (UTC). The
// events are of one day, so sessions are split at midnight by construction.
//
// Build works on two goroutines at times. When it merges several parts of
// a large day it then runs a garbage collection, so that the parts' memory
// is reused for the rest of the build instead of adding to the peak.
//
// Build panics if the day's event ids or properties overflow frame's
// 32-bit offsets, or it has 2^31 events or more.
func Build(parts []*Part, rules Rules) Day {
	var out Day
	n, nq, nid, nprop := 0, 0, 0, 0
	only := -1 // the part with events, if only one has
	for i, p := range parts {
		nq += len(p.Quarantine)
		out.Stats.RepairedUTF8 += p.RepairedUTF8
		if p.Events == nil || p.Events.Len() == 0 {
			continue
		}
		if n == 0 {
			only = i
		} else {
			only = -1
		}
		n += p.Events.Len()
		nid += len(p.Events.IDBytes)
		nprop += len(p.Events.PropKey)
	}
	if nid > math.MaxUint32 || nprop > math.MaxUint32 || n > math.MaxInt32 {
		panic(fmt.Sprintf("compact: a day of %d events, %d bytes of event ids and %d properties is too large", n, nid, nprop))
	}

	if len(parts) == 1 {
		out.Quarantine = parts[0].Quarantine
	} else {
		out.Quarantine = make([]rollups.Quarantine, 0, nq)
		for _, p := range parts {
			out.Quarantine = append(out.Quarantine, p.Quarantine...)
		}
	}
	slices.SortStableFunc(out.Quarantine, compareQuarantine) // ties keep their order in the object

	// Merge the parts' events: into a dictionary sized for the day's
	// strings (growing one is slow) and columns grown once to the day's
	// size, each part copied once, its strings remapped, then dropped.
	// Meanwhile, the event ids are hashed and sorted for dedupe, and the
	// dictionary is sized while the columns are grown (page faults, mostly).
	var e *frame.Events
	var keys []uint64
	switch {
	case n == 0:
		e = frame.New(nil, 0)
	case only >= 0:
		e = parts[only].Events // nothing to merge
		keys = idKeys([]*frame.Events{e}, n)
	default:
		var srcs []*frame.Events
		var dicts []*frame.Dict
		for _, p := range parts {
			if p.Events != nil {
				srcs = append(srcs, p.Events)
				dicts = append(dicts, p.Events.Dict)
			}
		}
		sorted := make(chan []uint64, 1)
		go func() { sorted <- idKeys(srcs, n) }()
		sized := make(chan *frame.Dict, 1)
		go func() { sized <- frame.NewDict(distinctStrings(dicts) * 21 / 20) }()
		e = frame.New(nil, 0)
		e.Grow(n, nid, nprop)
		e.Dict = <-sized
		for _, p := range parts {
			if p.Events == nil {
				continue
			}
			if err := e.AppendEvents(p.Events); err != nil {
				panic(err) // ruled out above
			}
			p.Events = nil
		}
		keys = <-sorted // and srcs are dropped
	}
	for _, p := range parts {
		p.Events, p.Quarantine = nil, nil
	}
	if len(e.Str[frame.SessionKey]) != n {
		e.Str[frame.SessionKey] = make([]uint32, n)
	}

	// String ranks (restricted to the strings each column uses) are
	// computed while the merged parts are collected and duplicates found:
	// these only read e.
	var names, users, products ranks
	var wg sync.WaitGroup
	wg.Go(func() {
		strs := e.Dict.Strings()
		names = columnRanks(strs, e.Str[frame.EventName])
		users = columnRanks(strs, e.Str[frame.UserKey])
		products = columnRanks(strs, e.Str[frame.Product])
	})
	if only < 0 && n >= 1<<16 {
		// The parts' columns are garbage now. Collect them, so that the
		// rest of the build reuses their memory rather than growing the
		// heap, as far as it can.
		runtime.GC()
	}
	drop, dups := dedupe(e, keys)
	wg.Wait()
	kept := n - dups
	out.Stats.Invalid = int64(nq)
	out.Stats.ValidRows = int64(n)
	out.Stats.RawRows = int64(n + nq)
	out.Stats.KeptRows = int64(kept)
	out.Stats.Duplicates = int64(dups)
	for i, s := range e.Skewed {
		if s && !drop[i] {
			out.Stats.Skewed++
		}
	}

	byUser := sortByUser(e, drop, kept, users)
	perm := byName(e, byUser, names)

	// Session keys are interned while the columns are permuted (Permute
	// does not touch the dictionary): assignSessions writes the keys by
	// old index into the old SessionKey column; Permute gathers a stand-in
	// column, then overwritten with the keys in the new order.
	s := sessionColumns{dict: e.Dict, sid: e.Str[frame.SessionID], product: e.Str[frame.Product],
		user: e.Str[frame.UserKey], key: e.Str[frame.SessionKey]}
	e.Str[frame.SessionKey] = e.Str[frame.SessionID]
	wg.Go(func() { assignSessions(s, byUser, products, rules.SessionGap.Milliseconds()) })
	e.Permute(perm)
	wg.Wait()
	sk := e.Str[frame.SessionKey]
	for k, i := range perm {
		sk[k] = s.key[i]
	}
	out.Events = e
	return out
}

var seed = maphash.MakeSeed()

// distinctStrings estimates how many distinct strings dicts hold together
// (a HyperLogLog of 2^14 registers: about 1% off).
func distinctStrings(dicts []*frame.Dict) int {
	const p = 14
	reg := make([]uint8, 1<<p)
	for _, d := range dicts {
		for _, s := range d.Strings() {
			h := maphash.String(seed, s)
			r := uint8(bits.LeadingZeros64(h<<p|1<<(p-1))) + 1
			if j := h >> (64 - p); r > reg[j] {
				reg[j] = r
			}
		}
	}
	m := float64(len(reg))
	sum, zeros := 0.0, 0
	for _, r := range reg {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	est := 0.7213 / (1 + 1.079/m) * m * m / sum
	if est <= 2.5*m && zeros > 0 {
		est = m * math.Log(m/float64(zeros)) // few strings: linear counting
	}
	return int(est)
}

// Duplicates are found through keys, one per event: the hash of its
// event_id with the low bits replaced by the event's index, sorted. Events
// whose keys agree above the index bits are then compared in full. At
// least 33 bits of hash are left, so few such groups are not copies of one
// event.

// idKeys returns the sorted keys of the events of srcs, taken as one
// sequence of n events.
func idKeys(srcs []*frame.Events, n int) []uint64 {
	keys := make([]uint64, 0, n)
	for _, src := range srcs {
		for i := range src.Len() {
			keys = append(keys, maphash.Bytes(seed, src.IDBytes[src.IDOff[i]:src.IDOff[i+1]]))
		}
	}
	return sortKeys(keys)
}

// indexBits is how many low bits of a key hold the index, for n events.
func indexBits(n int) uint { return uint(max(bits.Len(uint(n-1)), 1)) }

// sortKeys turns hashes (of the events' ids, in order) into sorted keys,
// in place.
func sortKeys(hashes []uint64) []uint64 {
	mask := uint64(1)<<indexBits(len(hashes)) - 1
	for i, h := range hashes {
		hashes[i] = h&^mask | uint64(i)
	}
	sortUniform(hashes)
	return hashes
}

// dedupe marks in drop every event of e but one per event_id: the earliest
// received_at, and among copies received at the same instant the smallest
// by compareCopies, so the choice never depends on input order. keys are
// e's sorted keys (see idKeys); equal ids must have equal hashes, but
// equal hashes need not be of equal ids. dups is the number of events
// dropped.
func dedupe(e *frame.Events, keys []uint64) (drop []bool, dups int) {
	n := len(keys)
	drop = make([]bool, n)
	idxBits := indexBits(n)
	mask := uint64(1)<<idxBits - 1
	var byCopy func(a, b uint64) int // made once, used for the rare groups
	for i := 0; i < n; {
		j := i + 1
		for j < n && keys[j]>>idxBits == keys[i]>>idxBits {
			j++
		}
		if j-i > 1 {
			// One hash, possibly several ids: keep the best copy of each id.
			if byCopy == nil {
				strs := e.Dict.Strings()
				byCopy = func(a, b uint64) int { return compareCopies(e, strs, int32(a&mask), int32(b&mask)) }
			}
			group := keys[i:j]
			slices.SortFunc(group, byCopy)
			for k := 1; k < len(group); k++ {
				if bytes.Equal(e.ID(int(group[k]&mask)), e.ID(int(group[k-1]&mask))) {
					drop[group[k]&mask] = true
					dups++
				}
			}
		}
		i = j
	}
	return drop, dups
}

// sortUniform sorts keys that are uniform in their top bits: an in-place
// MSD radix sort (American flag sort) of up to 10 bits a pass, so that a
// pass's buckets stay in cache, down to buckets of a few keys, which are
// sorted by insertion.
func sortUniform(keys []uint64) { radixSort(keys, 64) }

// radixSort sorts keys that agree on their bits from shift up.
func radixSort(keys []uint64, shift uint) {
	n := len(keys)
	if n <= 24 || shift == 0 {
		for i := 1; i < n; i++ {
			for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
				keys[j], keys[j-1] = keys[j-1], keys[j]
			}
		}
		return
	}
	b := min(uint(bits.Len(uint(n)))-3, 10, shift) // about 8 keys a bucket, at most 1024 buckets
	shift -= b
	mask := uint64(1)<<b - 1
	var start, next [1<<10 + 1]int32 // bucket d is keys[start[d]:start[d+1]]
	for _, k := range keys {
		start[k>>shift&mask+1]++
	}
	nb := int(mask) + 1
	for d := 1; d <= nb; d++ {
		start[d] += start[d-1]
	}
	copy(next[:nb], start[:nb])
	for d := range nb {
		for i := next[d]; i < start[d+1]; i = next[d] {
			// Carry keys[i] to its bucket, and the key there to its own,
			// until one belongs at i.
			k := keys[i]
			for e := k >> shift & mask; e != uint64(d); e = k >> shift & mask {
				j := next[e]
				next[e]++
				k, keys[j] = keys[j], k
			}
			keys[i] = k
			next[d]++
		}
	}
	for d := range nb {
		radixSort(keys[start[d]:start[d+1]], shift)
	}
}

// copyColumns are the string columns compareCopies compares, in order.
var copyColumns = [...]frame.Column{frame.EventName, frame.UserID, frame.DeviceID, frame.SessionID,
	frame.Product, frame.Platform, frame.AppVersion, frame.Country}

// compareCopies orders events a and b by event_id, then the copy to keep
// first: received_at, event_time, client event_time, the copyColumns'
// strings, then properties (by count, then pair by pair in key order, key
// then value). strs are e.Dict's strings.
func compareCopies(e *frame.Events, strs []string, a, b int32) int {
	if c := bytes.Compare(e.ID(int(a)), e.ID(int(b))); c != 0 {
		return c
	}
	if c := cmp.Compare(e.ReceivedAt[a], e.ReceivedAt[b]); c != 0 {
		return c
	}
	if c := cmp.Compare(e.EventTime[a], e.EventTime[b]); c != 0 {
		return c
	}
	if c := cmp.Compare(e.ClientTime[a], e.ClientTime[b]); c != 0 {
		return c
	}
	for _, col := range copyColumns {
		if x, y := e.Str[col][a], e.Str[col][b]; x != y {
			return strings.Compare(strs[x], strs[y])
		}
	}
	ka, va := e.Props(int(a))
	kb, vb := e.Props(int(b))
	if c := cmp.Compare(len(ka), len(kb)); c != 0 {
		return c
	}
	for j := range ka {
		if ka[j] != kb[j] {
			return strings.Compare(strs[ka[j]], strs[kb[j]])
		}
		if va[j] != vb[j] {
			return strings.Compare(strs[va[j]], strs[vb[j]])
		}
	}
	return 0
}

// ranks maps a dictionary id to the rank of its string among the strings
// one column uses, in byte order (ids the column does not use map to
// anything); n is the number of those strings.
type ranks struct {
	rank []uint32
	n    int
}

// columnRanks returns the ranks of the strings col uses; strs are the
// dictionary's strings.
func columnRanks(strs []string, col []uint32) ranks {
	rank := make([]uint32, len(strs)) // first 1 for a used id, then its rank
	var used []uint32
	for _, id := range col {
		if rank[id] == 0 {
			rank[id] = 1
			used = append(used, id)
		}
	}
	slices.SortFunc(used, func(a, b uint32) int { return strings.Compare(strs[a], strs[b]) })
	for r, id := range used {
		rank[id] = uint32(r)
	}
	return ranks{rank, len(used)}
}

// timeIdx is an event's index with its event_time.
type timeIdx struct {
	t   int64
	idx int32
}

// sortByUser returns the kept events (those not in drop; kept of them)
// sorted by (user_key, event_time, event_id): a counting sort on the
// user_key ranks, then each user's events sorted by time and id.
func sortByUser(e *frame.Events, drop []bool, kept int, users ranks) []timeIdx {
	col := e.Str[frame.UserKey]
	next := make([]int32, users.n+1)
	for i, id := range col {
		if !drop[i] {
			next[users.rank[id]+1]++
		}
	}
	for u := 1; u <= users.n; u++ {
		next[u] += next[u-1]
	}
	out := make([]timeIdx, kept)
	for i, id := range col {
		if !drop[i] {
			u := users.rank[id]
			out[next[u]] = timeIdx{e.EventTime[i], int32(i)}
			next[u]++
		}
	}
	// next[u] is now where user u's events end.
	byTimeID := func(a, b timeIdx) int {
		if a.t != b.t {
			return cmp.Compare(a.t, b.t)
		}
		return bytes.Compare(e.ID(int(a.idx)), e.ID(int(b.idx)))
	}
	lo := int32(0)
	for _, hi := range next[:users.n] {
		run := out[lo:hi]
		lo = hi
		if len(run) > 12 {
			slices.SortFunc(run, byTimeID)
			continue
		}
		for i := 1; i < len(run); i++ {
			for j := i; j > 0 && lessTimeID(e, run[j], run[j-1]); j-- {
				run[j], run[j-1] = run[j-1], run[j]
			}
		}
	}
	return out
}

// lessTimeID reports whether a is before b by (event_time, event_id).
func lessTimeID(e *frame.Events, a, b timeIdx) bool {
	if a.t != b.t {
		return a.t < b.t
	}
	return bytes.Compare(e.ID(int(a.idx)), e.ID(int(b.idx))) < 0
}

// byName returns the indices of the events of byUser, sorted by (user_key,
// event_time, event_id), stably sorted by event_name rank: the day's order.
func byName(e *frame.Events, byUser []timeIdx, names ranks) []int32 {
	col := e.Str[frame.EventName]
	next := make([]int32, names.n+1)
	for _, x := range byUser {
		next[names.rank[col[x.idx]]+1]++
	}
	for r := 1; r <= names.n; r++ {
		next[r] += next[r-1]
	}
	perm := make([]int32, len(byUser))
	for _, x := range byUser {
		r := names.rank[col[x.idx]]
		perm[next[r]] = x.idx
		next[r]++
	}
	return perm
}

// sessionTimeLayout formats an inferred session's start.
const sessionTimeLayout = "2006-01-02T15:04:05.000Z"

// sessionColumns are what assignSessions reads and writes: e's dictionary,
// session_id, product and user_key columns, and the column it sets.
type sessionColumns struct {
	dict                    *frame.Dict
	sid, product, user, key []uint32
}

// assignSessions sets s.key[i] for the events i of byUser (sorted by
// user_key, event_time, event_id): "s:" + session_id when the client sent
// one (one string per session_id); otherwise the events of one (product,
// user_key) without a session_id, in time order, form sessions that end
// after gap milliseconds without an event (a gap of exactly gap continues
// the session), keyed "i:<product>|<user_key>|<start>". Events of one
// (product, user_key) at one instant get the same key whatever their order,
// so ties need no event_id order here. It only adds to s.dict.
func assignSessions(s sessionColumns, byUser []timeIdx, products ranks, gap int64) {
	dict := s.dict
	strs := dict.Strings()                // the strings of the ids in the columns; enough to read them
	explicit := make([]uint32, len(strs)) // session_id id → id of "s:" + session_id (0: not yet)
	next := make([]int32, products.n+1)
	m := 0
	for _, x := range byUser {
		i := x.idx
		if sid := s.sid[i]; sid != 0 {
			k := explicit[sid]
			if k == 0 {
				k = dict.ID("s:" + strs[sid])
				explicit[sid] = k
			}
			s.key[i] = k
		} else {
			next[products.rank[s.product[i]]+1]++
			m++
		}
	}
	if m == 0 {
		return
	}
	// Stably by product: (product, user_key, event_time) order.
	for r := 1; r <= products.n; r++ {
		next[r] += next[r-1]
	}
	inferred := make([]timeIdx, m)
	for _, x := range byUser {
		if s.sid[x.idx] == 0 {
			r := products.rank[s.product[x.idx]]
			inferred[next[r]] = x
			next[r]++
		}
	}
	var buf []byte
	var key uint32
	for k, x := range inferred {
		i := x.idx
		if k == 0 || s.product[i] != s.product[inferred[k-1].idx] || s.user[i] != s.user[inferred[k-1].idx] || x.t-inferred[k-1].t > gap {
			buf = append(buf[:0], "i:"...)
			buf = append(buf, strs[s.product[i]]...)
			buf = append(buf, '|')
			buf = append(buf, strs[s.user[i]]...)
			buf = append(buf, '|')
			buf = time.UnixMilli(x.t).UTC().AppendFormat(buf, sessionTimeLayout)
			key = dict.ID(string(buf))
		}
		s.key[i] = key
	}
}
