package store

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Mem is a Store in memory, for tests and tools: the same semantics as Dir
// and S3 (checked by storetest), nothing on disk. It is safe for concurrent
// use.
type Mem struct {
	mu   sync.Mutex
	objs map[string]memObject
	now  func() time.Time
}

type memObject struct {
	data []byte
	obj  Object
}

var _ Store = (*Mem)(nil)

// NewMem returns an empty in-memory store.
func NewMem() *Mem { return &Mem{objs: map[string]memObject{}, now: time.Now} }

func (m *Mem) String() string { return "mem://" }

// List implements Store.
func (m *Mem) List(ctx context.Context, prefix string) ([]Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Object
	for k, o := range m.objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, o.obj)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (m *Mem) get(key string) (memObject, error) {
	if err := checkKey(key); err != nil {
		return memObject{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[key]
	if !ok {
		return memObject{}, fmt.Errorf("%s: %w", key, ErrNotExist)
	}
	return o, nil
}

// Stat implements Store.
func (m *Mem) Stat(_ context.Context, key string) (Object, error) {
	o, err := m.get(key)
	return o.obj, err
}

type memReader struct{ *bytes.Reader }

func (memReader) Close() error { return nil }

// Open implements Store. The reader sees the object as it was when opened.
func (m *Mem) Open(_ context.Context, key string) (Reader, error) {
	o, err := m.get(key)
	if err != nil {
		return nil, err
	}
	return memReader{bytes.NewReader(o.data)}, nil
}

// Get implements Store.
func (m *Mem) Get(_ context.Context, key string) ([]byte, error) {
	o, err := m.get(key)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(o.data), nil
}

func (m *Mem) object(key string, data []byte) memObject {
	sum := md5.Sum(data)
	return memObject{data: data, obj: Object{Key: key, Size: int64(len(data)), ETag: hex.EncodeToString(sum[:]), ModTime: m.now().UTC()}}
}

type memWriter struct {
	m    *Mem
	key  string
	buf  bytes.Buffer
	done bool
}

func (w *memWriter) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("store: write after close")
	}
	return w.buf.Write(p)
}

func (w *memWriter) Close() error {
	if w.done {
		return errors.New("store: writer already closed")
	}
	w.done = true
	w.m.mu.Lock()
	w.m.objs[w.key] = w.m.object(w.key, bytes.Clone(w.buf.Bytes()))
	w.m.mu.Unlock()
	return nil
}

func (w *memWriter) Abort() { w.done = true }

// NewWriter implements Store.
func (m *Mem) NewWriter(_ context.Context, key string) (Writer, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	return &memWriter{m: m, key: key}, nil
}

// Put implements Store.
func (m *Mem) Put(ctx context.Context, key string, data []byte) error {
	w, err := m.NewWriter(ctx, key)
	if err != nil {
		return err
	}
	w.Write(data)
	return w.Close()
}

// Create implements Store.
func (m *Mem) Create(_ context.Context, key string, data []byte) error {
	if err := checkKey(key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objs[key]; ok {
		return fmt.Errorf("create %s: %w", key, ErrExists)
	}
	m.objs[key] = m.object(key, bytes.Clone(data))
	return nil
}

// Delete implements Store.
func (m *Mem) Delete(_ context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.objs, key)
	m.mu.Unlock()
	return nil
}

// GetTag implements Store: the tag is the object's ETag, an MD5 of its
// content.
func (m *Mem) GetTag(_ context.Context, key string) ([]byte, string, error) {
	o, err := m.get(key)
	if err != nil {
		return nil, "", err
	}
	return bytes.Clone(o.data), o.obj.ETag, nil
}

// Replace implements Store.
func (m *Mem) Replace(_ context.Context, key string, data []byte, tag string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if o, ok := m.objs[key]; !ok || o.obj.ETag != tag {
		return "", fmt.Errorf("replace %s: %w", key, ErrConflict)
	}
	o := m.object(key, bytes.Clone(data))
	m.objs[key] = o
	return o.obj.ETag, nil
}

// DeleteIf implements Store.
func (m *Mem) DeleteIf(_ context.Context, key, tag string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if o, ok := m.objs[key]; !ok || o.obj.ETag != tag {
		return fmt.Errorf("delete %s: %w", key, ErrConflict)
	}
	delete(m.objs, key)
	return nil
}
