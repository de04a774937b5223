package firehose_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	fh "github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/firehose"
	"github.com/littlewarehouse/warehouse/internal/firehose/firehosetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// records returns n distinct records of about size bytes each.
func records(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		head := fmt.Sprintf(`{"event_id":"%06d","pad":"`, i)
		out[i] = []byte(head + strings.Repeat("x", max(0, size-len(head)-3)) + "\"}\n")
	}
	return out
}

func newClient(srv *firehosetest.Server, attempts int) *firehose.Client {
	return firehose.NewClient(srv.SDKClient(), srv.Stream(), firehose.ClientOptions{
		MaxAttempts: attempts, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, Logger: quiet,
	})
}

func callShape(calls []firehosetest.Call) []string {
	var out []string
	for _, c := range calls {
		s := fmt.Sprintf("%d records, %d failed", c.Records, c.Failed)
		if c.Error != "" {
			s = fmt.Sprintf("%d records: %s", c.Records, c.Error)
		}
		out = append(out, s)
	}
	return out
}

func TestClientRetriesOnlyFailedRecords(t *testing.T) {
	t.Parallel()
	recs := records(10, 60)
	odd := map[string]bool{}
	for i := 1; i < len(recs); i += 2 {
		odd[string(recs[i])] = true
	}
	srv := firehosetest.NewServer(firehosetest.Options{
		// Odd records fail the first time they are seen, record 5 twice.
		FailRecord: func(data []byte, seen int) bool {
			if bytes.Equal(data, recs[5]) {
				return seen < 2
			}
			return odd[string(data)] && seen == 0
		},
	})
	defer srv.Close()

	if err := newClient(srv, 5).Put(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	want := []string{"10 records, 5 failed", "5 records, 1 failed", "1 records, 0 failed"}
	if diff := cmp.Diff(want, callShape(srv.Calls())); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	// Every record delivered exactly once, in order of acceptance.
	wantOrder := [][]byte{recs[0], recs[2], recs[4], recs[6], recs[8], recs[1], recs[3], recs[7], recs[9], recs[5]}
	if diff := cmp.Diff(wantOrder, srv.Delivered()); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}

func TestClientGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	recs := records(4, 50)
	srv := firehosetest.NewServer(firehosetest.Options{
		FailRecord: func(data []byte, _ int) bool { return bytes.Equal(data, recs[2]) },
	})
	defer srv.Close()

	err := newClient(srv, 3).Put(context.Background(), recs)
	if err == nil || !strings.Contains(err.Error(), "gave up after 3 attempts") || !strings.Contains(err.Error(), "ServiceUnavailableException") {
		t.Fatalf("Put = %v, want giving up after 3 attempts on ServiceUnavailableException", err)
	}
	if got := len(srv.Calls()); got != 3 {
		t.Errorf("%d calls, want 3", got)
	}
	if diff := cmp.Diff([][]byte{recs[0], recs[1], recs[3]}, srv.Delivered()); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}

func TestClientRetriesFailedCalls(t *testing.T) {
	t.Parallel()
	recs := records(3, 50)
	srv := firehosetest.NewServer(firehosetest.Options{FailCalls: 2})
	defer srv.Close()

	if err := newClient(srv, 3).Put(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	want := []string{"3 records: ServiceUnavailableException", "3 records: ServiceUnavailableException", "3 records, 0 failed"}
	if diff := cmp.Diff(want, callShape(srv.Calls())); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(recs, srv.Delivered()); diff != "" {
		t.Errorf("delivered (-want +got):\n%s", diff)
	}
}

func TestClientStopsOnPermanentErrors(t *testing.T) {
	t.Parallel()
	srv := firehosetest.NewServer(firehosetest.Options{Stream: "events"})
	defer srv.Close()
	c := firehose.NewClient(srv.SDKClient(), "no-such-stream", firehose.ClientOptions{MaxAttempts: 5, BaseDelay: time.Millisecond, Logger: quiet})

	err := c.Put(context.Background(), records(2, 40))
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ResourceNotFoundException" {
		t.Fatalf("Put = %v, want ResourceNotFoundException", err)
	}
	if got := len(srv.Calls()); got != 1 {
		t.Errorf("%d calls, want 1 (no retry)", got)
	}
}

func TestClientSplitsCallsAtTheLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		records [][]byte
		want    []string
	}{
		{"500 records per call", records(1200, 30),
			[]string{"500 records, 0 failed", "500 records, 0 failed", "200 records, 0 failed"}},
		{"4 MiB per call", records(9, 900<<10),
			[]string{"4 records, 0 failed", "4 records, 0 failed", "1 records, 0 failed"}},
		{"a record of exactly 1,000 KiB goes", records(1, firehose.MaxRecordBytes),
			[]string{"1 records, 0 failed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := firehosetest.NewServer(firehosetest.Options{})
			defer srv.Close()
			if err := newClient(srv, 1).Put(context.Background(), tc.records); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, callShape(srv.Calls())); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if got := len(srv.Delivered()); got != len(tc.records) {
				t.Errorf("%d delivered, want %d", got, len(tc.records))
			}
		})
	}
}

func TestClientRefusesOversizedRecords(t *testing.T) {
	t.Parallel()
	srv := firehosetest.NewServer(firehosetest.Options{})
	defer srv.Close()
	recs := append(records(2, 40), records(1, firehose.MaxRecordBytes+1)...)
	err := newClient(srv, 1).Put(context.Background(), recs)
	if !errors.Is(err, firehose.ErrRecordTooLarge) {
		t.Fatalf("Put = %v, want ErrRecordTooLarge", err)
	}
	if n := len(srv.Calls()); n != 0 {
		t.Errorf("%d calls made, want none", n)
	}
}

// TestFakeEnforcesLimits proves the fake Firehose refuses what the real one
// refuses, so the client tests above mean something.
func TestFakeEnforcesLimits(t *testing.T) {
	t.Parallel()
	srv := firehosetest.NewServer(firehosetest.Options{})
	defer srv.Close()
	api := srv.SDKClient()
	tests := []struct {
		name    string
		records [][]byte
	}{
		{"501 records", records(501, 10)},
		{"more than 4 MiB", records(5, 1000<<10)},
		{"a record over 1,000 KiB", records(1, 1000<<10+1)},
		{"no records", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := &fh.PutRecordBatchInput{DeliveryStreamName: aws.String(srv.Stream()), Records: []types.Record{}}
			for _, r := range tc.records {
				in.Records = append(in.Records, types.Record{Data: r})
			}
			_, err := api.PutRecordBatch(context.Background(), in)
			var ae smithy.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("PutRecordBatch = %v, want an API error", err)
			}
			if ae.ErrorCode() != "InvalidArgumentException" {
				t.Errorf("error code %s, want InvalidArgumentException", ae.ErrorCode())
			}
		})
	}
	if n := len(srv.Delivered()); n != 0 {
		t.Errorf("%d records delivered, want none", n)
	}
}
