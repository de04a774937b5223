package frame

// Make returns make([]T, n, c), or make([]T, n) if c < n: a column's
// backing array, with room for c values.
func Make[T any](n, c int) []T {
	return make([]T, n, max(n, c))
}

// Grow returns b with room for n more bytes. When it must grow, the new
// buffer is at least twice as large: fewer, larger copies than append's
// growth by a quarter for large buffers.
func Grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	g := Make[byte](len(b), max(2*cap(b), len(b)+n))
	copy(g, b)
	return g
}
