package frame

import "syscall"

// adviseHuge asks for transparent huge pages for b (page-aligned); a
// kernel that cannot, or will not, is ignored: it is only advice.
func adviseHuge(b []byte) { _ = syscall.Madvise(b, syscall.MADV_HUGEPAGE) }
