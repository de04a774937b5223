// Package event holds the one definition of the raw app event (docs/design.md §The raw event).
//
// Raw is the schema Firehose converts JSON into and eventgen and the local
// delivery stream write. Every other description of the raw event — the
// Parquet schema, the Glue columns, the Firehose conversion schema, the
// collector's validation — is derived from Raw through Columns, so a column
// changed here changes everywhere.
package event

import (
	"reflect"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
)

// Raw is one event as Firehose lands it in raw/. Every column is optional in
// the Parquet file, as Firehose's converter writes them: a string left empty
// is written as null, and a zero EventTime is written as null (the client
// sent none).
type Raw struct {
	EventID    string            `parquet:"event_id,optional" json:"event_id"`
	EventTime  time.Time         `parquet:"event_time,optional,timestamp(millisecond)" json:"event_time"`
	ReceivedAt time.Time         `parquet:"received_at,optional,timestamp(millisecond)" json:"received_at"`
	EventName  string            `parquet:"event_name,optional" json:"event_name"`
	UserID     string            `parquet:"user_id,optional" json:"user_id,omitempty"`
	DeviceID   string            `parquet:"device_id,optional" json:"device_id,omitempty"`
	SessionID  string            `parquet:"session_id,optional" json:"session_id,omitempty"`
	Product    string            `parquet:"product,optional" json:"product"`
	Platform   string            `parquet:"platform,optional" json:"platform"`
	AppVersion string            `parquet:"app_version,optional" json:"app_version,omitempty"`
	Country    string            `parquet:"country,optional" json:"country,omitempty"`
	Properties map[string]string `parquet:"properties,optional" json:"properties,omitempty"`
}

// Schema returns the Parquet schema of Raw.
func Schema() *parquet.Schema { return parquet.SchemaOf(Raw{}) }

// Column describes one raw column for every consumer that is not parquet-go:
// Glue, Athena, the Firehose conversion schema and the collector.
type Column struct {
	Name     string // lowercase snake_case, as in Parquet and Glue
	Type     string // Hive/Glue type: string, timestamp, map<string,string>
	Required bool   // a row without it is invalid (or, for the ids, cannot be processed)
	Doc      string
}

// docs says what each column means; a column without a doc fails TestColumnsDocumented.
var docs = map[string]string{
	"event_id":    "UUID given by the collector; the dedupe key",
	"event_time":  "when the event happened, by the client's clock (UTC); may be missing",
	"received_at": "when the collector received the event (UTC)",
	"event_name":  "what happened, e.g. screen_view",
	"user_id":     "signed-in user id, if any",
	"device_id":   "anonymous install or browser id, if any",
	"session_id":  "the client's session id, if it sends one",
	"product":     "which app or site sent the event",
	"platform":    "web, ios, android, ...",
	"app_version": "version of the app that sent the event",
	"country":     "country code, if known",
	"properties":  "free-form string key/value pairs",
}

var required = map[string]bool{"event_id": true, "received_at": true, "event_name": true}

// Columns lists the raw columns in schema order, derived from Raw's tags.
func Columns() []Column {
	t := reflect.TypeOf(Raw{})
	cols := make([]Column, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("parquet"), ",")
		cols = append(cols, Column{Name: name, Type: HiveType(f.Type), Required: required[name], Doc: docs[name]})
	}
	return cols
}

// HiveType maps a Go field type of a table struct to its Glue/Athena type.
// It panics on a type no table should use, so a mistake shows in tests.
func HiveType(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeOf(time.Time{}):
		return "timestamp"
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Int64, t.Kind() == reflect.Int:
		return "bigint"
	case t.Kind() == reflect.Int32:
		return "int"
	case t.Kind() == reflect.Float64:
		return "double"
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && t.Elem().Kind() == reflect.String:
		return "map<string,string>"
	}
	panic("event: no Hive type for " + t.String())
}
