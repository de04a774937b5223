package erasure

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
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
		written               time.Time
	}{
		{"its user id", "shop", "u-42", "", ms, true, true, time.Time{}},
		{"its device id, anonymous", "shop", "", "dev-9", ms - 1, true, true, time.Time{}},
		{"its device id under another user", "shop", "u-7", "dev-9", ms, true, true, time.Time{}},
		{"another product", "blog", "u-42", "", ms, true, false, time.Time{}},
		{"received after the request", "shop", "u-42", "", ms + 1, true, false, time.Time{}},
		{"no received_at", "shop", "u-42", "", 0, false, true, time.Time{}},
		{"a bad clock's received_at, in an object written before the request", "shop", "u-42", "", time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), true, true, at.Add(-time.Minute)},
		{"someone else", "shop", "u-4", "dev", ms, true, false, time.Time{}},
		{"received after the request, in an object written after it", "shop", "u-42", "", ms + 1, true, false, at.Add(time.Hour)},
		{"received after the request by its stamp, in an object written when it was made", "shop", "u-42", "", ms + 1, true, true, at},
	} {
		if got := m.Row(tc.product, tc.user, tc.device, tc.received, tc.hasReceived, tc.written); got != tc.want {
			t.Errorf("%s: %t, want %t", tc.name, got, tc.want)
		}
	}
	if !NewMatcher(key, Request{CreatedAt: at, Hashes: r.Hashes}).Row("blog", "u-42", "", ms, true, time.Time{}) {
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

// TestFilterErrors: a Firehose error record whose user_id is a number
// (the type mismatch Firehose rejected it for) is found and removed; a
// record that cannot be decoded is kept and counted as unsearchable,
// never taken as clean.
func TestFilterErrors(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	at := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	m := NewMatcher(key, Request{Product: "shop", CreatedAt: at, Hashes: []string{Hash(key, "12345"), Hash(key, "dev-9")}})
	rec := func(event string) string {
		return fmt.Sprintf(`{"attemptsMade":1,"arrivalTimestamp":%d,"errorCode":"x","rawData":"%s"}`,
			at.Add(-time.Hour).UnixMilli(), base64.StdEncoding.EncodeToString([]byte(event)))
	}
	for _, tc := range []struct {
		name                 string
		line                 string
		removed, undecodable int64
	}{
		{"a string user_id", rec(`{"user_id":"12345","product":"shop"}`), 1, 0},
		{"a number user_id", rec(`{"user_id":12345,"product":"shop"}`), 1, 0},
		{"a number device_id, a null user_id", rec(`{"user_id":null,"device_id":"dev-9","product":"shop"}`), 1, 0},
		{"someone else's number", rec(`{"user_id":123456,"product":"shop"}`), 0, 0},
		{"another product", rec(`{"user_id":12345,"product":"blog"}`), 0, 0},
		{"a user_id that is an object", rec(`{"user_id":{"id":12345},"product":"shop"}`), 0, 1},
		{"rawData not JSON", rec(`user_id=12345`), 0, 1},
		{"rawData not base64", `{"arrivalTimestamp":1,"rawData":"%%%"}`, 0, 1},
		{"not an error record", `not json 12345`, 0, 1},
	} {
		other := rec(`{"user_id":"u-7","product":"shop"}`)
		in := tc.line + "\n" + other + "\n"
		out, records, removed, undecodable := FilterErrors([]byte(in), m, time.Time{})
		if records != 2 || removed != tc.removed || undecodable != tc.undecodable {
			t.Errorf("%s: %d records, %d removed, %d undecodable; want 2, %d, %d", tc.name, records, removed, undecodable, tc.removed, tc.undecodable)
		}
		want := in
		if tc.removed > 0 {
			want = other + "\n"
		}
		if string(out) != want {
			t.Errorf("%s: kept %q, want %q", tc.name, out, want)
		}
	}
}
