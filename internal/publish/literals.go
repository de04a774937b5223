package publish

import (
	"encoding/binary"

	"github.com/klauspost/compress/huff0"
)

// literalFrame compresses src as one zstd frame (RFC 8878) whose blocks
// hold literals only, Huffman-coded (no matches), appended to dst[:0]. Any
// zstd decoder reads it as it reads the shared codec's frames.
//
// It is for bytes that zstd's matching barely shrinks and spends most of
// its time on: the event ids' text (random hex), which the fastest level
// compressed 2.10× at about 200 MB/s here and Huffman alone compresses
// 2.07× at about 900 MB/s.
//
// The frame is single-segment (its content size is its window) without a
// checksum, like the codec's. Each block of up to 128 KiB is Huffman-coded
// with a table of its own or, where huff0 finds it cheaper, the previous
// block's (a treeless literals block); a block Huffman cannot shrink, or
// smaller than minLiteralBlock, is stored raw.
func literalFrame(dst, src []byte, s *huff0.Scratch) []byte {
	dst = append(dst[:0], 0x28, 0xb5, 0x2f, 0xfd) // magic number
	n := uint64(len(src))
	switch {
	case n < 256:
		dst = append(dst, 0<<6|1<<5, byte(n))
	case n < 256+1<<16:
		dst = append(dst, 1<<6|1<<5)
		dst = binary.LittleEndian.AppendUint16(dst, uint16(n-256))
	case n < 1<<32:
		dst = append(dst, 2<<6|1<<5)
		dst = binary.LittleEndian.AppendUint32(dst, uint32(n))
	default:
		dst = append(dst, 3<<6|1<<5)
		dst = binary.LittleEndian.AppendUint64(dst, n)
	}
	s.Reuse = huff0.ReusePolicyNone // no table of an earlier frame
	for first := true; first || len(src) > 0; first = false {
		b := src[:min(len(src), maxBlock)]
		src = src[len(b):]
		last := uint32(0)
		if len(src) == 0 {
			last = 1
		}
		var out []byte
		reused := false
		if len(b) >= minLiteralBlock {
			var err error
			// An error (incompressible, one symbol) leaves the previous
			// table as it was, and the block is stored raw.
			if out, reused, err = huff0.Compress4X(b, s); err != nil {
				out = nil
			} else {
				s.Reuse = huff0.ReusePolicyPrefer // its table is now the frame's previous one, tried first
			}
		}
		if out == nil {
			dst = appendBlockHeader(dst, last, blockRaw, len(b))
			dst = append(dst, b...)
			continue
		}
		typ := uint64(literalsCompressed)
		if reused {
			typ = literalsTreeless
		}
		h, hn := literalsHeader(typ, len(b), len(out))
		dst = appendBlockHeader(dst, last, blockCompressed, hn+len(out)+1)
		for i := range hn {
			dst = append(dst, byte(h>>(8*i)))
		}
		dst = append(dst, out...)
		dst = append(dst, 0) // Number_of_Sequences: none
	}
	return dst
}

const (
	maxBlock        = 128 << 10 // a block's most bytes (Block_Maximum_Size)
	minLiteralBlock = 1 << 10   // smaller blocks are stored raw
	blockRaw        = 0
	blockCompressed = 2

	literalsCompressed = 2 // with its Huffman table
	literalsTreeless   = 3 // with the previous block's table
)

// appendBlockHeader appends a block header: last, the block type, size.
func appendBlockHeader(dst []byte, last uint32, typ uint32, size int) []byte {
	h := last | typ<<1 | uint32(size)<<3
	return append(dst, byte(h), byte(h>>8), byte(h>>16))
}

// literalsHeader returns the Literals_Section_Header of four Huffman
// streams of regen bytes compressed to comp bytes (table included), and
// its length in bytes: the smallest size format both sizes fit.
func literalsHeader(typ uint64, regen, comp int) (uint64, int) {
	switch {
	case regen < 1<<10 && comp < 1<<10:
		return typ | 1<<2 | uint64(regen)<<4 | uint64(comp)<<14, 3
	case regen < 1<<14 && comp < 1<<14:
		return typ | 2<<2 | uint64(regen)<<4 | uint64(comp)<<18, 4
	default: // up to 2^18 - 1: a block is at most 128 KiB
		return typ | 3<<2 | uint64(regen)<<4 | uint64(comp)<<22, 5
	}
}
