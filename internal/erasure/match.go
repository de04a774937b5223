package erasure

import (
	"strings"
	"sync"
	"time"
)

// Matcher says whether a row is one of a request's. It is safe for
// concurrent use.
type Matcher struct {
	key     []byte
	product string
	until   int64 // ms: rows received up to it
	hashes  map[string]bool

	mu    sync.Mutex
	known map[string]bool // id -> matches
}

// NewMatcher returns the matcher of request r under the store's key.
func NewMatcher(key []byte, r Request) *Matcher {
	m := &Matcher{key: key, product: r.Product, until: r.CreatedAt.UnixMilli(), hashes: map[string]bool{}, known: map[string]bool{}}
	for _, h := range r.Hashes {
		m.hashes[h] = true
	}
	return m
}

// ID reports whether id (a user_id, a device_id or a user_key) is one the
// request names.
func (m *Matcher) ID(id string) bool {
	id = strings.TrimPrefix(id, "anon:")
	if id == "" {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.known[id]
	if !ok {
		v = m.hashes[Hash(m.key, id)]
		if len(m.known) < 1<<20 {
			m.known[id] = v
		}
	}
	return v
}

// Product reports whether a row of product p may be the request's.
func (m *Matcher) Product(p string) bool { return m.product == "" || p == m.product }

// Until is the request's time in Unix milliseconds: rows received after it
// are not the request's.
func (m *Matcher) Until() int64 { return m.until }

// Received reports whether a row was received up to the request. An
// object written (stored) at or before the request holds only rows
// received before it, whatever their received_at says (a collector's bad
// clock can stamp 2099), so every row of such an object was; a row of an
// object written later, or of unknown time (written zero), was if its
// received_at is up to the request, or if it has none (an invalid row,
// matched by its ids alone).
func (m *Matcher) Received(receivedAt int64, hasReceivedAt bool, written time.Time) bool {
	if !written.IsZero() && written.UnixMilli() <= m.until {
		return true
	}
	return !hasReceivedAt || receivedAt <= m.until
}

// Row reports whether a raw row, of an object written at written, is the
// request's: of its product (if it names one), with a user_id or
// device_id it names, received up to the request (Received).
func (m *Matcher) Row(product, userID, deviceID string, receivedAt int64, hasReceivedAt bool, written time.Time) bool {
	if !m.Product(product) || !m.Received(receivedAt, hasReceivedAt, written) {
		return false
	}
	return m.ID(userID) || m.ID(deviceID)
}
