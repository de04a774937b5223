// Package publish writes curated table partitions so that readers never see
// a half-written, empty or doubled partition (docs/design.md §Publish and commit).
//
// A partition is curated/<table>/dt=<day>/ (or another key, such as
// bucket=<n>/ for the users table). Each build writes its files into a fresh
// run folder, run=<ULID>/, and then, last, the run's manifest
// (_manifest.json in the run folder) with a conditional create. Each
// manifest carries a generation, one more than the run it supersedes, and
// committing generation N of a partition is one conditional create of the
// log entry _commits/<table>/<partition>/<N>.json (commit.go): of two
// writers that built on the same generation exactly one commits, and the
// other learns it lost (CommitLostError). The current run is the one the
// highest entry names, so commit order decides, never the clocks that
// minted run ids. Run folders without a commit are invisible to every
// reader and are debris of an interrupted or lost build; Cleanup removes
// them and the superseded runs.
package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/pqrows"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// ManifestName is the manifest's file name inside a run folder.
const ManifestName = "_manifest.json"

// File is one data file of a run.
type File struct {
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	Rows   int64  `json:"rows"`
	SHA256 string `json:"sha256"`
}

// Input is one raw object a partition was computed from.
type Input struct {
	Key  string `json:"key"`
	ETag string `json:"etag"`
	Size int64  `json:"size"`
}

// WithdrawnFingerprint is the fingerprint of a windowed partition
// published empty because its day was never built: not computed, which a
// reader must not show as a zero.
const WithdrawnFingerprint = "not built"

// Manifest describes one published run of one partition.
type Manifest struct {
	Table       string            `json:"table"`
	Day         string            `json:"dt,omitempty"`
	Partition   string            `json:"partition,omitempty"` // for tables not partitioned by day, e.g. "bucket=07"
	Generation  int64             `json:"generation"`          // 1 for a partition's first commit, then one more each commit
	Parent      int64             `json:"parent,omitempty"`    // the generation the build read before it began (0: none); Commit makes Parent+1
	Run         string            `json:"run"`
	TimeZone    string            `json:"time_zone"`
	CodeVersion string            `json:"code_version"`
	Config      map[string]string `json:"config"`
	Fingerprint string            `json:"fingerprint"`
	Rows        int64             `json:"rows"`
	Files       []File            `json:"files"`
	Inputs      []Input           `json:"inputs"`
	Stats       map[string]int64  `json:"stats,omitempty"`
	// State is a store key under _state/ that belongs to this run (the users
	// table's per-bucket state); it is current exactly when the run is.
	State string `json:"state,omitempty"`
	// Cohorts is, for the users table, each first-seen day's digest of its
	// people in this bucket (rollups.UserDigest summed); windowed partitions
	// record the sum over buckets in their fingerprints.
	Cohorts   map[string]uint64 `json:"cohorts,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
}

// DayPart names day d's partition: "dt=YYYY-MM-DD".
func DayPart(d day.Day) string { return "dt=" + d.String() }

// PartitionPrefix is the folder of day d's partition of table.
func PartitionPrefix(table string, d day.Day) string {
	return PartPrefix(table, DayPart(d))
}

// PartPrefix is the folder of one partition ("dt=2026-11-24", "bucket=07").
func PartPrefix(table, part string) string {
	return "curated/" + table + "/" + part + "/"
}

// RunPrefix is the folder of one run of day d's partition.
func RunPrefix(table string, d day.Day, run string) string {
	return RunPrefixAt(table, DayPart(d), run)
}

// RunPrefixAt is the folder of one run of a partition.
func RunPrefixAt(table, part, run string) string {
	return PartPrefix(table, part) + "run=" + run + "/"
}

// WriterOptions size the files of a run.
type WriterOptions struct {
	TargetFileSize int64  // start a new file once a file reaches this many bytes
	RowGroupSize   int64  // cut a row group at about this many bytes (Write: parquet-go's estimate of the buffered group; WriteEvents: uncompressed, see there)
	CreatedBy      string // application name and version for the Parquet footer
}

// Write writes rows (already in their final order) as zstd Parquet files
// part-00000.zstd.parquet, part-00001... into the run folder, cutting a row
// group when parquet-go's estimate of the buffered group reaches
// RowGroupSize and a new file once a file reaches TargetFileSize. No rows
// means no files. Files are visible under their keys
// only once complete, but belong to no partition until Commit. The events
// table, held as a frame, is written by WriteEvents.
func Write[T any](ctx context.Context, st store.Store, prefix string, rows []T, opt WriterOptions) ([]File, error) {
	var files []File
	for start := 0; start < len(rows); {
		key := fmt.Sprintf("%spart-%05d.zstd.parquet", prefix, len(files))
		f, n, err := writeFile(ctx, st, key, rows[start:], opt)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
		start += n
	}
	return files, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writerConfig is the configuration of every Parquet file written: zstd
// (fastest), opt's CreatedBy, 1 MiB pages, and row groups cut by the
// caller.
func writerConfig(opt WriterOptions) []parquet.WriterOption {
	return []parquet.WriterOption{
		parquet.Compression(codec),
		parquet.CreatedBy(opt.CreatedBy, "", ""),
		parquet.PageBufferSize(1 << 20),
		parquet.MaxRowsPerRowGroup(1 << 40),
	}
}

// writeFile writes a prefix of rows to one file and says how many it took.
func writeFile[T any](ctx context.Context, st store.Store, key string, rows []T, opt WriterOptions) (File, int, error) {
	var pw *parquet.GenericWriter[T]
	return writeCut(ctx, st, key, 0, len(rows), opt,
		func(w io.Writer) parquetFile {
			pw = parquet.NewGenericWriter[T](w, writerConfig(opt)...)
			return pw
		},
		func(lo, hi int) error { return pqrows.Write(pw, rows[lo:hi]) })
}

// parquetFile is what writeCut needs of a parquet-go writer.
type parquetFile interface {
	Size() int64
	Flush() error
	Close() error
}

// writeCut writes rows [start, total) to one new file at key through the
// writer open makes, a batch at a time (write(lo, hi)), cutting a row
// group once the writer's estimate of the buffered group reaches
// opt.RowGroupSize (checked every 1024 rows) and ending the file after the
// row group that brings it to opt.TargetFileSize. It says how many rows it
// took. A failure leaves no file behind.
func writeCut(ctx context.Context, st store.Store, key string, start, total int, opt WriterOptions,
	open func(io.Writer) parquetFile, write func(lo, hi int) error) (File, int, error) {
	w, err := st.NewWriter(ctx, key)
	if err != nil {
		return File{}, 0, err
	}
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(w, h)}
	pw := open(cw)
	fail := func(err error) (File, int, error) {
		w.Abort()
		return File{}, 0, fmt.Errorf("write %s: %w", key, err)
	}
	const batch = 1024
	n, flushed := start, int64(0)
	for n < total {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		end := min(n+batch, total)
		if err := write(n, end); err != nil {
			return fail(err)
		}
		n = end
		if pw.Size()-flushed >= opt.RowGroupSize {
			if err := pw.Flush(); err != nil {
				return fail(err)
			}
			flushed = pw.Size()
			if opt.TargetFileSize > 0 && flushed >= opt.TargetFileSize {
				break
			}
		}
	}
	if err := pw.Close(); err != nil {
		return fail(err)
	}
	if err := w.Close(); err != nil {
		return File{}, 0, fmt.Errorf("write %s: %w", key, err)
	}
	return File{Key: key, Size: cw.n, Rows: int64(n - start), SHA256: hex.EncodeToString(h.Sum(nil))}, n - start, nil
}

// partKey is the partition folder a manifest belongs to.
func (m *Manifest) partKey() (string, error) {
	if m.Partition != "" {
		return m.Partition, nil
	}
	d, err := day.Parse(m.Day)
	if err != nil {
		return "", err
	}
	return DayPart(d), nil
}

// runs lists the objects of a partition's run folders, grouped by run, and
// which runs have a manifest.
func runs(ctx context.Context, st store.Store, table, part string) (all []string, committed map[string]bool, objs []store.Object, err error) {
	prefix := PartPrefix(table, part)
	if tl, ok := st.(store.TempLister); ok {
		objs, err = tl.ListWithTemp(ctx, prefix+"run=")
	} else {
		objs, err = st.List(ctx, prefix+"run=")
	}
	if err != nil {
		return nil, nil, nil, err
	}
	committed = map[string]bool{}
	seen := map[string]bool{}
	for _, o := range objs {
		rest := strings.TrimPrefix(o.Key, prefix+"run=")
		run, file, ok := strings.Cut(rest, "/")
		if !ok {
			continue
		}
		if !seen[run] {
			seen[run] = true
			all = append(all, run)
		}
		if file == ManifestName {
			committed[run] = true
		}
	}
	sort.Strings(all)
	return all, committed, objs, nil
}

// ReadManifest reads the manifest of one run of a partition.
func ReadManifest(ctx context.Context, st store.Store, table, part, run string) (*Manifest, error) {
	return readManifestAt(ctx, st, RunPrefixAt(table, part, run)+ManifestName)
}

// readManifestAt reads the manifest stored at key.
func readManifestAt(ctx context.Context, st store.Store, key string) (*Manifest, error) {
	b, err := st.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return &m, nil
}

// Cleanup deletes the runs of day d's partition of table that keep
// supersedes; see CleanupAt.
func Cleanup(ctx context.Context, st store.Store, table string, d day.Day, keep string, olderThan time.Duration, now time.Time) error {
	return CleanupAt(ctx, st, table, DayPart(d), keep, olderThan, now)
}
