package lambda

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

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

// TestHTMLReport: with LW_REPORT=true, the start tells the state machine
// to run the report stage, which writes the HTML report of what the run
// built to reports/latest.html; the summary and the metrics say so. A
// report that cannot be written does not fail the stage or the run, says
// why, and leaves the previous report in place.
func TestHTMLReport(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.cfg.HTMLReport = true
	var emf bytes.Buffer
	now := time.Date(2026, 11, 23, 2, 7, 0, 0, time.UTC)
	f.h = f.handler(t, Deps{Metrics: metrics.New(&emf, ""), Now: func() time.Time { return now }})
	s := runStages(t, f.h, backfill, stageHooks{})
	sum := s.summary
	if !s.start.Report || sum.Status != RunDone || sum.Built != 4 || !sum.StartedAt.Equal(now) {
		t.Fatalf("start %+v, summary: %+v", s.start, sum)
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
	for _, want := range []string{`id="tz">UTC `, "2026-11-23 02:07 UTC"} { // the time zone; Deps.Now
		if !strings.Contains(html, want) {
			t.Errorf("report does not contain %q", want)
		}
	}
	// data_quality_daily's row of a built day shows the rows its build kept.
	var kept int64
	for _, d := range sum.Days {
		if d.Day == "2026-11-20" && d.Worker != nil && d.Worker.Stats != nil {
			kept = d.Worker.Stats.KeptRows
		}
	}
	i := strings.Index(html, `id="t-quality"`)
	if i < 0 {
		t.Fatal("no data quality table in the report")
	}
	row := regexp.MustCompile(`<tr><td>2026-11-20</td>.*?</tr>`).FindString(html[i:])
	if kept < 100 || kept > 999 || !strings.Contains(row, `<td class="num">`+strconv.FormatInt(kept, 10)+`</td>`) {
		t.Errorf("data quality row of 2026-11-20 does not show the %d rows kept: %s", kept, row)
	}
	if !strings.Contains(emf.String(), `"HTMLReportFailures":0`) {
		t.Errorf("no HTMLReportFailures 0 in the metrics:\n%s", emf.String())
	}

	// The report cannot be written: the stage answers why, without an
	// error; the run is done all the same; the previous report stays.
	emf.Reset()
	h := f.handler(t, Deps{Store: failingReportPut{f.reads}, Metrics: metrics.New(&emf, ""), Now: func() time.Time { return now }})
	res, err := call[HTMLReportResult](t, ctx, h, StageEvent{Stage: StageReport, Run: s.start.Run})
	if err != nil || !strings.Contains(res.Error, errInjected.Error()) || !strings.Contains(res.Error, HTMLReportKey) || res.Bytes != 0 || res.Key != HTMLReportKey {
		t.Fatalf("report stage with a failing put: %+v, %v", res, err)
	}
	fin, err := call[FinishResult](t, ctx, h, StageEvent{Stage: StageFinish, Run: s.start.Run})
	if err != nil || fin.Status != RunDone {
		t.Fatalf("finish: %+v, %v", fin, err)
	}
	if r := readSummary(t, f.st, s.start.Run).HTMLReport; r == nil || r.Error != res.Error {
		t.Errorf("stored summary's report: %+v; want %q", r, res.Error)
	}
	if !strings.Contains(emf.String(), `"HTMLReportFailures":1`) {
		t.Errorf("no HTMLReportFailures 1 in the metrics:\n%s", emf.String())
	}
	if again, err := f.st.Get(ctx, HTMLReportKey); err != nil || !bytes.Equal(again, page) {
		t.Errorf("the previous report changed: %v", err)
	}
}
