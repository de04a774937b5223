package collector

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/event"
)

// Tests of what the collector refuses at ingest so that what it accepts is
// kept downstream (issue 29), and of its answers being JSON (issue 24).

func TestFieldLimits(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.MaxBodyBytes = 2 << 20
	big := strings.Repeat("x", 600<<10)                  // 600 KiB
	atLimit := strings.Repeat("y", event.MaxStringBytes) // exactly 64 KiB
	over := atLimit + "y"
	longKey := strings.Repeat("k", event.MaxPropertyKeyBytes+1)
	props := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"p%03d":"v"`, i)
		}
		return b.String()
	}
	tooLong := func(n int) string { return fmt.Sprintf("%d bytes, at most %d", n, event.MaxStringBytes) }
	tests := []struct {
		name  string
		event string
		want  []FieldError // nil: accepted
	}{
		{"a 600 KiB user_id", `{"event_name":"a","user_id":"` + big + `"}`,
			[]FieldError{{Field: "user_id", Reason: tooLong(len(big))}}},
		{"a 600 KiB event_name", `{"event_name":"` + big + `","user_id":"u"}`,
			[]FieldError{{Field: "event_name", Reason: tooLong(len(big))}}},
		{"a 600 KiB property value", `{"event_name":"a","user_id":"u","properties":{"blob":"` + big + `"}}`,
			[]FieldError{{Field: "properties.blob", Reason: tooLong(len(big))}}},
		{"a 600 KiB unknown field", `{"event_name":"a","user_id":"u","blob":"` + big + `"}`,
			[]FieldError{{Field: "blob", Reason: tooLong(len(big))}}},
		{"one byte over 64 KiB", `{"event_name":"a","device_id":"` + over + `"}`,
			[]FieldError{{Field: "device_id", Reason: tooLong(len(over))}}},
		{"multi-byte characters are counted in bytes", `{"event_name":"a","user_id":"u","country":"` + strings.Repeat("é", event.MaxStringBytes/2+1) + `"}`,
			[]FieldError{{Field: "country", Reason: tooLong(event.MaxStringBytes + 2)}}},
		{"a long property key, named cut short", `{"event_name":"a","user_id":"u","properties":{"` + longKey + `":"v"}}`,
			[]FieldError{{Field: "properties." + longKey[:maxFieldName-len("properties.")] + "…",
				Reason: fmt.Sprintf("a property key of %d bytes, at most %d", len(longKey), event.MaxPropertyKeyBytes)}}},
		{"a long unknown field name", `{"event_name":"a","user_id":"u","` + longKey + `":"v"}`,
			[]FieldError{{Field: longKey[:maxFieldName] + "…",
				Reason: fmt.Sprintf("a property key of %d bytes, at most %d", len(longKey), event.MaxPropertyKeyBytes)}}},
		{"too many properties", `{"event_name":"a","user_id":"u","properties":{` + props(event.MaxProperties) + `},"extra":"x"}`,
			[]FieldError{{Field: "properties", Reason: fmt.Sprintf("%d properties (the keys of properties and the unknown fields together), at most %d",
				event.MaxProperties+1, event.MaxProperties)}}},
		{"strings at the limit", `{"event_name":"` + atLimit + `","user_id":"` + atLimit + `","properties":{"` +
			strings.Repeat("k", event.MaxPropertyKeyBytes) + `":"` + atLimit + `"}}`, nil},
		{"as many properties as allowed", `{"event_name":"a","user_id":"u","properties":{` + props(event.MaxProperties) + `}}`, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sink := &recordingSink{}
			srv := newTestServer(t, cfg, sink)
			got := do(t, srv, request{key: key1, body: tc.event})
			if tc.want == nil {
				if got.status != http.StatusOK {
					t.Fatalf("status %d (%.300s), want 200", got.status, got.raw)
				}
				if rows := sink.rows(t); len(rows) != 1 {
					t.Fatalf("%d rows in the sink", len(rows))
				}
				return
			}
			if got.status != http.StatusBadRequest {
				t.Fatalf("status %d (%.300s), want 400", got.status, got.raw)
			}
			if diff := cmp.Diff(Response{Rejected: 1, Errors: tc.want}, got.body); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if len(got.raw) > 4<<10 {
				t.Errorf("the answer is %d bytes: it echoes what was sent", len(got.raw))
			}
			if len(sink.records) != 0 {
				t.Errorf("a refused event reached the sink")
			}
		})
	}
}

// TestOversizedEventInABatch: the event over a limit is refused, the others
// of its batch are accepted, as for any invalid event (207).
func TestOversizedEventInABatch(t *testing.T) {
	t.Parallel()
	sink := &recordingSink{}
	cfg := testConfig()
	cfg.MaxBodyBytes = 2 << 20
	srv := newTestServer(t, cfg, sink)
	big := strings.Repeat("x", 600<<10)
	body := `[` + goodEvent + `,{"event_name":"a","user_id":"` + big + `"},{"event_name":"b","device_id":"d","properties":{"v":"` + big + `"}},` + goodEvent + `]`
	got := do(t, srv, request{key: key1, body: body})
	if got.status != http.StatusMultiStatus || got.body.Accepted != 2 || got.body.Rejected != 2 {
		t.Fatalf("status %d, accepted %d, rejected %d; want 207, 2 and 2", got.status, got.body.Accepted, got.body.Rejected)
	}
	want := []FieldError{
		{Index: 1, Field: "user_id", Reason: fmt.Sprintf("%d bytes, at most %d", len(big), event.MaxStringBytes)},
		{Index: 2, Field: "properties.v", Reason: fmt.Sprintf("%d bytes, at most %d", len(big), event.MaxStringBytes)},
	}
	if diff := cmp.Diff(want, got.body.Errors); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if rows := sink.rows(t); len(rows) != 2 || got.body.Events[0].Index != 0 || got.body.Events[1].Index != 3 {
		t.Errorf("rows %d, events %+v", len(rows), got.body.Events)
	}
}

// TestEventTimeRange: a time the collector accepts is one the tables keep;
// the zero time, the epoch and earlier, and times past year 9999 are 400.
func TestEventTimeRange(t *testing.T) {
	t.Parallel()
	sink := &recordingSink{}
	srv := newTestServer(t, testConfig(), sink)
	rangeErr := "time out of range: want 1970-01-01T00:00:00.001Z to 9999-12-31T23:59:59.999Z"
	tests := []struct {
		time string // JSON value
		want time.Time
	}{
		{`"0001-01-01T00:00:00Z"`, time.Time{}},
		{`"1970-01-01T00:00:00Z"`, time.Time{}},
		{`"1970-01-01T00:00:00.000999Z"`, time.Time{}}, // 0 ms once cut to the millisecond
		{`"1969-12-31T23:59:59.999Z"`, time.Time{}},
		{`"1970-01-01T01:00:00+02:00"`, time.Time{}},
		{`-62135596800000`, time.Time{}}, // year 1 in epoch ms
		{`-100000000000`, time.Time{}},
		{`"9999-12-31T23:59:59-01:00"`, time.Time{}}, // year 10000 in UTC
		{`253402300800000`, time.Time{}},             // 10000-01-01
		{`"1970-01-01T00:00:00.001Z"`, event.MinTime},
		{`"9999-12-31T23:59:59.999Z"`, event.MaxTime},
		{`"2000-01-01T00:00:00Z"`, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{`100000000000`, time.UnixMilli(100_000_000_000).UTC()},
		{`253402300799999`, event.MaxTime},
	}
	for _, tc := range tests {
		got := do(t, srv, request{key: key1, body: `{"event_name":"a","user_id":"u","event_time":` + tc.time + `}`})
		if tc.want.IsZero() {
			want := Response{Rejected: 1, Errors: []FieldError{{Field: "event_time", Reason: rangeErr}}}
			if got.status != http.StatusBadRequest || !cmp.Equal(want, got.body) {
				t.Errorf("event_time %s: %d %s; want 400 %+v", tc.time, got.status, got.raw, want)
			}
			continue
		}
		if got.status != http.StatusOK {
			t.Errorf("event_time %s: %d %s; want 200", tc.time, got.status, got.raw)
			continue
		}
		rows := sink.rows(t)
		if last := rows[len(rows)-1].EventTime; !last.Equal(tc.want) {
			t.Errorf("event_time %s is kept as %s, want %s", tc.time, last, tc.want)
		}
	}
}

func TestCharset(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, testConfig(), &recordingSink{})
	for _, tc := range []struct {
		contentType string
		want        int
	}{
		{"application/json", http.StatusOK},
		{"application/json; charset=utf-8", http.StatusOK},
		{"application/json; charset=UTF-8", http.StatusOK},
		{`Application/JSON; Charset="Utf-8"`, http.StatusOK},
		{"application/json; charset=utf-16", http.StatusUnsupportedMediaType},
		{"application/json; charset=UTF-16LE", http.StatusUnsupportedMediaType},
		{"application/json; charset=iso-8859-1", http.StatusUnsupportedMediaType},
		{"application/json; charset=", http.StatusUnsupportedMediaType},
	} {
		got := do(t, srv, request{key: key1, body: goodEvent, header: map[string]string{"Content-Type": tc.contentType}})
		if got.status != tc.want {
			t.Errorf("Content-Type %q: %d %s, want %d", tc.contentType, got.status, got.raw, tc.want)
		}
		if !strings.HasPrefix(got.header.Get("Content-Type"), "application/json") {
			t.Errorf("Content-Type %q: the answer is %q, not JSON", tc.contentType, got.header.Get("Content-Type"))
		}
		if tc.want == http.StatusUnsupportedMediaType && strings.HasSuffix(tc.contentType, "=") {
			continue // not a media type at all
		}
		if tc.want == http.StatusUnsupportedMediaType && !strings.Contains(got.body.Error, "UTF-8") {
			t.Errorf("Content-Type %q: error %q does not say UTF-8", tc.contentType, got.body.Error)
		}
	}
}

func TestReplacedCharactersAreCounted(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	var mu sync.Mutex
	cfg := testConfig()
	cfg.Logger = slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	sink := &recordingSink{}
	srv := newTestServer(t, cfg, sink)
	// Event 0: two malformed bytes in user_id, a lone surrogate escape in a
	// property, and a U+FFFD sent as such (not counted). Event 1: clean.
	// Event 2: a malformed byte in a key, a valid surrogate pair (not
	// counted), a lone low surrogate.
	body := "[" +
		`{"event_name":"a","user_id":"u` + "\xff\xfe" + `","properties":{"p":"x\ud800y","q":"` + "\uFFFD" + `\ufffd"}},` +
		goodEvent + "," +
		`{"event_name":"b","device_id":"d","k` + "\x80" + `":"\ud83d\ude00\udc00"}` +
		"]"
	got := do(t, srv, request{key: key1, body: body})
	if got.status != http.StatusOK {
		t.Fatalf("status %d (%s)", got.status, got.raw)
	}
	var counts []int
	for _, e := range got.body.Events {
		counts = append(counts, e.ReplacedChars)
	}
	if diff := cmp.Diff([]int{3, 0, 2}, counts); diff != "" || got.body.ReplacedChars != 5 {
		t.Errorf("replaced_chars per event (-want +got):\n%s\ntotal %d, want 5", diff, got.body.ReplacedChars)
	}
	if !strings.Contains(got.raw, `"replaced_chars":5`) || strings.Count(got.raw, `"replaced_chars"`) != 3 {
		t.Errorf("answer %s: want replaced_chars on events 0 and 2 and in total", got.raw)
	}
	rows := sink.rows(t)
	if rows[0].UserID != "u\uFFFD\uFFFD" || rows[0].Properties["p"] != "x\uFFFDy" || rows[2].Properties["k\uFFFD"] != "😀\uFFFD" {
		t.Errorf("stored %q %q %q", rows[0].UserID, rows[0].Properties, rows[2].Properties)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if !strings.Contains(out, `"replaced_chars":5`) {
		t.Errorf("the log line lacks replaced_chars:\n%s", out)
	}

	// A clean request says nothing of it.
	if got := do(t, srv, request{key: key1, body: goodEvent}); strings.Contains(got.raw, "replaced_chars") {
		t.Errorf("clean answer %s", got.raw)
	}
}

// TestCountReplacedMatchesDecoding checks countReplaced against what
// encoding/json does, on strings without a U+FFFD of their own.
func TestCountReplacedMatchesDecoding(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		`"plain"`, `"\u00e9\n\\u"`, `"\\\ud800"`, "\"\xed\xa0\x80\"", "\"\xc3\"", "\"\xf0\x9f\x98\"",
		`"\ud800\ud800\udc00"`, `"\udc00\ud800"`, `"\ud800\u0041"`, `"\ud800\\"`, `"\uD83D\uDE00"`,
		"{\"\xff\":\"\xfe\\ud800\"}", `["\ud800",1,"x"]`,
	} {
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		b, _ := json.Marshal(v)
		want := strings.Count(string(b), `\ufffd`) + strings.Count(string(b), "\uFFFD")
		if got := countReplaced([]byte(s)); got != want {
			t.Errorf("countReplaced(%q) = %d, decoding replaced %d", s, got, want)
		}
	}
}

func TestFailedAuthenticationsAreLimited(t *testing.T) {
	t.Parallel()
	clk := &clock{t: t0}
	cfg := testConfig()
	cfg.AuthFailures, cfg.AuthFailureWindow, cfg.Now = 5, time.Minute, clk.Now
	h, err := NewHandler(cfg, &recordingSink{})
	if err != nil {
		t.Fatal(err)
	}
	post := func(addr, key string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(goodEvent))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Api-Key", key)
		req.RemoteAddr = addr
		w := newRecorder()
		h.ServeHTTP(w, req)
		resp := w.response()
		return &http.Response{StatusCode: resp.StatusCode, Header: w.header}
	}
	const wrong = "wrong-key-0123456789abcdef"
	attacker := "198.51.100.7:40000"
	for i := range 5 {
		if got := post(attacker, wrong); got.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, got.StatusCode)
		}
	}
	// The sixth try is refused before the key is looked at, even a good key.
	for _, key := range []string{wrong, "", key1} {
		got := post("198.51.100.7:40001", key)
		if got.StatusCode != http.StatusTooManyRequests || got.Header.Get("Retry-After") != "12" ||
			got.Header.Get("Content-Type") != "application/json" {
			t.Errorf("key %q after 5 failures: %d, Retry-After %q; want 429, Retry-After 12", key, got.StatusCode, got.Header.Get("Retry-After"))
		}
	}
	// 1,000 tries: all refused, none counted as a failure.
	for range 1000 {
		if got := post(attacker, wrong); got.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("a try over the limit: %d", got.StatusCode)
		}
	}
	// Other clients are not affected; an IPv6 client is its /64.
	if got := post("198.51.100.8:1", key1); got.StatusCode != http.StatusOK {
		t.Errorf("another address: %d", got.StatusCode)
	}
	for i := range 5 {
		post(fmt.Sprintf("[2001:db8:1:2::%x]:443", i), wrong)
	}
	if got := post("[2001:db8:1:2:ffff::1]:443", key1); got.StatusCode != http.StatusTooManyRequests {
		t.Errorf("an address of a limited /64: %d, want 429", got.StatusCode)
	}
	if got := post("[2001:db8:1:3::1]:443", key1); got.StatusCode != http.StatusOK {
		t.Errorf("an address of another /64: %d", got.StatusCode)
	}
	if got := post("[::ffff:198.51.100.7]:1", key1); got.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the attacker as an IPv4-mapped address: %d, want 429", got.StatusCode)
	}
	// A failure comes back every window/5 = 12 s.
	clk.Add(12 * time.Second)
	if got := post(attacker, wrong); got.StatusCode != http.StatusUnauthorized {
		t.Errorf("after 12s: %d, want 401", got.StatusCode)
	}
	if got := post(attacker, key1); got.StatusCode != http.StatusTooManyRequests {
		t.Errorf("right after that failure: %d, want 429", got.StatusCode)
	}
	clk.Add(12 * time.Second)
	if got := post(attacker, key1); got.StatusCode != http.StatusOK {
		t.Errorf("a good key once a failure came back: %d, want 200", got.StatusCode)
	}
	// A bucket that filled up again is forgotten.
	clk.Add(time.Hour)
	post(attacker, key1)
	if n := h.fails.len(); n != 1 {
		t.Errorf("%d clients held, want 1 (the IPv6 /64)", n)
	}
}

func TestFailedAuthenticationTableIsBounded(t *testing.T) {
	t.Parallel()
	clk := &clock{t: t0}
	l := newFailLimiter(2, time.Minute, 100, clk.Now)
	l.fail("victim")
	l.fail("victim")
	if l.wait("victim") == 0 {
		t.Fatal("victim not limited")
	}
	for i := range 10_000 {
		l.fail(fmt.Sprint("flood-", i))
		if i == 50 && l.wait("victim") == 0 {
			t.Fatal("victim forgotten before the table is full")
		}
	}
	if n := l.len(); n != 100 {
		t.Errorf("%d clients held, want at most 100", n)
	}
	if n := len(l.clients); n != 100 {
		t.Errorf("%d clients in the map, want 100", n)
	}
	var nilLimiter *failLimiter
	nilLimiter.fail("x")
	if nilLimiter.wait("x") != 0 {
		t.Error("a nil limiter waits")
	}
}

func TestAuthFailureLimitOff(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.AuthFailures = -1
	srv := newTestServer(t, cfg, &recordingSink{})
	for i := range 50 {
		if got := do(t, srv, request{key: "wrong-key-0123456789abcdef", body: goodEvent}); got.status != http.StatusUnauthorized {
			t.Fatalf("try %d: %d, want 401", i, got.status)
		}
	}
}

// TestEveryAnswerIsJSON: 404, 405 (with Allow) and the others have JSON
// bodies, as the docs say.
func TestEveryAnswerIsJSON(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, testConfig(), &recordingSink{})
	tests := []struct {
		name   string
		rq     request
		status int
		allow  string
	}{
		{"GET on events", request{method: http.MethodGet}, http.StatusMethodNotAllowed, "POST"},
		{"PUT on events", request{method: http.MethodPut, key: key1}, http.StatusMethodNotAllowed, "POST"},
		{"DELETE on events", request{method: http.MethodDelete}, http.StatusMethodNotAllowed, "POST"},
		{"OPTIONS without an Origin", request{method: http.MethodOptions}, http.StatusMethodNotAllowed, "POST"},
		{"POST on healthz", request{path: "/healthz", key: key1, body: goodEvent}, http.StatusMethodNotAllowed, "GET, HEAD"},
		{"an unknown path", request{method: http.MethodGet, path: "/nope"}, http.StatusNotFound, ""},
		{"the root", request{method: http.MethodGet, path: "/"}, http.StatusNotFound, ""},
		{"a POST to an unknown path", request{path: "/v1/event", key: key1, body: goodEvent}, http.StatusNotFound, ""},
		{"an unclean path", request{path: "/v1//events", key: key1, body: goodEvent}, http.StatusNotFound, ""},
		{"a trailing slash", request{path: "/v1/events/", key: key1, body: goodEvent}, http.StatusNotFound, ""},
		{"healthz", request{method: http.MethodGet, path: "/healthz"}, http.StatusOK, ""},
		{"no key", request{body: goodEvent}, http.StatusUnauthorized, ""},
		{"bad JSON", request{key: key1, body: "{"}, http.StatusBadRequest, ""},
		{"a chunked body over the limit", request{key: key1, body: `{"x":"` + strings.Repeat("x", 2<<20) + `"}`,
			header: map[string]string{"Transfer-Encoding": "chunked"}}, http.StatusRequestEntityTooLarge, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := do(t, srv, tc.rq)
			if got.status != tc.status {
				t.Errorf("status %d, want %d", got.status, tc.status)
			}
			if ct := got.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q (%s)", ct, got.raw)
			}
			var v map[string]any
			if err := json.Unmarshal([]byte(got.raw), &v); err != nil {
				t.Errorf("body %q is not JSON: %v", got.raw, err)
			}
			if tc.status >= 400 && (got.body.Error == "" && len(got.body.Errors) == 0) {
				t.Errorf("body %s says no error", got.raw)
			}
			if a := got.header.Get("Allow"); a != tc.allow {
				t.Errorf("Allow %q, want %q", a, tc.allow)
			}
		})
	}
	// HEAD /healthz is allowed, with no body.
	resp, err := srv.Client().Head(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD /healthz: %d", resp.StatusCode)
	}
}

// TestFunctionURLIngestChecks runs the checks of this file through the
// Lambda function URL adapter: the failed-authentication limit by
// requestContext.http.sourceIp, charsets, field limits, times, replaced
// characters, and JSON 404 and 405.
func TestFunctionURLIngestChecks(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.AuthFailures = 3
	sink := &recordingSink{}
	h, err := NewHandler(cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	fn := &FunctionURL{Handler: h}
	call := func(ev events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, Response) {
		t.Helper()
		resp, err := fn.Handle(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Headers["Content-Type"] != "application/json" {
			t.Errorf("%s %s: Content-Type %q", ev.RequestContext.HTTP.Method, ev.RawPath, resp.Headers["Content-Type"])
		}
		var body Response
		if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
			t.Fatalf("answer %q: %v", resp.Body, err)
		}
		return resp, body
	}
	post := func(ip, key, contentType, body string) events.LambdaFunctionURLRequest {
		ev := urlEvent("POST", "/v1/events", "", map[string]string{"content-type": contentType, "x-api-key": key}, body, false)
		ev.RequestContext.HTTP.SourceIP = ip
		return ev
	}
	const wrong = "wrong-key-0123456789abcdef"
	for range 3 {
		if resp, _ := call(post("203.0.113.9", wrong, "application/json", goodEvent)); resp.StatusCode != 401 {
			t.Fatalf("a wrong key: %d", resp.StatusCode)
		}
	}
	if resp, _ := call(post("203.0.113.9", key1, "application/json", goodEvent)); resp.StatusCode != 429 || resp.Headers["Retry-After"] != "20" {
		t.Errorf("after 3 failures: %d, Retry-After %q; want 429, 20", resp.StatusCode, resp.Headers["Retry-After"])
	}
	if resp, _ := call(post("203.0.113.10", key1, "application/json", goodEvent)); resp.StatusCode != 200 {
		t.Errorf("another source IP: %d", resp.StatusCode)
	}

	if resp, body := call(post("203.0.113.10", key1, "application/json; charset=utf-16", goodEvent)); resp.StatusCode != 415 || body.Error == "" {
		t.Errorf("utf-16: %d %s", resp.StatusCode, resp.Body)
	}
	if resp, body := call(post("203.0.113.10", key1, "application/json",
		`{"event_name":"a","user_id":"`+strings.Repeat("x", 600<<10)+`"}`)); resp.StatusCode != 400 || len(body.Errors) != 1 || body.Errors[0].Field != "user_id" {
		t.Errorf("a 600 KiB user_id: %d %.300s", resp.StatusCode, resp.Body)
	}
	if resp, body := call(post("203.0.113.10", key1, "application/json",
		`{"event_name":"a","user_id":"u","event_time":"1970-01-01T00:00:00Z"}`)); resp.StatusCode != 400 || len(body.Errors) != 1 || body.Errors[0].Field != "event_time" {
		t.Errorf("the epoch: %d %s", resp.StatusCode, resp.Body)
	}
	// Invalid UTF-8 arrives base64-encoded (Lambda cannot pass it as text).
	ev := post("203.0.113.10", key1, "application/json", "")
	ev.Body, ev.IsBase64Encoded = base64Of(`{"event_name":"a","user_id":"u`+"\xff"+`"}`), true
	if resp, body := call(ev); resp.StatusCode != 200 || body.ReplacedChars != 1 || body.Events[0].ReplacedChars != 1 {
		t.Errorf("invalid UTF-8: %d %s", resp.StatusCode, resp.Body)
	}
	if !utf8.ValidString(sink.rows(t)[len(sink.rows(t))-1].UserID) {
		t.Error("stored user_id is not UTF-8")
	}

	if resp, _ := call(urlEvent("GET", "/v1/events", "", nil, "", false)); resp.StatusCode != 405 || resp.Headers["Allow"] != "POST" {
		t.Errorf("GET /v1/events: %d %v", resp.StatusCode, resp.Headers)
	}
	if resp, _ := call(urlEvent("GET", "/favicon.ico", "", nil, "", false)); resp.StatusCode != 404 {
		t.Errorf("GET /favicon.ico: %d", resp.StatusCode)
	}
}

func base64Of(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
