//go:build !unix

package main

import "os"

// rusage returns 0 for the peak RSS where wait4's rusage does not exist.
func rusage(ps *os.ProcessState) (maxRSSKiB int64, user, sys float64) {
	return 0, ps.UserTime().Seconds(), ps.SystemTime().Seconds()
}
