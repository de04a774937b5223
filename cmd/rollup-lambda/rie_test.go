package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/go-cmp/cmp"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/littlewarehouse/warehouse/infra"
	"github.com/littlewarehouse/warehouse/internal/cli"
	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/lambda"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/rietest"
	"github.com/littlewarehouse/warehouse/internal/sfntest"
	"github.com/littlewarehouse/warehouse/internal/store"
)

const (
	bucket        = "lw"
	storeURL      = "s3://lw/wh"
	workerTimeout = 8 // seconds: the worker function's timeout under the emulator
)

// machineARN and functionARN name the state machine and the function in
// the tests; the emulators answer any function name.
const (
	machineARN  = "arn:aws:states:us-east-1:123456789012:stateMachine:lw-nightly"
	functionARN = "arn:aws:lambda:us-east-1:123456789012:function:lw-rollup"
	eraseARN    = "arn:aws:lambda:us-east-1:123456789012:function:lw-erase"
)

// definition is the nightly state machine as deployed, its Tasks invoking
// functionARN and eraseARN (the emulators serve both).
func definition() []byte { return infra.StateMachineDefinition(functionARN, eraseARN) }

// functionEnv is the rollup function's environment against the S3 server
// at s3URL, plus extra.
func functionEnv(s3URL string, extra ...string) []string {
	return append([]string{
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=SECRETTEST",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_ENDPOINT_URL_S3=" + s3URL,
		"LW_STORE=" + storeURL, "LW_GRACE_PERIOD=0", "AWS_LAMBDA_FUNCTION_TIMEOUT=120",
	}, extra...)
}

// startFunctions starts n emulators of the rollup function behind one
// Invoke API.
func startFunctions(t *testing.T, rie, bootstrap string, n int, env []string) *lambdaFront {
	var ems []*rietest.Emulator
	for i := range n {
		ems = append(ems, rietest.Start(t, rie, bootstrap, fmt.Sprintf("rollup-%d", i+1), env))
	}
	return newLambdaFront(t, ems)
}

// summaryOf reads the run summary of execution ex (its run is the Start
// state's output's).
func summaryOf(t *testing.T, ex *sfntest.Execution, st store.Store) *lambda.RunSummary {
	t.Helper()
	for _, ev := range ex.Events {
		if ev.Type != "StateExited" || ev.State == nil || ev.State.Name != infra.StateStart {
			continue
		}
		var out lambda.StartResult
		if err := json.Unmarshal(ev.State.Output, &out); err != nil {
			t.Fatal(err)
		}
		b, err := st.Get(context.Background(), lambda.SummaryKey(out.Run))
		if err != nil {
			t.Fatalf("run %s: summary: %v\n%s", out.Run, err, ex.History())
		}
		var sum lambda.RunSummary
		if err := json.Unmarshal(b, &sum); err != nil {
			t.Fatal(err)
		}
		return &sum
	}
	t.Fatalf("the execution never left its Start state (%s: %s):\n%s", ex.Error, ex.Cause, ex.History())
	return nil
}

// TestBootstrapUnderRIE runs the built bootstrap under the Lambda Runtime
// Interface Emulator against eventgen data in a gofakes3 bucket: one build
// killed and invoked again, `rollup --dispatch lambda:` for one day, then
// `rollup --dispatch sfn:` through the Step Functions API, whose execution
// runs the nightly state machine (aws-local-stepfunctions) with every Task
// on the emulator, and the nightly scheduled event twice. At every step
// the published data must equal a local job.Run doing the same on a copy
// of the data.
func TestBootstrapUnderRIE(t *testing.T) {
	rietest.Skip(t)
	sfntest.Skip(t)
	t0 := time.Now()
	ctx := context.Background()
	d1 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	bootstrap, rie, s3srv, s3st, local := setUp(t, gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 2), EventsPerDay: 3000, ObjectsPerHour: 2, Seed: 7}))
	sfntest.Install(t)
	t.Logf("bootstrap built, emulator ready, data generated: %v", time.Since(t0).Round(time.Millisecond))
	env := functionEnv(s3srv.url, "LW_PARALLEL=4", "LW_REPORT=true")

	// A misconfigured function says what is wrong, in the invocation's answer.
	bad := startRIE(t, rie, bootstrap, "misconfigured", []string{"AWS_REGION=us-east-1"})
	_, body := bad.Invoke(t, []byte(`{"stage":"build","day":"2026-11-20"}`))
	if !strings.Contains(body, "LW_STORE is not set") {
		t.Errorf("misconfigured function answered %s; want it to say LW_STORE is not set", body)
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
		n := sameTables(t, local, s3st, step)
		t.Logf("%s: %d partitions, equal to a local run (%v)", step, n, time.Since(t0).Round(time.Millisecond))
	}

	// 1. A build killed mid-day (its data files written, the first
	// manifest on its way), then invoked again, converges.
	worker := startRIE(t, rie, bootstrap, "worker", functionEnv(s3srv.url, "LW_PARALLEL=4", "AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(workerTimeout)))
	hit, release := s3srv.block(func(r *http.Request) bool {
		// The commit point: the log entry of the partition's generation.
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/"+publish.LogPrefix("events", "dt=2026-11-20"))
	})
	go worker.Post([]byte(`{"stage":"build","day":"2026-11-20","run":"kill-1"}`)) // its answer never comes
	select {
	case <-hit:
	case <-time.After(30 * time.Second):
		t.Fatalf("the build never got to publishing day 2026-11-20; its output:\n%s", worker.Output())
	}
	worker.Kill(t)
	release()
	if _, err := publish.Current(ctx, s3st, "events", mustDay(t, "2026-11-20")); !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("after the kill, events 2026-11-20 is current (%v); want unpublished", err)
	}
	debris, _ := s3st.List(ctx, publish.PartitionPrefix("events", mustDay(t, "2026-11-20")))
	if len(debris) == 0 {
		t.Fatal("the killed build wrote no data files before its manifest; the kill came too early to test anything")
	}
	worker = startRIE(t, rie, bootstrap, "worker", functionEnv(s3srv.url, "LW_PARALLEL=4", "AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(workerTimeout)))
	// Its lease is still live: the retry fails for good, at once, no loop.
	if errType, msg := worker.fails(t, "2026-11-20", "kill-1"); errType != infra.ErrorPermanent || !strings.Contains(msg, "being written by another rollup") {
		t.Fatalf("invoked again while the dead build's lease lives: %s %s; want a PermanentError (locked)", errType, msg)
	}
	// Once the dead build's lease can be taken over (its function
	// timeout + clock skew), the next try builds the day.
	waitForLeases(t, s3st, "dt=2026-11-20")
	if res := worker.work(t, "2026-11-20", "kill-1"); res.Status != lambda.StatusBuilt {
		t.Fatalf("invoked after the lease expired: %+v; want built", res)
	}
	// The same event twice: one result.
	if res := worker.work(t, "2026-11-20", "kill-1"); res.Status != lambda.StatusCurrent {
		t.Fatalf("the same build event again: %+v; want current (nothing done)", res)
	}
	localRun("2026-11-20", "2026-11-20", true)
	same("killed build invoked again")
	if out := worker.Output(); !strings.Contains(out, `"Namespace":"LittleWarehouse"`) || !strings.Contains(out, `"KeptRows":`) {
		t.Errorf("no EMF metrics in the build's output:\n%s", out)
	}

	// 2. rollup --dispatch lambda:<function> for one day: built there, the
	// windowed stage here.
	cliEnv(t, s3srv.url)
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", worker.URL)
	out := rollup(t, 0, "--dispatch", "lambda:function", "--from", "2026-11-21", "--to", "2026-11-21")
	if !strings.Contains(out, "2026-11-21 built by function") {
		t.Errorf("--dispatch lambda: printed %q", out)
	}
	localRun("2026-11-20", "2026-11-21", false)
	same("one day dispatched to the function")
	worker.Stop()

	// 3. rollup --dispatch sfn:<state machine>: one execution of the
	// nightly state machine, each Task on the emulators.
	front := startFunctions(t, rie, bootstrap, 2, env)
	api := sfntest.NewServer(t, machineARN, definition(), front.url)
	t.Setenv("AWS_ENDPOINT_URL_SFN", api.URL)
	// A state machine the account does not have, and a range for the
	// one-day dispatch: clear errors, nothing started.
	if out := rollup(t, 1, "--dispatch", "sfn:"+machineARN+"-typo", "--from", "2026-11-20", "--to", "2026-11-22"); out != "" {
		t.Errorf("--dispatch to an unknown state machine printed %q", out)
	}
	rollup(t, 2, "--dispatch", "lambda:function", "--from", "2026-11-20", "--to", "2026-11-22")
	out = rollup(t, 0, "--dispatch", "sfn:"+machineARN, "--from", "2026-11-20", "--to", "2026-11-22")
	for _, want := range []string{": done; 1 days planned, 1 built, 0 failed", "2026-11-22        ", "2026-11-20  up to date", "summary: _state/runs/"} {
		if !strings.Contains(out, want) {
			t.Errorf("--dispatch sfn: printed\n%s\nwant it to hold %q", out, want)
		}
	}
	localRun("2026-11-20", "2026-11-22", false)
	same("backfill through the state machine")

	// 4. The nightly scheduled event, as EventBridge starts an execution:
	// the 8 days that end the day before it, then the HTML report.
	ex := sfntest.Run(t, definition(), string(readFile(t, "../../testdata/lambda/scheduled-event.json")), "a2b9e0c4-nightly", front.url)
	sum := summaryOf(t, ex, s3st)
	if ex.Error != "" || sum.Status != lambda.RunDone || sum.Trigger != lambda.KindScheduled || sum.From != "2026-11-16" || sum.To != "2026-11-23" ||
		sum.Planned == 0 || sum.Built != sum.Planned {
		t.Fatalf("scheduled: %+v (%s %s)\n%s", sum, ex.Error, ex.Cause, ex.History())
	}
	t.Logf("the nightly execution's event log:\n%s", ex.History())
	localRun("2026-11-16", "2026-11-23", false)
	same("nightly scheduled event")
	if page, err := s3st.Get(ctx, lambda.HTMLReportKey); err != nil || sum.HTMLReport == nil || sum.HTMLReport.Error != "" ||
		len(page) != sum.HTMLReport.Bytes || !strings.Contains(string(page), "2026-11-23") {
		t.Errorf("HTML report: %+v, %v", sum.HTMLReport, err)
	}
	if ex.Count("StateEntered", infra.StateReport) != 1 {
		t.Errorf("the Report state ran %d times; want once (LW_REPORT=true)", ex.Count("StateEntered", infra.StateReport))
	}

	// The same event delivered again: nothing to do, nothing changes.
	ex = sfntest.Run(t, definition(), string(readFile(t, "../../testdata/lambda/scheduled-event.json")), "a2b9e0c4-again", front.url)
	if sum := summaryOf(t, ex, s3st); ex.Error != "" || sum.Status != lambda.RunDone || sum.Planned != 0 {
		t.Fatalf("scheduled again: %+v\n%s", sum, ex.History())
	}
	same("nightly event delivered twice")
}

// sameTables fails t unless the S3 store's curated partitions (and their
// manifests' contents) equal the local copy's byte for byte, and returns
// how many there are.
func sameTables(t *testing.T, local, s3st store.Store, step string) int {
	t.Helper()
	ctx := context.Background()
	from, to := mustDay(t, "2026-10-15"), mustDay(t, "2026-12-31")
	want, err := job.Snapshot(ctx, local, from, to)
	if err != nil {
		t.Fatal(err)
	}
	got, err := job.Snapshot(ctx, s3st, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 {
		t.Fatalf("%s: nothing published", step)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("%s: the Lambda's outputs differ from a local run's (-local +lambda):\n%s", step, diff)
	}
	return len(got)
}

// cliEnv points the AWS SDK of an in-process rollup at the S3 server.
func cliEnv(t *testing.T, s3URL string) {
	for k, v := range map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "SECRETTEST",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL_S3": s3URL} {
		t.Setenv(k, v)
	}
}

// rollup runs the rollup command in-process on the test's S3 store and
// returns what it printed; its exit code must be code.
func rollup(t *testing.T, code int, args ...string) string {
	t.Helper()
	var stdout, stderr strings.Builder
	args = append([]string{"--store", storeURL, "--catalog", "none", "--grace-period", "0", "--log", "text", "--quiet"}, args...)
	if got := cli.Main(context.Background(), args, &stdout, &stderr); got != code {
		t.Fatalf("rollup %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), got, code, stdout.String(), stderr.String())
	}
	if code == 1 && !strings.Contains(stderr.String(), "StateMachineDoesNotExist") {
		t.Errorf("rollup %s: stderr %q; want the API's error named", strings.Join(args, " "), stderr.String())
	}
	t.Logf("rollup %s:\n%s%s", strings.Join(args, " "), stderr.String(), stdout.String())
	return stdout.String()
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
	// fail, if set, answers the requests it returns a status for with
	// that status and S3 error code instead of serving them (called with
	// f.mu held).
	fail func(*http.Request) (status int, code string)
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
		if f.fail != nil {
			if status, code := f.fail(r); status != 0 {
				f.mu.Unlock()
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(status)
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by the test</Message></Error>`, code)
				return
			}
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

// work invokes the build stage for one day; it must succeed.
func (e emulator) work(t *testing.T, d, run string) *lambda.WorkerResult {
	t.Helper()
	b, _ := json.Marshal(lambda.StageEvent{Stage: lambda.StageBuild, Day: d, Run: run})
	status, body := e.Invoke(t, b)
	var res lambda.WorkerResult
	if err := json.Unmarshal([]byte(body), &res); err != nil || status != http.StatusOK || res.Status == "" {
		t.Fatalf("build %s: HTTP %d %s", d, status, body)
	}
	return &res
}

// fails invokes the build stage for one day; it must fail, and fails
// returns the error's type and message.
func (e emulator) fails(t *testing.T, d, run string) (errType, msg string) {
	t.Helper()
	b, _ := json.Marshal(lambda.StageEvent{Stage: lambda.StageBuild, Day: d, Run: run})
	_, body := e.Invoke(t, b)
	var res struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil || res.ErrorType == "" {
		t.Fatalf("build %s: answered %s; want an error", d, body)
	}
	return res.ErrorType, res.ErrorMessage
}
