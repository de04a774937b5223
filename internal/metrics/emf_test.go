package metrics

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestLineIsEMF(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, "").WithClock(func() time.Time { return time.UnixMilli(1764039600123) })
	err := l.Emit(map[string]string{"Stage": "day"},
		[]Metric{{"KeptRows", 2873, Count}, {"BytesWritten", 1 << 20, Bytes}, {"Seconds", 1.5, Seconds}},
		map[string]any{"day": "2026-11-20", "run": "01J"})
	if err != nil {
		t.Fatal(err)
	}
	line := buf.String()
	if !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
		t.Fatalf("want exactly one line, got %q", line)
	}
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"_aws": map[string]any{
			"Timestamp": float64(1764039600123),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  "LittleWarehouse",
				"Dimensions": []any{[]any{"Stage"}},
				"Metrics": []any{
					map[string]any{"Name": "KeptRows", "Unit": "Count"},
					map[string]any{"Name": "BytesWritten", "Unit": "Bytes"},
					map[string]any{"Name": "Seconds", "Unit": "Seconds"},
				},
			}},
		},
		"Stage": "day", "KeptRows": float64(2873), "BytesWritten": float64(1 << 20), "Seconds": 1.5,
		"day": "2026-11-20", "run": "01J",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("EMF line (-want +got):\n%s", diff)
	}
}

func TestLineRejects(t *testing.T) {
	l := New(&bytes.Buffer{}, "NS")
	many := make([]Metric, 101)
	for i := range many {
		many[i] = Metric{Name: "m" + strings.Repeat("x", i), Value: 1}
	}
	cases := map[string]struct {
		dims  map[string]string
		ms    []Metric
		props map[string]any
	}{
		"no metrics":           {nil, nil, nil},
		"too many metrics":     {nil, many, nil},
		"NaN":                  {nil, []Metric{{"A", math.NaN(), Count}}, nil},
		"Inf":                  {nil, []Metric{{"A", math.Inf(1), Count}}, nil},
		"empty name":           {nil, []Metric{{"", 1, Count}}, nil},
		"metric = dimension":   {map[string]string{"A": "x"}, []Metric{{"A", 1, Count}}, nil},
		"property = metric":    {nil, []Metric{{"A", 1, Count}}, map[string]any{"A": 2}},
		"reserved _aws":        {nil, []Metric{{"A", 1, Count}}, map[string]any{"_aws": 1}},
		"metric listed twice":  {nil, []Metric{{"A", 1, Count}, {"A", 2, Count}}, nil},
		"reserved as a metric": {nil, []Metric{{"_aws", 1, Count}}, nil},
	}
	for name, c := range cases {
		if _, err := l.Line(c.dims, c.ms, c.props); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	var nilLogger *Logger
	if err := nilLogger.Emit(nil, []Metric{{"A", 1, Count}}, nil); err != nil {
		t.Errorf("nil logger: %v", err)
	}
}

func TestNoDimensions(t *testing.T) {
	b, err := New(&bytes.Buffer{}, "NS").Line(nil, []Metric{{"A", 1, Count}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"Dimensions":[[]]`) {
		t.Errorf("want one empty dimension set: %s", b)
	}
}
