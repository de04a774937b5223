package storetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/littlewarehouse/warehouse/internal/store"
)

// getTag reads key with GetTag, failing the test on an error.
func getTag(t *testing.T, st store.Store, key string) ([]byte, string) {
	t.Helper()
	b, tag, err := st.GetTag(t.Context(), key)
	if err != nil {
		t.Fatalf("GetTag(%s): %v", key, err)
	}
	return b, tag
}

// conditional checks GetTag, Replace and DeleteIf: the compare-and-swap
// that leases and the commit log are built on.
func (s suite) conditional(t *testing.T) {
	t.Run("GetTag returns the content and a tag; a missing key is ErrNotExist", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "a", []byte("one"))
		b, tag := getTag(t, st, "a")
		if string(b) != "one" || tag == "" {
			t.Errorf("GetTag = %q, %q; want \"one\" and a tag", b, tag)
		}
		if _, _, err := st.GetTag(t.Context(), "missing"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("GetTag(missing) = %v; want ErrNotExist", err)
		}
	})
	t.Run("Replace with the current tag replaces and returns the new tag", func(t *testing.T) {
		st := s.open(t)
		if err := st.Create(t.Context(), "lease", []byte("v1")); err != nil {
			t.Fatal(err)
		}
		_, t1 := getTag(t, st, "lease")
		t2, err := st.Replace(t.Context(), "lease", []byte("v2"), t1)
		if err != nil {
			t.Fatalf("Replace with the current tag: %v", err)
		}
		b, got := getTag(t, st, "lease")
		if string(b) != "v2" || got != t2 {
			t.Errorf("after Replace GetTag = %q, %q; want \"v2\", %q", b, got, t2)
		}
		if _, err := st.Replace(t.Context(), "lease", []byte("v3"), t2); err != nil {
			t.Errorf("a second Replace with the tag the first returned: %v", err)
		}
		wantContent(t, st, "lease", []byte("v3"))
	})
	t.Run("Replace with a stale tag is ErrConflict and changes nothing", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "lease", []byte("v1"))
		_, t1 := getTag(t, st, "lease")
		if _, err := st.Replace(t.Context(), "lease", []byte("v2"), t1); err != nil {
			t.Fatal(err)
		}
		for _, tag := range []string{t1, "0123456789abcdef0123456789abcdef", ""} {
			if _, err := st.Replace(t.Context(), "lease", []byte("late"), tag); !errors.Is(err, store.ErrConflict) {
				t.Errorf("Replace with tag %q = %v; want ErrConflict", tag, err)
			}
		}
		wantContent(t, st, "lease", []byte("v2"))
	})
	t.Run("Replace of a missing key is ErrConflict and creates nothing", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "lease", []byte("v1"))
		_, t1 := getTag(t, st, "lease")
		if err := st.Delete(t.Context(), "lease"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Replace(t.Context(), "lease", []byte("v2"), t1); !errors.Is(err, store.ErrConflict) {
			t.Errorf("Replace of a deleted object = %v; want ErrConflict", err)
		}
		wantNotExist(t, st, "lease")
	})
	t.Run("DeleteIf deletes only with the current tag", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "lease", []byte("v1"))
		_, t1 := getTag(t, st, "lease")
		t2, err := st.Replace(t.Context(), "lease", []byte("v2"), t1)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteIf(t.Context(), "lease", t1); !errors.Is(err, store.ErrConflict) {
			t.Errorf("DeleteIf with a stale tag = %v; want ErrConflict", err)
		}
		wantContent(t, st, "lease", []byte("v2"))
		if err := st.DeleteIf(t.Context(), "lease", t2); err != nil {
			t.Fatalf("DeleteIf with the current tag: %v", err)
		}
		wantNotExist(t, st, "lease")
		if err := st.DeleteIf(t.Context(), "lease", t2); !errors.Is(err, store.ErrConflict) {
			t.Errorf("DeleteIf of a missing object = %v; want ErrConflict", err)
		}
		wantList(t, st, "")
	})
	t.Run("racing Replaces with one tag: at most one wins", func(t *testing.T) {
		st := s.open(t)
		put(t, st, "race/lease", []byte("v0"))
		_, t0 := getTag(t, st, "race/lease")
		won := oneWinner(t, 8, store.ErrConflict, func(i int) error {
			_, err := st.Replace(t.Context(), "race/lease", []byte(fmt.Sprintf("writer %d", i)), t0)
			return err
		})
		wantContent(t, st, "race/lease", []byte(fmt.Sprintf("writer %d", won)))
	})
}
