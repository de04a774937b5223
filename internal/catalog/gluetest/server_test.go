package gluetest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/glue"
	"github.com/aws/aws-sdk-go-v2/service/glue/types"

	"github.com/littlewarehouse/warehouse/internal/catalog/gluetest"
)

func setup(t *testing.T) (*gluetest.Server, *glue.Client) {
	t.Helper()
	s := gluetest.NewT(t)
	c := s.Client()
	ctx := context.Background()
	if _, err := c.CreateDatabase(ctx, &glue.CreateDatabaseInput{DatabaseInput: &types.DatabaseInput{Name: aws.String("db")}}); err != nil {
		t.Fatal(err)
	}
	_, err := c.CreateTable(ctx, &glue.CreateTableInput{DatabaseName: aws.String("db"), TableInput: &types.TableInput{
		Name:              aws.String("t"),
		PartitionKeys:     []types.Column{{Name: aws.String("dt"), Type: aws.String("string")}},
		StorageDescriptor: &types.StorageDescriptor{Columns: []types.Column{{Name: aws.String("a"), Type: aws.String("bigint")}}, Location: aws.String("s3://b/t/")},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func parts(from, n int) []types.PartitionInput {
	var ps []types.PartitionInput
	for i := from; i < from+n; i++ {
		ps = append(ps, types.PartitionInput{Values: []string{fmt.Sprintf("d%05d", i)},
			StorageDescriptor: &types.StorageDescriptor{Location: aws.String(fmt.Sprintf("s3://b/t/%d/", i))}})
	}
	return ps
}

func create(c *glue.Client, ps []types.PartitionInput) (*glue.BatchCreatePartitionOutput, error) {
	return c.BatchCreatePartition(context.Background(), &glue.BatchCreatePartitionInput{DatabaseName: aws.String("db"), TableName: aws.String("t"), PartitionInputList: ps})
}

func TestLimits(t *testing.T) {
	s, c := setup(t)
	ctx := context.Background()
	var inv *types.InvalidInputException
	if _, err := create(c, parts(0, 101)); !errors.As(err, &inv) {
		t.Errorf("101 partitions: %v, want InvalidInputException", err)
	}
	if _, err := create(c, parts(0, 100)); err != nil {
		t.Fatal(err)
	}
	var entries []types.BatchUpdatePartitionRequestEntry
	for _, p := range parts(0, 101) {
		entries = append(entries, types.BatchUpdatePartitionRequestEntry{PartitionValueList: p.Values, PartitionInput: &p})
	}
	if _, err := c.BatchUpdatePartition(ctx, &glue.BatchUpdatePartitionInput{DatabaseName: aws.String("db"), TableName: aws.String("t"), Entries: entries}); !errors.As(err, &inv) {
		t.Errorf("101 updates: %v, want InvalidInputException", err)
	}
	var del []types.PartitionValueList
	for i := range 26 {
		del = append(del, types.PartitionValueList{Values: []string{fmt.Sprintf("d%05d", i)}})
	}
	if _, err := c.BatchDeletePartition(ctx, &glue.BatchDeletePartitionInput{DatabaseName: aws.String("db"), TableName: aws.String("t"), PartitionsToDelete: del}); !errors.As(err, &inv) {
		t.Errorf("26 deletes: %v, want InvalidInputException", err)
	}
	if _, err := c.GetPartitions(ctx, &glue.GetPartitionsInput{DatabaseName: aws.String("db"), TableName: aws.String("t"), MaxResults: aws.Int32(1001)}); !errors.As(err, &inv) {
		t.Errorf("MaxResults 1001: %v, want InvalidInputException", err)
	}
	if _, err := c.GetPartitions(ctx, &glue.GetPartitionsInput{DatabaseName: aws.String("db"), TableName: aws.String("t"), NextToken: aws.String("garbage")}); !errors.As(err, &inv) {
		t.Errorf("bad NextToken: %v, want InvalidInputException", err)
	}
	if n := len(s.Partitions("db", "t")); n != 100 {
		t.Errorf("%d partitions after rejected calls, want 100", n)
	}
}

func TestErrors(t *testing.T) {
	s, c := setup(t)
	ctx := context.Background()
	var nf *types.EntityNotFoundException
	var ae *types.AlreadyExistsException
	if _, err := c.GetDatabase(ctx, &glue.GetDatabaseInput{Name: aws.String("nope")}); !errors.As(err, &nf) {
		t.Errorf("GetDatabase: %v", err)
	}
	if _, err := c.CreateDatabase(ctx, &glue.CreateDatabaseInput{DatabaseInput: &types.DatabaseInput{Name: aws.String("db")}}); !errors.As(err, &ae) {
		t.Errorf("CreateDatabase twice: %v", err)
	}
	if _, err := c.GetTable(ctx, &glue.GetTableInput{DatabaseName: aws.String("db"), Name: aws.String("nope")}); !errors.As(err, &nf) {
		t.Errorf("GetTable: %v", err)
	}
	if _, err := c.CreateTable(ctx, &glue.CreateTableInput{DatabaseName: aws.String("db"), TableInput: &types.TableInput{Name: aws.String("t")}}); !errors.As(err, &ae) {
		t.Errorf("CreateTable twice: %v", err)
	}
	if _, err := c.UpdateTable(ctx, &glue.UpdateTableInput{DatabaseName: aws.String("db"), TableInput: &types.TableInput{Name: aws.String("nope")}}); !errors.As(err, &nf) {
		t.Errorf("UpdateTable: %v", err)
	}
	if _, err := c.BatchCreatePartition(ctx, &glue.BatchCreatePartitionInput{DatabaseName: aws.String("db"), TableName: aws.String("nope"), PartitionInputList: parts(0, 1)}); !errors.As(err, &nf) {
		t.Errorf("BatchCreatePartition on a missing table: %v", err)
	}

	// Per-entry errors: the others are applied.
	if _, err := create(c, parts(0, 3)); err != nil {
		t.Fatal(err)
	}
	bad := parts(10, 1)[0]
	bad.Values = []string{"a", "b"}
	out, err := create(c, append(parts(2, 3), bad))
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]string{}
	for _, e := range out.Errors {
		codes[strings.Join(e.PartitionValues, "/")] = aws.ToString(e.ErrorDetail.ErrorCode)
	}
	if len(codes) != 2 || codes["d00002"] != "AlreadyExistsException" || codes["a/b"] != "InvalidInputException" {
		t.Errorf("errors %v", codes)
	}
	if n := len(s.Partitions("db", "t")); n != 5 {
		t.Errorf("%d partitions, want 5", n)
	}
	up, err := c.BatchUpdatePartition(ctx, &glue.BatchUpdatePartitionInput{DatabaseName: aws.String("db"), TableName: aws.String("t"),
		Entries: []types.BatchUpdatePartitionRequestEntry{
			{PartitionValueList: []string{"d00001"}, PartitionInput: &parts(1, 1)[0]},
			{PartitionValueList: []string{"d00099"}, PartitionInput: &parts(99, 1)[0]},
		}})
	if err != nil || len(up.Errors) != 1 || aws.ToString(up.Errors[0].ErrorDetail.ErrorCode) != "EntityNotFoundException" {
		t.Errorf("BatchUpdatePartition: %v %+v", err, up)
	}
	del, err := c.BatchDeletePartition(ctx, &glue.BatchDeletePartitionInput{DatabaseName: aws.String("db"), TableName: aws.String("t"),
		PartitionsToDelete: []types.PartitionValueList{{Values: []string{"d00000"}}, {Values: []string{"d00099"}}}})
	if err != nil || len(del.Errors) != 1 || aws.ToString(del.Errors[0].ErrorDetail.ErrorCode) != "EntityNotFoundException" {
		t.Errorf("BatchDeletePartition: %v %+v", err, del)
	}
	if n := len(s.Partitions("db", "t")); n != 4 {
		t.Errorf("%d partitions, want 4", n)
	}
}

func TestPaginationAndFaults(t *testing.T) {
	s, c := setup(t)
	ctx := context.Background()
	for i := 0; i < 250; i += 100 {
		if _, err := create(c, parts(i, min(100, 250-i))); err != nil {
			t.Fatal(err)
		}
	}
	s.SetPageSize(60)
	p := glue.NewGetPartitionsPaginator(c, &glue.GetPartitionsInput{DatabaseName: aws.String("db"), TableName: aws.String("t"),
		MaxResults: aws.Int32(1000), ExcludeColumnSchema: aws.Bool(true)})
	seen, pages := map[string]bool{}, 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, q := range out.Partitions {
			seen[q.Values[0]] = true
			if q.StorageDescriptor == nil || aws.ToString(q.StorageDescriptor.Location) == "" {
				t.Fatalf("partition without location: %+v", q)
			}
		}
	}
	if len(seen) != 250 || pages != 5 {
		t.Errorf("%d partitions in %d pages, want 250 in 5", len(seen), pages)
	}

	// Throttling is retried by the SDK; entry faults fire once.
	s.ResetCalls()
	s.Throttle("GetTable", 2)
	if _, err := c.GetTable(ctx, &glue.GetTableInput{DatabaseName: aws.String("db"), Name: aws.String("t")}); err != nil {
		t.Fatal(err)
	}
	calls := s.Calls("GetTable")
	if len(calls) != 3 || calls[0].Err != "ThrottlingException" || calls[2].Err != "" {
		t.Errorf("GetTable calls %+v", calls)
	}
	s.FailEntries("BatchCreatePartition", "InternalServiceException", []string{"d01000"})
	out, err := create(c, parts(1000, 2))
	if err != nil || len(out.Errors) != 1 || out.Errors[0].PartitionValues[0] != "d01000" {
		t.Fatalf("%v %+v", err, out)
	}
	out, err = create(c, parts(1000, 1))
	if err != nil || len(out.Errors) != 0 {
		t.Fatalf("second try: %v %+v", err, out)
	}
	// A whole-call fault changes nothing.
	s.FailCalls("BatchCreatePartition", 5, "InternalServiceException")
	if _, err := create(c, parts(2000, 1)); err == nil {
		t.Fatal("no error")
	}
	if n := len(s.Partitions("db", "t")); n != 252 {
		t.Errorf("%d partitions, want 252", n)
	}
}

func TestProtocol(t *testing.T) {
	s := gluetest.NewT(t)
	post := func(target, ctype, auth, body string) int {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/", strings.NewReader(body))
		req.Header.Set("X-Amz-Target", target)
		req.Header.Set("Content-Type", ctype)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	const ok = "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/glue/aws4_request"
	const ct = "application/x-amz-json-1.1"
	if got := post("AWSGlue.GetDatabase", ct, "", `{"Name":"x"}`); got != http.StatusForbidden {
		t.Errorf("unsigned: %d", got)
	}
	if got := post("AWSGlue.GetDatabase", "application/json", ok, `{"Name":"x"}`); got != http.StatusBadRequest {
		t.Errorf("wrong content type: %d", got)
	}
	if got := post("AWSGlue.StartCrawler", ct, ok, `{}`); got != http.StatusBadRequest {
		t.Errorf("unknown op: %d", got)
	}
	if got := post("AWSGlue.GetDatabase", ct, ok, `{"Name":"x","Surprise":1}`); got != http.StatusBadRequest {
		t.Errorf("unknown field: %d", got)
	}
	if got := post("AWSGlue.CreateDatabase", ct, ok, `{"DatabaseInput":{"Name":"x"}}`); got != http.StatusOK {
		t.Errorf("CreateDatabase: %d", got)
	}
}
