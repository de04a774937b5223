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
// Build panics if the day's event ids or properties overflow frame's
// 32-bit offsets, or it has 2^31 events or more.
func Build(parts []*Part, rules Rules) Day {
	var out Day
	n, nq, nid, nprop := 0, 0, 0, 0
	base := -1 // the part with the most events: the others are appended to it
	for i, p := range parts {
		nq += len(p.Quarantine)
		out.Stats.RepairedUTF8 += p.RepairedUTF8
		if p.Events == nil {
			continue
		}
		n += p.Events.Len()
		nid += len(p.Events.IDBytes)
		nprop += len(p.Events.PropKey)
		if base < 0 || p.Events.Len() > parts[base].Events.Len() {
			base = i
		}
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

	// Merge the parts into the largest one: its dictionary and columns are
	// kept, the columns grown once to the day's size; each other part is
	// copied once, its strings remapped, then dropped.
	var e *frame.Events
	if base < 0 {
		e = frame.New(nil, 0)
	} else {
		e = parts[base].Events
		parts[base].Events = nil
		if n > e.Len() {
			e.Grow(n-e.Len(), nid-len(e.IDBytes), nprop-len(e.PropKey))
		}
		for _, p := range parts {
			if p.Events == nil {
				continue
			}
			if err := e.AppendEvents(p.Events); err != nil {
				panic(err) // ruled out above
			}
			p.Events = nil
		}
	}
	for _, p := range parts {
		p.Quarantine = nil
	}
	if len(e.Str[frame.SessionKey]) != n {
		e.Str[frame.SessionKey] = make([]uint32, n)
	}
	out.Stats.Invalid = int64(nq)
	out.Stats.ValidRows = int64(n)
	out.Stats.RawRows = int64(n + nq)

	// String ranks (restricted to the strings each column uses) are
	// computed while duplicates are found: both only read e.
	var names, users, products ranks
	var wg sync.WaitGroup
	wg.Go(func() {
		strs := e.Dict.Strings()
		names = columnRanks(strs, e.Str[frame.EventName])
		users = columnRanks(strs, e.Str[frame.UserKey])
		products = columnRanks(strs, e.Str[frame.Product])
	})
	drop, dups := dedupe(e)
	wg.Wait()
	kept := n - dups
	out.Stats.KeptRows = int64(kept)
	out.Stats.Duplicates = int64(dups)
	for i, s := range e.Skewed {
		if s && !drop[i] {
			out.Stats.Skewed++
		}
	}

	byUser := sortByUser(e, drop, kept, users)
	assignSessions(e, byUser, products, rules.SessionGap.Milliseconds())
	perm := byName(e, byUser, names)
	byUser = nil
	e.Permute(perm)
	out.Events = e
	return out
}

var seed = maphash.MakeSeed()

// hashIdx is an event's index with the hash of its event_id.
type hashIdx struct {
	h   uint64
	idx int32
}

// dedupe marks in drop every event but one per event_id: the earliest
// received_at, and among copies received at the same instant the smallest
// by compareCopies, so the choice never depends on input order. dups is the
// number of events dropped.
func dedupe(e *frame.Events) (drop []bool, dups int) {
	n := e.Len()
	drop = make([]bool, n)
	if n < 2 {
		return drop, 0
	}
	hashes := make([]uint64, n)
	for i := range hashes {
		hashes[i] = maphash.Bytes(seed, e.IDBytes[e.IDOff[i]:e.IDOff[i+1]])
	}
	return dedupeHashed(e, hashes)
}

// dedupeHashed is dedupe given the hashes of the events' ids (equal ids
// must have equal hashes; equal hashes need not be of equal ids).
func dedupeHashed(e *frame.Events, hashes []uint64) (drop []bool, dups int) {
	n := e.Len()
	drop = make([]bool, n)
	keys := sortHashes(hashes)
	var byCopy func(a, b hashIdx) int // made once, used for the rare groups
	for i := 0; i < n; {
		j := i + 1
		for j < n && keys[j].h == keys[i].h {
			j++
		}
		if j-i > 1 {
			// One hash, possibly several ids: keep the best copy of each id.
			if byCopy == nil {
				strs := e.Dict.Strings()
				byCopy = func(a, b hashIdx) int { return compareCopies(e, strs, a.idx, b.idx) }
			}
			group := keys[i:j]
			slices.SortFunc(group, byCopy)
			for k := 1; k < len(group); k++ {
				if bytes.Equal(e.ID(int(group[k].idx)), e.ID(int(group[k-1].idx))) {
					drop[group[k].idx] = true
					dups++
				}
			}
		}
		i = j
	}
	return drop, dups
}

// sortHashes returns the events' indices sorted by hashes[i]. The hashes
// are uniform, so one counting pass on their top bits splits them into
// buckets of a few events each, then sorted by insertion.
func sortHashes(hashes []uint64) []hashIdx {
	n := len(hashes)
	keys := make([]hashIdx, n)
	if n < 256 {
		for i, h := range hashes {
			keys[i] = hashIdx{h, int32(i)}
		}
		slices.SortFunc(keys, func(a, b hashIdx) int { return cmp.Compare(a.h, b.h) })
		return keys
	}
	b := bits.Len(uint(n)) - 3 // about 4 to 8 events per bucket
	shift := 64 - b
	start := make([]int32, 1<<b+1)
	for _, h := range hashes {
		start[h>>shift+1]++
	}
	for i := 1; i < len(start); i++ {
		start[i] += start[i-1]
	}
	next := slices.Clone(start[:len(start)-1])
	for i, h := range hashes {
		k := h >> shift
		keys[next[k]] = hashIdx{h, int32(i)}
		next[k]++
	}
	for k := 0; k < len(start)-1; k++ {
		bucket := keys[start[k]:start[k+1]]
		if len(bucket) > 64 {
			slices.SortFunc(bucket, func(a, b hashIdx) int { return cmp.Compare(a.h, b.h) })
			continue
		}
		for i := 1; i < len(bucket); i++ {
			for j := i; j > 0 && bucket[j].h < bucket[j-1].h; j-- {
				bucket[j], bucket[j-1] = bucket[j-1], bucket[j]
			}
		}
	}
	return keys
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

// assignSessions sets e's SessionKey of the events of byUser (sorted by
// user_key, event_time, event_id): "s:" + session_id when the client sent
// one (one string per session_id); otherwise the events of one (product,
// user_key) without a session_id, in time order, form sessions that end
// after gap milliseconds without an event (a gap of exactly gap continues
// the session), keyed "i:<product>|<user_key>|<start>". Events of one
// (product, user_key) at one instant get the same key whatever their order,
// so ties need no event_id order here.
func assignSessions(e *frame.Events, byUser []timeIdx, products ranks, gap int64) {
	dict := e.Dict
	strs := dict.Strings() // the strings of the ids in e so far; enough to read them
	sid, prod, user, sk := e.Str[frame.SessionID], e.Str[frame.Product], e.Str[frame.UserKey], e.Str[frame.SessionKey]
	explicit := make([]uint32, len(strs)) // session_id id → id of "s:" + session_id (0: not yet)
	next := make([]int32, products.n+1)
	m := 0
	for _, x := range byUser {
		i := x.idx
		if s := sid[i]; s != 0 {
			k := explicit[s]
			if k == 0 {
				k = dict.ID("s:" + strs[s])
				explicit[s] = k
			}
			sk[i] = k
		} else {
			next[products.rank[prod[i]]+1]++
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
		if sid[x.idx] == 0 {
			r := products.rank[prod[x.idx]]
			inferred[next[r]] = x
			next[r]++
		}
	}
	var buf []byte
	var key uint32
	for k, x := range inferred {
		i := x.idx
		if k == 0 || prod[i] != prod[inferred[k-1].idx] || user[i] != user[inferred[k-1].idx] || x.t-inferred[k-1].t > gap {
			buf = append(buf[:0], "i:"...)
			buf = append(buf, strs[prod[i]]...)
			buf = append(buf, '|')
			buf = append(buf, strs[user[i]]...)
			buf = append(buf, '|')
			buf = time.UnixMilli(x.t).UTC().AppendFormat(buf, sessionTimeLayout)
			key = dict.ID(string(buf))
		}
		sk[i] = key
	}
}
