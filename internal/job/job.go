// Package job runs the rollup job over a range of reporting days: it lists
// and reads the raw objects those days need (each once), builds every day's
// events and per-day rollups, publishes them, then the windowed tables
// (docs/design.md §Processing model). Its stages are types, one concern
// each: plan, router, dayBuilder, publisher and windowed, composed by Run
// (and by BuildDays and RunWindowed, which a Lambda worker and coordinator
// call).
package job

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/littlewarehouse/warehouse/internal/catalog"
	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// CodeVersion is part of every fingerprint: bump it when a change to the
// code changes what a partition holds, and every day becomes stale.
const CodeVersion = "6"

// Config is what a run builds and how: settings only. A run's state lives
// in the run, never here, so one Config can be run again.
type Config struct {
	Store          store.Store
	From, To       day.Day // reporting days, inclusive
	Rules          compact.Rules
	RawPrefix      string // where Firehose writes, default "raw/"
	ErrorPrefix    string // where Firehose puts conversion failures, default "raw-errors/format-conversion-failed/"
	Parallel       int    // raw objects read at once
	TargetFileSize int64
	RowGroupSize   int64
	Force          bool             // rebuild days that are up to date
	GracePeriod    time.Duration    // keep superseded runs this long (0: delete at once)
	Catalog        catalog.Catalog  // where to register partitions; nil for none
	RawStart       time.Time        // first raw hour, for the raw table's partition projection (zero: 2020)
	LockWait       time.Duration    // how long to wait for another writer's lease on a partition
	LockTTL        time.Duration    // how long a lease lasts unless renewed (default 30 minutes)
	Now            func() time.Time // clock for run ids and manifests
	// Cause says why this run builds, when it is not new data: it is
	// recorded with every restatement the run causes (the restatements
	// table's cause column), e.g. "erasure <request id>".
	Cause    string
	Progress func(Progress) // optional; called from one goroutine at a time
	Log      *slog.Logger   // optional
}

// Progress reports how far a run is.
type Progress struct {
	Phase       string // "read" or "build"
	Done, Total int
	Day         day.Day
}

// BadObject is a raw object that could not be read.
type BadObject struct {
	Key    string
	Day    day.Day
	Reason string
	Error  string
}

// DaySummary says what the run did for one day.
type DaySummary struct {
	Day          day.Day
	Skipped      bool   // up to date, not rebuilt
	Why          string // why it was (re)built or skipped
	Quality      rollups.DataQualityDaily
	EventsBefore int64 // events the day had before this run; -1 if it was never built
	// Restatements are the day's data_quality_daily numbers this build
	// changed (also appended to the restatements table).
	Restatements []Restated
	FilesWritten int
	BytesWritten int64
	Seconds      float64
}

// Summary is the result of a run.
type Summary struct {
	Run         string
	Days        []DaySummary
	BadObjects  []BadObject
	IgnoredKeys []string // objects under the raw prefix not read: not in the hourly layout, or named _* or .*
	// Earlier are days before the run's range that hold rows of objects
	// this run listed, and whose published tables do not include those
	// objects (or that were never built): their rows are counted nowhere
	// until those days are built. Reported, not built.
	Earlier    []EarlierDay
	Windowed   *WindowedSummary // stage 2; nil if no user_daily is published yet
	RawObjects int              // raw objects read (routed into segments)
	// SegmentsWritten are the segments the raw objects read were split
	// into (one per object and day), SegmentBytes their size.
	SegmentsWritten int
	SegmentBytes    int64
	Scanned         int // new objects indexed (a run reads them whole, routing them, as it indexes them)
	RawBytes        int64
	Seconds         float64
}

func (c *Config) defaults() error {
	if c.Store == nil {
		return errors.New("job: no store")
	}
	if c.From > c.To {
		return fmt.Errorf("from %s is after to %s", c.From, c.To)
	}
	if c.Rules.Loc == nil {
		c.Rules = compact.DefaultRules(time.UTC)
	}
	if c.RawPrefix == "" {
		c.RawPrefix = "raw/"
	}
	if c.ErrorPrefix == "" {
		c.ErrorPrefix = "raw-errors/format-conversion-failed/"
	}
	if c.Parallel <= 0 {
		c.Parallel = 8
	}
	if c.TargetFileSize <= 0 {
		c.TargetFileSize = 256 << 20
	}
	if c.RowGroupSize <= 0 {
		c.RowGroupSize = 64 << 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.LockTTL <= 0 {
		c.LockTTL = 30 * time.Minute
	}
	if c.Progress == nil {
		c.Progress = func(Progress) {}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return nil
}

// window is the range of arrival hours that can hold rows of day d. A row
// counts at most MaxAhead after its received_at, which is at most
// MaxReceivedAhead after its object's arrival hour; and at most MaxLateness
// before its received_at, which is at most MaxDeliveryDelay before the
// arrival hour. Rows outside these bounds are invalid and count on their
// arrival day (compact.PlausibleReceivedAt), so no row of d is in an object
// outside the window. An hour of slack covers the truncation to hours.
func (c *Config) window(d day.Day) (time.Time, time.Time) {
	return d.Start(c.Rules.Loc).Add(-(compact.MaxReceivedAhead + c.Rules.MaxAhead + time.Hour)),
		d.End(c.Rules.Loc).Add(c.Rules.MaxLateness + compact.MaxDeliveryDelay + time.Hour)
}

// configString is the part of the configuration a partition depends on.
func (c *Config) configMap() map[string]string {
	return map[string]string{
		"time_zone":        c.Rules.Loc.String(),
		"max_lateness":     c.Rules.MaxLateness.String(),
		"max_ahead":        c.Rules.MaxAhead.String(),
		"session_gap":      c.Rules.SessionGap.String(),
		"raw_prefix":       c.RawPrefix,
		"target_file_size": strconv.FormatInt(c.TargetFileSize, 10),
		"row_group_size":   strconv.FormatInt(c.RowGroupSize, 10),
	}
}
