package publish

import (
	"github.com/klauspost/compress/zstd"
	pqzstd "github.com/parquet-go/parquet-go/compress/zstd"
)

// codec is the zstd codec of every Parquet file written (fastest level).
// It is parquet-go's, but for where its encoders live: parquet-go keeps
// them in a sync.Pool per codec value, which every garbage collection
// empties, and a new encoder allocates and clears 16 MB of history. A run
// writes hundreds of files and collects garbage often (the day's build
// runs with a low GOGC), so encoders are kept here, in a free list, and
// made with parquet-go's options: the bytes written are the same.
var codec = &zstdCodec{Codec: &pqzstd.Codec{Level: pqzstd.SpeedFastest}, encoders: make(chan *zstd.Encoder, 8)}

// zstdCodec is a parquet compress.Codec whose Encode reuses encoders.
// Decode, String and CompressionCodec are the embedded codec's.
type zstdCodec struct {
	*pqzstd.Codec
	encoders chan *zstd.Encoder // idle encoders; more than its capacity are dropped
}

// Encode compresses src as one zstd frame appended to dst[:0].
func (c *zstdCodec) Encode(dst, src []byte) ([]byte, error) {
	var e *zstd.Encoder
	select {
	case e = <-c.encoders:
	default:
		var err error
		e, err = zstd.NewWriter(nil,
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderLevel(c.Level),
			zstd.WithZeroFrames(true),
			zstd.WithEncoderCRC(false),
		)
		if err != nil {
			return nil, err
		}
	}
	out := e.EncodeAll(src, dst[:0])
	select {
	case c.encoders <- e:
	default:
	}
	return out, nil
}
