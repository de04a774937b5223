package lambda

import (
	"math"
	"runtime/debug"
	"strconv"
)

// MemoryLimit returns the soft memory limit a function of the given memory
// size (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, in MB) should run with: 90% of it,
// so that the Go collector works harder as a big day's build nears the
// function's memory instead of letting garbage double the heap and the
// function be killed. It returns 0 if size is not a positive number, or if
// goMemLimit (GOMEMLIMIT) is set: an explicit limit wins.
func MemoryLimit(size, goMemLimit string) int64 {
	if goMemLimit != "" {
		return 0
	}
	mb, err := strconv.ParseInt(size, 10, 64)
	if err != nil || mb <= 0 || mb > math.MaxInt64>>21 {
		return 0
	}
	return mb << 20 / 10 * 9
}

// SetMemoryLimit applies MemoryLimit, if any, and returns it.
func SetMemoryLimit(getenv func(string) string) int64 {
	limit := MemoryLimit(getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"), getenv("GOMEMLIMIT"))
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	return limit
}
