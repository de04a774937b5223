package frame

import (
	"bytes"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
)

// The dictionary keeps copies: strings added by ID and IDBytes read the
// same after the caller's bytes change, however many chunks they took
// (strings longer than a chunk included), and each is found again.
func TestDictKeepsCopies(t *testing.T) {
	d := NewDict(0)
	buf := []byte("x")
	var want []string
	var snap Strs // taken halfway: stays whole while the dictionary grows
	for i := range 20000 {
		if i == 10000 {
			snap = d.Strings()
		}
		s := fmt.Sprintf("s%d-%s", i, strings.Repeat("y", i%50))
		if i%997 == 0 {
			s = strings.Repeat("z", maxChunk+i) // longer than any chunk
		}
		buf = append(buf[:0], s...)
		var id uint32
		if i%2 == 0 {
			id = d.IDBytes(buf)
		} else {
			id = d.ID(string(buf))
		}
		copy(buf, bytes.Repeat([]byte("!"), len(buf))) // the caller reuses its bytes
		if int(id) != i+1 {
			t.Fatalf("string %d got id %d", i, id)
		}
		want = append(want, s)
	}
	if snap.Len() != 10001 {
		t.Fatalf("the snapshot holds %d strings, want 10001", snap.Len())
	}
	for id, s := range snap.All() {
		if id > 0 && s != want[id-1] {
			t.Fatalf("the snapshot's id %d reads %.20q, want %.20q", id, s, want[id-1])
		}
	}
	for i, s := range want {
		if d.Str(uint32(i+1)) != s {
			t.Fatalf("id %d reads %.20q, want %.20q", i+1, d.Str(uint32(i+1)), s)
		}
		if id := d.IDBytes([]byte(s)); int(id) != i+1 {
			t.Fatalf("%.20q: IDBytes %d, want %d", s, id, i+1)
		}
	}
	if d.Len() != len(want)+1 || d.IDBytes(nil) != 0 || d.ID("") != 0 {
		t.Fatalf("Len %d, want %d; \"\" must be id 0", d.Len(), len(want)+1)
	}
}

// A sealed dictionary reads as before and rebuilds its index when a
// string is looked up or added.
func TestDictSeal(t *testing.T) {
	d := NewDict(0)
	a, b := d.ID("a"), d.ID("b")
	d.Seal()
	if d.Str(a) != "a" || d.Len() != 3 {
		t.Fatalf("sealed: Str(%d) = %q, Len %d", a, d.Str(a), d.Len())
	}
	if id, ok := d.LookupBytes([]byte("b")); !ok || id != b {
		t.Fatalf(`LookupBytes("b") = %d, %v; want %d`, id, ok, b)
	}
	d.Seal()
	if id := d.ID("a"); id != a {
		t.Fatalf(`ID("a") = %d after Seal; want %d`, id, a)
	}
	if id := d.ID("c"); id != 3 || d.Str(3) != "c" {
		t.Fatalf(`ID("c") = %d`, id)
	}
	if _, ok := d.Lookup("zz"); ok {
		t.Fatal(`Lookup("zz") found`)
	}
}

// Events rebased onto one dictionary read as before, and the dictionary
// gains only the strings they use, each once.
func TestRebase(t *testing.T) {
	rows := func(tag string) []Row {
		return []Row{
			{EventID: "e1" + tag, EventTime: 1, Str: [NumColumns]string{"open", "u1", "d1", "", "shop"},
				Props: map[string]string{"b": "2", "a": "x" + tag}},
			{EventID: "e2" + tag, EventTime: 2, Str: [NumColumns]string{"buy", "", "d2" + tag, "s1", "shop"}},
		}
	}
	var parts []*Events
	var want []Row
	for _, tag := range []string{"A", "B"} {
		e := New(nil, 0)
		e.Dict.ID("unused" + tag) // in the old dictionary, used by no event
		for _, r := range rows(tag) {
			if err := e.Append(&r); err != nil {
				t.Fatal(err)
			}
			want = append(want, e.Row(e.Len()-1))
		}
		parts = append(parts, e)
	}
	day := NewDict(0)
	for _, e := range parts {
		e.Rebase(day)
		e.Rebase(day) // a no-op once rebased
	}
	var got []Row
	for _, e := range parts {
		if e.Dict != day {
			t.Fatal("Rebase did not set the dictionary")
		}
		for i := range e.Len() {
			got = append(got, e.Row(i))
		}
	}
	for i := range want {
		if got[i].EventID != want[i].EventID || got[i].Str != want[i].Str || len(got[i].Props) != len(want[i].Props) {
			t.Fatalf("event %d: got %+v, want %+v", i, got[i], want[i])
		}
		for k, v := range want[i].Props {
			if got[i].Props[k] != v {
				t.Fatalf("event %d: property %s = %q, want %q", i, k, got[i].Props[k], v)
			}
		}
	}
	// "", open, u1, d1, shop, b, 2, a, xA, buy, d2A, s1, xB, d2B.
	if day.Len() != 14 {
		t.Fatalf("the day's dictionary holds %d strings, want 14: %q", day.Len(), allStrings(day))
	}
	if _, ok := day.Lookup("unusedA"); ok {
		t.Fatal("a string no event uses was added")
	}
	if k, _ := parts[0].Props(0); day.Str(k[0]) != "a" || day.Str(k[1]) != "b" {
		t.Fatal("property keys are no longer in byte order")
	}
}

// Strings whose hashes collide get ids of their own and are found again,
// before and after Seal (the index is keyed by hash; here every string of
// one length has the same).
func TestDictHashCollisions(t *testing.T) {
	defer func(h func(string) uint64) { hashString = h }(hashString)
	hashString = func(s string) uint64 { return uint64(len(s)) }
	d := NewDict(0)
	var want []string
	for i := range 300 {
		want = append(want, fmt.Sprintf("%03d", i), fmt.Sprint(i%40))
	}
	ids := map[string]uint32{"": 0}
	for _, s := range want {
		id := d.ID(s)
		if old, ok := ids[s]; ok && old != id {
			t.Fatalf("%q: id %d, earlier %d", s, id, old)
		}
		ids[s] = id
	}
	if d.Len() != len(ids) {
		t.Fatalf("Len %d, want %d distinct", d.Len(), len(ids))
	}
	for pass := range 2 {
		for s, id := range ids {
			if got, ok := d.LookupBytes([]byte(s)); !ok || got != id || d.Str(id) != s {
				t.Fatalf("pass %d: %q: LookupBytes %d %v, want %d", pass, s, got, ok, id)
			}
		}
		if _, ok := d.Lookup("999"); ok {
			t.Fatal(`Lookup("999") found`)
		}
		d.Seal()
	}
}

// Ranks order the strings as bytes do, strings sharing long prefixes,
// holding zero bytes or shorter than 8 bytes included.
func TestRanks(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	d := NewDict(0)
	for range 5000 {
		n := rng.Intn(20)
		b := make([]byte, n)
		for i := range b {
			b[i] = "ab\x00\xff"[rng.Intn(4)]
		}
		if rng.Intn(3) == 0 {
			b = append([]byte("i:web|user-1|"), b...)
		}
		d.IDBytes(b)
	}
	rank := d.Ranks()
	strs := d.Strings()
	order := make([]int, strs.Len())
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(strs.At(uint32(a)), strs.At(uint32(b))) })
	for r, id := range order {
		if rank[id] != uint32(r) {
			t.Fatalf("%q: rank %d, want %d", strs.At(uint32(id)), rank[id], r)
		}
	}
}

// allStrings returns d's strings by id.
func allStrings(d *Dict) []string {
	var out []string
	for _, s := range d.Strings().All() {
		out = append(out, s)
	}
	return out
}

// Dict.intern gives each string the id successive ID calls give it, in
// batches (of 16) that span strings already held, new ones, repeats of
// an earlier batch's new ones, and the index's growth mid-batch; and so
// it does when every string of a length has the same hash.
func TestDictIntern(t *testing.T) {
	for _, collide := range []bool{false, true} {
		t.Run(fmt.Sprintf("collide %v", collide), func(t *testing.T) {
			if collide {
				defer func(h func(string) uint64) { hashString = h }(hashString)
				hashString = func(s string) uint64 { return uint64(len(s)) }
			}
			rng := rand.New(rand.NewSource(5))
			src := NewDict(0)
			for range 3000 {
				src.ID(fmt.Sprint(rng.Intn(5000)))
			}
			var olds []uint32
			for id := range uint32(src.Len()) {
				if id > 0 && rng.Intn(4) > 0 {
					olds = append(olds, id)
				}
			}
			got, want := NewDict(0), NewDict(0)
			for i := range 500 { // a third of src's strings, already held
				s := fmt.Sprint(i * 3)
				if got.ID(s) != want.ID(s) {
					t.Fatal("the dictionaries differ before intern")
				}
			}
			to := make([]uint32, src.Len())
			got.intern(src.Strings(), olds, to)
			for _, o := range olds {
				if w := want.ID(src.Str(o)); to[o] != w || got.Str(to[o]) != src.Str(o) {
					t.Fatalf("%q: id %d (%q), ID gives %d", src.Str(o), to[o], got.Str(to[o]), w)
				}
			}
			if got.Len() != want.Len() {
				t.Fatalf("%d strings, ID gives %d", got.Len(), want.Len())
			}
		})
	}
}

// IDIf gives a held string its id without asking ok, adds a new string ok
// accepts, and adds nothing for one it refuses.
func TestDictIDIf(t *testing.T) {
	d := NewDict(0)
	held := d.ID("held")
	asked := 0
	refuse := func([]byte) bool { asked++; return false }
	if id, ok := d.IDIf([]byte("held"), refuse); !ok || id != held || asked != 0 {
		t.Fatalf("held: %d %v, asked %d", id, ok, asked)
	}
	if _, ok := d.IDIf([]byte("new"), refuse); ok || asked != 1 || d.Len() != 2 {
		t.Fatalf("refused: ok %v, asked %d, %d strings", ok, asked, d.Len())
	}
	id, ok := d.IDIf([]byte("new"), func([]byte) bool { return true })
	if !ok || d.Str(id) != "new" || d.ID("new") != id || d.Len() != 3 {
		t.Fatalf("accepted: %d %v, %d strings", id, ok, d.Len())
	}
}
