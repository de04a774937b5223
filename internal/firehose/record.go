// Package firehose moves raw events into the store the way Amazon Data
// Firehose does: Client puts records on a real delivery stream through
// aws-sdk-go-v2, and Local is a delivery stream of its own that buffers
// records and writes them to a store as Parquet with format conversion,
// exactly where and how a Firehose stream would.
//
// A record is one event.Raw encoded by Encode: newline-terminated JSON whose
// timestamps are in a format Firehose's OpenX JSON SerDe converts. Convert is
// the conversion Local applies to each record, and the one infra configures
// Firehose with.
package firehose

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/littlewarehouse/warehouse/internal/event"
)

// Limits of PutRecordBatch (Amazon Data Firehose API reference).
const (
	// MaxBatchRecords is the most records one PutRecordBatch call takes.
	MaxBatchRecords = 500
	// MaxBatchBytes is the most record data, before base64, one call takes.
	MaxBatchBytes = 4 << 20
	// MaxRecordBytes is the largest record Firehose accepts (1,000 KiB,
	// before base64).
	MaxRecordBytes = 1000 << 10
)

// TimeLayout is how Encode writes timestamps: UTC with milliseconds and a
// literal Z, e.g. 2026-11-24T13:05:09.120Z. It is the first format the OpenX
// JSON SerDe accepts (yyyy-MM-dd'T'HH:mm:ss[.S]'Z'), so a Firehose stream
// converting with the OpenX SerDe and the raw table's Glue schema reads it
// as a timestamp with no extra configuration; epoch milliseconds would also
// convert, but only by a digit-count guess between seconds and milliseconds,
// and are unreadable in raw-errors.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// kind is how a column is held in JSON and in event.Raw.
type kind int

const (
	kindString kind = iota
	kindTimestamp
	kindMap
)

// field ties one column of event.Columns to its event.Raw struct field.
type field struct {
	name  string
	index int
	kind  kind
}

// fields lists the raw columns in schema order. It is derived from
// event.Columns and event.Raw, so a column added there is encoded and
// converted here with no change; a column of a type this package cannot
// carry panics at start-up (and in tests).
var fields = schemaFields()

func schemaFields() []field {
	t := reflect.TypeOf(event.Raw{})
	byName := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("parquet"), ",")
		byName[name] = i
	}
	var out []field
	for _, c := range event.Columns() {
		i, ok := byName[c.Name]
		if !ok {
			panic("firehose: column " + c.Name + " has no event.Raw field")
		}
		f := field{name: c.Name, index: i}
		switch c.Type {
		case "string":
			f.kind = kindString
		case "timestamp":
			f.kind = kindTimestamp
		case "map<string,string>":
			f.kind = kindMap
		default:
			panic(fmt.Sprintf("firehose: column %s has type %s, which records cannot carry", c.Name, c.Type))
		}
		out = append(out, f)
	}
	return out
}

// Encode returns r as one Firehose record: a JSON object with the columns in
// schema order, newline-terminated. Empty strings, zero times and empty maps
// are left out, so the conversion writes them as null. Times are written in
// UTC with TimeLayout (millisecond precision; finer digits are dropped).
func Encode(r *event.Raw) []byte {
	var b bytes.Buffer
	b.Grow(256)
	b.WriteByte('{')
	v := reflect.ValueOf(r).Elem()
	n := 0
	key := func(name string) {
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		b.WriteByte('"')
		b.WriteString(name) // column names are snake_case: nothing to escape
		b.WriteString(`":`)
	}
	for _, f := range fields {
		fv := v.Field(f.index)
		switch f.kind {
		case kindString:
			if fv.Len() == 0 {
				continue
			}
			key(f.name)
			s, _ := json.Marshal(fv.String()) // a string always marshals
			b.Write(s)
		case kindTimestamp:
			t := fv.Interface().(time.Time)
			if t.IsZero() {
				continue
			}
			key(f.name)
			b.WriteByte('"')
			b.WriteString(t.UTC().Format(TimeLayout))
			b.WriteByte('"')
		case kindMap:
			if fv.Len() == 0 {
				continue
			}
			key(f.name)
			m, _ := json.Marshal(fv.Interface()) // map[string]string always marshals, keys sorted
			b.Write(m)
		}
	}
	b.WriteString("}\n")
	return b.Bytes()
}
