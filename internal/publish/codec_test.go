package publish

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	pqzstd "github.com/parquet-go/parquet-go/compress/zstd"
)

// The reusing codec writes the bytes parquet-go's own would, from any
// goroutine, and they decode back.
func TestCodecMatchesParquetGo(t *testing.T) {
	ref := &pqzstd.Codec{Level: pqzstd.SpeedFastest}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 50 {
				src := bytes.Repeat([]byte(fmt.Sprintf("event_%d|user_%d|", i, g*i)), 1+i*300)
				got, err := codec.Encode(nil, src)
				if err != nil {
					t.Error(err)
					return
				}
				want, _ := ref.Encode(nil, src)
				if !bytes.Equal(got, want) {
					t.Errorf("goroutine %d input %d: %d bytes, parquet-go's codec %d", g, i, len(got), len(want))
					return
				}
				back, err := codec.Decode(nil, got)
				if err != nil || !bytes.Equal(back, src) {
					t.Errorf("goroutine %d input %d: decoded %d bytes, err %v", g, i, len(back), err)
					return
				}
			}
		})
	}
	wg.Wait()
}
