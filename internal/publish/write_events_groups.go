package publish

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/bufpool"
	"github.com/littlewarehouse/warehouse/internal/frame"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// groupCutter cuts a frame into row groups (see WriteEvents).
type groupCutter struct {
	ev   *frame.Events
	strs frame.Strs
	size int64 // opt.RowGroupSize
	next int   // the first event not in a group yet
}

// done reports whether every event is in a group.
func (c *groupCutter) done() bool { return c.next >= c.ev.Len() }

// cut returns the next row group, [lo, hi).
func (c *groupCutter) cut() (lo, hi int) {
	lo, hi = c.next, c.next
	for n := int64(0); hi < c.ev.Len() && (hi == lo || n < c.size); {
		end := min(hi+eventBatch, c.ev.Len())
		n += c.plainSize(hi, end)
		hi = end
	}
	c.next = hi
	return lo, hi
}

// plainSize is the uncompressed size of events [lo, hi): their values
// plain-encoded (see WriteEvents).
func (c *groupCutter) plainSize(lo, hi int) int64 {
	ev, strs := c.ev, c.strs
	n := int64(ev.IDTextSize(lo, hi)) + int64(hi-lo)*(4+8+8+1) // ids, event_time, received_at, clock_skewed
	for _, t := range ev.ClientTime[lo:hi] {
		if t != 0 {
			n += 8
		}
	}
	addStrings := func(ids []uint32) {
		for _, id := range ids {
			if id != 0 {
				n += 4 + int64(strs.Size(id))
			}
		}
	}
	for col := range frame.NumColumns {
		addStrings(ev.Str[col][lo:hi])
	}
	addStrings(ev.PropKey[ev.PropOff[lo]:ev.PropOff[hi]])
	addStrings(ev.PropVal[ev.PropOff[lo]:ev.PropOff[hi]])
	return n
}

// groupJob is one row group being encoded: events [lo, hi) into a
// single-row-group Parquet file in g's buffer.
type groupJob struct {
	lo, hi int
	g      *groupEncoder // the encoding goroutine's; reused once the job is committed
	done   chan struct{} // closed once rg or err is set
	rg     parquet.RowGroup
	err    error
}

// encode encodes j's row group and opens it as rg.
func (j *groupJob) encode(ctx context.Context) (parquet.RowGroup, error) {
	b, err := j.g.encodeGroup(ctx, j.lo, j.hi)
	if err != nil {
		return nil, err
	}
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	if rgs := f.RowGroups(); len(rgs) != 1 || rgs[0].NumRows() != int64(j.hi-j.lo) {
		return nil, fmt.Errorf("publish: encoded %d events as %d row groups", j.hi-j.lo, len(rgs))
	}
	return f.RowGroups()[0], nil
}

// writeEvents is WriteEvents with at most workers row groups encoded (or
// encoded and waiting to be written) at once.
func writeEvents(ctx context.Context, st store.Store, prefix string, ev *frame.Events, opt WriterOptions, workers int) ([]File, error) {
	workers = max(workers, 1)
	// One configuration, so one zstd codec (a pool of encoders) for every
	// writer of this call.
	cfg := append(writerConfig(opt), eventSchema)
	encCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	t, err := rowGroupTemplate()
	if err != nil {
		return nil, err
	}
	cut := groupCutter{ev: ev, strs: ev.Dict.Strings(), size: opt.RowGroupSize}
	var rank []uint32
	if ev.Len() > 0 {
		rank = ev.Dict.Ranks()
	}
	out := eventsOut{st: st, prefix: prefix, cfg: cfg, target: opt.TargetFileSize}
	var queue, free []*groupJob
	defer func() {
		// Jobs in free are committed; those still encoding are in queue.
		for _, j := range free {
			groupBufs.Put(j.g.out)
		}
	}()
	for {
		for len(queue) < workers && !cut.done() {
			var j *groupJob
			if n := len(free); n > 0 {
				j, free = free[n-1], free[:n-1]
			} else {
				j = &groupJob{g: newGroupEncoder(ev, cut.strs, rank, t)}
				j.g.out, _ = groupBufs.Get()
			}
			j.lo, j.hi = cut.cut()
			j.done = make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer close(j.done)
				j.rg, j.err = j.encode(encCtx)
			}()
			queue = append(queue, j)
		}
		if len(queue) == 0 {
			break
		}
		j := queue[0]
		queue = append(queue[:0], queue[1:]...)
		<-j.done
		err := j.err
		if err == nil {
			err = ctx.Err()
		}
		if err == nil {
			err = out.write(ctx, j.rg)
		}
		if err != nil {
			return nil, out.fail(err)
		}
		j.rg = nil
		free = append(free, j)
	}
	if err := out.close(); err != nil {
		return nil, out.fail(err)
	}
	return out.files, nil
}

// groupBufs are the buffers of row groups encoded by earlier calls (a
// backfill writes a day after another).
var groupBufs = bufpool.New[[]byte](maxEventWorkers)

// eventsOut writes encoded row groups, in order, to files.
type eventsOut struct {
	st     store.Store
	prefix string
	cfg    []parquet.WriterOption
	target int64 // opt.TargetFileSize
	files  []File

	// The file being written, if w is not nil.
	w    store.Writer
	h    hash.Hash
	cw   *countingWriter
	pw   *parquet.GenericWriter[any]
	rows int64
}

// key is the key of the file being written, or else of the next one.
func (o *eventsOut) key() string {
	return fmt.Sprintf("%spart-%05d.zstd.parquet", o.prefix, len(o.files))
}

// write appends rg to the current file (a new one if none), then ends the
// file if it reached the target size.
func (o *eventsOut) write(ctx context.Context, rg parquet.RowGroup) error {
	if o.w == nil {
		w, err := o.st.NewWriter(ctx, o.key())
		if err != nil {
			return err
		}
		o.w, o.h, o.rows = w, sha256.New(), 0
		o.cw = &countingWriter{w: io.MultiWriter(w, o.h)}
		o.pw = parquet.NewGenericWriter[any](o.cw, o.cfg...)
	}
	n, err := o.pw.WriteRowGroup(rg)
	if err != nil {
		return err
	}
	o.rows += n
	if o.target > 0 && o.pw.Size() >= o.target {
		return o.close()
	}
	return nil
}

// close ends the current file, if any.
func (o *eventsOut) close() error {
	if o.w == nil {
		return nil
	}
	if err := o.pw.Close(); err != nil {
		return err
	}
	w := o.w
	o.w, o.pw = nil, nil
	if err := w.Close(); err != nil { // a failed Close leaves nothing behind
		return err
	}
	o.files = append(o.files, File{Key: o.key(), Size: o.cw.n, Rows: o.rows, SHA256: hex.EncodeToString(o.h.Sum(nil))})
	return nil
}

// fail aborts the current file, if any, and returns err naming the file
// it was for.
func (o *eventsOut) fail(err error) error {
	if o.w != nil {
		o.w.Abort()
		o.w, o.pw = nil, nil
	}
	return fmt.Errorf("write %s: %w", o.key(), err)
}
