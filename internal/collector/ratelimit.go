package collector

import (
	"container/list"
	"math"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// limiter is a token bucket per API key: each key may make rate requests a
// second on average and burst at once. Keys are the configured ones, so the
// buckets are few and never evicted.
type limiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int, now func() time.Time) *limiter {
	return &limiter{rate: rate, burst: float64(burst), now: now, buckets: map[string]*bucket{}}
}

// take spends one token of key's bucket. When the bucket is empty it
// reports false and how long until a token is back.
func (l *limiter) take(key string) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = math.Min(l.burst, b.tokens+elapsed*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// retryAfterSeconds is a wait as whole seconds for a Retry-After header,
// rounded up and at least 1.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// maxAuthClients bounds the clients whose failed authentications are
// remembered (about 150 bytes each): past it the least recently seen client
// is forgotten, so no flood of addresses grows the table.
const maxAuthClients = 16384

// failLimiter limits failed authentications per client (see clientOf) with
// a token bucket each: a client may fail burst times at once, and a failure
// comes back every window/burst. A client whose bucket is empty is refused
// before its key is looked at, so a guesser learns nothing more until then;
// those refusals are not failures. Only clients that failed are held, at
// most size of them, least recently seen evicted first; a client whose
// bucket has filled up again is dropped.
type failLimiter struct {
	burst float64
	rate  float64 // failures a second that come back
	size  int
	now   func() time.Time

	mu      sync.Mutex
	clients map[string]*list.Element // of *failEntry
	lru     list.List                // front: most recently seen
}

type failEntry struct {
	client string
	bucket
}

func newFailLimiter(burst int, window time.Duration, size int, now func() time.Time) *failLimiter {
	return &failLimiter{
		burst: float64(burst), rate: float64(burst) / window.Seconds(), size: size, now: now,
		clients: map[string]*list.Element{},
	}
}

// refill brings e's bucket to now.
func (l *failLimiter) refill(e *failEntry, now time.Time) {
	if elapsed := now.Sub(e.last).Seconds(); elapsed > 0 {
		e.tokens = math.Min(l.burst, e.tokens+elapsed*l.rate)
		e.last = now
	}
}

// wait reports how long client must wait before it may try a key again: 0
// if it may now. A nil limiter never waits.
func (l *failLimiter) wait(client string) time.Duration {
	if l == nil {
		return 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	el := l.clients[client]
	if el == nil {
		return 0
	}
	e := el.Value.(*failEntry)
	l.refill(e, now)
	switch {
	case e.tokens >= l.burst:
		l.lru.Remove(el)
		delete(l.clients, client)
		return 0
	case e.tokens >= 1:
		return 0
	}
	l.lru.MoveToFront(el)
	return time.Duration((1 - e.tokens) / l.rate * float64(time.Second))
}

// fail spends one token of client's bucket. Requests that passed wait at
// the same time may fail together; the bucket stops at 0.
func (l *failLimiter) fail(client string) {
	if l == nil {
		return
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	el := l.clients[client]
	if el == nil {
		if l.lru.Len() >= l.size {
			old := l.lru.Back()
			l.lru.Remove(old)
			delete(l.clients, old.Value.(*failEntry).client)
		}
		el = l.lru.PushFront(&failEntry{client: client, bucket: bucket{tokens: l.burst, last: now}})
		l.clients[client] = el
	}
	e := el.Value.(*failEntry)
	l.refill(e, now)
	e.tokens = math.Max(0, e.tokens-1)
	l.lru.MoveToFront(el)
}

// len is the number of clients held.
func (l *failLimiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// clientOf names the client of r for the failed-authentication limit: the
// IP address of RemoteAddr — the peer's address for the server, the
// requestContext.http.sourceIp behind a Lambda function URL (NewRequest) —
// with IPv4-mapped IPv6 as IPv4, and an IPv6 address as its /64, the
// smallest block one subscriber usually holds. Forwarding headers
// (X-Forwarded-For) are not read: any client can write them.
func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return clipField(host)
	}
	a = a.WithZone("").Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
