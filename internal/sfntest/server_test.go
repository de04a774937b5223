package sfntest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"
)

// TestServerSpeaksTheAPI drives the fake Step Functions API with the real
// SDK client: an execution of a Pass-only machine runs to its end, and
// every documented limit is enforced with the error the SDK knows.
func TestServerSpeaksTheAPI(t *testing.T) {
	Skip(t)
	const machine = "arn:aws:states:us-east-1:123456789012:stateMachine:m"
	def := []byte(`{"StartAt":"P","States":{"P":{"Type":"Pass","Result":{"ok":true},"ResultPath":"$.pass","End":true}}}`)
	srv := NewServer(t, machine, def, "http://127.0.0.1:1")
	c := sfn.New(sfn.Options{BaseEndpoint: aws.String(srv.URL), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRETTEST", "")})
	ctx := context.Background()

	out, err := c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(machine), Name: aws.String("n1"), Input: aws.String(`{"a":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	var desc *sfn.DescribeExecutionOutput
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		desc, err = c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: out.ExecutionArn})
		if err != nil {
			t.Fatal(err)
		}
		if desc.Status != types.ExecutionStatusRunning || time.Now().After(deadline) {
			break
		}
	}
	if desc.Status != types.ExecutionStatusSucceeded || aws.ToString(desc.Output) != `{"a":1,"pass":{"ok":true}}` || desc.StopDate == nil {
		t.Fatalf("execution: %s %q", desc.Status, aws.ToString(desc.Output))
	}
	if ex := srv.Execution("n1"); ex == nil || ex.Count("StateEntered", "P") != 1 {
		t.Errorf("event log: %+v", ex)
	}

	for _, tc := range []struct {
		name        string
		in          sfn.StartExecutionInput
		want        string // the error's code, as the SDK decodes it
		wantMessage string
	}{
		{"unknown machine", sfn.StartExecutionInput{StateMachineArn: aws.String(machine + "x"), Name: aws.String("n2")}, "StateMachineDoesNotExist", "State Machine Does Not Exist"},
		{"long name", sfn.StartExecutionInput{StateMachineArn: aws.String(machine), Name: aws.String(strings.Repeat("n", 81))}, "InvalidName", "Invalid Name"},
		{"name with a space", sfn.StartExecutionInput{StateMachineArn: aws.String(machine), Name: aws.String("a b")}, "InvalidName", "Invalid Name"},
		{"big input", sfn.StartExecutionInput{StateMachineArn: aws.String(machine), Name: aws.String("n3"), Input: aws.String(`"` + strings.Repeat("x", MaxInput) + `"`)}, "InvalidExecutionInput", "Invalid State Machine Execution Input"},
		{"not JSON", sfn.StartExecutionInput{StateMachineArn: aws.String(machine), Name: aws.String("n4"), Input: aws.String(`{`)}, "InvalidExecutionInput", "Invalid State Machine Execution Input"},
		{"name used", sfn.StartExecutionInput{StateMachineArn: aws.String(machine), Name: aws.String("n1"), Input: aws.String(`{"a":2}`)}, "ExecutionAlreadyExists", "Execution Already Exists"},
	} {
		_, err := c.StartExecution(ctx, &tc.in)
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != tc.want || !strings.Contains(err.Error(), tc.wantMessage) {
			t.Errorf("%s: %v; want %s", tc.name, err, tc.want)
		}
		var typed *types.InvalidName
		if tc.want == "InvalidName" && !errors.As(err, &typed) {
			t.Errorf("%s: %T; want the SDK's *types.InvalidName", tc.name, err)
		}
	}
	_, err = c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(strings.Replace(aws.ToString(out.ExecutionArn), "n1", "nope", 1))})
	var notExist *types.ExecutionDoesNotExist
	if !errors.As(err, &notExist) {
		t.Errorf("describe an unknown execution: %v; want ExecutionDoesNotExist", err)
	}
}
