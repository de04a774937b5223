package publish

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/huff0"
	"github.com/klauspost/compress/zstd"
)

// literalFrame's frames decode, with klauspost's decoder and with the
// codec's Decode (what parquet-go reads pages with), to what was encoded:
// empty, tiny, raw, Huffman-coded and treeless blocks, at every size
// class of the frame and literals headers, frame after frame on one
// Scratch (a frame never leans on an earlier frame's table).
func TestLiteralFrame(t *testing.T) {
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
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var s huff0.Scratch
	var frame []byte
	kinds := map[string]func(int) []byte{"hex": hexText, "random": random, "same": same, "mixed": mixed}
	sizes := []int{0, 1, 255, 256, 1000, 1 << 10, 5000, 1<<14 - 1, 1 << 14, 20000, 1<<16 + 255, 1<<16 + 256, maxBlock - 1, maxBlock, maxBlock + 1, 3*maxBlock + 7, 1 << 20}
	treeless, huffman, raw := 0, 0, 0
	for _, kind := range []string{"hex", "random", "same", "mixed", "hex"} {
		for _, n := range sizes {
			src := kinds[kind](n)
			frame = literalFrame(frame, src, &s)
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
