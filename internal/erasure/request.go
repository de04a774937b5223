// Package erasure holds a person's erasure requests and what carrying them
// out needs: the store's hashing key, the requests and receipts under
// _state/erasures/, a matcher of rows by keyed hash, and the rewriting of
// raw Parquet objects and Firehose error files without the matched rows
// (docs/design.md §Erasing a person). The job (job.Erase) carries them out.
//
// No file this package writes holds an id: a request keeps HMAC-SHA256
// hashes of the ids under a key stored once per store, and rows are matched
// by hashing their ids under the same key.
package erasure

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/littlewarehouse/warehouse/internal/compact"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// Prefix is where requests, their work files and receipts live.
const Prefix = "_state/erasures/"

// KeyKey is the store's hashing key: 32 random bytes (hex), created once,
// conditionally, by the first request, and never rewritten.
const KeyKey = "_state/erasure-key"

// Request is one erasure request, as stored in Prefix+ID+".json". It is
// created conditionally and never rewritten.
type Request struct {
	ID      string `json:"id"`                // a ULID: requests sort by when they were made
	Product string `json:"product,omitempty"` // the product whose rows are erased; empty: every product
	// Hashes are hex HMAC-SHA256 hashes of the ids, under the store's key.
	// An id matches a row's user_id or device_id ("anon:" stripped).
	Hashes []string `json:"hashes"`
	// CreatedAt is when the request was made: rows received (received_at)
	// up to it are erased; rows received later are new data.
	CreatedAt time.Time `json:"created_at"`
}

// WatchUntil is when no raw object holding rows received before the
// request can still arrive: Firehose delivers a record at most
// compact.MaxDeliveryDelay after it was received, in an object named by
// the hour. Until then, each erase stage looks again at the objects that
// arrived since its last scan (a late check).
func (r Request) WatchUntil() time.Time {
	return r.CreatedAt.Add(compact.MaxDeliveryDelay + time.Hour)
}

// Key returns the store's hashing key, creating it if the store has none.
// Of processes creating it at once, one wins and all return its key.
func Key(ctx context.Context, st store.Store) ([]byte, error) {
	for range 3 {
		b, err := st.Get(ctx, KeyKey)
		if err == nil {
			k, err := hex.DecodeString(strings.TrimSpace(string(b)))
			if err != nil || len(k) != 32 {
				return nil, fmt.Errorf("read %s: not a 32-byte hex key", KeyKey)
			}
			return k, nil
		}
		if !errors.Is(err, store.ErrNotExist) {
			return nil, fmt.Errorf("read %s: %w", KeyKey, err)
		}
		k := make([]byte, 32)
		rand.Read(k)
		if err := st.Create(ctx, KeyKey, []byte(hex.EncodeToString(k)+"\n")); err != nil && !errors.Is(err, store.ErrExists) {
			return nil, fmt.Errorf("create %s: %w", KeyKey, err)
		}
	}
	return nil, fmt.Errorf("read %s: created but not found", KeyKey)
}

// Hash is the keyed hash of one id, hex. An "anon:" prefix (a user_key
// made of a device id) is stripped first.
func Hash(key []byte, id string) string {
	id = strings.TrimPrefix(id, "anon:")
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	return hex.EncodeToString(m.Sum(nil))
}

var (
	idMu      sync.Mutex
	idEntropy = ulid.Monotonic(rand.Reader, 0)
)

// Record stores a request to erase ids from product's rows (every
// product's if product is empty) received up to now, and returns it. ids must be non-empty and not blank; duplicates are
// kept once. It writes the request with a conditional create: it never
// replaces a request.
func Record(ctx context.Context, st store.Store, product string, ids []string, now time.Time) (Request, error) {
	key, err := Key(ctx, st)
	if err != nil {
		return Request{}, err
	}
	r := Request{Product: product, CreatedAt: now.UTC().Truncate(time.Millisecond)}
	for _, id := range ids {
		if strings.TrimSpace(strings.TrimPrefix(id, "anon:")) == "" {
			return Request{}, errors.New("erase: an empty id")
		}
		r.Hashes = append(r.Hashes, Hash(key, id))
	}
	if len(r.Hashes) == 0 {
		return Request{}, errors.New("erase: no id")
	}
	slices.Sort(r.Hashes)
	r.Hashes = slices.Compact(r.Hashes)
	idMu.Lock()
	r.ID = ulid.MustNew(ulid.Timestamp(now), idEntropy).String()
	idMu.Unlock()
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return Request{}, err
	}
	if err := st.Create(ctx, Prefix+r.ID+".json", append(b, '\n')); err != nil {
		return Request{}, fmt.Errorf("record erasure %s: %w", r.ID, err)
	}
	return r, nil
}

// Status is a request and, once it is done, its receipt and those of the
// late checks since.
type Status struct {
	Request
	Receipt *Receipt   // nil while pending
	Late    []*Receipt // late checks' receipts, oldest first
}

// Done reports whether the request was carried out.
func (s Status) Done() bool { return s.Receipt != nil }

// CheckedAt is when the last scan for the request's rows (the erase's
// verification, or a late check) was made; zero while pending.
func (s Status) CheckedAt() time.Time {
	var t time.Time
	for _, r := range append([]*Receipt{s.Receipt}, s.Late...) {
		if r != nil && r.Verification.At.After(t) {
			t = r.Verification.At
		}
	}
	return t
}

// List returns every request of the store, oldest first, each with its
// receipts.
func List(ctx context.Context, st store.Store) ([]Status, error) {
	objs, err := st.List(ctx, Prefix)
	if err != nil {
		return nil, err
	}
	var out []Status
	byID := map[string]int{}
	for _, o := range objs {
		name, _ := strings.CutPrefix(o.Key, Prefix)
		if strings.Contains(name, "/") || strings.Count(name, ".") != 1 || !strings.HasSuffix(name, ".json") {
			continue // receipts, work files
		}
		b, err := st.Get(ctx, o.Key)
		if errors.Is(err, store.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var s Status
		if err := json.Unmarshal(b, &s.Request); err != nil {
			return nil, fmt.Errorf("read %s: %w", o.Key, err)
		}
		byID[s.ID] = len(out)
		out = append(out, s)
	}
	for _, o := range objs {
		name, _ := strings.CutPrefix(o.Key, Prefix)
		id, rest, _ := strings.Cut(name, ".")
		i, ok := byID[id]
		late := strings.HasPrefix(rest, "late-") && strings.HasSuffix(rest, ".json")
		if !ok || (rest != "done.json" && !late) {
			continue
		}
		rc, err := readReceipt(ctx, st, o.Key)
		if errors.Is(err, store.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if late {
			out[i].Late = append(out[i].Late, rc) // listed in key order: oldest first
		} else {
			out[i].Receipt = rc
		}
	}
	slices.SortFunc(out, func(a, b Status) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}
