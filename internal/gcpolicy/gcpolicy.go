// Package gcpolicy sets the garbage collector's policy for the whole
// process: GOGC and the soft memory limit. Only main packages call it;
// library code never changes process-wide runtime settings.
package gcpolicy

import (
	"math"
	"runtime/debug"
	"strconv"
)

// Percent is the GOGC a rollup process runs with, and CLILimit the soft
// memory limit of a rollup run outside Lambda. A day's heap is mostly
// pointer-free columns, cheap to mark, and what it frees (a part's columns
// once appended to the day's) is large: at the default GOGC of 100 the
// heap grows to about twice the live day before a collection. A GOGC of
// 25 keeps small runs (many small days) from collecting every few
// megabytes, and the soft limit keeps a big day's heap near its live size.
// A day whose live heap is above the limit is still built: the runtime
// then collects more often, using at most about half the CPU; set
// GOMEMLIMIT higher for such days.
const (
	Percent  = 25
	CLILimit = 900 << 20
)

// Policy is what Apply set: 0 where the environment's GOGC or GOMEMLIMIT
// won.
type Policy struct {
	Percent int
	Limit   int64
}

// LambdaLimit returns the soft memory limit of a Lambda function of the
// given memory size (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, in MB): 90% of it,
// so that the collector works harder as a big day nears the function's
// memory instead of letting garbage double the heap and the function be
// killed. It returns 0 if size is not a positive number.
func LambdaLimit(size string) int64 {
	mb, err := strconv.ParseInt(size, 10, 64)
	if err != nil || mb <= 0 || mb > math.MaxInt64>>21 {
		return 0
	}
	return mb << 20 / 10 * 9
}

// Choose returns the policy for an environment (getenv): Percent unless
// GOGC is set; LambdaLimit on Lambda, else CLILimit, unless GOMEMLIMIT is
// set. An operator's GOGC or GOMEMLIMIT always wins.
func Choose(getenv func(string) string) Policy {
	var p Policy
	if getenv("GOGC") == "" {
		p.Percent = Percent
	}
	if getenv("GOMEMLIMIT") == "" {
		p.Limit = CLILimit
		if size := getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"); size != "" {
			p.Limit = LambdaLimit(size)
		}
	}
	return p
}

// Apply sets the process's policy, Choose(getenv), and returns it.
func Apply(getenv func(string) string) Policy {
	p := Choose(getenv)
	if p.Percent > 0 {
		debug.SetGCPercent(p.Percent)
	}
	if p.Limit > 0 {
		debug.SetMemoryLimit(p.Limit)
	}
	return p
}
