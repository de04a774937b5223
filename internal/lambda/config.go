// Package lambda is the rollup job's Lambda function (docs/design.md
// §Where it runs): one binary whose every invocation is one stage of a run,
// named by a small stage event. The nightly run's state machine (infra,
// StateMachineDefinition) calls the stages in order and owns the fan-out,
// its concurrency, retries and failures; nothing here waits for another
// invocation.
//
//   - erase {"stage":"erase"}: carries out the pending erasure requests
//     (job.Erase, rollup erase), before the run lists any raw object.
//   - start {"stage":"start","execution":..,"input":..}: the input is an
//     EventBridge scheduled event (the nightly run: job.CatchUp's days) or
//     a backfill {"from":"YYYY-MM-DD","to":"YYYY-MM-DD"}. It names the run,
//     lists the raw objects not routed yet (job.Pending), splits them into
//     route parts and records the run (RunRecord).
//   - route {"stage":"route","run":..,"part":N}: reads its part's raw
//     objects once and writes their segments (job.RouteObjects); it reports
//     their index entries.
//   - plan {"stage":"plan","run":..}: records the routed objects in the
//     index (job.AddEntries) and returns the stale days (job.Plan).
//   - build {"stage":"build","run":..,"day":"YYYY-MM-DD"}: stage 1 for one
//     day (job.BuildDays), idempotently.
//   - windowed, register, report, finish {"stage":..,"run":..}: the
//     windowed tables (job.RunWindowed), the Glue partitions (Registrar),
//     the HTML report (LW_REPORT) and the run summary (_state/runs/<run>.json).
//
// Every stage keeps what the next needs under _state/runs/<run>/, so the
// payloads stay small whatever the number of days. A stage returns a
// *RetryableError for a failure that may go away (the state machine
// retries it with backoff) and a *PermanentError for one that will not (the
// state machine catches it: the day or part fails alone).
package lambda

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // provided.al2023 need not have a zoneinfo database

	"github.com/littlewarehouse/warehouse/internal/compact"
)

// The environment variables the functions read.
const (
	EnvStore        = "LW_STORE"         // s3://bucket/prefix (required)
	EnvGlueDatabase = "LW_GLUE_DATABASE" // Glue database of the tables (optional)
	EnvTZ           = "LW_TZ"            // reporting time zone, IANA name (default UTC)
	EnvMaxLateness  = "LW_MAX_LATENESS"  // e.g. 168h or 7d (default 7d)
	EnvParallel     = "LW_PARALLEL"      // raw objects a stage reads at once, and days or route parts in flight (default 8)
	EnvRawPrefix    = "LW_RAW_PREFIX"    // where Firehose writes in the store (default raw/)
	EnvGracePeriod  = "LW_GRACE_PERIOD"  // keep superseded runs this long (default 6h on S3, else 0)
	EnvReport       = "LW_REPORT"        // write HTMLReportKey after each run, true or false (default false)
)

// Config is the functions' configuration, from the environment.
type Config struct {
	Store        string
	GlueDatabase string
	Location     *time.Location
	MaxLateness  time.Duration
	Parallel     int
	RawPrefix    string
	GracePeriod  time.Duration
	// HTMLReport (LW_REPORT) makes a run write the HTML report of the
	// curated tables to HTMLReportKey (the report stage).
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
		Store:        get(EnvStore),
		GlueDatabase: get(EnvGlueDatabase),
		RawPrefix:    get(EnvRawPrefix),
	}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

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
