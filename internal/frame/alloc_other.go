//go:build !linux

package frame

// adviseHuge does nothing: transparent huge pages are Linux's.
func adviseHuge([]byte) {}
