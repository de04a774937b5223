package publish

import (
	"github.com/klauspost/compress/zstd"
	pqzstd "github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/littlewarehouse/warehouse/internal/bufpool"
)

// codec is the zstd codec of every Parquet file written (fastest level).
var codec = newZstdCodec(pqzstd.SpeedFastest, false)

// seqCodec compresses the pages of the events table's columns whose
// values mostly repeat or start like the value before them (the event
// ids, and the string columns sorted by who): klauspost's fastest level
// with every block's literals Huffman-coded, which shrinks these pages
// more than the default levels do.
var seqCodec = newZstdCodec(pqzstd.SpeedFastest, true)

// newZstdCodec returns a codec of level whose frames have no checksum and
// whose literals, with allLit, are Huffman-coded in every block (else
// only where the encoder's heuristics expect a gain).
func newZstdCodec(level pqzstd.Level, allLit bool) *zstdCodec {
	return &zstdCodec{Codec: &pqzstd.Codec{Level: level}, allLit: allLit, encoders: bufpool.New[*zstd.Encoder](8)}
}

// zstdCodec is a parquet compress.Codec whose Encode reuses encoders (a
// new one allocates and clears megabytes of history). Decode, String and
// CompressionCodec are the embedded codec's.
type zstdCodec struct {
	*pqzstd.Codec
	allLit   bool // zstd.WithAllLitEntropyCompression
	encoders *bufpool.Pool[*zstd.Encoder]
}

// Encode compresses src as one zstd frame appended to dst[:0].
func (c *zstdCodec) Encode(dst, src []byte) ([]byte, error) {
	e, ok := c.encoders.Get()
	if !ok {
		var err error
		e, err = zstd.NewWriter(nil,
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderLevel(c.Level),
			zstd.WithZeroFrames(true),
			zstd.WithEncoderCRC(false),
			zstd.WithAllLitEntropyCompression(c.allLit),
		)
		if err != nil {
			return nil, err
		}
	}
	out := e.EncodeAll(src, dst[:0])
	c.encoders.Put(e)
	return out, nil
}
