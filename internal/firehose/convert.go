package firehose

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/littlewarehouse/warehouse/internal/event"
)

// Error codes of records that fail format conversion, as Firehose names them
// in raw-errors/format-conversion-failed/.
const (
	// CodeParseError: the record is not JSON, or not JSON objects.
	CodeParseError = "DataFormatConversion.ParseError"
	// CodeMalformedData: a value does not fit its column's type.
	CodeMalformedData = "DataFormatConversion.MalformedData"
)

// ConversionError says why a record could not be converted to rows.
type ConversionError struct {
	Code    string // CodeParseError or CodeMalformedData
	Message string // names the column, never the value
}

func (e *ConversionError) Error() string { return e.Code + ": " + e.Message }

// Convert turns one record into rows of the raw schema the way Firehose's
// record format conversion does with the OpenX JSON SerDe and the raw table's
// schema (derived from event.Raw):
//
//   - A record holds one or more JSON objects one after the other; each is a
//     row. Anything else (not JSON, an array, a bare value) is a ParseError.
//   - Keys are matched to columns case-insensitively (the SerDe lowercases
//     them). Keys that are not columns are dropped; missing columns and JSON
//     nulls are null.
//   - A string column takes a JSON string, or a number or boolean as its JSON
//     text. An object or array there is MalformedData.
//   - A timestamp column takes what the OpenX SerDe parses:
//     "yyyy-MM-ddTHH:mm:ss[.S…]Z", "yyyy-[M]M-[d]d HH:mm:ss[.S…]" (UTC),
//     an integer of epoch seconds, or of epoch milliseconds when its absolute
//     value is at least 10^11 (the SerDe's own digit-count rule), or a
//     fractional number of epoch seconds. Anything else is MalformedData.
//     Times are kept to the millisecond, the column's precision.
//   - The map column takes a JSON object whose values are strings (numbers
//     and booleans as their JSON text; null values are dropped); anything
//     else there is MalformedData.
//
// Convert does not judge whether a row makes sense (an event without a name
// converts to a row with a null name, as on AWS); the rollup does.
func Convert(record []byte) ([]event.Raw, error) {
	dec := json.NewDecoder(bytes.NewReader(record))
	dec.UseNumber()
	var rows []event.Raw
	for {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, &ConversionError{CodeParseError, "malformed JSON: " + err.Error()}
		}
		obj, ok := doc.(map[string]any)
		if !ok {
			return nil, &ConversionError{CodeParseError, "a record must hold JSON objects, not " + jsonType(doc)}
		}
		row, err := convertObject(obj)
		if err != nil {
			return nil, err
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil, &ConversionError{CodeParseError, "record holds no JSON object"}
	}
	return rows, nil
}

func convertObject(obj map[string]any) (event.Raw, error) {
	lower := make(map[string]any, len(obj))
	for k, v := range obj {
		lk := strings.ToLower(k)
		if _, exact := obj[lk]; exact && lk != k {
			continue // the lowercase spelling wins over others
		}
		lower[lk] = v
	}
	var r event.Raw
	rv := reflect.ValueOf(&r).Elem()
	for _, f := range fields {
		v, ok := lower[f.name]
		if !ok || v == nil {
			continue
		}
		fv := rv.Field(f.index)
		switch f.kind {
		case kindString:
			s, ok := scalarText(v)
			if !ok {
				return r, malformed(f.name, "want a string, got %s", jsonType(v))
			}
			fv.SetString(s)
		case kindTimestamp:
			t, err := parseTimestamp(v)
			if err != nil {
				return r, malformed(f.name, "%v", err)
			}
			fv.Set(reflect.ValueOf(t))
		case kindMap:
			m, ok := v.(map[string]any)
			if !ok {
				return r, malformed(f.name, "want an object of strings, got %s", jsonType(v))
			}
			out := make(map[string]string, len(m))
			for k, mv := range m {
				if mv == nil {
					continue
				}
				s, ok := scalarText(mv)
				if !ok {
					return r, malformed(f.name, "value of key %q: want a string, got %s", k, jsonType(mv))
				}
				out[k] = s
			}
			if len(out) > 0 {
				fv.Set(reflect.ValueOf(out))
			}
		}
	}
	return r, nil
}

func malformed(col, format string, args ...any) error {
	return &ConversionError{CodeMalformedData, "column " + col + ": " + fmt.Sprintf(format, args...)}
}

// scalarText returns a JSON string, number or boolean as text.
func scalarText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
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
	return fmt.Sprintf("%T", v)
}

var (
	isoZ      = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$`)
	hiveSpace = regexp.MustCompile(`^\d{4}-\d{1,2}-\d{1,2} \d{2}:\d{2}:\d{2}(\.\d{1,9})?$`)
)

// epochMillisFrom is the smallest absolute integer read as epoch
// milliseconds rather than seconds: 10^11 s is the year 5138, 10^11 ms is
// 1973.
const epochMillisFrom = 1e11

func parseTimestamp(v any) (time.Time, error) {
	switch v := v.(type) {
	case string:
		var layout string
		switch {
		case isoZ.MatchString(v):
			layout = "2006-01-02T15:04:05Z"
		case hiveSpace.MatchString(v):
			layout = "2006-1-2 15:04:05"
		default:
			return time.Time{}, errors.New("string is not a timestamp format the OpenX SerDe reads (yyyy-MM-ddTHH:mm:ss[.S]Z or yyyy-MM-dd HH:mm:ss[.S])")
		}
		t, err := time.Parse(layout, v) // Parse accepts the fraction after the seconds
		if err != nil {
			return time.Time{}, errors.New("string is not a valid date and time")
		}
		return t.UTC().Truncate(time.Millisecond), nil
	case json.Number:
		if i, err := v.Int64(); err == nil {
			if i >= epochMillisFrom || i <= -epochMillisFrom {
				return time.UnixMilli(i).UTC(), nil
			}
			return time.Unix(i, 0).UTC(), nil
		}
		f, err := v.Float64()
		if err != nil || math.IsInf(f, 0) || math.Abs(f) >= epochMillisFrom {
			return time.Time{}, errors.New("number is not epoch seconds or milliseconds")
		}
		return time.UnixMilli(int64(math.Floor(f * 1000))).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("want a timestamp, got %s", jsonType(v))
}
