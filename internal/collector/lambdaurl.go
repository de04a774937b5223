package collector

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// FunctionURL serves the invocations of a Lambda function URL (payload
// format 2.0) with an http.Handler: each event becomes an *http.Request,
// the handler answers into a recorder, and the recorded answer becomes the
// function's response. It keeps nothing between invocations but Handler,
// so it is safe for concurrent use if Handler is.
type FunctionURL struct {
	Handler http.Handler
}

// Handle serves one function URL event. A request that cannot be rebuilt
// (a body that is not the base64 Lambda said it was, a path that is not a
// path) is answered 400 by Handle itself; Handle never returns an error, so
// a client's bad request never counts as a function error.
func (f *FunctionURL) Handle(ctx context.Context, ev events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	r, err := NewRequest(ctx, ev)
	if err != nil {
		rec := newRecorder()
		writeError(rec, http.StatusBadRequest, err.Error())
		return rec.response(), nil
	}
	rec := newRecorder()
	f.Handler.ServeHTTP(rec, r)
	return rec.response(), nil
}

// NewRequest rebuilds the HTTP request of a function URL event, with ctx as
// its context:
//
//   - method from requestContext.http.method; path and query string as sent
//     (rawPath, rawQueryString), so r.URL.Query() sees repeated keys;
//   - headers as Lambda passes them: lower-cased names, and the values of a
//     header sent several times joined by commas into one value, which
//     HTTP defines as the same thing; cookies (sent apart) back into one
//     Cookie header;
//   - Host from the host header (else domainName), RemoteAddr from
//     requestContext.http.sourceIp;
//   - the body decoded from base64 when isBase64Encoded, with
//     ContentLength set.
func NewRequest(ctx context.Context, ev events.LambdaFunctionURLRequest) (*http.Request, error) {
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		var err error
		if body, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
			return nil, fmt.Errorf("decode base64 body: %w", err)
		}
	}
	method := ev.RequestContext.HTTP.Method
	if method == "" {
		return nil, fmt.Errorf("event has no requestContext.http.method")
	}
	path := ev.RawPath
	if path == "" {
		path = ev.RequestContext.HTTP.Path
	}
	if path == "" {
		path = "/"
	}
	target := path
	if ev.RawQueryString != "" {
		target += "?" + ev.RawQueryString
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil, fmt.Errorf("request path: %w", err)
	}
	r, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	r.URL, r.RequestURI = u, target
	r.ContentLength = int64(len(body))
	if len(body) == 0 {
		r.Body = http.NoBody
	}
	for k, v := range ev.Headers {
		r.Header.Set(k, v)
	}
	if len(ev.Cookies) > 0 {
		r.Header.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	r.Host = r.Header.Get("Host")
	if r.Host == "" {
		r.Host = ev.RequestContext.DomainName
	}
	r.Header.Del("Host") // Go keeps it in r.Host, as a server does
	r.URL.Host, r.URL.Scheme = "", ""
	if ip := ev.RequestContext.HTTP.SourceIP; ip != "" {
		r.RemoteAddr = net.JoinHostPort(ip, "0")
	}
	return r, nil
}

// recorder is the http.ResponseWriter a FunctionURL hands the handler. The
// first WriteHeader wins; a Write without one means 200.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

var _ http.ResponseWriter = (*recorder)(nil)

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}

// response is what was recorded, as a function URL response: a header set
// several times is joined with ", " (Set-Cookie goes to Cookies instead,
// one entry each, since cookies cannot be joined); a body that is valid
// UTF-8 is sent as text, any other body as base64.
func (w *recorder) response() events.LambdaFunctionURLResponse {
	resp := events.LambdaFunctionURLResponse{StatusCode: w.status, Headers: map[string]string{}}
	if resp.StatusCode == 0 {
		resp.StatusCode = http.StatusOK
	}
	for k, vs := range w.header {
		if k == "Set-Cookie" {
			resp.Cookies = append(resp.Cookies, vs...)
			continue
		}
		resp.Headers[k] = strings.Join(vs, ", ")
	}
	if b := w.body.Bytes(); utf8.Valid(b) {
		resp.Body = string(b)
	} else {
		resp.Body, resp.IsBase64Encoded = base64.StdEncoding.EncodeToString(b), true
	}
	return resp
}
