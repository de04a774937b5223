package firehose

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// Defaults of LocalConfig, those of a Firehose stream with format conversion.
const (
	DefaultBufferSize     = 128 << 20
	DefaultBufferInterval = 900 * time.Second
	DefaultStream         = "events"
)

// ErrClosed is returned by Local.Put after Close.
var ErrClosed = errors.New("delivery stream closed")

// ErrFull is returned (wrapped) by Local.Put when the stream held as much
// unwritten data as it may until the caller's context ended (writes fail,
// or fall behind); the caller retries later.
var ErrFull = errors.New("delivery stream buffer full")

// LocalConfig configures a Local delivery stream.
type LocalConfig struct {
	// Store receives the objects.
	Store store.Store
	// Stream names the stream in object names (default "events"); Firehose's
	// rule applies: 1 to 64 of [A-Za-z0-9_.-].
	Stream string
	// Prefix and ErrorPrefix start the keys of data and of failed records
	// (defaults "raw/" and "raw-errors/").
	Prefix, ErrorPrefix string
	// BufferSize and BufferInterval are Firehose's buffering hints: the
	// buffer is written once it holds BufferSize bytes of records or its
	// oldest record has waited BufferInterval (defaults 128 MiB, 900 s).
	BufferSize     int64
	BufferInterval time.Duration
	// MaxBuffered bounds the bytes held unwritten (buffered, or being
	// written); beyond it Put waits for room (default 2 × BufferSize).
	MaxBuffered int64
	// RetryInterval is the wait between attempts to write a buffer after a
	// failed one (default 5 s).
	RetryInterval time.Duration
	// Now is the clock that stamps arrival times (default time.Now).
	Now func() time.Time
	// Logger receives counts and keys, never record contents.
	Logger *slog.Logger
}

var streamName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// record is one record held by Local with its arrival time.
type record struct {
	data    []byte
	arrival time.Time
}

// batch is a buffer taken for writing. Its keys are chosen once, and the
// steps it has completed are remembered, so a retry after a failure writes
// the same objects again and never doubles one.
type batch struct {
	records          []record
	bytes            int64
	rows             []event.Raw
	failed           []failedRecord
	converted        bool
	rawKey, errKey   string
	rawDone, errDone bool
}

type failedRecord struct {
	record
	err *ConversionError
}

// Local is a delivery stream that does locally what Firehose does with
// record format conversion to Parquet: it buffers records by size and
// interval, converts them with Convert, writes the rows as Snappy Parquet of
// event.Raw to
//
//	<Prefix>YYYY/MM/DD/HH/<Stream>-1-YYYY-MM-DD-HH-MM-SS-<uuid>
//
// named by the UTC arrival time of the oldest record in the object, and
// writes the records that fail conversion as JSON lines to
//
//	<ErrorPrefix>format-conversion-failed/YYYY/MM/DD/HH/<Stream>-1-…
//
// A buffer whose write fails stays whole and is written again (same keys)
// after RetryInterval; Close writes whatever is buffered. Unlike Firehose,
// the buffer lives in memory: a process killed without Close loses it.
type Local struct {
	cfg       LocalConfig
	createdBy parquet.WriterOption

	mu       sync.Mutex
	buf      []record
	bufBytes int64
	oldest   time.Time     // wall time the oldest buffered record arrived, for the interval
	pending  *batch        // taken for writing and not yet written
	retryAt  time.Time     // after a failed write: when to try again
	room     chan struct{} // closed (and replaced) when a write frees room
	closed   bool

	flushMu sync.Mutex // one write at a time
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

// NewLocal starts a Local delivery stream; Close stops it.
func NewLocal(cfg LocalConfig) (*Local, error) {
	if cfg.Store == nil {
		return nil, errors.New("local stream: no store")
	}
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if !streamName.MatchString(cfg.Stream) {
		return nil, fmt.Errorf("local stream: name %q: want 1 to 64 of A-Z a-z 0-9 _ . -", cfg.Stream)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "raw/"
	}
	if cfg.ErrorPrefix == "" {
		cfg.ErrorPrefix = "raw-errors/"
	}
	for _, p := range []*string{&cfg.Prefix, &cfg.ErrorPrefix} {
		if !strings.HasSuffix(*p, "/") {
			*p += "/"
		}
	}
	if cfg.BufferSize <= 0 {
		cfg.BufferSize = DefaultBufferSize
	}
	if cfg.BufferInterval <= 0 {
		cfg.BufferInterval = DefaultBufferInterval
	}
	if cfg.MaxBuffered <= 0 {
		cfg.MaxBuffered = 2 * cfg.BufferSize
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l := &Local{
		cfg:       cfg,
		createdBy: createdBy(),
		kick:      make(chan struct{}, 1),
		room:      make(chan struct{}),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	go l.loop()
	return l, nil
}

// createdBy names this program and its version in the Parquet footer.
func createdBy() parquet.WriterOption {
	version, build := "devel", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			version = v
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				build = s.Value
			}
		}
	}
	return parquet.CreatedBy("littlewarehouse collector", version, build)
}

// Put buffers records; it returns nil once they are in the buffer, and from
// then on they are written by the stream (the caller must not change them).
// While the stream holds MaxBuffered bytes unwritten, Put waits for a write
// to free room. It refuses the whole call, buffering nothing, with ErrClosed
// after Close, with ErrFull if ctx ends while waiting for room, or with
// ErrRecordTooLarge for a record Firehose would refuse.
func (l *Local) Put(ctx context.Context, records [][]byte) error {
	for i, r := range records {
		if len(r) > MaxRecordBytes || len(r) == 0 {
			return fmt.Errorf("put on %s: record %d has %d bytes (want 1 to %d): %w", l.cfg.Stream, i, len(r), MaxRecordBytes, ErrRecordTooLarge)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if l.closed {
			return ErrClosed
		}
		held := l.bufBytes + l.pendingBytes()
		if held < l.cfg.MaxBuffered {
			break
		}
		room := l.room
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			l.mu.Lock()
			return fmt.Errorf("put on %s: %d bytes unwritten: %w", l.cfg.Stream, held, ErrFull)
		case <-room:
		}
		l.mu.Lock()
	}
	arrival := l.cfg.Now().UTC()
	wasEmpty := len(l.buf) == 0
	for _, r := range records {
		l.buf = append(l.buf, record{data: r, arrival: arrival})
		l.bufBytes += int64(len(r))
	}
	if wasEmpty && len(l.buf) > 0 {
		l.oldest = time.Now()
	}
	if wasEmpty || l.bufBytes >= l.cfg.BufferSize {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

func (l *Local) pendingBytes() int64 {
	if l.pending == nil {
		return 0
	}
	return l.pending.bytes
}

// Buffered returns the number of records not yet written.
func (l *Local) Buffered() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.buf)
	if l.pending != nil {
		n += len(l.pending.records)
	}
	return n
}

// loop writes the buffer whenever a buffering hint is met, and retries a
// failed write every RetryInterval, until Close.
func (l *Local) loop() {
	defer close(l.done)
	for {
		wait := l.untilDue()
		t := time.NewTimer(wait)
		select {
		case <-l.stop:
			t.Stop()
			return
		case <-l.kick:
			t.Stop()
			continue
		case <-t.C:
		}
		if err := l.flushIfDue(); err != nil {
			l.cfg.Logger.Error("local stream write failed; keeping the buffer to retry",
				"stream", l.cfg.Stream, "records", l.Buffered(), "retry_in", l.cfg.RetryInterval.String(), "err", err)
		}
	}
}

// flushIfDue writes the buffer if a hint is met or a retry is due. It checks
// under flushMu, so it sees the outcome of a Flush that was in progress and
// does not retry a failed write before RetryInterval.
func (l *Local) flushIfDue() error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	if l.untilDue() > 0 {
		return nil
	}
	return l.flushLocked(context.Background())
}

// untilDue returns how long until the buffer must be written: zero when a
// hint is met, the rest of RetryInterval after a failure, an hour when empty
// (Put kicks the loop when data arrives).
func (l *Local) untilDue() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case !l.retryAt.IsZero():
		return max(0, time.Until(l.retryAt))
	case l.pending != nil:
		return 0
	case len(l.buf) == 0:
		return time.Hour
	case l.bufBytes >= l.cfg.BufferSize:
		return 0
	}
	return max(0, time.Until(l.oldest.Add(l.cfg.BufferInterval)))
}

// Flush writes everything buffered now, whatever the hints: first a batch
// left by a failed write, then the current buffer. On error, nothing is
// lost: the records stay in the stream and a later Flush writes them. Flush
// is safe to call concurrently with Put.
func (l *Local) Flush(ctx context.Context) error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	return l.flushLocked(ctx)
}

// flushLocked is Flush with flushMu held.
func (l *Local) flushLocked(ctx context.Context) error {
	err := l.flush(ctx)
	l.mu.Lock()
	l.retryAt = time.Time{}
	if err != nil {
		l.retryAt = time.Now().Add(l.cfg.RetryInterval)
	}
	l.mu.Unlock()
	return err
}

func (l *Local) flush(ctx context.Context) error {
	l.mu.Lock()
	b := l.pending
	l.mu.Unlock()
	if b != nil {
		if err := l.write(ctx, b); err != nil {
			return err
		}
		l.release()
	}
	l.mu.Lock()
	if len(l.buf) == 0 {
		l.mu.Unlock()
		return nil
	}
	b = &batch{records: l.buf, bytes: l.bufBytes}
	l.buf, l.bufBytes = nil, 0
	l.pending = b
	l.mu.Unlock()
	if err := l.write(ctx, b); err != nil {
		return err
	}
	l.release()
	return nil
}

// release forgets the written pending batch and wakes Puts waiting for room.
func (l *Local) release() {
	l.mu.Lock()
	l.pending = nil
	close(l.room)
	l.room = make(chan struct{})
	l.mu.Unlock()
}

// write converts a batch (once) and writes its objects, skipping those a
// previous attempt wrote.
func (l *Local) write(ctx context.Context, b *batch) error {
	if !b.converted {
		l.convert(b)
		b.converted = true
	}
	if b.rawKey != "" && !b.rawDone {
		if err := l.writeParquet(ctx, b.rawKey, b.rows); err != nil {
			return err
		}
		b.rawDone = true
		l.cfg.Logger.Info("local stream wrote raw object", "stream", l.cfg.Stream, "key", b.rawKey, "rows", len(b.rows))
	}
	if b.errKey != "" && !b.errDone {
		if err := l.writeErrors(ctx, b.errKey, b.failed); err != nil {
			return err
		}
		b.errDone = true
		l.cfg.Logger.Warn("local stream wrote records that failed conversion", "stream", l.cfg.Stream, "key", b.errKey, "records", len(b.failed))
	}
	return nil
}

// convert turns a batch's records into rows and failures and names the
// objects they go to, each by its oldest record's arrival.
func (l *Local) convert(b *batch) {
	var oldestOK, oldestFailed time.Time
	for _, r := range b.records {
		rows, err := Convert(r.data)
		if err != nil {
			var ce *ConversionError
			if !errors.As(err, &ce) {
				ce = &ConversionError{CodeParseError, err.Error()}
			}
			b.failed = append(b.failed, failedRecord{record: r, err: ce})
			if oldestFailed.IsZero() || r.arrival.Before(oldestFailed) {
				oldestFailed = r.arrival
			}
			continue
		}
		b.rows = append(b.rows, rows...)
		if oldestOK.IsZero() || r.arrival.Before(oldestOK) {
			oldestOK = r.arrival
		}
	}
	if len(b.rows) > 0 {
		b.rawKey = l.cfg.Prefix + objectName(l.cfg.Stream, oldestOK)
	}
	if len(b.failed) > 0 {
		b.errKey = l.cfg.ErrorPrefix + "format-conversion-failed/" + objectName(l.cfg.Stream, oldestFailed)
	}
}

// objectName is Firehose's default object name under a prefix, for a
// delivery stream of version 1.
func objectName(stream string, t time.Time) string {
	t = t.UTC()
	return t.Format("2006/01/02/15/") + stream + "-1-" + t.Format("2006-01-02-15-04-05") + "-" + uuid.NewString()
}

func (l *Local) writeParquet(ctx context.Context, key string, rows []event.Raw) error {
	w, err := l.cfg.Store.NewWriter(ctx, key)
	if err != nil {
		return err
	}
	pw := parquet.NewGenericWriter[event.Raw](w, parquet.Compression(&parquet.Snappy), l.createdBy)
	if _, err := pw.Write(rows); err != nil {
		w.Abort()
		return fmt.Errorf("write %s: %w", key, err)
	}
	if err := pw.Close(); err != nil {
		w.Abort()
		return fmt.Errorf("write %s: %w", key, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write %s: %w", key, err)
	}
	return nil
}

// ErrorRecord is one line of a raw-errors object: a record that failed
// format conversion, in the shape Firehose writes (with errorCode and
// errorMessage; Firehose's own conversion errors name them lastErrorCode and
// lastErrorMessage, and readers accept both).
type ErrorRecord struct {
	AttemptsMade           int    `json:"attemptsMade"`
	ArrivalTimestamp       int64  `json:"arrivalTimestamp"` // epoch ms
	ErrorCode              string `json:"errorCode"`
	ErrorMessage           string `json:"errorMessage"`
	AttemptEndingTimestamp int64  `json:"attemptEndingTimestamp"` // epoch ms
	RawData                []byte `json:"rawData"`                // base64 in JSON
}

func (l *Local) writeErrors(ctx context.Context, key string, failed []failedRecord) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	end := l.cfg.Now().UnixMilli()
	for _, f := range failed {
		err := enc.Encode(ErrorRecord{
			AttemptsMade:           1, // conversion is not retried
			ArrivalTimestamp:       f.arrival.UnixMilli(),
			ErrorCode:              f.err.Code,
			ErrorMessage:           f.err.Message,
			AttemptEndingTimestamp: end,
			RawData:                f.data,
		})
		if err != nil {
			return fmt.Errorf("write %s: %w", key, err)
		}
	}
	return l.cfg.Store.Put(ctx, key, buf.Bytes())
}

// Close stops the stream: Put returns ErrClosed from now on, and everything
// buffered is written, retrying every RetryInterval until ctx is done. It
// returns an error naming how many records could not be written.
func (l *Local) Close(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.room) // Puts waiting for room give up with ErrClosed
	l.room = make(chan struct{})
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	for {
		err := l.Flush(ctx)
		if err == nil {
			return nil
		}
		l.cfg.Logger.Error("local stream write failed at close; retrying",
			"stream", l.cfg.Stream, "records", l.Buffered(), "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("close local stream %s: %d records not written: %w", l.cfg.Stream, l.Buffered(), err)
		case <-time.After(l.cfg.RetryInterval):
		}
	}
}
