package raw

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
)

// mixedRow has every kind of column the reader meets: required and
// optional strings, dictionary-encoded or plain, optional times and an
// optional map.
type mixedRow struct {
	EventID    *string           `parquet:"event_id,optional"`
	EventTime  *int64            `parquet:"event_time,optional,timestamp(millisecond)"`
	ReceivedAt int64             `parquet:"received_at,timestamp(microsecond)"`
	EventName  string            `parquet:"event_name,dict"`
	UserID     *string           `parquet:"user_id,optional"`
	DeviceID   *string           `parquet:"device_id,optional,dict"`
	SessionID  *string           `parquet:"session_id,optional"`
	Product    string            `parquet:"product,dict"`
	Country    *string           `parquet:"country,optional,dict"`
	Properties map[string]string `parquet:"properties,optional"`
}

// TestReadColumnsMatchesRows: random objects written with small pages and
// row groups, dictionary-encoded and plain columns, nulls and invalid
// UTF-8 read back exactly as the rows written, under Row's rules.
func TestReadColumnsMatchesRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	str := func(prefix string, n int) string {
		s := fmt.Sprintf("%s%d", prefix, rng.IntN(n))
		if rng.IntN(40) == 0 {
			s += "\xff\xfe" // invalid UTF-8
		}
		return s
	}
	opt := func(prefix string, n int) *string {
		if rng.IntN(4) == 0 {
			return nil
		}
		s := str(prefix, n)
		return &s
	}
	val := func(p *string) (string, bool) {
		if p == nil {
			return "", false
		}
		return fix(*p)
	}
	for trial := range 20 {
		n := 1 + rng.IntN(3000)
		in := make([]mixedRow, n)
		want := make([]Row, n)
		for i := range in {
			r := mixedRow{EventID: opt("e", 1<<30), ReceivedAt: int64(rng.IntN(1e9)) * 1000,
				EventName: str("name", 5), UserID: opt("u", 300), DeviceID: opt("d", 50), SessionID: opt("s", 1000),
				Product: str("p", 3), Country: opt("c", 4)}
			if rng.IntN(3) > 0 {
				et := int64(rng.IntN(1e12))
				r.EventTime = &et
			}
			if rng.IntN(3) > 0 {
				r.Properties = map[string]string{}
				for range rng.IntN(5) {
					r.Properties[str("k", 6)] = str("v", 20)
				}
			}
			in[i] = r
			w := Row{ReceivedAt: r.ReceivedAt / 1000, HasReceivedAt: true, Source: "k"}
			var bad [9]bool
			w.EventID, bad[0] = val(r.EventID)
			w.EventName, bad[1] = fix(r.EventName)
			w.UserID, bad[2] = val(r.UserID)
			w.DeviceID, bad[3] = val(r.DeviceID)
			w.SessionID, bad[4] = val(r.SessionID)
			w.Product, bad[5] = fix(r.Product)
			w.Country, bad[6] = val(r.Country)
			if r.EventTime != nil {
				w.EventTime, w.HasEventTime = *r.EventTime, true
			}
			if len(r.Properties) > 0 {
				w.Properties = map[string]string{}
				for k, v := range r.Properties {
					fk, rk := fix(k)
					fv, rv := fix(v)
					// Keys equal once repaired: either value may win in
					// a Go map's order; the test keeps such maps out.
					if _, dup := w.Properties[fk]; dup {
						delete(r.Properties, k)
						continue
					}
					w.Properties[fk] = fv
					bad[7] = bad[7] || rk || rv
				}
			}
			for _, b := range bad {
				w.InvalidUTF8 = w.InvalidUTF8 || b
			}
			want[i] = w
		}
		b := writeParquet(t, in, parquet.PageBufferSize(1+rng.IntN(4096)), parquet.MaxRowsPerRowGroup(int64(1+rng.IntN(1000))))
		got, err := ReadFrom(strings.NewReader(string(b)), int64(len(b)), "k")
		if err != nil {
			t.Fatalf("trial %d: %v", trial, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("trial %d (%d rows): rows (-want +got):\n%s", trial, n, diff)
		}
	}
}

func fix(s string) (string, bool) {
	v := strings.ToValidUTF8(s, "\uFFFD")
	return v, v != s
}

// TestColumnsOfRoundTrips: ColumnsOf and Rows are inverses.
func TestColumnsOfRoundTrips(t *testing.T) {
	rows := []Row{
		{EventID: "a", EventName: "x", UserID: "u", ReceivedAt: 5, HasReceivedAt: true, Source: "s",
			Properties: map[string]string{"b": "1", "a": "2", "": "3"}},
		{EventID: "", DeviceID: "d", EventTime: 3, HasEventTime: true, InvalidUTF8: true, Source: "s"},
	}
	if diff := cmp.Diff(rows, ColumnsOf(rows).Rows()); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}
