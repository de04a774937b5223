package index

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"testing"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/raw"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// BenchmarkScanVsRead indexes one day of raw objects with Scan and reads
// them whole with raw.Read, one object at a time. Point it at an eventgen
// store:
//
//	go run ./cmd/eventgen --out /tmp/ixbench --from 2026-01-01 --to 2026-01-01 --events-per-day 5000000
//	WAREHOUSE_IXBENCH=/tmp/ixbench go test ./internal/index -run '^$' -bench ScanVsRead -benchtime 3x
//
// Without WAREHOUSE_IXBENCH it uses the small nasty test set.
func BenchmarkScanVsRead(b *testing.B) {
	dir := os.Getenv("WAREHOUSE_IXBENCH")
	if dir == "" {
		dir, _ = nastyStore(b)
	}
	st, err := store.OpenDir(dir, false)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	objs := listRaw(b, st)
	var size int64
	for _, o := range objs {
		size += o.Size
	}
	rules := compact.DefaultRules(mustLoc(b, "Pacific/Auckland"))

	b.Run("Scan", func(b *testing.B) {
		b.SetBytes(size)
		var rows, read int64
		for b.Loop() {
			rows, read = 0, 0
			for _, o := range objs {
				r, err := st.Open(ctx, o.Key)
				if err != nil {
					b.Fatal(err)
				}
				cr := &countingReader{r: r}
				e, err := Scan(cr, r.Size(), o.Key, o.Hour, rules)
				r.Close()
				if err != nil {
					b.Fatal(err)
				}
				rows += e.Rows
				read += cr.n.Load()
			}
		}
		b.ReportMetric(float64(rows), "rows/op")
		b.ReportMetric(float64(read)/float64(size)*100, "%read")
	})
	b.Run("raw.Read", func(b *testing.B) {
		b.SetBytes(size)
		var rows int64
		for b.Loop() {
			rows = 0
			for _, o := range objs {
				rs, err := raw.Read(ctx, st, o.Key)
				if err != nil {
					if _, ok := err.(*raw.BadObjectError); ok {
						continue
					}
					b.Fatal(err)
				}
				rows += int64(len(rs))
			}
		}
		b.ReportMetric(float64(rows), "rows/op")
	})
	for _, p := range []int{1, 2, 8} {
		b.Run(fmt.Sprintf("Update/parallel=%d", p), func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				ix := &Index{}
				n, err := ix.Update(ctx, st, objs, rules, p)
				if err != nil || n != len(objs) {
					b.Fatal(n, err)
				}
			}
		})
	}
}

type countingReader struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}
