package publish

import (
	"math/bits"
	"slices"
)

// The Sequences_Section of a zstd block (RFC 8878 3.1.1.3.2). Each of
// the literal lengths', match lengths' and offsets' codes is written with
// a distribution of its own, made from the block's counts (FSE_Compressed
// mode), or in RLE mode where the block has one code, or with the
// predefined distribution where the block has too few sequences for a
// table to pay.

// sequences appends s.seqs (raw offsets, which it turns into
// Offset_Values, updating s.reps) as a Sequences_Section.
func (s *frameScratch) sequences(dst []byte) []byte {
	n := len(s.seqs)
	switch {
	case n < 128:
		dst = append(dst, byte(n))
	case n < 0x7f00:
		dst = append(dst, byte(n>>8)+128, byte(n))
	default:
		dst = append(dst, 255, byte(n-0x7f00), byte((n-0x7f00)>>8))
	}
	var counts [3][maxCodes]uint32
	for i := range s.seqs {
		q := &s.seqs[i]
		q.off = s.offsetValue(q.off, q.ll)
		q.llc, q.mlc, q.ofc = uint8(llCode(q.ll)), uint8(mlCode(q.ml-minMatch)), uint8(ofCode(q.off))
		counts[0][q.llc]++
		counts[1][q.ofc]++
		counts[2][q.mlc]++
	}
	// Symbol_Compression_Modes, then the tables, in this order.
	modes := len(dst)
	dst = append(dst, 0)
	tabs := [3]*fseTable{predefLL, predefOF, predefML}
	for k := range tabs {
		var mode byte
		mode, tabs[k], dst = s.tables[k].choose(dst, counts[k][:], n, tabs[k])
		dst[modes] |= mode << (6 - 2*k)
	}
	ll, of, ml := tabs[0], tabs[1], tabs[2]
	// The bitstream is read backward: the last sequence is written first,
	// and each sequence's fields in the reverse of the order read.
	bw := &s.bw
	bw.reset(dst)
	q := s.seqs[n-1]
	llState, ofState, mlState := ll.init(q.llc), of.init(q.ofc), ml.init(q.mlc)
	bw.add(q.ll, llBits[q.llc])
	bw.add(q.ml-minMatch, mlBits[q.mlc])
	bw.add(q.off, uint32(q.ofc))
	for i := n - 2; i >= 0; i-- {
		q := &s.seqs[i]
		of.encode(bw, &ofState, q.ofc)
		ml.encode(bw, &mlState, q.mlc)
		ll.encode(bw, &llState, q.llc)
		bw.add(q.ll, llBits[q.llc])
		bw.add(q.ml-minMatch, mlBits[q.mlc])
		bw.add(q.off, uint32(q.ofc))
	}
	bw.add(mlState, ml.log)
	bw.add(ofState, of.log)
	bw.add(llState, ll.log)
	return bw.close()
}

// maxCodes is more than the codes of each kind (53 match length codes).
const maxCodes = 64

// The modes of Symbol_Compression_Modes.
const (
	modePredefined = 0
	modeRLE        = 1
	modeFSE        = 2
)

// minTableSeqs is the fewest sequences a block writes a table for.
const minTableSeqs = 64

// tableBuilder makes a block's table for one kind of code (see choose).
type tableBuilder struct {
	norm [maxCodes]int16
	t    fseTable
}

// choose returns the mode of codes counted by counts (n in all), the
// table to write them with, and dst with the table's description.
func (b *tableBuilder) choose(dst []byte, counts []uint32, n int, predef *fseTable) (byte, *fseTable, []byte) {
	top := 0 // the highest code used
	for c, k := range counts {
		if k > 0 {
			top = c
		}
	}
	if int(counts[top]) == n {
		b.t.rle()
		return modeRLE, &b.t, append(dst, byte(top))
	}
	if n < minTableSeqs && top < len(predef.syms) {
		return modePredefined, predef, dst
	}
	log := tableLog(n, top+1)
	norm := normalize(b.norm[:top+1], counts[:top+1], n, log)
	b.t.build(log, norm)
	return modeFSE, &b.t, appendTableDescription(dst, norm, log)
}

// tableLog is the accuracy of a table of syms symbols for n codes, as
// zstd's reference encoder picks it (at most 8 bits when encoding).
func tableLog(n, syms int) uint32 {
	const maxLog, minLog = 8, 5
	log := uint32(maxLog)
	if m := uint32(bits.Len(uint(n-1))) - 3; m < log {
		log = m // few codes: less accuracy is enough
	}
	minBits := min(uint32(bits.Len(uint(n))), uint32(bits.Len(uint(syms-1)))+1)
	return min(max(log, minBits, minLog), maxLog)
}

// normalize sets norm to counts (n in all) scaled to sum to 1<<log, each
// code used at least 1, and returns it.
func normalize(norm []int16, counts []uint32, n int, log uint32) []int16 {
	size := int32(1) << log
	sum, largest := int32(0), 0
	for c, k := range counts {
		v := int32(0)
		if k > 0 {
			v = max(int32(uint64(k)<<log/uint64(n)), 1)
		}
		norm[c] = int16(v)
		sum += v
		if norm[c] > norm[largest] {
			largest = c
		}
	}
	if d := size - sum; int32(norm[largest])+d >= int32(norm[largest])/2 && int32(norm[largest])+d > 0 {
		norm[largest] += int16(d)
		return norm
	}
	// Rounding up the rare codes took too much from the common ones:
	// take it back one at a time from whichever is largest.
	for ; sum > size; sum-- {
		largest = 0
		for c := range norm {
			if norm[c] > norm[largest] {
				largest = c
			}
		}
		norm[largest]--
	}
	for ; sum < size; sum++ {
		norm[largest]++
	}
	return norm
}

// appendTableDescription appends norm's FSE_Table_Description (RFC 8878
// 4.1.1): the accuracy, then each code's count (plus one) in as few bits
// as what is left to share out allows, runs of unused codes as repeat
// flags; it ends at the last count.
func appendTableDescription(dst []byte, norm []int16, log uint32) []byte {
	acc, nacc := uint32(log-5), uint32(4)
	flush := func() {
		for nacc >= 8 {
			dst = append(dst, byte(acc))
			acc >>= 8
			nacc -= 8
		}
	}
	remaining := int32(1)<<log + 1
	threshold := int32(1) << log
	nbBits := log + 1
	prev0 := false
	for c := 0; remaining > 1; {
		if prev0 {
			start := c
			for norm[c] == 0 {
				c++
			}
			for ; c >= start+3; start += 3 {
				acc |= 3 << nacc
				nacc += 2
				flush()
			}
			acc |= uint32(c-start) << nacc
			nacc += 2
			flush()
		}
		count := int32(norm[c])
		c++
		most := 2*threshold - 1 - remaining
		remaining -= count
		count++
		if count >= threshold {
			count += most
		}
		acc |= uint32(count) << nacc
		nacc += nbBits
		if count < most {
			nacc--
		}
		flush()
		prev0 = count == 1
		for remaining < threshold {
			nbBits--
			threshold >>= 1
		}
	}
	if nacc > 0 {
		dst = append(dst, byte(acc))
	}
	return dst
}

// offsetValue returns the Offset_Value of a match off bytes back after ll
// literals, a repeat code where it can, and updates the repeat offsets as
// a decoder does (RFC 8878 3.1.1.5).
func (s *frameScratch) offsetValue(off, ll uint32) uint32 {
	r := &s.reps
	if ll == 0 {
		switch off {
		case r[1]:
			r[0], r[1] = r[1], r[0]
			return 1
		case r[2]:
			r[0], r[1], r[2] = r[2], r[0], r[1]
			return 2
		case r[0] - 1:
			r[0], r[1], r[2] = off, r[0], r[1]
			return 3
		}
	} else {
		switch off {
		case r[0]:
			return 1
		case r[1]:
			r[0], r[1] = r[1], r[0]
			return 2
		case r[2]:
			r[0], r[1], r[2] = r[2], r[0], r[1]
			return 3
		}
	}
	r[0], r[1], r[2] = off, r[0], r[1]
	return off + 3
}

// llCode is the code of a literals length (RFC 8878 3.1.1.3.2.1.1).
func llCode(ll uint32) uint32 {
	if ll < 64 {
		return uint32(llCodes[ll])
	}
	return uint32(bits.Len32(ll)-1) + 19
}

// mlCode is the code of a match length less minMatch.
func mlCode(ml uint32) uint32 {
	if ml < 128 {
		return uint32(mlCodes[ml])
	}
	return uint32(bits.Len32(ml)-1) + 36
}

// ofCode is the code of an Offset_Value: its extra bits are as many.
func ofCode(v uint32) uint32 { return uint32(bits.Len32(v) - 1) }

// Every code's first value is a multiple of two to its extra bits, so a
// value's extra bits are its low bits.
var (
	llCodes = [64]byte{
		0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
		16, 16, 17, 17, 18, 18, 19, 19, 20, 20, 20, 20, 21, 21, 21, 21,
		22, 22, 22, 22, 22, 22, 22, 22, 23, 23, 23, 23, 23, 23, 23, 23,
		24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24}
	llBits = [36]uint32{
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12,
		13, 14, 15, 16}
	mlCodes = [128]byte{
		0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
		16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
		32, 32, 33, 33, 34, 34, 35, 35, 36, 36, 36, 36, 37, 37, 37, 37,
		38, 38, 38, 38, 38, 38, 38, 38, 39, 39, 39, 39, 39, 39, 39, 39,
		40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,
		41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41,
		42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42,
		42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42}
	mlBits = [53]uint32{
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11,
		12, 13, 14, 15, 16}
)

// The predefined distributions (RFC 8878 3.1.1.3.2.2.1).
var (
	predefLL = newFSETable(6, []int16{
		4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1,
		2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1,
		-1, -1, -1, -1})
	predefML = newFSETable(6, []int16{
		1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1,
		-1, -1, -1, -1, -1})
	predefOF = newFSETable(5, []int16{
		1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1,
		1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1})
)

// fseTable encodes symbols of a normalized distribution (tANS, as zstd's
// reference encoder builds it): a state is in [size, 2*size).
type fseTable struct {
	log  uint32
	next []uint16    // state table, by (state >> bits out) + sym.find
	syms []fseSymbol // by symbol

	cumul []uint32 // build's
	cell  []uint16
}

type fseSymbol struct {
	deltaBits uint32 // (bits out << 16) - the least state that outputs that many
	find      int32
}

// newFSETable returns the encoding table of norm (see build).
func newFSETable(log uint32, norm []int16) *fseTable {
	t := new(fseTable)
	t.build(log, norm)
	return t
}

// build makes t the encoding table of norm: counts summing to 1<<log, -1
// for a "less than one" count (a cell, at the table's end).
func (t *fseTable) build(log uint32, norm []int16) {
	size := uint32(1) << log
	t.log = log
	t.next = slices.Grow(t.next[:0], int(size))[:size]
	t.syms = slices.Grow(t.syms[:0], len(norm))[:len(norm)]
	clear(t.syms)
	// Where each symbol's states start; "less than one" symbols take
	// the table's last cells.
	t.cumul = slices.Grow(t.cumul[:0], len(norm)+1)[:len(norm)+1]
	cumul := t.cumul
	cumul[0] = 0
	t.cell = slices.Grow(t.cell[:0], int(size))[:size]
	cell := t.cell // the symbol of each cell
	high := size - 1
	for u, v := range norm {
		if v == -1 {
			cumul[u+1] = cumul[u] + 1
			cell[high] = uint16(u)
			high--
		} else {
			cumul[u+1] = cumul[u] + uint32(v)
		}
	}
	if cumul[len(norm)] != size {
		panic("publish: an FSE distribution that does not sum to its table size")
	}
	// Spread the symbols over the other cells.
	step, mask, pos := size>>1+size>>3+3, size-1, uint32(0)
	for u, v := range norm {
		for range max(v, 0) {
			cell[pos] = uint16(u)
			pos = (pos + step) & mask
			for pos > high {
				pos = (pos + step) & mask
			}
		}
	}
	if pos != 0 {
		panic("publish: an FSE spread that does not end where it began")
	}
	for u, sym := range cell {
		t.next[cumul[sym]] = uint16(size + uint32(u))
		cumul[sym]++
	}
	total := int32(0)
	for u, v := range norm {
		switch v {
		case 0:
		case -1, 1:
			t.syms[u] = fseSymbol{deltaBits: log<<16 - size, find: total - 1}
			total++
		default:
			out := log - uint32(bits.Len32(uint32(v-1))-1)
			t.syms[u] = fseSymbol{deltaBits: out<<16 - uint32(v)<<out, find: total - int32(v)}
			total += int32(v)
		}
	}
}

// rle makes t the table of a block with one code: no state, no bits.
func (t *fseTable) rle() { t.log = 0 }

// init returns the state that starts with sym (the first encoded: the
// last decoded), writing no bits.
func (t *fseTable) init(sym uint8) uint32 {
	if t.log == 0 {
		return 0
	}
	st := t.syms[sym]
	out := (st.deltaBits + 1<<15) >> 16
	lu := int32((out<<16-st.deltaBits)>>out) + st.find
	return uint32(t.next[lu])
}

// encode writes the bits that take state to sym's next state.
func (t *fseTable) encode(bw *bitWriter, state *uint32, sym uint8) {
	if t.log == 0 {
		return
	}
	st := t.syms[sym]
	out := (*state + st.deltaBits) >> 16
	bw.add(*state, out)
	*state = uint32(t.next[int32(*state>>out)+st.find])
}

// bitWriter writes a zstd bitstream: bits from the lowest up, closed by a
// 1 bit (where a decoder starts reading, backward).
type bitWriter struct {
	acc uint64
	n   uint32
	out []byte
}

func (b *bitWriter) reset(out []byte) { b.acc, b.n, b.out = 0, 0, out }

// add writes the low n bits of v (n <= 32).
func (b *bitWriter) add(v, n uint32) {
	if b.n >= 32 {
		b.out = append(b.out, byte(b.acc), byte(b.acc>>8), byte(b.acc>>16), byte(b.acc>>24))
		b.acc >>= 32
		b.n -= 32
	}
	b.acc |= uint64(v&(1<<n-1)) << b.n
	b.n += n
}

// close writes the end mark and the last bits, and returns the output.
func (b *bitWriter) close() []byte {
	b.add(1, 1)
	for ; b.n > 0; b.n -= min(b.n, 8) {
		b.out = append(b.out, byte(b.acc))
		b.acc >>= 8
	}
	return b.out
}
