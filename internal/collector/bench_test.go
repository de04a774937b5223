package collector

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/firehose"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// BenchmarkPostEventsLocal posts batches of 100 events over loopback HTTP to
// the collector with the local stream (writing Parquet to a temp dir every
// 32 MiB) and reports accepted events a second and the p99 request latency.
//
//	go test -run '^$' -bench PostEventsLocal ./internal/collector/
func BenchmarkPostEventsLocal(b *testing.B) {
	st, err := store.OpenDir(b.TempDir(), false)
	if err != nil {
		b.Fatal(err)
	}
	l, err := firehose.NewLocal(firehose.LocalConfig{Store: st, BufferSize: 32 << 20, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	cfg := testConfig()
	cfg.Now = time.Now
	h, err := NewHandler(cfg, l)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	const perRequest = 100
	var events []string
	for i := range perRequest {
		events = append(events, fmt.Sprintf(`{"event_name":"screen_view","user_id":"user-%d","session_id":"s-%d","product":"shop","platform":"web","event_time":"2026-11-24T13:05:09.120Z","screen":"home"}`, i, i))
	}
	body := "[" + strings.Join(events, ",") + "]"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

	var mu sync.Mutex
	var latencies []time.Duration
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			t := time.Now()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/events", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Api-Key", key1)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
			mine = append(mine, time.Since(t))
		}
		mu.Lock()
		latencies = append(latencies, mine...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	b.StopTimer()
	if err := l.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	if len(latencies) > 0 {
		slices.Sort(latencies)
		b.ReportMetric(float64(len(latencies)*perRequest)/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(latencies[len(latencies)*99/100].Microseconds())/1000, "p99-ms")
	}
}
