//go:build unix

package main

import (
	"os"
	"runtime"
	"syscall"
)

// rusage returns a finished child's peak RSS in KiB and its user and system
// CPU seconds, from the rusage wait4 filled in.
func rusage(ps *os.ProcessState) (maxRSSKiB int64, user, sys float64) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return 0, ps.UserTime().Seconds(), ps.SystemTime().Seconds()
	}
	maxRSSKiB = int64(ru.Maxrss) // KiB on Linux and the BSDs
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		maxRSSKiB /= 1024 // bytes there
	}
	return maxRSSKiB, ps.UserTime().Seconds(), ps.SystemTime().Seconds()
}
