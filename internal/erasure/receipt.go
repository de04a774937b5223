package erasure

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/littlewarehouse/warehouse/internal/store"
)

// Receipt says what carrying out a request did: Prefix+ID+".done.json",
// written once the verification scan found none of its rows. It holds
// counts and keys, never event contents or ids. A late receipt
// (LateReceiptKey) says what a later check for rows delivered late did.
type Receipt struct {
	Request string `json:"request"`
	// Late marks a late check's receipt: objects Firehose delivered after
	// the erase that hold rows received before the request.
	Late        bool      `json:"late,omitempty"`
	Product     string    `json:"product"`
	RequestedAt time.Time `json:"requested_at"`
	DoneAt      time.Time `json:"done_at"`
	// Objects are the raw objects and error files rewritten without the
	// request's rows (NewKey empty: every row was the person's, so the
	// object was deleted and not replaced).
	Objects []Object `json:"objects"`
	// DaysRebuilt are the built reporting days those objects fed, rebuilt
	// by the runs in Runs; the restatements they caused have the cause
	// "erasure <Request>".
	DaysRebuilt []string `json:"days_rebuilt"`
	Runs        []string `json:"runs"`
	// RowsRemoved counts the request's rows each table held before, and no
	// longer holds: "raw" and "raw-errors" (rows and records of the objects
	// rewritten), and the curated tables that hold a person's ids
	// (events, quarantine, user_daily, users).
	RowsRemoved  map[string]int64 `json:"rows_removed"`
	Verification Verification     `json:"verification"`
}

// Object is one object rewritten.
type Object struct {
	Key         string `json:"key"`
	NewKey      string `json:"new_key,omitempty"`
	Rows        int64  `json:"rows"` // rows (or error records) it held
	RowsRemoved int64  `json:"rows_removed"`
}

// Verification is the scan after the rewrite: every file that can hold a
// row, searched by keyed hash. Each raw object and error file listed was
// read whole during the erase and found clean, or written by it and read
// back (one found clean and unchanged since, in the same run, is not read
// twice; a run that finishes an erase after a crash reads them all
// again); every table file is read again. An error file holding a record
// that cannot be decoded is named in Unsearchable, not counted clean.
type Verification struct {
	At           time.Time `json:"at"`
	RawObjects   int       `json:"raw_objects"`   // raw Parquet objects listed, each searched
	ErrorObjects int       `json:"error_objects"` // Firehose error files listed, each searched
	Segments     int       `json:"segments"`      // each the cut of a raw object scanned clean (or deleted)
	TableFiles   int       `json:"table_files"`   // Parquet files of curated tables and users state read whole
	RowsFound    int64     `json:"rows_found"`    // rows of the request found: always 0 in a receipt
	// Unsearchable are objects that cannot be read as rows (bad objects:
	// not Parquet, truncated) and objects under the raw prefix that no run
	// reads (outside the hourly layout, named _* or .*); they are named so
	// that someone looks.
	Unsearchable []string `json:"unsearchable,omitempty"`
	// AwaitingCleanup are files of superseded runs that still hold rows of
	// the request: kept for the grace period for readers that resolved
	// them (on S3), then deleted by the next run's cleanup.
	AwaitingCleanup []string `json:"awaiting_cleanup,omitempty"`
}

// ReceiptKey is where request id's receipt is.
func ReceiptKey(id string) string { return Prefix + id + ".done.json" }

// LateReceiptKey is where the receipt of request id's late check begun at
// t is.
func LateReceiptKey(id string, t time.Time) string {
	return Prefix + id + ".late-" + t.UTC().Format("20060102T150405.000Z") + ".json"
}

// WorkKey is where request id's work in progress (the objects rewritten,
// the days to rebuild) is kept between a crash and the run that finishes
// it; that run scans every object again.
func WorkKey(id string) string { return Prefix + id + ".work.json" }

// LateWorkKey is WorkKey for a late check of request id.
func LateWorkKey(id string) string { return Prefix + id + ".late.work.json" }

// ReadReceipt reads request id's receipt, or returns ErrNotExist.
func ReadReceipt(ctx context.Context, st store.Store, id string) (*Receipt, error) {
	return readReceipt(ctx, st, ReceiptKey(id))
}

func readReceipt(ctx context.Context, st store.Store, key string) (*Receipt, error) {
	b, err := st.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	var r Receipt
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	return &r, nil
}

// WriteReceipt writes r to key with a conditional create; a receipt
// already there (written by a run that died just after) is kept, and
// returned.
func WriteReceipt(ctx context.Context, st store.Store, key string, r *Receipt) (*Receipt, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := st.Create(ctx, key, append(b, '\n')); err != nil && !errors.Is(err, store.ErrExists) {
		return nil, fmt.Errorf("write receipt %s: %w", key, err)
	}
	return readReceipt(ctx, st, key)
}

// Work is a request's progress, kept between runs: what was rewritten and
// which days to rebuild survive a crash after the old objects are gone.
type Work struct {
	Objects     map[string]Object `json:"objects"` // by old key
	Days        []string          `json:"days"`
	RowsBefore  map[string]int64  `json:"rows_before,omitempty"` // in the curated tables, before any rebuild
	Runs        []string          `json:"runs,omitempty"`
	HaveCounted bool              `json:"have_counted"`
	// Started is when the work began; Since, for a late check, the first
	// arrival hour it searches (zero: every hour).
	Started time.Time `json:"started"`
	Since   time.Time `json:"since,omitzero"`
}

// ReadWork reads the work at key, or returns an empty Work if there is none.
func ReadWork(ctx context.Context, st store.Store, key string) (*Work, error) {
	w := &Work{Objects: map[string]Object{}}
	b, err := st.Get(ctx, key)
	if errors.Is(err, store.ErrNotExist) {
		return w, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, w); err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if w.Objects == nil {
		w.Objects = map[string]Object{}
	}
	return w, nil
}

// SaveWork writes w to key (a plain atomic write: one erase stage runs at
// a time, under its lease).
func SaveWork(ctx context.Context, st store.Store, key string, w *Work) error {
	b, err := json.MarshalIndent(w, "", "  ")
	if err != nil {
		return err
	}
	return st.Put(ctx, key, append(b, '\n'))
}
