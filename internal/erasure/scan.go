package erasure

import (
	"io"

	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/raw"
)

// Found is what ScanParquet found in one file.
type Found struct {
	Rows    int64 // rows read
	Matched int64 // rows that are the request's
	Later   int64 // rows of its ids and product received after it (Timed only): the person came back
	// Timed says the file has a received_at column, so rows received
	// after the request (the person came back) were not matched.
	Timed bool
}

// ScanParquet reads a table's Parquet file, the columns it needs whole,
// and counts the rows of m's request: its product (when the file has a
// top-level product column), with a user_id, device_id or user_key the
// request names, received up to the request (when the file has a
// received_at column, in milliseconds).
func ScanParquet(r io.ReaderAt, size int64, m *Matcher) (Found, error) {
	f, err := parquet.OpenFile(r, size)
	if err != nil {
		return Found{}, err
	}
	col := func(name string) int {
		if c, ok := f.Schema().Lookup(name); ok && c.MaxRepetitionLevel == 0 {
			return c.ColumnIndex
		}
		return -1
	}
	product, received := col("product"), col("received_at")
	var ids []int
	for _, n := range []string{"user_id", "device_id", "user_key"} {
		if i := col(n); i >= 0 {
			ids = append(ids, i)
		}
	}
	out := Found{Timed: received >= 0, Rows: f.NumRows()}
	if len(ids) == 0 {
		return out, nil
	}
	buf := make([]parquet.Value, 1024)
	for _, rg := range f.RowGroups() {
		n := int(rg.NumRows())
		other, after, hit := make([]bool, n), make([]bool, n), make([]bool, n)
		read := func(c int, fn func(v parquet.Value) bool, set []bool) error {
			if c < 0 {
				return nil
			}
			return raw.ReadFlatColumn(rg.ColumnChunks()[c], buf, n, func(vals []parquet.Value, first int) {
				for j, v := range vals {
					if fn(v) {
						set[first+j] = true
					}
				}
			})
		}
		if err := read(product, func(v parquet.Value) bool { return !m.Product(string(v.ByteArray())) }, other); err != nil {
			return out, err
		}
		if err := read(received, func(v parquet.Value) bool { return !v.IsNull() && v.Int64() > m.until }, after); err != nil {
			return out, err
		}
		for _, c := range ids {
			if err := read(c, func(v parquet.Value) bool { return !v.IsNull() && m.ID(string(v.ByteArray())) }, hit); err != nil {
				return out, err
			}
		}
		for i := range n {
			switch {
			case !hit[i] || other[i]:
			case after[i]:
				out.Later++
			default:
				out.Matched++
			}
		}
	}
	return out, nil
}
