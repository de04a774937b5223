package main

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/littlewarehouse/warehouse/internal/rietest"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/lambda"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
)

const (
	bucket        = "lw"
	storeURL      = "s3://lw/wh"
	workerTimeout = 8 // seconds: the worker function's timeout under the emulator
)

// TestBootstrapUnderRIE runs the built bootstrap under the Lambda Runtime
// Interface Emulator, a worker function and a coordinator function, against
// eventgen data in a gofakes3 bucket; the coordinator reaches the worker
// through the real aws-sdk-go-v2 Lambda client. At every step the published
// data must equal a local job.Run doing the same on a copy of the data.
func TestBootstrapUnderRIE(t *testing.T) {
	rietest.Skip(t)
	t0 := time.Now()
	ctx := context.Background()
	d1 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	bootstrap, rie, s3srv, s3st, local := setUp(t, gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 2), EventsPerDay: 3000, ObjectsPerHour: 2, Seed: 7}))
	t.Logf("bootstrap built, emulator ready, data generated: %v", time.Since(t0).Round(time.Millisecond))

	base := []string{
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=SECRETTEST",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_ENDPOINT_URL_S3=" + s3srv.url,
		"LW_STORE=" + storeURL, "LW_GRACE_PERIOD=0", "LW_PARALLEL=4",
	}
	workerEnv := append(base, "LW_ROLE=worker", "AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(workerTimeout))

	// A misconfigured function says what is wrong, in the invocation's answer.
	bad := startRIE(t, rie, bootstrap, "misconfigured", []string{"LW_ROLE=coordinator", "AWS_REGION=us-east-1"})
	_, body := bad.Invoke(t, []byte(`{"from":"2026-11-20","to":"2026-11-20"}`))
	for _, want := range []string{"LW_STORE is not set", "LW_WORKER_FUNCTION is not set"} {
		if !strings.Contains(body, want) {
			t.Errorf("misconfigured function answered %s; want it to say %q", body, want)
		}
	}
	bad.Stop()

	// Local mirror: each step below does on the copy what the Lambda did.
	localRun := func(from, to string, skipWindowed bool) {
		t.Helper()
		cfg := job.Config{Store: local, From: mustDay(t, from), To: mustDay(t, to), Rules: compact.DefaultRules(time.UTC)}
		run := job.Run
		if skipWindowed {
			run = job.BuildDays
		}
		if _, err := run(ctx, cfg); err != nil {
			t.Fatalf("local run %s..%s: %v", from, to, err)
		}
	}
	same := func(step string) {
		t.Helper()
		from, to := mustDay(t, "2026-10-15"), mustDay(t, "2026-12-31")
		want, err := job.Snapshot(ctx, local, from, to)
		if err != nil {
			t.Fatal(err)
		}
		got, err := job.Snapshot(ctx, s3st, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%s: the Lambda's outputs differ from a local run's (-local +lambda):\n%s", step, diff)
		}
		t.Logf("%s: %d partitions, equal to a local run (%v)", step, len(got), time.Since(t0).Round(time.Millisecond))
	}

	// 1. A worker killed mid-day (its data files written, the first
	// manifest on its way), then re-invoked, converges.
	worker := startRIE(t, rie, bootstrap, "worker", workerEnv)
	hit, release := s3srv.block(func(r *http.Request) bool {
		// The commit point: the log entry of the partition's generation.
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/"+publish.LogPrefix("events", "dt=2026-11-20"))
	})
	go worker.Post([]byte(`{"role":"worker","day":"2026-11-20","run":"kill-1"}`)) // its answer never comes
	select {
	case <-hit:
	case <-time.After(30 * time.Second):
		t.Fatalf("the worker never got to publishing day 2026-11-20; its output:\n%s", worker.Output())
	}
	worker.Kill(t)
	release()
	if _, err := publish.Current(ctx, s3st, "events", mustDay(t, "2026-11-20")); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("after the kill, events 2026-11-20 is current (%v); want unpublished", err)
	}
	debris, _ := s3st.List(ctx, publish.PartitionPrefix("events", mustDay(t, "2026-11-20")))
	if len(debris) == 0 {
		t.Fatal("the killed worker wrote no data files before its manifest; the kill came too early to test anything")
	}
	worker = startRIE(t, rie, bootstrap, "worker", workerEnv)
	// Its lease is still live: the retry fails for good, at once, no loop.
	res := worker.work(t, "2026-11-20", "kill-1")
	if res.Status != lambda.StatusFailed || res.ErrorClass != "permanent" || !strings.Contains(res.Error, "being written by another rollup") {
		t.Fatalf("re-invoked while the dead worker's lease lives: %+v; want failed (permanent, locked)", res)
	}
	// Once the dead worker's lease can be taken over (its function
	// timeout + clock skew), the next try builds the day.
	waitForLeases(t, s3st, "dt=2026-11-20")
	if res := worker.work(t, "2026-11-20", "kill-1"); res.Status != lambda.StatusBuilt {
		t.Fatalf("re-invoked after the lease expired: %+v; want built", res)
	}
	// The same event twice: one result.
	if res := worker.work(t, "2026-11-20", "kill-1"); res.Status != lambda.StatusCurrent {
		t.Fatalf("the same worker event again: %+v; want current (nothing done)", res)
	}
	localRun("2026-11-20", "2026-11-20", true)
	same("killed worker re-invoked, then invoked again")
	if out := worker.Output(); !strings.Contains(out, `"Namespace":"LittleWarehouse"`) || !strings.Contains(out, `"KeptRows":`) {
		t.Errorf("no EMF metrics in the worker's output:\n%s", out)
	}

	// 2. rollup --dispatch lambda:<worker>: plan here, workers there,
	// the windowed stage here.
	lc := awslambda.New(awslambda.Options{
		BaseEndpoint: aws.String(worker.URL), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRETTEST", ""),
	})
	var progress []lambda.Progress
	cfg := job.Config{Store: s3st, From: mustDay(t, "2026-11-20"), To: mustDay(t, "2026-11-21"), Rules: compact.DefaultRules(time.UTC), Parallel: 4}
	sum, err := lambda.DispatchBackfill(ctx, cfg, lc, "function", func(p lambda.Progress) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	if sum.Status != lambda.RunDone || sum.Planned != 1 || sum.Built != 1 || len(progress) != 2 || progress[1].Done != 1 {
		t.Fatalf("dispatch: %+v, progress %+v", sum, progress)
	}
	localRun("2026-11-20", "2026-11-21", false)
	same("backfill dispatched from the CLI")

	// 3. The coordinator function, invoking the worker function through
	// the SDK (AWS_ENDPOINT_URL_LAMBDA): a backfill, then the nightly event,
	// each ending with the HTML report (LW_REPORT).
	coord := startRIE(t, rie, bootstrap, "coordinator", append(base, "LW_ROLE=coordinator", "LW_REPORT=true",
		"LW_WORKER_FUNCTION=function", "AWS_ENDPOINT_URL_LAMBDA="+worker.URL, "AWS_LAMBDA_FUNCTION_TIMEOUT=60"))
	sum = coord.coordinate(t, readFile(t, "../../testdata/lambda/backfill.json"))
	if sum.Status != lambda.RunDone || sum.Trigger != lambda.KindBackfill || sum.Planned != 1 || sum.Built != 1 || sum.Days[2].Worker == nil {
		t.Fatalf("backfill: %+v", sum)
	}
	localRun("2026-11-20", "2026-11-22", false)
	same("backfill through the coordinator")

	sum = coord.coordinate(t, readFile(t, "../../testdata/lambda/scheduled-event.json"))
	if sum.Status != lambda.RunDone || sum.Trigger != lambda.KindScheduled || sum.From != "2026-11-16" || sum.To != "2026-11-23" ||
		sum.Planned == 0 || sum.Built != sum.Planned || len(sum.Pending) != 0 {
		t.Fatalf("scheduled: %+v", sum)
	}
	localRun("2026-11-16", "2026-11-23", false) // the 8 days that end the day before the event
	same("nightly scheduled event")
	if _, err := s3st.Stat(ctx, lambda.SummaryKey(sum.Run)); err != nil {
		t.Errorf("run summary: %v", err)
	}
	if page, err := s3st.Get(ctx, lambda.HTMLReportKey); err != nil || sum.HTMLReport == nil || sum.HTMLReport.Error != "" ||
		len(page) != sum.HTMLReport.Bytes || !strings.Contains(string(page), "2026-11-23") {
		t.Errorf("HTML report: %+v, %v", sum.HTMLReport, err)
	}
	if out := coord.Output(); !strings.Contains(out, `"Stage":"run"`) {
		t.Errorf("no run metrics in the coordinator's output:\n%s", out)
	}

	// The same event delivered again: nothing to do, nothing changes.
	sum = coord.coordinate(t, readFile(t, "../../testdata/lambda/scheduled-event.json"))
	if sum.Status != lambda.RunDone || sum.Planned != 0 {
		t.Fatalf("scheduled again: %+v", sum)
	}
	same("nightly event delivered twice")
}

func mustDay(t *testing.T, s string) day.Day {
	t.Helper()
	d, err := day.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeS3 is gofakes3 on 127.0.0.1 that can hold back chosen requests,
// and watch them all.
type fakeS3 struct {
	url     string
	client  *s3.Client
	mu      sync.Mutex
	match   func(*http.Request) bool
	hit     chan struct{}
	held    chan struct{}
	observe func(*http.Request) // called with f.mu held
}

// setUp builds bootstrap and installs the emulator while it generates
// gcfg's raw data into a fresh S3 bucket (the "wh" prefix) and a local
// store alike.
func setUp(t *testing.T, gcfg gen.Config) (bootstrap, rie string, s3srv *fakeS3, s3st *store.S3, local *store.Dir) {
	t.Helper()
	var buildErr, rieErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); bootstrap, buildErr = rietest.Build(t.TempDir(), ".") }()
	go func() { defer wg.Done(); rie, rieErr = rietest.Install(t) }()
	s3srv = newS3(t)
	s3st = store.NewS3(s3srv.client, bucket, "wh")
	local, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []store.Store{s3st, local} {
		if _, err := gen.Generate(context.Background(), st, gcfg); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	if rieErr != nil {
		t.Fatal(rieErr)
	}
	return bootstrap, rie, s3srv, s3st, local
}

func newS3(t *testing.T) *fakeS3 {
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	f := &fakeS3{}
	faker := gofakes3.New(backend).Server()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		if f.observe != nil {
			f.observe(r)
		}
		match, hit, held := f.match, f.hit, f.held
		if match != nil && match(r) {
			f.match = nil
			close(hit)
		} else {
			match = nil
		}
		f.mu.Unlock()
		if match != nil {
			select {
			case <-held:
			case <-r.Context().Done():
			}
			http.Error(w, "held back by the test", http.StatusServiceUnavailable)
			return
		}
		faker.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	f.client = s3.New(s3.Options{
		BaseEndpoint: aws.String(srv.URL), UsePathStyle: true, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRETTEST", ""),
	})
	return f
}

// block holds back the first request that match accepts: hit is closed
// when it arrives; release lets it fail.
func (f *fakeS3) block(match func(*http.Request) bool) (hit <-chan struct{}, release func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.match, f.hit, f.held = match, make(chan struct{}), make(chan struct{})
	held := f.held
	var once sync.Once
	return f.hit, func() { once.Do(func() { close(held) }) }
}

// waitForLeases waits until the leases whose names contain part can be
// taken over: past their expiry plus the clock-skew allowance.
func waitForLeases(t *testing.T, st store.Store, part string) {
	t.Helper()
	ctx := context.Background()
	objs, err := st.List(ctx, lease.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	for _, o := range objs {
		if !strings.Contains(o.Key, part) || !strings.HasSuffix(o.Key, ".json") {
			continue
		}
		b, err := st.Get(ctx, o.Key)
		if err != nil {
			continue
		}
		var rec struct {
			ExpiresAt time.Time `json:"expires_at"`
		}
		if json.Unmarshal(b, &rec) == nil && rec.ExpiresAt.After(last) {
			last = rec.ExpiresAt
		}
	}
	if last.IsZero() {
		t.Fatal("the killed worker left no lease behind")
	}
	wait := time.Until(last.Add(lease.DefaultClockSkew + 500*time.Millisecond))
	if wait > time.Duration(workerTimeout+15)*time.Second {
		t.Fatalf("the dead worker's lease lasts %v more; want about its function timeout", wait)
	}
	t.Logf("waiting %v for the dead worker's lease to expire", wait.Round(time.Millisecond))
	time.Sleep(wait)
}

// emulator is one aws-lambda-rie process serving bootstrap, with the
// invocations of the rollup's two roles.
type emulator struct{ *rietest.Emulator }

// startRIE starts the emulator (rietest.Start) serving bootstrap as name.
func startRIE(t *testing.T, rie, bootstrap, name string, env []string) emulator {
	return emulator{rietest.Start(t, rie, bootstrap, name, env)}
}

// work invokes the worker function for one day.
func (e emulator) work(t *testing.T, d, run string) *lambda.WorkerResult {
	t.Helper()
	b, _ := json.Marshal(lambda.WorkerEvent{Role: lambda.RoleWorker, Day: d, Run: run})
	status, body := e.Invoke(t, b)
	var res lambda.WorkerResult
	if err := json.Unmarshal([]byte(body), &res); err != nil || status != http.StatusOK || res.Status == "" {
		t.Fatalf("worker %s: HTTP %d %s", d, status, body)
	}
	return &res
}

// coordinate invokes the coordinator function.
func (e emulator) coordinate(t *testing.T, payload []byte) *lambda.RunSummary {
	t.Helper()
	status, body := e.Invoke(t, payload)
	var sum lambda.RunSummary
	if err := json.Unmarshal([]byte(body), &sum); err != nil || status != http.StatusOK || sum.Run == "" {
		t.Fatalf("coordinator: HTTP %d %s", status, body)
	}
	return &sum
}
