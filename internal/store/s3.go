package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// S3 is a Store over an S3 bucket, or an S3-compatible server, under a key
// prefix: the store's key k is the S3 key prefix + "/" + k.
//
// Writes are atomic because S3 objects are: a NewWriter buffers up to one
// part (8 MiB) in memory and then switches to a multipart upload, which
// becomes visible only when it is completed. Create is a PutObject with
// If-None-Match: *. A Reader remembers the ETag it was opened at and sends
// it as If-Match with every ranged GET, so a reader never mixes two versions
// of an object: if the object is replaced under it, ReadAt fails.
//
// ETags are reported without their surrounding quotes. A missing bucket is
// an error that says "bucket <name> does not exist", never ErrNotExist: a
// HEAD request cannot tell a missing object from a missing bucket (both are
// a bodiless 404), so the first 404 of Stat or Open checks the bucket with
// HeadBucket (once the bucket is found, never again).
//
// Besides the SDK's retries of failed requests, the store retries a
// request whose response body breaks off (a connection reset, or fewer
// bytes than the declared Content-Length): Get and each List page up to
// s3BodyAttempts times, ReadAt from the offset reached.
type S3 struct {
	client   *s3.Client
	bucket   string
	prefix   string // "" or ending in "/"
	partSize int
	bucketOK atomic.Bool // the bucket was seen to exist
}

var _ Store = (*S3)(nil)

const (
	// s3PartSize is the in-memory buffer of a Writer and the size of each
	// part of a multipart upload (S3's minimum is 5 MiB, its maximum part
	// count 10,000, so objects up to about 80 GB).
	s3PartSize = 8 << 20
	// s3MaxParts is S3's limit on the parts of one multipart upload.
	s3MaxParts = 10000
	// s3MaxAttempts is how often one request is tried, unless
	// AWS_MAX_ATTEMPTS or the profile's max_attempts says otherwise.
	s3MaxAttempts = 10
	// s3BodyAttempts is how often Get, a List page or ReadAt is tried when
	// its response body breaks off (the SDK retries the request, not the
	// body).
	s3BodyAttempts = 4
)

// NewS3 returns a store over bucket under prefix ("" for the whole bucket),
// using client as it is configured.
func NewS3(client *s3.Client, bucket, prefix string) *S3 {
	prefix = strings.Trim(prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &S3{client: client, bucket: bucket, prefix: prefix, partSize: s3PartSize}
}

// openS3 opens an s3://bucket/prefix store. Region and credentials come from
// the SDK's default chain (environment, shared config, SSO, web identity,
// container and instance roles). The endpoint is opts.S3Endpoint, or
// AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL / the profile's endpoint_url; any
// overridden endpoint is addressed path-style (bucket in the path, as MinIO,
// gofakes3 and most S3-compatible servers need), and defaults the region to
// us-east-1 if none is configured.
//
// Requests are retried by the SDK's standard retryer with jittered
// exponential backoff, up to s3MaxAttempts attempts (503 SlowDown and other
// throttling start at a 1 s base delay, other 5xx and network errors at
// 50 ms, capped at 20 s). The retryer's client-side retry quota is turned
// off: a batch job that S3 throttles should slow down, not fail once a
// shared token bucket runs dry. (AWS_RETRY_MODE is therefore not consulted.)
func openS3(ctx context.Context, u *url.URL, opts Options) (Store, error) {
	bucket := u.Host
	if bucket == "" || u.Port() != "" || u.User != nil {
		return nil, fmt.Errorf("store: %q: want s3://bucket/prefix", u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("store: %q: s3 locations take no query or fragment", u.Redacted())
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" && checkKey(prefix) != nil {
		return nil, fmt.Errorf("store: %q: invalid prefix %q", u.Redacted(), prefix)
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: load AWS config: %w", err)
	}
	maxAttempts := cfg.RetryMaxAttempts
	if maxAttempts == 0 {
		maxAttempts = s3MaxAttempts
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		// Ranged reads carry no whole-object checksum; the SDK would log a
		// line for every one of them.
		o.DisableLogOutputChecksumValidationSkipped = true
		if opts.S3Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.S3Endpoint)
		}
		if o.BaseEndpoint != nil {
			o.UsePathStyle = true
			if o.Region == "" {
				o.Region = "us-east-1"
			}
		}
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = maxAttempts
			so.RateLimiter = ratelimit.None
		})
	})
	if client.Options().Region == "" {
		return nil, fmt.Errorf("store: %s: no AWS region configured (set AWS_REGION or a profile region)", u.Redacted())
	}
	return NewS3(client, bucket, prefix), nil
}

// Client returns the S3 client the store uses.
func (s *S3) Client() *s3.Client { return s.client }

func (s *S3) String() string {
	if s.prefix == "" {
		return "s3://" + s.bucket
	}
	return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/")
}

// checkKey applies the key rules of Dir, so that a key valid on one store is
// valid on every store: a clean, relative, slash-separated path.
func checkKey(key string) error {
	if key == "" || key == "." || key == ".." || strings.HasPrefix(key, "/") ||
		strings.HasPrefix(key, "../") || path.Clean(key) != key {
		return fmt.Errorf("store: invalid key %q", key)
	}
	return nil
}

func (s *S3) objectKey(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// etag strips the quotes S3 puts around ETags.
func etag(e *string) string { return strings.Trim(aws.ToString(e), `"`) }

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func isNotFound(err error) bool {
	switch errorCode(err) {
	case "NoSuchKey", "NotFound":
		return true
	case "NoSuchBucket":
		return false
	}
	return httpStatus(err) == http.StatusNotFound
}

func isPreconditionFailed(err error) bool {
	return errorCode(err) == "PreconditionFailed" || httpStatus(err) == http.StatusPreconditionFailed
}

func isConditionalConflict(err error) bool {
	switch errorCode(err) {
	case "ConditionalRequestConflict":
		return true
	case "":
		return httpStatus(err) == http.StatusConflict
	}
	return false
}

// s3Err translates a failed request on key. A bodiless 404 (HEAD) is
// ErrNotExist only once the bucket is known to exist.
func (s *S3) s3Err(ctx context.Context, op, key string, err error) error {
	if isNotFound(err) {
		if !s.bucketOK.Load() {
			if berr := s.checkBucket(ctx); berr != nil {
				return fmt.Errorf("%s %s: %w", op, key, berr)
			}
		}
		return fmt.Errorf("%s: %w", key, ErrNotExist)
	}
	return fmt.Errorf("%s %s: %w", op, key, s.bucketErr(err))
}

// NoBucketError says the store's bucket does not exist.
type NoBucketError struct {
	Bucket string
	Err    error // the error of the request that found out
}

func (e *NoBucketError) Error() string {
	return fmt.Sprintf("bucket %s does not exist (%v)", e.Bucket, e.Err)
}

func (e *NoBucketError) Unwrap() error { return e.Err }

// bucketErr returns a *NoBucketError for a NoSuchBucket error, else err.
func (s *S3) bucketErr(err error) error {
	if errorCode(err) == "NoSuchBucket" {
		return &NoBucketError{Bucket: s.bucket, Err: err}
	}
	return err
}

// checkBucket returns a *NoBucketError if HeadBucket says the bucket does
// not exist, and nil if it exists or it cannot tell (no permission, say).
func (s *S3) checkBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	switch {
	case err == nil:
		s.bucketOK.Store(true)
	case errorCode(err) == "NoSuchBucket" || httpStatus(err) == http.StatusNotFound:
		return &NoBucketError{Bucket: s.bucket, Err: err}
	}
	return nil
}

// bodyBroke reports whether err is a response that broke off, which a new
// request may get whole: a connection reset or closed early, or a body
// shorter than declared (which can also show as a deserialization error).
func bodyBroke(err error) bool {
	var de *smithy.DeserializationError
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &de) ||
		retry.RetryableConnectionError{}.IsErrorRetryable(err) == aws.TrueTernary
}

// List implements Store. Zero-byte keys ending in "/" (the folder markers
// the S3 console creates) are not objects and are skipped.
func (s *S3) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	var token *string
	for {
		var page *s3.ListObjectsV2Output
		var err error
		for attempt := 1; ; attempt++ {
			page, err = s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
				Bucket:            aws.String(s.bucket),
				Prefix:            aws.String(s.prefix + prefix),
				ContinuationToken: token,
			})
			if err == nil || !bodyBroke(err) || attempt == s3BodyAttempts || ctx.Err() != nil {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, s.bucketErr(err))
		}
		s.bucketOK.Store(true)
		for _, o := range page.Contents {
			key, ok := strings.CutPrefix(aws.ToString(o.Key), s.prefix)
			size := aws.ToInt64(o.Size)
			if !ok || key == "" || (strings.HasSuffix(key, "/") && size == 0) {
				continue
			}
			out = append(out, Object{
				Key:     key,
				Size:    size,
				ETag:    etag(o.ETag),
				ModTime: aws.ToTime(o.LastModified).UTC(),
			})
		}
		if !aws.ToBool(page.IsTruncated) || aws.ToString(page.NextContinuationToken) == "" {
			break
		}
		token = page.NextContinuationToken
	}
	// S3 lists in UTF-8 byte order already; S3-compatible servers may not.
	slices.SortFunc(out, func(a, b Object) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Stat implements Store.
func (s *S3) Stat(ctx context.Context, key string) (Object, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return Object{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)})
	if err != nil {
		return Object{}, s.s3Err(ctx, "stat", key, err)
	}
	return Object{
		Key:     key,
		Size:    aws.ToInt64(out.ContentLength),
		ETag:    etag(out.ETag),
		ModTime: aws.ToTime(out.LastModified).UTC(),
	}, nil
}

// Get implements Store. A body that breaks off is fetched again, whole.
func (s *S3) Get(ctx context.Context, key string) ([]byte, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return nil, err
	}
	b, _, err := s.getTag(ctx, key, k)
	return b, err
}

// getTag is Get, also returning the object's ETag.
func (s *S3) getTag(ctx context.Context, key, k string) ([]byte, string, error) {
	for attempt := 1; ; attempt++ {
		b, tag, retryable, err := s.get(ctx, key, k)
		if err == nil || !retryable || attempt == s3BodyAttempts || ctx.Err() != nil {
			return b, tag, err
		}
	}
}

// get is one try of Get; a body that broke off is retryable.
func (s *S3) get(ctx context.Context, key, k string) (_ []byte, tag string, retryable bool, _ error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)})
	if err != nil {
		return nil, "", false, s.s3Err(ctx, "get", key, err)
	}
	defer out.Body.Close()
	var buf bytes.Buffer
	if n := aws.ToInt64(out.ContentLength); n > 0 {
		buf.Grow(int(n))
	}
	if _, err := buf.ReadFrom(out.Body); err != nil {
		return nil, "", true, fmt.Errorf("get %s: %w", key, err)
	}
	return buf.Bytes(), etag(out.ETag), false, nil
}

// Open implements Store. The Reader makes its requests with ctx.
func (s *S3) Open(ctx context.Context, key string) (Reader, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return nil, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)})
	if err != nil {
		return nil, s.s3Err(ctx, "open", key, err)
	}
	return &s3Reader{
		ctx:  ctx,
		s:    s,
		key:  key,
		k:    k,
		size: aws.ToInt64(out.ContentLength),
		etag: aws.ToString(out.ETag),
	}, nil
}

type s3Reader struct {
	ctx    context.Context
	s      *S3
	key, k string
	size   int64
	etag   string // as S3 sent it, quoted
	closed atomic.Bool
}

func (r *s3Reader) Size() int64 { return r.size }

func (r *s3Reader) Close() error {
	if r.closed.Swap(true) {
		return fmt.Errorf("close %s: %w", r.key, fs.ErrClosed)
	}
	return nil
}

// ReadAt implements io.ReaderAt with one ranged GET (If-Match the ETag the
// object was opened at). It is safe for concurrent use.
func (r *s3Reader) ReadAt(p []byte, off int64) (int, error) {
	if r.closed.Load() {
		return 0, fmt.Errorf("read %s: %w", r.key, fs.ErrClosed)
	}
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", r.key, off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= r.size {
		return 0, io.EOF
	}
	want := int(min(int64(len(p)), r.size-off))
	n := 0
	for attempt := 1; ; attempt++ {
		m, retryable, err := r.readRange(p[n:want], off+int64(n))
		n += m
		if err == nil {
			break
		}
		if !retryable || attempt == s3BodyAttempts || r.ctx.Err() != nil {
			return n, err
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readRange fills p from off. Failed requests have been retried by the SDK
// already; a body that breaks off is reported as retryable.
func (r *s3Reader) readRange(p []byte, off int64) (n int, retryable bool, err error) {
	out, err := r.s.client.GetObject(r.ctx, &s3.GetObjectInput{
		Bucket:  aws.String(r.s.bucket),
		Key:     aws.String(r.k),
		Range:   aws.String(fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1)),
		IfMatch: aws.String(r.etag),
	})
	if err != nil {
		if isPreconditionFailed(err) {
			return 0, false, fmt.Errorf("read %s: object changed since it was opened: %w", r.key, err)
		}
		return 0, false, r.s.s3Err(r.ctx, "read", r.key, err)
	}
	defer out.Body.Close()
	// A server that ignores Range sends the whole object: fine only if that
	// is what was asked for.
	cr := aws.ToString(out.ContentRange)
	if !strings.HasPrefix(cr, fmt.Sprintf("bytes %d-", off)) &&
		!(cr == "" && off == 0 && aws.ToInt64(out.ContentLength) == int64(len(p))) {
		return 0, false, fmt.Errorf("read %s: asked for %d bytes at %d, got range %q", r.key, len(p), off, cr)
	}
	n, err = io.ReadFull(out.Body, p)
	if err != nil {
		return n, true, fmt.Errorf("read %s at %d: %w", r.key, off+int64(n), err)
	}
	return n, false, nil
}

// NewWriter implements Store. The Writer makes its requests with ctx.
func (s *S3) NewWriter(ctx context.Context, key string) (Writer, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return nil, err
	}
	return &s3Writer{ctx: ctx, s: s, key: key, k: k}, nil
}

type s3Writer struct {
	ctx      context.Context
	s        *S3
	key, k   string
	buf      []byte
	uploadID *string // set once the writer has switched to a multipart upload
	parts    []types.CompletedPart
	err      error // sticky: a part failed and the upload was aborted
	done     bool
}

var errWriterDone = errors.New("store: writer already closed or aborted")

func (w *s3Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errWriterDone
	}
	if w.err != nil {
		return 0, w.err
	}
	n := 0
	for len(p) > 0 {
		c := min(w.s.partSize-len(w.buf), len(p))
		w.buf = append(w.buf, p[:c]...)
		p, n = p[c:], n+c
		if len(w.buf) == w.s.partSize {
			if err := w.flushPart(); err != nil {
				w.err = err
				w.abortUpload()
				return n, err
			}
		}
	}
	return n, nil
}

// checksumAlgorithm is what parts are checksummed with: CRC32, as the SDK's
// transfer manager does, unless the client asks for checksums only where an
// operation requires them (AWS_REQUEST_CHECKSUM_CALCULATION=when_required,
// for servers that do not support them).
func (s *S3) checksumAlgorithm() types.ChecksumAlgorithm {
	if s.client.Options().RequestChecksumCalculation == aws.RequestChecksumCalculationWhenRequired {
		return ""
	}
	return types.ChecksumAlgorithmCrc32
}

// flushPart uploads the buffer as the next part, starting the multipart
// upload first if needed.
func (w *s3Writer) flushPart() error {
	alg := w.s.checksumAlgorithm()
	if w.uploadID == nil {
		out, err := w.s.client.CreateMultipartUpload(w.ctx, &s3.CreateMultipartUploadInput{
			Bucket:            aws.String(w.s.bucket),
			Key:               aws.String(w.k),
			ChecksumAlgorithm: alg,
			ContentType:       contentType(w.k),
		})
		if err != nil {
			return fmt.Errorf("write %s: start multipart upload: %w", w.key, w.s.bucketErr(err))
		}
		w.uploadID = out.UploadId
	}
	if len(w.parts) == s3MaxParts {
		return fmt.Errorf("write %s: more than %d parts of %d bytes", w.key, s3MaxParts, w.s.partSize)
	}
	num := int32(len(w.parts) + 1)
	out, err := w.s.client.UploadPart(w.ctx, &s3.UploadPartInput{
		Bucket:            aws.String(w.s.bucket),
		Key:               aws.String(w.k),
		UploadId:          w.uploadID,
		PartNumber:        aws.Int32(num),
		Body:              bytes.NewReader(w.buf),
		ContentLength:     aws.Int64(int64(len(w.buf))),
		ChecksumAlgorithm: alg,
	})
	if err != nil {
		return fmt.Errorf("write %s: upload part %d: %w", w.key, num, err)
	}
	w.parts = append(w.parts, types.CompletedPart{
		PartNumber:        aws.Int32(num),
		ETag:              out.ETag,
		ChecksumCRC32:     out.ChecksumCRC32,
		ChecksumCRC32C:    out.ChecksumCRC32C,
		ChecksumCRC64NVME: out.ChecksumCRC64NVME,
		ChecksumSHA1:      out.ChecksumSHA1,
		ChecksumSHA256:    out.ChecksumSHA256,
	})
	w.buf = w.buf[:0]
	return nil
}

// abortUpload drops the multipart upload, if any, even when the writer's
// context is done. A failure here leaves only invisible parts, which a
// bucket lifecycle rule (AbortIncompleteMultipartUpload) reclaims.
func (w *s3Writer) abortUpload() {
	w.buf = nil
	if w.uploadID == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 30*time.Second)
	defer cancel()
	_, _ = w.s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(w.s.bucket),
		Key:      aws.String(w.k),
		UploadId: w.uploadID,
	})
	w.uploadID = nil
}

func (w *s3Writer) Close() error {
	if w.done {
		return errWriterDone
	}
	w.done = true
	if w.err != nil {
		return w.err
	}
	if w.uploadID == nil {
		_, err := w.s.client.PutObject(w.ctx, &s3.PutObjectInput{
			Bucket:        aws.String(w.s.bucket),
			Key:           aws.String(w.k),
			Body:          bytes.NewReader(w.buf),
			ContentLength: aws.Int64(int64(len(w.buf))),
			ContentType:   contentType(w.k),
		})
		w.buf = nil
		if err != nil {
			return fmt.Errorf("write %s: %w", w.key, w.s.bucketErr(err))
		}
		return nil
	}
	if len(w.buf) > 0 {
		if err := w.flushPart(); err != nil {
			w.abortUpload()
			return err
		}
	}
	w.buf = nil
	_, err := w.s.client.CompleteMultipartUpload(w.ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(w.s.bucket),
		Key:             aws.String(w.k),
		UploadId:        w.uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts},
	})
	if err != nil {
		w.abortUpload()
		return fmt.Errorf("write %s: complete multipart upload: %w", w.key, err)
	}
	return nil
}

func (w *s3Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.abortUpload()
}

// Put implements Store: one PutObject, or a multipart upload for data larger
// than a part.
func (s *S3) Put(ctx context.Context, key string, data []byte) error {
	k, err := s.objectKey(key)
	if err != nil {
		return err
	}
	if len(data) > s.partSize {
		w, err := s.NewWriter(ctx, key)
		if err != nil {
			return err
		}
		if _, err := w.Write(data); err != nil {
			w.Abort()
			return err
		}
		return w.Close()
	}
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(k),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   contentType(k),
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", key, s.bucketErr(err))
	}
	return nil
}

// Create implements Store with a PutObject conditional on If-None-Match: *.
// S3 answers 412 PreconditionFailed if the key exists, or 409
// ConditionalRequestConflict if another conditional write to it is in
// flight; both become ErrExists.
//
// One case needs care: if an attempt succeeded but its response was lost,
// the SDK's retry finds the object it just wrote and gets a 412. So every
// Create stores a random token in the object's metadata
// (x-amz-meta-create-token), and when a retried Create fails its condition,
// the object's token is compared with ours: a match counts as success. (An
// object with the same bytes written earlier by someone else has another
// token, or none, and stays ErrExists.)
func (s *S3) Create(ctx context.Context, key string, data []byte) error {
	k, err := s.objectKey(key)
	if err != nil {
		return err
	}
	var tok [16]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	token := hex.EncodeToString(tok[:])
	attempts := 0
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(k),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   contentType(k),
		IfNoneMatch:   aws.String("*"),
		Metadata:      map[string]string{createTokenMeta: token},
	}, countAttempts(&attempts))
	switch {
	case err == nil:
		return nil
	case isPreconditionFailed(err) || isConditionalConflict(err):
		if attempts > 1 && s.madeBy(ctx, k, token) {
			return nil
		}
		return fmt.Errorf("create %s: %w", key, ErrExists)
	}
	return fmt.Errorf("create %s: %w", key, s.bucketErr(err))
}

// createTokenMeta is the metadata key of Create's token.
const createTokenMeta = "create-token"

// madeBy reports whether the object at k carries the Create token token.
func (s *S3) madeBy(ctx context.Context, k, token string) bool {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)})
	if err != nil {
		return false
	}
	for name, v := range out.Metadata {
		if strings.EqualFold(name, createTokenMeta) {
			return v == token
		}
	}
	return false
}

// countAttempts counts the attempts the SDK makes for one operation.
func countAttempts(n *int) func(*s3.Options) {
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Insert(middleware.FinalizeMiddlewareFunc("store.countAttempts",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					*n++
					return next.HandleFinalize(ctx, in)
				}), "Retry", middleware.After)
		})
	}
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, key string) error {
	k, err := s.objectKey(key)
	if err != nil {
		return err
	}
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(k)})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("delete %s: %w", key, s.bucketErr(err))
	}
	return nil
}

// contentType is the Content-Type stored with an object: by its name's
// extension (text/html for reports, application/json for manifests), so a
// browser shown a presigned link to a report displays it; nil (S3's
// binary/octet-stream) for names without a known extension, such as raw
// objects.
func contentType(key string) *string {
	if t := mime.TypeByExtension(path.Ext(key)); t != "" {
		return aws.String(t)
	}
	return nil
}
