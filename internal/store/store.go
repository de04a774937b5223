// Package store is the object store the warehouse reads raw data from and
// publishes curated tables to: a local directory or an S3 bucket, behind one
// small interface with one set of semantics (checked by storetest).
//
// Keys are slash-separated paths relative to the store's root, such as
// "raw/2026/11/24/13/stream-1-...". Backend errors are translated at the edge
// into ErrNotExist and ErrExists; callers use errors.Is.
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// ErrNotExist is returned (wrapped) when an object does not exist.
var ErrNotExist = errors.New("object does not exist")

// ErrExists is returned (wrapped) by Create when the object already exists.
var ErrExists = errors.New("object already exists")

// ErrConflict is returned (wrapped) by Replace and DeleteIf when the object
// is missing or no longer has the tag they were given: someone else changed
// or removed it.
var ErrConflict = errors.New("object changed or removed")

// Object describes a stored object.
type Object struct {
	Key     string
	Size    int64
	ETag    string // changes whenever the content may have changed
	ModTime time.Time
}

// Reader reads one object at random offsets, as parquet-go needs. The caller
// closes it.
type Reader interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// Writer writes one object. Nothing is visible under the key until Close
// returns nil; Abort (or a failed Close) leaves no object behind. Exactly one
// of Close or Abort must be called.
type Writer interface {
	io.Writer
	Close() error
	Abort()
}

// Store is an object store.
type Store interface {
	// List returns every object whose key starts with prefix, at any depth,
	// sorted by key. A prefix that matches nothing gives an empty list, not
	// an error.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Stat describes one object, or returns ErrNotExist.
	Stat(ctx context.Context, key string) (Object, error)
	// Open opens an object for ranged reads, or returns ErrNotExist.
	Open(ctx context.Context, key string) (Reader, error)
	// Get reads a whole (small) object, or returns ErrNotExist.
	Get(ctx context.Context, key string) ([]byte, error)
	// NewWriter starts an atomic write that replaces any object at key.
	NewWriter(ctx context.Context, key string) (Writer, error)
	// Put writes data to key atomically, replacing any object there.
	Put(ctx context.Context, key string, data []byte) error
	// Create writes data to key only if no object exists there; otherwise it
	// returns ErrExists and changes nothing. It is atomic between processes.
	Create(ctx context.Context, key string, data []byte) error
	// Delete removes the object at key. Deleting a missing object is not an
	// error.
	Delete(ctx context.Context, key string) error
	// GetTag reads a whole (small) object and its tag, or returns
	// ErrNotExist. A tag names the object's content for Replace and
	// DeleteIf (a content hash: the S3 ETag, a SHA-256 elsewhere); it is not
	// always Object.ETag.
	GetTag(ctx context.Context, key string) (data []byte, tag string, err error)
	// Replace writes data to key only if the object there has tag (as
	// GetTag or an earlier Replace returned it), and returns the new tag;
	// otherwise, or if there is no object, it returns ErrConflict and
	// changes nothing. Of racing Replaces with one tag at most one wins. It
	// is atomic between processes against Create, Replace and DeleteIf of
	// the same key (a plain Put or Delete of a key others Replace is not
	// fenced: the protocols that use Replace never mix them).
	Replace(ctx context.Context, key string, data []byte, tag string) (string, error)
	// DeleteIf removes the object at key only if it has tag; otherwise, or
	// if there is no object, it returns ErrConflict and changes nothing.
	DeleteIf(ctx context.Context, key, tag string) error
	// String names the store for messages, e.g. "file:///data" or "s3://b/p".
	String() string
}

// TempLister is implemented by stores whose in-flight writes are visible
// objects (the local directory): ListWithTemp lists them too, so that a
// cleanup can remove what a killed process left behind.
type TempLister interface {
	ListWithTemp(ctx context.Context, prefix string) ([]Object, error)
}

// FolderPruner is implemented by stores with real folders (the local
// directory): PruneEmpty removes the empty folders under prefix, such as a
// run folder a killed process made before writing anything into it.
type FolderPruner interface {
	PruneEmpty(ctx context.Context, prefix string) error
}

// CachePutter is implemented by stores for which durability costs a wait
// (the local directory, which syncs each object to disk before it
// appears): PutCache is Put without that wait, for objects that are a
// cache, checked when read and rebuilt from the truth if lost or damaged
// (segments). The object still appears atomically, whole or not at all,
// to other processes; only an operating system crash may lose it or leave
// it damaged.
type CachePutter interface {
	PutCache(ctx context.Context, key string, data []byte) error
}

// PutCache writes a cache object: st's PutCache if it has one, else Put.
func PutCache(ctx context.Context, st Store, key string, data []byte) error {
	if c, ok := st.(CachePutter); ok {
		return c.PutCache(ctx, key, data)
	}
	return st.Put(ctx, key, data)
}

// Options tune how Open reaches a store.
type Options struct {
	// S3Endpoint overrides the S3 endpoint (an S3-compatible server, or a
	// test server). Empty uses AWS_ENDPOINT_URL_S3 or the SDK's default.
	S3Endpoint string
	// Create makes a missing local directory instead of failing.
	Create bool
}

// Open opens the store named by loc: a plain path ("./data"), a file URL
// ("file:///abs/path") or an S3 URL ("s3://bucket/prefix").
func Open(ctx context.Context, loc string, opts Options) (Store, error) {
	if loc == "" {
		return nil, errors.New("store: empty location")
	}
	if !strings.Contains(loc, "://") {
		return OpenDir(loc, opts.Create)
	}
	u, err := url.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("store: parse %q: %w", loc, err)
	}
	switch u.Scheme {
	case "file":
		p := u.Path
		if u.Host != "" && u.Host != "localhost" {
			p = filepath.Join(u.Host, p) // file://./data, file://rel/path
		}
		return OpenDir(p, opts.Create)
	case "s3":
		return openS3(ctx, u, opts)
	}
	return nil, fmt.Errorf("store: unsupported scheme %q in %q (want a path, file:// or s3://)", u.Scheme, loc)
}

// ReadAll reads a whole object through r.
func ReadAll(r Reader) ([]byte, error) {
	b := make([]byte, r.Size())
	n, err := r.ReadAt(b, 0)
	if err == io.EOF && int64(n) == r.Size() {
		err = nil
	}
	return b[:n], err
}
