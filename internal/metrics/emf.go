// Package metrics writes CloudWatch metrics as Embedded Metric Format (EMF)
// log lines: one JSON object per line, which CloudWatch Logs turns into
// metrics without any API call (docs/design.md §Observability). On Lambda, write them to
// standard output; anywhere else they are plain, greppable JSON.
//
// A line looks like
//
//	{"_aws":{"Timestamp":1764039600000,"CloudWatchMetrics":[{"Namespace":"LittleWarehouse",
//	  "Dimensions":[["Stage"]],"Metrics":[{"Name":"KeptRows","Unit":"Count"}]}]},
//	 "Stage":"day","KeptRows":2873,"day":"2026-11-20"}
//
// Dimensions should have few values (each combination is a custom metric
// that CloudWatch bills for): put a day or a run id in the properties, which
// are searchable in Logs Insights but are not dimensions.
package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of every Little Warehouse metric.
const Namespace = "LittleWarehouse"

// Unit is a CloudWatch metric unit.
type Unit string

// The units the warehouse uses (CloudWatch accepts a few more).
const (
	Count   Unit = "Count"
	Bytes   Unit = "Bytes"
	Seconds Unit = "Seconds"
	None    Unit = "None"
)

// Metric is one value to record.
type Metric struct {
	Name  string
	Value float64
	Unit  Unit
}

// Logger writes EMF lines to a writer, one whole line per Write, safe for
// concurrent use. A nil *Logger writes nothing.
type Logger struct {
	mu        sync.Mutex
	w         io.Writer
	namespace string
	now       func() time.Time
}

// New returns a Logger writing to w under namespace (Namespace if empty).
func New(w io.Writer, namespace string) *Logger {
	if namespace == "" {
		namespace = Namespace
	}
	return &Logger{w: w, namespace: namespace, now: time.Now}
}

// WithClock returns a copy of l that stamps lines with now (for tests).
func (l *Logger) WithClock(now func() time.Time) *Logger {
	return &Logger{w: l.w, namespace: l.namespace, now: now}
}

// EMF's limits on one directive.
const (
	maxMetrics    = 100
	maxDimensions = 30
)

// reserved names cannot be used for metrics, dimensions or properties.
const reserved = "_aws"

// Emit writes one EMF line: the metrics, under one dimension set made of
// every key of dims, plus props as extra searchable properties. Metric,
// dimension and property names must be distinct and non-empty; values must
// be finite.
func (l *Logger) Emit(dims map[string]string, ms []Metric, props map[string]any) error {
	if l == nil {
		return nil
	}
	b, err := l.Line(dims, ms, props)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err = l.w.Write(b)
	return err
}

// Line returns the EMF line Emit would write, ending in a newline.
func (l *Logger) Line(dims map[string]string, ms []Metric, props map[string]any) ([]byte, error) {
	if len(ms) == 0 {
		return nil, errors.New("metrics: no metrics")
	}
	if len(ms) > maxMetrics {
		return nil, fmt.Errorf("metrics: %d metrics in one line, EMF allows %d", len(ms), maxMetrics)
	}
	if len(dims) > maxDimensions {
		return nil, fmt.Errorf("metrics: %d dimensions, EMF allows %d", len(dims), maxDimensions)
	}
	root := map[string]any{}
	taken := func(name, what string) error {
		if name == "" || name == reserved {
			return fmt.Errorf("metrics: invalid %s name %q", what, name)
		}
		if _, dup := root[name]; dup {
			return fmt.Errorf("metrics: %s name %q is used twice", what, name)
		}
		return nil
	}
	dimNames := make([]string, 0, len(dims))
	for k, v := range dims {
		if err := taken(k, "dimension"); err != nil {
			return nil, err
		}
		root[k] = v
		dimNames = append(dimNames, k)
	}
	slices.Sort(dimNames)
	type def struct {
		Name string `json:"Name"`
		Unit Unit   `json:"Unit,omitempty"`
	}
	defs := make([]def, 0, len(ms))
	for _, m := range ms {
		if err := taken(m.Name, "metric"); err != nil {
			return nil, err
		}
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			return nil, fmt.Errorf("metrics: %s = %v is not a finite number", m.Name, m.Value)
		}
		root[m.Name] = m.Value
		defs = append(defs, def{Name: m.Name, Unit: m.Unit})
	}
	for k, v := range props {
		if err := taken(k, "property"); err != nil {
			return nil, err
		}
		root[k] = v
	}
	root[reserved] = map[string]any{
		"Timestamp": l.now().UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  l.namespace,
			"Dimensions": [][]string{dimNames},
			"Metrics":    defs,
		}},
	}
	b, err := json.Marshal(root)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return append(b, '\n'), nil
}
