package raw

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	"testing"

	"github.com/littlewarehouse/warehouse/internal/raw/rawtest"
)

// readAllocBound is the most bytes reading an object of size bytes may
// allocate: a small multiple of its size (its rows, their dictionary,
// chunk buffers), and for pages whose uncompressed size their bytes
// cannot vouch for (gzip, zstd) what MaxPageBytes lets a few of them
// claim.
func readAllocBound(size int) uint64 { return 64*uint64(size) + 4*MaxPageBytes }

// FuzzReadFrom: ReadFrom never panics on any input; it reads the object
// or fails with a *BadObjectError (the reader is memory, so no other
// error), never both rows and an error; and it allocates at most
// readAllocBound. The seeds are the foreign and broken files, the lying
// objects of rawtest, and (testdata/fuzz/FuzzReadFrom) small good objects,
// uncompressed, Snappy, gzip and zstd, whole and with bytes changed.
func FuzzReadFrom(f *testing.F) {
	for _, p := range foreignFiles(f) {
		if b, err := os.ReadFile(p); err == nil && len(b) < 64<<10 {
			f.Add(b)
		}
	}
	for _, c := range rawtest.Lying(f) {
		f.Add(c.Data)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		rows, err := ReadFrom(bytes.NewReader(b), int64(len(b)), "fuzz")
		runtime.ReadMemStats(&after)
		var bad *BadObjectError
		if err != nil && !errors.As(err, &bad) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		if err != nil && rows != nil {
			t.Fatal("rows returned with an error")
		}
		if alloc, bound := after.TotalAlloc-before.TotalAlloc, readAllocBound(len(b)); alloc > bound {
			t.Fatalf("%d bytes: allocated %d, more than %d (err %v)", len(b), alloc, bound, err)
		}
	})
}
