package erasure

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"time"

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
// convert (the collector's JSON event). Its fields are kept raw: a record
// is often rejected because a field has the wrong type ("user_id": 12345),
// and such a record must still be found.
type rawRecord struct {
	Product  json.RawMessage `json:"product"`
	UserID   json.RawMessage `json:"user_id"`
	DeviceID json.RawMessage `json:"device_id"`
}

// FilterErrors returns a Firehose error file (JSON lines), of an object
// written at written, without the records that are m's: their rawData,
// decoded, is a JSON event whose product, user_id or device_id m matches
// (each a string or a number), and they arrived up to the request
// (Matcher.Received). Other lines are kept byte for byte. It returns the
// lines (records) the file held, how many it removed, and how many it
// could not search (undecodable: not an error record, rawData not base64
// or not a JSON object, or one of those fields neither a string, a number
// nor null): those are kept, and the file is not known clean of m's ids.
func FilterErrors(b []byte, m *Matcher, written time.Time) (out []byte, records, removed, undecodable int64) {
	out = make([]byte, 0, len(b))
	for len(b) > 0 {
		line, rest, found := bytes.Cut(b, []byte{'\n'})
		b = rest
		if len(bytes.TrimSpace(line)) > 0 {
			records++
			match, ok := errorRecordMatches(line, m, written)
			if !ok {
				undecodable++
			}
			if match {
				removed++
				continue
			}
		}
		out = append(out, line...)
		if found {
			out = append(out, '\n')
		}
	}
	return out, records, removed, undecodable
}

// errorRecordMatches reports whether line is a record of m's request; ok
// is false if it could not be searched.
func errorRecordMatches(line []byte, m *Matcher, written time.Time) (match, ok bool) {
	var l errorLine
	if json.Unmarshal(line, &l) != nil || l.RawData == "" {
		return false, false
	}
	data, err := base64.StdEncoding.DecodeString(l.RawData)
	if err != nil {
		return false, false
	}
	var r rawRecord
	if json.Unmarshal(data, &r) != nil {
		return false, false
	}
	product, ok1 := scalar(r.Product)
	user, ok2 := scalar(r.UserID)
	device, ok3 := scalar(r.DeviceID)
	if !ok1 || !ok2 || !ok3 {
		return false, false
	}
	return m.Row(product, user, device, l.ArrivalTimestamp, l.ArrivalTimestamp > 0, written), true
}

// scalar returns a JSON field as text: a string's value, a number's
// literal, "" for null or absent; ok is false for anything else.
func scalar(v json.RawMessage) (string, bool) {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0 || string(v) == "null":
		return "", true
	case v[0] == '"':
		var s string
		return s, json.Unmarshal(v, &s) == nil
	case v[0] == '-' || (v[0] >= '0' && v[0] <= '9'):
		return string(v), true
	}
	return "", false
}
