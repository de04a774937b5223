package erasure

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/littlewarehouse/warehouse/internal/store"
)

func TestRecordKeepsNoID(t *testing.T) {
	ctx := context.Background()
	st := store.NewMem()
	now := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	r, err := Record(ctx, st, "shop", []string{"u-42", "u-42", "anon:dev-9", "dev-9"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Hashes) != 2 {
		t.Errorf("hashes %v: want one per distinct id (anon: stripped)", r.Hashes)
	}
	objs, _ := st.List(ctx, "")
	for _, o := range objs {
		b, _ := st.Get(ctx, o.Key)
		if bytes.Contains(b, []byte("u-42")) || bytes.Contains(b, []byte("dev-9")) {
			t.Errorf("%s holds an id", o.Key)
		}
	}
	list, err := List(ctx, st)
	if err != nil || len(list) != 1 || list[0].Done() || list[0].ID != r.ID {
		t.Fatalf("list %+v, %v", list, err)
	}
	for _, bad := range [][]string{nil, {""}, {"anon:"}} {
		if _, err := Record(ctx, st, "", bad, now); err == nil {
			t.Errorf("Record(%q) made a request", bad)
		}
	}
}

func TestMatcher(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	at := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	r := Request{Product: "shop", CreatedAt: at, Hashes: []string{Hash(key, "u-42"), Hash(key, "anon:dev-9")}}
	m := NewMatcher(key, r)
	ms := at.UnixMilli()
	for _, tc := range []struct {
		name                  string
		product, user, device string
		received              int64
		hasReceived, want     bool
	}{
		{"its user id", "shop", "u-42", "", ms, true, true},
		{"its device id, anonymous", "shop", "", "dev-9", ms - 1, true, true},
		{"its device id under another user", "shop", "u-7", "dev-9", ms, true, true},
		{"another product", "blog", "u-42", "", ms, true, false},
		{"received after the request", "shop", "u-42", "", ms + 1, true, false},
		{"no received_at", "shop", "u-42", "", 0, false, true},
		{"someone else", "shop", "u-4", "dev", ms, true, false},
	} {
		if got := m.Row(tc.product, tc.user, tc.device, tc.received, tc.hasReceived); got != tc.want {
			t.Errorf("%s: %t, want %t", tc.name, got, tc.want)
		}
	}
	if !NewMatcher(key, Request{CreatedAt: at, Hashes: r.Hashes}).Row("blog", "u-42", "", ms, true) {
		t.Error("a request of no product does not match every product's rows")
	}
}

func TestKeyIsMadeOnce(t *testing.T) {
	ctx := context.Background()
	st := store.NewMem()
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			k, err := Key(ctx, st)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys {
		if len(k) != 32 || !bytes.Equal(k, keys[0]) {
			t.Fatalf("keys differ: %x", keys)
		}
	}
}
