package report

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/littlewarehouse/warehouse/internal/store"
)

// TestSamePageFromS3 copies the curated tables of the fixture into a fake
// S3 bucket (gofakes3) under a prefix: the report read from S3 equals the
// one read from the directory, but for the store's name.
func TestSamePageFromS3(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := warehouse(t)
	backend := s3mem.New()
	if err := backend.CreateBucket("bucket"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	c := s3.New(s3.Options{BaseEndpoint: aws.String(srv.URL), UsePathStyle: true, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFAKE", "fake-secret", "")})
	s3st := store.NewS3(c, "bucket", "warehouse")
	objs, err := dir.List(ctx, "curated/")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		b, err := dir.Get(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		if err := s3st.Put(ctx, o.Key, b); err != nil {
			t.Fatal(err)
		}
	}
	want := strings.ReplaceAll(render(t, dir, Options{}), dir.String(), "STORE")
	got := strings.ReplaceAll(render(t, s3st, Options{}), s3st.String(), "STORE")
	if got != want {
		t.Error("the page read from S3 differs from the page read from the directory")
	}
}
