package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/index"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/lambda"
	"github.com/littlewarehouse/warehouse/internal/rietest"
	"github.com/littlewarehouse/warehouse/internal/sfntest"
)

// TestRouteOnceUnderRIE runs a backfill of the demo's days (make demo's
// data: eventgen --nasty --start-on-from over 7 days, with fewer events a
// day) through the nightly state machine
// (infra.StateMachineDefinition, executed by aws-local-stepfunctions), each
// Task invoking the rollup function on one of four emulators behind the
// Lambda Invoke API (lambdaFront): route parts, then days, run in parallel
// in separate processes, as on Lambda. Every raw object is read exactly
// once across all invocations, and the published tables equal a local
// job.Run's byte for byte.
//
// How reads are counted, at the S3 server: store.S3 reads an object in one
// of two ways. Open sends one HEAD (its size and ETag), then the reader
// (raw.Read routing it, or the index scanning its time columns) makes all
// its ranged GETs of it through that one Reader; Get sends one GET without
// a Range. So every read of a raw object, bad ones included (a zero-byte
// object is opened, then rejected before any GET), is exactly one HEAD or
// one unranged GET of its key, whichever process makes it; ranged GETs are
// parts of a read and not counted. (Stat also sends a HEAD, but nothing
// Stats a raw object; the SDK would repeat a HEAD only after a failed one,
// and this server fails none.)
func TestRouteOnceUnderRIE(t *testing.T) {
	rietest.Skip(t)
	sfntest.Skip(t)
	t0 := time.Now()
	ctx := context.Background()
	d1 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	bootstrap, rie, s3srv, s3st, local := setUp(t, gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 6), EventsPerDay: 8000, StartOnFrom: true}))
	front := startFunctions(t, rie, bootstrap, 4, functionEnv(s3srv.url, "LW_PARALLEL=4"))
	sfntest.Install(t)
	t.Logf("bootstrap built, 4 emulators ready, data generated: %v", time.Since(t0).Round(time.Millisecond))

	// Count the reads of raw objects from here on (see above).
	reads := map[string]int{}
	rawPath := "/" + bucket + "/wh/raw/"
	s3srv.mu.Lock()
	s3srv.observe = func(r *http.Request) {
		key, ok := strings.CutPrefix(r.URL.Path, rawPath)
		if ok && (r.Method == http.MethodHead || r.Method == http.MethodGet && r.Header.Get("Range") == "") {
			reads["raw/"+key]++
		}
	}
	s3srv.mu.Unlock()

	from, to := "2026-11-20", "2026-11-26"
	ex := sfntest.Run(t, definition(), `{"from":"`+from+`","to":"`+to+`"}`, "01KBXR0UTE0NCE000000000000", front.url)
	s3srv.mu.Lock()
	s3srv.observe = nil
	s3srv.mu.Unlock()
	t.Logf("execution done: %v; %d invocations, at most %d at once", time.Since(t0).Round(time.Millisecond), front.invocations, front.maxRunning)
	sum := summaryOf(t, ex, s3st)

	if sum.Status != lambda.RunDone || sum.Planned != 7 || sum.Built != 7 {
		t.Fatalf("summary: %+v\n%s", sum, ex.History())
	}
	r := sum.Route
	if r == nil || r.Parts != 4 || r.Failed != 0 || r.Fallback || r.Routed != r.Objects {
		t.Fatalf("route stage: %+v; want 4 route parts routing every object", r)
	}
	if sum.Totals.RawObjects != 0 {
		t.Errorf("the day workers read %d raw objects; want none", sum.Totals.RawObjects)
	}
	if front.maxRunning < 2 {
		t.Errorf("at most %d workers ran at once; want them in parallel", front.maxRunning)
	}
	// erase, start, the route parts, plan, the days, windowed, register, finish.
	if want := 2 + r.Parts + 1 + sum.Planned + 3; front.invocations != want {
		t.Errorf("%d invocations; want %d (%d route parts and %d days)", front.invocations, want, r.Parts, sum.Planned)
	}
	for _, f := range front.failures {
		t.Errorf("a worker invocation failed: %s", f)
	}

	// Every raw object of the range's window was read, once.
	ix, err := index.Load(ctx, s3st)
	if err != nil {
		t.Fatal(err)
	}
	entries := ix.Entries()
	multiDay := 0
	for _, e := range entries {
		n := 0
		for _, d := range e.Days {
			if d >= mustDay(t, from) && d <= mustDay(t, to) {
				n++
			}
		}
		if n >= 2 {
			multiDay++
		}
		if reads[e.Key] != 1 {
			t.Errorf("%s (feeds %v, bad %q) read %d times; want once", e.Key, e.Days, e.Bad, reads[e.Key])
		}
		delete(reads, e.Key)
	}
	for k, n := range reads {
		t.Errorf("%s read %d times, and not indexed", k, n)
	}
	if len(entries) != r.Objects || multiDay == 0 {
		t.Errorf("%d raw objects indexed, %d routed, %d feeding two stale days or more: the data does not test what it should",
			len(entries), r.Objects, multiDay)
	}
	t.Logf("%d raw objects, each read once; %d of them feed two stale days or more", len(entries), multiDay)

	cfg := job.Config{Store: local, From: mustDay(t, from), To: mustDay(t, to), Rules: compact.DefaultRules(time.UTC)}
	if _, err := job.Run(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	n := sameTables(t, local, s3st, "route parts and days in parallel")
	t.Logf("%d partitions, equal to a local run (%v)", n, time.Since(t0).Round(time.Millisecond))
}

// lambdaFront is the Lambda Invoke API in front of function emulators: it
// runs each invocation on an idle emulator (each runs one invocation at a
// time, like one execution environment), up to as many at once as there
// are emulators, and answers with the function's response, as Lambda
// answers a RequestResponse invocation (Step Functions' kind): a function
// error has X-Amz-Function-Error set. Any function name is served.
type lambdaFront struct {
	url  string
	idle chan *rietest.Emulator

	mu          sync.Mutex
	running     int
	maxRunning  int
	invocations int
	failures    []string // the function errors, "payload: answer"
}

func newLambdaFront(t *testing.T, ems []*rietest.Emulator) *lambdaFront {
	f := &lambdaFront{idle: make(chan *rietest.Emulator, len(ems))}
	for _, e := range ems {
		f.idle <- e
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		payload, err := io.ReadAll(r.Body)
		if err != nil || !strings.HasSuffix(r.URL.Path, "/invocations") {
			http.Error(w, "bad invocation", http.StatusBadRequest)
			return
		}
		status, fnErr, body := f.invoke(payload)
		if fnErr != "" {
			w.Header().Set("X-Amz-Function-Error", fnErr)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

// invoke runs one invocation on an idle emulator.
func (f *lambdaFront) invoke(payload []byte) (status int, fnErr, body string) {
	e := <-f.idle
	defer func() { f.idle <- e }()
	f.mu.Lock()
	f.running++
	f.invocations++
	f.maxRunning = max(f.maxRunning, f.running)
	f.mu.Unlock()
	status, h, body, err := e.Do(payload)
	if err != nil {
		status, body = http.StatusBadGateway, err.Error()
	}
	if h != nil {
		fnErr = h.Get("X-Amz-Function-Error")
	}
	var res struct {
		ErrorType string `json:"errorType"`
	}
	if json.Unmarshal([]byte(body), &res) == nil && res.ErrorType != "" && fnErr == "" {
		fnErr = "Unhandled" // what Lambda sets for an error the function returned
	}
	f.mu.Lock()
	f.running--
	if fnErr != "" || status != http.StatusOK {
		f.failures = append(f.failures, fmt.Sprintf("%s on %s: HTTP %d %s", snip(payload), e.Name, status, body))
	}
	f.mu.Unlock()
	return status, fnErr, body
}

func snip(b []byte) string {
	if len(b) > 120 {
		return string(b[:120]) + "…"
	}
	return string(b)
}
