// Package lambda runs the rollup job on AWS Lambda (docs/design.md §Where it runs):
// one binary, two functions.
//
//   - The coordinator takes an EventBridge scheduled event (the nightly run)
//     or a backfill {"from":"YYYY-MM-DD","to":"YYYY-MM-DD"}. It first
//     routes the raw objects not indexed yet (job.Pending): it splits them
//     among at most LW_PARALLEL route workers, so that each object is read
//     once however many days it feeds, and records the entries they report
//     in the index (job.AddEntries). It then plans the stale days
//     (job.Plan; a second route round if the plan finds segments missing),
//     invokes one worker per stale day asynchronously (it reads segments,
//     not raw objects), waits for the workers' manifests until its deadline
//     less a margin, runs the windowed stage (job.RunWindowed) for the days
//     that finished, registers the partitions (Registrar), and writes a run
//     summary to _state/runs/<run>.json. Days still pending at the deadline
//     are listed there; the next run picks them up, since the plan is
//     fingerprint-based. With LW_REPORT=true it then writes the HTML
//     report of the curated tables (internal/report) to reports/latest.html;
//     a report that cannot be written is logged and noted in the summary,
//     and the run goes on.
//   - A worker takes {"role":"worker","day":"YYYY-MM-DD","run":"<run>"} and
//     runs stage 1 for that day (job.BuildDays), idempotently: a
//     day already current is left alone. It writes what it did to
//     _state/runs/<run>/<day>.json for the coordinator.
//   - A route worker (the same worker function) takes
//     {"role":"worker","run":"<run>","part":N,"route":[{"key":..,"etag":..,
//     "size":..,"hour":..},..]}, reads each object once, writes its
//     segments (job.RouteObjects), and reports the objects' index entries
//     in _state/runs/<run>/route-<N>.json. If it fails, the day workers
//     route what their days lack themselves: it costs reads, never
//     correctness.
//
// DispatchBackfill is the same fan-out driven from a laptop
// (rollup --dispatch lambda:<function>).
//
// Workers are dispatched in day order, up to LW_PARALLEL at once (default
// 8): days do not depend on each other, so they may finish in any order
// (see Options.Concurrency).
package lambda

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // provided.al2023 need not have a zoneinfo database

	"github.com/littlewarehouse/warehouse/internal/compact"
)

// Roles, the values of LW_ROLE.
const (
	RoleCoordinator = "coordinator"
	RoleWorker      = "worker"
)

// The environment variables the functions read.
const (
	EnvRole           = "LW_ROLE"            // coordinator or worker (required)
	EnvStore          = "LW_STORE"           // s3://bucket/prefix (required)
	EnvGlueDatabase   = "LW_GLUE_DATABASE"   // Glue database of the tables (optional)
	EnvTZ             = "LW_TZ"              // reporting time zone, IANA name (default UTC)
	EnvMaxLateness    = "LW_MAX_LATENESS"    // e.g. 168h or 7d (default 7d)
	EnvWorkerFunction = "LW_WORKER_FUNCTION" // worker function name or ARN (required for the coordinator)
	EnvParallel       = "LW_PARALLEL"        // raw objects a worker reads at once (default 8)
	EnvRawPrefix      = "LW_RAW_PREFIX"      // where Firehose writes in the store (default raw/)
	EnvGracePeriod    = "LW_GRACE_PERIOD"    // keep superseded runs this long (default 6h on S3, else 0)
	EnvReport         = "LW_REPORT"          // coordinator: write HTMLReportKey after each run, true or false (default false)
)

// Config is the functions' configuration, from the environment.
type Config struct {
	Role           string
	Store          string
	GlueDatabase   string
	Location       *time.Location
	MaxLateness    time.Duration
	WorkerFunction string
	Parallel       int
	RawPrefix      string
	GracePeriod    time.Duration
	// HTMLReport (LW_REPORT) makes the coordinator write the HTML report
	// of the curated tables to HTMLReportKey after each run (see
	// Options.HTMLReport). The worker ignores it.
	HTMLReport bool
}

// Rules returns the compaction rules of the configuration.
func (c Config) Rules() compact.Rules {
	r := compact.DefaultRules(c.Location)
	r.MaxLateness = c.MaxLateness
	return r
}

// ConfigFromEnv reads and checks the configuration; getenv is os.Getenv in
// production. Every problem is reported, each naming its variable.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	c := Config{
		Role:           get(EnvRole),
		Store:          get(EnvStore),
		GlueDatabase:   get(EnvGlueDatabase),
		WorkerFunction: get(EnvWorkerFunction),
		RawPrefix:      get(EnvRawPrefix),
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	switch c.Role {
	case RoleCoordinator, RoleWorker:
	case "":
		bad("%s is not set (want %s or %s)", EnvRole, RoleCoordinator, RoleWorker)
	default:
		bad("%s=%q: want %s or %s", EnvRole, c.Role, RoleCoordinator, RoleWorker)
	}

	switch {
	case c.Store == "":
		bad("%s is not set (want s3://bucket/prefix)", EnvStore)
	case strings.HasPrefix(c.Store, "s3://"):
		if strings.TrimPrefix(c.Store, "s3://") == "" || strings.HasPrefix(strings.TrimPrefix(c.Store, "s3://"), "/") {
			bad("%s=%q: no bucket (want s3://bucket/prefix)", EnvStore, c.Store)
		}
	case strings.Contains(c.Store, "://") && !strings.HasPrefix(c.Store, "file://"):
		bad("%s=%q: want s3://bucket/prefix (or a local path for testing)", EnvStore, c.Store)
	}

	tz := get(EnvTZ)
	if tz == "" {
		tz = "UTC"
	}
	if loc, err := time.LoadLocation(tz); err != nil || strings.EqualFold(tz, "local") {
		bad("%s=%q: not an IANA time zone name (e.g. UTC, Pacific/Auckland)", EnvTZ, tz)
	} else {
		c.Location = loc
	}

	c.MaxLateness = 7 * 24 * time.Hour
	if s := get(EnvMaxLateness); s != "" {
		d, err := parseDuration(s)
		if err != nil || d <= 0 {
			bad("%s=%q: want a positive duration such as 168h or 7d", EnvMaxLateness, s)
		} else {
			c.MaxLateness = d
		}
	}

	if c.Role == RoleCoordinator && c.WorkerFunction == "" {
		bad("%s is not set: the coordinator needs the worker function's name or ARN", EnvWorkerFunction)
	}

	c.Parallel = 8
	if s := get(EnvParallel); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 256 {
			bad("%s=%q: want a whole number from 1 to 256", EnvParallel, s)
		} else {
			c.Parallel = n
		}
	}

	if c.RawPrefix == "" {
		c.RawPrefix = "raw/"
	} else if !strings.HasSuffix(c.RawPrefix, "/") {
		c.RawPrefix += "/"
	}
	if strings.HasPrefix(c.RawPrefix, "/") || strings.Contains(c.RawPrefix, "..") {
		bad("%s=%q: want a relative key prefix such as raw/", EnvRawPrefix, c.RawPrefix)
	}

	if strings.HasPrefix(c.Store, "s3://") {
		c.GracePeriod = 6 * time.Hour
	}
	if s := get(EnvGracePeriod); s != "" {
		d, err := parseDuration(s)
		if err != nil || d < 0 {
			bad("%s=%q: want a duration such as 6h, or 0", EnvGracePeriod, s)
		} else {
			c.GracePeriod = d
		}
	}

	if s := get(EnvReport); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			bad("%s=%q: want true or false", EnvReport, s)
		} else {
			c.HTMLReport = b
		}
	}
	if len(errs) > 0 {
		return c, &ConfigError{Errs: errs}
	}
	return c, nil
}

// ConfigError lists what is wrong with the environment.
type ConfigError struct{ Errs []error }

func (e *ConfigError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return "rollup-lambda configuration: " + strings.Join(msgs, "; ")
}

func (e *ConfigError) Unwrap() []error { return e.Errs }

// parseDuration accepts Go durations (90m, 168h) and whole days (7d).
func parseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, err
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	if s == "0" {
		return 0, nil
	}
	return time.ParseDuration(s)
}
