package publish

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// matchFrame's frames without matches decode, with klauspost's decoder and with the
// codec's Decode (what parquet-go reads pages with), to what was encoded:
// empty, tiny, raw, Huffman-coded and treeless blocks, at every size
// class of the frame and literals headers, frame after frame on one
// Scratch (a frame never leans on an earlier frame's table).
func TestLiteralsOnlyFrame(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	hexText := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = "0123456789abcdef-"[r.IntN(17)]
		}
		return b
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	same := func(n int) []byte { return bytes.Repeat([]byte{'a'}, n) }
	// Blocks of two alphabets: the second block needs a table of its own.
	mixed := func(n int) []byte {
		b := hexText(n)
		for i := maxBlock; i < n; i++ {
			b[i] = "ghijklmnopqrstuvwxyz"[r.IntN(20)]
		}
		return b
	}
	dec := zstdDecoder(t)
	var s frameScratch
	var frame []byte
	kinds := map[string]func(int) []byte{"hex": hexText, "random": random, "same": same, "mixed": mixed}
	sizes := []int{0, 1, 255, 256, 1000, 1 << 10, 5000, 1<<14 - 1, 1 << 14, 20000, 1<<16 + 255, 1<<16 + 256, maxBlock - 1, maxBlock, maxBlock + 1, 3*maxBlock + 7, 1 << 20}
	treeless, huffman, raw := 0, 0, 0
	for _, kind := range []string{"hex", "random", "same", "mixed", "hex"} {
		for _, n := range sizes {
			src := kinds[kind](n)
			frame = matchFrame(frame, src, nil, &s)
			name := fmt.Sprintf("%s %d", kind, n)
			got, err := dec.DecodeAll(frame, nil)
			if err != nil {
				t.Fatalf("%s: decode: %v", name, err)
			}
			if !bytes.Equal(got, src) {
				t.Fatalf("%s: decoded %d bytes, not the %d encoded", name, len(got), len(src))
			}
			got, err = codec.Decode(nil, frame)
			if err != nil || !bytes.Equal(got, src) {
				t.Fatalf("%s: the codec's Decode: %v (equal %t)", name, err, bytes.Equal(got, src))
			}
			tl, hf, rw := blockKinds(t, frame)
			treeless, huffman, raw = treeless+tl, huffman+hf, raw+rw
			if kind == "hex" && n >= minLiteralBlock && len(frame) > n*3/5 {
				t.Errorf("%s: %d bytes, not Huffman-coded", name, len(frame))
			}
		}
	}
	if treeless == 0 || huffman == 0 || raw == 0 {
		t.Errorf("blocks: %d treeless, %d with a table, %d raw: some kind never written", treeless, huffman, raw)
	}
}

// blockKinds walks frame's blocks and counts the treeless literals
// blocks, the Huffman-coded ones with a table, and the raw blocks.
func blockKinds(t *testing.T, frame []byte) (treeless, huffman, raw int) {
	t.Helper()
	fcs := []int{1, 2, 4, 8}[frame[4]>>6]
	p := 5 + fcs
	for {
		h := int(frame[p]) | int(frame[p+1])<<8 | int(frame[p+2])<<16
		p += 3
		size := h >> 3
		switch (h >> 1) & 3 {
		case blockRaw:
			raw++
		case blockCompressed:
			switch frame[p] & 3 {
			case literalsTreeless:
				treeless++
			case literalsCompressed:
				huffman++
			}
		default:
			t.Fatalf("block type %d", (h>>1)&3)
		}
		p += size
		if h&1 == 1 {
			break
		}
	}
	if p != len(frame) {
		t.Fatalf("frame of %d bytes ends at %d", len(frame), p)
	}
	return treeless, huffman, raw
}

// matchFrame's frames decode, with klauspost's decoder and with the
// codec's Decode, to what was encoded, whatever the matches: runs of a
// repeated string, overlapping copies, repeat offsets (after literals and
// not), matches cut at a block's end (a piece shorter than minMatch
// left as literals), a block of tens of thousands of sequences (the
// longest Number_of_Sequences), and a block that its sequences would make
// larger, stored raw. Each kind of table is written: predefined (a few
// sequences), RLE (one code) and a table of the block's own.
func TestMatchFrame(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	hexText := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = "0123456789abcdef"[r.IntN(16)]
		}
		return b
	}
	// page builds a page from pieces: literals, or a copy of n bytes from
	// off back (recorded as a match).
	type page struct {
		src []byte
		ms  []match
	}
	lit := func(p *page, b []byte) { p.src = append(p.src, b...) }
	cp := func(p *page, n, off int) {
		at := len(p.src)
		for i := range n {
			p.src = append(p.src, p.src[at-off+i])
		}
		p.ms = append(p.ms, match{pos: uint32(at), n: uint32(n), off: uint32(off)})
	}
	cases := map[string]func() page{
		"empty": func() page { return page{} },
		"one match": func() page {
			var p page
			lit(&p, []byte("abcdefgh"))
			cp(&p, 8, 8)
			return p
		},
		"runs of uuids": func() page { // device_id: each string once or repeated
			var p page
			for len(p.src) < 700_000 {
				s := hexText(36)
				lit(&p, s)
				if k := r.IntN(4); k > 0 {
					cp(&p, 36*k, 36)
				}
			}
			return p
		},
		"keys like their neighbours": func() page { // session_key: shared starts and fields
			var p page
			prev := []byte("i:shop|u_0000|2026-01-15T00:00:00.000Z")
			lit(&p, prev)
			for len(p.src) < 400_000 {
				s := []byte(fmt.Sprintf("i:shop|u_%04x|2026-01-15T%02d:%02d:00.000Z", r.IntN(1<<16), r.IntN(24), r.IntN(60)))
				k := commonPrefix(s, prev)
				if k >= 3 {
					cp(&p, k, len(prev))
					lit(&p, s[k:])
				} else {
					lit(&p, s)
				}
				prev = s
			}
			return p
		},
		"overlapping and repeat offsets": func() page {
			var p page
			lit(&p, hexText(64))
			for len(p.src) < 300_000 {
				switch r.IntN(5) {
				case 0:
					lit(&p, hexText(1+r.IntN(20)))
				case 1:
					cp(&p, 3+r.IntN(100), 1+r.IntN(8)) // overlapping
				case 2:
					cp(&p, 3+r.IntN(30), []int{1, 4, 8, 36, 37}[r.IntN(5)]) // the initial and common offsets
				default:
					cp(&p, 3+r.IntN(30), 1+r.IntN(len(p.src)))
				}
			}
			return p
		},
		"the most sequences": func() page { // 3-byte matches only: 43690 in a block
			var p page
			lit(&p, hexText(16))
			for len(p.src) < 2*maxBlock {
				cp(&p, 3, 3+r.IntN(13))
			}
			return p
		},
		"cut at blocks' ends": func() page {
			var p page
			lit(&p, hexText(100))
			for _, end := range []int{maxBlock + 1, 2*maxBlock + 2, 3*maxBlock - 1, 4 * maxBlock} {
				lit(&p, hexText(end-len(p.src)-40)) // a match across the block's end
				cp(&p, 80, 50)
			}
			return p
		},
		"incompressible, stored raw": func() page { // random bytes, a few far 3-byte matches
			var p page
			random := func(n int) []byte {
				b := make([]byte, n)
				for i := range b {
					b[i] = byte(r.Uint32())
				}
				return b
			}
			lit(&p, random(100_000))
			for range 50 {
				lit(&p, random(1+r.IntN(200)))
				cp(&p, 3, 60_000+r.IntN(40_000))
			}
			return p
		},
	}
	dec := zstdDecoder(t)
	var s frameScratch
	var frame []byte
	modes := map[byte]int{}
	raw := 0
	for _, name := range slices.Sorted(maps.Keys(cases)) {
		p := cases[name]()
		frame = matchFrame(frame, p.src, p.ms, &s)
		got, err := dec.DecodeAll(frame, nil)
		if err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		if !bytes.Equal(got, p.src) {
			t.Fatalf("%s: decoded %d bytes, not the %d encoded", name, len(got), len(p.src))
		}
		got, err = codec.Decode(nil, frame)
		if err != nil || !bytes.Equal(got, p.src) {
			t.Fatalf("%s: the codec's Decode: %v (equal %t)", name, err, bytes.Equal(got, p.src))
		}
		if _, _, rw := blockKinds(t, frame); strings.HasPrefix(name, "incompressible") {
			raw += rw
		}
		for _, m := range sequenceModes(t, frame) {
			for k := range 3 {
				modes[m>>(6-2*k)&3]++
			}
		}
		t.Logf("%s: %d bytes, %d matches: %d bytes", name, len(p.src), len(p.ms), len(frame))
		if len(frame) > len(p.src)+len(p.src)/maxBlock*3+16 {
			t.Errorf("%s: %d bytes, more than %d stored raw", name, len(frame), len(p.src))
		}
		if name == "runs of uuids" && len(frame) > len(p.src)/4 {
			t.Errorf("%s: %d bytes of %d: the repeats were not matched", name, len(frame), len(p.src))
		}
	}
	if modes[modePredefined] == 0 || modes[modeRLE] == 0 || modes[modeFSE] == 0 || raw == 0 {
		t.Errorf("table modes written %v, raw blocks %d: some kind never written", modes, raw)
	}
}

// sequenceModes returns the Symbol_Compression_Modes of frame's
// compressed blocks that hold sequences.
func sequenceModes(t *testing.T, frame []byte) []byte {
	t.Helper()
	fcs := []int{1, 2, 4, 8}[frame[4]>>6]
	var modes []byte
	for p := 5 + fcs; ; {
		h := int(frame[p]) | int(frame[p+1])<<8 | int(frame[p+2])<<16
		p += 3
		size := h >> 3
		if (h>>1)&3 == blockCompressed {
			b := frame[p : p+size]
			// Skip the literals section.
			var n int
			switch typ, sf := b[0]&3, b[0]>>2&3; {
			case typ == literalsRaw && sf&1 == 0:
				n = 1 + int(b[0]>>3)
			case typ == literalsRaw && sf == 1:
				n = 2 + int(b[0]>>4|b[1]<<4)
			case typ == literalsRaw:
				n = 3 + (int(b[0])>>4 | int(b[1])<<4 | int(b[2])<<12)
			case sf <= 1:
				n = 3 + (int(b[0])|int(b[1])<<8|int(b[2])<<16)>>14&0x3ff
			case sf == 2:
				n = 4 + (int(b[0])|int(b[1])<<8|int(b[2])<<16|int(b[3])<<24)>>18&0x3fff
			default:
				n = 5 + (int(b[0])|int(b[1])<<8|int(b[2])<<16|int(b[3])<<24|int(b[4])<<32)>>22&0x3ffff
			}
			switch b = b[n:]; {
			case b[0] == 0:
			case b[0] < 128:
				modes = append(modes, b[1])
			case b[0] < 255:
				modes = append(modes, b[2])
			default:
				modes = append(modes, b[3])
			}
		}
		p += size
		if h&1 == 1 {
			return modes
		}
	}
}

// zstdDecoder returns klauspost's decoder, closed when t ends.
func zstdDecoder(t *testing.T) *zstd.Decoder {
	t.Helper()
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dec.Close)
	return dec
}
