package infra

import (
	"bytes"
	"encoding/json"
)

// The nightly run's state machine (docs/design.md §Where it runs). Every
// Task state invokes the one rollup function with a small stage event
// ({"stage":..,"run":..} and a day or route part; internal/lambda parses
// it); Step Functions owns the fan-out, its concurrency, retries and
// failures, and the execution history is the night's record. The stages
// keep their state in the store (_state/runs/<run>/), so that the payloads
// passed between states stay small whatever the number of days.
//
//	Erase → Start → Route (Map over route parts) → Plan → Build (Map over
//	stale days) → Windowed → Register → [Report] → Finish → Done | NotDone
//
// A stage that fails after its retries is caught: Erase's failure leaves
// the pending erasures for the next night (the night goes on, and ends
// NotDone, so that the alarm says an erasure is late), a route
// part or a day fails alone (the others go on), a failed Plan, Windowed or
// Register goes to Finish with the error, and Finish writes the run
// summary. An
// execution whose summary is not "done" ends in NotDone, a failed
// execution, which the AlarmNightlyFailed alarm (ExecutionsFailed) counts.

// State names, as the console and the execution history show them.
const (
	StateErase     = "Erase"
	StateStart     = "Start"
	StateRoute     = "Route"
	StateRoutePart = "RoutePart"
	StatePlan      = "Plan"
	StateBuild     = "Build"
	StateBuildDay  = "BuildDay"
	StateWindowed  = "Windowed"
	StateRegister  = "Register"
	StateReport    = "Report"
	StateFinish    = "Finish"
	StateDone      = "Done"
	StateNotDone   = "NotDone"
)

// Error names the rollup function returns (internal/lambda: the Go type
// names of its errors, which the Lambda runtime reports as errorType).
const (
	ErrorRetryable = "RetryableError" // transient: S3 throttling or 5xx, a lost lease, a timeout inside the stage
	ErrorPermanent = "PermanentError" // retrying cannot fix it: another time zone in the store, access denied
)

// Retry policy of every Task state.
const (
	retryIntervalSeconds = 10
	retryMaxAttempts     = 3
	retryBackoffRate     = 2.0
	throttleInterval     = 5
	throttleMaxAttempts  = 6
	retryMaxDelaySeconds = 300
	stageTimeoutSeconds  = 900 // Lambda's maximum: the function's own timeout ends a stage first
	runTimeoutSeconds    = 7 * 24 * 3600
)

// lambdaTransient are the errors Step Functions reports when Lambda itself
// failed to run the function (not the function's own errors).
var lambdaTransient = []string{
	"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
	"Lambda.ClientExecutionTimeoutException",
}

// StateMachineDefinition returns the Amazon States Language definition of
// the nightly run, the Erase Task invoking eraseARN and every other Task
// functionARN: the same code, deployed twice so that only the erase
// function may write raw/. The template passes "${RollupFunctionArn}" and
// "${EraseFunctionArn}" (DefinitionSubstitutions keys); tests pass the
// ARNs their emulators answer. The same arguments give the same bytes.
func StateMachineDefinition(functionARN, eraseARN string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(stateMachine(functionARN, eraseARN)); err != nil {
		panic(err) // maps of strings, numbers and bools
	}
	return b.Bytes()
}

type obj = map[string]any

func stateMachine(fn, eraseFn string) obj {
	return obj{
		"Comment": "Little Warehouse nightly rollup: route the new raw objects, build the stale days in parallel, " +
			"then the windowed tables, the Glue partitions and the run summary (_state/runs/<run>.json in the data bucket).",
		"StartAt":        StateErase,
		"TimeoutSeconds": runTimeoutSeconds,
		"States": obj{
			StateErase: catchTo(task(eraseFn, "Carries out the pending erasure requests (rollup erase) before any raw object is listed; receipts under _state/erasures/.",
				obj{"stage": "erase"}, "$.erase", StateStart), "$.erase", StateStart),
			StateStart: task(fn, "Names the run, lists the raw objects not routed yet and splits them into route parts; records how Erase ended.",
				obj{"stage": "start", "execution.$": "$$.Execution.Name", "input.$": "$$.Execution.Input", "erase.$": "$.erase"}, "$", StateRoute),
			StateRoute: catchTo(fanOut("Routes each part's raw objects into per-day segments; a failed part costs reads, not correctness: the days route what they lack.",
				"$.parts", obj{"stage": "route", "run.$": "$.run", "part.$": "$$.Map.Item.Value"}, StateRoutePart, fn, StatePlan), "$.route_error", StatePlan),
			StatePlan: catchToFinish(task(fn, "Records the routed objects in the index and returns the stale days.",
				obj{"stage": "plan", "run.$": "$.run"}, "$.plan", StateBuild)),
			StateBuild: catchToFinish(fanOut("Builds each stale day; a day that fails after its retries fails alone.",
				"$.plan.days", obj{"stage": "build", "run.$": "$.run", "day.$": "$$.Map.Item.Value"}, StateBuildDay, fn, StateWindowed)),
			StateWindowed: catchToFinish(task(fn, "users, active_users_daily and retention_daily from the days built.",
				obj{"stage": "windowed", "run.$": "$.run"}, nil, StateRegister)),
			StateRegister: catchToFinish(task(fn, "Points the Glue partitions at the current runs and deletes superseded runs.",
				obj{"stage": "register", "run.$": "$.run"}, nil, "ReportWanted")),
			"ReportWanted": obj{
				"Type":    "Choice",
				"Comment": "The HTML report only with NightlyReport=true.",
				"Choices": []any{obj{"Variable": "$.report", "BooleanEquals": true, "Next": StateReport}},
				"Default": StateFinish,
			},
			StateReport: catchToFinish(task(fn, "Writes reports/latest.html; a report that cannot be written does not fail the run.",
				obj{"stage": "report", "run.$": "$.run"}, nil, StateFinish)),
			StateFinish: task(fn, "Writes the run summary and the run's metrics.",
				obj{"stage": "finish", "run.$": "$.run", "error.$": "$.error"}, "$.summary", "Outcome"),
			"Outcome": obj{
				"Type":    "Choice",
				"Choices": []any{obj{"Variable": "$.summary.status", "StringEquals": "done", "Next": StateDone}},
				"Default": StateNotDone,
			},
			StateDone: obj{"Type": "Succeed"},
			StateNotDone: obj{
				"Type":  "Fail",
				"Error": "RunNotDone",
				"Cause": "A day, a route part or a stage failed: the run summary in _state/runs/ of the data bucket says which and why; the next run builds what is still stale.",
			},
		},
	}
}

// task is a Task state invoking fn with parameters, its result at
// resultPath (nil: discarded, the input passed on; "$": the result is the
// output), retried on transient errors.
func task(fn, comment string, parameters obj, resultPath any, next string) obj {
	t := obj{
		"Type":           "Task",
		"Comment":        comment,
		"Resource":       fn,
		"TimeoutSeconds": stageTimeoutSeconds,
		"Retry":          retries(),
	}
	if resultPath != "$" { // "$", the default, is left out
		t["ResultPath"] = resultPath
	}
	if parameters != nil {
		t["Parameters"] = parameters
	}
	if next == "" {
		t["End"] = true
	} else {
		t["Next"] = next
	}
	return t
}

func retries() []any {
	return []any{
		obj{"ErrorEquals": []string{"Lambda.TooManyRequestsException"}, "IntervalSeconds": throttleInterval,
			"MaxAttempts": throttleMaxAttempts, "BackoffRate": retryBackoffRate, "MaxDelaySeconds": retryMaxDelaySeconds, "JitterStrategy": "FULL"},
		obj{"ErrorEquals": append([]string{ErrorRetryable}, lambdaTransient...), "IntervalSeconds": retryIntervalSeconds,
			"MaxAttempts": retryMaxAttempts, "BackoffRate": retryBackoffRate, "MaxDelaySeconds": retryMaxDelaySeconds, "JitterStrategy": "FULL"},
	}
}

// catchToFinish sends t's failure, after its retries, to Finish with the
// error at $.error.
func catchToFinish(t obj) obj { return catchTo(t, "$.error", StateFinish) }

// catchTo sends t's failure, after its retries, to next with the error at
// resultPath. A Map's own failure (not an item's: those are caught inside)
// is one the engine raised, a child execution it could not run, say.
func catchTo(t obj, resultPath any, next string) obj {
	t["Catch"] = []any{obj{"ErrorEquals": []string{"States.ALL"}, "ResultPath": resultPath, "Next": next}}
	return t
}

// fanOut is a Distributed Map over the items at itemsPath, at most
// $.parallel at once, each running one Task (name) with the item's stage
// event. A task that fails after its retries ends its item with the error
// (a Pass state), not the map: the other items go on. Results are
// discarded; the stages report to the store.
func fanOut(comment, itemsPath string, selector obj, name, fn, next string) obj {
	// An item's output is {} (OutputPath null): a Distributed Map gathers
	// its children's outputs even when its ResultPath discards them, and
	// past 256 KiB of them the map fails (States.DataLimitExceeded).
	item := task(fn, "", nil, "$", "")
	delete(item, "Comment")
	item["OutputPath"] = nil
	item["Catch"] = []any{obj{"ErrorEquals": []string{"States.ALL"}, "ResultPath": "$.error", "Next": name + "Failed"}}
	return obj{
		"Type":               "Map",
		"Comment":            comment,
		"ItemsPath":          itemsPath,
		"ItemSelector":       selector,
		"MaxConcurrencyPath": "$.parallel",
		"ItemProcessor": obj{
			"ProcessorConfig": obj{"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
			"StartAt":         name,
			"States": obj{
				name:            item,
				name + "Failed": obj{"Type": "Pass", "Comment": "The failure is in this item's history and in the run summary.", "OutputPath": nil, "End": true},
			},
		},
		"ResultPath": nil,
		"Next":       next,
	}
}
