package lambda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/metrics"
	"github.com/littlewarehouse/warehouse/internal/store"
)

var errInjected = errors.New("injected put failure")

// failingReportPut is a store whose Put under reports/ fails.
type failingReportPut struct{ store.Store }

func (s failingReportPut) Put(ctx context.Context, key string, data []byte) error {
	if strings.HasPrefix(key, "reports/") {
		return errInjected
	}
	return s.Store.Put(ctx, key, data)
}

// TestHTMLReport: with LW_REPORT=true, the coordinator's run writes the
// HTML report of what it built to reports/latest.html and says so in its
// summary and metrics; a report that cannot be written leaves the run done
// and the previous report in place; a failed run writes no report.
func TestHTMLReport(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	cfg, err := ConfigFromEnv(env(map[string]string{
		EnvRole: RoleCoordinator, EnvStore: "/unused", EnvWorkerFunction: "rollup-worker", EnvReport: "true",
	}))
	if err != nil {
		t.Fatal(err)
	}
	var emf bytes.Buffer
	now := time.Date(2026, 11, 23, 2, 7, 0, 0, time.UTC)
	workers := &asyncWorkers{env: f.env, timeout: time.Minute}
	h, err := NewHandler(ctx, cfg, Deps{
		Store: f.st, Invoker: workers, Metrics: metrics.New(&emf, ""),
		Options: Options{Now: func() time.Time { return now }},
	})
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, err := h.Handle(cctx, json.RawMessage(`{"from":"2026-11-19","to":"2026-11-22"}`))
	workers.wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	sum := res.(*RunSummary)
	if sum.Status != RunDone || sum.Built != 4 {
		t.Fatalf("summary: %+v", sum)
	}
	if r := sum.HTMLReport; r == nil || r.Key != HTMLReportKey || r.Error != "" || r.Bytes == 0 {
		t.Fatalf("summary's report: %+v", r)
	}

	page, err := f.st.Get(ctx, HTMLReportKey)
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	if len(page) != sum.HTMLReport.Bytes || !strings.HasPrefix(html, "<!DOCTYPE html>") || !strings.HasSuffix(strings.TrimSpace(html), "</html>") {
		t.Errorf("%s: %d bytes (summary says %d), not a whole HTML page: %.100q", HTMLReportKey, len(page), sum.HTMLReport.Bytes, html)
	}
	for _, want := range []string{`id="tz">UTC `, "2026-11-23 02:07 UTC"} { // the time zone; Options.Now
		if !strings.Contains(html, want) {
			t.Errorf("report does not contain %q", want)
		}
	}
	// data_quality_daily's row of a built day shows the rows its worker kept.
	var kept int64
	for _, d := range sum.Days {
		if d.Day == "2026-11-20" && d.Worker != nil && d.Worker.Stats != nil {
			kept = d.Worker.Stats.KeptRows
		}
	}
	row := regexp.MustCompile(`<tr><td>2026-11-20</td>.*?</tr>`).FindString(html[strings.Index(html, `id="t-quality"`):])
	if kept < 100 || kept > 999 || !strings.Contains(row, `<td class="num">`+strconv.FormatInt(kept, 10)+`</td>`) {
		t.Errorf("data quality row of 2026-11-20 does not show the %d rows kept: %s", kept, row)
	}

	b, err := f.st.Get(ctx, SummaryKey(sum.Run))
	if err != nil {
		t.Fatal(err)
	}
	var stored RunSummary
	if err := json.Unmarshal(b, &stored); err != nil || stored.HTMLReport == nil || stored.HTMLReport.Key != HTMLReportKey {
		t.Errorf("stored summary's report: %+v, %v", stored.HTMLReport, err)
	}
	if !strings.Contains(emf.String(), `"HTMLReportFailures":0`) {
		t.Errorf("no HTMLReportFailures 0 in the metrics:\n%s", emf.String())
	}

	// The report cannot be written: the run is done all the same, and
	// says why; the previous report stays.
	emf.Reset()
	jc := f.env.jobConfig(mustDay(t, "2026-11-19"), mustDay(t, "2026-11-22"))
	jc.Store = failingReportPut{f.st}
	sum, err = Coordinate(ctx, jc, workers, Options{HTMLReport: true, Metrics: metrics.New(&emf, "")})
	if err != nil || sum.Status != RunDone {
		t.Fatalf("run with a failing report: %+v, %v", sum, err)
	}
	if r := sum.HTMLReport; r == nil || !strings.Contains(r.Error, errInjected.Error()) || !strings.Contains(r.Error, HTMLReportKey) || r.Bytes != 0 {
		t.Errorf("summary's report: %+v", r)
	}
	b, err = f.st.Get(ctx, SummaryKey(sum.Run))
	if err != nil || !strings.Contains(string(b), errInjected.Error()) {
		t.Errorf("stored summary does not say why the report was not written: %s, %v", b, err)
	}
	if !strings.Contains(emf.String(), `"HTMLReportFailures":1`) {
		t.Errorf("no HTMLReportFailures 1 in the metrics:\n%s", emf.String())
	}
	if again, err := f.st.Get(ctx, HTMLReportKey); err != nil || !bytes.Equal(again, page) {
		t.Errorf("the previous report changed: %v", err)
	}

	// A failed run writes no report.
	failing := RegistrarFunc(func(context.Context, job.Config, *job.WindowedSummary) error { return errInjected })
	sum, err = Coordinate(ctx, f.env.jobConfig(mustDay(t, "2026-11-19"), mustDay(t, "2026-11-22")), workers,
		Options{HTMLReport: true, Registrar: failing, Now: func() time.Time { return now.Add(time.Hour) }})
	if err == nil || sum.Status != RunFailed || sum.HTMLReport != nil {
		t.Errorf("failed run: %+v, %v", sum, err)
	}
	if again, err := f.st.Get(ctx, HTMLReportKey); err != nil || !bytes.Equal(again, page) {
		t.Errorf("a failed run changed the report: %v", err)
	}
}
