package publish

import (
	"encoding/binary"

	"github.com/klauspost/compress/huff0"
)

// Two kinds of page are compressed here, not by the shared codec, into
// plain zstd frames (RFC 8878) that any zstd decoder reads as it reads the
// codec's, with the matches their encoder knows instead of matches
// searched for (matchFrame):
//
//   - the event ids' text: random hex, which zstd's matching barely
//     shrinks and spends most of its time on (the fastest level compressed
//     it 2.10× at about 200 MB/s here, Huffman alone 2.07× at about
//     900 MB/s), but for a UUIDv7's leading time, which in the day's order
//     an id mostly shares with the id before it;
//   - the pages of the string columns sorted by who (user_key, device_id,
//     session_key, ...), where a string mostly equals, or starts like, the
//     one before it. The page's encoder knows where those repeats are (it
//     compares dictionary ids).
//
// A frame is single-segment (its content size is its window), without a
// checksum, like the codec's. Each block of up to 128 KiB holds its
// literals Huffman-coded with a table of its own or, where huff0 finds it
// cheaper, the previous block's (treeless); literals Huffman cannot
// shrink, or fewer than minLiteralBlock, are stored raw, and so is a block
// its sequences would not shrink.

// match says n bytes at pos of a page repeat the n bytes at pos-off
// (n >= minMatch, off <= pos; a match may overlap the bytes it repeats).
type match struct{ pos, n, off uint32 }

// frameScratch is what matchFrame reuses from page to page; each
// goroutine has its own.
type frameScratch struct {
	huff huff0.Scratch
	lits []byte
	seqs []sequence
	bw   bitWriter
	reps [3]uint32 // the frame's repeat offsets (RFC 8878 3.1.1.5)

	tables [3]tableBuilder // literal lengths', offsets' and match lengths'

	matched int // blocks written with sequences (for tests)
}

// sequence is a block's literals run, then its match: ll literals, then
// ml bytes copied from off back (off: Offset_Value once encoded).
type sequence struct {
	ll, ml, off   uint32
	llc, mlc, ofc uint8 // their codes
}

// matchFrame compresses src as one zstd frame holding ms (in order of pos,
// not overlapping) as matches and the other bytes as literals, appended to
// dst[:0]. A match crossing a block's end is cut there; a piece shorter
// than minMatch stays literals.
func matchFrame(dst, src []byte, ms []match, s *frameScratch) []byte {
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
	s.huff.Reuse = huff0.ReusePolicyNone // no table of an earlier frame
	s.reps = [3]uint32{1, 4, 8}
	for lo, first := 0, true; first || lo < len(src); lo, first = lo+maxBlock, false {
		hi := min(lo+maxBlock, len(src))
		last := uint32(0)
		if hi == len(src) {
			last = 1
		}
		// The block's sequences and literals.
		s.seqs, s.lits = s.seqs[:0], s.lits[:0]
		at := uint32(lo) // bytes before at are in a sequence or literals
		for len(ms) > 0 && ms[0].pos < uint32(hi) {
			m := ms[0]
			start, end := max(m.pos, at), min(m.pos+m.n, uint32(hi))
			if end-start >= minMatch {
				s.lits = append(s.lits, src[at:start]...)
				s.seqs = append(s.seqs, sequence{ll: start - at, ml: end - start, off: m.off})
				at = end
			}
			if m.pos+m.n > uint32(hi) {
				break // the rest is the next block's
			}
			ms = ms[1:]
		}
		b := src[lo:hi]
		if len(s.seqs) == 0 {
			dst = s.literalBlock(dst, b, last)
			continue
		}
		s.lits = append(s.lits, src[at:hi]...)
		dst = s.matchBlock(dst, b, last)
	}
	return dst
}

const (
	maxBlock        = 128 << 10 // a block's most bytes (Block_Maximum_Size)
	minLiteralBlock = 1 << 10   // fewer literals are stored raw
	minMatch        = 3         // zstd's shortest match
	blockRaw        = 0
	blockCompressed = 2

	literalsRaw        = 0
	literalsCompressed = 2 // with its Huffman table
	literalsTreeless   = 3 // with the previous block's table
)

// literalBlock appends b as a block of literals only.
func (s *frameScratch) literalBlock(dst, b []byte, last uint32) []byte {
	out, typ := s.huffman(b)
	if out == nil {
		dst = appendBlockHeader(dst, last, blockRaw, len(b))
		return append(dst, b...)
	}
	at := len(dst)
	dst = append(dst, 0, 0, 0) // the block header, set below
	dst = appendHuffmanLiterals(dst, typ, len(b), out)
	dst = append(dst, 0) // Number_of_Sequences: none
	copy(dst[at:], appendBlockHeader(nil, last, blockCompressed, len(dst)-at-3))
	return dst
}

// huffman returns lits Huffman-coded (four streams) and the literals
// block type, or nil if they are to be stored raw (too few, or Huffman
// cannot shrink them; the previous table then stays the frame's).
func (s *frameScratch) huffman(lits []byte) ([]byte, uint64) {
	if len(lits) < minLiteralBlock {
		return nil, 0
	}
	out, reused, err := huff0.Compress4X(lits, &s.huff)
	if err != nil {
		return nil, 0
	}
	s.huff.Reuse = huff0.ReusePolicyPrefer // its table is now the frame's previous one, tried first
	if reused {
		return out, literalsTreeless
	}
	return out, literalsCompressed
}

// matchBlock appends block b, whose literals and sequences are s.lits and
// s.seqs (raw offsets), as a compressed block; or raw if that is no
// smaller, with the repeat offsets and Huffman table as they were.
func (s *frameScratch) matchBlock(dst, b []byte, last uint32) []byte {
	at := len(dst)
	reps := s.reps
	dst = append(dst, 0, 0, 0) // the block header, set below
	out, typ := s.huffman(s.lits)
	if out == nil {
		dst = appendRawLiteralsHeader(dst, len(s.lits))
		dst = append(dst, s.lits...)
	} else {
		dst = appendHuffmanLiterals(dst, typ, len(s.lits), out)
	}
	dst = s.sequences(dst)
	if size := len(dst) - at - 3; size < len(b) {
		h := appendBlockHeader(nil, last, blockCompressed, size)
		copy(dst[at:], h)
		s.matched++
		return dst
	}
	// The decoder never sees this block's table or offsets.
	s.reps = reps
	s.huff.Reuse = huff0.ReusePolicyNone
	dst = appendBlockHeader(dst[:at], last, blockRaw, len(b))
	return append(dst, b...)
}

// appendBlockHeader appends a block header: last, the block type, size.
func appendBlockHeader(dst []byte, last uint32, typ uint32, size int) []byte {
	h := last | typ<<1 | uint32(size)<<3
	return append(dst, byte(h), byte(h>>8), byte(h>>16))
}

// appendHuffmanLiterals appends the literals section of regen literals
// Huffman-coded to out (typ: with its table, or treeless).
func appendHuffmanLiterals(dst []byte, typ uint64, regen int, out []byte) []byte {
	h, hn := literalsHeader(typ, regen, len(out))
	for i := range hn {
		dst = append(dst, byte(h>>(8*i)))
	}
	return append(dst, out...)
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

// appendRawLiteralsHeader appends the Literals_Section_Header of n raw
// literals.
func appendRawLiteralsHeader(dst []byte, n int) []byte {
	switch {
	case n < 1<<5:
		return append(dst, byte(literalsRaw|n<<3))
	case n < 1<<12:
		return append(dst, byte(literalsRaw|1<<2|n<<4), byte(n>>4))
	default: // up to 2^20 - 1
		return append(dst, byte(literalsRaw|3<<2|n<<4), byte(n>>4), byte(n>>12))
	}
}
