package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Measure is one child process run.
type Measure struct {
	WallSeconds float64 `json:"wall_seconds"` // start to exit, seen by the parent
	MaxRSSKiB   int64   `json:"max_rss_kib"`  // ru_maxrss: peak resident set size
	UserSeconds float64 `json:"user_seconds"` // CPU time
	SysSeconds  float64 `json:"sys_seconds"`
}

// Side is one engine's runs on a data set and the best of them.
type Side struct {
	Runs []Measure `json:"runs"`
	// Best is the lowest wall and the lowest peak RSS over the runs (each
	// on its own, so they may come from different runs); CPU seconds are
	// those of the fastest run.
	Best Measure `json:"best"`
}

func (s *Side) finish() {
	if len(s.Runs) == 0 {
		return
	}
	s.Best = s.Runs[0]
	for _, m := range s.Runs[1:] {
		if m.WallSeconds < s.Best.WallSeconds {
			s.Best.WallSeconds, s.Best.UserSeconds, s.Best.SysSeconds = m.WallSeconds, m.UserSeconds, m.SysSeconds
		}
		s.Best.MaxRSSKiB = min(s.Best.MaxRSSKiB, m.MaxRSSKiB)
	}
}

// DataSetResult is the benchmark of one data set.
type DataSetResult struct {
	Name           string `json:"name"`
	From           string `json:"from"` // reporting days run (UTC)
	To             string `json:"to"`
	EventsPerDay   int    `json:"events_per_day"`
	ObjectsPerHour int    `json:"objects_per_hour"`
	Seed           int64  `json:"seed"`
	Nasty          bool   `json:"nasty"`
	RawObjects     int    `json:"raw_objects"`
	RawBytes       int64  `json:"raw_bytes"`

	Ours   Side `json:"ours"`
	DuckDB Side `json:"duckdb"`

	OursEvents   int64 `json:"ours_events_rows"`   // rows of our events for the days (manifests)
	DuckDBEvents int64 `json:"duckdb_events_rows"` // rows of DuckDB's events.parquet
	RowsMatch    bool  `json:"rows_match"`
	// DuckDBResult is duckbench's own report of its last run: version,
	// threads, seconds and rows of each step.
	DuckDBResult json.RawMessage `json:"duckdb_result,omitempty"`

	// Ratios ours/DuckDB of the best runs; 0 if DuckDB's figure is 0.
	WallRatio float64 `json:"wall_ratio"`
	RSSRatio  float64 `json:"rss_ratio"`
	// PairedWallRatios are ours/DuckDB of each run, the two sides run back
	// to back (so at one speed of a shared machine, which the best of
	// each side need not be), and their median.
	PairedWallRatios      []float64 `json:"paired_wall_ratios,omitempty"`
	MedianPairedWallRatio float64   `json:"median_paired_wall_ratio,omitempty"`
	// OursEventsPerSecond is our events rows over our best wall time.
	OursEventsPerSecond float64 `json:"ours_events_per_second"`

	// For a data set of several days: ours building one of its days alone
	// (OneDay, the middle one) from a store holding only the raw data, and
	// the peak RSS of the whole range over that day's (docs/design.md §Routing and segments: memory
	// is bounded by the day being worked on, not by the range).
	OneDay *Side `json:"one_day,omitempty"`
	// OursFunnels are ours with funnels defined (--funnels), each run
	// right after the one without; FunnelsWallRatios their walls over
	// those runs', and the median (the target is at most 1.10).
	OursFunnels            *Side     `json:"ours_funnels,omitempty"`
	FunnelsWallRatios      []float64 `json:"funnels_wall_ratios,omitempty"`
	MedianFunnelsWallRatio float64   `json:"median_funnels_wall_ratio,omitempty"`
	OneDayName             string    `json:"one_day_name,omitempty"`
	RangeRSSOverDay        float64   `json:"range_rss_over_one_day,omitempty"`
}

func (r *DataSetResult) finish() {
	r.Ours.finish()
	r.DuckDB.finish()
	r.RowsMatch = r.OursEvents == r.DuckDBEvents
	r.WallRatio = ratio(r.Ours.Best.WallSeconds, r.DuckDB.Best.WallSeconds)
	r.RSSRatio = ratio(float64(r.Ours.Best.MaxRSSKiB), float64(r.DuckDB.Best.MaxRSSKiB))
	r.OursEventsPerSecond = ratio(float64(r.OursEvents), r.Ours.Best.WallSeconds)
	r.PairedWallRatios = nil
	for i := range min(len(r.Ours.Runs), len(r.DuckDB.Runs)) {
		r.PairedWallRatios = append(r.PairedWallRatios, ratio(r.Ours.Runs[i].WallSeconds, r.DuckDB.Runs[i].WallSeconds))
	}
	r.MedianPairedWallRatio = median(r.PairedWallRatios)
	if f := r.OursFunnels; f != nil {
		f.finish()
		r.FunnelsWallRatios = nil
		for i := range min(len(r.Ours.Runs), len(f.Runs)) {
			r.FunnelsWallRatios = append(r.FunnelsWallRatios, ratio(f.Runs[i].WallSeconds, r.Ours.Runs[i].WallSeconds))
		}
		r.MedianFunnelsWallRatio = median(r.FunnelsWallRatios)
	}
	if r.OneDay != nil {
		r.OneDay.finish()
		r.RangeRSSOverDay = ratio(float64(r.Ours.Best.MaxRSSKiB), float64(r.OneDay.Best.MaxRSSKiB))
	}
}

// Report is the whole benchmark, as written to results.json.
type Report struct {
	StartedAt time.Time       `json:"started_at"`
	Command   string          `json:"command"`
	Go        string          `json:"go"`
	OSArch    string          `json:"os_arch"`
	Cores     int             `json:"cores"` // runtime.NumCPU
	Runs      int             `json:"runs"`
	Nasty     bool            `json:"nasty"`
	DataSets  []DataSetResult `json:"data_sets"`
}

// Targets are issue 11's goals: for the one-day run, ours/DuckDB; for a
// backfill, its peak RSS over the peak of one of its days built alone.
const (
	TargetWallRatio    = 0.20
	TargetRSSRatio     = 0.25
	TargetRangeOverDay = 1.5
	// TargetFunnels is issue 28's: a day with two funnels defined takes
	// at most this times its time without them.
	TargetFunnels = 1.10
)

// median is the middle of xs (the mean of the two middle ones for an even
// count), or 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ratio is a/b, or 0 when b is not positive.
func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// FormatTable prints the report as an aligned table with a header line.
func FormatTable(w io.Writer, r Report) error {
	fmt.Fprintf(w, "cores: %d (runtime.NumCPU), %s, %s, best of %d run(s)", r.Cores, r.Go, r.OSArch, r.Runs)
	if r.Nasty {
		fmt.Fprint(w, ", nasty data")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "data set\tevents\tours wall s\tours RSS\tDuckDB wall s\tDuckDB RSS\twall ours/DuckDB\tRSS ours/DuckDB\tours events/s\t")
	for _, d := range r.DataSets {
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%s\t%.2f\t%s\t%s\t%s\t%s\t\n",
			d.Name, group(d.OursEvents),
			d.Ours.Best.WallSeconds, mib(d.Ours.Best.MaxRSSKiB),
			d.DuckDB.Best.WallSeconds, mib(d.DuckDB.Best.MaxRSSKiB),
			times(d.WallRatio), times(d.RSSRatio), group(int64(d.OursEventsPerSecond+0.5)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "wall: child process start to exit; RSS: the child's peak (ru_maxrss); target for 1day: wall ≤ %.2f×, RSS ≤ %.2f× DuckDB\n",
		TargetWallRatio, TargetRSSRatio)
	for _, d := range r.DataSets {
		if len(d.PairedWallRatios) < 2 {
			continue
		}
		var each []string
		for _, x := range d.PairedWallRatios {
			each = append(each, fmt.Sprintf("%.3f×", x))
		}
		fmt.Fprintf(w, "%s: wall ours/DuckDB run by run (the two back to back): %s; median %.3f×\n",
			d.Name, strings.Join(each, ", "), d.MedianPairedWallRatio)
	}
	for _, d := range r.DataSets {
		if d.OneDay == nil {
			continue
		}
		fmt.Fprintf(w, "%s: peak RSS of the whole range %s, of one of its days (%s) built alone %s: %s (target ≤ %.2f×)\n",
			d.Name, mib(d.Ours.Best.MaxRSSKiB), d.OneDayName, mib(d.OneDay.Best.MaxRSSKiB), times(d.RangeRSSOverDay), TargetRangeOverDay)
	}
	for _, d := range r.DataSets {
		if d.OursFunnels == nil {
			continue
		}
		var each []string
		for _, x := range d.FunnelsWallRatios {
			each = append(each, fmt.Sprintf("%.3f×", x))
		}
		fmt.Fprintf(w, "%s: ours with the funnels over without, run by run: %s; median %.3f× (target ≤ %.2f×); peak RSS %s with, %s without\n",
			d.Name, strings.Join(each, ", "), d.MedianFunnelsWallRatio, TargetFunnels, mib(d.OursFunnels.Best.MaxRSSKiB), mib(d.Ours.Best.MaxRSSKiB))
	}
	for _, d := range r.DataSets {
		if !d.RowsMatch {
			fmt.Fprintf(w, "WARNING: %s: our events have %s rows, DuckDB's %s\n", d.Name, group(d.OursEvents), group(d.DuckDBEvents))
		}
	}
	return nil
}

// times formats a ratio like 3.74×, or "-" when there is none.
func times(x float64) string {
	if x <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", x)
}

// mib formats KiB as MiB.
func mib(kib int64) string {
	return group((kib+512)/1024) + " MiB"
}

// group writes n with commas between thousands: 5,000,000.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
