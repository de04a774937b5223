package raw

import (
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/event"
)

// TestReadRepairsInvalidUTF8: every string of a row (property keys and
// values too) comes out valid UTF-8, each run of invalid bytes replaced by
// one U+FFFD, and InvalidUTF8 marks exactly the rows that were repaired,
// also when the repaired string is interned from an earlier row. Before,
// the bytes were passed through and DuckDB refused the curated files.
func TestReadRepairsInvalidUTF8(t *testing.T) {
	at := time.UnixMilli(ms("2026-01-02T03:04:05Z")).UTC()
	in := []event.Raw{
		{EventID: "id\xff", ReceivedAt: at, EventName: "vi\xff\xfeew", UserID: "u\xc3", DeviceID: "d\xe2\x82", SessionID: "s\x80",
			Product: "p\xff", Platform: "w\xffeb", AppVersion: "1\xff", Country: "N\xffZ", Properties: map[string]string{"k\xfe": "v\xff"}},
		{EventID: "ok", ReceivedAt: at, EventName: "view", UserID: "ü", Properties: map[string]string{"k": "v"}},
		{EventID: "again", ReceivedAt: at, EventName: "vi\xff\xfeew"}, // interned
		{EventID: "prop", ReceivedAt: at, EventName: "view", Properties: map[string]string{"k": "\xc0\xaf"}},
	}
	rows, err := read(t, writeParquet(t, in))
	if err != nil {
		t.Fatal(err)
	}
	src := "raw/2026/01/02/03/x"
	t0 := at.UnixMilli()
	want := []Row{
		{EventID: "id\uFFFD", ReceivedAt: t0, HasReceivedAt: true, EventName: "vi\uFFFDew", UserID: "u\uFFFD", DeviceID: "d\uFFFD",
			SessionID: "s\uFFFD", Product: "p\uFFFD", Platform: "w\uFFFDeb", AppVersion: "1\uFFFD", Country: "N\uFFFDZ",
			Properties: map[string]string{"k\uFFFD": "v\uFFFD"}, Source: src, InvalidUTF8: true},
		{EventID: "ok", ReceivedAt: t0, HasReceivedAt: true, EventName: "view", UserID: "ü", Properties: map[string]string{"k": "v"}, Source: src},
		{EventID: "again", ReceivedAt: t0, HasReceivedAt: true, EventName: "vi\uFFFDew", Source: src, InvalidUTF8: true},
		{EventID: "prop", ReceivedAt: t0, HasReceivedAt: true, EventName: "view", Properties: map[string]string{"k": "\uFFFD"}, Source: src, InvalidUTF8: true},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Fatalf("rows (-want +got):\n%s", diff)
	}
	for _, r := range rows {
		for k, v := range r.Properties {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				t.Fatalf("invalid property %q=%q", k, v)
			}
		}
	}
}
