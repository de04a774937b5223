package lambda

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/littlewarehouse/warehouse/internal/report"
)

// HTMLReportKey is where the report stage writes the HTML report
// (LW_REPORT). Each run replaces it; older reports are
// not kept.
const HTMLReportKey = "reports/latest.html"

// htmlReportReserve is kept free before the invocation's deadline, for
// the run summary, when the report is rendered.
const htmlReportReserve = 20 * time.Second

// HTMLReportResult is what writing the HTML report did: the key and size
// written, or the error that stopped it (then nothing was written and the
// previous report, if any, is left in place).
type HTMLReportResult struct {
	Key     string  `json:"key"`
	Bytes   int     `json:"bytes,omitempty"`
	Seconds float64 `json:"seconds"`
	Error   string  `json:"error,omitempty"`
}

// writeHTMLReport renders the HTML report of the store's curated tables
// into memory and Puts it at HTMLReportKey. A failure is logged and
// returned in the result, never as an error: the report is a by-product of
// the run. It stops htmlReportReserve before ctx's deadline, leaving time
// for the summary.
func writeHTMLReport(ctx context.Context, env *Env, log *slog.Logger) *HTMLReportResult {
	start := time.Now()
	res := &HTMLReportResult{Key: HTMLReportKey}
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline.Add(-htmlReportReserve))
		defer cancel()
	}
	var buf bytes.Buffer
	err := report.Write(ctx, env.Store, &buf, report.Options{Now: env.Deps.Now})
	if err == nil {
		err = env.Store.Put(ctx, HTMLReportKey, buf.Bytes())
	}
	res.Seconds = time.Since(start).Seconds()
	if err != nil {
		res.Error = fmt.Sprintf("HTML report %s: %v", HTMLReportKey, err)
		log.Warn("HTML report not written; the run goes on", "key", HTMLReportKey, "error", res.Error)
		return res
	}
	res.Bytes = buf.Len()
	log.Info("HTML report written", "key", HTMLReportKey, "bytes", res.Bytes, "seconds", res.Seconds)
	return res
}
