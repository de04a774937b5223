// Package rawtest crafts raw objects that lie: Parquet files whose footer
// or page headers claim sizes and counts their bytes do not hold. The
// reader (internal/raw) and the index scanner (internal/index) must both
// name each one a bad object, without panicking or allocating what the lie
// claims.
package rawtest

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"github.com/littlewarehouse/warehouse/internal/event"
)

// Case is one crafted object and the bad-object reason it must get.
type Case struct {
	Name   string
	Data   []byte
	Reason string // a raw.Reason* value
}

// Good returns a small, valid, uncompressed raw object of n rows.
func Good(t testing.TB, n int) []byte {
	t.Helper()
	return goodWith(t, n, &parquet.Uncompressed)
}

// goodWith is Good compressed with codec.
func goodWith(t testing.TB, n int, codec compress.Codec) []byte {
	t.Helper()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rows := make([]event.Raw, n)
	for i := range rows {
		rows[i] = event.Raw{EventID: string(rune('a'+i%26)) + "-event", EventTime: at, ReceivedAt: at.Add(time.Duration(i) * time.Second),
			EventName: "view", UserID: "u", Properties: map[string]string{"k": "v"}}
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[event.Raw](&buf, parquet.Compression(codec))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// split returns a file's data (everything before the footer) and its
// decoded footer.
func split(t testing.TB, b []byte) ([]byte, *format.FileMetaData) {
	t.Helper()
	n := int(binary.LittleEndian.Uint32(b[len(b)-8:]))
	end := len(b) - 8 - n
	md := new(format.FileMetaData)
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), b[end:len(b)-8], md); err != nil {
		t.Fatal(err)
	}
	return b[:end], md
}

// join writes data followed by md as the footer.
func join(t testing.TB, data []byte, md *format.FileMetaData) []byte {
	t.Helper()
	foot, err := thrift.Marshal(new(thrift.CompactProtocol), md)
	if err != nil {
		t.Fatal(err)
	}
	out := append(append([]byte{}, data...), foot...)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(foot)))
	return append(out, "PAR1"...)
}

// EditFooter returns b with its footer changed by edit.
func EditFooter(t testing.TB, b []byte, edit func(md *format.FileMetaData)) []byte {
	t.Helper()
	data, md := split(t, b)
	edit(md)
	return join(t, data, md)
}

// EditPage returns b with the first page header of column col (in the
// first row group) changed by edit; offsets after it are moved so that
// everything else stays consistent.
func EditPage(t testing.TB, b []byte, col int, edit func(h *format.PageHeader)) []byte {
	t.Helper()
	return editPage(t, b, col, func(h *format.PageHeader, data []byte) []byte {
		edit(h)
		return data
	})
}

// editPage returns b with the first page of column col (in the first row
// group), its header and its bytes, changed by edit, which returns the
// page's new bytes (CompressedPageSize is set to their length if it
// changed); offsets after it are moved so that everything else stays
// consistent.
func editPage(t testing.TB, b []byte, col int, edit func(h *format.PageHeader, data []byte) []byte) []byte {
	t.Helper()
	data, md := split(t, b)
	m := &md.RowGroups[0].Columns[col].MetaData
	at := m.DataPageOffset
	if m.DictionaryPageOffset > 0 && m.DictionaryPageOffset < at {
		at = m.DictionaryPageOffset
	}
	// Decode the header at at: thrift.Unmarshal wants exactly its bytes,
	// so find its length by decoding ever longer prefixes.
	var h format.PageHeader
	var hn int
	for hn = 1; ; hn++ {
		if int(at)+hn > len(data) {
			t.Fatal("no page header at the chunk's offset")
		}
		h = format.PageHeader{}
		if thrift.Unmarshal(new(thrift.CompactProtocol), data[at:int(at)+hn], &h) == nil {
			break
		}
	}
	page := data[int(at)+hn : int(at)+hn+int(h.CompressedPageSize)]
	np := edit(&h, bytes.Clone(page))
	if len(np) != len(page) {
		h.CompressedPageSize = int32(len(np))
	}
	if h.CRC != 0 && !bytes.Equal(np, page) {
		h.CRC = int32(crc32.ChecksumIEEE(np))
	}
	nh, err := thrift.Marshal(new(thrift.CompactProtocol), &h)
	if err != nil {
		t.Fatal(err)
	}
	delta := int64(len(nh)+len(np)) - int64(hn+len(page))
	out := append(append(append(append([]byte{}, data[:at]...), nh...), np...), data[int(at)+hn+len(page):]...)
	for i := range md.RowGroups {
		for j := range md.RowGroups[i].Columns {
			c := &md.RowGroups[i].Columns[j].MetaData
			if c.DataPageOffset > at {
				c.DataPageOffset += delta
			}
			if c.DictionaryPageOffset > at {
				c.DictionaryPageOffset += delta
			}
			if i == 0 && j == col {
				c.TotalCompressedSize += delta
			}
		}
	}
	return join(t, out, md)
}

// column returns the index of the leaf column named name in b's schema.
func column(t testing.TB, b []byte, name string) int {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	leaf, ok := f.Schema().Lookup(name)
	if !ok {
		t.Fatalf("no column %s", name)
	}
	return leaf.ColumnIndex
}

// Lying returns the crafted objects, each a bad object with reason
// "corrupt". The footer-level lies are caught by opening the file (so the
// index scanner finds them too); the page-level ones are in received_at, a
// column the scanner reads.
func Lying(t testing.TB) []Case {
	t.Helper()
	good := Good(t, 40)
	snappy := goodWith(t, 40, &parquet.Snappy)
	rcv := column(t, good, "received_at")
	rnd := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rnd.UintN(256))
	}
	copy(random, "PAR1")
	copy(random[len(random)-4:], "PAR1")
	plausible := append([]byte{}, random...) // a footer length that fits
	binary.LittleEndian.PutUint32(plausible[len(plausible)-8:], 1000)

	const huge = 1 << 31
	return []Case{
		{"a footer claiming 2^31 rows", EditFooter(t, good, func(md *format.FileMetaData) {
			md.NumRows = huge
			md.RowGroups[0].NumRows = huge
		}), "corrupt"},
		{"a row group claiming 2^31 rows under a modest file total", EditFooter(t, good, func(md *format.FileMetaData) {
			md.RowGroups[0].NumRows = huge
		}), "corrupt"},
		{"a footer length pointing before the file's start", func() []byte {
			b := append([]byte{}, good...)
			binary.LittleEndian.PutUint32(b[len(b)-8:], uint32(len(b)+100))
			return b
		}(), "corrupt"},
		{"a footer length of 4 GiB", func() []byte {
			b := append([]byte{}, good...)
			binary.LittleEndian.PutUint32(b[len(b)-8:], 0xffffffff)
			return b
		}(), "corrupt"},
		{"random bytes between PAR1 magic", random, "corrupt"},
		{"random bytes between PAR1 with a footer length that fits", plausible, "corrupt"},
		{"a footer list claiming 2^28 row groups", func() []byte {
			// FileMetaData field 4 (row_groups) is a list of structs;
			// rewrite its header to claim 2^28 elements.
			data, md := split(t, good)
			foot, err := thrift.Marshal(new(thrift.CompactProtocol), md)
			if err != nil {
				t.Fatal(err)
			}
			i := bytes.Index(foot, []byte{0x19, 0x1c}) // field delta 1 (3->4), list; one struct
			if i < 0 {
				t.Fatal("row_groups list header not found")
			}
			forged := append(append(append([]byte{}, foot[:i]...), 0x19, 0xfc, 0x80, 0x80, 0x80, 0x01), foot[i+2:]...)
			out := append(append([]byte{}, data...), forged...)
			out = binary.LittleEndian.AppendUint32(out, uint32(len(forged)))
			return append(out, "PAR1"...)
		}(), "corrupt"},
		{"a column chunk offset past the end of the file", EditFooter(t, good, func(md *format.FileMetaData) {
			md.RowGroups[0].Columns[rcv].MetaData.DataPageOffset = int64(len(good)) + 1000
		}), "corrupt"},
		{"a column chunk length past the end of the file", EditFooter(t, good, func(md *format.FileMetaData) {
			md.RowGroups[0].Columns[rcv].MetaData.TotalCompressedSize = 1 << 40
		}), "corrupt"},
		{"a page header claiming a huge uncompressed size", EditPage(t, good, rcv, func(h *format.PageHeader) {
			h.UncompressedPageSize = 1<<31 - 1
		}), "corrupt"},
		{"a page header claiming a huge compressed size", EditPage(t, good, rcv, func(h *format.PageHeader) {
			h.CompressedPageSize = 1<<31 - 1
		}), "corrupt"},
		{"a Snappy page whose block claims 2 GiB", editPage(t, snappy, rcv, func(h *format.PageHeader, data []byte) []byte {
			// The block's length, a varint, comes first (after the
			// levels of a v2 page, which are not compressed).
			at := 0
			if v2 := h.DataPageHeaderV2; v2.Valid {
				at = int(v2.V.DefinitionLevelsByteLength + v2.V.RepetitionLevelsByteLength)
			}
			_, n := binary.Uvarint(data[at:])
			return append(binary.AppendUvarint(data[:at:at], 1<<31-1), data[at+n:]...)
		}), "corrupt"},
		{"a page header claiming 2^30 values", EditPage(t, good, rcv, func(h *format.PageHeader) {
			if h.DataPageHeader.Valid {
				h.DataPageHeader.V.NumValues = 1 << 30
			}
			if h.DataPageHeaderV2.Valid {
				h.DataPageHeaderV2.V.NumValues = 1 << 30
			}
		}), "corrupt"},
	}
}
