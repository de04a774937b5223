package frame

import "testing"

// Make returns a zeroed slice of the length and capacity asked.
func TestMake(t *testing.T) {
	small := Make[uint32](10, 0)
	if len(small) != 10 || cap(small) != 10 {
		t.Fatalf("len %d cap %d", len(small), cap(small))
	}
	big := Make[int64](3<<20, 4<<20)
	if len(big) != 3<<20 || cap(big) != 4<<20 {
		t.Fatalf("len %d cap %d", len(big), cap(big))
	}
	for i, v := range big[:cap(big)] {
		if v != 0 {
			t.Fatalf("big[%d] = %d", i, v)
		}
	}
}

// Grow keeps b's bytes and leaves room for n more, at least doubling.
func TestGrow(t *testing.T) {
	b := Grow([]byte("abc"), 1)
	if string(b) != "abc" || cap(b)-len(b) < 1 {
		t.Fatalf("Grow(abc, 1) = %q cap %d", b, cap(b))
	}
	b = b[:cap(b)]
	g := Grow(b, 100)
	if string(g[:3]) != "abc" || len(g) != len(b) || cap(g) < 2*cap(b) || cap(g)-len(g) < 100 {
		t.Fatalf("Grow: len %d cap %d", len(g), cap(g))
	}
}
