package infra

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/littlewarehouse/warehouse/internal/lambda"
	"github.com/littlewarehouse/warehouse/internal/sfntest"
)

// TestStateMachineIsValidASL has asl-validator (npm) check the definition
// as deployed, its Resource substituted.
func TestStateMachineIsValidASL(t *testing.T) {
	sfntest.Skip(t)
	def := StateMachineDefinition("arn:aws:lambda:eu-west-1:123456789012:function:lw-rollup", "arn:aws:lambda:eu-west-1:123456789012:function:lw-erase")
	if err := sfntest.Validate(t, def); err != nil {
		t.Fatal(err)
	}
	// A definition it must refuse, so that the check above can fail.
	bad := strings.Replace(string(def), `"Next": "Plan"`, `"Next": "NoSuchState"`, 1)
	if err := sfntest.Validate(t, []byte(bad)); err == nil {
		t.Fatal("asl-validator accepted a Next naming no state")
	}
}

// TestStateMachineTasks checks what every Task state promises: it invokes
// the one function, retries throttling and the function's RetryableError
// (never its PermanentError), and a fan-out catches its items' failures.
func TestStateMachineTasks(t *testing.T) {
	var def map[string]any
	if err := json.Unmarshal(StateMachineDefinition("FN", "ERASE"), &def); err != nil {
		t.Fatal(err)
	}
	tasks := 0
	var walk func(states map[string]any, inMap bool)
	walk = func(states map[string]any, inMap bool) {
		for name, v := range states {
			s := v.(map[string]any)
			if p, ok := s["ItemProcessor"].(map[string]any); ok {
				if s["MaxConcurrencyPath"] != "$.parallel" {
					t.Errorf("%s: MaxConcurrencyPath %v; want $.parallel (LW_PARALLEL)", name, s["MaxConcurrencyPath"])
				}
				walk(p["States"].(map[string]any), true)
			}
			if s["Type"] != "Task" {
				continue
			}
			tasks++
			want := "FN"
			if name == StateErase {
				want = "ERASE" // the one function that may rewrite raw/
			}
			if s["Resource"] != want {
				t.Errorf("%s invokes %v; want %s", name, s["Resource"], want)
			}
			retried := map[string]bool{}
			for _, r := range s["Retry"].([]any) {
				for _, e := range r.(map[string]any)["ErrorEquals"].([]any) {
					retried[e.(string)] = true
				}
			}
			if !retried[ErrorRetryable] || !retried["Lambda.TooManyRequestsException"] || retried[ErrorPermanent] || retried["States.ALL"] {
				t.Errorf("%s retries %v; want RetryableError and Lambda's throttling, not PermanentError", name, retried)
			}
			if _, caught := s["Catch"]; inMap && !caught {
				t.Errorf("%s: an item's failure is not caught: it would fail the whole map", name)
			}
		}
	}
	walk(def["States"].(map[string]any), false)
	if tasks != 9 {
		t.Errorf("%d Task states; want 9 (erase, start, route, plan, build, windowed, register, report, finish)", tasks)
	}
}

// TestErrorNamesAreTheFunctions checks that the error names the state
// machine retries and catches are the Go type names the Lambda runtime
// reports for the function's errors.
func TestErrorNamesAreTheFunctions(t *testing.T) {
	if got := reflect.TypeOf(lambda.RetryableError{}).Name(); got != ErrorRetryable {
		t.Errorf("retryable error type %s; the state machine retries %s", got, ErrorRetryable)
	}
	if got := reflect.TypeOf(lambda.PermanentError{}).Name(); got != ErrorPermanent {
		t.Errorf("permanent error type %s; the state machine expects %s", got, ErrorPermanent)
	}
	stages := []string{lambda.StageErase, lambda.StageStart, lambda.StageRoute, lambda.StagePlan, lambda.StageBuild, lambda.StageWindowed,
		lambda.StageRegister, lambda.StageReport, lambda.StageFinish}
	def := string(StateMachineDefinition("FN", "ERASE"))
	for _, s := range stages {
		if !strings.Contains(def, `"stage": "`+s+`"`) {
			t.Errorf("no state sends the %s stage", s)
		}
	}
}
