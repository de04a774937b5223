package collector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/firehose"
)

// FieldError says why one event of a request was rejected.
type FieldError struct {
	Index  int    `json:"index"`           // position of the event in the request (0 for a single object)
	Field  string `json:"field,omitempty"` // the offending field, if one is to blame
	Reason string `json:"reason"`
}

// stamped names the columns the collector sets on every accepted event; a
// client may not send them.
var stamped = map[string]bool{"event_id": true, "received_at": true}

// who names the columns of which an event needs at least one non-empty
// (docs/design.md §What every number means: user_key is user_id, else "anon:" + device_id).
var who = []string{"user_id", "device_id"}

// maxErrorsPerEvent bounds the errors reported for one event.
const maxErrorsPerEvent = 10

// column is one raw column as the collector validates it.
type column struct {
	event.Column
	index int // of its event.Raw field
}

// columns maps each raw column's name to its description, derived from
// event.Columns and event.Raw; ordered lists them in schema order.
var columns, ordered = schemaColumns()

func schemaColumns() (map[string]column, []column) {
	t := reflect.TypeOf(event.Raw{})
	index := map[string]int{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("parquet"), ",")
		index[name] = i
	}
	byName := map[string]column{}
	var list []column
	for _, c := range event.Columns() {
		i, ok := index[c.Name]
		if !ok {
			panic("collector: column " + c.Name + " has no event.Raw field")
		}
		switch c.Type {
		case "string", "timestamp", "map<string,string>":
		default:
			panic("collector: no validation for column " + c.Name + " of type " + c.Type)
		}
		col := column{Column: c, index: i}
		byName[c.Name] = col
		list = append(list, col)
	}
	for name := range stamped {
		if _, ok := byName[name]; !ok {
			panic("collector: stamped column " + name + " is not in the schema")
		}
	}
	for _, name := range who {
		if byName[name].Type != "string" {
			panic("collector: identity column " + name + " is not a string column of the schema")
		}
	}
	return byName, list
}

// splitBody parses a request body holding one JSON object or a JSON array
// of them, returning each element undecoded.
func splitBody(body []byte) ([]json.RawMessage, error) {
	b := bytes.TrimLeft(body, " \t\r\n")
	if len(b) == 0 {
		return nil, errors.New("empty body: send a JSON object or an array of objects")
	}
	switch b[0] {
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(b, &items); err != nil {
			return nil, fmt.Errorf("body is not valid JSON: %w", err)
		}
		return items, nil
	case '{':
		if !json.Valid(b) {
			var v any
			err := json.Unmarshal(b, &v)
			return nil, fmt.Errorf("body is not valid JSON: %w", err)
		}
		return []json.RawMessage{b}, nil
	}
	return nil, errors.New("body must be a JSON object or an array of objects")
}

// parseEvent validates one event of a request against the raw schema and
// returns it as an event.Raw without event_id and received_at. Fields that
// are not columns are kept in properties when their value is a string; null
// values are treated as absent. Strings, property keys and the count of
// properties past the limits of event (limits.go) and times outside
// event.MinTime..MaxTime refuse the event. It returns the reasons the event
// is refused, if any.
func parseEvent(index int, data []byte) (event.Raw, []FieldError) {
	var r event.Raw
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return r, []FieldError{{Index: index, Reason: "an event must be a JSON object"}}
	}

	p := &eventErrors{index: index}
	rv := reflect.ValueOf(&r).Elem()
	props := map[string]string{}
	extra := map[string]string{}
	for _, k := range sortedKeys(obj) {
		v := obj[k]
		c, known := columns[k]
		switch {
		case !known:
			switch v := v.(type) {
			case nil:
			case string:
				p.keep(extra, k, k, v)
			default:
				p.add(k, "unknown field with %s value: only string values of unknown fields are kept (in properties)", jsonType(v))
			}
		case stamped[k]:
			p.add(k, "is set by the collector and must not be sent")
		case v != nil:
			p.set(rv.Field(c.index), c, v, props)
		}
	}
	for _, k := range sortedKeys(extra) {
		if _, dup := props[k]; dup {
			p.add(k, "is also a key of properties; send it once")
			continue
		}
		props[k] = extra[k]
	}
	if len(props) > event.MaxProperties {
		p.add("properties", "%d properties (the keys of properties and the unknown fields together), at most %d", len(props), event.MaxProperties)
	}
	if len(props) > 0 {
		r.Properties = props
	}
	p.required(rv)

	errs := p.errs
	if len(errs) > maxErrorsPerEvent {
		n := len(errs) - maxErrorsPerEvent + 1
		errs = append(errs[:maxErrorsPerEvent-1], FieldError{Index: index, Reason: fmt.Sprintf("and %d more errors", n)})
	}
	return r, errs
}

// eventErrors collects the errors of the event at index of a request, in
// the order found.
type eventErrors struct {
	index int
	errs  []FieldError
}

// add records an error blaming field (clipped, clipField).
func (p *eventErrors) add(field, format string, args ...any) {
	p.errs = append(p.errs, FieldError{Index: p.index, Field: clipField(field), Reason: fmt.Sprintf(format, args...)})
}

// blamed reports whether an error blames field.
func (p *eventErrors) blamed(field string) bool {
	return slices.ContainsFunc(p.errs, func(e FieldError) bool { return e.Field == field })
}

// keep adds the property k=v to m, unless either is too long (an error
// then); from names where it came from (k itself for an unknown field).
func (p *eventErrors) keep(m map[string]string, from, k, v string) {
	switch {
	case len(k) > event.MaxPropertyKeyBytes:
		p.add(from, "a property key of %d bytes, at most %d", len(k), event.MaxPropertyKeyBytes)
	case len(v) > event.MaxStringBytes:
		p.add(from, "%d bytes, at most %d", len(v), event.MaxStringBytes)
	default:
		m[k] = v
	}
}

// set stores the non-null JSON value v of column c in fv, its field of
// event.Raw, or records why it cannot; the properties column's entries go
// to props instead.
func (p *eventErrors) set(fv reflect.Value, c column, v any, props map[string]string) {
	k := c.Name
	switch c.Type {
	case "string":
		s, ok := v.(string)
		if !ok {
			p.add(k, "want a string, got %s", jsonType(v))
			return
		}
		if len(s) > event.MaxStringBytes {
			p.add(k, "%d bytes, at most %d", len(s), event.MaxStringBytes)
			return
		}
		fv.SetString(s)
	case "timestamp":
		t, err := parseClientTime(v)
		if err != nil {
			p.add(k, "%v", err)
			return
		}
		fv.Set(reflect.ValueOf(t))
	case "map<string,string>":
		m, ok := v.(map[string]any)
		if !ok {
			p.add(k, "want an object of string values, got %s", jsonType(v))
			return
		}
		for _, pk := range sortedKeys(m) {
			switch pv := m[pk].(type) {
			case nil:
			case string:
				p.keep(props, k+"."+pk, pk, pv)
			default:
				p.add(k+"."+pk, "want a string, got %s", jsonType(pv))
			}
		}
	}
}

// required records the required columns of the event rv (an event.Raw)
// that are missing or blank, and the lack of every column of who, except
// those columns already blamed for another error.
func (p *eventErrors) required(rv reflect.Value) {
	for _, c := range ordered {
		if !c.Required || stamped[c.Name] || p.blamed(c.Name) {
			continue
		}
		fv := rv.Field(c.index)
		if fv.IsZero() || (fv.Kind() == reflect.String && strings.TrimSpace(fv.String()) == "") {
			p.add(c.Name, "is required")
		}
	}
	if !slices.ContainsFunc(who, func(name string) bool {
		return p.blamed(name) || strings.TrimSpace(rv.Field(columns[name].index).String()) != ""
	}) {
		p.add(strings.Join(who, "|"), "one of %s is required", strings.Join(who, " or "))
	}
}

// firstMillis is the smallest epoch-milliseconds value taken for an event
// time (1973-03-03): anything smaller is almost surely epoch seconds.
const firstMillis = 100_000_000_000

// parseClientTime reads a client's event time: an RFC 3339 string (any
// offset) or an integer of epoch milliseconds. The instant is kept as sent,
// in UTC, to the millisecond (the column's precision).
func parseClientTime(v any) (time.Time, error) {
	var t time.Time
	switch v := v.(type) {
	case string:
		var err error
		t, err = time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return t, errors.New("want an RFC 3339 time such as 2026-11-24T13:05:09.120Z, or epoch milliseconds")
		}
	case json.Number:
		ms, err := v.Int64()
		if err != nil {
			return t, errors.New("epoch milliseconds must be an integer")
		}
		if ms < firstMillis && ms > -firstMillis {
			return t, errors.New("looks like epoch seconds: send epoch milliseconds or an RFC 3339 time")
		}
		t = time.UnixMilli(ms)
	default:
		return t, fmt.Errorf("want an RFC 3339 string or epoch milliseconds, got %s", jsonType(v))
	}
	t = t.UTC().Truncate(time.Millisecond)
	if t.Before(event.MinTime) || t.After(event.MaxTime) {
		return time.Time{}, errTimeRange
	}
	return t, nil
}

var errTimeRange = fmt.Errorf("time out of range: want %s to %s", event.MinTime.Format(firehose.TimeLayout), event.MaxTime.Format(firehose.TimeLayout))

// maxFieldName bounds a field name as an error repeats it: a longer one
// (a client's unknown field) is cut, so an answer never echoes a large key.
const maxFieldName = 64

func clipField(name string) string {
	if len(name) <= maxFieldName {
		return name
	}
	cut := maxFieldName
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return name[:cut] + "…"
}

// countReplaced counts the characters of a JSON text that decoding replaces
// with U+FFFD, as encoding/json does: each byte of invalid UTF-8, and each
// \u escape of a UTF-16 surrogate that is not half of a valid pair. A U+FFFD
// sent as such is not counted. data must be valid JSON, so that a backslash
// is always inside a string.
func countReplaced(data []byte) int {
	n := 0
	for i := 0; i < len(data); {
		c := data[i]
		switch {
		case c == '\\' && i+1 < len(data) && data[i+1] == 'u':
			r := hex4(data[i+2:])
			i += 6
			if r < 0 {
				continue // not valid JSON; cannot happen
			}
			if utf16.IsSurrogate(r) {
				if i+1 < len(data) && data[i] == '\\' && data[i+1] == 'u' {
					if utf16.DecodeRune(r, hex4(data[i+2:])) != utf8.RuneError {
						i += 6
						continue
					}
				}
				n++
			}
		case c == '\\':
			i += 2
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				n++
			}
			i += size
		}
	}
	return n
}

// hex4 is the rune of the 4 hex digits b starts with, or -1.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "a null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}
