package raw

import "testing"

// grow trusts a footer's row count only up to one row per 64 bytes,
// grows to the rows decoded, and never past the claim unless more rows were
// decoded.
func TestGrow(t *testing.T) {
	for _, c := range []struct {
		name                   string
		len, cap, n            int
		claimed, size          int64
		wantCapMin, wantCapMax int
	}{
		{"fits", 10, 20, 5, 1000, 64000, 20, 20},
		{"dense truthful footer: exactly the claim", 0, 0, 2145, 2145, 130000, 2145, 2145},
		{"lying footer: no more than size/64", 0, 0, 10, 1 << 40, 64000, 1000, 1000},
		{"lying footer, rows decoded: as append would", 1000, 1000, 1, 1 << 40, 64000, 2000, 2000},
		{"more decoded than claimed", 0, 0, 50, 10, 64000, 50, 50},
		{"second row group: up to the claim", 100, 100, 100, 300, 64000, 300, 300},
		{"second row group of a small object: doubling", 100, 100, 100, 300, 64, 200, 200},
	} {
		rows := make([]Row, c.len, c.cap)
		got := cap(grow(rows, c.n, c.claimed, c.size))
		if got < c.wantCapMin || got > c.wantCapMax || got < c.len+c.n {
			t.Errorf("%s: cap %d, want %d..%d", c.name, got, c.wantCapMin, c.wantCapMax)
		}
	}
}

// Chunk buffers are pooled by power-of-two size up to maxPooledChunk: a
// buffer put back is the next one got of its size, and DropReleased
// empties the pools.
func TestChunkBufs(t *testing.T) {
	DropReleased() // what earlier tests left
	for _, n := range []int64{0, 1, 1023, 1024, 1025, 1 << 20, maxPooledChunk, maxPooledChunk + 1} {
		b, p := getChunkBuf(n)
		if int64(len(b)) != n {
			t.Fatalf("getChunkBuf(%d): len %d", n, len(b))
		}
		if (p == nil) != (n > maxPooledChunk) {
			t.Fatalf("getChunkBuf(%d): pooled %v", n, p != nil)
		}
		if p != nil {
			putChunkBuf(p)
			if _, again := getChunkBuf(n); again != p {
				t.Fatalf("getChunkBuf(%d) after putChunkBuf: not the buffer put", n)
			}
		}
	}
	DropReleased()
	for i, p := range chunkBufs {
		if p.Len() != 0 {
			t.Errorf("chunkBufs[%d] keeps %d buffers after DropReleased", i, p.Len())
		}
	}
}
