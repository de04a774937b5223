// Package storetest is the conformance suite every store.Store must pass, in
// the spirit of gocloud's drivertest: one set of semantics for the local
// directory and for S3, checked the same way.
//
// A store's test calls Run with a function that opens a fresh, empty store
// for one subtest:
//
//	func TestDirConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			d, err := store.OpenDir(t.TempDir(), false)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return d
//		})
//	}
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/littlewarehouse/warehouse/internal/store"
)

// Run runs the conformance suite. open must return a fresh, empty store each
// time it is called (each subtest calls it once).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	s := suite{open: open}
	t.Run("List", s.list)
	t.Run("Stat", s.stat)
	t.Run("Get", s.get)
	t.Run("Open", s.openTests)
	t.Run("NewWriter", s.writer)
	t.Run("Put", s.put)
	t.Run("Create", s.create)
	t.Run("Delete", s.delete)
	t.Run("Conditional", s.conditional)
	t.Run("ETag", s.etag)
	t.Run("Keys", s.keys)
	t.Run("String names the store", func(t *testing.T) {
		if st := s.open(t); st.String() == "" {
			t.Error("String() is empty")
		}
	})
}

type suite struct {
	open func(t *testing.T) store.Store
}

// data returns n bytes of content that differ from any other call's.
func data(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func put(t *testing.T, st store.Store, key string, b []byte) {
	t.Helper()
	if err := st.Put(t.Context(), key, b); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func mustGet(t *testing.T, st store.Store, key string) []byte {
	t.Helper()
	b, err := st.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return b
}

func wantContent(t *testing.T, st store.Store, key string, want []byte) {
	t.Helper()
	if got := mustGet(t, st, key); !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %d bytes %.20q, want %d bytes %.20q", key, len(got), got, len(want), want)
	}
}

func wantNotExist(t *testing.T, st store.Store, key string) {
	t.Helper()
	ctx := t.Context()
	if o, err := st.Stat(ctx, key); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Stat(%q) = %+v, %v; want ErrNotExist", key, o, err)
	}
	if b, err := st.Get(ctx, key); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("Get(%q) = %d bytes, %v; want ErrNotExist", key, len(b), err)
	}
	if r, err := st.Open(ctx, key); !errors.Is(err, store.ErrNotExist) {
		if err == nil {
			r.Close()
		}
		t.Errorf("Open(%q) error = %v; want ErrNotExist", key, err)
	}
}

func keysOf(objs []store.Object) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.Key
	}
	return out
}

func list(t *testing.T, st store.Store, prefix string) []store.Object {
	t.Helper()
	objs, err := st.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return objs
}

func wantList(t *testing.T, st store.Store, prefix string, want ...string) {
	t.Helper()
	if got := keysOf(list(t, st, prefix)); !slices.Equal(got, want) {
		t.Errorf("List(%q) =\n\t%q\nwant\n\t%q", prefix, got, want)
	}
}

// layout is a small tree of raw hours, state and published tables, written
// in an order that is not the sorted one.
var layout = []string{
	"raw/2026/01/10/00/stream-1-2026-01-10-00-00-00-c",
	"raw/2026/01/05/13/stream-1-2026-01-05-13-00-00-a",
	"raw/2026/01/05/13/stream-1-2026-01-05-13-10-00-b",
	"raw/2026/01/09/23/stream-1-2026-01-09-23-59-59-a",
	"raw/2026/02/01/00/stream-1-2026-02-01-00-00-00-a",
	"raw/2025/12/31/23/stream-1-2025-12-31-23-00-00-a",
	"rawdata.txt",
	"rabbit",
	"_state/index.json",
	".hidden",
	"events/dt=2026-01-05/run=01J0000000000000000000000A/part-00000.zstd.parquet",
	"events/dt=2026-01-05/_manifest.json",
	"a/.dotfile",
	"a/_underscore",
}

func writeLayout(t *testing.T, st store.Store) {
	t.Helper()
	for i, k := range layout {
		put(t, st, k, data(uint64(i), 10+i))
	}
}

func sorted(keys []string, keep func(string) bool) []string {
	var out []string
	for _, k := range keys {
		if keep(k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func (s suite) list(t *testing.T) {
	t.Run("an empty store lists nothing", func(t *testing.T) {
		st := s.open(t)
		wantList(t, st, "")
		wantList(t, st, "raw/")
	})
	t.Run("the empty prefix lists every object at any depth, sorted", func(t *testing.T) {
		st := s.open(t)
		writeLayout(t, st)
		wantList(t, st, "", sorted(layout, func(string) bool { return true })...)
	})
	t.Run("a folder prefix lists only that folder, recursively", func(t *testing.T) {
		st := s.open(t)
		writeLayout(t, st)
		for _, p := range []string{"raw/", "raw/2026/", "raw/2026/01/", "raw/2026/01/05/13/", "events/", "a/", "_state/"} {
			wantList(t, st, p, sorted(layout, func(k string) bool { return strings.HasPrefix(k, p) })...)
		}
	})
	t.Run("a partial-name prefix matches every key that starts with it", func(t *testing.T) {
		st := s.open(t)
		writeLayout(t, st)
		wantList(t, st, "raw/2026/01/0",
			"raw/2026/01/05/13/stream-1-2026-01-05-13-00-00-a",
			"raw/2026/01/05/13/stream-1-2026-01-05-13-10-00-b",
			"raw/2026/01/09/23/stream-1-2026-01-09-23-59-59-a")
		wantList(t, st, "raw/2026/01/05/13/stream-1-2026-01-05-13-1",
			"raw/2026/01/05/13/stream-1-2026-01-05-13-10-00-b")
		for _, p := range []string{"r", "ra", "raw", "raw/2", "raw/2026/0", "events/dt=2026-01-0", "_", ".", "a/."} {
			wantList(t, st, p, sorted(layout, func(k string) bool { return strings.HasPrefix(k, p) })...)
		}
	})
	t.Run("a prefix that is a whole key lists that key and longer ones", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "a/b", []byte("1"))
		put(t, st, "a/bc", []byte("2"))
		put(t, st, "a/b.json", []byte("3"))
		put(t, st, "a/c", []byte("4"))
		wantList(t, st, "a/b", "a/b", "a/b.json", "a/bc")
	})
	t.Run("a prefix that matches nothing gives an empty list, not an error", func(t *testing.T) {
		st := s.open(t)
		writeLayout(t, st)
		for _, p := range []string{"nope", "nope/", "raw/2027", "raw/2026/01/05/14/", "raw/2026/01/05/13/stream-2", "rawdata.txt/", "z"} {
			wantList(t, st, p)
		}
	})
	t.Run("order is byte order, not folder order", func(t *testing.T) {
		st := s.open(t)
		keys := []string{"a/c", "a.b", "a-b", "A", "a/b", "a0", "a_b", "b"}
		for i, k := range keys {
			put(t, st, k, data(uint64(i), 3))
		}
		want := slices.Clone(keys)
		slices.Sort(want)
		wantList(t, st, "", want...)
	})
	t.Run("entries carry the size, ETag and modification time Stat reports", func(t *testing.T) {
		st := s.open(t)
		writeLayout(t, st)
		objs := list(t, st, "")
		for _, o := range objs {
			s, err := st.Stat(t.Context(), o.Key)
			if err != nil {
				t.Fatalf("Stat(%q): %v", o.Key, err)
			}
			if o.Size != s.Size || o.ETag != s.ETag || o.Key != s.Key {
				t.Errorf("List entry %+v, Stat %+v: key, size and ETag differ", o, s)
			}
			if o.ETag == "" || o.ModTime.IsZero() {
				t.Errorf("List entry %+v has no ETag or ModTime", o)
			}
			if want := int64(len(mustGet(t, st, o.Key))); o.Size != want {
				t.Errorf("List entry %q has size %d, content is %d bytes", o.Key, o.Size, want)
			}
		}
	})
	t.Run("an object being written is not listed until Close", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "raw/x", []byte("x"))
		w, err := st.NewWriter(t.Context(), "raw/y")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("partial")); err != nil {
			t.Fatal(err)
		}
		wantList(t, st, "", "raw/x")
		wantList(t, st, "raw/", "raw/x")
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		wantList(t, st, "", "raw/x", "raw/y")
	})
	t.Run("a deleted object is no longer listed", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "a/b/c", []byte("1"))
		put(t, st, "a/d", []byte("2"))
		if err := st.Delete(t.Context(), "a/b/c"); err != nil {
			t.Fatal(err)
		}
		wantList(t, st, "", "a/d")
		wantList(t, st, "a/b")
	})
}

func (s suite) stat(t *testing.T) {
	t.Run("Stat describes an object", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "dir/obj", []byte("hello"))
		o, err := st.Stat(t.Context(), "dir/obj")
		if err != nil {
			t.Fatal(err)
		}
		if o.Key != "dir/obj" || o.Size != 5 || o.ETag == "" || o.ModTime.IsZero() {
			t.Errorf("Stat = %+v; want key dir/obj, size 5, an ETag and a ModTime", o)
		}
	})
	t.Run("Stat of an empty object gives size 0", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "empty", nil)
		o, err := st.Stat(t.Context(), "empty")
		if err != nil || o.Size != 0 {
			t.Errorf("Stat = %+v, %v; want size 0", o, err)
		}
	})
	t.Run("a missing key is ErrNotExist", func(t *testing.T) {
		st := s.open(t)
		wantNotExist(t, st, "missing")
		put(t, st, "a/b", []byte("x"))
		wantNotExist(t, st, "a/c")
	})
	t.Run("a folder is not an object", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "a/b/c", []byte("x"))
		for _, k := range []string{"a", "a/b"} {
			if o, err := st.Stat(t.Context(), k); !errors.Is(err, store.ErrNotExist) {
				t.Errorf("Stat(%q) = %+v, %v; want ErrNotExist", k, o, err)
			}
			if r, err := st.Open(t.Context(), k); !errors.Is(err, store.ErrNotExist) {
				if err == nil {
					r.Close()
				}
				t.Errorf("Open(%q) error = %v; want ErrNotExist", k, err)
			}
		}
	})
}

func (s suite) get(t *testing.T) {
	t.Run("Get returns the whole content", func(t *testing.T) {
		st := s.open(t)
		b := data(1, 100_000)
		put(t, st, "big/obj", b)
		wantContent(t, st, "big/obj", b)
	})
	t.Run("Get of an empty object returns no bytes and no error", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "empty", nil)
		wantContent(t, st, "empty", nil)
	})
	t.Run("Get of a missing key is ErrNotExist", func(t *testing.T) {
		st := s.open(t)
		if _, err := st.Get(t.Context(), "nope/nothing"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Get = %v; want ErrNotExist", err)
		}
	})
}

func openReader(t *testing.T, st store.Store, key string) store.Reader {
	t.Helper()
	r, err := st.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func (s suite) openTests(t *testing.T) {
	const size = 1000
	content := data(7, size)
	t.Run("the Reader reports the size", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "obj", content)
		if got := openReader(t, st, "obj").Size(); got != size {
			t.Errorf("Size() = %d, want %d", got, size)
		}
	})
	t.Run("ReadAt reads ranges at any offset with io.ReaderAt's EOF rules", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "obj", content)
		r := openReader(t, st, "obj")
		for _, c := range []struct {
			off    int64
			n      int
			wantN  int
			eofNow bool // io.EOF is required (short read); else nil or io.EOF
		}{
			{0, 10, 10, false},
			{1, 1, 1, false},
			{500, 100, 100, false},
			{990, 10, 10, false},   // ends exactly at the end: nil or EOF
			{0, size, size, false}, // the whole object: nil or EOF
			{995, 10, 5, true},     // crosses the end
			{0, size + 1, size, true},
			{999, 1, 1, false},
			{size, 1, 0, true}, // at the end
			{size + 1000, 10, 0, true},
		} {
			p := make([]byte, c.n)
			n, err := r.ReadAt(p, c.off)
			switch {
			case n != c.wantN:
				t.Errorf("ReadAt(%d bytes at %d) read %d bytes (err %v), want %d", c.n, c.off, n, err, c.wantN)
			case c.eofNow && err != io.EOF:
				t.Errorf("ReadAt(%d bytes at %d) = %d, %v; want io.EOF", c.n, c.off, n, err)
			case !c.eofNow && err != nil && err != io.EOF:
				t.Errorf("ReadAt(%d bytes at %d) = %d, %v; want nil or io.EOF", c.n, c.off, n, err)
			}
			if want := content[min(int(c.off), size):min(int(c.off)+c.wantN, size)]; !bytes.Equal(p[:n], want) {
				t.Errorf("ReadAt(%d bytes at %d) read the wrong bytes", c.n, c.off)
			}
		}
		if n, err := r.ReadAt(make([]byte, 4), -1); err == nil {
			t.Errorf("ReadAt at offset -1 = %d, nil; want an error", n)
		}
		if n, err := r.ReadAt(nil, 10); n != 0 || err != nil {
			t.Errorf("ReadAt of 0 bytes = %d, %v; want 0, nil", n, err)
		}
	})
	t.Run("ReadAt is safe for concurrent use", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "obj", content)
		r := openReader(t, st, "obj")
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				rnd := rand.New(rand.NewPCG(uint64(g), 1))
				for range 10 {
					off := rnd.IntN(size)
					p := make([]byte, 1+rnd.IntN(size-off))
					n, err := r.ReadAt(p, int64(off))
					if (err != nil && err != io.EOF) || n != len(p) || !bytes.Equal(p, content[off:off+n]) {
						t.Errorf("concurrent ReadAt(%d bytes at %d) = %d, %v or wrong bytes", len(p), off, n, err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
	t.Run("store.ReadAll reads the whole object", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "obj", content)
		b, err := store.ReadAll(openReader(t, st, "obj"))
		if err != nil || !bytes.Equal(b, content) {
			t.Errorf("ReadAll = %d bytes, %v; want the %d bytes written", len(b), err, size)
		}
	})
	t.Run("an empty object has size 0 and reads io.EOF", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "empty", nil)
		r := openReader(t, st, "empty")
		if r.Size() != 0 {
			t.Errorf("Size() = %d, want 0", r.Size())
		}
		if n, err := r.ReadAt(make([]byte, 1), 0); n != 0 || err != io.EOF {
			t.Errorf("ReadAt = %d, %v; want 0, io.EOF", n, err)
		}
		if b, err := store.ReadAll(r); len(b) != 0 || err != nil {
			t.Errorf("ReadAll = %d bytes, %v; want 0, nil", len(b), err)
		}
	})
	t.Run("Open of a missing key is ErrNotExist", func(t *testing.T) {
		st := s.open(t)
		if _, err := st.Open(t.Context(), "missing"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Open = %v; want ErrNotExist", err)
		}
	})
}

func write(t *testing.T, st store.Store, key string, chunks ...[]byte) {
	t.Helper()
	w, err := st.NewWriter(t.Context(), key)
	if err != nil {
		t.Fatalf("NewWriter(%q): %v", key, err)
	}
	for _, c := range chunks {
		if n, err := w.Write(c); err != nil || n != len(c) {
			w.Abort()
			t.Fatalf("Write(%d bytes) = %d, %v", len(c), n, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close(%q): %v", key, err)
	}
}

func (s suite) writer(t *testing.T) {
	t.Run("nothing is visible before Close returns", func(t *testing.T) {
		st := s.open(t)
		w, err := st.NewWriter(t.Context(), "out/a/b.parquet")
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			if _, err := w.Write(data(uint64(i), 1000)); err != nil {
				t.Fatal(err)
			}
			wantNotExist(t, st, "out/a/b.parquet")
		}
		wantList(t, st, "")
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		var want []byte
		for i := range 10 {
			want = append(want, data(uint64(i), 1000)...)
		}
		wantContent(t, st, "out/a/b.parquet", want)
		wantList(t, st, "", "out/a/b.parquet")
	})
	t.Run("Abort leaves nothing behind", func(t *testing.T) {
		st := s.open(t)
		w, err := st.NewWriter(t.Context(), "out/x")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data(1, 5000)); err != nil {
			t.Fatal(err)
		}
		w.Abort()
		wantNotExist(t, st, "out/x")
		wantList(t, st, "")
	})
	t.Run("Abort without writing leaves nothing behind", func(t *testing.T) {
		st := s.open(t)
		w, err := st.NewWriter(t.Context(), "out/x")
		if err != nil {
			t.Fatal(err)
		}
		w.Abort()
		wantNotExist(t, st, "out/x")
		wantList(t, st, "")
	})
	t.Run("Close replaces an existing object", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "obj", data(1, 300))
		write(t, st, "obj", data(2, 100), data(3, 50))
		wantContent(t, st, "obj", append(data(2, 100), data(3, 50)...))
		wantList(t, st, "", "obj")
	})
	t.Run("Abort of a replacement keeps the old object", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "obj", []byte("old"))
		w, err := st.NewWriter(t.Context(), "obj")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("new content")); err != nil {
			t.Fatal(err)
		}
		wantContent(t, st, "obj", []byte("old"))
		w.Abort()
		wantContent(t, st, "obj", []byte("old"))
		wantList(t, st, "", "obj")
	})
	t.Run("a writer with no writes creates an empty object", func(t *testing.T) {
		st := s.open(t)
		write(t, st, "empty")
		wantContent(t, st, "empty", nil)
	})
	t.Run("many small writes make one object", func(t *testing.T) {
		st := s.open(t)
		chunks := make([][]byte, 500)
		var want []byte
		for i := range chunks {
			chunks[i] = data(uint64(i), i%7)
			want = append(want, chunks[i]...)
		}
		write(t, st, "small/writes", chunks...)
		wantContent(t, st, "small/writes", want)
	})
	t.Run("Write after Close fails", func(t *testing.T) {
		st := s.open(t)
		w, err := st.NewWriter(t.Context(), "obj")
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("late")); err == nil {
			t.Error("Write after Close succeeded")
		}
		wantContent(t, st, "obj", nil)
	})
	t.Run("two writers to one key: the last Close wins whole", func(t *testing.T) {
		st := s.open(t)
		w1, err := st.NewWriter(t.Context(), "obj")
		if err != nil {
			t.Fatal(err)
		}
		w2, err := st.NewWriter(t.Context(), "obj")
		if err != nil {
			t.Fatal(err)
		}
		w1.Write([]byte("first writer"))
		w2.Write([]byte("second"))
		if err := w1.Close(); err != nil {
			t.Fatal(err)
		}
		wantContent(t, st, "obj", []byte("first writer"))
		if err := w2.Close(); err != nil {
			t.Fatal(err)
		}
		wantContent(t, st, "obj", []byte("second"))
	})
}

func (s suite) put(t *testing.T) {
	t.Run("Put writes an object", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "a/b/c/d.json", []byte(`{"x":1}`))
		wantContent(t, st, "a/b/c/d.json", []byte(`{"x":1}`))
	})
	t.Run("Put replaces an existing object", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "obj", data(1, 1000))
		put(t, st, "obj", []byte("short"))
		wantContent(t, st, "obj", []byte("short"))
		wantList(t, st, "", "obj")
	})
	t.Run("Put of nothing writes an empty object", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "obj", []byte{})
		wantContent(t, st, "obj", nil)
	})
}

func (s suite) create(t *testing.T) {
	t.Run("Create writes a new object", func(t *testing.T) {
		st := s.open(t)
		if err := st.Create(t.Context(), "locks/day/lease", []byte("me")); err != nil {
			t.Fatal(err)
		}
		wantContent(t, st, "locks/day/lease", []byte("me"))
	})
	t.Run("Create on an existing key is ErrExists and changes nothing", func(t *testing.T) {
		st := s.open(t)
		if err := st.Create(t.Context(), "lease", []byte("first")); err != nil {
			t.Fatal(err)
		}
		before, err := st.Stat(t.Context(), "lease")
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range [][]byte{[]byte("second"), []byte("first"), nil} {
			if err := st.Create(t.Context(), "lease", b); !errors.Is(err, store.ErrExists) {
				t.Errorf("Create(%q) over an existing object = %v; want ErrExists", b, err)
			}
		}
		wantContent(t, st, "lease", []byte("first"))
		if after, err := st.Stat(t.Context(), "lease"); err != nil || after.ETag != before.ETag {
			t.Errorf("ETag changed from %q to %q (%v) after failed Creates", before.ETag, after.ETag, err)
		}
		wantList(t, st, "", "lease")
	})
	t.Run("Create over an object written by Put is ErrExists", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "obj", []byte("put"))
		if err := st.Create(t.Context(), "obj", []byte("create")); !errors.Is(err, store.ErrExists) {
			t.Errorf("Create = %v; want ErrExists", err)
		}
		wantContent(t, st, "obj", []byte("put"))
	})
	t.Run("Create after Delete succeeds", func(t *testing.T) {
		st := s.open(t)
		if err := st.Create(t.Context(), "lease", []byte("1")); err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(t.Context(), "lease"); err != nil {
			t.Fatal(err)
		}
		if err := st.Create(t.Context(), "lease", []byte("2")); err != nil {
			t.Fatalf("Create after Delete: %v", err)
		}
		wantContent(t, st, "lease", []byte("2"))
	})
	t.Run("racing Creates on one key: exactly one wins", func(t *testing.T) {
		st := s.open(t)
		winner := oneWinner(t, 16, store.ErrExists, func(i int) error {
			return st.Create(t.Context(), "race/lease", []byte(fmt.Sprintf("writer %d", i)))
		})
		wantContent(t, st, "race/lease", []byte(fmt.Sprintf("writer %d", winner)))
		wantList(t, st, "", "race/lease")
	})
}

func (s suite) delete(t *testing.T) {
	t.Run("Delete removes an object", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "a/b/c", []byte("x"))
		if err := st.Delete(t.Context(), "a/b/c"); err != nil {
			t.Fatal(err)
		}
		wantNotExist(t, st, "a/b/c")
		wantList(t, st, "")
	})
	t.Run("deleting a missing object is not an error", func(t *testing.T) {
		st := s.open(t)
		for _, k := range []string{"missing", "no/such/folder/key"} {
			if err := st.Delete(t.Context(), k); err != nil {
				t.Errorf("Delete(%q) = %v; want nil", k, err)
			}
		}
		put(t, st, "x", []byte("x"))
		for range 2 {
			if err := st.Delete(t.Context(), "x"); err != nil {
				t.Errorf("Delete = %v; want nil", err)
			}
		}
	})
	t.Run("Delete leaves neighbours alone", func(t *testing.T) {
		st := s.open(t)
		for _, k := range []string{"a/b", "a/bc", "a/b.json", "a/c/d", "ab"} {
			put(t, st, k, []byte(k))
		}
		if err := st.Delete(t.Context(), "a/b"); err != nil {
			t.Fatal(err)
		}
		wantList(t, st, "", "a/b.json", "a/bc", "a/c/d", "ab")
		if err := st.Delete(t.Context(), "a/c/d"); err != nil {
			t.Fatal(err)
		}
		wantList(t, st, "", "a/b.json", "a/bc", "ab")
		put(t, st, "a/c/e", []byte("again"))
		wantContent(t, st, "a/c/e", []byte("again"))
	})
}

func (s suite) etag(t *testing.T) {
	t.Run("the ETag changes when the content changes", func(t *testing.T) {
		st := s.open(t)
		seen := map[string]string{}
		check := func(what string) {
			t.Helper()
			o, err := st.Stat(t.Context(), "obj")
			if err != nil {
				t.Fatal(err)
			}
			if o.ETag == "" {
				t.Fatalf("%s: empty ETag", what)
			}
			if prev, ok := seen[o.ETag]; ok {
				t.Errorf("%s: ETag %q is the one %s had", what, o.ETag, prev)
			}
			seen[o.ETag] = what
		}
		put(t, st, "obj", []byte("aaaa"))
		check("Put aaaa")
		put(t, st, "obj", []byte("bbbb"))
		check("Put bbbb (same size)")
		put(t, st, "obj", []byte("cccccccc"))
		check("Put cccccccc")
		write(t, st, "obj", []byte("dddd"))
		check("NewWriter dddd")
		if err := st.Delete(t.Context(), "obj"); err != nil {
			t.Fatal(err)
		}
		if err := st.Create(t.Context(), "obj", []byte("eeee")); err != nil {
			t.Fatal(err)
		}
		check("Create eeee")
	})
	t.Run("the ETag is stable while nothing changes", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "obj", []byte("stable"))
		a, err := st.Stat(t.Context(), "obj")
		if err != nil {
			t.Fatal(err)
		}
		mustGet(t, st, "obj")
		put(t, st, "other", []byte("neighbour"))
		b, err := st.Stat(t.Context(), "obj")
		if err != nil {
			t.Fatal(err)
		}
		if a.ETag != b.ETag {
			t.Errorf("ETag changed from %q to %q without a write", a.ETag, b.ETag)
		}
	})
}

func (s suite) keys(t *testing.T) {
	t.Run("keys with nested folders and unusual characters round-trip", func(t *testing.T) {
		st := s.open(t)
		keys := []string{
			"a/b/c/d/e/f/g/h/i/j/deep.parquet",
			"events/dt=2026-01-05/run=01J0000000000000000000000A/part-00000.zstd.parquet",
			"with space/and space.json",
			"unicode/ünïcødé/日本",
			"punct/a+b=c&d;e,f@g$h!i'(j)~k",
			"percent/%20%2F",
			"question?mark/x",
			"hash#/x",
			"x",
		}
		for i, k := range keys {
			put(t, st, k, data(uint64(i), 20))
		}
		want := slices.Clone(keys)
		slices.Sort(want)
		wantList(t, st, "", want...)
		for i, k := range keys {
			wantContent(t, st, k, data(uint64(i), 20))
			if o, err := st.Stat(t.Context(), k); err != nil || o.Key != k {
				t.Errorf("Stat(%q) = %+v, %v", k, o, err)
			}
		}
		for _, k := range keys {
			if err := st.Delete(t.Context(), k); err != nil {
				t.Errorf("Delete(%q): %v", k, err)
			}
		}
		wantList(t, st, "")
	})
	t.Run("keys that are not clean relative paths are rejected", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "a/b", []byte("x"))
		ctx := t.Context()
		for _, k := range []string{"", "/abs", "/a/b", "../x", "..", "a/../b", "a/../../x", "./a", "a/./b", "a//b", "a/", "a/b/"} {
			if err := st.Put(ctx, k, []byte("bad")); err == nil {
				t.Errorf("Put(%q) succeeded", k)
			}
			if err := st.Create(ctx, k, []byte("bad")); err == nil || errors.Is(err, store.ErrExists) {
				t.Errorf("Create(%q) = %v; want an invalid-key error", k, err)
			}
			if w, err := st.NewWriter(ctx, k); err == nil {
				w.Abort()
				t.Errorf("NewWriter(%q) succeeded", k)
			}
			if _, err := st.Get(ctx, k); err == nil {
				t.Errorf("Get(%q) succeeded", k)
			}
			if _, err := st.Stat(ctx, k); err == nil {
				t.Errorf("Stat(%q) succeeded", k)
			}
			if r, err := st.Open(ctx, k); err == nil {
				r.Close()
				t.Errorf("Open(%q) succeeded", k)
			}
			if err := st.Delete(ctx, k); err == nil {
				t.Errorf("Delete(%q) succeeded", k)
			}
		}
		wantList(t, st, "", "a/b")
		wantContent(t, st, "a/b", []byte("x"))
	})
}

// oneWinner runs write(i) for n writers released at once, checks that
// exactly one of them succeeds and that every other is lost (its error
// wraps lost), and returns the winner.
func oneWinner(t *testing.T, n int, lost error, write func(i int) error) int {
	t.Helper()
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = write(i)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both won", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, lost):
			t.Errorf("writer %d: %v; want nil or %v", i, err, lost)
		}
	}
	if winner < 0 {
		t.Fatal("no writer won")
	}
	return winner
}
