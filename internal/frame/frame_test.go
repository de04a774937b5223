package frame

import "testing"

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
