package erasure

import (
	"strings"
	"sync"
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

// Row reports whether a raw row is the request's: of its product (if it
// names one), with a user_id or device_id it names, received up to the
// request (a row with no received_at is invalid and matched by its ids
// alone).
func (m *Matcher) Row(product, userID, deviceID string, receivedAt int64, hasReceivedAt bool) bool {
	if !m.Product(product) || (hasReceivedAt && receivedAt > m.until) {
		return false
	}
	return m.ID(userID) || m.ID(deviceID)
}
