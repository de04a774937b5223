// Package s3fault is a test kit: an HTTP proxy in front of an S3 server
// (gofakes3 in our tests) that injects the faults a real S3 client meets —
// 500 and 503 errors, 503 SlowDown, connection resets and response bodies
// cut short — so that tests can show the store, and whatever runs on it,
// absorbs them.
//
//	backend := s3mem.New()
//	backend.CreateBucket("bucket")
//	url := s3fault.New(t, gofakes3.New(backend).Server(), 0.1, 1)
//	st, err := store.Open(ctx, "s3://bucket/wh", store.Options{S3Endpoint: url})
//
// Faults are drawn from a seeded generator, one draw per request, so a
// sequential client meets the same faults on every run; concurrent
// requests draw in whatever order they arrive.
package s3fault

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"sync"
	"testing"
)

// Kind is a kind of fault.
type Kind int

// The kinds of faults, injected in equal shares.
const (
	// InternalError answers 500 InternalError or 503 ServiceUnavailable
	// (alternately) without passing the request on.
	InternalError Kind = iota
	// SlowDown answers 503 SlowDown without passing the request on.
	SlowDown
	// Reset closes the connection with a TCP reset, without an answer and
	// without passing the request on.
	Reset
	// Truncate passes the request on, sends the upstream's status, headers
	// and declared Content-Length, then only the first half of the body, and
	// closes the connection (the client reads io.ErrUnexpectedEOF). Only answers with a body of 2 bytes or more are
	// cut: other requests drawn for it go through unharmed.
	Truncate
	numKinds // the number of kinds
)

func (k Kind) String() string {
	return [...]string{"InternalError", "SlowDown", "Reset", "Truncate"}[k]
}

// MaxInARow is how many times in a row one request (method and URL) is
// failed at most: the next try goes through, so a client that tries each
// request MaxInARow+1 times (the SDK's retryer does 10) always gets there.
const MaxInARow = 2

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	// URL is the proxy's address, to be used as the S3 endpoint
	// (path-style).
	URL string

	upstream http.Handler
	rate     float64
	kinds    []Kind

	mu     sync.Mutex
	rng    *rand.Rand
	inARow map[string]int // request -> faults in a row
	counts [numKinds]int
	reqs   int
}

// New starts a proxy in front of upstream for the test, failing a share
// rate (0 to 1) of the requests, split evenly between the Kinds, as drawn
// from seed; it returns the URL to use as the S3 endpoint. The proxy stops
// when the test ends. upstream is the S3 server's handler (such as
// gofakes3.New(backend).Server()), or Forward(url) for a server that runs
// elsewhere.
func New(t testing.TB, upstream http.Handler, rate float64, seed int64) (url string) {
	return Start(t, upstream, rate, seed).URL
}

// Start is New, returning the Proxy to read its Counts. If kinds are given,
// only faults of those kinds are injected, in equal shares of rate.
func Start(t testing.TB, upstream http.Handler, rate float64, seed int64, kinds ...Kind) *Proxy {
	t.Helper()
	if len(kinds) == 0 {
		kinds = []Kind{InternalError, SlowDown, Reset, Truncate}
	}
	p := &Proxy{
		upstream: upstream,
		rate:     rate,
		kinds:    kinds,
		rng:      rand.New(rand.NewPCG(uint64(seed), 0x53336661756c74)),
		inARow:   map[string]int{},
	}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// Forward returns a handler that passes requests on to the server at
// rawURL, for New's upstream.
func Forward(rawURL string) (http.Handler, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("s3fault: %w", err)
	}
	return httputil.NewSingleHostReverseProxy(u), nil
}

// Counts returns how many requests the proxy saw, and how many faults of
// each Kind it injected.
func (p *Proxy) Counts() (requests int, faults map[Kind]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	faults = map[Kind]int{}
	for k, n := range p.counts {
		faults[Kind(k)] = n
	}
	return p.reqs, faults
}

// draw picks the fault for a request, or -1 for none.
func (p *Proxy) draw(r *http.Request) Kind {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs++
	id := r.Method + " " + r.URL.RequestURI()
	x := p.rng.Float64()
	if x >= p.rate || p.inARow[id] >= MaxInARow {
		delete(p.inARow, id)
		return -1
	}
	p.inARow[id]++
	return p.kinds[int(x/p.rate*float64(len(p.kinds)))]
}

// count counts a fault of kind k and returns how many there were so far.
func (p *Proxy) count(k Kind) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[k]++
	return p.counts[k]
}

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k := p.draw(r)
	switch k {
	case InternalError, SlowDown:
		_, _ = io.Copy(io.Discard, r.Body)
		n := p.count(k)
		status, code := http.StatusInternalServerError, "InternalError"
		if k == SlowDown {
			status, code = http.StatusServiceUnavailable, "SlowDown"
		} else if n%2 == 0 {
			status, code = http.StatusServiceUnavailable, "ServiceUnavailable"
		}
		s3Error(w, status, code)
	case Reset:
		_, _ = io.Copy(io.Discard, r.Body)
		p.count(k)
		hangUp(w, true)
	case Truncate:
		rec := httptest.NewRecorder()
		p.upstream.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if r.Method == http.MethodHead || len(body) < 2 {
			copyResponse(w, rec)
			return
		}
		p.count(k)
		h := w.Header()
		for key, v := range rec.Header() {
			h[key] = v
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body[:len(body)/2])
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		hangUp(w, false)
	default:
		p.upstream.ServeHTTP(w, r)
	}
}

// copyResponse sends what rec recorded.
func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for key, v := range rec.Header() {
		w.Header()[key] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = io.Copy(w, bytes.NewReader(rec.Body.Bytes()))
}

// hangUp closes the client's connection at once: with a reset (RST) if rst,
// else an orderly close (FIN), which a client reading a body of declared
// length sees as io.ErrUnexpectedEOF.
func hangUp(w http.ResponseWriter, rst bool) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // the server closes the connection
	}
	if tc, ok := conn.(interface{ SetLinger(int) error }); ok && rst {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// s3Error writes an S3 XML error.
func s3Error(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by s3fault</Message><RequestId>s3fault</RequestId></Error>`, code)
}
