package job

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/rollups"
)

// dimDate brings dim_date up to date with built: every day of
// rollups.DimDateSpan(built), built or not, has a partition of one row,
// republished when the row changes (its fingerprint is the row: a day
// turning built or final changes it); a partition with rows of a day
// outside the span is withdrawn (republished empty). Every partition it
// covers is listed in ws.Partitions, to register.
func (w *windowed) dimDate(ctx context.Context, run string, built rollups.Built, ws *WindowedSummary, opt publish.WriterOptions) error {
	table := rollups.DimDateTable.Name
	from, to, ok := rollups.DimDateSpan(built)
	if ok {
		for d := from; d <= to; d++ {
			r := rollups.DimDateOf(d, built)
			sum := sha256.Sum256(fmt.Appendf(nil, "code=%s table=%s %+v", CodeVersion, table, r))
			fp := hex.EncodeToString(sum[:])
			stale, err := w.stale(ctx, table, d, fp)
			if err != nil {
				return err
			}
			if stale {
				if _, err := w.publishWindowed(ctx, run, table, d, fp, []rollups.DimDate{r}, opt, false); err != nil {
					return err
				}
				ws.Dates++
			} else {
				ws.UpToDate++
			}
			ws.Partitions = append(ws.Partitions, Partition{table, d})
		}
	}
	inSpan := func(d day.Day) bool { return ok && d >= from && d <= to }
	return w.withdrawTable(ctx, run, table, inSpan, []rollups.DimDate{}, ws, opt)
}
