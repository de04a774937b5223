package lambda

import (
	"context"
	"errors"
	"net/http"

	"github.com/aws/smithy-go"

	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/lease"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// Class says what a failed invocation should do about an error.
type Class int

const (
	// OK: no error.
	OK Class = iota
	// Transient errors may go away by themselves (S3 5xx or throttling, a
	// network failure, the invocation's deadline, a lost lease): the stage
	// returns a *RetryableError, which the state machine retries with
	// backoff.
	Transient
	// Permanent errors will not go away by retrying (another time zone in
	// the store, the day held by another writer, access denied, a missing
	// bucket): the stage logs the error with the day, counts it in the
	// WorkerFailures metric, and returns a *PermanentError, which the state
	// machine catches without retrying. The next run finds the day still
	// stale.
	Permanent
)

func (c Class) String() string {
	switch c {
	case OK:
		return "ok"
	case Transient:
		return "transient"
	case Permanent:
		return "permanent"
	}
	return "unknown"
}

// Error codes of AWS APIs that retrying cannot fix.
var permanentCodes = map[string]bool{
	"AccessDenied": true, "AccessDeniedException": true, "AllAccessDisabled": true,
	"InvalidAccessKeyId": true, "SignatureDoesNotMatch": true, "ExpiredToken": true, "InvalidToken": true,
	"UnrecognizedClientException": true, "NoSuchBucket": true, "InvalidBucketName": true,
	"ResourceNotFoundException": true, "InvalidParameterValueException": true, "RequestTooLargeException": true,
	"KMSAccessDeniedException": true, "KMSDisabledException": true, "KMSNotFoundException": true,
	"EntityNotFoundException": true,
}

// Error codes of AWS APIs that say "later".
var transientCodes = map[string]bool{
	"SlowDown": true, "Throttling": true, "ThrottlingException": true, "ThrottledException": true,
	"RequestLimitExceeded": true, "TooManyRequestsException": true, "RequestThrottled": true,
	"RequestThrottledException": true, "ProvisionedThroughputExceededException": true,
	"RequestTimeout": true, "RequestTimeoutException": true, "InternalError": true,
	"InternalServiceException": true, "ServiceUnavailable": true, "ServiceException": true,
	"EC2ThrottledException": true, "ResourceConflictException": true, "OperationAborted": true,
}

// Classify says whether err is worth a retry. Bad data never gets here:
// job.Run counts and quarantines it and returns no error. Errors nobody
// recognizes are Transient: the state machine bounds its retries, and a retry of an
// idempotent job is harmless.
func Classify(err error) Class {
	if err == nil {
		return OK
	}
	var zone *job.ZoneError
	var locked *job.LockedError
	switch {
	case errors.As(err, &zone):
		return Permanent
	case errors.As(err, &locked):
		return Permanent
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return Transient
	case errors.Is(err, lease.ErrLost), errors.Is(err, lease.ErrExpired):
		return Transient
	case errors.Is(err, store.ErrExists), errors.Is(err, store.ErrNotExist):
		// Another writer got there first, or deleted what was listed.
		return Transient
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		code := api.ErrorCode()
		if permanentCodes[code] {
			return Permanent
		}
		if transientCodes[code] {
			return Transient
		}
	}
	var resp interface{ HTTPStatusCode() int }
	if errors.As(err, &resp) {
		switch s := resp.HTTPStatusCode(); {
		case s == http.StatusTooManyRequests || s == http.StatusRequestTimeout || s >= 500:
			return Transient
		case s == http.StatusForbidden || s == http.StatusUnauthorized:
			return Permanent
		}
	}
	// Network failures (reset, refused, cut-off bodies) and the rest.
	return Transient
}
