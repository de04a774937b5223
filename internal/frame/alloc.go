package frame

import "unsafe"

// hugePage is the size of a transparent huge page (x86-64 and arm64 with
// 4 KiB base pages).
const hugePage = 2 << 20

// Make returns make([]T, n, c) (c < n means c = n), and asks the kernel to
// back it with transparent huge pages if it spans at least one aligned
// 2 MiB page. A day's columns are hundreds of megabytes of fresh memory,
// and on the virtual machines we run on (Firecracker, as Lambda is) each
// 4 KiB page fault costs 10–15 µs: touching 512 MiB took 1.7–2.2 s with
// 4 KiB pages and 0.4–1.3 s with huge pages here. The Go heap asks for
// none (since Go 1.21.1), so where the system's THP mode is "madvise"
// (/sys/kernel/mm/transparent_hugepage/enabled; Linux only) the big
// columns get them only this way. It never changes what the slice holds.
func Make[T any](n, c int) []T {
	s := make([]T, n, max(n, c))
	var zero T
	if size := uintptr(cap(s)) * unsafe.Sizeof(zero); size >= 2*hugePage {
		p := uintptr(unsafe.Pointer(unsafe.SliceData(s)))
		start, end := (p+hugePage-1)&^(hugePage-1), (p+size)&^(hugePage-1)
		if end > start {
			adviseHuge(unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), size)[start-p : end-p])
		}
	}
	return s
}

// Grow returns b with room for n more bytes. When it must grow, the new
// buffer is at least twice as large and comes from Make (so a large one
// is advised for huge pages): a buffer that grows a quarter at a time by
// append faults its fresh memory in a 4 KiB page at a time, which on the
// virtual machines we run on costs about 15 µs a page (a routing run's
// segment buffers grew 34 times, 200 MB, about 40,000 faults).
func Grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	g := Make[byte](len(b), max(2*cap(b), len(b)+n))
	copy(g, b)
	return g
}
