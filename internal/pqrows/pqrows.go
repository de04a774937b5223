// Package pqrows writes Go structs to Parquet around a parquet-go bug.
//
// parquet-go v0.32.0's batched GenericWriter.Write writes some zero values of
// optional non-pointer fields as values instead of nulls (its run detection
// in writeRowsFuncOfOptional compares the shifted null bitmap with the wrong
// mask): an empty optional string becomes "", a zero optional timestamp
// becomes 1970-01-01 or 0001-01-01. A batch of one row, and optional pointer
// fields, are written correctly. Every struct writer of the project goes
// through Write, or uses pointer fields for optional columns; the events
// table is written column by column with explicit definition levels
// (publish.WriteEvents), which the bug does not reach.
package pqrows

import (
	"reflect"
	"strings"
	"sync"

	"github.com/parquet-go/parquet-go"
)

var affected sync.Map // reflect.Type → bool

// Affected reports whether t has an optional field whose type is not a
// pointer, map or slice: the fields the bug can write wrongly.
func Affected(t reflect.Type) bool {
	if v, ok := affected.Load(t); ok {
		return v.(bool)
	}
	bad := false
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		_, opts, _ := strings.Cut(f.Tag.Get("parquet"), ",")
		if !strings.Contains(","+opts+",", ",optional,") {
			continue
		}
		switch f.Type.Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice:
		default:
			bad = true
		}
	}
	affected.Store(t, bad)
	return bad
}

// Write writes rows to w: in one batch when T has no field the bug affects,
// else one row at a time (about twice as slow, and correct).
func Write[T any](w *parquet.GenericWriter[T], rows []T) error {
	if !Affected(reflect.TypeFor[T]()) {
		_, err := w.Write(rows)
		return err
	}
	for i := range rows {
		if _, err := w.Write(rows[i : i+1]); err != nil {
			return err
		}
	}
	return nil
}
