package job

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// fixture is a hand-written raw data set (testdata/golden/raw.json).
type fixture struct {
	Objects []struct {
		Key    string         `json:"key"`
		Bad    string         `json:"bad"`
		Events []fixtureEvent `json:"events"`
	} `json:"objects"`
}

type fixtureEvent struct {
	event.Raw
	EventTime  string `json:"event_time"`
	ReceivedAt string `json:"received_at"`
}

func parseTime(t *testing.T, s string) time.Time {
	t.Helper()
	if s == "" {
		return time.Time{}
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// writeRaw writes rows as one raw object, as Firehose would.
func writeRaw(t *testing.T, st store.Store, key string, rows []event.Raw) {
	t.Helper()
	w, err := st.NewWriter(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	pw := parquet.NewGenericWriter[event.Raw](w, parquet.Compression(&parquet.Snappy))
	if _, err := pw.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := pw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// loadFixture writes the fixture at path into st.
func loadFixture(t *testing.T, st store.Store, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	for _, o := range f.Objects {
		if o.Bad != "" {
			if err := st.Put(context.Background(), o.Key, []byte(o.Bad)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		var rows []event.Raw
		for _, e := range o.Events {
			r := e.Raw
			r.EventTime = parseTime(t, e.EventTime)
			r.ReceivedAt = parseTime(t, e.ReceivedAt)
			rows = append(rows, r)
		}
		writeRaw(t, st, o.Key, rows)
	}
}
