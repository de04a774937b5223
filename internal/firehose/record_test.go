package firehose

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/event"
)

func fullRaw() event.Raw {
	return event.Raw{
		EventID:    "0192f0c4-5b6e-7c1a-9d2e-3f4a5b6c7d8e",
		EventTime:  time.Date(2026, 11, 24, 13, 5, 9, 120_000_000, time.UTC),
		ReceivedAt: time.Date(2026, 11, 24, 13, 5, 10, 5_000_000, time.UTC),
		EventName:  "screen_view",
		UserID:     "u-1",
		DeviceID:   "d-1",
		SessionID:  "s-1",
		Product:    "shop",
		Platform:   "ios",
		AppVersion: "1.2.3",
		Country:    "NZ",
		Properties: map[string]string{"screen": "home", "quote": `"<&>"`},
	}
}

func TestFieldsCoverEveryColumn(t *testing.T) {
	cols := event.Columns()
	if len(fields) != len(cols) {
		t.Fatalf("%d fields for %d columns", len(fields), len(cols))
	}
	rt := reflect.TypeOf(event.Raw{})
	for i, c := range cols {
		if fields[i].name != c.Name {
			t.Errorf("field %d is %s, column is %s", i, fields[i].name, c.Name)
		}
		// The JSON key the rest of the code base uses for the column is the
		// column's name, so Encode's output reads back with encoding/json too.
		if tag, _, _ := strings.Cut(rt.Field(fields[i].index).Tag.Get("json"), ","); tag != c.Name {
			t.Errorf("column %s has json tag %q", c.Name, tag)
		}
	}
}

func TestEncodeRoundTripsThroughConvert(t *testing.T) {
	r := fullRaw()
	rec := Encode(&r)
	if !bytes.HasSuffix(rec, []byte("}\n")) || bytes.Count(rec, []byte("\n")) != 1 {
		t.Fatalf("record is not one newline-terminated line: %q", rec)
	}
	if !bytes.Contains(rec, []byte(`"event_time":"2026-11-24T13:05:09.120Z"`)) ||
		!bytes.Contains(rec, []byte(`"received_at":"2026-11-24T13:05:10.005Z"`)) {
		t.Errorf("timestamps not in %s: %s", TimeLayout, rec)
	}
	rows, err := Convert(rec)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]event.Raw{r}, rows); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestEncodeLeavesOutEmptyValues(t *testing.T) {
	r := event.Raw{EventID: "id", ReceivedAt: time.UnixMilli(1_700_000_000_000), EventName: "x", Properties: map[string]string{}}
	got := string(Encode(&r))
	want := `{"event_id":"id","received_at":"2023-11-14T22:13:20.000Z","event_name":"x"}` + "\n"
	if got != want {
		t.Errorf("Encode = %s, want %s", got, want)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(got), &m); err != nil {
		t.Fatal(err)
	}
}

func TestEncodeWritesUTCMilliseconds(t *testing.T) {
	auckland := time.FixedZone("NZDT", 13*3600)
	r := event.Raw{EventTime: time.Date(2026, 1, 2, 10, 0, 0, 123_456_789, auckland)}
	got := string(Encode(&r))
	if want := `{"event_time":"2026-01-01T21:00:00.123Z"}` + "\n"; got != want {
		t.Errorf("Encode = %s, want %s", got, want)
	}
}
