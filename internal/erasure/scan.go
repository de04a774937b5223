package erasure

import (
	"io"

	"github.com/parquet-go/parquet-go"
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

// ScanParquet reads every row of a table's Parquet file and counts those
// of m's request: its product (when the file has a product column), with a
// user_id, device_id or user_key the request names, received up to the
// request (when the file has a received_at column, in milliseconds).
func ScanParquet(r io.ReaderAt, size int64, m *Matcher) (Found, error) {
	f, err := parquet.OpenFile(r, size)
	if err != nil {
		return Found{}, err
	}
	col := func(name string) int {
		if c, ok := f.Schema().Lookup(name); ok {
			return c.ColumnIndex
		}
		return -1
	}
	product, received := col("product"), col("received_at")
	ids := map[int]bool{}
	for _, n := range []string{"user_id", "device_id", "user_key"} {
		if i := col(n); i >= 0 {
			ids[i] = true
		}
	}
	out := Found{Timed: received >= 0}
	if len(ids) == 0 {
		out.Rows = f.NumRows()
		return out, nil
	}
	buf := make([]parquet.Row, 256)
	for _, rg := range f.RowGroups() {
		rows := rg.Rows()
		for {
			n, err := rows.ReadRows(buf)
			for _, row := range buf[:n] {
				out.Rows++
				switch rowMatches(row, m, product, received, ids) {
				case matched:
					out.Matched++
				case later:
					out.Later++
				}
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				rows.Close()
				return out, err
			}
		}
		if err := rows.Close(); err != nil {
			return out, err
		}
	}
	return out, nil
}

type match int

const (
	noMatch match = iota
	matched
	later // the request's ids and product, received after it
)

func rowMatches(row parquet.Row, m *Matcher, product, received int, ids map[int]bool) match {
	id, after := false, false
	for _, v := range row {
		c := v.Column()
		switch {
		case c == product && m.product != "" && string(v.ByteArray()) != m.product:
			return noMatch
		case c == received && !v.IsNull() && v.Int64() > m.until:
			after = true
		case ids[c] && !v.IsNull() && m.ID(string(v.ByteArray())):
			id = true
		}
	}
	switch {
	case !id:
		return noMatch
	case after:
		return later
	}
	return matched
}
