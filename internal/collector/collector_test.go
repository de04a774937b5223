package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/firehose"
	"github.com/littlewarehouse/warehouse/internal/firehose/firehosetest"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// startRun runs the collector in the background and returns its base URL
// and a function that stops it and returns Run's error.
func startRun(t *testing.T, cfg Config) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan net.Addr, 1)
	cfg.Addr = "127.0.0.1:0"
	cfg.OnListen = func(a net.Addr) { addrs <- a }
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	var base string
	select {
	case a := <-addrs:
		base = "http://" + a.String()
	case err := <-done:
		cancel()
		t.Fatalf("Run ended before listening: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("Run did not listen within 10s")
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not stop within 30s")
			return nil
		}
	}
	t.Cleanup(func() { stop() })
	return base, stop
}

func postEvents(t *testing.T, base, key, body string) (int, Response) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/events", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Api-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r Response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, r
}

func ids(rs ...Response) []string {
	var out []string
	for _, r := range rs {
		for _, e := range r.Events {
			out = append(out, e.EventID)
		}
	}
	slices.Sort(out)
	return out
}

// TestRunLocalEndToEnd starts the collector with the local stream on
// 127.0.0.1, posts events over HTTP — good, bad, and a duplicate sent again
// by a retrying client — stops it, and reads the raw Parquet back.
func TestRunLocalEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := testConfig()
	cfg.Store = dir
	cfg.Stream = "e2e"
	cfg.BufferInterval = time.Hour // only shutdown writes
	base, stop := startRun(t, cfg)

	status, batch := postEvents(t, base, key1, `[
		{"event_name":"screen_view","user_id":"u-1","event_time":"2026-11-24T13:00:00Z","product":"shop","platform":"web","campaign":"spring"},
		{"event_name":"broken","event_time":"not a time"},
		{"event_name":"purchase","device_id":"d-9","event_time":1764000000123,"properties":{"sku":"A-1"}}
	]`)
	if status != http.StatusMultiStatus || batch.Accepted != 2 || batch.Rejected != 1 {
		t.Fatalf("batch: %d %+v", status, batch)
	}
	single := `{"event_name":"app_open","user_id":"u-1"}`
	status, first := postEvents(t, base, key1, single)
	if status != http.StatusOK {
		t.Fatalf("single: %d %+v", status, first)
	}
	status, again := postEvents(t, base, key2, single) // the client retried
	if status != http.StatusOK {
		t.Fatalf("retry: %d %+v", status, again)
	}

	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}

	st, err := store.OpenDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := st.List(context.Background(), "raw/")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || !regexp.MustCompile(`^raw/2026/11/24/13/e2e-1-2026-11-24-13-05-09-[0-9a-f-]{36}$`).MatchString(objs[0].Key) {
		t.Fatalf("raw objects %+v, want one under the arrival hour", objs)
	}
	rows := readParquet(t, st, objs[0].Key)
	var got []string
	byName := map[string]event.Raw{}
	for _, r := range rows {
		got = append(got, r.EventID)
		byName[r.EventName] = r
		if !r.ReceivedAt.Equal(t0.Truncate(time.Millisecond)) {
			t.Errorf("%s: received_at %v, want %v", r.EventName, r.ReceivedAt, t0)
		}
	}
	slices.Sort(got)
	if want := ids(batch, first, again); !slices.Equal(got, want) {
		t.Errorf("event ids in Parquet %v, want the accepted %v", got, want)
	}
	if r := byName["screen_view"]; !r.EventTime.Equal(time.Date(2026, 11, 24, 13, 0, 0, 0, time.UTC)) || r.Properties["campaign"] != "spring" {
		t.Errorf("screen_view row %+v", r)
	}
	if r := byName["purchase"]; !r.EventTime.Equal(time.UnixMilli(1764000000123)) || r.Properties["sku"] != "A-1" || r.DeviceID != "d-9" {
		t.Errorf("purchase row %+v", r)
	}
	if errs, _ := st.List(context.Background(), "raw-errors/"); len(errs) != 0 {
		t.Errorf("raw-errors objects %+v, want none: the collector sends only convertible records", errs)
	}
}

func readParquet(t *testing.T, st store.Store, key string) []event.Raw {
	t.Helper()
	r, err := st.Open(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := parquet.OpenFile(r, r.Size())
	if err != nil {
		t.Fatal(err)
	}
	rows := make([]event.Raw, f.NumRows())
	pr := parquet.NewGenericReader[event.Raw](f)
	defer pr.Close()
	if n, err := pr.Read(rows); n != len(rows) {
		t.Fatalf("read %s: %d of %d rows: %v", key, n, len(rows), err)
	}
	return rows
}

// awsTestEnv points the AWS SDK's default configuration at nothing real.
func awsTestEnv(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// TestRunFirehoseEndToEnd runs the collector against a fake Firehose that
// fails some records the first time: the client is answered only after every
// accepted event is delivered, each exactly once.
func TestRunFirehoseEndToEnd(t *testing.T) {
	awsTestEnv(t)
	fake := firehosetest.NewServer(firehosetest.Options{
		Stream:     "prod-events",
		FailRecord: func(data []byte, seen int) bool { return bytes.Contains(data, []byte(`"flaky"`)) && seen == 0 },
	})
	defer fake.Close()
	cfg := testConfig()
	cfg.FirehoseStream, cfg.FirehoseEndpoint, cfg.Region = "prod-events", fake.URL, "eu-west-1"
	base, stop := startRun(t, cfg)

	status, resp := postEvents(t, base, key1, `[
		{"event_name":"a","user_id":"u"},
		{"event_name":"flaky","user_id":"u"},
		{"event_name":"c","user_id":"u"}
	]`)
	if status != http.StatusOK || resp.Accepted != 3 {
		t.Fatalf("%d %+v", status, resp)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rec := range fake.Delivered() {
		if !bytes.HasSuffix(rec, []byte("\n")) {
			t.Errorf("record %q is not newline-terminated", rec)
		}
		rows, err := firehose.Convert(rec)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rows[0].EventID)
	}
	slices.Sort(got)
	if want := ids(resp); !slices.Equal(got, want) {
		t.Errorf("delivered %v, want each accepted id once: %v", got, want)
	}
	if calls := fake.Calls(); len(calls) != 2 || calls[0].Failed != 1 || calls[1].Records != 1 {
		t.Errorf("calls %+v, want the failed record alone retried", calls)
	}
}

// TestRunFirehoseDown answers 503 with Retry-After when Firehose keeps
// failing, and accepts nothing.
func TestRunFirehoseDown(t *testing.T) {
	awsTestEnv(t)
	fake := firehosetest.NewServer(firehosetest.Options{
		FailRecord: func(data []byte, _ int) bool { return bytes.Contains(data, []byte(`"doomed"`)) },
	})
	defer fake.Close()
	cfg := testConfig()
	cfg.FirehoseStream, cfg.FirehoseEndpoint, cfg.Region = fake.Stream(), fake.URL, "eu-west-1"
	base, _ := startRun(t, cfg)

	req, _ := http.NewRequest(http.MethodPost, base+"/v1/events", strings.NewReader(`[{"event_name":"ok","user_id":"u"},{"event_name":"doomed","user_id":"u"}]`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Api-Key", key1)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("status %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "file")
	if err := writeFile(file); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no keys", Config{Logger: quiet}},
		{"a store that is a file", Config{APIKeys: []string{key1}, Store: file, Logger: quiet}},
		{"a bad stream name", Config{APIKeys: []string{key1}, Store: t.TempDir(), Stream: "a/b", Logger: quiet}},
		{"a sink timeout longer than the write timeout", Config{APIKeys: []string{key1}, SinkTimeout: time.Minute, WriteTimeout: time.Second, Logger: quiet}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Addr = "127.0.0.1:0"
			if err := Run(context.Background(), tc.cfg); !errors.Is(err, ErrConfig) {
				t.Errorf("Run = %v, want ErrConfig", err)
			}
		})
	}
}

func writeFile(path string) error {
	st, err := store.OpenDir(filepath.Dir(path), false)
	if err != nil {
		return err
	}
	return st.Put(context.Background(), filepath.Base(path), []byte("x"))
}
