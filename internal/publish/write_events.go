package publish

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"slices"
	"unsafe"

	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/frame"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// eventSchema is the events table's Parquet schema: rollups.Event's.
var eventSchema = parquet.SchemaOf(rollups.Event{})

// eventCol is one leaf column of eventSchema.
type eventCol struct {
	index int // column index
	def   int // definition level of a value (0: required)
}

// The events table's columns, by name, resolved once from eventSchema.
var (
	colEventID     = eventColumn("event_id")
	colEventTime   = eventColumn("event_time")
	colClientTime  = eventColumn("client_event_time")
	colReceivedAt  = eventColumn("received_at")
	colPropKey     = eventColumn("properties", "key_value", "key")
	colPropValue   = eventColumn("properties", "key_value", "value")
	colClockSkewed = eventColumn("clock_skewed")
	// colStr maps each frame string column to its events column.
	colStr = [frame.NumColumns]eventCol{
		frame.EventName: eventColumn("event_name"), frame.UserID: eventColumn("user_id"),
		frame.DeviceID: eventColumn("device_id"), frame.SessionID: eventColumn("session_id"),
		frame.Product: eventColumn("product"), frame.Platform: eventColumn("platform"),
		frame.AppVersion: eventColumn("app_version"), frame.Country: eventColumn("country"),
		frame.UserKey: eventColumn("user_key"), frame.SessionKey: eventColumn("session_key"),
	}
)

func eventColumn(path ...string) eventCol {
	leaf, ok := eventSchema.Lookup(path...)
	if !ok {
		panic(fmt.Sprintf("publish: rollups.Event has no column %v", path))
	}
	return eventCol{index: leaf.ColumnIndex, def: leaf.MaxDefinitionLevel}
}

// WriteEvents writes ev, in its order, as the events table into the run
// folder at prefix, column by column from the frame: files
// part-00000.zstd.parquet, part-00001... with rollups.Event's schema.
// Optional columns are null where ev holds "" (or ClientTime 0), and
// properties are null for an event without any (never an empty map). No
// events means no files. ev is only read, so others may read it meanwhile
// (the job computes the rollups from it).
//
// Row groups and files are cut from the data and opt alone:
//   - A row group is whole batches of 1024 events (the last group of ev
//     may end with a shorter batch), ending with the batch that brings the
//     group's uncompressed size to opt.RowGroupSize. The uncompressed size
//     of events is that of their values plain-encoded: 4 bytes and the
//     length of each non-null string (event ids, property keys and values
//     included), 8 for each non-null time, 1 for clock_skewed. Parquet's
//     own total_byte_size of a group (encoded, not compressed) is somewhat
//     less (2/3 to 3/4 on generated days: dictionaries, delta lengths),
//     and zstd makes the group several times smaller on disk (about 1/4).
//   - A file ends with the row group that brings it to opt.TargetFileSize
//     bytes as written (compressed), or at the end of ev; with
//     TargetFileSize 0, all of ev is one file.
//
// So the same ev and options always give the same bytes, however the work
// is scheduled.
//
// Row groups are independent, so they are encoded concurrently: up to
// min(GOMAXPROCS, 4) at a time, each by one goroutine into its own
// in-memory single-row-group Parquet file, whose column chunks (pages,
// statistics, page index) are then appended, in order and byte for byte,
// to the file being written: parquet-go's Writer.WriteRowGroup copies a
// file's compressed chunks verbatim when their schema, encodings and codec
// match the writer's. Files are written to st one after the other as their
// row groups arrive. Memory beyond ev is about two row groups' encoded
// bytes for each of those goroutines (the pages being encoded, the
// finished file) and their column writers' page buffers. A failure (of st,
// of the encoding, or ctx's) stops every goroutine before WriteEvents
// returns, and leaves no object of the file being written; files completed
// before it stay, and belong to no partition until Commit.
//
// Each batch of events goes to each column writer as parquet.Values with
// their repetition and definition levels (ColumnWriter.WriteRowValues):
// no struct or map per event, and not GenericWriter.Write, so the bug
// pqrows works around does not apply.
func WriteEvents(ctx context.Context, st store.Store, prefix string, ev *frame.Events, opt WriterOptions) ([]File, error) {
	return writeEvents(ctx, st, prefix, ev, opt, min(runtime.GOMAXPROCS(0), maxEventWorkers))
}

// maxEventWorkers bounds the row groups WriteEvents encodes at once (and
// so the memory they take).
const maxEventWorkers = 4

// eventBatch is how many events go to the column writers at a time; row
// groups are whole batches.
const eventBatch = 1024

// bytesOf returns s's bytes without copying them: parquet-go only reads
// (and copies) the values it is given.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// eventsWriter writes a frame's events as single-row-group Parquet files,
// one at a time; each goroutine has its own.
type eventsWriter struct {
	ev   *frame.Events
	strs []string // the dictionary's strings
	vals []parquet.Value
	ids  []byte                      // a batch's event ids as text, if packed
	pw   *parquet.GenericWriter[any] // reused from file to file (Reset)
	cols []*parquet.ColumnWriter     // pw's
}

// encode writes events [lo, hi) as the one row group of a new Parquet file
// in buf (reset first), configured by cfg (always the same for a given w),
// and returns that row group as read back from buf. It checks ctx between
// batches.
func (w *eventsWriter) encode(ctx context.Context, lo, hi int, buf *bytes.Buffer, cfg []parquet.WriterOption) (parquet.RowGroup, error) {
	buf.Reset()
	if w.pw == nil {
		w.pw = parquet.NewGenericWriter[any](buf, cfg...)
		w.cols = w.pw.ColumnWriters()
	} else {
		w.pw.Reset(buf)
	}
	pw := w.pw
	for n := lo; n < hi; n += eventBatch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := w.writeBatch(n, min(n+eventBatch, hi)); err != nil {
			return nil, err
		}
	}
	// Close would flush each column's last page first too; flushed, Size
	// is about the size of the pages (an upper bound: it counts the
	// dictionaries uncompressed). The footer and page index are small.
	for _, c := range w.cols {
		if err := c.Flush(); err != nil {
			return nil, err
		}
	}
	buf.Grow(int(pw.Size()) + 64<<10)
	if err := pw.Close(); err != nil {
		return nil, err
	}
	f, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		return nil, err
	}
	if rgs := f.RowGroups(); len(rgs) != 1 || rgs[0].NumRows() != int64(hi-lo) {
		return nil, fmt.Errorf("publish: encoded %d events as %d row groups", hi-lo, len(rgs))
	}
	return f.RowGroups()[0], nil
}

// writeBatch writes events [lo, hi) to every column.
func (w *eventsWriter) writeBatch(lo, hi int) error {
	ev := w.ev
	v := w.vals[:0]
	if ev.UUIDs {
		// As text, in one buffer the values point into (it is not grown
		// while they are made).
		w.ids = slices.Grow(w.ids[:0], ev.IDTextSize(lo, hi))
	}
	for i := lo; i < hi; i++ {
		id := ev.ID(i)
		if ev.UUIDs {
			start := len(w.ids)
			w.ids = ev.AppendIDText(w.ids, i)
			id = w.ids[start:]
		}
		x := parquet.ByteArrayValue(id)
		x.SetColumnIndex(colEventID.index)
		v = append(v, x)
	}
	if err := w.flushValues(colEventID, v); err != nil {
		return err
	}
	if err := w.writeInt64s(colEventTime, ev.EventTime[lo:hi]); err != nil {
		return err
	}
	if err := w.writeInt64s(colClientTime, ev.ClientTime[lo:hi]); err != nil {
		return err
	}
	if err := w.writeInt64s(colReceivedAt, ev.ReceivedAt[lo:hi]); err != nil {
		return err
	}
	for c := range frame.NumColumns {
		if err := w.writeStrings(colStr[c], ev.Str[c][lo:hi]); err != nil {
			return err
		}
	}
	if err := w.writeProps(colPropKey, ev.PropKey, lo, hi); err != nil {
		return err
	}
	if err := w.writeProps(colPropValue, ev.PropVal, lo, hi); err != nil {
		return err
	}
	v = w.vals[:0]
	for _, b := range ev.Skewed[lo:hi] {
		x := parquet.BooleanValue(b)
		x.SetColumnIndex(colClockSkewed.index)
		v = append(v, x)
	}
	return w.flushValues(colClockSkewed, v)
}

// Values are built with Value's setters, which are inlined, rather than
// Value.Level, which is not (a tenth of the time went to calling it). A
// zero Value is null at levels 0.

// flushValues writes whole rows' values v to column c, keeping v's
// buffer for the next column.
func (w *eventsWriter) flushValues(c eventCol, v []parquet.Value) error {
	w.vals = v[:0]
	_, err := w.cols[c.index].WriteRowValues(v)
	return err
}

// writeInt64s writes times to c; in an optional column 0 is null.
func (w *eventsWriter) writeInt64s(c eventCol, ts []int64) error {
	v := w.vals[:0]
	for _, t := range ts {
		var x parquet.Value
		if c.def == 0 || t != 0 {
			x = parquet.Int64Value(t)
			x.SetDefinitionLevel(c.def)
		}
		x.SetColumnIndex(c.index)
		v = append(v, x)
	}
	return w.flushValues(c, v)
}

// writeStrings writes dictionary ids' strings to c; in an optional column
// "" (id 0) is null.
func (w *eventsWriter) writeStrings(c eventCol, ids []uint32) error {
	v := w.vals[:0]
	for _, id := range ids {
		var x parquet.Value
		if c.def == 0 || id != 0 {
			x = parquet.ByteArrayValue(bytesOf(w.strs[id]))
			x.SetDefinitionLevel(c.def)
		}
		x.SetColumnIndex(c.index)
		v = append(v, x)
	}
	return w.flushValues(c, v)
}

// writeProps writes the property keys or values (ids, indexed by PropOff)
// of events [lo, hi) to the map's leaf column c: a null (definition level
// 0) for an event without properties, else one value per property, the
// first of the event at repetition level 0 and the others at 1.
func (w *eventsWriter) writeProps(c eventCol, ids []uint32, lo, hi int) error {
	off := w.ev.PropOff
	v := w.vals[:0]
	for i := lo; i < hi; i++ {
		a, b := off[i], off[i+1]
		if a == b {
			var x parquet.Value
			x.SetColumnIndex(c.index)
			v = append(v, x)
			continue
		}
		for j := a; j < b; j++ {
			x := parquet.ByteArrayValue(bytesOf(w.strs[ids[j]]))
			if j > a {
				x.SetRepetitionLevel(1)
			}
			x.SetDefinitionLevel(c.def)
			x.SetColumnIndex(c.index)
			v = append(v, x)
		}
	}
	return w.flushValues(c, v)
}
