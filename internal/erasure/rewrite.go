package erasure

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/snappy"
)

// FilterParquet copies the Parquet file in r to w without the rows whose
// drop is true (drop has one entry per row, in file order). The copy keeps
// the file's schema as it is — physical types such as INT96, columns the
// job does not read, optional columns — so that every row kept reads back
// exactly as before; it is Snappy-compressed. It returns the rows written.
func FilterParquet(r io.ReaderAt, size int64, drop []bool, w io.Writer) (int64, error) {
	f, err := parquet.OpenFile(r, size)
	if err != nil {
		return 0, err
	}
	if f.NumRows() != int64(len(drop)) {
		return 0, fmt.Errorf("filter: the file has %d rows, %d expected", f.NumRows(), len(drop))
	}
	pw := parquet.NewWriter(w, f.Schema(), parquet.Compression(&snappy.Codec{}), parquet.CreatedBy("littlewarehouse erase", "1", ""))
	buf := make([]parquet.Row, 256)
	i, kept := 0, int64(0)
	for _, rg := range f.RowGroups() {
		rows := rg.Rows()
		for {
			n, err := rows.ReadRows(buf)
			out := buf[:0:0]
			for _, row := range buf[:n] {
				if !drop[i] {
					out = append(out, row)
				}
				i++
			}
			if len(out) > 0 {
				if _, err := pw.WriteRows(out); err != nil {
					rows.Close()
					return 0, err
				}
				kept += int64(len(out))
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				rows.Close()
				return 0, err
			}
		}
		if err := rows.Close(); err != nil {
			return 0, err
		}
	}
	if i != len(drop) {
		return 0, fmt.Errorf("filter: read %d rows, %d expected", i, len(drop))
	}
	return kept, pw.Close()
}

// errorLine is what FilterErrors reads of a Firehose error record.
type errorLine struct {
	RawData          string `json:"rawData"`
	ArrivalTimestamp int64  `json:"arrivalTimestamp"`
}

// rawRecord is what FilterErrors reads of the record Firehose could not
// convert (the collector's JSON event).
type rawRecord struct {
	Product  string `json:"product"`
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id"`
}

// FilterErrors returns a Firehose error file (JSON lines) without the
// records that are m's: their rawData, decoded, is a JSON event whose
// product, user_id or device_id m matches, and they arrived up to the
// request. Other lines are kept byte for byte. It returns the lines
// (records) the file held and how many it removed.
func FilterErrors(b []byte, m *Matcher) (out []byte, records, removed int64) {
	out = make([]byte, 0, len(b))
	for len(b) > 0 {
		line, rest, found := bytes.Cut(b, []byte{'\n'})
		b = rest
		if len(bytes.TrimSpace(line)) > 0 {
			records++
			if errorRecordMatches(line, m) {
				removed++
				continue
			}
		}
		out = append(out, line...)
		if found {
			out = append(out, '\n')
		}
	}
	return out, records, removed
}

func errorRecordMatches(line []byte, m *Matcher) bool {
	var l errorLine
	if json.Unmarshal(line, &l) != nil || l.RawData == "" {
		return false
	}
	data, err := base64.StdEncoding.DecodeString(l.RawData)
	if err != nil {
		return false
	}
	var r rawRecord
	if json.Unmarshal(data, &r) != nil {
		return false
	}
	return m.Row(r.Product, r.UserID, r.DeviceID, l.ArrivalTimestamp, l.ArrivalTimestamp > 0)
}
