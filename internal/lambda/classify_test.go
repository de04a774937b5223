package lambda

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// awsErr builds an error shaped like the SDK's: an API error code inside
// an HTTP response error with a status.
func awsErr(status int, code string) error {
	var inner error = &smithy.GenericAPIError{Code: code, Message: "test"}
	return &smithy.OperationError{ServiceID: "S3", OperationName: "GetObject", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: inner},
	}}
}

func TestClassify(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("day 2026-11-20: read raw/x: %w", err) }
	cases := []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, OK},
		{"zone", wrap(&job.ZoneError{Store: "s3://b", Have: "UTC", Want: "Pacific/Auckland"}), Permanent},
		{"locked", wrap(&job.LockedError{Held: &lease.HeldError{Name: "events/dt=2026-11-20"}}), Permanent},
		{"deadline", wrap(context.DeadlineExceeded), Transient},
		{"canceled", wrap(context.Canceled), Transient},
		{"lease lost", wrap(fmt.Errorf("lost the lease before publishing: %w", lease.ErrLost)), Transient},
		{"lease expired", wrap(lease.ErrExpired), Transient},
		{"raced", wrap(store.ErrExists), Transient},
		{"S3 503 SlowDown", wrap(awsErr(503, "SlowDown")), Transient},
		{"S3 500 InternalError", wrap(awsErr(500, "InternalError")), Transient},
		{"S3 502 no code", wrap(awsErr(502, "")), Transient},
		{"429", wrap(awsErr(429, "")), Transient},
		{"Lambda throttled", wrap(awsErr(429, "TooManyRequestsException")), Transient},
		{"S3 403 AccessDenied", wrap(awsErr(403, "AccessDenied")), Permanent},
		{"403 no code", wrap(awsErr(403, "")), Permanent},
		{"NoSuchBucket", wrap(awsErr(404, "NoSuchBucket")), Permanent},
		{"Lambda function missing", wrap(awsErr(404, "ResourceNotFoundException")), Permanent},
		{"connection reset", wrap(syscall.ECONNRESET), Transient},
		{"net error", wrap(&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), Transient},
		{"cut-off body", wrap(io.ErrUnexpectedEOF), Transient},
		{"unknown", errors.New("something odd"), Transient},
	}
	for _, c := range cases {
		if got := Classify(c.err); got != c.want {
			t.Errorf("%s: %v -> %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
