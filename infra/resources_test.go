package infra

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// val renders a property for comparison: literals with fmt, intrinsics
// with resolve.
func val(t *testing.T, v interface{}) string {
	t.Helper()
	if m, ok := v.(map[string]interface{}); ok {
		if _, ok := m["Fn::If"]; ok {
			b, _ := json.Marshal(m)
			return string(b)
		}
		return resolve(t, m)
	}
	return fmt.Sprint(v)
}

// TestRollupFunction: one function runs every stage, configured by the
// stack's parameters; it is told nothing about other functions.
func TestRollupFunction(t *testing.T) {
	tmpl := committedTree(t)
	p := props(t, tmpl, idRollup, "AWS::Lambda::Function")
	want := map[string]string{
		"Runtime": "provided.al2023", "Handler": "bootstrap", "Architectures": "[arm64]", "Code": LambdaZip,
		"MemorySize": "REF:" + ParamWorkerMemory, "Timeout": "REF:" + ParamWorkerTimeout,
		"ReservedConcurrentExecutions": `{"Fn::If":["HasWorkerReservedConcurrency",{"Ref":"WorkerReservedConcurrency"},{"Ref":"AWS::NoValue"}]}`,
		"Role":                         "GETATT:" + idRollupRole + ".Arn",
	}
	for k, v := range want {
		if got := val(t, p[k]); got != v {
			t.Errorf("%s.%s = %s, want %s", idRollup, k, got, v)
		}
	}
	wantEnv := map[string]string{
		EnvStore:        "s3://BUCKET/",
		EnvGlueDatabase: "REF:" + idDatabase,
		EnvTZ:           "REF:" + ParamTimeZone,
		EnvMaxLateness:  "REF:" + ParamMaxLateness,
		EnvParallel:     "REF:" + ParamParallel,
		EnvReport:       "REF:" + ParamNightlyReport,
	}
	gotEnv := map[string]string{}
	for k, v := range at(t, p, "Environment", "Variables").(map[string]interface{}) {
		gotEnv[k] = val(t, v)
	}
	if diff := cmp.Diff(wantEnv, gotEnv); diff != "" {
		t.Errorf("%s environment (-want +got):\n%s", idRollup, diff)
	}
	if got := val(t, at(t, p, "LoggingConfig", "LogGroup")); got != "REF:"+idRollupLogGroup {
		t.Errorf("%s logs to %s", idRollup, got)
	}
	lg := props(t, tmpl, idRollupLogGroup, "AWS::Logs::LogGroup")
	if got := resolve(t, lg["LogGroupName"]); got != "/aws/lambda/STACK-rollup" {
		t.Errorf("rollup log group %s", got)
	}
}

// TestStateMachine: exactly one state machine, Standard, named after the
// stack, its definition StateMachineDefinition's with every Task on the
// rollup function, and no logging configuration.
func TestStateMachine(t *testing.T) {
	tmpl := committedTree(t)
	n := 0
	for _, r := range tmpl["Resources"].(map[string]interface{}) {
		if r.(map[string]interface{})["Type"] == "AWS::StepFunctions::StateMachine" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d state machines, want 1", n)
	}
	p := props(t, tmpl, idStateMachine, "AWS::StepFunctions::StateMachine")
	if p["StateMachineType"] != "STANDARD" {
		t.Errorf("state machine type %v, want STANDARD (a run may outlast Express's 5 minutes)", p["StateMachineType"])
	}
	if got := resolve(t, p["StateMachineName"]); got != "STACK-nightly" {
		t.Errorf("state machine name %s", got)
	}
	for _, k := range []string{"LoggingConfiguration", "Definition", "DefinitionS3Location"} {
		if _, ok := p[k]; ok {
			t.Errorf("state machine has %s", k)
		}
	}
	def, _ := p["DefinitionString"].(string)
	if want := string(StateMachineDefinition("${"+functionARNKey+"}", "${"+eraseARNKey+"}")); def != want {
		t.Errorf("state machine definition is not StateMachineDefinition's:\n%s", cmp.Diff(want, def))
	}
	subs := p["DefinitionSubstitutions"].(map[string]interface{})
	if len(subs) != 2 || val(t, subs[functionARNKey]) != "GETATT:"+idRollup+".Arn" || val(t, subs[eraseARNKey]) != "GETATT:"+idErase+".Arn" {
		t.Errorf("definition substitutions %v, want %s and %s = the rollup and erase functions' ARNs", subs, functionARNKey, eraseARNKey)
	}
	// Every Task invokes one of the two functions (Erase the erase
	// function, one Task); a change that added another resource would
	// need its own grant in the state machine's role.
	resources := map[string]int{}
	var walk func(v interface{})
	walk = func(v interface{}) {
		switch n := v.(type) {
		case map[string]interface{}:
			if n["Type"] == "Task" {
				resources[fmt.Sprint(n["Resource"])]++
			}
			for _, c := range n {
				walk(c)
			}
		case []interface{}:
			for _, c := range n {
				walk(c)
			}
		}
	}
	walk(tree(t, []byte(def)))
	if len(resources) != 2 || resources["${"+functionARNKey+"}"] == 0 || resources["${"+eraseARNKey+"}"] != 1 {
		t.Errorf("Task resources %v, want ${%s}, and ${%s} once", resources, functionARNKey, eraseARNKey)
	}
}

// TestNoNulls: CloudFormation refuses a template with a null value
// anywhere ("'null' values are not allowed in templates"), such as a
// state machine's "ResultPath": null outside a string.
func TestNoNulls(t *testing.T) {
	var walk func(path string, v interface{})
	walk = func(path string, v interface{}) {
		switch n := v.(type) {
		case nil:
			t.Errorf("%s is null", path)
		case map[string]interface{}:
			for k, c := range n {
				walk(path+"/"+k, c)
			}
		case []interface{}:
			for i, c := range n {
				walk(fmt.Sprintf("%s/%d", path, i), c)
			}
		}
	}
	walk("", committedTree(t))
}

// TestScheduleStartsTheStateMachine: the nightly rule's one target is the
// state machine, started with the rule's own role; no function is invoked
// by EventBridge.
func TestScheduleStartsTheStateMachine(t *testing.T) {
	tmpl := committedTree(t)
	rule := props(t, tmpl, idSchedule, "AWS::Events::Rule")
	if val(t, rule["ScheduleExpression"]) != "REF:"+ParamSchedule {
		t.Errorf("nightly rule schedule %v", rule["ScheduleExpression"])
	}
	targets := rule["Targets"].([]interface{})
	if len(targets) != 1 {
		t.Fatalf("nightly rule has %d targets, want 1", len(targets))
	}
	target := targets[0].(map[string]interface{})
	if val(t, target["Arn"]) != "REF:"+idStateMachine || val(t, target["RoleArn"]) != "GETATT:"+idScheduleRole+".Arn" {
		t.Errorf("nightly rule target: %v", target)
	}
	if _, ok := target["Input"]; ok {
		t.Errorf("nightly rule target sets Input: the start stage reads the scheduled event")
	}
	if d := at(t, tmpl, "Parameters", ParamSchedule, "Default"); d != "cron(30 1 * * ? *)" {
		t.Errorf("schedule default %v, want 01:30 UTC", d)
	}
	for id, r := range tmpl["Resources"].(map[string]interface{}) {
		r := r.(map[string]interface{})
		switch r["Type"] {
		case "AWS::Lambda::EventInvokeConfig", "AWS::SQS::Queue":
			t.Errorf("%s: a %s; Step Functions invokes synchronously and owns the retries", id, r["Type"])
		case "AWS::Lambda::Permission":
			if p := r["Properties"].(map[string]interface{}); val(t, p["FunctionName"]) != "REF:"+idCollector {
				t.Errorf("%s: a permission on %s", id, val(t, p["FunctionName"]))
			}
		}
	}
	if _, err := time.ParseDuration(at(t, tmpl, "Parameters", ParamMaxLateness, "Default").(string)); err != nil {
		t.Errorf("MaxLateness default: %v", err)
	}
}

func TestAlarms(t *testing.T) {
	tmpl := committedTree(t)
	for id, want := range map[string][3]string{
		idAlarmConversion:         {"AWS/Firehose", "FailedConversion.Records", "DeliveryStreamName=REF:" + idStream},
		idAlarmRollupErrors:       {"AWS/Lambda", "Errors", "FunctionName=REF:" + idRollup},
		idAlarmNightlyFailed:      {"AWS/States", "ExecutionsFailed", "StateMachineArn=REF:" + idStateMachine},
		idAlarmNightlyTimedOut:    {"AWS/States", "ExecutionsTimedOut", "StateMachineArn=REF:" + idStateMachine},
		idAlarmCollectorErrors:    {"AWS/Lambda", "Errors", "FunctionName=REF:" + idCollector},
		idAlarmCollectorThrottles: {"AWS/Lambda", "Throttles", "FunctionName=REF:" + idCollector},
	} {
		p := props(t, tmpl, id, "AWS::CloudWatch::Alarm")
		dim := at(t, p, "Dimensions", "0").(map[string]interface{})
		got := [3]string{val(t, p["Namespace"]), val(t, p["MetricName"]), val(t, dim["Name"]) + "=" + val(t, dim["Value"])}
		if got != want {
			t.Errorf("%s watches %v, want %v", id, got, want)
		}
		if val(t, at(t, p, "AlarmActions", "0")) != "REF:"+idTopic {
			t.Errorf("%s does not notify the alarm topic", id)
		}
		// One in a period is enough: > 0 of the sum.
		if val(t, p["Statistic"]) != "Sum" || val(t, p["Threshold"]) != "0" || val(t, p["ComparisonOperator"]) != "GreaterThanThreshold" {
			t.Errorf("%s: %v %v %v, want Sum > 0", id, p["Statistic"], p["ComparisonOperator"], p["Threshold"])
		}
	}
	n := 0
	for _, r := range tmpl["Resources"].(map[string]interface{}) {
		if r.(map[string]interface{})["Type"] == "AWS::CloudWatch::Alarm" {
			n++
		}
	}
	if n != 6 {
		t.Errorf("%d alarms, want the 6 above", n)
	}
	s := resource(t, tmpl, idSubscription, "AWS::SNS::Subscription")
	if s["Condition"] != condHasAlarmEmail || val(t, at(t, s, "Properties", "Endpoint")) != "REF:"+ParamAlarmEmail {
		t.Errorf("alarm e-mail subscription: %v", s)
	}
}

func TestBucket(t *testing.T) {
	tmpl := committedTree(t)
	p := props(t, tmpl, idBucket, "AWS::S3::Bucket")
	if got := val(t, at(t, p, "BucketEncryption", "ServerSideEncryptionConfiguration", "0", "ServerSideEncryptionByDefault", "SSEAlgorithm")); got != "AES256" {
		t.Errorf("bucket encryption %s", got)
	}
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		if at(t, p, "PublicAccessBlockConfiguration", k) != true {
			t.Errorf("public access block %s is not on", k)
		}
	}
	rules := map[string]string{}
	for _, r := range at(t, p, "LifecycleConfiguration", "Rules").([]interface{}) {
		r := r.(map[string]interface{})
		prefix, _ := r["Prefix"].(string)
		switch {
		case r["Transitions"] != nil:
			tr := at(t, r, "Transitions", "0").(map[string]interface{})
			rules[prefix] = val(t, tr["StorageClass"]) + " after " + val(t, tr["TransitionInDays"])
		case r["ExpirationInDays"] != nil:
			rules[prefix] = "expire after " + val(t, r["ExpirationInDays"])
		case r["AbortIncompleteMultipartUpload"] != nil:
			rules[prefix] = "abort uploads after " + val(t, at(t, r, "AbortIncompleteMultipartUpload", "DaysAfterInitiation"))
		}
	}
	want := map[string]string{
		"raw/":             "STANDARD_IA after REF:" + ParamRawInfrequentAccessDays,
		"_state/segments/": "expire after REF:" + ParamSegmentRetentionDays,
		"athena-results/":  "expire after 30",
		"":                 "abort uploads after 1",
	}
	if diff := cmp.Diff(want, rules); diff != "" {
		t.Errorf("lifecycle rules (-want +got):\n%s", diff)
	}
	// TLS only.
	deny := at(t, props(t, tmpl, idBucketPolicy, "AWS::S3::BucketPolicy"), "PolicyDocument", "Statement", "0").(map[string]interface{})
	if deny["Effect"] != "Deny" || val(t, at(t, deny, "Condition", "Bool", "aws:SecureTransport")) != "false" {
		t.Errorf("bucket policy does not deny plain HTTP: %v", deny)
	}
}

func TestAthenaWorkGroup(t *testing.T) {
	p := props(t, committedTree(t), idWorkGroup, "AWS::Athena::WorkGroup")
	c := p["WorkGroupConfiguration"].(map[string]interface{})
	if got := val(t, c["BytesScannedCutoffPerQuery"]); got != "REF:"+ParamAthenaBytesScannedCutoff {
		t.Errorf("bytes scanned cutoff %s", got)
	}
	if got := val(t, at(t, c, "ResultConfiguration", "OutputLocation")); got != "s3://BUCKET/athena-results/" {
		t.Errorf("results location %s", got)
	}
	if c["EnforceWorkGroupConfiguration"] != true {
		t.Error("workgroup settings are not enforced: a client could lift the cutoff")
	}
}

// TestNightlyReport: NightlyReport is off unless set to true, becomes the
// rollup function's LW_REPORT (TestRollupFunction), and its condition
// creates the function's reports/ policy (TestRollupRoleStaysInItsPrefixes).
func TestNightlyReport(t *testing.T) {
	tmpl := committedTree(t)
	p := at(t, tmpl, "Parameters", ParamNightlyReport).(map[string]interface{})
	if p["Type"] != "String" || p["Default"] != "false" || fmt.Sprint(p["AllowedValues"]) != "[true false]" {
		t.Errorf("parameter %s: %v", ParamNightlyReport, p)
	}
	cond, _ := json.Marshal(at(t, tmpl, "Conditions", condNightlyReport))
	if string(cond) != `{"Fn::Equals":[{"Ref":"NightlyReport"},"true"]}` {
		t.Errorf("condition %s: %s", condNightlyReport, cond)
	}
	if r := resource(t, tmpl, idRollupReportPolicy, "AWS::IAM::Policy"); r["Condition"] != condNightlyReport {
		t.Errorf("%s is created whatever %s is: %v", idRollupReportPolicy, ParamNightlyReport, r["Condition"])
	}
}

// TestParallelIsWhatTheFunctionTakes: the Parallel parameter allows
// exactly the LW_PARALLEL values the rollup function accepts, 1 to 256
// (internal/lambda ConfigFromEnv), so that a deploy cannot set one that
// fails every cold start.
func TestParallelIsWhatTheFunctionTakes(t *testing.T) {
	p := at(t, committedTree(t), "Parameters", ParamParallel).(map[string]interface{})
	re, err := regexp.Compile(p["AllowedPattern"].(string))
	if err != nil {
		t.Fatal(err)
	}
	for n := -1; n <= 1000; n++ {
		if got, want := re.MatchString(strconv.Itoa(n)), n >= 1 && n <= 256; got != want {
			t.Errorf("Parallel=%d allowed: %v, want %v", n, got, want)
		}
	}
	for _, s := range []string{"", "08", "8 ", "1e2"} {
		if re.MatchString(s) {
			t.Errorf("Parallel=%q allowed", s)
		}
	}
}
