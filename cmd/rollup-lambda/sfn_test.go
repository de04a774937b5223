package main

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/infra"
	"github.com/littlewarehouse/warehouse/internal/gen"
	"github.com/littlewarehouse/warehouse/internal/lambda"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/publish"
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
		if !strings.Contains(r.URL.Path, "/"+lease.Prefix) {
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
		t.Fatalf("summary: status %s, %d planned, %d built, %d failed; want partial, 5, 4, 1", sum.Status, sum.Planned, sum.Built, sum.Failed)
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
