package rawtest

import (
	"context"
	"fmt"

	"github.com/littlewarehouse/warehouse/internal/store"
)

// StrictStore wraps a store whose readers (like store.Mem's) may accept
// offsets outside the object: its readers refuse them with an error that is
// not io.EOF, as store.S3 does, so a reader that trusts a lying footer fails
// the same way in tests as on S3.
type StrictStore struct{ store.Store }

type strictReader struct{ store.Reader }

// Open opens key with a strict reader.
func (s StrictStore) Open(ctx context.Context, key string) (store.Reader, error) {
	r, err := s.Store.Open(ctx, key)
	if err != nil {
		return nil, err
	}
	return strictReader{r}, nil
}

func (r strictReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > r.Size() {
		return 0, fmt.Errorf("offset %d outside the object (%d bytes)", off, r.Size())
	}
	return r.Reader.ReadAt(p, off)
}
