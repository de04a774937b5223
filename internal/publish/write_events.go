package publish

import (
	"context"
	"fmt"
	"io"
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
// part-00000.zstd.parquet, part-00001... with rollups.Event's schema, cut
// as Write cuts them (a row group once parquet-go's estimate of the
// buffered group reaches RowGroupSize, checked every 1024 events; a new
// file once a file reaches TargetFileSize). Optional columns are null
// where ev holds "" (or ClientTime 0), and properties are null for an
// event without any (never an empty map). The same ev and options always
// give the same bytes. No events means no files. ev is only read, so
// others may read it meanwhile (the job computes the rollups from it).
//
// Each batch of events goes to each column writer as parquet.Values with
// their repetition and definition levels (ColumnWriter.WriteRowValues):
// no struct or map per event, and not GenericWriter.Write, so the bug
// pqrows works around does not apply.
func WriteEvents(ctx context.Context, st store.Store, prefix string, ev *frame.Events, opt WriterOptions) ([]File, error) {
	var files []File
	ew := &eventsWriter{ev: ev, strs: ev.Dict.Strings()}
	for start := 0; start < ev.Len(); {
		key := fmt.Sprintf("%spart-%05d.zstd.parquet", prefix, len(files))
		f, n, err := ew.writeFile(ctx, st, key, start, opt)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
		start += n
	}
	return files, nil
}

// bytesOf returns s's bytes without copying them: parquet-go only reads
// (and copies) the values it is given.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// eventsWriter writes a frame's events to files.
type eventsWriter struct {
	ev   *frame.Events
	strs []string // the dictionary's strings
	vals []parquet.Value
	cols []*parquet.ColumnWriter
}

// writeFile writes events from start on to one file and says how many it
// took.
func (w *eventsWriter) writeFile(ctx context.Context, st store.Store, key string, start int, opt WriterOptions) (File, int, error) {
	return writeCut(ctx, st, key, start, w.ev.Len(), opt,
		func(out io.Writer) parquetFile {
			pw := parquet.NewWriter(out, append(writerConfig(opt), eventSchema)...)
			w.cols = pw.ColumnWriters()
			return pw
		},
		w.writeBatch)
}

// writeBatch writes events [lo, hi) to every column.
func (w *eventsWriter) writeBatch(lo, hi int) error {
	ev := w.ev
	v := w.vals[:0]
	for i := lo; i < hi; i++ {
		x := parquet.ByteArrayValue(ev.ID(i))
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
