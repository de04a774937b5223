package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/firehose"
)

const (
	key1 = "test-key-0123456789abcdef"
	key2 = "rotated-key-abcdef0123456789"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 11, 24, 13, 5, 9, 123_456_789, time.UTC)

// recordingSink keeps what it is given, or fails with err.
type recordingSink struct {
	mu      sync.Mutex
	records [][]byte
	err     error
}

var _ Sink = (*recordingSink)(nil)

func (s *recordingSink) Put(_ context.Context, records [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.records = append(s.records, records...)
	return nil
}

func (s *recordingSink) rows(t *testing.T) []event.Raw {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []event.Raw
	for _, r := range s.records {
		rows, err := firehose.Convert(r)
		if err != nil {
			t.Fatalf("record %q does not convert: %v", r, err)
		}
		out = append(out, rows...)
	}
	return out
}

func testConfig() Config {
	return Config{
		APIKeys:        []string{key1, key2},
		AllowedOrigins: []string{"https://app.example.com"},
		RatePerSecond:  -1,
		Logger:         quiet,
		Now:            func() time.Time { return t0 },
	}
}

func newTestServer(t *testing.T, cfg Config, sink Sink) *httptest.Server {
	t.Helper()
	h, err := NewHandler(cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

type request struct {
	method, path, key, body string
	header                  map[string]string
}

type reply struct {
	status int
	header http.Header
	body   Response
	raw    string
}

func do(t *testing.T, srv *httptest.Server, rq request) reply {
	t.Helper()
	if rq.method == "" {
		rq.method = http.MethodPost
	}
	if rq.path == "" {
		rq.path = "/v1/events"
	}
	req, err := http.NewRequest(rq.method, srv.URL+rq.path, strings.NewReader(rq.body))
	if err != nil {
		t.Fatal(err)
	}
	if rq.method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	if rq.key != "" {
		req.Header.Set("X-Api-Key", rq.key)
	}
	for k, v := range rq.header {
		if k == "Transfer-Encoding" {
			// An unknown length makes the client send the body chunked.
			req.ContentLength = -1
			req.Body = io.NopCloser(struct{ io.Reader }{strings.NewReader(rq.body)})
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	rp := reply{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &rp.body); err != nil {
			t.Fatalf("answer %q: %v", raw, err)
		}
	}
	return rp
}

const goodEvent = `{"event_name":"screen_view","user_id":"u-1","product":"shop","platform":"web"}`

func TestAuth(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, testConfig(), &recordingSink{})
	tests := []struct {
		name string
		key  string
		want int
	}{
		{"no key is refused", "", http.StatusUnauthorized},
		{"a wrong key is refused", "test-key-0123456789abcdeX", http.StatusUnauthorized},
		{"a prefix of a key is refused", key1[:20], http.StatusUnauthorized},
		{"a longer key is refused", key1 + "0", http.StatusUnauthorized},
		{"the first key is accepted", key1, http.StatusOK},
		{"the rotated key is accepted too", key2, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := do(t, srv, request{key: tc.key, body: goodEvent})
			if got.status != tc.want {
				t.Errorf("status %d (%s), want %d", got.status, got.raw, tc.want)
			}
		})
	}
}

func TestHealthzNeedsNoKey(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, testConfig(), &recordingSink{})
	got := do(t, srv, request{method: http.MethodGet, path: "/healthz"})
	if got.status != http.StatusOK || !strings.Contains(got.raw, `"ok"`) {
		t.Errorf("GET /healthz = %d %s", got.status, got.raw)
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	preflight := func(origin string) request {
		return request{method: http.MethodOptions, header: map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-api-key",
		}}
	}
	tests := []struct {
		name       string
		origins    []string
		rq         request
		wantStatus int
		wantACAO   string
	}{
		{"a preflight from an allowed origin is answered", nil, preflight("https://app.example.com"), http.StatusNoContent, "https://app.example.com"},
		{"a preflight from another origin is refused", nil, preflight("https://evil.example.com"), http.StatusForbidden, ""},
		{"a post from an allowed origin gets the header", nil,
			request{key: key1, body: goodEvent, header: map[string]string{"Origin": "https://app.example.com"}}, http.StatusOK, "https://app.example.com"},
		{"a post from another origin is refused", nil,
			request{key: key1, body: goodEvent, header: map[string]string{"Origin": "http://app.example.com"}}, http.StatusForbidden, ""},
		{"a post without an origin is not a browser's", nil,
			request{key: key1, body: goodEvent}, http.StatusOK, ""},
		{"a star allows any origin", []string{"*"}, preflight("https://anyone.example.org"), http.StatusNoContent, "https://anyone.example.org"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			if tc.origins != nil {
				cfg.AllowedOrigins = tc.origins
			}
			srv := newTestServer(t, cfg, &recordingSink{})
			got := do(t, srv, tc.rq)
			if got.status != tc.wantStatus {
				t.Errorf("status %d (%s), want %d", got.status, got.raw, tc.wantStatus)
			}
			if acao := got.header.Get("Access-Control-Allow-Origin"); acao != tc.wantACAO {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", acao, tc.wantACAO)
			}
			if tc.wantStatus == http.StatusNoContent {
				if h := got.header.Get("Access-Control-Allow-Headers"); !strings.Contains(h, "X-Api-Key") {
					t.Errorf("Access-Control-Allow-Headers %q lacks X-Api-Key", h)
				}
				if m := got.header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "POST") {
					t.Errorf("Access-Control-Allow-Methods %q lacks POST", m)
				}
			}
			if tc.rq.header["Origin"] != "" && !strings.Contains(strings.Join(got.header.Values("Vary"), ","), "Origin") {
				t.Errorf("no Vary: Origin")
			}
		})
	}
}

func TestNewHandlerRefusesBadOrigins(t *testing.T) {
	t.Parallel()
	for _, o := range []string{"app.example.com", "https://app.example.com/path", "ftp://x.example.com"} {
		cfg := testConfig()
		cfg.AllowedOrigins = []string{o}
		if _, err := NewHandler(cfg, &recordingSink{}); !errors.Is(err, ErrConfig) {
			t.Errorf("origin %q: NewHandler = %v, want ErrConfig", o, err)
		}
	}
}

func TestNewHandlerRefusesWeakOrMissingKeys(t *testing.T) {
	t.Parallel()
	for _, keys := range [][]string{nil, {"short"}, {"has space in the middle!"}} {
		cfg := testConfig()
		cfg.APIKeys = keys
		if _, err := NewHandler(cfg, &recordingSink{}); !errors.Is(err, ErrConfig) {
			t.Errorf("keys %q: NewHandler = %v, want ErrConfig", keys, err)
		}
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.MaxBodyBytes = 1000
	cfg.MaxEvents = 3
	srv := newTestServer(t, cfg, &recordingSink{})
	many := "[" + strings.Repeat(goodEvent+",", 3) + goodEvent + "]"
	big := `{"event_name":"a","user_id":"u","pad":"` + strings.Repeat("x", 1000) + `"}`
	tests := []struct {
		name string
		rq   request
		want int
	}{
		{"a body over the limit is 413", request{body: big}, http.StatusRequestEntityTooLarge},
		{"a chunked body over the limit is 413", request{body: big, header: map[string]string{"Transfer-Encoding": "chunked"}}, http.StatusRequestEntityTooLarge},
		{"more events than allowed is 400", request{body: many}, http.StatusBadRequest},
		{"exactly the allowed events is 200", request{body: "[" + goodEvent + "," + goodEvent + "," + goodEvent + "]"}, http.StatusOK},
		{"an empty array is 400", request{body: "[]"}, http.StatusBadRequest},
		{"malformed JSON is 400", request{body: `{"event_name":`}, http.StatusBadRequest},
		{"a bare string is 400", request{body: `"hello"`}, http.StatusBadRequest},
		{"another content type is 415", request{body: goodEvent, header: map[string]string{"Content-Type": "text/plain"}}, http.StatusUnsupportedMediaType},
		{"a compressed body is 415", request{body: goodEvent, header: map[string]string{"Content-Encoding": "gzip"}}, http.StatusUnsupportedMediaType},
		{"GET on events is 405", request{method: http.MethodGet}, http.StatusMethodNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.rq.key = key1
			got := do(t, srv, tc.rq)
			if got.status != tc.want {
				t.Errorf("status %d (%s), want %d", got.status, got.raw, tc.want)
			}
		})
	}
}

func TestRateLimitPerKey(t *testing.T) {
	t.Parallel()
	clk := &clock{t: t0}
	cfg := testConfig()
	cfg.RatePerSecond, cfg.RateBurst, cfg.Now = 0.5, 2, clk.Now
	srv := newTestServer(t, cfg, &recordingSink{})
	post := func(key string) reply { return do(t, srv, request{key: key, body: goodEvent}) }

	for i := range 2 {
		if got := post(key1); got.status != http.StatusOK {
			t.Fatalf("request %d within the burst: %d", i, got.status)
		}
	}
	got := post(key1)
	if got.status != http.StatusTooManyRequests || got.header.Get("Retry-After") != "2" {
		t.Fatalf("over the burst: %d, Retry-After %q; want 429 with Retry-After 2", got.status, got.header.Get("Retry-After"))
	}
	if got := post(key2); got.status != http.StatusOK {
		t.Errorf("another key is limited too: %d", got.status)
	}
	clk.Add(1500 * time.Millisecond)
	if got := post(key1); got.status != http.StatusTooManyRequests || got.header.Get("Retry-After") != "1" {
		t.Errorf("after 1.5s: %d, Retry-After %q; want 429 with Retry-After 1", got.status, got.header.Get("Retry-After"))
	}
	clk.Add(500 * time.Millisecond)
	if got := post(key1); got.status != http.StatusOK {
		t.Errorf("after a token came back: %d", got.status)
	}
}

func TestValidationErrors(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, testConfig(), &recordingSink{})
	fe := func(field, reason string) FieldError { return FieldError{Field: field, Reason: reason} }
	tests := []struct {
		name  string
		event string
		want  []FieldError
	}{
		{"no event name", `{"user_id":"u"}`, []FieldError{fe("event_name", "is required")}},
		{"a blank event name", `{"event_name":"  ","user_id":"u"}`, []FieldError{fe("event_name", "is required")}},
		{"neither user nor device", `{"event_name":"a","session_id":"s"}`,
			[]FieldError{fe("user_id|device_id", "one of user_id or device_id is required")}},
		{"a number as event name", `{"event_name":5,"user_id":"u"}`,
			[]FieldError{fe("event_name", "want a string, got a number")}},
		{"an object as user id", `{"event_name":"a","user_id":{"id":1},"device_id":"d"}`,
			[]FieldError{fe("user_id", "want a string, got an object")}},
		{"an event time in words", `{"event_name":"a","user_id":"u","event_time":"yesterday"}`,
			[]FieldError{fe("event_time", "want an RFC 3339 time such as 2026-11-24T13:05:09.120Z, or epoch milliseconds")}},
		{"an event time in epoch seconds", `{"event_name":"a","user_id":"u","event_time":1764000000}`,
			[]FieldError{fe("event_time", "looks like epoch seconds: send epoch milliseconds or an RFC 3339 time")}},
		{"fractional epoch milliseconds", `{"event_name":"a","user_id":"u","event_time":1764000000000.5}`,
			[]FieldError{fe("event_time", "epoch milliseconds must be an integer")}},
		{"a boolean event time", `{"event_name":"a","user_id":"u","event_time":true}`,
			[]FieldError{fe("event_time", "want an RFC 3339 string or epoch milliseconds, got a boolean")}},
		{"a client event_id", `{"event_name":"a","user_id":"u","event_id":"mine"}`,
			[]FieldError{fe("event_id", "is set by the collector and must not be sent")}},
		{"a client received_at", `{"event_name":"a","user_id":"u","received_at":"2026-11-24T13:05:09Z"}`,
			[]FieldError{fe("received_at", "is set by the collector and must not be sent")}},
		{"an unknown number field", `{"event_name":"a","user_id":"u","price":9.5}`,
			[]FieldError{fe("price", "unknown field with a number value: only string values of unknown fields are kept (in properties)")}},
		{"an unknown object field", `{"event_name":"a","user_id":"u","cart":{}}`,
			[]FieldError{fe("cart", "unknown field with an object value: only string values of unknown fields are kept (in properties)")}},
		{"properties that are not an object", `{"event_name":"a","user_id":"u","properties":"a=b"}`,
			[]FieldError{fe("properties", "want an object of string values, got a string")}},
		{"a property that is not a string", `{"event_name":"a","user_id":"u","properties":{"n":1,"ok":"y"}}`,
			[]FieldError{fe("properties.n", "want a string, got a number")}},
		{"an unknown field also in properties", `{"event_name":"a","user_id":"u","plan":"pro","properties":{"plan":"free"}}`,
			[]FieldError{fe("plan", "is also a key of properties; send it once")}},
		{"an array", `[1]`, []FieldError{fe("", "an event must be a JSON object")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := do(t, srv, request{key: key1, body: tc.event})
			if got.status != http.StatusBadRequest {
				t.Fatalf("status %d (%s), want 400", got.status, got.raw)
			}
			want := Response{Rejected: 1, Errors: tc.want}
			if diff := cmp.Diff(want, got.body); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTooManyErrorsAreCut(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, testConfig(), &recordingSink{})
	var b strings.Builder
	b.WriteString(`{"event_name":"a","user_id":"u"`)
	for i := range 30 {
		fmt.Fprintf(&b, `,"n%02d":%d`, i, i)
	}
	b.WriteString("}")
	got := do(t, srv, request{key: key1, body: b.String()})
	if n := len(got.body.Errors); n != maxErrorsPerEvent || got.body.Errors[n-1].Reason != "and 21 more errors" {
		t.Errorf("%d errors, last %+v", n, got.body.Errors[len(got.body.Errors)-1])
	}
}

func TestPartialBatchIs207(t *testing.T) {
	t.Parallel()
	sink := &recordingSink{}
	srv := newTestServer(t, testConfig(), sink)
	body := `[` + goodEvent + `,{"user_id":"u"},{"event_name":"b","device_id":"d"}]`
	got := do(t, srv, request{key: key1, body: body})
	if got.status != http.StatusMultiStatus {
		t.Fatalf("status %d (%s), want 207", got.status, got.raw)
	}
	if got.body.Accepted != 2 || got.body.Rejected != 1 {
		t.Errorf("accepted %d, rejected %d; want 2 and 1", got.body.Accepted, got.body.Rejected)
	}
	if diff := cmp.Diff([]FieldError{{Index: 1, Field: "event_name", Reason: "is required"}}, got.body.Errors); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if len(got.body.Events) != 2 || got.body.Events[0].Index != 0 || got.body.Events[1].Index != 2 {
		t.Fatalf("events %+v, want indexes 0 and 2", got.body.Events)
	}
	rows := sink.rows(t)
	if len(rows) != 2 || rows[0].EventID != got.body.Events[0].EventID || rows[1].EventName != "b" {
		t.Errorf("sink rows %+v", rows)
	}
}

func TestAcceptedEventsAreStamped(t *testing.T) {
	t.Parallel()
	sink := &recordingSink{}
	srv := newTestServer(t, testConfig(), sink)
	body := `[
	 {"event_name":"a","user_id":"u","event_time":"2026-11-25T02:05:09.987654+13:00","plan":"pro","properties":{"screen":"home"},"note":null},
	 {"event_name":"b","device_id":"d","event_time":1764000000123,"session_id":"s","product":"shop","platform":"ios","app_version":"1.2","country":"NZ"},
	 {"event_name":"c","user_id":"u"}
	]`
	got := do(t, srv, request{key: key1, body: body})
	if got.status != http.StatusOK {
		t.Fatalf("status %d (%s)", got.status, got.raw)
	}
	rows := sink.rows(t)
	recv := t0.Truncate(time.Millisecond)
	want := []event.Raw{
		{EventName: "a", UserID: "u", EventTime: time.Date(2026, 11, 24, 13, 5, 9, 987_000_000, time.UTC), ReceivedAt: recv,
			Properties: map[string]string{"screen": "home", "plan": "pro"}},
		{EventName: "b", DeviceID: "d", EventTime: time.UnixMilli(1764000000123).UTC(), ReceivedAt: recv,
			SessionID: "s", Product: "shop", Platform: "ios", AppVersion: "1.2", Country: "NZ"},
		{EventName: "c", UserID: "u", ReceivedAt: recv},
	}
	for i := range rows {
		id, err := uuid.Parse(rows[i].EventID)
		if err != nil || id.Version() != 7 {
			t.Errorf("row %d: event_id %q is not a UUIDv7", i, rows[i].EventID)
		}
		if rows[i].EventID != got.body.Events[i].EventID {
			t.Errorf("row %d: event_id %s, answered %s", i, rows[i].EventID, got.body.Events[i].EventID)
		}
		rows[i].EventID = ""
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("rows (-want +got):\n%s", diff)
	}
}

func TestSinkFailureIs503(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, testConfig(), &recordingSink{err: errors.New("stream unavailable")})
	got := do(t, srv, request{key: key1, body: "[" + goodEvent + `,{"user_id":"u"}]`})
	if got.status != http.StatusServiceUnavailable || got.header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", got.status, got.header.Get("Retry-After"))
	}
	if got.body.Accepted != 0 || len(got.body.Events) != 0 || got.body.Error == "" || got.body.Rejected != 1 {
		t.Errorf("answer %+v: want nothing accepted, an error, and the invalid event named", got.body)
	}
}

func TestEventLargerThanAFirehoseRecordIsRejected(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.MaxBodyBytes = 2 << 20
	sink := &recordingSink{}
	srv := newTestServer(t, cfg, sink)
	// Every field is within its limit (event.MaxStringBytes), the record
	// is not: 16 values of 64 KiB.
	var huge strings.Builder
	huge.WriteString(`{"event_name":"a","user_id":"u","properties":{`)
	for i := range 16 {
		if i > 0 {
			huge.WriteByte(',')
		}
		fmt.Fprintf(&huge, `"p%d":"%s"`, i, strings.Repeat("x", event.MaxStringBytes))
	}
	huge.WriteString("}}")
	got := do(t, srv, request{key: key1, body: "[" + huge.String() + "," + goodEvent + "]"})
	if got.status != http.StatusMultiStatus || len(got.body.Errors) != 1 || got.body.Errors[0].Index != 0 ||
		!strings.HasPrefix(got.body.Errors[0].Reason, "event too large") {
		t.Errorf("answer %d %.500s", got.status, got.raw)
	}
	for _, r := range sink.records {
		if len(r) > firehose.MaxRecordBytes {
			t.Errorf("a record of %d bytes reached the sink", len(r))
		}
	}
}

func TestLogsHoldCountsNotContents(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var mu sync.Mutex
	cfg := testConfig()
	cfg.Logger = slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := newTestServer(t, cfg, &recordingSink{})
	secret := "sensitive-value-4242"
	do(t, srv, request{key: key1, body: `[{"event_name":"` + secret + `","user_id":"` + secret + `"},{"user_id":"` + secret + `"}]`})
	do(t, srv, request{key: key2 + "x", body: goodEvent})

	mu.Lock()
	out := logs.String()
	mu.Unlock()
	for _, s := range []string{secret, key1, key2} {
		if strings.Contains(out, s) {
			t.Errorf("logs hold %q:\n%s", s, out)
		}
	}
	for _, s := range []string{`"accepted":1`, `"rejected":1`, `"status":207`, `"reason":"invalid api key"`, `"key_id":"key-`} {
		if !strings.Contains(out, s) {
			t.Errorf("logs lack %s:\n%s", s, out)
		}
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestSchemaDrivesValidation(t *testing.T) {
	t.Parallel()
	// Every column of the schema is validated, and the server-set and
	// identity columns the collector names exist in it.
	if len(ordered) != len(event.Columns()) {
		t.Fatalf("%d columns validated, schema has %d", len(ordered), len(event.Columns()))
	}
	for name := range stamped {
		if !columns[name].Required {
			t.Errorf("stamped column %s is not required by the schema", name)
		}
	}
	for _, c := range event.Columns() {
		if c.Required && !stamped[c.Name] {
			if _, errs := parseEvent(0, []byte(`{"user_id":"u"}`)); !strings.Contains(fmt.Sprint(errs), c.Name) {
				t.Errorf("required column %s is not required from clients: %v", c.Name, errs)
			}
		}
	}
}
