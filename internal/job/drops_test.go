package job

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/day"
	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/publish"
	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/rollups"
)

// rawKey is a Firehose-style key in arrival hour h.
func rawKey(h time.Time, name string) string {
	return "raw/" + h.UTC().Format("2006/01/02/15") + "/events-1-" + h.UTC().Format("2006-01-02-15-04-05") + "-" + name
}

// TestNothingDroppedSilently: every raw row read counts on some day or is
// quarantined with a reason, and everything not read is named (docs/design.md §The invariant):
//   - rows delivered long after they were received (a Firehose retry),
//     whose object arrives after the old planning window of their day;
//   - rows whose received_at is in 2099 or 1970;
//   - objects named _* or .*, or outside the YYYY/MM/DD/HH/ layout;
//   - a raw-errors object with a line longer than 16 MB before two records;
//   - a late object for a day before the run's range.
func TestNothingDroppedSilently(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenDir(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	d0 := time.Date(2026, 6, 10, 0, 0, 0, 0, time.UTC)
	ev := func(id string, at, received time.Time) event.Raw {
		return event.Raw{EventID: id, EventTime: at, ReceivedAt: received, EventName: "open", UserID: "u-" + id, Product: "app", Platform: "web"}
	}
	total := 0
	put := func(h time.Time, name string, rows ...event.Raw) {
		writeRaw(t, st, rawKey(h, name), rows)
		total += len(rows)
	}
	// Ordinary rows of d0.
	put(d0.Add(13*time.Hour), "a", ev("a1", d0.Add(12*time.Hour), d0.Add(12*time.Hour+time.Minute)), ev("a2", d0.Add(12*time.Hour), d0.Add(12*time.Hour+2*time.Minute)))
	// An event of d0 sent a week late (within max lateness) and delivered
	// 20 hours after the collector received it: its object arrives
	// d0 + 8 days 7 hours, past d0's end + max lateness + 2 h.
	at := d0.Add(12 * time.Hour)
	received := at.Add(7*24*time.Hour - time.Hour)
	put(received.Add(20*time.Hour).Truncate(time.Hour), "retried", ev("late-1", at, received))
	// Collector clocks in 2099 and 1970: quarantined on the arrival day.
	arr := d0.Add(15 * time.Hour)
	put(arr, "clocks", ev("future", arr, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)), ev("past", arr, time.Unix(1, 0)))
	// Not data by name, and not in the hourly layout (anywhere under raw/).
	notRead := []string{
		"raw/" + d0.Add(13*time.Hour).Format("2006/01/02/15") + "/.inflight",
		"raw/" + d0.Add(13*time.Hour).Format("2006/01/02/15") + "/_SUCCESS",
		"raw/2026/13/45/00/events-1-misdated",
		"raw/notes/readme.txt",
	}
	for _, k := range notRead {
		if err := st.Put(ctx, k, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	// A raw-errors object whose first line is longer than 16 MB.
	var errs bytes.Buffer
	errs.WriteString(`{"rawData":"` + strings.Repeat("A", 17<<20) + `","errorCode":"Too.Big","arrivalTimestamp":` + fmt.Sprint(arr.UnixMilli()) + "}\n")
	for i := range 2 {
		fmt.Fprintf(&errs, `{"rawData":"e30=","attemptsMade":1,"arrivalTimestamp":%d,"lastErrorCode":"DataFormatConversion.Malformed","lastErrorMessage":"bad %d"}`+"\n", arr.UnixMilli(), i)
	}
	if err := st.Put(ctx, "raw-errors/format-conversion-failed/"+arr.Format("2006/01/02/15")+"/errs-1", errs.Bytes()); err != nil {
		t.Fatal(err)
	}

	from, to := day.FromDate(2026, 6, 10), day.FromDate(2026, 6, 19)
	sum, err := Run(ctx, Config{Store: st, From: from, To: to, Rules: compact.DefaultRules(time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	var raw, failed int64
	for _, d := range sum.Days {
		raw += d.Quality.RawRows
		failed += d.Quality.ConversionFailedRecords
	}
	if raw != int64(total) {
		t.Errorf("raw_rows over the days = %d, want every row written (%d)", raw, total)
	}
	if failed != 3 {
		t.Errorf("conversion_failed_records = %d, want 3 (the over-long line and the two after it)", failed)
	}
	q := readRows[rollups.Quarantine](t, st, "quarantine", from)
	var implausible []string
	for _, r := range q {
		if r.Reason == compact.ReasonImplausibleReceivedAt {
			implausible = append(implausible, r.EventID)
		}
	}
	slices.Sort(implausible)
	if !slices.Equal(implausible, []string{"future", "past"}) {
		t.Errorf("quarantined for received_at on %s: %v, want future and past", from, implausible)
	}
	ev0 := readRows[rollups.Event](t, st, "events", from)
	if !slices.ContainsFunc(ev0, func(e rollups.Event) bool { return e.EventID == "late-1" }) {
		t.Errorf("the late, retried event is not in %s's events", from)
	}
	slices.Sort(sum.IgnoredKeys)
	slices.Sort(notRead)
	if !slices.Equal(sum.IgnoredKeys, notRead) {
		t.Errorf("objects named as not read: %v, want %v", sum.IgnoredKeys, notRead)
	}

	// A late object for d0 arrives; a run of later days reads it (its
	// rows of the next day) and names d0 as built without it.
	put(d0.Add(30*time.Hour), "late-for-d0", ev("b1", d0.Add(20*time.Hour), d0.Add(29*time.Hour)), ev("b2", d0.Add(29*time.Hour), d0.Add(29*time.Hour)))
	sum, err = Run(ctx, Config{Store: st, From: from + 1, To: from + 1, Rules: compact.DefaultRules(time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Earlier) != 1 || sum.Earlier[0].Day != from || sum.Earlier[0].Why != "built without them" {
		t.Errorf("earlier days %+v, want %s built without the late object", sum.Earlier, from)
	}
}

// readRows reads the current partition of table on day d.
func readRows[T any](t *testing.T, st store.Store, table string, d day.Day) []T {
	t.Helper()
	ctx := context.Background()
	m, err := publish.Current(ctx, st, table, d)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for _, f := range m.Files {
		b, err := st.Get(ctx, f.Key)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := parquetRead[T](b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rows...)
	}
	return out
}

func parquetRead[T any](b []byte) ([]T, error) {
	return parquet.Read[T](bytes.NewReader(b), int64(len(b)))
}
