package compact

import (
	"bytes"
	"cmp"
	"fmt"
	"hash/maphash"
	"math"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/littlewarehouse/warehouse/internal/frame"
	"github.com/littlewarehouse/warehouse/rollups"
)

// Stats counts what Build did with a day's rows.
type Stats struct {
	RawRows, ValidRows, KeptRows, Duplicates, Invalid int64
	// MissingTime and Skewed split the kept events attributed to
	// received_at (frame.Events.Skewed): MissingTime those without an
	// event_time (ClientTime null), Skewed those whose event_time was
	// present but off (earlier than received_at − MaxLateness or later
	// than received_at + MaxAhead). A client time of exactly the epoch is
	// a time.
	MissingTime, Skewed int64
	RepairedUTF8        int64 // rows whose invalid UTF-8 was replaced
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
// by event_time, client event_time (a null as 0), event_name, user_id,
// device_id, session_id, product, platform, app_version, country, then
// properties (by count, then key by key in key order, key before value),
// and last a null client event_time before the epoch; so the choice
// never depends on input order. It sets session_key: "s:" + session_id when
// the client sent one; otherwise the events of one (product, user_key)
// without a session_id, in time order, form sessions that end after
// rules.SessionGap without an event (a gap of exactly SessionGap continues
// the session), keyed "i:<product>|<user_key>|<start>", start being the
// session's first event_time formatted 2006-01-02T15:04:05.000Z (UTC). The
// events are of one day, so sessions are split at midnight by construction.
//
// Build works on two goroutines at times. It copies each of the parts'
// columns once: the columns it sorts on into day-wide key columns, the
// others straight into their final order, each dropped from the parts once
// copied; key columns no longer needed hold the next columns copied.
//
// Build panics if the day's event ids or properties overflow frame's
// 32-bit offsets, or it has 2^31 events or more.
func Build(parts []*Part, rules Rules) Day {
	out, srcs := takeParts(parts)
	n := int(out.Stats.RawRows - out.Stats.Invalid)
	if n == 0 {
		out.Events = frame.New(nil, 0)
		return out
	}
	// The parts' columns are not merged: the key columns that the dedupe,
	// the sort and the sessions need are (event_time, and the ids of
	// event_name, user_key, session_id and product, in the day's
	// dictionary), and every other column is copied straight from the
	// parts into its final order, each part's column dropped once taken.
	// Meanwhile, the event ids are hashed and sorted for dedupe.
	sorted := make(chan []uint64, 1)
	go func() { sorted <- idKeys(srcs, n) }()
	m := newMerged(srcs)
	k := mergeKeys(m, n)

	// String ranks (restricted to the strings each column uses) are
	// computed while duplicates are found: these only read the columns.
	var names, users, products ranks
	var wg sync.WaitGroup
	wg.Go(func() {
		strs := k.dict.Strings()
		names = columnRanks(strs, k.name)
		users = columnRanks(strs, k.user)
		products = columnRanks(strs, k.product)
	})
	keys := <-sorted
	drop, dups := dedupeMerged(m, keys)
	keys = nil
	wg.Wait()
	kept := n - dups
	out.Stats.ValidRows = int64(n)
	out.Stats.KeptRows = int64(kept)
	out.Stats.Duplicates = int64(dups)
	countSkewed(&out.Stats, m, drop)
	for _, e := range srcs {
		// Read no more from the parts (their copies are in the key columns).
		e.EventTime = nil
		for _, c := range [...]frame.Column{frame.EventName, frame.UserKey, frame.SessionID, frame.Product, frame.SessionKey} {
			e.Str[c] = nil
		}
	}

	byUser, base := sortByUser(m, k.user, k.times, drop, kept, users)
	drop = nil
	out.Events = arrange(m, k, byUser, base, names, products, rules.SessionGap.Milliseconds())
	return out
}

// takeParts takes the parts' quarantine rows, sorted by compareQuarantine,
// into out.Quarantine and their events into srcs, the parts with events in
// their order (event ids all packed or all text), setting each part's
// Events and Quarantine to nil. It fills out.Stats.RawRows, Invalid and
// RepairedUTF8. It panics if the day is too large (see Build).
func takeParts(parts []*Part) (out Day, srcs []*frame.Events) {
	n, nq, nid, nprop := 0, 0, 0, 0
	for _, p := range parts {
		nq += len(p.Quarantine)
		out.Stats.RepairedUTF8 += p.RepairedUTF8
		if p.Events == nil || p.Events.Len() == 0 {
			continue
		}
		n += p.Events.Len()
		nid += p.Events.IDTextSize(0, p.Events.Len()) // as text, should they need unpacking
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

	packed := 0
	for _, p := range parts {
		if p.Events != nil && p.Events.Len() > 0 {
			srcs = append(srcs, p.Events)
			if p.Events.UUIDs {
				packed++
			}
		}
		p.Events, p.Quarantine = nil, nil
	}
	if packed > 0 && packed < len(srcs) {
		// Ids compare alike only in one form: text, as not all are UUIDs.
		for _, e := range srcs {
			e.UnpackUUIDs()
		}
	}
	out.Stats.Invalid = int64(nq)
	out.Stats.RawRows = int64(n + nq)
	return out, srcs
}

// keyColumns are the day-wide columns Build dedupes, sorts and sessions
// on, by day index (see merged), in dict's ids.
type keyColumns struct {
	dict                           *frame.Dict
	times                          []int64
	name, user, sid, product, skey []uint32
}

// mergeKeys returns the key columns of m's n events. If m has one part,
// they are that part's own columns (skey made if the part has none);
// otherwise they are copied from the parts, in one day dictionary
// (m.remap set if the parts' dictionaries differ), and skey is zeros.
func mergeKeys(m *merged, n int) keyColumns {
	srcs := m.parts
	if len(srcs) == 1 {
		e := srcs[0] // nothing to merge: its columns are the key columns
		k := keyColumns{dict: e.Dict, times: e.EventTime,
			name: e.Str[frame.EventName], user: e.Str[frame.UserKey], sid: e.Str[frame.SessionID], product: e.Str[frame.Product],
			skey: e.Str[frame.SessionKey]}
		if len(k.skey) != n {
			k.skey = frame.Make[uint32](n, 0)
		}
		return k
	}
	k := keyColumns{dict: srcs[0].Dict}
	if slices.ContainsFunc(srcs, func(e *frame.Events) bool { return e.Dict != k.dict }) {
		// Parts of dictionaries of their own: a dictionary sized for
		// the day's strings (growing one is slow); each part's
		// strings are looked up once. (Parts rebased onto one
		// dictionary, frame.Events.Rebase, skip this.)
		dicts := make([]*frame.Dict, len(srcs))
		for p, e := range srcs {
			dicts[p] = e.Dict
		}
		k.dict = frame.NewDict(distinctStrings(dicts) * 21 / 20)
		m.remap = make([][]uint32, len(srcs))
		for p, d := range dicts {
			r := make([]uint32, d.Len())
			for i, s := range d.Strings().All() {
				r[i] = k.dict.ID(s)
			}
			m.remap[p] = r
		}
	}
	k.times = frame.Make[int64](n, 0)
	k.name, k.user, k.sid, k.product = frame.Make[uint32](n, 0), frame.Make[uint32](n, 0), frame.Make[uint32](n, 0), frame.Make[uint32](n, 0)
	for p, e := range srcs {
		b, r := m.base[p], m.remapOf(p)
		copy(k.times[b:], e.EventTime)
		frame.Remap(k.name[b:], e.Str[frame.EventName], r)
		frame.Remap(k.user[b:], e.Str[frame.UserKey], r)
		frame.Remap(k.sid[b:], e.Str[frame.SessionID], r)
		frame.Remap(k.product[b:], e.Str[frame.Product], r)
	}
	k.skey = frame.Make[uint32](n, 0)
	return k
}

// countSkewed adds to st.Skewed and st.MissingTime the skewed events of m
// that drop (by day index) keeps.
func countSkewed(st *Stats, m *merged, drop []bool) {
	for p, e := range m.parts {
		b := m.base[p]
		for i, s := range e.Skewed {
			if !s || drop[int(b)+i] {
				continue
			}
			if _, ok := frame.DecodeClientTime(e.ClientTime[i]); ok {
				st.Skewed++
			} else {
				st.MissingTime++
			}
		}
	}
}

// arrange returns the day's events in their final order: the kept events
// of m, byUser (from sortByUser, with base) ordered by event name (byName),
// with session keys set (assignSessions, gap in ms). The key columns of k
// are consumed (their memory holds the columns gathered), and every other
// column is scattered from m's parts, each dropped from its part once
// copied.
func arrange(m *merged, k keyColumns, byUser []timeIdx, base int64, names, products ranks, gap int64) *frame.Events {
	kept := len(byUser)
	n := len(k.times)
	// Session keys are interned while the day's order is found and the
	// columns are copied (neither touches the dictionary): assignSessions
	// writes the keys by day index into skey, gathered last. A key column,
	// once gathered and no longer read, holds the next column gathered.
	var wg sync.WaitGroup
	s := sessionColumns{dict: k.dict, sid: k.sid, product: k.product, user: k.user, key: k.skey, base: base}
	wg.Go(func() { assignSessions(s, byUser, products, gap) })
	perm := byName(k.name, byUser, names)
	e := &frame.Events{Dict: k.dict}
	e.Str[frame.EventName] = gatherInto(frame.Make[uint32](kept, 0), k.name, perm)
	e.Str[frame.UserKey] = gatherInto(k.name[:kept], k.user, perm)
	e.Str[frame.SessionID] = gatherInto(frame.Make[uint32](kept, 0), k.sid, perm)
	e.Str[frame.Product] = gatherInto(frame.Make[uint32](kept, 0), k.product, perm)
	e.EventTime = gatherInto(frame.Make[int64](kept, 0), k.times, perm)
	inv := frame.Make[int32](n, 0) // day index → index in the day's order, or -1 (a duplicate)
	for i := range inv {
		inv[i] = -1
	}
	for j, i := range perm {
		inv[i] = int32(j)
	}
	e.ClientTime = scatterParts(m, k.times[:kept], inv, func(e *frame.Events) *[]int64 { return &e.ClientTime })
	e.ReceivedAt = scatterParts(m, frame.Make[int64](kept, 0), inv, func(e *frame.Events) *[]int64 { return &e.ReceivedAt })
	e.Skewed = scatterParts(m, frame.Make[bool](kept, 0), inv, func(e *frame.Events) *[]bool { return &e.Skewed })
	e.UUIDs = m.parts[0].UUIDs
	e.IDBytes, e.IDOff = scatterIDs(m, inv, kept)
	e.PropOff, e.PropKey, e.PropVal = scatterProps(m, inv, kept)
	wg.Wait()
	e.Str[frame.SessionKey] = gatherInto(k.user[:kept], k.skey, perm)
	free := [][]uint32{k.sid, k.product, k.skey}
	for _, c := range [...]frame.Column{frame.UserID, frame.DeviceID, frame.Platform, frame.AppVersion, frame.Country} {
		var dst []uint32
		if len(free) > 0 {
			dst, free = free[0][:kept], free[1:]
		} else {
			dst = frame.Make[uint32](kept, 0)
		}
		e.Str[c] = scatterStrs(m, dst, inv, c)
	}
	return e
}

// merged addresses the events of several Events as one sequence: the day
// index of event i of parts[p] is base[p]+i.
type merged struct {
	parts []*frame.Events
	base  []int32    // len(parts)+1
	remap [][]uint32 // each part's dictionary ids → the day's; nil if the parts share one dictionary
}

func newMerged(parts []*frame.Events) *merged {
	m := &merged{parts: parts, base: make([]int32, len(parts)+1)}
	for p, e := range parts {
		m.base[p+1] = m.base[p] + int32(e.Len())
	}
	return m
}

// remapOf returns part p's dictionary ids → the day's, or nil if the parts
// share one dictionary.
func (m *merged) remapOf(p int) []uint32 {
	if m.remap == nil {
		return nil
	}
	return m.remap[p]
}

// part returns the part of day index i.
func (m *merged) part(i int32) int {
	if len(m.parts) == 1 {
		return 0
	}
	p, _ := slices.BinarySearch(m.base, i+1)
	return p - 1
}

// at returns the part of day index i and i's index in it.
func (m *merged) at(i int32) (*frame.Events, int) {
	p := m.part(i)
	return m.parts[p], int(i - m.base[p])
}

// id returns the event_id of day index i.
func (m *merged) id(i int32) []byte {
	e, j := m.at(i)
	return e.ID(j)
}

// gatherInto sets dst[k] to col[perm[k]] and returns dst.
func gatherInto[T any](dst, col []T, perm []int32) []T {
	dst = dst[:len(perm)]
	for k, i := range perm {
		dst[k] = col[i]
	}
	return dst
}

// scatterParts sets dst[inv[i]] to the value of day index i in the
// column of the parts that column returns (for the i with inv[i] >= 0),
// and drops that column of the parts: the parts are read in order, dst
// written at random.
func scatterParts[T any](m *merged, dst []T, inv []int32, column func(*frame.Events) *[]T) []T {
	for p, e := range m.parts {
		col := column(e)
		for i, v := range *col {
			if k := inv[int(m.base[p])+i]; k >= 0 {
				dst[k] = v
			}
		}
		*col = nil
	}
	return dst
}

// scatterStrs is scatterParts for the string column c, in the day's
// dictionary.
func scatterStrs(m *merged, dst []uint32, inv []int32, c frame.Column) []uint32 {
	if m.remap == nil {
		return scatterParts(m, dst, inv, func(e *frame.Events) *[]uint32 { return &e.Str[c] })
	}
	for p, e := range m.parts {
		r := m.remap[p]
		for i, id := range e.Str[c] {
			if k := inv[int(m.base[p])+i]; k >= 0 {
				dst[k] = r[id]
			}
		}
		e.Str[c] = nil
	}
	return dst
}

// scatterOffsets returns the offsets, in the order inv gives, of the
// events' runs in a column of the parts whose offsets column returns.
func scatterOffsets(m *merged, inv []int32, kept int, column func(*frame.Events) []uint32) []uint32 {
	off := frame.Make[uint32](kept+1, 0)
	for p, e := range m.parts {
		o := column(e)
		for i := range int(m.base[p+1] - m.base[p]) {
			if k := inv[int(m.base[p])+i]; k >= 0 {
				off[k+1] = o[i+1] - o[i]
			}
		}
	}
	for k := 1; k <= kept; k++ {
		off[k] += off[k-1]
	}
	return off
}

// scatterIDs returns the event ids of the day indices in the order inv
// gives, and drops the parts' ids: packed (off nil) if the parts' are (all
// of them or none).
func scatterIDs(m *merged, inv []int32, kept int) (ids []byte, off []uint32) {
	if m.parts[0].UUIDs {
		ids = frame.Make[byte](kept*frame.UUIDSize, 0)
		for p, e := range m.parts {
			for i := range int(m.base[p+1] - m.base[p]) {
				if k := int(inv[int(m.base[p])+i]); k >= 0 {
					copy(ids[k*frame.UUIDSize:(k+1)*frame.UUIDSize], e.IDBytes[i*frame.UUIDSize:])
				}
			}
			e.IDBytes = nil
		}
		return ids, nil
	}
	off = scatterOffsets(m, inv, kept, func(e *frame.Events) []uint32 { return e.IDOff })
	ids = frame.Make[byte](int(off[kept]), 0)
	for p, e := range m.parts {
		for i := range int(m.base[p+1] - m.base[p]) {
			if k := inv[int(m.base[p])+i]; k >= 0 {
				copy(ids[off[k]:off[k+1]], e.IDBytes[e.IDOff[i]:e.IDOff[i+1]])
			}
		}
		e.IDBytes, e.IDOff = nil, nil
	}
	return ids, off
}

// scatterProps returns the properties of the day indices in the order inv
// gives, in the day's dictionary, and drops the parts'.
func scatterProps(m *merged, inv []int32, kept int) (off, keys, vals []uint32) {
	off = scatterOffsets(m, inv, kept, func(e *frame.Events) []uint32 { return e.PropOff })
	keys, vals = frame.Make[uint32](int(off[kept]), 0), frame.Make[uint32](int(off[kept]), 0)
	for p, e := range m.parts {
		r := m.remapOf(p)
		for i := range int(m.base[p+1] - m.base[p]) {
			k := inv[int(m.base[p])+i]
			if k < 0 {
				continue
			}
			lo, hi := e.PropOff[i], e.PropOff[i+1]
			dk, dv := keys[off[k]:off[k+1]], vals[off[k]:off[k+1]]
			if r == nil {
				copy(dk, e.PropKey[lo:hi])
				copy(dv, e.PropVal[lo:hi])
				continue
			}
			for x, id := range e.PropKey[lo:hi] {
				dk[x] = r[id]
			}
			for x, id := range e.PropVal[lo:hi] {
				dv[x] = r[id]
			}
		}
		e.PropOff, e.PropKey, e.PropVal = nil, nil, nil
	}
	return off, keys, vals // property keys stay in byte order: the strings are the same
}

var seed = maphash.MakeSeed()

// distinctStrings estimates how many distinct strings dicts hold together
// (a HyperLogLog of 2^14 registers: about 1% off).
func distinctStrings(dicts []*frame.Dict) int {
	const p = 14
	reg := make([]uint8, 1<<p)
	for _, d := range dicts {
		for _, s := range d.Strings().All() {
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
	keys := frame.Make[uint64](0, n)
	for _, src := range srcs {
		for i := range src.Len() {
			keys = append(keys, maphash.Bytes(seed, src.ID(i)))
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
	return dedupeMerged(newMerged([]*frame.Events{e}), keys)
}

// dedupeMerged is dedupe for the events of m, by day index.
func dedupeMerged(m *merged, keys []uint64) (drop []bool, dups int) {
	n := len(keys)
	drop = frame.Make[bool](n, 0)
	idxBits := indexBits(n)
	mask := uint64(1)<<idxBits - 1
	byCopy := func(a, b uint64) int { return compareCopies(m, int32(a&mask), int32(b&mask)) }
	for i := 0; i < n; {
		j := i + 1
		for j < n && keys[j]>>idxBits == keys[i]>>idxBits {
			j++
		}
		if j-i > 1 {
			// One hash, possibly several ids: keep the best copy of each id.
			group := keys[i:j]
			slices.SortFunc(group, byCopy)
			for k := 1; k < len(group); k++ {
				if bytes.Equal(m.id(int32(group[k]&mask)), m.id(int32(group[k-1]&mask))) {
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

// compareCopies orders the events of day indices a and b of m by
// event_id, then the copy to keep first: received_at, event_time, client
// event_time (a null as 0, see frame.DecodeClientTime), the copyColumns'
// strings, properties (by count, then pair by pair in key order, key then
// value), then a null client event_time before the epoch.
func compareCopies(m *merged, a, b int32) int {
	ea, i := m.at(a)
	eb, j := m.at(b)
	if c := bytes.Compare(ea.ID(i), eb.ID(j)); c != 0 {
		return c
	}
	if c := cmp.Compare(ea.ReceivedAt[i], eb.ReceivedAt[j]); c != 0 {
		return c
	}
	if c := cmp.Compare(ea.EventTime[i], eb.EventTime[j]); c != 0 {
		return c
	}
	clientA, hasA := frame.DecodeClientTime(ea.ClientTime[i])
	clientB, hasB := frame.DecodeClientTime(eb.ClientTime[j])
	if c := cmp.Compare(clientA, clientB); c != 0 {
		return c
	}
	sa, sb := ea.Dict.Strings(), eb.Dict.Strings()
	for _, col := range copyColumns {
		if c := strings.Compare(sa.At(ea.Str[col][i]), sb.At(eb.Str[col][j])); c != 0 {
			return c
		}
	}
	ka, va := ea.Props(i)
	kb, vb := eb.Props(j)
	if c := cmp.Compare(len(ka), len(kb)); c != 0 {
		return c
	}
	for x := range ka {
		if c := strings.Compare(sa.At(ka[x]), sb.At(kb[x])); c != 0 {
			return c
		}
		if c := strings.Compare(sa.At(va[x]), sb.At(vb[x])); c != 0 {
			return c
		}
	}
	switch {
	case hasA == hasB:
		return 0
	case hasB:
		return -1
	}
	return 1
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
func columnRanks(strs frame.Strs, col []uint32) ranks {
	rank := make([]uint32, strs.Len()) // first 1 for a used id, then its rank
	var used []uint32
	for _, id := range col {
		if rank[id] == 0 {
			rank[id] = 1
			used = append(used, id)
		}
	}
	slices.SortFunc(used, func(a, b uint32) int { return strings.Compare(strs.At(a), strs.At(b)) })
	for r, id := range used {
		rank[id] = uint32(r)
	}
	return ranks{rank, len(used)}
}

// timeIdx is an event's index with its event_time, as milliseconds after
// the day's earliest (the base sortByUser returns): 8 bytes, not 16, as
// an array of them, one per kept event, is the largest a day's build holds
// at its peak. A day's events span a day, far less than the 49 days 32
// bits of milliseconds hold.
type timeIdx struct {
	t   uint32
	idx int32
}

// sortByUser returns the kept events of m (those not in drop; kept of
// them) sorted by (user_key, event_time, event_id): a counting sort on the
// user_key ranks, then each user's events sorted by time and id. col and
// times are m's user_key ids and event_times, by day index. Their times
// are after base, the earliest kept event_time. It panics if the kept
// events span 2^32 ms or more (49 days: a day's span a day).
func sortByUser(m *merged, col []uint32, times []int64, drop []bool, kept int, users ranks) (byUser []timeIdx, base int64) {
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for i, t := range times {
		if !drop[i] {
			lo, hi = min(lo, t), max(hi, t)
		}
	}
	if kept > 0 && uint64(hi-lo) > math.MaxUint32 {
		panic(fmt.Sprintf("compact: a day's events span %d ms, more than 32 bits", hi-lo))
	}
	next := make([]int32, users.n+1)
	for i, id := range col {
		if !drop[i] {
			next[users.rank[id]+1]++
		}
	}
	for u := 1; u <= users.n; u++ {
		next[u] += next[u-1]
	}
	out := frame.Make[timeIdx](kept, 0)
	for i, id := range col {
		if !drop[i] {
			u := users.rank[id]
			out[next[u]] = timeIdx{uint32(times[i] - lo), int32(i)}
			next[u]++
		}
	}
	// next[u] is now where user u's events end.
	byTimeID := func(a, b timeIdx) int {
		if a.t != b.t {
			return cmp.Compare(a.t, b.t)
		}
		return bytes.Compare(m.id(a.idx), m.id(b.idx))
	}
	start := int32(0)
	for _, end := range next[:users.n] {
		run := out[start:end]
		start = end
		if len(run) > 12 {
			slices.SortFunc(run, byTimeID)
			continue
		}
		for i := 1; i < len(run); i++ {
			for j := i; j > 0 && lessTimeID(m, run[j], run[j-1]); j-- {
				run[j], run[j-1] = run[j-1], run[j]
			}
		}
	}
	return out, lo
}

// lessTimeID reports whether a is before b by (event_time, event_id).
func lessTimeID(m *merged, a, b timeIdx) bool {
	if a.t != b.t {
		return a.t < b.t
	}
	return bytes.Compare(m.id(a.idx), m.id(b.idx)) < 0
}

// byName returns the indices of the events of byUser, sorted by (user_key,
// event_time, event_id), stably sorted by event_name rank: the day's order.
// col holds the event_name ids, by index.
func byName(col []uint32, byUser []timeIdx, names ranks) []int32 {
	next := make([]int32, names.n+1)
	for _, x := range byUser {
		next[names.rank[col[x.idx]]+1]++
	}
	for r := 1; r <= names.n; r++ {
		next[r] += next[r-1]
	}
	perm := frame.Make[int32](len(byUser), 0)
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
	base                    int64 // byUser's times are after base (see sortByUser)
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
	strs := dict.Strings()                 // the strings of the ids in the columns; enough to read them
	explicit := make([]uint32, strs.Len()) // session_id id → id of "s:" + session_id (0: not yet)
	next := make([]int32, products.n+1)
	m := 0
	var buf []byte
	// The columns are read by day index, at random: a block's values are
	// loaded first, in a loop of independent loads the processor overlaps,
	// then used (one cache miss after another took most of this function's
	// time). A user's events of one session come together: the last key
	// is reused.
	var sids, prods [sessionBlock]uint32
	lastSid, lastKey := uint32(0), uint32(0)
	for lo := 0; lo < len(byUser); lo += sessionBlock {
		xs := byUser[lo:min(lo+sessionBlock, len(byUser))]
		loadAhead(xs, s.sid, s.product, &sids, &prods)
		for j, x := range xs {
			sid := sids[j]
			if sid == 0 {
				next[products.rank[prods[j]]+1]++
				m++
				continue
			}
			if sid != lastSid {
				lastSid, lastKey = sid, explicit[sid]
				if lastKey == 0 {
					buf = append(append(buf[:0], "s:"...), strs.At(sid)...)
					lastKey = dict.IDBytes(buf)
					explicit[sid] = lastKey
				}
			}
			s.key[x.idx] = lastKey
		}
	}
	if m == 0 {
		return
	}
	// Stably by product: (product, user_key, event_time) order.
	for r := 1; r <= products.n; r++ {
		next[r] += next[r-1]
	}
	inferred := frame.Make[timeIdx](m, 0)
	for lo := 0; lo < len(byUser); lo += sessionBlock {
		xs := byUser[lo:min(lo+sessionBlock, len(byUser))]
		loadAhead(xs, s.sid, s.product, &sids, &prods)
		for j, x := range xs {
			if sids[j] == 0 {
				r := products.rank[prods[j]]
				inferred[next[r]] = x
				next[r]++
			}
		}
	}
	var users [sessionBlock]uint32
	var key, product, user uint32
	var last uint32 // the previous event's time
	for lo := 0; lo < len(inferred); lo += sessionBlock {
		xs := inferred[lo:min(lo+sessionBlock, len(inferred))]
		loadAhead(xs, s.product, s.user, &prods, &users)
		for j, x := range xs {
			if lo+j == 0 || prods[j] != product || users[j] != user || int64(x.t)-int64(last) > gap {
				product, user = prods[j], users[j]
				buf = append(buf[:0], "i:"...)
				buf = append(buf, strs.At(product)...)
				buf = append(buf, '|')
				buf = append(buf, strs.At(user)...)
				buf = append(buf, '|')
				buf = time.UnixMilli(s.base+int64(x.t)).UTC().AppendFormat(buf, sessionTimeLayout)
				key = dict.IDBytes(buf)
			}
			last = x.t
			s.key[x.idx] = key
		}
	}
}

// sessionBlock is how many events assignSessions loads ahead.
const sessionBlock = 256

// loadAhead sets a[j] and b[j] to ca and cb of event xs[j]: independent
// loads, which the processor overlaps, before the values are used.
func loadAhead(xs []timeIdx, ca, cb []uint32, a, b *[sessionBlock]uint32) {
	for j, x := range xs {
		a[j], b[j] = ca[x.idx], cb[x.idx]
	}
}
