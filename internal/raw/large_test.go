package raw

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/event"
)

// dictRow is event.Raw with every string column dictionary-encoded, as
// Firehose's converter (parquet-mr) writes strings.
type dictRow struct {
	EventID    string            `parquet:"event_id,optional"`
	EventTime  time.Time         `parquet:"event_time,optional,timestamp(millisecond)"`
	ReceivedAt time.Time         `parquet:"received_at,optional,timestamp(millisecond)"`
	EventName  string            `parquet:"event_name,optional,dict"`
	UserID     string            `parquet:"user_id,optional,dict"`
	DeviceID   string            `parquet:"device_id,optional,dict"`
	Product    string            `parquet:"product,optional,dict"`
	Properties map[string]string `parquet:"properties,optional" parquet-key:",dict" parquet-value:",dict"`
}

func (r dictRow) raw() event.Raw {
	return event.Raw{EventID: r.EventID, EventTime: r.EventTime, ReceivedAt: r.ReceivedAt, EventName: r.EventName,
		UserID: r.UserID, DeviceID: r.DeviceID, Product: r.Product, Properties: r.Properties}
}

// TestLargeValues: a row holding a string of more than the 1 MiB a page
// header used to be allowed (its statistics hold the value twice) is read,
// as DuckDB reads it; the object is never refused for it. A value of up to
// MaxValueBytes is kept whole. A row with a longer value (in any column, a
// property key or value, the event id, or once its invalid UTF-8 is
// repaired) is read with that value cut and TooLarge naming it; every
// other row is read as written. Before, the object was corrupt
// ("page 0 header: thrift: 614400 elements claimed, 434124 bytes left")
// and none of its rows were used.
func TestLargeValues(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	big := func(c string, n int) string { return strings.Repeat(c, n) }
	var in []dictRow
	good := func(n int) {
		for range n {
			i := len(in)
			in = append(in, dictRow{EventID: fmt.Sprint("e", i), EventTime: at, ReceivedAt: at.Add(time.Duration(i) * time.Millisecond),
				EventName: "view", UserID: fmt.Sprint("u", i%7), Product: "app", Properties: map[string]string{"k": fmt.Sprint(i % 3)}})
		}
	}
	good(200)
	first := len(in)
	special := []struct {
		edit     func(r *dictRow)
		tooLarge string // "" if the row is kept as written
	}{
		{func(r *dictRow) { r.UserID = big("u", 600<<10) }, ""},
		{func(r *dictRow) { r.Properties = map[string]string{"big": big("p", 600<<10), "k": "v"} }, ""},
		{func(r *dictRow) { r.DeviceID = big("d", MaxValueBytes) }, ""},
		{func(r *dictRow) { r.UserID = big("u", MaxValueBytes+1) }, fmt.Sprintf("user_id: %d bytes", MaxValueBytes+1)},
		{func(r *dictRow) { r.Properties = map[string]string{"big": big("p", 2<<20), "k": "v"} },
			fmt.Sprintf(`properties["big"]: %d bytes`, 2<<20)},
		{func(r *dictRow) { r.Properties = map[string]string{big("k", 2<<20): "v"} }, fmt.Sprintf("a properties key: %d bytes", 2<<20)},
		{func(r *dictRow) { r.EventID = big("é", MaxValueBytes) }, fmt.Sprintf("event_id: %d bytes", 2*MaxValueBytes)},
		{func(r *dictRow) { r.EventName, r.Product = big("n", 3<<20), big("p", 3<<20) },
			fmt.Sprintf("event_name: %d bytes; product: %d bytes", 3<<20, 3<<20)},
		// 600 KiB as written, 1.2 MiB once each invalid byte is a U+FFFD.
		{func(r *dictRow) { r.UserID = big("\xffa", 300<<10) }, fmt.Sprintf("user_id: %d bytes", 1200<<10)},
	}
	good(len(special))
	for i, s := range special {
		s.edit(&in[first+i])
	}
	good(200)

	for _, c := range []struct {
		name string
		data func() []byte
	}{
		{"plain, snappy", func() []byte {
			rows := make([]event.Raw, len(in))
			for i, r := range in {
				rows[i] = r.raw()
			}
			return writeParquet(t, rows, parquet.Compression(&parquet.Snappy))
		}},
		{"dictionary, uncompressed", func() []byte { return writeParquet(t, in, parquet.Compression(&parquet.Uncompressed)) }},
		{"dictionary, zstd", func() []byte { return writeParquet(t, in, parquet.Compression(&parquet.Zstd)) }},
		{"dictionary, gzip", func() []byte { return writeParquet(t, in, parquet.Compression(&parquet.Gzip)) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			rows, err := read(t, c.data())
			if err != nil {
				t.Fatalf("an object with large values: %v", err)
			}
			if len(rows) != len(in) {
				t.Fatalf("%d rows, want %d", len(rows), len(in))
			}
			for i, r := range rows {
				w := in[i]
				want := Row{EventID: w.EventID, EventTime: w.EventTime.UnixMilli(), HasEventTime: true, ReceivedAt: w.ReceivedAt.UnixMilli(),
					HasReceivedAt: true, EventName: w.EventName, UserID: w.UserID, DeviceID: w.DeviceID, Product: w.Product,
					Properties: w.Properties, Source: r.Source}
				k := i - first
				if k < 0 || k >= len(special) || special[k].tooLarge == "" {
					if diff := cmp.Diff(want, r); diff != "" {
						t.Fatalf("row %d (-want +got):\n%.2000s", i, diff)
					}
					continue
				}
				if r.TooLarge != special[k].tooLarge {
					t.Errorf("row %d: TooLarge %q, want %q", i, r.TooLarge, special[k].tooLarge)
				}
				for _, s := range append([]string{r.EventID, r.EventName, r.UserID, r.DeviceID, r.Product}, propStrings(r.Properties)...) {
					if len(s) > TooLargeKeptBytes+len("…") {
						t.Errorf("row %d: a value of %d bytes kept", i, len(s))
					}
				}
			}
		})
	}
}

func propStrings(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k, v)
	}
	return out
}

// TestCutValue: what is kept of a value over the limit ends at a
// character boundary and is valid UTF-8.
func TestCutValue(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{strings.Repeat("a", 100), strings.Repeat("a", TooLargeKeptBytes) + "…"},
		{strings.Repeat("é", 100), strings.Repeat("é", TooLargeKeptBytes/2) + "…"},
		{"a" + strings.Repeat("é", 100), "a" + strings.Repeat("é", (TooLargeKeptBytes-1)/2) + "…"},
		{strings.Repeat("\xff", 100), "\uFFFD…"},
	} {
		if got := cutValue([]byte(c.in)); got != c.want {
			t.Errorf("cutValue(%.10q...) = %q, want %q", c.in, got, c.want)
		}
	}
}
