// Package publish writes curated table partitions so that readers never see
// a half-written, empty or doubled partition (DESIGN §5.4).
//
// A partition is curated/<table>/dt=<day>/. Each build writes its files into
// a fresh run folder, run=<ULID>/, and then, last, the run's manifest
// (_manifest.json in the run folder) with a conditional create. The current
// run of a partition is the newest run that has a manifest; run folders
// without one are debris of an interrupted build. After a manifest is
// written, Cleanup removes every other run of that partition.
package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/pqrows"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
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

// Manifest describes one published run of one partition.
type Manifest struct {
	Table       string            `json:"table"`
	Day         string            `json:"dt"`
	Run         string            `json:"run"`
	TimeZone    string            `json:"time_zone"`
	CodeVersion string            `json:"code_version"`
	Config      map[string]string `json:"config"`
	Fingerprint string            `json:"fingerprint"`
	Rows        int64             `json:"rows"`
	Files       []File            `json:"files"`
	Inputs      []Input           `json:"inputs"`
	Stats       map[string]int64  `json:"stats,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
}

// PartitionPrefix is the folder of one partition.
func PartitionPrefix(table string, d day.Day) string {
	return fmt.Sprintf("curated/%s/dt=%s/", table, d)
}

// RunPrefix is the folder of one run of a partition.
func RunPrefix(table string, d day.Day, run string) string {
	return PartitionPrefix(table, d) + "run=" + run + "/"
}

// WriterOptions size the files of a run.
type WriterOptions struct {
	TargetFileSize int64  // start a new file once a file reaches this many bytes
	RowGroupSize   int64  // cut a row group at about this many (uncompressed) bytes
	CreatedBy      string // application name and version for the Parquet footer
}

// Write writes rows (already in their final order) as zstd Parquet files
// part-00000.zstd.parquet, part-00001... into the run folder, cutting a row
// group when parquet-go's estimate of the buffered group reaches
// RowGroupSize and a new file once a file reaches TargetFileSize. No rows
// means no files. Files are visible under their keys
// only once complete, but belong to no partition until Commit.
func Write[T any](ctx context.Context, st store.Store, prefix string, rows []T, opt WriterOptions) ([]File, error) {
	if ev, ok := any(rows).([]rollups.Event); ok {
		return write(ctx, st, prefix, ev, toEventRows, opt)
	}
	return write(ctx, st, prefix, rows, func(_ []T, src []T) []T { return src }, opt)
}

// write writes rows converted by conv (which may reuse dst) to type W.
func write[T, W any](ctx context.Context, st store.Store, prefix string, rows []T, conv func(dst []W, src []T) []W, opt WriterOptions) ([]File, error) {
	var files []File
	for start := 0; start < len(rows); {
		key := fmt.Sprintf("%spart-%05d.zstd.parquet", prefix, len(files))
		f, n, err := writeFile(ctx, st, key, rows[start:], conv, opt)
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

// writeFile writes a prefix of rows to one file and says how many it took.
func writeFile[T, W any](ctx context.Context, st store.Store, key string, rows []T, conv func(dst []W, src []T) []W, opt WriterOptions) (File, int, error) {
	w, err := st.NewWriter(ctx, key)
	if err != nil {
		return File{}, 0, err
	}
	h := sha256.New()
	cw := &countingWriter{w: io.MultiWriter(w, h)}
	pw := parquet.NewGenericWriter[W](cw,
		parquet.Compression(&zstd.Codec{Level: zstd.SpeedFastest}),
		parquet.CreatedBy(opt.CreatedBy, "", ""),
		parquet.PageBufferSize(1<<20),
		parquet.MaxRowsPerRowGroup(1<<40),
	)
	fail := func(err error) (File, int, error) {
		w.Abort()
		return File{}, 0, fmt.Errorf("write %s: %w", key, err)
	}
	n, flushed := 0, int64(0)
	const batch = 1024
	var buf []W
	for n < len(rows) {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		end := min(n+batch, len(rows))
		buf = conv(buf[:0], rows[n:end])
		if err := pqrows.Write(pw, buf); err != nil {
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
	return File{Key: key, Size: cw.n, Rows: int64(n), SHA256: hex.EncodeToString(h.Sum(nil))}, n, nil
}

// Commit makes m's run the current run of its partition by creating its
// manifest. It fails with store.ErrExists if that run was committed before.
func Commit(ctx context.Context, st store.Store, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	d, err := day.Parse(m.Day)
	if err != nil {
		return err
	}
	key := RunPrefix(m.Table, d, m.Run) + ManifestName
	if err := st.Create(ctx, key, append(b, '\n')); err != nil {
		return fmt.Errorf("commit %s: %w", key, err)
	}
	return nil
}

// runs lists the run ids under a partition (sorted), and which have a manifest.
func runs(ctx context.Context, st store.Store, table string, d day.Day) (all []string, committed map[string]bool, objs []store.Object, err error) {
	prefix := PartitionPrefix(table, d)
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

// Current returns the manifest of the current run of a partition, or
// store.ErrNotExist if it was never published.
func Current(ctx context.Context, st store.Store, table string, d day.Day) (*Manifest, error) {
	all, committed, _, err := runs(ctx, st, table, d)
	if err != nil {
		return nil, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if !committed[all[i]] {
			continue
		}
		key := RunPrefix(table, d, all[i]) + ManifestName
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
	return nil, fmt.Errorf("%s%s: %w", PartitionPrefix(table, d), ManifestName, store.ErrNotExist)
}

// Cleanup deletes the runs of the partition older than keep (run ids sort
// by time), data files first and manifests last, so an interrupted cleanup
// never leaves a manifest whose files are gone. Runs newer than keep are
// another writer's and are never touched. The caller holds the partition's
// lease, so older runs without a manifest are debris of killed writers.
// With olderThan > 0, only runs whose objects are all older than that are
// deleted (a grace period for readers that listed the old run).
func Cleanup(ctx context.Context, st store.Store, table string, d day.Day, keep string, olderThan time.Duration, now time.Time) error {
	_, _, objs, err := runs(ctx, st, table, d)
	if err != nil {
		return err
	}
	prefix := PartitionPrefix(table, d) + "run="
	young := map[string]bool{}
	var data, manifests []string
	for _, o := range objs {
		run, file, _ := strings.Cut(strings.TrimPrefix(o.Key, prefix), "/")
		if run >= keep {
			continue
		}
		if olderThan > 0 && now.Sub(o.ModTime) < olderThan {
			young[run] = true
		}
		if file == ManifestName {
			manifests = append(manifests, o.Key)
		} else {
			data = append(data, o.Key)
		}
	}
	var errs []error
	for _, list := range [][]string{data, manifests} {
		for _, key := range list {
			run, _, _ := strings.Cut(strings.TrimPrefix(key, prefix), "/")
			if young[run] {
				continue
			}
			if err := st.Delete(ctx, key); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
