// Package pqrows writes Go structs to Parquet without parquet-go's batched
// struct path, which (v0.32.0) writes some zero values of optional
// non-pointer fields as values instead of nulls: an empty optional string
// becomes "", a zero optional timestamp becomes 0001-01-01. Every writer of
// the project goes through Write.
package pqrows

import (
	"github.com/parquet-go/parquet-go"
)

// Write writes rows to w, deconstructing each into a parquet.Row with w's
// schema (which decides nulls value by value) and writing them in batches.
func Write[T any](w *parquet.GenericWriter[T], rows []T) error {
	schema := w.Schema()
	const batch = 1024
	buf := make([]parquet.Row, min(batch, len(rows)))
	for n := 0; n < len(rows); n += batch {
		end := min(n+batch, len(rows))
		for i := n; i < end; i++ {
			buf[i-n] = schema.Deconstruct(buf[i-n][:0], &rows[i])
		}
		if _, err := w.WriteRows(buf[:end-n]); err != nil {
			return err
		}
	}
	return nil
}
