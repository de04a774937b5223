package collector

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/go-cmp/cmp"
)

// urlEvent is a function URL event as Lambda sends it: lower-case header
// names, repeated headers joined by commas, cookies apart.
func urlEvent(method, path, query string, headers map[string]string, body string, b64 bool) events.LambdaFunctionURLRequest {
	return events.LambdaFunctionURLRequest{
		Version: "2.0", RawPath: path, RawQueryString: query, Headers: headers, Body: body, IsBase64Encoded: b64,
		RequestContext: events.LambdaFunctionURLRequestContext{
			DomainName: "abc123.lambda-url.eu-west-1.on.aws",
			HTTP:       events.LambdaFunctionURLRequestContextHTTPDescription{Method: method, Path: path, SourceIP: "203.0.113.7"},
		},
	}
}

// seen is what a handler saw of a request.
type seen struct {
	Method, Path, Host, RemoteAddr, Body string
	ContentLength                        int64
	Query                                map[string][]string
	Header                               map[string]string
}

func TestNewRequestRebuildsTheRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		ev   events.LambdaFunctionURLRequest
		want seen
	}{
		{
			name: "a JSON body, headers and a query with a repeated key",
			ev: urlEvent("POST", "/v1/events", "a=1&a=2&b=x%20y", map[string]string{
				"content-type": "application/json", "x-api-key": key1, "host": "abc123.lambda-url.eu-west-1.on.aws",
				"accept": "text/html, application/json",
			}, `{"event_name":"x"}`, false),
			want: seen{
				Method: "POST", Path: "/v1/events", Host: "abc123.lambda-url.eu-west-1.on.aws", RemoteAddr: "203.0.113.7:0",
				Body: `{"event_name":"x"}`, ContentLength: 18,
				Query:  map[string][]string{"a": {"1", "2"}, "b": {"x y"}},
				Header: map[string]string{"Content-Type": "application/json", "X-Api-Key": key1, "Accept": "text/html, application/json"},
			},
		},
		{
			name: "a base64 body is decoded",
			ev: urlEvent("POST", "/v1/events", "", map[string]string{"content-type": "application/json"},
				base64.StdEncoding.EncodeToString([]byte("[{\"event_name\":\"\xff\"}]")), true),
			want: seen{
				Method: "POST", Path: "/v1/events", Host: "abc123.lambda-url.eu-west-1.on.aws", RemoteAddr: "203.0.113.7:0",
				Body: "[{\"event_name\":\"\xff\"}]", ContentLength: 20, Query: map[string][]string{},
				Header: map[string]string{"Content-Type": "application/json"},
			},
		},
		{
			name: "cookies come back as one Cookie header, no body is an empty body",
			ev: func() events.LambdaFunctionURLRequest {
				ev := urlEvent("GET", "/healthz", "", map[string]string{}, "", false)
				ev.Cookies = []string{"a=1", "b=2"}
				return ev
			}(),
			want: seen{
				Method: "GET", Path: "/healthz", Host: "abc123.lambda-url.eu-west-1.on.aws", RemoteAddr: "203.0.113.7:0",
				Query: map[string][]string{}, Header: map[string]string{"Cookie": "a=1; b=2"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := NewRequest(context.Background(), tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(r.Body)
			if err != nil {
				t.Fatal(err)
			}
			got := seen{
				Method: r.Method, Path: r.URL.Path, Host: r.Host, RemoteAddr: r.RemoteAddr, Body: string(b),
				ContentLength: r.ContentLength, Query: r.URL.Query(), Header: map[string]string{},
			}
			for k := range r.Header {
				got.Header[k] = r.Header.Get(k)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewRequestRefusesBrokenEvents(t *testing.T) {
	for name, ev := range map[string]events.LambdaFunctionURLRequest{
		"body that is not base64": urlEvent("POST", "/v1/events", "", nil, "not base64!", true),
		"no method":               urlEvent("", "/v1/events", "", nil, "", false),
		"path that is not a path": urlEvent("GET", "no-slash", "", nil, "", false),
	} {
		if _, err := NewRequest(context.Background(), ev); err == nil {
			t.Errorf("%s: no error", name)
		}
		resp, err := (&FunctionURL{Handler: http.NotFoundHandler()}).Handle(context.Background(), ev)
		if err != nil || resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.Body, `"error"`) {
			t.Errorf("%s: Handle answered %+v, %v; want a 400 and no function error", name, resp, err)
		}
	}
}

func TestFunctionURLRecordsTheAnswer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    events.LambdaFunctionURLResponse
	}{
		{
			name:    "a write without WriteHeader is 200",
			handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") },
			want:    events.LambdaFunctionURLResponse{StatusCode: 200, Headers: map[string]string{}, Body: "ok"},
		},
		{
			name: "status, repeated headers joined, cookies apart, the first status wins",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Add("Vary", "Origin")
				w.Header().Add("Vary", "Accept")
				w.Header().Add("Set-Cookie", "a=1")
				w.Header().Add("Set-Cookie", "b=2; Path=/")
				w.WriteHeader(http.StatusTooManyRequests)
				w.WriteHeader(http.StatusOK)
				io.WriteString(w, "slow down")
			},
			want: events.LambdaFunctionURLResponse{
				StatusCode: 429, Headers: map[string]string{"Vary": "Origin, Accept"},
				Cookies: []string{"a=1", "b=2; Path=/"}, Body: "slow down",
			},
		},
		{
			name:    "no body, no write: 200 and empty",
			handler: func(w http.ResponseWriter, r *http.Request) {},
			want:    events.LambdaFunctionURLResponse{StatusCode: 200, Headers: map[string]string{}},
		},
		{
			name: "a body that is not UTF-8 goes as base64",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusCreated)
				w.Write([]byte{0xff, 0x00, 0x01})
			},
			want: events.LambdaFunctionURLResponse{StatusCode: 201, Headers: map[string]string{}, Body: "/wAB", IsBase64Encoded: true},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := (&FunctionURL{Handler: tc.handler}).Handle(context.Background(), urlEvent("GET", "/", "", nil, "", false))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
}

// TestCollectorAsFunctionURL serves the real collector handler through the
// adapter: events accepted, a bad key, CORS, the rate limit.
func TestCollectorAsFunctionURL(t *testing.T) {
	sink := &recordingSink{}
	cfg := testConfig()
	cfg.RatePerSecond, cfg.RateBurst = 1, 2
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
		var body Response
		if resp.Body != "" {
			if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
				t.Fatalf("answer %q: %v", resp.Body, err)
			}
		}
		return resp, body
	}
	post := func(key, body string, b64 bool, extra map[string]string) events.LambdaFunctionURLRequest {
		h := map[string]string{"content-type": "application/json", "x-api-key": key}
		for k, v := range extra {
			h[k] = v
		}
		if b64 {
			body = base64.StdEncoding.EncodeToString([]byte(body))
		}
		return urlEvent("POST", "/v1/events", "", h, body, b64)
	}

	resp, body := call(post(key1, `[{"event_name":"a","user_id":"u"},{"event_name":"b","device_id":"d"}]`, true,
		map[string]string{"origin": "https://app.example.com"}))
	if resp.StatusCode != 200 || body.Accepted != 2 || len(sink.rows(t)) != 2 {
		t.Fatalf("post: %+v %+v", resp, body)
	}
	if resp.Headers["Access-Control-Allow-Origin"] != "https://app.example.com" || resp.Headers["Content-Type"] != "application/json" {
		t.Errorf("headers %v", resp.Headers)
	}

	if resp, _ := call(post("wrong-key-0123456789abcdef", `{"event_name":"a","user_id":"u"}`, false, nil)); resp.StatusCode != 401 {
		t.Errorf("bad key: %d %s", resp.StatusCode, resp.Body)
	}
	if resp, _ := call(post(key2, `{"event_name":"a","user_id":"u"}`, false, map[string]string{"origin": "https://evil.example"})); resp.StatusCode != 403 {
		t.Errorf("foreign origin: %d %s", resp.StatusCode, resp.Body)
	}
	pre := urlEvent("OPTIONS", "/v1/events", "", map[string]string{
		"origin": "https://app.example.com", "access-control-request-method": "POST", "access-control-request-headers": "content-type,x-api-key",
	}, "", false)
	if resp, _ := call(pre); resp.StatusCode != 204 || !strings.Contains(resp.Headers["Access-Control-Allow-Headers"], "X-Api-Key") {
		t.Errorf("preflight: %+v", resp)
	}

	// key1 has spent its burst of 2 (one post, the clock stands still).
	call(post(key1, `{"event_name":"a","user_id":"u"}`, false, nil))
	resp, _ = call(post(key1, `{"event_name":"a","user_id":"u"}`, false, nil))
	if resp.StatusCode != 429 || resp.Headers["Retry-After"] == "" {
		t.Errorf("over the rate: %d %v", resp.StatusCode, resp.Headers)
	}
}
