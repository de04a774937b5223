package frame

// Event ids that are canonical UUIDs (36 characters: lowercase hex digits
// in groups of 8-4-4-4-12 joined by '-'), as nearly every client sends,
// are held as their 16 bytes: 20 bytes and a 4-byte offset less per event.
// Packed ids compare as their text does (hex digits sort as the nibbles
// they stand for, the dashes are in the same places), so dedupe and sort
// work on them unchanged, provided every id compared is packed.

// UUIDSize is the size of a packed event id.
const UUIDSize = 16

// uuidTextSize is the size of a canonical UUID's text.
const uuidTextSize = 36

// unhex maps a lowercase hex digit to its value and anything else to 0xff.
var unhex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "0123456789abcdef" {
		t[c] = byte(i)
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// packUUID appends the 16 bytes of id to dst if id is a canonical UUID.
func packUUID(dst, id []byte) ([]byte, bool) {
	if len(id) != uuidTextSize || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return dst, false
	}
	n := len(dst)
	for i := 0; i < uuidTextSize; i += 2 {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++ // the dash; its group goes on at i+1
		}
		hi, lo := unhex[id[i]], unhex[id[i+1]]
		if hi|lo == 0xff {
			return dst[:n], false
		}
		dst = append(dst, hi<<4|lo)
	}
	return dst, true
}

// appendUUIDText appends the canonical text of the packed id u to dst.
func appendUUIDText(dst, u []byte) []byte {
	for i, b := range u[:UUIDSize] {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[b>>4], hexDigits[b&15])
	}
	return dst
}

// PackIDs returns ids (event i's at ids[off[i]:off[i+1]]) packed, 16 bytes
// each, if every one is a canonical UUID; else nil and false. ids and off
// are not modified.
func PackIDs(ids []byte, off []uint32) ([]byte, bool) {
	n := len(off) - 1
	if n <= 0 || len(ids) != n*uuidTextSize {
		return nil, false
	}
	out := make([]byte, 0, n*UUIDSize)
	for i := range n {
		var ok bool
		if out, ok = packUUID(out, ids[off[i]:off[i+1]]); !ok {
			return nil, false
		}
	}
	return out, true
}

// PackUUIDs packs e's event ids if they are all canonical UUIDs (and there
// is at least one), and reports whether e's ids are now packed.
func (e *Events) PackUUIDs() bool {
	if e.UUIDs {
		return true
	}
	packed, ok := PackIDs(e.IDBytes, e.IDOff)
	if ok {
		e.IDBytes, e.IDOff, e.UUIDs = packed, nil, true
	}
	return ok
}

// UnpackUUIDs turns e's packed event ids back into text, if they are
// packed: to be compared with ids that are not.
func (e *Events) UnpackUUIDs() {
	if !e.UUIDs {
		return
	}
	n := len(e.IDBytes) / UUIDSize
	ids := make([]byte, 0, n*uuidTextSize)
	off := make([]uint32, 1, n+1)
	for i := range n {
		ids = appendUUIDText(ids, e.IDBytes[i*UUIDSize:])
		off = append(off, uint32(len(ids)))
	}
	e.IDBytes, e.IDOff, e.UUIDs = ids, off, false
}

// AppendIDText appends event i's event_id, as text, to dst.
func (e *Events) AppendIDText(dst []byte, i int) []byte {
	if e.UUIDs {
		return appendUUIDText(dst, e.ID(i))
	}
	return append(dst, e.ID(i)...)
}

// IDTextSize is the total size of the event ids of events [lo, hi), as
// text.
func (e *Events) IDTextSize(lo, hi int) int {
	if e.UUIDs {
		return (hi - lo) * uuidTextSize
	}
	return int(e.IDOff[hi] - e.IDOff[lo])
}
