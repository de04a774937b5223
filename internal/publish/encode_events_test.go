package publish

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/littlewarehouse/warehouse/internal/frame"
	"github.com/littlewarehouse/warehouse/internal/pqrows"
	"github.com/littlewarehouse/warehouse/rollups"
)

// encodeAlone encodes events [lo, hi) of ev as one row group file.
func encodeAlone(t *testing.T, ev *frame.Events, lo, hi int) *parquet.File {
	t.Helper()
	tmpl, err := rowGroupTemplate()
	if err != nil {
		t.Fatal(err)
	}
	strs := ev.Dict.Strings()
	g := newGroupEncoder(ev, strs, ev.Dict.Ranks(), tmpl)
	b, err := g.encodeGroup(context.Background(), lo, hi)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// withUUIDs returns ev's rows with canonical UUID event ids, packed.
func withUUIDs(t *testing.T, ev *frame.Events) *frame.Events {
	out := frame.New(nil, ev.Len())
	for i := range ev.Len() {
		r := ev.Row(i)
		r.EventID = fmt.Sprintf("%08x-%04x-7%03x-8000-%012x", i*7919%ev.Len(), i%3, i%4096, i)
		if err := out.Append(&r); err != nil {
			t.Fatal(err)
		}
	}
	if !out.PackUUIDs() {
		t.Fatal("ids not packed")
	}
	return out
}

// TestEncodeGroupMatchesParquetGo: a row group encoded from the frame
// reads back as the events, and each column chunk's values, statistics,
// encodings and page types are what parquet-go's own writer makes of the
// same rows; the page index agrees with the pages as parquet-go reads
// them (see checkPageIndex). Pages are made small too, so that every
// column has many.
func TestEncodeGroupMatchesParquetGo(t *testing.T) {
	rng := rand.New(rand.NewSource(21))
	for _, tc := range []struct {
		n, page int
		uuids   bool
		sorted  bool // sorted as a day is: its string columns mostly repeat (see encodeSorted)
	}{{1, 1 << 20, false, false}, {7, 1 << 20, false, false}, {5000, 1 << 20, false, false}, {30000, 1 << 20, true, false},
		{20000, 2 << 10, false, false}, {20000, 512, true, false}, {30000, 1 << 20, false, true}, {30000, 4 << 10, true, true}} {
		t.Run(fmt.Sprintf("%d events, %d B pages, uuids %v, sorted %v", tc.n, tc.page, tc.uuids, tc.sorted), func(t *testing.T) {
			defer func(p int) { pageSize = p }(pageSize)
			pageSize = tc.page
			ev := randomEvents(rng, tc.n)
			if tc.sorted {
				ev = benchFrame(tc.n)
			}
			if tc.uuids {
				ev = withUUIDs(t, ev)
			}
			rows := make([]rollups.Event, ev.Len())
			for i := range rows {
				rows[i] = eventOf(ev, i)
			}
			var buf bytes.Buffer
			w := parquet.NewGenericWriter[rollups.Event](&buf, writerConfig(WriterOptions{})...)
			if err := pqrows.Write(w, rows); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			ref, err := parquet.OpenFile(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if err != nil {
				t.Fatal(err)
			}
			mine := encodeAlone(t, ev, 0, ev.Len())

			got, err := parquet.Read[rollups.Event](bytes.NewReader(fileBytes(t, mine)), mine.Size())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(rows, got); diff != "" {
				t.Fatalf("rows read back (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(ref.Metadata().Schema, mine.Metadata().Schema); diff != "" {
				t.Fatalf("schema (-parquet-go +ours):\n%s", diff)
			}
			want, have := ref.Metadata().RowGroups[0], mine.Metadata().RowGroups[0]
			if want.NumRows != have.NumRows {
				t.Fatalf("%d rows, parquet-go %d", have.NumRows, want.NumRows)
			}
			for i := range want.Columns {
				a, b := want.Columns[i].MetaData, have.Columns[i].MetaData
				if diff := cmp.Diff(a.Statistics, b.Statistics); diff != "" {
					t.Errorf("column %v statistics (-parquet-go +ours):\n%s", a.PathInSchema, diff)
				}
				if a.NumValues != b.NumValues || a.Type != b.Type || a.Codec != b.Codec || !slices.Equal(a.PathInSchema, b.PathInSchema) {
					t.Errorf("column %v: values %d type %v codec %v, parquet-go %d %v %v", b.PathInSchema, b.NumValues, b.Type, b.Codec, a.NumValues, a.Type, a.Codec)
				}
				if diff := cmp.Diff(pageKinds(a.EncodingStats), pageKinds(b.EncodingStats)); diff != "" {
					t.Errorf("column %v page types and encodings (-parquet-go +ours):\n%s", a.PathInSchema, diff)
				}
				checkPageIndex(t, mine, i)
				if tc.page < 1<<20 && len(mine.OffsetIndexes()[i].PageLocations) < 2 && tc.n > 1000 {
					t.Errorf("column %v: one page with %d B pages", b.PathInSchema, tc.page)
				}
			}
		})
	}
}

// pageKinds is encoding stats without the page counts.
func pageKinds(s []format.PageEncodingStats) []format.PageEncodingStats {
	out := slices.Clone(s)
	for i := range out {
		out[i].Count = 0
	}
	return out
}

func fileBytes(t *testing.T, f *parquet.File) []byte {
	t.Helper()
	b := make([]byte, f.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

// checkPageIndex reads column col's pages with parquet-go and checks each
// against the column index (null page, null count, min and max, the
// latter truncated as parquet-go truncates them) and the offset index
// (first row); and the boundary order against the mins and maxes.
func checkPageIndex(t *testing.T, f *parquet.File, col int) {
	t.Helper()
	ci, oi := f.ColumnIndexes()[col], f.OffsetIndexes()[col]
	cc := f.RowGroups()[0].ColumnChunks()[col]
	kind := cc.Type()
	pages := cc.Pages()
	defer pages.Close()
	var row int64
	for k := 0; ; k++ {
		p, err := pages.ReadPage()
		if err != nil {
			if k != len(oi.PageLocations) {
				t.Fatalf("column %d: %d pages read (%v), offset index has %d", col, k, err, len(oi.PageLocations))
			}
			break
		}
		if oi.PageLocations[k].FirstRowIndex != row {
			t.Errorf("column %d page %d: first row %d, offset index says %d", col, k, row, oi.PageLocations[k].FirstRowIndex)
		}
		row += p.NumRows()
		nulls := p.NumNulls()
		if ci.NullCounts[k] != nulls || ci.NullPages[k] != (nulls == p.NumValues()) {
			t.Errorf("column %d page %d: %d nulls of %d, index says %d (null page %v)", col, k, nulls, p.NumValues(), ci.NullCounts[k], ci.NullPages[k])
		}
		mn, mx, ok := p.Bounds()
		if ok {
			wmn, wmx := mn.Bytes(), mx.Bytes()
			if kind.Kind() == parquet.ByteArray {
				wmn, wmx = truncateMin(wmn), truncateMax(wmx)
			}
			if !bytes.Equal(wmn, ci.MinValues[k]) || !bytes.Equal(wmx, ci.MaxValues[k]) {
				t.Errorf("column %d page %d: bounds %q..%q, index says %q..%q", col, k, wmn, wmx, ci.MinValues[k], ci.MaxValues[k])
			}
		}
		parquet.Release(p)
	}
	var mins, maxs []parquet.Value
	for k, null := range ci.NullPages {
		if !null {
			mins, maxs = append(mins, kind.Kind().Value(ci.MinValues[k])), append(maxs, kind.Kind().Value(ci.MaxValues[k]))
		}
	}
	up := func(v []parquet.Value) bool { return slices.IsSortedFunc(v, kind.Compare) }
	down := func(v []parquet.Value) bool {
		return slices.IsSortedFunc(v, func(a, b parquet.Value) int { return kind.Compare(b, a) })
	}
	want := format.Unordered
	switch asc, desc := up(mins) && up(maxs), down(mins) && down(maxs); {
	case asc && !desc:
		want = format.Ascending
	case desc && !asc:
		want = format.Descending
	}
	if want != ci.BoundaryOrder {
		t.Errorf("column %d: boundary order %v, pages say %v", col, ci.BoundaryOrder, want)
	}
}

// TestTruncateMinMax: a truncated min is no greater and a truncated max no
// less than the value, and both fit the limit.
func TestTruncateMinMax(t *testing.T) {
	for _, s := range []string{"", "a", "0123456789abcdef", "0123456789abcdefg", "0123456789abcde\xff\xff", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"} {
		mn, mx := truncateMin([]byte(s)), truncateMax([]byte(s))
		if len(mn) > columnIndexLimit || len(mx) > columnIndexLimit && len(s) > columnIndexLimit {
			t.Errorf("%q: %q %q longer than %d", s, mn, mx, columnIndexLimit)
		}
		if bytes.Compare(mn, []byte(s)) > 0 || (bytes.Compare(mx, []byte(s)) < 0 && mx[0] != 0xff) {
			t.Errorf("%q: min %q max %q do not bound it", s, mn, mx)
		}
	}
}
