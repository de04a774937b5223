// Package segment stores what one raw object holds for one reporting day —
// its candidate events as columns, its invalid rows and its count of
// repaired strings — as one small object under _state/segments/ (docs/design.md
// §Routing and segments). The routing stage reads each new raw object once and writes one
// segment per day the object feeds; a day is then built from its segments
// alone. Segments are a cache, never the truth: a missing or unreadable
// segment only means its raw object is read again.
//
// A segment's key names its day, its raw object and a tag that hashes the
// object's key and ETag, the routing rules and the format version, so a
// changed object, other rules or another format never reuse a segment:
//
//	_state/segments/dt=YYYY-MM-DD/<raw key>.<tag>.lwseg
//
// The format is columnar and compressed (one S2 block, a fast
// Snappy-compatible codec, after a CRC-32C of the block's bytes, so that
// damage is found before the block's claimed length is trusted): a
// dictionary of the segment's strings, then each column as a fixed-width
// little-endian array (event ids as their 16 bytes when all are canonical
// UUIDs, see frame.Events.PackUUIDs; the client and receive times as
// differences from the event time; string ids in 16 bits when the
// dictionary holds at most 65,536 strings).
package segment

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strings"
	"unsafe"

	"github.com/klauspost/compress/s2"

	"github.com/littlewarehouse/warehouse/internal/bufpool"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/frame"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// Prefix is where segments live.
const Prefix = "_state/segments/"

// Version is the segment format; it is part of every tag.
const Version = 5

const magic = "LWSEG5\n"

// maxPayload is the most bytes a segment's payload (its uncompressed
// block) may hold, written (Encode) or read (Decode).
const maxPayload = s2.MaxBlockSize

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Segment is one raw object's rows of one day.
type Segment struct {
	Events       *frame.Events // valid rows as candidate events (SessionKey unset)
	Quarantine   []rollups.Quarantine
	RepairedUTF8 int64
}

// Tag identifies one version of a raw object under one set of routing
// rules: rules is a canonical description of everything routing depends on
// (time zone, lateness bounds).
func Tag(rawKey, etag, rules string) string {
	h := sha256.New()
	fmt.Fprintf(h, "v%d\x00%s\x00%s\x00%s", Version, rawKey, etag, rules)
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// DayPrefix is the folder of day d's segments.
func DayPrefix(d day.Day) string { return Prefix + "dt=" + d.String() + "/" }

// Key is the key of the segment of raw object rawKey (tagged tag) for day d.
func Key(d day.Day, rawKey, tag string) string {
	return DayPrefix(d) + rawKey + "." + tag + ".lwseg"
}

// Parse splits a segment key into its day, raw key and tag.
func Parse(key string) (d day.Day, rawKey, tag string, ok bool) {
	rest, found := strings.CutPrefix(key, Prefix+"dt=")
	if !found || len(rest) < 11 || rest[10] != '/' {
		return 0, "", "", false
	}
	d, err := day.Parse(rest[:10])
	if err != nil {
		return 0, "", "", false
	}
	rest, found = strings.CutSuffix(rest[11:], ".lwseg")
	if !found {
		return 0, "", "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 || len(rest)-i-1 != 16 {
		return 0, "", "", false
	}
	return d, rest[:i], rest[i+1:], true
}

// Encode returns s in the segment format.
func Encode(s *Segment) ([]byte, error) {
	_, out, err := encode(s, nil, nil)
	return out, err
}

// bufs recycles the buffers Write encodes into: a routing run writes a
// few hundred megabytes of segments. Buffers go in pairs, so that a
// payload buffer is never handed out for the (smaller) compressed bytes,
// nor the other way round.
var bufs = bufpool.New[*bufPair](8)

type bufPair struct{ payload, out []byte }

func getBufs() *bufPair {
	if b, ok := bufs.Get(); ok {
		return b
	}
	return new(bufPair)
}

// DropBuffers forgets the buffers kept for the next Write (see bufs), so
// that their memory can be collected: for a caller done writing segments
// for a while.
func DropBuffers() { bufs.Drop() }

// encode is Encode into the given buffers (grown if need be; either may be
// nil): payload holds the uncompressed bytes, out the result.
func encode(s *Segment, payload, out []byte) (pay, res []byte, err error) {
	ev := s.Events
	if ev == nil {
		ev = frame.New(nil, 0)
	}
	q, err := json.Marshal(s.Quarantine)
	if err != nil {
		return nil, nil, err
	}
	n := ev.Len()
	strs := ev.Dict.Strings()
	// The exact size first, so that the payload is written in place.
	size := 1 + 6*binary.MaxVarintLen64 + len(ev.IDBytes) + 4*len(ev.IDOff) + 3*8*n + n +
		len(ev.Str)*4*n + 4*len(ev.PropOff) + 2*4*len(ev.PropKey) + len(q)
	for id := range strs.Len() {
		size += binary.MaxVarintLen64 + strs.Size(uint32(id))
	}
	b := frame.Grow(payload[:0], size) // twice as large, in huge pages, if it must grow
	b = binary.AppendUvarint(b, uint64(n))
	b = binary.AppendUvarint(b, uint64(strs.Len()))
	for _, str := range strs.All() {
		b = binary.AppendUvarint(b, uint64(len(str)))
		b = append(b, str...)
	}
	b = append(b, b2u8(ev.UUIDs))
	b = binary.AppendUvarint(b, uint64(len(ev.IDBytes)))
	b = append(b, ev.IDBytes...)
	if !ev.UUIDs {
		b = appendU32s(b, ev.IDOff)
	}
	b = appendI64s(b, ev.EventTime)
	b = appendDiffs(b, ev.ClientTime, ev.EventTime)
	b = appendDiffs(b, ev.ReceivedAt, ev.EventTime)
	for _, v := range ev.Skewed {
		b = append(b, b2u8(v))
	}
	for c := range ev.Str {
		if narrow(strs.Len()) {
			b = appendU16s(b, ev.Str[c])
		} else {
			b = appendU32s(b, ev.Str[c])
		}
	}
	b = appendU32s(b, ev.PropOff)
	b = binary.AppendUvarint(b, uint64(len(ev.PropKey)))
	b = appendU32s(b, ev.PropKey)
	b = appendU32s(b, ev.PropVal)
	b = binary.AppendUvarint(b, uint64(len(q)))
	b = append(b, q...)
	b = binary.AppendUvarint(b, uint64(s.RepairedUTF8))

	if len(b) > maxPayload {
		return nil, nil, fmt.Errorf("segment of %d bytes: more than a segment holds", len(b))
	}
	out = frame.Grow(out[:0], len(magic)+4+s2.MaxEncodedLen(len(b)))
	out = append(out, magic...)
	out = append(out, 0, 0, 0, 0) // the block's checksum, below
	head := len(out)
	enc := s2.Encode(out[head:cap(out)], b)
	out = out[:head+len(enc)] // enc is out's tail, in place
	binary.LittleEndian.PutUint32(out[head-4:], crc32.Checksum(enc, castagnoli))
	return b, out, nil
}

// CorruptError says a segment's bytes are not a segment.
type CorruptError struct {
	Key string
	Err error
}

func (e *CorruptError) Error() string { return fmt.Sprintf("segment %s: corrupt: %v", e.Key, e.Err) }

func (e *CorruptError) Unwrap() error { return e.Err }

// Decode reads a segment written by Encode. Every length, offset and id is
// checked: bad bytes give an error, never a panic or a wrong segment.
//
// The block's checksum is checked first, so damaged bytes are found
// before its decoded length is trusted: a damaged length is never
// allocated. The decoded length is not judged by the block's size: S2
// stores a long run in a few bytes, and a segment of values that compress
// well (a 200 KiB string of one letter) decodes to thousands of times its
// size.
func Decode(data []byte) (*Segment, error) {
	rest, ok := bytes.CutPrefix(data, []byte(magic))
	if !ok {
		return nil, errors.New("not a segment (bad magic)")
	}
	if len(rest) < 4 {
		return nil, errors.New("truncated")
	}
	sum, rest := binary.LittleEndian.Uint32(rest), rest[4:]
	if crc32.Checksum(rest, castagnoli) != sum {
		return nil, errors.New("checksum mismatch")
	}
	size, err := s2.DecodedLen(rest)
	if err != nil {
		return nil, err
	}
	if size > maxPayload {
		return nil, fmt.Errorf("decoded length %d: more than a segment holds", size)
	}
	b, err := s2.Decode(make([]byte, size), rest)
	if err != nil {
		return nil, err
	}
	r := reader{b: b}
	n := r.count(1)
	nstr := r.count(1)
	strs := r.strings(nstr)
	if r.err != nil {
		return nil, r.err
	}
	dict := frame.DictOf(strs)
	ev := &frame.Events{Dict: dict}
	if f := r.bytes(1); r.err == nil {
		if f[0] > 1 {
			r.fail("bad id form")
		}
		ev.UUIDs = f[0] == 1
	}
	ev.IDBytes = bytes.Clone(r.bytes(r.count(1)))
	if !ev.UUIDs {
		ev.IDOff = r.u32s(n + 1)
	} else if r.err == nil && uint64(len(ev.IDBytes)) != n*frame.UUIDSize {
		r.fail("packed ids of the wrong size")
	}
	ev.EventTime = r.i64s(n)
	ev.ClientTime = r.diffs(n, ev.EventTime)
	ev.ReceivedAt = r.diffs(n, ev.EventTime)
	if sk := r.bytes(n); r.err == nil {
		ev.Skewed = make([]bool, n)
		for i, v := range sk {
			if v > 1 {
				r.fail("bad boolean")
			}
			ev.Skewed[i] = v == 1
		}
	}
	for c := range ev.Str {
		if narrow(int(nstr)) {
			ev.Str[c] = r.u16s(n)
		} else {
			ev.Str[c] = r.u32s(n)
		}
	}
	ev.PropOff = r.u32s(n + 1)
	np := r.count(4)
	ev.PropKey = r.u32s(np)
	ev.PropVal = r.u32s(np)
	var q []rollups.Quarantine
	if qb := r.bytes(r.count(1)); r.err == nil {
		if err := json.Unmarshal(qb, &q); err != nil {
			r.fail("quarantine: " + err.Error())
		}
	}
	repaired := r.uvarint()
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, r.err
	}
	if err := check(ev, np); err != nil {
		return nil, err
	}
	if repaired > math.MaxInt64 {
		return nil, errors.New("bad repaired count")
	}
	return &Segment{Events: ev, Quarantine: q, RepairedUTF8: int64(repaired)}, nil
}

// check verifies offsets and ids.
func check(ev *frame.Events, np uint64) error {
	if !ev.UUIDs && (len(ev.IDOff) == 0 || ev.IDOff[0] != 0 || ev.IDOff[len(ev.IDOff)-1] != uint32(len(ev.IDBytes))) {
		return errors.New("event id offsets do not span the ids")
	}
	if len(ev.PropOff) == 0 || ev.PropOff[0] != 0 || uint64(ev.PropOff[len(ev.PropOff)-1]) != np {
		return errors.New("property offsets do not span the properties")
	}
	for i := 1; i < len(ev.PropOff); i++ {
		if (!ev.UUIDs && ev.IDOff[i] < ev.IDOff[i-1]) || ev.PropOff[i] < ev.PropOff[i-1] {
			return errors.New("offsets go backwards")
		}
	}
	nd := uint32(ev.Dict.Len())
	for c := range ev.Str {
		for _, id := range ev.Str[c] {
			if id >= nd {
				return fmt.Errorf("column %s: string id %d out of range", frame.Column(c), id)
			}
		}
	}
	for _, col := range [][]uint32{ev.PropKey, ev.PropVal} {
		for _, id := range col {
			if id >= nd {
				return fmt.Errorf("property string id %d out of range", id)
			}
		}
	}
	return nil
}

// Write stores s as the segment at key: a cache object (store.PutCache),
// which Read checks.
func Write(ctx context.Context, st store.Store, key string, s *Segment) (int64, error) {
	bp := getBufs()
	defer bufs.Put(bp)
	payload, b, err := encode(s, bp.payload, bp.out)
	if err != nil {
		return 0, err
	}
	bp.payload, bp.out = payload, b
	return int64(len(b)), store.PutCache(ctx, st, key, b)
}

// Read reads the segment at key: store.ErrNotExist if there is none, a
// *CorruptError if its bytes are not a segment.
func Read(ctx context.Context, st store.Store, key string) (*Segment, int64, error) {
	b, err := st.Get(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	s, err := Decode(b)
	if err != nil {
		return nil, 0, &CorruptError{Key: key, Err: err}
	}
	return s, int64(len(b)), nil
}

func b2u8(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// littleEndian is whether this machine's integers are laid out as the
// format's: then a column is copied as it is in memory, one memmove; else
// value by value.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// bytesOf is v's memory.
func bytesOf[T uint32 | int64](v []T) []byte {
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), len(v)*int(unsafe.Sizeof(zero)))
}

// appendU32s appends v little-endian; b has room for it.
func appendU32s(b []byte, v []uint32) []byte {
	if littleEndian {
		return append(b, bytesOf(v)...)
	}
	off := len(b)
	b = b[:off+4*len(v)]
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[off+4*i:], x)
	}
	return b
}

// narrow is whether a segment of nstr strings holds its string columns'
// ids in 16 bits (an object's dictionary mostly has 30-40 thousand
// strings): half the bytes for S2 to compress, and S2 is most of the time
// a segment takes to write.
func narrow(nstr int) bool { return nstr <= 1<<16 }

// appendU16s appends the low 16 bits of each of v little-endian; b has
// room for it.
func appendU16s(b []byte, v []uint32) []byte {
	off := len(b)
	b = b[:off+2*len(v)]
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[off+2*i:], uint16(x))
	}
	return b
}

// appendDiffs appends v[i]-base[i] (wrapping: decoded exactly by adding
// base back) little-endian; b has room for it. A client time and a
// receive time are mostly the event time, or seconds from it: runs of
// zero bytes, which S2 stores in next to nothing.
func appendDiffs(b []byte, v, base []int64) []byte {
	off := len(b)
	b = b[:off+8*len(v)]
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[off+8*i:], uint64(x)-uint64(base[i]))
	}
	return b
}

// appendI64s appends v little-endian; b has room for it.
func appendI64s(b []byte, v []int64) []byte {
	if littleEndian {
		return append(b, bytesOf(v)...)
	}
	off := len(b)
	b = b[:off+8*len(v)]
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[off+8*i:], uint64(x))
	}
	return b
}

// strings reads the dictionary's nstr strings, the first of them "".
// They are substrings of one copy of the dictionary's bytes: one
// allocation, not one per string. A repeated string would be harmless
// (Build maps both ids to one); it is not looked for.
func (r *reader) strings(nstr uint64) []string {
	start := r.b
	for i := uint64(0); i < nstr && r.err == nil; i++ {
		r.bytes(r.count(1))
	}
	if r.err == nil && nstr == 0 {
		r.fail("no dictionary")
	}
	if r.err != nil {
		return nil
	}
	region := string(start[:len(start)-len(r.b)])
	strs := make([]string, 0, nstr)
	rr := reader{}
	off := 0
	for range nstr {
		rr.b = start[off:]
		l := rr.count(1)
		off += len(start[off:]) - len(rr.b)
		strs = append(strs, region[off:off+int(l)])
		off += int(l)
	}
	if strs[0] != "" {
		r.fail("string 0 is not empty")
		return nil
	}
	return strs
}

// reader consumes a decoded segment, remembering the first error.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(msg string) {
	if r.err == nil {
		r.err = errors.New(msg)
	}
	r.b = nil
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.fail("truncated")
		return 0
	}
	r.b = r.b[k:]
	return v
}

// count reads a count of items of at least size bytes each, checked
// against the bytes left.
func (r *reader) count(size uint64) uint64 {
	v := r.uvarint()
	if r.err == nil && v > uint64(len(r.b))/size+1 {
		r.fail("count larger than the segment")
		return 0
	}
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail("truncated")
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u32s(n uint64) []uint32 {
	if n > math.MaxInt32 {
		r.fail("too many values")
		return nil
	}
	b := r.bytes(4 * n)
	if r.err != nil {
		return nil
	}
	out := make([]uint32, n)
	if littleEndian {
		copy(bytesOf(out), b)
		return out
	}
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return out
}

// u16s reads n 16-bit ids (see narrow).
func (r *reader) u16s(n uint64) []uint32 {
	if n > math.MaxInt32 {
		r.fail("too many values")
		return nil
	}
	b := r.bytes(2 * n)
	if r.err != nil {
		return nil
	}
	out := make([]uint32, n)
	for i := range out {
		out[i] = uint32(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

// diffs reads n times written by appendDiffs from base (n of them, or nil
// after an error).
func (r *reader) diffs(n uint64, base []int64) []int64 {
	out := r.i64s(n)
	if r.err != nil {
		return nil
	}
	for i := range out {
		out[i] = int64(uint64(out[i]) + uint64(base[i]))
	}
	return out
}

func (r *reader) i64s(n uint64) []int64 {
	if n > math.MaxInt32 {
		r.fail("too many values")
		return nil
	}
	b := r.bytes(8 * n)
	if r.err != nil {
		return nil
	}
	out := make([]int64, n)
	if littleEndian {
		copy(bytesOf(out), b)
		return out
	}
	for i := range out {
		out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out
}
