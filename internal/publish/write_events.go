package publish

import (
	"context"
	"fmt"
	"runtime"

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
	colDate        = eventColumn("date")
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
	return eventCol{index: leaf.ColumnIndex}
}

// WriteEvents writes ev, in its order, as the events table into the run
// folder at prefix, column by column from the frame: files
// part-00000.zstd.parquet, part-00001... with rollups.Event's schema.
// Optional columns are null where ev holds "" (or ClientTime 0), and
// properties are null for an event without any (never an empty map); the
// date column is ev.Day in every row, which the caller sets. No
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
//     own total_byte_size of a group (encoded, not compressed) is less
//     (dictionaries, delta lengths), and zstd makes the group several
//     times smaller on disk.
//   - A file ends with the row group that brings it to opt.TargetFileSize
//     bytes as written (compressed), or at the end of ev; with
//     TargetFileSize 0, all of ev is one file.
//
// So the same ev and options always give the same bytes, however the work
// is scheduled.
//
// Row groups are independent, so they are encoded concurrently: up to
// min(GOMAXPROCS, 4) at a time, each by one goroutine into its own
// in-memory single-row-group Parquet file, straight from ev's columns
// (encode_events.go: no parquet.Value, struct or map per event), whose
// column chunks (pages, statistics, page index) are then appended, in
// order and byte for byte, to the file being written: parquet-go's
// Writer.WriteRowGroup copies a file's compressed chunks verbatim when
// their schema, encodings and codec match the writer's. Files are written
// to st one after the other as their row groups arrive. Memory beyond ev
// is about one row group's encoded bytes for each of those goroutines (the
// file being made) and a page's scratch, and, once per call, 8 bytes per
// dictionary string (their byte order, for statistics). A failure (of st,
// of the encoding, or ctx's) stops every goroutine before WriteEvents
// returns, and leaves no object of the file being written; files completed
// before it stay, and belong to no partition until Commit.
func WriteEvents(ctx context.Context, st store.Store, prefix string, ev *frame.Events, opt WriterOptions) ([]File, error) {
	return writeEvents(ctx, st, prefix, ev, opt, min(runtime.GOMAXPROCS(0), maxEventWorkers))
}

// maxEventWorkers bounds the row groups WriteEvents encodes at once (and
// so the memory they take).
const maxEventWorkers = 4

// eventBatch is the grain of row groups: whole batches of this many
// events (see WriteEvents).
const eventBatch = 1024
