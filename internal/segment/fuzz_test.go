package segment

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/s2"
)

// decodeAllocBound is the most bytes Decode may allocate for a segment
// whose payload decodes to size bytes: a small multiple of it (the
// payload itself, the dictionary's copy and index, the columns widened
// from 16 to 32 bits), plus a fixed allowance.
func decodeAllocBound(size int) uint64 { return 48*uint64(size) + 1<<20 }

// FuzzDecode: Decode never panics on any input, and allocates no more
// than decodeAllocBound of the payload's decoded length, which is never
// more than maxPayload. With wrap, the input is taken as a payload and
// given a valid envelope (magic, checksum, S2 block), so that the checks
// behind the checksum are what is fuzzed; without, the input is decoded
// as is. A segment that decodes encodes again to bytes that decode to
// the same rows.
func FuzzDecode(f *testing.F) {
	// testdata/fuzz/FuzzDecode holds more: segments of 0 to 300 events,
	// whole, cut short, with a byte changed, and their payloads.
	rng := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{1, 5} {
		if b, err := Encode(randomSegment(rng, n, n == 5)); err == nil {
			f.Add(b, false)
			f.Add(decodePayloadOf(b), true)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, wrap bool) {
		if wrap {
			data = repack(data)
		}
		size := 0
		if len(data) > len(magic)+4 {
			if n, err := s2.DecodedLen(data[len(magic)+4:]); err == nil && n <= maxPayload {
				size = n
			}
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		s, err := Decode(data)
		runtime.ReadMemStats(&after)
		if alloc, bound := after.TotalAlloc-before.TotalAlloc, decodeAllocBound(size); alloc > bound {
			t.Fatalf("%d input bytes (payload %d): allocated %d, more than %d", len(data), size, alloc, bound)
		}
		if err != nil {
			return
		}
		again, err := Encode(s)
		if err != nil {
			t.Fatalf("a decoded segment does not encode: %v", err)
		}
		back, err := Decode(again)
		if err != nil {
			t.Fatalf("a re-encoded segment does not decode: %v", err)
		}
		if diff := cmp.Diff(rows(s.Events), rows(back.Events)); diff != "" {
			t.Fatalf("re-encoded rows (-decoded +again):\n%s", diff)
		}
	})
}

// decodePayloadOf is the S2-decoded payload of an encoded segment, or nil.
func decodePayloadOf(b []byte) []byte {
	out, _ := s2.Decode(nil, b[len(magic)+4:])
	return out
}
