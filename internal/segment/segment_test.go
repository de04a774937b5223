package segment

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/s2"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/frame"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// randomSegment returns n random events, their ids packed if uuids (see
// frame.Events.PackUUIDs).
func randomSegment(rng *rand.Rand, n int, uuids bool) *Segment {
	ev := frame.New(nil, n)
	for range n {
		id := fmt.Sprintf("e%d", rng.IntN(n))
		if uuids {
			id = fmt.Sprintf("%08x-0000-7000-8000-%012x", rng.IntN(n), rng.IntN(3))
		}
		r := frame.Row{EventID: id, EventTime: rng.Int64N(1e12), ReceivedAt: rng.Int64N(1e12),
			Skewed: rng.IntN(5) == 0}
		if rng.IntN(3) > 0 {
			r.ClientTime = rng.Int64N(1e12)
		}
		if rng.IntN(20) == 0 { // times whose differences wrap around (see appendDiffs)
			r.EventTime, r.ClientTime, r.ReceivedAt = math.MaxInt64-rng.Int64N(9), math.MinInt64+rng.Int64N(9), -1
		}
		for c := range r.Str {
			if rng.IntN(4) > 0 {
				r.Str[c] = fmt.Sprintf("%s-%d", frame.Column(c), rng.IntN(20))
			}
		}
		if n > 1<<16 {
			r.Str[frame.DeviceID] = fmt.Sprint("device-", ev.Len()) // more strings than 16-bit ids (see narrow)
		}
		if rng.IntN(2) == 0 {
			r.Props = map[string]string{}
			for range rng.IntN(4) {
				r.Props[fmt.Sprintf("k%d", rng.IntN(6))] = fmt.Sprintf("v%d", rng.IntN(9))
			}
		}
		if err := ev.Append(&r); err != nil {
			panic(err)
		}
	}
	if uuids && n > 0 && !ev.PackUUIDs() {
		panic("ids not packed")
	}
	return &Segment{Events: ev, RepairedUTF8: int64(rng.IntN(3)),
		Quarantine: []rollups.Quarantine{{Reason: "missing_user", SourceObject: "raw/x", EventID: "é", Properties: map[string]string{"a": "b"}}}}
}

func rows(ev *frame.Events) []frame.Row {
	out := make([]frame.Row, ev.Len())
	for i := range out {
		out[i] = ev.Row(i)
	}
	return out
}

// A segment decodes to what was encoded, and its bytes are the same
// whether columns are copied as they are in memory (a little-endian
// machine) or an integer at a time (any other).
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	defer func(le bool) { littleEndian = le }(littleEndian)
	for _, c := range []struct {
		n     int
		uuids bool
	}{{0, false}, {1, false}, {7, false}, {500, false}, {1, true}, {500, true}, {1<<16 + 100, true}} {
		n := c.n
		s := randomSegment(rng, n, c.uuids)
		if wide := s.Events.Dict.Len() > 1<<16; wide != (n > 1<<16) {
			t.Fatalf("n=%d: %d strings", n, s.Events.Dict.Len())
		}
		littleEndian = false
		loop, err := Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		loop = bytes.Clone(loop)
		if _, err := Decode(loop); err != nil {
			t.Fatalf("n=%d, an integer at a time: %v", n, err)
		}
		littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1
		b, err := Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, loop) {
			t.Fatalf("n=%d: the bytes differ with columns copied whole", n)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if got.Events.UUIDs != c.uuids {
			t.Fatalf("n=%d: ids packed %v, want %v", n, got.Events.UUIDs, c.uuids)
		}
		if diff := cmp.Diff(rows(s.Events), rows(got.Events)); diff != "" {
			t.Fatalf("n=%d events (-want +got):\n%s", n, diff)
		}
		if diff := cmp.Diff(s.Quarantine, got.Quarantine); diff != "" || got.RepairedUTF8 != s.RepairedUTF8 {
			t.Fatalf("n=%d quarantine or repaired differ: %s %d/%d", n, diff, got.RepairedUTF8, s.RepairedUTF8)
		}
	}
}

// Damaged bytes give an error, never a panic or a different segment.
func TestDamagedIsAnError(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, uuids := range []bool{false, true} {
		damage(t, rng, randomSegment(rng, 50, uuids), 2000)
	}
}

// damage checks that n damaged encodings of s decode to errors, or to s.
func damage(t *testing.T, rng *rand.Rand, s *Segment, n int) {
	good, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	want := rows(s.Events)
	for i := range n {
		b := append([]byte(nil), good...)
		switch i % 3 {
		case 0:
			b = b[:rng.IntN(len(b))]
		case 1:
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
		case 2:
			// A valid zstd frame around a damaged payload: what the checks
			// behind the decompression must catch.
			raw := decodePayload(t, good)
			raw[rng.IntN(len(raw))] ^= byte(1 + rng.IntN(255))
			b = repack(raw)
		}
		got, err := Decode(b)
		if err == nil && cmp.Diff(want, rows(got.Events)) != "" && i%3 != 2 {
			t.Fatalf("damage %d decoded to a different segment without an error", i)
		}
	}
}

func decodePayload(t *testing.T, b []byte) []byte {
	t.Helper()
	out, err := s2.Decode(nil, b[len(magic)+4:])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestKeys(t *testing.T) {
	d := day.FromDate(2026, 1, 15)
	tag := Tag("raw/2026/01/15/03/a.parquet", `"etag"`, "UTC")
	k := Key(d, "raw/2026/01/15/03/a.parquet", tag)
	gd, raw, gt, ok := Parse(k)
	if !ok || gd != d || raw != "raw/2026/01/15/03/a.parquet" || gt != tag {
		t.Fatalf("Parse(%q) = %v %q %q %v", k, gd, raw, gt, ok)
	}
	if Tag("raw/a", "1", "UTC") == Tag("raw/a", "2", "UTC") || Tag("raw/a", "1", "UTC") == Tag("raw/a", "1", "Europe/Paris") {
		t.Fatal("tags must change with the ETag and the rules")
	}
	for _, bad := range []string{"_state/segments/x", "_state/segments/dt=2026-01-15/a.lwseg", "other/dt=2026-01-15/a.0123456789abcdef.lwseg"} {
		if _, _, _, ok := Parse(bad); ok {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestReadMissingAndCorrupt(t *testing.T) {
	ctx := context.Background()
	st := store.NewMem()
	if _, _, err := Read(ctx, st, "_state/segments/none"); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	if err := st.Put(ctx, "_state/segments/bad", []byte(magic+"xxxxxx")); err != nil {
		t.Fatal(err)
	}
	var ce *CorruptError
	if _, _, err := Read(ctx, st, "_state/segments/bad"); !errors.As(err, &ce) {
		t.Fatalf("corrupt: %v", err)
	}
}

// repack wraps a payload as Encode does, with a valid checksum.
func repack(raw []byte) []byte {
	block := s2.Encode(nil, raw)
	out := append([]byte(magic), binary.LittleEndian.AppendUint32(nil, crc32.Checksum(block, castagnoli))...)
	return append(out, block...)
}

// A segment of values that compress well (a long run of one letter, a
// string of 200 KiB of it) is read back, not called damaged: S2 stores it
// in far fewer bytes than any fixed ratio of its decoded size. Damaged
// copies of it are still errors.
func TestCompressibleValues(t *testing.T) {
	ev := frame.New(nil, 0)
	for i, v := range []string{strings.Repeat("a", 200<<10), strings.Repeat("ab", 100<<10), strings.Repeat("x", 100<<10)} {
		r := frame.Row{EventID: fmt.Sprint("e", i), EventTime: 1, ReceivedAt: 2, Props: map[string]string{"k": v}}
		r.Str[frame.UserID] = v
		if err := ev.Append(&r); err != nil {
			t.Fatal(err)
		}
	}
	s := &Segment{Events: ev, Quarantine: []rollups.Quarantine{{Reason: "value_too_large", UserID: strings.Repeat("q", 100<<10)}}}
	b, err := Encode(s)
	if err != nil {
		t.Fatal(err)
	}
	if size, _ := s2.DecodedLen(b[len(magic)+4:]); size < 1000*len(b) {
		t.Fatalf("%d bytes decode to %d: not the compressible case this test is for", len(b), size)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatalf("a segment of compressible values called damaged: %v", err)
	}
	if diff := cmp.Diff(rows(s.Events), rows(got.Events)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(s.Quarantine, got.Quarantine); diff != "" {
		t.Fatalf("quarantine (-want +got):\n%s", diff)
	}
	damage(t, rand.New(rand.NewPCG(5, 6)), s, 300)
}

// A damaged block length (a bit flipped in S2's header, claiming up to
// 4 GiB) is found by the checksum before it is allocated.
func TestDamagedLengthNotAllocated(t *testing.T) {
	b, err := Encode(randomSegment(rand.New(rand.NewPCG(7, 8)), 20, false))
	if err != nil {
		t.Fatal(err)
	}
	head := len(magic) + 4
	_, n := binary.Uvarint(b[head:])
	forged := append(append(bytes.Clone(b[:head]), binary.AppendUvarint(nil, 0xfffffff0)...), b[head+n:]...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = Decode(forged)
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("a forged length decoded")
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("allocated %d bytes for a forged length", alloc)
	}
}
