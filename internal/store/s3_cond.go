package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// GetTag implements Store: the tag is the object's ETag.
func (s *S3) GetTag(ctx context.Context, key string) ([]byte, string, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return nil, "", err
	}
	return s.getTag(ctx, key, k)
}

// Replace implements Store with a PutObject conditional on If-Match: tag.
// S3 answers 412 PreconditionFailed if the ETag differs or the object is
// gone, or 409 ConditionalRequestConflict if another conditional write to
// it is in flight; all three become ErrConflict. As for Create, a retried
// request whose first attempt landed is told apart by a token in the
// object's metadata.
func (s *S3) Replace(ctx context.Context, key string, data []byte, tag string) (string, error) {
	k, err := s.objectKey(key)
	if err != nil {
		return "", err
	}
	var tok [16]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return "", fmt.Errorf("replace %s: %w", key, err)
	}
	token := hex.EncodeToString(tok[:])
	attempts := 0
	out, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(k),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   contentType(k),
		IfMatch:       aws.String(`"` + tag + `"`),
		Metadata:      map[string]string{createTokenMeta: token},
	}, countAttempts(&attempts))
	switch {
	case err == nil:
		return etag(out.ETag), nil
	case isPreconditionFailed(err) || isConditionalConflict(err) || isNotFound(err):
		if attempts > 1 && s.madeBy(ctx, k, token) {
			if o, err := s.Stat(ctx, key); err == nil {
				return o.ETag, nil
			}
		}
		return "", fmt.Errorf("replace %s: %w", key, ErrConflict)
	}
	return "", fmt.Errorf("replace %s: %w", key, s.bucketErr(err))
}

// DeleteIf implements Store with a DeleteObject conditional on If-Match:
// tag, which S3 general purpose buckets honour atomically. It first checks
// the ETag with a HEAD, so that a server which ignores If-Match on DELETE
// (gofakes3 v1.2.0 does) still refuses a stale tag, if not atomically.
func (s *S3) DeleteIf(ctx context.Context, key, tag string) error {
	k, err := s.objectKey(key)
	if err != nil {
		return err
	}
	if o, err := s.Stat(ctx, key); err != nil || o.ETag != tag {
		if err != nil && !isNotFoundErr(err) {
			return err
		}
		return fmt.Errorf("delete %s: %w", key, ErrConflict)
	}
	attempts := 0
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(k), IfMatch: aws.String(`"` + tag + `"`),
	}, countAttempts(&attempts))
	switch {
	case err == nil:
		return nil
	case (isNotFound(err) || isPreconditionFailed(err)) && attempts > 1:
		if _, serr := s.Stat(ctx, key); isNotFoundErr(serr) {
			return nil // the first attempt landed
		}
		return fmt.Errorf("delete %s: %w", key, ErrConflict)
	case isPreconditionFailed(err) || isConditionalConflict(err) || isNotFound(err):
		return fmt.Errorf("delete %s: %w", key, ErrConflict)
	}
	return fmt.Errorf("delete %s: %w", key, s.bucketErr(err))
}

// isNotFoundErr reports whether err, as Stat returns it, is ErrNotExist.
func isNotFoundErr(err error) bool { return errors.Is(err, ErrNotExist) }
