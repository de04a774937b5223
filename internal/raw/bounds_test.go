package raw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"

	"github.com/littlewarehouse/warehouse/internal/raw/rawtest"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// maxLieAlloc is the most a lying object may make the reader allocate.
const maxLieAlloc = 64 << 20

// TestReadLyingObjects: an object whose footer or page headers claim more
// than its bytes hold is a bad object, named corrupt, and reading it
// allocates little. Before the bounds, the 2^31-row footer killed the
// process (fatal error: out of memory) and the footer length pointing
// before the start failed the run.
func TestReadLyingObjects(t *testing.T) {
	for _, tc := range rawtest.Lying(t) {
		t.Run(tc.Name, func(t *testing.T) {
			var rows []Row
			var err error
			alloc := allocated(func() { rows, err = read(t, tc.Data) })
			var bad *BadObjectError
			if !errors.As(err, &bad) || bad.Reason != tc.Reason || rows != nil {
				t.Fatalf("%d rows, err %v; want a bad object (%s)", len(rows), err, tc.Reason)
			}
			if alloc > maxLieAlloc {
				t.Fatalf("allocated %d MiB reading %d bytes", alloc>>20, len(tc.Data))
			}
		})
	}
}

// TestReadLyingObjectsThroughAStore: the same objects read through a store
// whose reader fails on offsets outside the object (as the S3 store does
// for a negative one) are bad objects too, not failed reads to retry.
func TestReadLyingObjectsThroughAStore(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMem()
	for i, tc := range rawtest.Lying(t) {
		key := fmt.Sprintf("raw/lie-%d", i)
		if err := mem.Put(ctx, key, tc.Data); err != nil {
			t.Fatal(err)
		}
		_, err := Read(ctx, rawtest.StrictStore{Store: mem}, key)
		var bad *BadObjectError
		if !errors.As(err, &bad) || bad.Reason != tc.Reason {
			t.Errorf("%s: err %v; want a bad object (%s)", tc.Name, err, tc.Reason)
		}
	}
}

// allocated returns the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestReadGoodObjectWithinBounds: the bounds do not refuse a good object,
// and it is read in one read per column chunk plus the footer's.
func TestReadGoodObjectWithinBounds(t *testing.T) {
	b := rawtest.Good(t, 40)
	rows, err := read(t, b)
	if err != nil || len(rows) != 40 {
		t.Fatalf("%d rows, %v", len(rows), err)
	}
	cr := &countingReader{r: bytes.NewReader(b)}
	if _, err := ReadFrom(cr, int64(len(b)), "k"); err != nil {
		t.Fatal(err)
	}
	// Our checks read the magic at both ends, the length and the footer;
	// parquet-go the leading magic again; then one read per column chunk
	// read (11 flat columns and 2 map leaves at most).
	if cr.n > 5+13 {
		t.Fatalf("%d reads", cr.n)
	}
}

type countingReader struct {
	r io.ReaderAt
	n int
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	c.n++
	return c.r.ReadAt(p, off)
}

func TestThriftSize(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"empty struct", []byte{0}, true},
		{"i32 field then stop", []byte{0x15, 0x02, 0}, true},
		{"truncated", []byte{0x15}, false},
		{"binary longer than the input", []byte{0x18, 0x7f, 'a', 0}, false},
		{"list claiming 2^28 structs", []byte{0x19, 0xfc, 0x80, 0x80, 0x80, 0x01, 0}, false},
		{"map claiming more pairs than bytes", []byte{0x1b, 0x10, 0x55, 0}, false},
		{"unknown type", []byte{0x1d, 0}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := thriftSize(tc.b)
			if (err == nil) != tc.ok || (tc.ok && n != len(tc.b)) {
				t.Fatalf("thriftSize = %d, %v; want ok=%v", n, err, tc.ok)
			}
		})
	}
	deep := bytes.Repeat([]byte{0x1c}, 100) // struct in struct in ...
	if _, err := thriftSize(deep); err == nil {
		t.Fatal("100 nested structs accepted")
	}
}
