package firehose

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	fh "github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/aws/smithy-go"

	"github.com/littlewarehouse/warehouse/internal/wait"
)

// API is the part of the Firehose SDK client that Client uses;
// *firehose.Client (aws-sdk-go-v2) implements it.
type API interface {
	PutRecordBatch(ctx context.Context, in *fh.PutRecordBatchInput, optFns ...func(*fh.Options)) (*fh.PutRecordBatchOutput, error)
}

var _ API = (*fh.Client)(nil)

// ErrRecordTooLarge is returned (wrapped) by Put for a record Firehose would
// refuse; nothing of that call is sent.
var ErrRecordTooLarge = errors.New("record larger than Firehose accepts")

// ClientOptions tune how Client retries.
type ClientOptions struct {
	// MaxAttempts bounds the PutRecordBatch calls made for one batch,
	// counting the first (default 6).
	MaxAttempts int
	// BaseDelay and MaxDelay shape the exponential backoff with full jitter
	// between attempts (defaults 100 ms and 3 s).
	BaseDelay, MaxDelay time.Duration
	// Logger receives counts of failed records and retries, never record
	// contents (default slog.Default()).
	Logger *slog.Logger
}

// Client puts records on one Firehose delivery stream. It is safe for
// concurrent use.
type Client struct {
	api    API
	stream string
	opts   ClientOptions
}

// NewClient returns a Client putting records on the delivery stream named
// stream through api.
func NewClient(api API, stream string, opts ClientOptions) *Client {
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 6
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = 100 * time.Millisecond
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 3 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Client{api: api, stream: stream, opts: opts}
}

// Put delivers records to the stream and returns nil only once Firehose has
// accepted every one of them. Records are sent in PutRecordBatch calls of at
// most MaxBatchRecords records and MaxBatchBytes bytes, one call after the
// other. When Firehose fails some records of a call (FailedPutCount > 0),
// only those records are sent again, after an exponential backoff with full
// jitter, up to MaxAttempts calls per batch; a whole call that fails with a
// retryable error is retried the same way. Errors that retrying cannot cure
// (InvalidArgumentException, ResourceNotFoundException, …) end Put at once.
//
// On error, some records — whole earlier batches, or the accepted part of a
// partially failed one — may already be in the stream: delivery is at least
// once, and the caller that retries sends those again.
func (c *Client) Put(ctx context.Context, records [][]byte) error {
	for i, r := range records {
		if len(r) > MaxRecordBytes || len(r) == 0 {
			return fmt.Errorf("put on %s: record %d has %d bytes (want 1 to %d): %w", c.stream, i, len(r), MaxRecordBytes, ErrRecordTooLarge)
		}
	}
	for start := 0; start < len(records); {
		end, size := start, 0
		for end < len(records) && end-start < MaxBatchRecords && size+len(records[end]) <= MaxBatchBytes {
			size += len(records[end])
			end++
		}
		if err := c.putBatch(ctx, records[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// putBatch sends one batch that fits a PutRecordBatch call, retrying the
// records that fail.
func (c *Client) putBatch(ctx context.Context, batch [][]byte) error {
	pending := batch
	for attempt := 1; ; attempt++ {
		in := &fh.PutRecordBatchInput{
			DeliveryStreamName: aws.String(c.stream),
			Records:            make([]types.Record, len(pending)),
		}
		for i, r := range pending {
			in.Records[i] = types.Record{Data: r}
		}
		out, err := c.api.PutRecordBatch(ctx, in)
		var lastErr error
		switch {
		case err != nil && (ctx.Err() != nil || !retryable(err)):
			return fmt.Errorf("put %d records on %s: %w", len(pending), c.stream, err)
		case err != nil:
			lastErr = err
		case len(out.RequestResponses) != len(pending):
			// Without one answer per record we cannot tell which were taken.
			return fmt.Errorf("put %d records on %s: got %d record results", len(pending), c.stream, len(out.RequestResponses))
		default:
			var failed [][]byte
			var code, msg string
			for i, res := range out.RequestResponses {
				if res.ErrorCode != nil {
					failed = append(failed, pending[i])
					code, msg = aws.ToString(res.ErrorCode), aws.ToString(res.ErrorMessage)
				}
			}
			if len(failed) == 0 {
				if aws.ToInt32(out.FailedPutCount) != 0 {
					c.opts.Logger.Warn("firehose FailedPutCount disagrees with record results",
						"stream", c.stream, "failed_put_count", aws.ToInt32(out.FailedPutCount))
				}
				return nil
			}
			c.opts.Logger.Warn("firehose failed some records",
				"stream", c.stream, "attempt", attempt, "records", len(pending), "failed", len(failed), "error_code", code)
			lastErr = fmt.Errorf("%d of %d records failed, last with %s: %s", len(failed), len(pending), code, msg)
			pending = failed
		}
		if attempt >= c.opts.MaxAttempts {
			return fmt.Errorf("put %d records on %s: gave up after %d attempts: %w", len(pending), c.stream, attempt, lastErr)
		}
		if err := wait.Sleep(ctx, c.backoff(attempt)); err != nil {
			return fmt.Errorf("put %d records on %s: %w (last error: %v)", len(pending), c.stream, err, lastErr)
		}
	}
}

// backoff returns the wait after the given attempt: a random duration up to
// min(MaxDelay, BaseDelay·2^(attempt-1)) ("full jitter").
func (c *Client) backoff(attempt int) time.Duration {
	ceil := c.opts.MaxDelay
	if attempt-1 < 30 {
		if d := c.opts.BaseDelay << (attempt - 1); d > 0 && d < ceil {
			ceil = d
		}
	}
	return rand.N(ceil) + 1
}

// permanent lists Firehose error codes that another try will not cure.
var permanent = map[string]bool{
	"InvalidArgumentException":    true,
	"ResourceNotFoundException":   true,
	"InvalidKMSResourceException": true,
	"InvalidSourceException":      true,
	"AccessDeniedException":       true,
	"UnrecognizedClientException": true,
	"ValidationException":         true,
}

func retryable(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return !permanent[ae.ErrorCode()]
	}
	return true // transport errors, timeouts of one call
}
