package index

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/day"
)

// goldenFile is an index file as the encoder wrote it before Entry had a
// JSON form of its own: a good entry, a bad object's and one without
// rows. It must still read, and encode to the same bytes.
const goldenFile = `{
 "version": 5,
 "arrival_day": "2026-04-04",
 "rules": {
  "time_zone": "Pacific/Auckland",
  "max_lateness": "168h0m0s",
  "max_ahead": "10m0s"
 },
 "entries": [
  {
   "key": "raw/2026/04/04/07/a.parquet",
   "etag": "\"e1\"",
   "size": 1234,
   "hour": "2026-04-04T07:00:00Z",
   "rows": 10,
   "first_arrival_ms": 1775286000000,
   "last_arrival_ms": 1775289599000,
   "days": [
    "2026-04-03",
    "2026-04-04"
   ],
   "day_rows": [
    3,
    7
   ]
  },
  {
   "key": "raw/2026/04/04/08/b.parquet",
   "etag": "\"e\u003c2\u003e\"",
   "size": 0,
   "hour": "2026-04-04T08:00:00Z",
   "rows": 0,
   "first_arrival_ms": 0,
   "last_arrival_ms": 0,
   "bad": "empty",
   "detail": "empty object \u0026 \u003cnothing\u003e"
  },
  {
   "key": "raw/2026/04/04/09/c.parquet",
   "etag": "\"e3\"",
   "size": 500,
   "hour": "2026-04-04T09:00:00Z",
   "rows": 0,
   "first_arrival_ms": 0,
   "last_arrival_ms": 0
  }
 ]
}
`

func mustParseDay(t *testing.T, s string) day.Day {
	t.Helper()
	d, err := day.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// goldenEntries are goldenFile's entries.
func goldenEntries(t *testing.T) []Entry {
	h := time.Date(2026, 4, 4, 7, 0, 0, 0, time.UTC)
	return []Entry{
		{Key: "raw/2026/04/04/07/a.parquet", ETag: `"e1"`, Size: 1234, Hour: h, Rows: 10,
			FirstArrival: 1775286000000, LastArrival: 1775289599000,
			Days: []day.Day{mustParseDay(t, "2026-04-03"), mustParseDay(t, "2026-04-04")}, DayRows: []int64{3, 7}},
		{Key: "raw/2026/04/04/08/b.parquet", ETag: `"e<2>"`, Hour: h.Add(time.Hour), Bad: "empty", Detail: "empty object & <nothing>"},
		{Key: "raw/2026/04/04/09/c.parquet", ETag: `"e3"`, Size: 500, Hour: h.Add(2 * time.Hour)},
	}
}

// TestIndexFileFormatUnchanged: a file in the format of earlier builds
// reads as the entries it holds, and writing them again gives the same
// bytes.
func TestIndexFileFormatUnchanged(t *testing.T) {
	d := mustParseDay(t, "2026-04-04")
	f, err := decodeFile([]byte(goldenFile), d)
	if err != nil {
		t.Fatal(err)
	}
	want := goldenEntries(t)
	if len(f.entries) != len(want) {
		t.Fatalf("%d entries, want %d", len(f.entries), len(want))
	}
	for _, e := range want {
		if diff := cmp.Diff(e, f.entries[e.Key]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", e.Key, diff)
		}
	}
	if got := encodeFile(d, f); string(got) != goldenFile {
		t.Errorf("encoded again:\n%s\nwant:\n%s", got, goldenFile)
	}
}

// TestEntryJSON: an Entry's JSON form is the one its index file holds, and
// round-trips through json.Marshal and json.Unmarshal.
func TestEntryJSON(t *testing.T) {
	var fj struct {
		Entries []json.RawMessage `json:"entries"`
	}
	if err := json.Unmarshal([]byte(goldenFile), &fj); err != nil {
		t.Fatal(err)
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range goldenEntries(t) {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var inFile bytes.Buffer
		if err := json.Compact(&inFile, fj.Entries[i]); err != nil {
			t.Fatal(err)
		}
		if string(b) != inFile.String() {
			t.Errorf("json.Marshal(%s) = %s; the index file holds %s", e.Key, b, inFile.Bytes())
		}
		// Through a pointer, in a slice, and with an hour in another zone:
		// the same entry back, its hour in UTC.
		var back []Entry
		local := e
		local.Hour = e.Hour.In(paris)
		b, err = json.Marshal([]*Entry{&e, &local})
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]Entry{e, e}, back); diff != "" {
			t.Errorf("%s round-tripped (-want +got):\n%s", e.Key, diff)
		}
		if back[1].Hour.Location() != time.UTC {
			t.Errorf("%s: hour read back in %s, want UTC", e.Key, back[1].Hour.Location())
		}
	}
}

// badEntries are entries in JSON that an Entry's checks reject, and what
// the error says.
var badEntries = []struct{ name, json, why string }{
	{"days and day_rows of different lengths", `{"key": "k", "hour": "2026-04-04T07:00:00Z", "days": ["2026-04-03", "2026-04-04"], "day_rows": [3]}`, "1 day_rows for 2 days"},
	{"day_rows without days", `{"key": "k", "hour": "2026-04-04T07:00:00Z", "day_rows": [3]}`, "1 day_rows for 0 days"},
	{"a bad day", `{"key": "k", "hour": "2026-04-04T07:00:00Z", "days": ["2026-04-31"], "day_rows": [3]}`, "2026-04-31"},
	{"days not ascending", `{"key": "k", "hour": "2026-04-04T07:00:00Z", "days": ["2026-04-04", "2026-04-03"], "day_rows": [3, 7]}`, "not ascending"},
	{"a day twice", `{"key": "k", "hour": "2026-04-04T07:00:00Z", "days": ["2026-04-04", "2026-04-04"], "day_rows": [3, 7]}`, "distinct"},
	{"no key", `{"etag": "e", "hour": "2026-04-04T07:00:00Z"}`, "without a key"},
	{"null", `null`, "without a key"},
	{"not an object", `["k"]`, "cannot unmarshal"},
	{"a bad field", `{"key": "k", "hour": "2026-04-04T07:00:00Z", "rows": "many"}`, "cannot unmarshal"},
}

// TestEntryJSONRejectsBadEntries: json.Unmarshal of a bad entry is an
// error and leaves the Entry as it was; so does an index file holding it.
func TestEntryJSONRejectsBadEntries(t *testing.T) {
	d := mustParseDay(t, "2026-04-04")
	for _, tc := range badEntries {
		t.Run(tc.name, func(t *testing.T) {
			e := goldenEntries(t)[0]
			err := json.Unmarshal([]byte(tc.json), &e)
			if err == nil || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("json.Unmarshal = %v; want an error saying %q", err, tc.why)
			}
			if diff := cmp.Diff(goldenEntries(t)[0], e); diff != "" {
				t.Errorf("the entry changed (-before +after):\n%s", diff)
			}
			var es []Entry
			if err := json.Unmarshal([]byte(`[`+tc.json+`]`), &es); err == nil {
				t.Errorf("a list holding it read: %+v", es)
			}
			file := strings.Replace(goldenFile, "\n  {\n", "\n  "+tc.json+",\n  {\n", 1)
			if f, err := decodeFile([]byte(file), d); err == nil || !strings.Contains(err.Error(), tc.why) {
				t.Errorf("an index file holding it: %v, %v; want an error saying %q", f, err, tc.why)
			}
		})
	}
	// What only a file checks: hours on its day, each key once.
	for name, file := range map[string]string{
		"hour on another day": strings.Replace(goldenFile, "2026-04-04T09:00:00Z", "2026-04-05T09:00:00Z", 1),
		"a key twice":         strings.Replace(goldenFile, "09/c.parquet", "08/b.parquet", 1),
	} {
		if f, err := decodeFile([]byte(file), d); err == nil {
			t.Errorf("%s: read %+v", name, f)
		}
	}
}
