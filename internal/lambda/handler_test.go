package lambda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/store"
)

func memHandler(t *testing.T, st store.Store, log *slog.Logger) *Handler {
	t.Helper()
	cfg, err := ConfigFromEnv(env(map[string]string{EnvStore: "/unused"}))
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(context.Background(), cfg, Deps{Store: st, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestHandleBadEvents: an event that does not parse, or names a run that
// was never started, or a stage out of order, fails for good
// (*PermanentError: the state machine does not retry it), writing nothing.
func TestHandleBadEvents(t *testing.T) {
	ctx := context.Background()
	st := store.NewMem()
	var logged bytes.Buffer
	h := memHandler(t, st, slog.New(slog.NewJSONHandler(&logged, nil)))
	// Run R2 has a record, but no windowed summary yet.
	if err := writeJSON(ctx, st, RunRecordKey("R2"), &RunRecord{Run: "R2", From: "2026-11-20", To: "2026-11-21"}); err != nil {
		t.Fatal(err)
	}
	if err := writeJSON(ctx, st, RunRecordKey("R3"), &RunRecord{Run: "R0", From: "2026-11-20", To: "2026-11-21"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ payload, why string }{
		{`{"stage":"compact","run":"R1"}`, `unknown stage "compact"`},
		{`{"stage":"build","run":"R1"}`, "build event without a day"},
		{`{"stage":"plan"}`, "plan event without a run"},
		{`{"stage":"build","day":"2026-11-20","run":"R1","dya":"2026-11-21"}`, `unknown field "dya"`},
		{`{"role":"coordinator"}`, "not a stage event"},
		{`{"stage":"start","execution":"x","input":{"from":"2026-11-22","to":"2026-11-20"}}`, "after"},
		{`{"stage":"start","execution":"x","input":{"form":"2026-11-20","to":"2026-11-22"}}`, `unknown field "form"`},
		{`{"stage":"plan","run":"R1"}`, "run R1 has no record at " + RunRecordKey("R1")},
		{`{"stage":"windowed","run":"R1"}`, "has no record"},
		{`{"stage":"finish","run":"R1","error":null}`, "has no record"},
		{`{"stage":"plan","run":"R3"}`, "is not run R3's"},
		{`{"stage":"register","run":"R2"}`, "no windowed summary"},
	} {
		res, err := h.Handle(ctx, json.RawMessage(tc.payload))
		var p *PermanentError
		if !errors.As(err, &p) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("%s: %v, %v; want a *PermanentError saying %q", tc.payload, res, err, tc.why)
		}
	}
	objs, err := st.List(ctx, "")
	if err != nil || len(objs) != 2 {
		t.Errorf("bad events wrote to the store: %v, %v", objs, err)
	}
	if !strings.Contains(logged.String(), `"msg":"event not understood"`) || !strings.Contains(logged.String(), `"msg":"stage failed"`) {
		t.Errorf("the failures are not logged:\n%s", logged.String())
	}
}

// TestStageError: stageError types a stage's error for the state machine:
// permanent what retrying cannot fix (Classify), retryable the rest, and
// what a stage typed already as it is.
func TestStageError(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("day 2026-11-20: %w", err) }
	locked := &job.LockedError{Held: &lease.HeldError{Name: "windowed"}}
	for _, tc := range []struct {
		name      string
		err       error
		permanent bool
	}{
		{"S3 403 AccessDenied", wrap(awsErr(403, "AccessDenied")), true},
		{"NoSuchBucket", wrap(awsErr(404, "NoSuchBucket")), true},
		{"zone", wrap(&job.ZoneError{Store: "s3://b", Have: "UTC", Want: "Pacific/Auckland"}), true},
		{"day held", wrap(locked), true},
		{"permanent already", wrap(&PermanentError{Msg: "bad event"}), true},
		{"S3 503 SlowDown", wrap(awsErr(503, "SlowDown")), false},
		{"S3 500", wrap(awsErr(500, "")), false},
		{"unknown", errors.New("something odd"), false},
		{"deadline", wrap(context.DeadlineExceeded), false},
		// Another run's stage 2 or erase holding its lease: try later.
		{"stage 2 or erase lease held", fmt.Errorf("windowed tables: %w", &lease.HeldError{Name: "stage2"}), false},
		// The windowed stage waits for a lease, then asks for a retry.
		{"retryable already", &RetryableError{Msg: "windowed tables: " + locked.Error()}, false},
		{"retryable wrapped", fmt.Errorf("x: %w", &RetryableError{Msg: "y"}), false},
	} {
		got := stageError(tc.err)
		var p *PermanentError
		var r *RetryableError
		switch {
		case tc.permanent && !errors.As(got, &p), !tc.permanent && !errors.As(got, &r):
			t.Errorf("%s: %T; want permanent %t", tc.name, got, tc.permanent)
		case got.Error() != tc.err.Error():
			t.Errorf("%s: message %q; want %q", tc.name, got.Error(), tc.err.Error())
		}
	}
	if stageError(nil) != nil {
		t.Error("stageError(nil) is not nil")
	}
}
