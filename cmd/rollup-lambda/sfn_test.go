package main

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/infra"
	"github.com/littlewarehouse/warehouse/internal/cli"
	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/erasure"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/lambda"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/raw"
	"github.com/littlewarehouse/warehouse/internal/rietest"
	"github.com/littlewarehouse/warehouse/internal/sfntest"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// TestStateMachineRetriesAndFailures runs a backfill through the nightly
// state machine (aws-local-stepfunctions, every Task on the emulators)
// while S3 throttles the build of one day twice (503 SlowDown on its
// lease) and denies another day's for good (403 AccessDenied). The
// throttled day is retried by the state machine and published; the denied
// day is caught as a failed day, without retries, while every other day
// publishes; the summary says so, and the execution ends failed (NotDone)
// for the alarm on failed executions.
func TestStateMachineRetriesAndFailures(t *testing.T) {
	rietest.Skip(t)
	sfntest.Skip(t)
	d1 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	bootstrap, rie, s3srv, s3st, _ := setUp(t, gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 2), EventsPerDay: 1500, ObjectsPerHour: 1, Seed: 5}))
	// AWS_MAX_ATTEMPTS=1: the SDK does not retry inside an invocation, so
	// each injected error fails one invocation.
	front := startFunctions(t, rie, bootstrap, 2, functionEnv(s3srv.url, "LW_PARALLEL=2", "AWS_MAX_ATTEMPTS=1"))
	sfntest.Install(t)

	const throttled, denied = "2026-11-21", "2026-11-22"
	slowDowns := 0
	s3srv.mu.Lock()
	s3srv.fail = func(r *http.Request) (int, string) {
		// The days' leases of the daily tables (not the windowed stage's).
		if !strings.Contains(r.URL.Path, "/"+lease.Prefix) || !slices.ContainsFunc(rollups.Daily, func(t rollups.Table) bool {
			return strings.Contains(r.URL.Path, "/"+lease.Prefix+t.Name+"/")
		}) {
			return 0, ""
		}
		switch {
		case strings.Contains(r.URL.Path, "dt="+throttled) && slowDowns < 2:
			slowDowns++
			return http.StatusServiceUnavailable, "SlowDown"
		case strings.Contains(r.URL.Path, "dt="+denied):
			return http.StatusForbidden, "AccessDenied"
		}
		return 0, ""
	}
	s3srv.mu.Unlock()

	ex := sfntest.Run(t, definition(), `{"from":"2026-11-19","to":"2026-11-23"}`, "failures", front.url)
	t.Logf("event log:\n%s", ex.History())
	sum := summaryOf(t, ex, s3st)

	if last := ex.Events[len(ex.Events)-1]; ex.Error == "" || last.Type != "ExecutionFailed" || last.Error != "RunNotDone" {
		t.Errorf("the execution ended with %s %s; want it failed with RunNotDone, as a night with a failed day does", last.Type, last.Error)
	}
	if slowDowns != 2 {
		t.Errorf("%d throttled requests; want 2", slowDowns)
	}
	if n := ex.Count("StateRetried", infra.StateBuildDay); n != 2 {
		t.Errorf("%d retries of a day; want 2 (the throttled day's)", n)
	}
	failedWith := map[string]int{}
	for _, ev := range ex.Events {
		if ev.Type == "StateFailed" && ev.State != nil && ev.State.Name == infra.StateBuildDay {
			failedWith[ev.Error]++
		}
	}
	if failedWith[infra.ErrorRetryable] != 2 || failedWith[infra.ErrorPermanent] != 1 || len(failedWith) != 2 {
		t.Errorf("BuildDay failures by error: %v; want 2 RetryableError (then success) and 1 PermanentError (not retried)", failedWith)
	}
	if n := ex.Count("StateCaught", infra.StateBuildDay); n != 1 {
		t.Errorf("%d failed days caught; want 1", n)
	}

	if sum.Status != lambda.RunPartial || sum.Planned != 5 || sum.Built != 4 || sum.Failed != 1 {
		t.Fatalf("summary: status %s (%s), %d planned, %d built, %d failed; want partial, 5, 4, 1", sum.Status, sum.Error, sum.Planned, sum.Built, sum.Failed)
	}
	ctx := context.Background()
	for _, r := range sum.Days {
		d := mustDay(t, r.Day)
		_, err := publish.Current(ctx, s3st, rollups.Daily[0].Name, d)
		switch r.Day {
		case denied:
			if r.Status != lambda.DayFailed || !strings.Contains(r.Error, "AccessDenied") {
				t.Errorf("%s: %+v; want failed, saying AccessDenied", r.Day, r)
			}
			if !errors.Is(err, store.ErrNotExist) {
				t.Errorf("%s failed and is published (%v)", r.Day, err)
			}
		default:
			if r.Status != lambda.DayBuilt || err != nil {
				t.Errorf("%s: %+v, published: %v; want built", r.Day, r, err)
			}
		}
	}
	if sum.Windowed == nil {
		t.Error("no windowed stage after a failed day; want the others' windowed tables")
	}
}

// TestEraseThroughTheStateMachine: a request recorded with rollup erase is
// carried out by the next execution's first state (Erase), before any raw
// object is listed: its receipt is written, the scan found none of the
// person's rows, no raw object holds their id any more, and the tables
// equal a local run that erased the same person.
func TestEraseThroughTheStateMachine(t *testing.T) {
	rietest.Skip(t)
	sfntest.Skip(t)
	ctx := context.Background()
	d1 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	bootstrap, rie, s3srv, s3st, local := setUp(t, gen.Nasty(gen.Config{From: d1, To: d1.AddDate(0, 0, 2), EventsPerDay: 1500, ObjectsPerHour: 1, Users: 40, Seed: 9}))
	front := startFunctions(t, rie, bootstrap, 2, functionEnv(s3srv.url, "LW_PARALLEL=2"))
	sfntest.Install(t)
	input := `{"from":"2026-11-19","to":"2026-11-23"}`
	if ex := sfntest.Run(t, definition(), input, "build", front.url); ex.Error != "" {
		t.Fatalf("first execution: %s %s\n%s", ex.Error, ex.Cause, ex.History())
	}

	// Someone with events in the data.
	objs, err := s3st.List(ctx, "raw/")
	if err != nil {
		t.Fatal(err)
	}
	user := ""
	for _, o := range objs {
		rows, err := raw.Read(ctx, s3st, o.Key)
		if err != nil {
			continue
		}
		for _, r := range rows {
			if r.UserID != "" {
				user = r.UserID
				break
			}
		}
		if user != "" {
			break
		}
	}
	if user == "" {
		t.Fatal("no user_id in the raw data")
	}
	cliEnv(t, s3srv.url)
	var stdout, stderr strings.Builder
	if code := cli.Main(ctx, []string{"erase", "--store", storeURL, "--user", user}, &stdout, &stderr); code != 0 {
		t.Fatalf("rollup erase: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	req, err := erasure.List(ctx, s3st)
	if err != nil || len(req) != 1 || req[0].Done() {
		t.Fatalf("requests: %+v, %v; want one pending", req, err)
	}

	// While S3 denies the erasure requests' folder, the Erase state fails
	// for good: the night builds without it, says why, and ends NotDone
	// (the alarm); the request stays pending.
	s3srv.mu.Lock()
	s3srv.fail = func(r *http.Request) (int, string) {
		if strings.Contains(r.URL.Path, "/_state/erasure") || strings.Contains(r.URL.RawQuery, "_state%2Ferasure") {
			return http.StatusForbidden, "AccessDenied"
		}
		return 0, ""
	}
	s3srv.mu.Unlock()
	ex := sfntest.Run(t, definition(), input, "erase-denied", front.url)
	sum := summaryOf(t, ex, s3st)
	if ex.Count("StateCaught", infra.StateErase) != 1 || sum.Status != lambda.RunPartial || !strings.Contains(sum.EraseError, "AccessDenied") {
		t.Fatalf("erase denied: summary status %s, erase error %q\n%s", sum.Status, sum.EraseError, ex.History())
	}
	if last := ex.Events[len(ex.Events)-1]; last.Type != "ExecutionFailed" || last.Error != "RunNotDone" {
		t.Errorf("a night whose erase failed ended with %s %s; want RunNotDone", last.Type, last.Error)
	}
	s3srv.mu.Lock()
	s3srv.fail = nil
	s3srv.mu.Unlock()
	if req, err := erasure.List(ctx, s3st); err != nil || len(req) != 1 || req[0].Done() {
		t.Fatalf("requests after the denied erase: %+v, %v; want one pending", req, err)
	}

	ex = sfntest.Run(t, definition(), input, "erase", front.url)
	if ex.Error != "" {
		t.Fatalf("second execution: %s %s\n%s", ex.Error, ex.Cause, ex.History())
	}
	if ex.Count("StateExited", infra.StateErase) != 1 || ex.Count("StateCaught", infra.StateErase) != 0 || ex.Events[2].State.Name != infra.StateErase {
		t.Fatalf("the Erase state did not run first and well:\n%s", ex.History())
	}
	req, err = erasure.List(ctx, s3st)
	if err != nil || len(req) != 1 || !req[0].Done() {
		t.Fatalf("requests after the execution: %+v, %v; want one done", req, err)
	}
	rc := req[0].Receipt
	if rc.Verification.RowsFound != 0 || rc.RowsRemoved["raw"] == 0 || len(rc.DaysRebuilt) == 0 {
		t.Fatalf("receipt: %+v; want rows removed, days rebuilt, none found after", rc)
	}
	objs, _ = s3st.List(ctx, "raw/")
	for _, o := range objs {
		rows, err := raw.Read(ctx, s3st, o.Key)
		if err != nil {
			continue // a bad object of the nasty data: the receipt names it unsearchable
		}
		for _, r := range rows {
			if r.UserID == user {
				t.Errorf("%s still holds a row of the erased user", o.Key)
				break
			}
		}
	}

	// The same on a local copy: a run, the erase, a run.
	if _, err := job.Run(ctx, job.Config{Store: local, From: mustDay(t, "2026-11-19"), To: mustDay(t, "2026-11-23"), Rules: compact.DefaultRules(time.UTC)}); err != nil {
		t.Fatal(err)
	}
	if _, err := erasure.Record(ctx, local, "", []string{user}, time.Now()); err != nil {
		t.Fatal(err)
	}
	lcfg := job.Config{Store: local, From: mustDay(t, "2026-11-19"), To: mustDay(t, "2026-11-23"), Rules: compact.DefaultRules(time.UTC)}
	if _, err := job.Erase(ctx, lcfg); err != nil {
		t.Fatal(err)
	}
	if _, err := job.Run(ctx, lcfg); err != nil {
		t.Fatal(err)
	}
	sameTables(t, local, s3st, "after the erase")
}
