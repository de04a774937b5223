package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/littlewarehouse/warehouse/internal/store"
	"github.com/littlewarehouse/warehouse/internal/store/s3fault"
	"github.com/littlewarehouse/warehouse/internal/store/storetest"
)

// fakeS3 is gofakes3 over memory, served on 127.0.0.1, behind optional
// middleware that can fail or inspect requests.
type fakeS3 struct {
	srv     *httptest.Server
	backend *s3mem.Backend
	mu      sync.Mutex
	log     []string // "METHOD /path?query" of every request
}

func newFakeS3(t *testing.T, wrap func(http.Handler) http.Handler) *fakeS3 {
	t.Helper()
	f := &fakeS3{backend: s3mem.New()}
	var h http.Handler = gofakes3.New(f.backend).Server()
	if wrap != nil {
		h = wrap(h)
	}
	inner := h
	h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.log = append(f.log, r.Method+" "+r.URL.RequestURI())
		f.mu.Unlock()
		inner.ServeHTTP(w, r)
	})
	f.srv = httptest.NewServer(h)
	t.Cleanup(f.srv.Close)
	f.bucket(t, "bucket")
	return f
}

func (f *fakeS3) bucket(t *testing.T, name string) {
	t.Helper()
	if err := f.backend.CreateBucket(name); err != nil {
		t.Fatal(err)
	}
}

// requests returns the logged requests that contain all of parts.
func (f *fakeS3) requests(parts ...string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
next:
	for _, l := range f.log {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// client is an S3 client for the fake, built the way a Lambda would inject
// one, plus any option tweaks.
func (f *fakeS3) client(opts ...func(*s3.Options)) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(f.srv.URL),
		UsePathStyle: true,
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDFAKE", "fake-secret", ""),
	}, opts...)
}

// s3Error writes an S3 XML error.
func s3Error(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by the test</Message><RequestId>test</RequestId></Error>`, code)
}

// smallListPages makes every ListObjectsV2 return at most 3 keys, so that
// List's pagination runs on every test.
func smallListPages(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query(); r.Method == http.MethodGet && q.Get("list-type") == "2" {
			q.Set("max-keys", "3")
			r.URL.RawQuery = q.Encode()
		}
		next.ServeHTTP(w, r)
	})
}

func TestS3Conformance(t *testing.T) {
	f := newFakeS3(t, smallListPages)
	c := f.client()
	var n atomic.Int64
	t.Run("under a prefix", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store {
			prefix := fmt.Sprintf("suite/%d", n.Add(1))
			// Neighbours that share the prefix's characters but are not
			// under it must never show up.
			for _, k := range []string{prefix, prefix + "_x/y", prefix + "-x"} {
				if _, err := c.PutObject(t.Context(), &s3.PutObjectInput{
					Bucket: aws.String("bucket"), Key: aws.String(k), Body: strings.NewReader("neighbour"),
				}); err != nil {
					t.Fatal(err)
				}
			}
			return store.NewS3(c, "bucket", prefix)
		})
	})
	t.Run("at the root of a bucket", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store {
			b := fmt.Sprintf("root-%d", n.Add(1))
			f.bucket(t, b)
			return store.NewS3(c, b, "")
		})
	})
	if len(f.requests("list-type=2", "continuation-token=")) == 0 {
		t.Error("List never asked for a second page")
	}
}

// TestS3Edges checks semantics where Dir still falls short (TestDirKnownBugs).
func TestS3Edges(t *testing.T) {
	ctx := t.Context()
	f := newFakeS3(t, nil)
	st := store.NewS3(f.client(), "bucket", "p")
	if err := st.Put(ctx, "a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	t.Run("a key below an object is ErrNotExist", func(t *testing.T) {
		if _, err := st.Stat(ctx, "a/b/c"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Stat = %v", err)
		}
		if _, err := st.Get(ctx, "a/b/c"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Get = %v", err)
		}
	})
	t.Run("Get of a folder is ErrNotExist", func(t *testing.T) {
		if _, err := st.Get(ctx, "a"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Get = %v", err)
		}
	})
	t.Run("Delete of a folder name deletes nothing", func(t *testing.T) {
		if err := st.Delete(ctx, "a"); err != nil {
			t.Errorf("Delete = %v", err)
		}
		if _, err := st.Stat(ctx, "a/b"); err != nil {
			t.Errorf("a/b: %v", err)
		}
	})
	t.Run(`the key "." is invalid`, func(t *testing.T) {
		if err := st.Delete(ctx, "."); err == nil {
			t.Error(`Delete(".") succeeded`)
		}
		if err := st.Put(ctx, ".", nil); err == nil {
			t.Error(`Put(".") succeeded`)
		}
	})
	t.Run("List never leaves the prefix", func(t *testing.T) {
		if _, err := f.client().PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String("bucket"), Key: aws.String("outside"), Body: strings.NewReader("x"),
		}); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"../", "..", "../o", "/"} {
			if objs, err := st.List(ctx, p); err != nil || len(objs) != 0 {
				t.Errorf("List(%q) = %v, %v; want nothing", p, objs, err)
			}
		}
	})
	t.Run("folder markers are not objects", func(t *testing.T) {
		if _, err := f.client().PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String("bucket"), Key: aws.String("p/folder/"), Body: strings.NewReader(""),
		}); err != nil {
			t.Fatal(err)
		}
		objs, err := st.List(ctx, "")
		if err != nil || len(objs) != 1 || objs[0].Key != "a/b" {
			t.Errorf("List = %v, %v; want only a/b", objs, err)
		}
	})
	t.Run("String names bucket and prefix", func(t *testing.T) {
		for _, c := range []struct{ prefix, want string }{
			{"p", "s3://bucket/p"},
			{"/p/q/", "s3://bucket/p/q"},
			{"", "s3://bucket"},
		} {
			if got := store.NewS3(f.client(), "bucket", c.prefix).String(); got != c.want {
				t.Errorf("NewS3(prefix %q).String() = %q, want %q", c.prefix, got, c.want)
			}
		}
	})
}

// TestGofakes3IfNoneMatch checks the fake itself: that it honours
// If-None-Match: * on PutObject, so the Create tests test something.
func TestGofakes3IfNoneMatch(t *testing.T) {
	ctx := t.Context()
	c := newFakeS3(t, nil).client()
	put := func(body string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String("bucket"), Key: aws.String("k"),
			Body: strings.NewReader(body), IfNoneMatch: aws.String("*"),
		})
		return err
	}
	if err := put("first"); err != nil {
		t.Fatalf("conditional put of a new key: %v", err)
	}
	err := put("second")
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "PreconditionFailed" {
		t.Fatalf("conditional put of an existing key = %v; want PreconditionFailed", err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bucket"), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	if b, _ := io.ReadAll(out.Body); string(b) != "first" {
		t.Errorf("content = %q after a failed conditional put", b)
	}
}

// isolateAWS gives the SDK's default chain static test credentials and
// nothing from the machine's own AWS setup.
func isolateAWS(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDFAKE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "fake-secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, k := range []string{
		"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
		"AWS_ENDPOINT_URL_S3", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_REQUEST_CHECKSUM_CALCULATION",
	} {
		unsetenv(t, k)
	}
}

func unsetenv(t *testing.T, k string) {
	t.Setenv(k, "") // restores the old value after the test
	os.Unsetenv(k)
}

func roundTrip(t *testing.T, st store.Store) {
	t.Helper()
	if err := st.Put(t.Context(), "k/v", []byte("value")); err != nil {
		t.Fatal(err)
	}
	if b, err := st.Get(t.Context(), "k/v"); err != nil || string(b) != "value" {
		t.Fatalf("Get = %q, %v", b, err)
	}
}

func TestOpenS3(t *testing.T) {
	ctx := t.Context()
	f := newFakeS3(t, nil)
	t.Run("Options.S3Endpoint points the store at a server", func(t *testing.T) {
		isolateAWS(t)
		st, err := store.Open(ctx, "s3://bucket/pre", store.Options{S3Endpoint: f.srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		if st.String() != "s3://bucket/pre" {
			t.Errorf("String() = %q", st.String())
		}
		roundTrip(t, st)
		// Path-style: the bucket is in the path, the key under the prefix.
		if len(f.requests("PUT /bucket/pre/k/v")) == 0 {
			t.Errorf("no PUT /bucket/pre/k/v among %q", f.requests("PUT"))
		}
	})
	t.Run("AWS_ENDPOINT_URL_S3 points the store at a server", func(t *testing.T) {
		isolateAWS(t)
		t.Setenv("AWS_ENDPOINT_URL_S3", f.srv.URL)
		st, err := store.Open(ctx, "s3://bucket/env/", store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, st)
		if len(f.requests("PUT /bucket/env/k/v")) == 0 {
			t.Errorf("no PUT /bucket/env/k/v among %q", f.requests("PUT"))
		}
	})
	t.Run("an overridden endpoint needs no region", func(t *testing.T) {
		isolateAWS(t)
		unsetenv(t, "AWS_REGION")
		st, err := store.Open(ctx, "s3://bucket", store.Options{S3Endpoint: f.srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, st)
	})
	t.Run("AWS proper needs a region", func(t *testing.T) {
		isolateAWS(t)
		unsetenv(t, "AWS_REGION")
		if _, err := store.Open(ctx, "s3://bucket/x", store.Options{}); err == nil || !strings.Contains(err.Error(), "region") {
			t.Errorf("Open without a region = %v; want an error about the region", err)
		}
	})
	t.Run("retries up to 10 attempts, or AWS_MAX_ATTEMPTS", func(t *testing.T) {
		isolateAWS(t)
		st, err := store.Open(ctx, "s3://bucket/x", store.Options{S3Endpoint: f.srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		if n := st.(*store.S3).Client().Options().Retryer.MaxAttempts(); n != 10 {
			t.Errorf("MaxAttempts = %d, want 10", n)
		}
		t.Setenv("AWS_MAX_ATTEMPTS", "4")
		st, err = store.Open(ctx, "s3://bucket/x", store.Options{S3Endpoint: f.srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		if n := st.(*store.S3).Client().Options().Retryer.MaxAttempts(); n != 4 {
			t.Errorf("MaxAttempts with AWS_MAX_ATTEMPTS=4 is %d", n)
		}
	})
	t.Run("malformed locations are errors", func(t *testing.T) {
		isolateAWS(t)
		for _, loc := range []string{"s3://", "s3:///prefix", "s3://bucket:9000/x", "s3://user@bucket/x", "s3://bucket/a/../b", "s3://bucket/a//b", "s3://bucket/x?region=eu-west-1"} {
			if _, err := store.Open(ctx, loc, store.Options{S3Endpoint: f.srv.URL}); err == nil {
				t.Errorf("Open(%q) succeeded", loc)
			}
		}
	})
}

// failFirst answers the first n requests that match with status and code
// instead of passing them on.
func failFirst(n int64, status int, code string, match func(*http.Request) bool) (func(http.Handler) http.Handler, *atomic.Int64) {
	var failed atomic.Int64
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if (match == nil || match(r)) && failed.Add(1) <= n {
				io.Copy(io.Discard, r.Body)
				s3Error(w, status, code)
				return
			}
			next.ServeHTTP(w, r)
		})
	}, &failed
}

func TestS3Retries(t *testing.T) {
	ctx := t.Context()
	t.Run("503 SlowDown is retried with backoff", func(t *testing.T) {
		isolateAWS(t)
		wrap, failed := failFirst(2, http.StatusServiceUnavailable, "SlowDown", nil)
		f := newFakeS3(t, wrap)
		st, err := store.Open(ctx, "s3://bucket/p", store.Options{S3Endpoint: f.srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, "k", []byte("v")); err != nil {
			t.Fatalf("Put through 2 SlowDowns: %v", err)
		}
		if got := len(f.requests("PUT /bucket/p/k")); got != 3 {
			t.Errorf("%d PUT attempts, want 3 (2 throttled, then through); %d failed", got, failed.Load())
		}
	})
	t.Run("500 on a ranged read is retried", func(t *testing.T) {
		isolateAWS(t)
		wrap, _ := failFirst(3, http.StatusInternalServerError, "InternalError", func(r *http.Request) bool {
			return r.Method == http.MethodGet && r.Header.Get("Range") != ""
		})
		f := newFakeS3(t, wrap)
		st, err := store.Open(ctx, "s3://bucket/p", store.Options{S3Endpoint: f.srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, "k", []byte("0123456789")); err != nil {
			t.Fatal(err)
		}
		r, err := st.Open(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		p := make([]byte, 4)
		if n, err := r.ReadAt(p, 3); n != 4 || err != nil || string(p) != "3456" {
			t.Errorf("ReadAt = %d, %v, %q", n, err, p)
		}
	})
	t.Run("a Create whose response was lost is not mistaken for ErrExists", func(t *testing.T) {
		isolateAWS(t)
		// The first conditional PUT reaches the server and is stored, but the
		// client hears a 500, so the SDK retries and gets a 412.
		var lost atomic.Bool
		f := newFakeS3(t, func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodPut && r.Header.Get("If-None-Match") == "*" && !lost.Swap(true) {
					next.ServeHTTP(httptest.NewRecorder(), r)
					s3Error(w, http.StatusInternalServerError, "InternalError")
					return
				}
				next.ServeHTTP(w, r)
			})
		})
		st, err := store.Open(ctx, "s3://bucket/p", store.Options{S3Endpoint: f.srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Create(ctx, "lease", []byte("mine")); err != nil {
			t.Fatalf("Create = %v; want nil", err)
		}
		if got := len(f.requests("PUT /bucket/p/lease")); got != 2 {
			t.Errorf("%d PUTs, want 2", got)
		}
		if err := st.Create(ctx, "lease", []byte("mine")); !errors.Is(err, store.ErrExists) {
			t.Errorf("a second Create of the same bytes = %v; want ErrExists", err)
		}
	})
	t.Run("409 ConditionalRequestConflict is ErrExists", func(t *testing.T) {
		wrap, _ := failFirst(1, http.StatusConflict, "ConditionalRequestConflict", nil)
		f := newFakeS3(t, wrap)
		st := store.NewS3(f.client(), "bucket", "p")
		if err := st.Create(ctx, "lease", []byte("x")); !errors.Is(err, store.ErrExists) {
			t.Errorf("Create = %v; want ErrExists", err)
		}
	})
}

func TestS3Reader(t *testing.T) {
	ctx := t.Context()
	t.Run("ReadAt sends one ranged GET, If-Match the opened ETag", func(t *testing.T) {
		f := newFakeS3(t, nil)
		var ranges []string
		var mu sync.Mutex
		st := store.NewS3(f.client(func(o *s3.Options) {
			o.HTTPClient = recordingClient(func(r *http.Request) {
				if r.Method == http.MethodGet && r.Header.Get("Range") != "" {
					mu.Lock()
					ranges = append(ranges, r.Header.Get("Range")+" if-match "+r.Header.Get("If-Match"))
					mu.Unlock()
				}
			})
		}), "bucket", "p")
		if err := st.Put(ctx, "k", bytes.Repeat([]byte("x"), 100)); err != nil {
			t.Fatal(err)
		}
		o, err := st.Stat(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		r, err := st.Open(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		r.ReadAt(make([]byte, 10), 5)
		r.ReadAt(make([]byte, 10), 95)
		r.ReadAt(make([]byte, 10), 100) // past the end: no request
		want := []string{
			`bytes=5-14 if-match "` + o.ETag + `"`,
			`bytes=95-99 if-match "` + o.ETag + `"`,
		}
		if fmt.Sprint(ranges) != fmt.Sprint(want) {
			t.Errorf("ranged GETs %q, want %q", ranges, want)
		}
	})
	t.Run("ReadAt fails rather than mix two versions of an object", func(t *testing.T) {
		// gofakes3 ignores If-Match on GET; this middleware does what S3 does.
		var f *fakeS3
		f = newFakeS3(t, func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if im := r.Header.Get("If-Match"); r.Method == http.MethodGet && im != "" {
					bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
					obj, err := f.backend.HeadObject(bucket, key)
					if err == nil && im != gofakes3.FormatETag(obj.Hash) {
						s3Error(w, http.StatusPreconditionFailed, "PreconditionFailed")
						return
					}
				}
				next.ServeHTTP(w, r)
			})
		})
		st := store.NewS3(f.client(), "bucket", "p")
		if err := st.Put(ctx, "k", []byte("version one")); err != nil {
			t.Fatal(err)
		}
		r, err := st.Open(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if _, err := r.ReadAt(make([]byte, 7), 0); err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, "k", []byte("version two")); err != nil {
			t.Fatal(err)
		}
		if n, err := r.ReadAt(make([]byte, 4), 7); err == nil || err == io.EOF {
			t.Errorf("ReadAt after the object changed = %d, %v; want an error", n, err)
		}
	})
	t.Run("ReadAt after Close fails", func(t *testing.T) {
		f := newFakeS3(t, nil)
		st := store.NewS3(f.client(), "bucket", "")
		st.Put(ctx, "k", []byte("x"))
		r, err := st.Open(ctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		if _, err := r.ReadAt(make([]byte, 1), 0); err == nil {
			t.Error("ReadAt after Close succeeded")
		}
	})
}

type recordingTransport struct {
	see  func(*http.Request)
	next http.RoundTripper
}

func (t recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.see(r)
	return t.next.RoundTrip(r)
}

func recordingClient(see func(*http.Request)) *http.Client {
	return &http.Client{Transport: recordingTransport{see: see, next: http.DefaultTransport}}
}

func TestS3Multipart(t *testing.T) {
	ctx := t.Context()
	const part = 8 << 20
	big := make([]byte, 2*part+12345)
	for i := range big {
		big[i] = byte(i * 7 / 3)
	}
	t.Run("a write bigger than a part becomes a multipart upload, visible at Close", func(t *testing.T) {
		f := newFakeS3(t, nil)
		st := store.NewS3(f.client(), "bucket", "p")
		w, err := st.NewWriter(ctx, "big")
		if err != nil {
			t.Fatal(err)
		}
		for rest := big; len(rest) > 0; {
			n := min(len(rest), 1<<20+17) // chunks that straddle part boundaries
			if _, err := w.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if got := len(f.requests("PUT /bucket/p/big?", "partNumber=")); got != 2 {
			t.Errorf("%d parts uploaded before Close, want 2", got)
		}
		if _, err := st.Stat(ctx, "big"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Stat before Close = %v; want ErrNotExist", err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := len(f.requests("POST /bucket/p/big?uploads")); got != 1 {
			t.Errorf("%d CreateMultipartUpload, want 1", got)
		}
		if got := len(f.requests("PUT /bucket/p/big?", "partNumber=")); got != 3 {
			t.Errorf("%d parts, want 3", got)
		}
		if got := len(f.requests("POST /bucket/p/big?uploadId=")); got != 1 {
			t.Errorf("%d CompleteMultipartUpload, want 1", got)
		}
		b, err := st.Get(ctx, "big")
		if err != nil || !bytes.Equal(b, big) {
			t.Fatalf("Get = %d bytes, %v; want the %d written", len(b), err, len(big))
		}
		o, err := st.Stat(ctx, "big")
		if err != nil || o.Size != int64(len(big)) {
			t.Errorf("Stat = %+v, %v", o, err)
		}
		// Ranged reads across part boundaries.
		r, err := st.Open(ctx, "big")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		p := make([]byte, 100)
		if n, err := r.ReadAt(p, part-50); n != 100 || err != nil || !bytes.Equal(p, big[part-50:part+50]) {
			t.Errorf("ReadAt across a part boundary = %d, %v", n, err)
		}
	})
	t.Run("exactly one part's worth uploads no empty last part", func(t *testing.T) {
		f := newFakeS3(t, nil)
		st := store.NewS3(f.client(), "bucket", "p")
		w, _ := st.NewWriter(ctx, "one")
		w.Write(big[:part])
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := len(f.requests("partNumber=")); got != 1 {
			t.Errorf("%d parts, want 1", got)
		}
		if b, err := st.Get(ctx, "one"); err != nil || !bytes.Equal(b, big[:part]) {
			t.Errorf("Get = %d bytes, %v", len(b), err)
		}
	})
	t.Run("a small write is one PutObject", func(t *testing.T) {
		f := newFakeS3(t, nil)
		st := store.NewS3(f.client(), "bucket", "p")
		w, _ := st.NewWriter(ctx, "small")
		w.Write(big[:part-1])
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got := len(f.requests("uploads")); got != 0 {
			t.Errorf("%d multipart requests, want none", got)
		}
	})
	t.Run("Put of more than a part uses a multipart upload", func(t *testing.T) {
		f := newFakeS3(t, nil)
		st := store.NewS3(f.client(), "bucket", "p")
		if err := st.Put(ctx, "big", big); err != nil {
			t.Fatal(err)
		}
		if got := len(f.requests("partNumber=")); got != 3 {
			t.Errorf("%d parts, want 3", got)
		}
		if b, err := st.Get(ctx, "big"); err != nil || !bytes.Equal(b, big) {
			t.Errorf("Get = %d bytes, %v", len(b), err)
		}
	})
	t.Run("Abort after some parts aborts the upload", func(t *testing.T) {
		f := newFakeS3(t, nil)
		c := f.client()
		st := store.NewS3(c, "bucket", "p")
		w, _ := st.NewWriter(ctx, "big")
		w.Write(big)
		w.Abort()
		if got := len(f.requests("DELETE /bucket/p/big?uploadId=")); got != 1 {
			t.Errorf("%d AbortMultipartUpload, want 1", got)
		}
		assertNoUploads(t, c)
		if _, err := st.Stat(ctx, "big"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Stat after Abort = %v; want ErrNotExist", err)
		}
	})
	t.Run("a failed part aborts the upload and Close reports it", func(t *testing.T) {
		wrap, _ := failFirst(1000, http.StatusInternalServerError, "InternalError", func(r *http.Request) bool {
			return r.URL.Query().Get("partNumber") == "2"
		})
		f := newFakeS3(t, wrap)
		c := f.client(func(o *s3.Options) { o.Retryer = retry.AddWithMaxAttempts(retry.NewStandard(), 2) })
		st := store.NewS3(c, "bucket", "p")
		w, _ := st.NewWriter(ctx, "big")
		_, werr := w.Write(big)
		cerr := w.Close()
		if werr == nil || cerr == nil {
			t.Errorf("Write = %v, Close = %v; want both to fail", werr, cerr)
		}
		assertNoUploads(t, c)
		if _, err := st.Stat(ctx, "big"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Stat = %v; want ErrNotExist", err)
		}
	})
	t.Run("a failed Complete aborts the upload", func(t *testing.T) {
		wrap, _ := failFirst(1000, http.StatusBadRequest, "InvalidPart", func(r *http.Request) bool {
			return r.Method == http.MethodPost && r.URL.Query().Has("uploadId")
		})
		f := newFakeS3(t, wrap)
		c := f.client()
		st := store.NewS3(c, "bucket", "p")
		w, _ := st.NewWriter(ctx, "big")
		w.Write(big)
		if err := w.Close(); err == nil {
			t.Error("Close succeeded")
		}
		assertNoUploads(t, c)
	})
	t.Run("a cancelled context still aborts the upload", func(t *testing.T) {
		f := newFakeS3(t, nil)
		c := f.client()
		st := store.NewS3(c, "bucket", "p")
		wctx, cancel := context.WithCancel(ctx)
		w, _ := st.NewWriter(wctx, "big")
		w.Write(big[:part+1])
		cancel()
		if err := w.Close(); err == nil {
			t.Error("Close with a cancelled context succeeded")
		}
		assertNoUploads(t, c)
	})
}

func assertNoUploads(t *testing.T, c *s3.Client) {
	t.Helper()
	out, err := c.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String("bucket")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Uploads) != 0 {
		t.Errorf("%d multipart uploads left open", len(out.Uploads))
	}
}

// TestS3ConformanceThroughFaults runs the conformance suite through a proxy
// that fails one request in ten (500/503, SlowDown, connection resets and
// cut bodies): the SDK's retryer and the store's own retries absorb them
// all.
func TestS3ConformanceThroughFaults(t *testing.T) {
	isolateAWS(t)
	backend := s3mem.New()
	if err := backend.CreateBucket("bucket"); err != nil {
		t.Fatal(err)
	}
	p := s3fault.Start(t, smallListPages(gofakes3.New(backend).Server()), 0.1, 1)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Store {
		st, err := store.Open(t.Context(), fmt.Sprintf("s3://bucket/suite/%d", n.Add(1)), store.Options{S3Endpoint: p.URL})
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
	reqs, faults := p.Counts()
	t.Logf("%d requests, faults: %v", reqs, faults)
	for k := range s3fault.Truncate + 1 {
		if faults[k] == 0 {
			t.Errorf("no %v fault injected in %d requests", k, reqs)
		}
	}
}

// TestS3BrokenBodies: every response is cut short or its connection reset
// twice in a row (then it goes through, s3fault.MaxInARow): Get, every
// List page and ranged reads still return the whole content.
func TestS3BrokenBodies(t *testing.T) {
	for _, kind := range []s3fault.Kind{s3fault.Truncate, s3fault.Reset} {
		t.Run(kind.String(), func(t *testing.T) {
			ctx := t.Context()
			isolateAWS(t)
			backend := s3mem.New()
			if err := backend.CreateBucket("bucket"); err != nil {
				t.Fatal(err)
			}
			direct := &fakeS3{srv: httptest.NewServer(gofakes3.New(backend).Server())}
			t.Cleanup(direct.srv.Close)
			clean := store.NewS3(direct.client(), "bucket", "p")
			big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
			var keys []string
			for i := range 7 {
				k := fmt.Sprintf("k/%02d", i)
				keys = append(keys, k)
				if err := clean.Put(ctx, k, big[:1000*(i+1)]); err != nil {
					t.Fatal(err)
				}
			}
			if err := clean.Put(ctx, "big", big); err != nil {
				t.Fatal(err)
			}
			p := s3fault.Start(t, smallListPages(gofakes3.New(backend).Server()), 1, 1, kind)
			st, err := store.Open(ctx, "s3://bucket/p", store.Options{S3Endpoint: p.URL})
			if err != nil {
				t.Fatal(err)
			}
			objs, err := st.List(ctx, "k/")
			if err != nil {
				t.Fatalf("List: %v", err)
			}
			if got := fmt.Sprint(len(objs)); got != "7" {
				t.Errorf("List: %d objects, want 7", len(objs))
			}
			for _, k := range keys {
				if b, err := st.Get(ctx, k); err != nil || len(b) == 0 {
					t.Errorf("Get(%s) = %d bytes, %v", k, len(b), err)
				}
			}
			if b, err := st.Get(ctx, "big"); err != nil || !bytes.Equal(b, big) {
				t.Errorf("Get(big) = %d bytes, %v", len(b), err)
			}
			r, err := st.Open(ctx, "big")
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got := make([]byte, 300<<10)
			if n, err := r.ReadAt(got, 100<<10); err != nil || !bytes.Equal(got[:n], big[100<<10:400<<10]) {
				t.Errorf("ReadAt = %d bytes, %v", n, err)
			}
			if _, faults := p.Counts(); faults[kind] == 0 {
				t.Errorf("no %v fault injected", kind)
			}
		})
	}
}

// TestS3MissingBucket: every operation on a bucket that does not exist says
// so, and none reports a missing object.
func TestS3MissingBucket(t *testing.T) {
	ctx := t.Context()
	f := newFakeS3(t, nil)
	st := store.NewS3(f.client(), "nope", "p")
	r, err := st.Open(ctx, "k")
	if err == nil {
		r.Close()
	}
	w, werr := st.NewWriter(ctx, "w")
	if werr == nil {
		w.Write([]byte("x"))
		werr = w.Close()
	}
	_, listErr := st.List(ctx, "")
	_, statErr := st.Stat(ctx, "k")
	_, getErr := st.Get(ctx, "k")
	for op, err := range map[string]error{
		"Stat": statErr, "Open": err, "Get": getErr, "List": listErr, "NewWriter": werr,
		"Put": st.Put(ctx, "k", []byte("x")), "Create": st.Create(ctx, "k", []byte("x")), "Delete": st.Delete(ctx, "k"),
	} {
		var nb *store.NoBucketError
		if !errors.As(err, &nb) || nb.Bucket != "nope" || !strings.Contains(err.Error(), "bucket nope does not exist") ||
			errors.Is(err, store.ErrNotExist) {
			t.Errorf("%s = %v; want bucket nope does not exist", op, err)
		}
	}
	// A bucket that exists is checked once, then a 404 is a missing object.
	ok := store.NewS3(f.client(), "bucket", "p")
	for range 3 {
		if _, err := ok.Stat(ctx, "missing"); !errors.Is(err, store.ErrNotExist) {
			t.Errorf("Stat = %v", err)
		}
	}
	var heads []string
	for _, r := range f.requests("HEAD /bucket") {
		if !strings.HasPrefix(r, "HEAD /bucket/p/") {
			heads = append(heads, r)
		}
	}
	if len(heads) != 1 {
		t.Errorf("HeadBucket requests %q; want 1", heads)
	}
}

// TestS3ContentType: an object is stored with the Content-Type of its
// name's extension (a presigned link to reports/latest.html opens as a
// page), and none for names without one (raw objects).
func TestS3ContentType(t *testing.T) {
	ctx := t.Context()
	f := newFakeS3(t, nil)
	st := store.NewS3(f.client(), "bucket", "p")
	for key, want := range map[string]string{"reports/latest.html": "text/html; charset=utf-8", "m/_manifest.json": "application/json", "raw/2026/01/01/00/events-1": ""} {
		if err := st.Put(ctx, key, []byte("x")); err != nil {
			t.Fatal(err)
		}
		out, err := f.client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("bucket"), Key: aws.String("p/" + key)})
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToString(out.ContentType); want != "" && got != want || want == "" && strings.HasPrefix(got, "text/") {
			t.Errorf("%s: Content-Type %q, want %q", key, got, want)
		}
	}
}
