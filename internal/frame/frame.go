// Package frame holds events as columns: strings dictionary-encoded to
// integer ids, times as int64, event ids as one byte slice with offsets,
// properties as offsets into key and value id columns. A day of events is
// one Events; the job never holds a struct, string header or map per event.
package frame

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"iter"
	"math"
	"math/bits"
	"slices"
	"strings"
	"unsafe"
)

// Dict gives dense uint32 ids to strings, in order of first use. Id 0 is
// always "" (a null or empty string).
//
// A day's dictionary holds a million strings and stays live through every
// collection while a day is built, so it holds almost no pointers, which
// leaves the garbage collector almost nothing in it to mark:
//   - The bytes of the strings it holds are copied into its own chunks of
//     memory (arena), and each string is found by its chunk, offset and
//     length, not by a string header: a few dozen pointers for the
//     collector to follow, not a million.
//   - The index is a table of 64-bit slots, so holds no pointer: each holds
//     an id and 32 bits of its string's hash (open addressing, linear
//     probing, at most three quarters full: eight slots a cache line), and
//     a string is compared only with the strings whose slots carry its
//     hash bits.
type Dict struct {
	ents   []strEnt // by id: where the string's bytes are
	chunks [][]byte // the arena; the last is being filled (its length: what is used)
	// The index (nil once sealed): a string's probe starts at the slot of
	// its hash's top bits; a slot is empty (0) or holds the low 32 bits of
	// its string's hash (high half) and the string's id plus one.
	slots []uint64
	shift uint // 64 - log2(len(slots))
}

// strEnt locates a string: n bytes at off in chunk.
type strEnt struct{ chunk, off, n uint32 }

// hashString is the index's hash (a variable, for tests of collisions).
var hashString = func() func(string) uint64 {
	seed := maphash.MakeSeed()
	return func(s string) uint64 { return maphash.String(seed, s) }
}()

// Arena chunks grow from minChunk to maxChunk bytes as the dictionary does;
// a string longer than a chunk gets one of its own.
const (
	minChunk = 4 << 10
	maxChunk = 1 << 20
)

// keep copies b into the arena and returns where it is.
func (d *Dict) keep(b []byte) strEnt {
	if len(b) == 0 {
		return strEnt{}
	}
	last := len(d.chunks) - 1
	if last < 0 || cap(d.chunks[last])-len(d.chunks[last]) < len(b) {
		size := minChunk
		if last >= 0 {
			size = min(max(2*cap(d.chunks[last]), minChunk), maxChunk)
		}
		d.chunks = append(d.chunks, make([]byte, 0, max(size, len(b))))
		last++
	}
	c := d.chunks[last]
	d.chunks[last] = append(c, b...)
	return strEnt{uint32(last), uint32(len(c)), uint32(len(b))}
}

// str is the string at e (its bytes are never written again).
func (d *Dict) str(e strEnt) string { return strAt(d.chunks, e) }

// strAt is the string at e in chunks.
func strAt(chunks [][]byte, e strEnt) string {
	if e.n == 0 {
		return ""
	}
	c := chunks[e.chunk]
	return unsafe.String(&c[:e.off+e.n][e.off], e.n)
}

// NewDict returns a dictionary holding only "" (id 0), sized for n strings.
func NewDict(n int) *Dict {
	d := &Dict{ents: make([]strEnt, 1, n+1)}
	d.makeIndex(n + 1)
	return d
}

// DictOf returns the dictionary of strs (strs[0] must be "", and no string
// may repeat), sealed (see Seal). It copies the strings.
func DictOf(strs []string) *Dict {
	if len(strs) == 0 || strs[0] != "" {
		panic("frame: DictOf: strs[0] is not \"\"")
	}
	size := 0
	for _, s := range strs {
		size += len(s)
	}
	d := &Dict{ents: make([]strEnt, len(strs)), chunks: [][]byte{make([]byte, 0, size)}}
	for i, s := range strs {
		d.ents[i] = d.keep(unsafe.Slice(unsafe.StringData(s), len(s)))
	}
	return d
}

// Seal drops the index from strings to ids, which only ID, Lookup and
// LookupBytes use, to save its memory while the dictionary is only read
// (by Str and Strings). They rebuild it if called later.
func (d *Dict) Seal() { d.slots = nil }

// index rebuilds the index if Seal dropped it.
func (d *Dict) index() {
	if d.slots == nil {
		d.makeIndex(len(d.ents))
	}
}

// makeIndex makes an index with room for n strings and indexes the
// dictionary's.
func (d *Dict) makeIndex(n int) {
	log := max(bits.Len(uint((4*n+2)/3)), 4) // at most three quarters full
	d.slots, d.shift = Make[uint64](1<<log, 0), uint(64-log)
	for i, e := range d.ents {
		d.indexAs(hashString(d.str(e)), uint32(i))
	}
}

// indexAs indexes id, whose string's hash is h (not indexed yet).
func (d *Dict) indexAs(h uint64, id uint32) {
	mask := uint64(len(d.slots) - 1)
	i := h >> d.shift
	for d.slots[i] != 0 {
		i = (i + 1) & mask
	}
	d.slots[i] = h<<32 | uint64(id+1)
}

// find returns the id of s, of hash h, if the dictionary holds it.
func (d *Dict) find(s string, h uint64) (uint32, bool) {
	mask := uint64(len(d.slots) - 1)
	for i := h >> d.shift; ; i = (i + 1) & mask {
		v := d.slots[i]
		if v == 0 {
			return 0, false
		}
		if v>>32 == h&(1<<32-1) {
			if id := uint32(v) - 1; d.str(d.ents[id]) == s {
				return id, true
			}
		}
	}
}

// ID returns s's id, adding (a copy of) s if it is new.
func (d *Dict) ID(s string) uint32 {
	return d.IDBytes(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// IDBytes is ID(string(b)), without allocating a string for a b it holds.
func (d *Dict) IDBytes(b []byte) uint32 {
	d.index()
	s := unsafe.String(unsafe.SliceData(b), len(b)) // only read, and not kept
	h := hashString(s)
	if id, ok := d.find(s, h); ok {
		return id
	}
	return d.add(b, h)
}

// IDIf is IDBytes(b) if the dictionary holds b or ok(b), with b hashed
// and looked up once either way; else it adds nothing and says so.
func (d *Dict) IDIf(b []byte, ok func([]byte) bool) (uint32, bool) {
	d.index()
	s := unsafe.String(unsafe.SliceData(b), len(b)) // only read, and not kept
	h := hashString(s)
	if id, found := d.find(s, h); found {
		return id, true
	}
	if !ok(b) {
		return 0, false
	}
	return d.add(b, h), true
}

// add adds b, of hash h, which the dictionary lacks, and returns its id.
func (d *Dict) add(b []byte, h uint64) uint32 {
	id := uint32(len(d.ents))
	d.ents = append(d.ents, d.keep(b))
	if 4*len(d.ents) > 3*len(d.slots) {
		d.makeIndex(2 * len(d.ents)) // indexes the new string too
	} else {
		d.indexAs(h, id)
	}
	return id
}

// intern sets to[o] to the id of src's string o, added if new, for each o
// in olds. It is ID of each in turn, done a batch of strings at a time so
// that the memory each lookup waits for (a slot, the candidate's entry,
// its bytes: cache misses in a dictionary of a million strings) is loaded
// for the whole batch at once rather than one string after another.
func (d *Dict) intern(src Strs, olds, to []uint32) {
	d.index()
	const batch = 16
	var (
		strs [batch]string
		hs   [batch]uint64
		cand [batch]uint32 // the id of the first slot carrying the hash's bits, plus one; 0: none
		ents [batch]strEnt
	)
	for len(olds) > 0 {
		b := olds[:min(batch, len(olds))]
		olds = olds[len(b):]
		for j, o := range b {
			strs[j] = src.At(o)
			hs[j] = hashString(strs[j])
		}
		mask := uint64(len(d.slots) - 1)
		for j := range b {
			cand[j] = 0
			for i := hs[j] >> d.shift; d.slots[i] != 0; i = (i + 1) & mask {
				if v := d.slots[i]; v>>32 == hs[j]&(1<<32-1) {
					cand[j] = uint32(v)
					break
				}
			}
		}
		for j := range b {
			if cand[j] != 0 {
				ents[j] = d.ents[cand[j]-1]
			}
		}
		for j, o := range b {
			if cand[j] != 0 && strAt(d.chunks, ents[j]) == strs[j] {
				to[o] = cand[j] - 1
				continue
			}
			// New, or another string's hash bits: the whole probe.
			if id, ok := d.find(strs[j], hs[j]); ok {
				to[o] = id
				continue
			}
			to[o] = d.add(unsafe.Slice(unsafe.StringData(strs[j]), len(strs[j])), hs[j])
		}
	}
}

// Lookup returns s's id, if s is in the dictionary.
func (d *Dict) Lookup(s string) (uint32, bool) {
	d.index()
	return d.find(s, hashString(s))
}

// LookupBytes is Lookup of string(b), without allocating.
func (d *Dict) LookupBytes(b []byte) (uint32, bool) {
	return d.Lookup(unsafe.String(unsafe.SliceData(b), len(b))) // only read, and not kept
}

// Str returns the string of id.
func (d *Dict) Str(id uint32) string { return d.str(d.ents[id]) }

// Len is the number of strings, "" included.
func (d *Dict) Len() int { return len(d.ents) }

// Strings returns the strings by id as they are now: strings added later
// are not in it, and those in it stay valid.
func (d *Dict) Strings() Strs { return Strs{d.ents, d.chunks} }

// Strs is a dictionary's strings by id (see Dict.Strings).
type Strs struct {
	ents   []strEnt
	chunks [][]byte
}

// At returns the string of id.
func (s Strs) At(id uint32) string { return strAt(s.chunks, s.ents[id]) }

// Size returns the length of id's string, without touching its bytes.
func (s Strs) Size(id uint32) int { return int(s.ents[id].n) }

// Len is the number of strings.
func (s Strs) Len() int { return len(s.ents) }

// All yields each id and its string, in id order.
func (s Strs) All() iter.Seq2[uint32, string] {
	return func(yield func(uint32, string) bool) {
		for id := range s.ents {
			if !yield(uint32(id), s.At(uint32(id))) {
				return
			}
		}
	}
}

// Ranks returns, for each id, the rank of its string among all the
// dictionary's strings in byte order: comparing ranks compares strings.
//
// The strings are sorted by their first 16 bytes, held next to their ids,
// then (ties only) by the strings themselves: a comparison reads string
// memory only when two strings share their first 16 bytes.
func (d *Dict) Ranks() []uint32 {
	type key struct {
		hi, lo uint64 // the first 16 bytes, big-endian, zero-padded
		id     uint32
	}
	keys := make([]key, len(d.ents))
	for i, e := range d.ents {
		var b [16]byte
		copy(b[:], d.str(e))
		keys[i] = key{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:]), uint32(i)}
	}
	slices.SortFunc(keys, func(a, b key) int {
		if a.hi != b.hi {
			return cmp.Compare(a.hi, b.hi)
		}
		if a.lo != b.lo {
			return cmp.Compare(a.lo, b.lo)
		}
		return strings.Compare(d.Str(a.id), d.Str(b.id))
	})
	rank := make([]uint32, len(d.ents))
	for r, k := range keys {
		rank[k.id] = uint32(r)
	}
	return rank
}

// Column names a dictionary-encoded string column of Events.
type Column int

// The dictionary-encoded columns, in the events table's order.
const (
	EventName Column = iota
	UserID
	DeviceID
	SessionID
	Product
	Platform
	AppVersion
	Country
	UserKey
	SessionKey
	NumColumns
)

var columnNames = [NumColumns]string{"event_name", "user_id", "device_id", "session_id", "product",
	"platform", "app_version", "country", "user_key", "session_key"}

func (c Column) String() string { return columnNames[c] }

// Events are rows of the events table as columns, all of one length N.
// Every string column holds ids into Dict; "" (id 0) is null. Event i's
// event_id is IDBytes[IDOff[i]:IDOff[i+1]], or, if UUIDs is set (see
// PackUUIDs), the 16 bytes IDBytes[16i:16i+16] of a canonical UUID with
// IDOff nil; its properties are the
// (PropKey[j], PropVal[j]) for j in [PropOff[i], PropOff[i+1]), keys in
// byte order, each key once. ClientTime 0 is null (as in rollups.Event);
// a client time is held as EncodeClientTime makes it (the epoch is not 0).
type Events struct {
	// Day is the reporting day of the events, as days since 1970-01-01:
	// the events table's date column.
	Day        int32
	Dict       *Dict
	IDBytes    []byte
	IDOff      []uint32 // N+1 offsets into IDBytes; nil if UUIDs
	UUIDs      bool     // event ids are packed canonical UUIDs
	EventTime  []int64
	ClientTime []int64
	ReceivedAt []int64
	Skewed     []bool
	Str        [NumColumns][]uint32
	PropOff    []uint32 // N+1 offsets into PropKey and PropVal
	PropKey    []uint32
	PropVal    []uint32
}

// New returns empty Events with room for n events, sharing dict (a new
// dictionary if nil).
func New(dict *Dict, n int) *Events {
	if dict == nil {
		dict = NewDict(64)
	}
	e := &Events{Dict: dict, IDOff: Make[uint32](1, n+1), PropOff: Make[uint32](1, n+1),
		EventTime: Make[int64](0, n), ClientTime: Make[int64](0, n), ReceivedAt: Make[int64](0, n),
		Skewed: Make[bool](0, n)}
	for c := range e.Str {
		e.Str[c] = Make[uint32](0, n)
	}
	return e
}

// Len is the number of events.
func (e *Events) Len() int { return len(e.EventTime) }

// ID returns event i's event_id as held (not to be modified): its text, or
// its 16 bytes if e.UUIDs. Ids of two Events compare as the ids do only if
// both or neither are packed.
func (e *Events) ID(i int) []byte {
	if e.UUIDs {
		return e.IDBytes[i*UUIDSize : (i+1)*UUIDSize : (i+1)*UUIDSize]
	}
	return e.IDBytes[e.IDOff[i]:e.IDOff[i+1]]
}

// S returns event i's string in column c.
func (e *Events) S(c Column, i int) string { return e.Dict.Str(e.Str[c][i]) }

// Props returns event i's property key and value ids.
func (e *Events) Props(i int) (keys, vals []uint32) {
	lo, hi := e.PropOff[i], e.PropOff[i+1]
	return e.PropKey[lo:hi], e.PropVal[lo:hi]
}

// epochClientTime is how ClientTime holds a client time of exactly the
// epoch, 0 being null: a time no timestamp type can show (292 million
// years BC), which no client sends.
const epochClientTime = math.MinInt64

// EncodeClientTime returns how Events.ClientTime holds the client time ms
// (Unix milliseconds): ms itself, except that the epoch (0, which would be
// null) is held as a stand-in, and math.MinInt64 (that stand-in) as one
// millisecond later. DecodeClientTime undoes it.
func EncodeClientTime(ms int64) int64 {
	switch ms {
	case 0:
		return epochClientTime
	case epochClientTime:
		return epochClientTime + 1
	}
	return ms
}

// DecodeClientTime returns the client time a value v of Events.ClientTime
// holds, in Unix milliseconds, and false if it is null (0).
func DecodeClientTime(v int64) (ms int64, ok bool) {
	switch v {
	case 0:
		return 0, false
	case epochClientTime:
		return 0, true
	}
	return v, true
}

// Row is one event as plain values, to append or to read back (tests and
// the raw-row route use it; a day's events are never held as Rows).
type Row struct {
	EventID                           string
	EventTime, ClientTime, ReceivedAt int64
	Skewed                            bool
	Str                               [NumColumns]string
	Props                             map[string]string
}

// Append adds one event, interning its strings. Its properties are stored
// in key order. (Packed event ids are unpacked first.)
func (e *Events) Append(r *Row) error {
	e.UnpackUUIDs()
	if uint64(len(e.IDBytes))+uint64(len(r.EventID)) > math.MaxUint32 {
		return fmt.Errorf("frame: more than 4 GiB of event ids in one day")
	}
	e.IDBytes = append(e.IDBytes, r.EventID...)
	e.IDOff = append(e.IDOff, uint32(len(e.IDBytes)))
	e.EventTime = append(e.EventTime, r.EventTime)
	e.ClientTime = append(e.ClientTime, r.ClientTime)
	e.ReceivedAt = append(e.ReceivedAt, r.ReceivedAt)
	e.Skewed = append(e.Skewed, r.Skewed)
	for c := range e.Str {
		e.Str[c] = append(e.Str[c], e.Dict.ID(r.Str[c]))
	}
	if len(r.Props) > 0 {
		start := len(e.PropKey)
		for k, v := range r.Props {
			e.PropKey = append(e.PropKey, e.Dict.ID(k))
			e.PropVal = append(e.PropVal, e.Dict.ID(v))
		}
		e.sortProps(start)
	}
	e.PropOff = append(e.PropOff, uint32(len(e.PropKey)))
	return nil
}

// sortProps sorts the properties from start on by key string.
func (e *Events) sortProps(start int) {
	keys, vals := e.PropKey[start:], e.PropVal[start:]
	// Insertion sort: an event has a handful of properties.
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && e.Dict.Str(keys[j]) < e.Dict.Str(keys[j-1]); j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
			vals[j], vals[j-1] = vals[j-1], vals[j]
		}
	}
}

// Row returns event i as a Row (for tests and small outputs).
func (e *Events) Row(i int) Row {
	r := Row{EventID: string(e.AppendIDText(nil, i)), EventTime: e.EventTime[i], ClientTime: e.ClientTime[i],
		ReceivedAt: e.ReceivedAt[i], Skewed: e.Skewed[i]}
	for c := range r.Str {
		r.Str[c] = e.S(Column(c), i)
	}
	keys, vals := e.Props(i)
	if len(keys) > 0 {
		r.Props = make(map[string]string, len(keys))
		for j := range keys {
			r.Props[e.Dict.Str(keys[j])] = e.Dict.Str(vals[j])
		}
	}
	return r
}

// AppendEvents appends src's events to e, which must share src's
// dictionary (see Rebase). Event ids stay packed if both are (or e is
// empty and src's are); else e's become text. It fails, leaving e as it
// was, if e's event ids or properties would overflow 32-bit offsets.
func (e *Events) AppendEvents(src *Events) error {
	if src.Dict != e.Dict {
		panic("frame: AppendEvents of another dictionary's events")
	}
	if uint64(len(e.PropKey))+uint64(len(src.PropKey)) > math.MaxUint32 ||
		uint64(e.IDTextSize(0, e.Len()))+uint64(src.IDTextSize(0, src.Len())) > math.MaxUint32 {
		return fmt.Errorf("frame: more than 4 GiB of event ids or properties in one day")
	}
	if e.Len() == 0 && src.UUIDs && !e.UUIDs {
		e.IDBytes, e.IDOff, e.UUIDs = e.IDBytes[:0], nil, true
	}
	if e.UUIDs && !src.UUIDs {
		e.UnpackUUIDs()
	}
	switch {
	case e.UUIDs == src.UUIDs && src.UUIDs:
		e.IDBytes = append(e.IDBytes, src.IDBytes...)
	case e.UUIDs == src.UUIDs:
		base := uint32(len(e.IDBytes))
		e.IDBytes = append(e.IDBytes, src.IDBytes...)
		for _, o := range src.IDOff[1:] {
			e.IDOff = append(e.IDOff, base+o)
		}
	default: // e text, src packed
		for i := range src.Len() {
			e.IDBytes = src.AppendIDText(e.IDBytes, i)
			e.IDOff = append(e.IDOff, uint32(len(e.IDBytes)))
		}
	}
	e.EventTime = append(e.EventTime, src.EventTime...)
	e.ClientTime = append(e.ClientTime, src.ClientTime...)
	e.ReceivedAt = append(e.ReceivedAt, src.ReceivedAt...)
	e.Skewed = append(e.Skewed, src.Skewed...)
	for c := range e.Str {
		if len(src.Str[c]) != src.Len() {
			// A column src never set (SessionKey before Build): nulls.
			e.Str[c] = append(e.Str[c], make([]uint32, src.Len())...)
			continue
		}
		e.Str[c] = append(e.Str[c], src.Str[c]...)
	}
	base := uint32(len(e.PropKey))
	for _, o := range src.PropOff[1:] {
		e.PropOff = append(e.PropOff, base+o)
	}
	e.PropKey = append(e.PropKey, src.PropKey...)
	e.PropVal = append(e.PropVal, src.PropVal...)
	return nil
}

// Rebase re-encodes e's strings as ids of dict, adding to dict the strings
// e uses that it lacks, and makes dict e's dictionary: the events of a day
// rebased onto one dictionary share every string once. dict copies the
// strings it lacks into its own memory (see Dict), so e's old dictionary
// can go. Rebase is not safe for concurrent use with anything else using
// dict.
func (e *Events) Rebase(dict *Dict) {
	if e.Dict == dict {
		return
	}
	strs := e.Dict.Strings()
	r := make([]uint32, strs.Len()) // old id → new id
	// The strings e uses (an object's dictionary may hold another day's
	// too), then their new ids a batch at a time (Dict.intern).
	for c := range e.Str {
		for _, id := range e.Str[c] {
			r[id] = 1
		}
	}
	for _, col := range [][]uint32{e.PropKey, e.PropVal} {
		for _, id := range col {
			r[id] = 1
		}
	}
	used := make([]uint32, 0, len(r))
	for id, u := range r[1:] {
		if u != 0 {
			used = append(used, uint32(id+1))
		}
	}
	r[0] = 0
	dict.intern(strs, used, r)
	for c := range e.Str {
		Remap(e.Str[c], e.Str[c], r)
	}
	Remap(e.PropKey, e.PropKey, r)
	Remap(e.PropVal, e.PropVal, r)
	e.Dict = dict // property keys stay in byte order: the strings are the same
}

// Remap sets dst[i] to r[src[i]] for each id of src (to src[i] if r is
// nil): ids of one dictionary re-encoded as another's; dst may be src.
func Remap(dst, src, r []uint32) {
	if r == nil {
		copy(dst, src)
		return
	}
	dst = dst[:len(src)]
	for i, id := range src {
		dst[i] = r[id]
	}
}

// Permute reorders the events so that new event i is old event perm[i];
// perm may also leave events out (a filter). Each column is rebuilt in
// turn, so at most one extra column is held at once.
func (e *Events) Permute(perm []int32) {
	ids := make([]byte, 0, len(e.IDBytes))
	var off []uint32
	if !e.UUIDs {
		off = make([]uint32, 1, len(perm)+1)
	}
	for _, p := range perm {
		ids = append(ids, e.ID(int(p))...)
		if !e.UUIDs {
			off = append(off, uint32(len(ids)))
		}
	}
	e.IDBytes, e.IDOff = ids, off
	e.EventTime = gather(e.EventTime, perm)
	e.ClientTime = gather(e.ClientTime, perm)
	e.ReceivedAt = gather(e.ReceivedAt, perm)
	e.Skewed = gather(e.Skewed, perm)
	for c := range e.Str {
		e.Str[c] = gather(e.Str[c], perm)
	}
	pk := make([]uint32, 0, len(e.PropKey))
	pv := make([]uint32, 0, len(e.PropVal))
	poff := make([]uint32, 1, len(perm)+1)
	for _, p := range perm {
		lo, hi := e.PropOff[p], e.PropOff[p+1]
		pk = append(pk, e.PropKey[lo:hi]...)
		pv = append(pv, e.PropVal[lo:hi]...)
		poff = append(poff, uint32(len(pk)))
	}
	e.PropKey, e.PropVal, e.PropOff = pk, pv, poff
}

func gather[T any](col []T, perm []int32) []T {
	out := make([]T, len(perm))
	for i, p := range perm {
		out[i] = col[p]
	}
	return out
}
