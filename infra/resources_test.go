package infra

import (
	"encoding/json"
	"fmt"
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

func TestLambdaFunctions(t *testing.T) {
	tmpl := committedTree(t)
	common := map[string]string{
		EnvStore:        "s3://BUCKET/",
		EnvGlueDatabase: "REF:" + idDatabase,
		EnvTZ:           "REF:" + ParamTimeZone,
		EnvMaxLateness:  "REF:" + ParamMaxLateness,
		EnvParallel:     "REF:" + ParamParallel,
	}
	for _, c := range []struct {
		id, role string
		extraEnv map[string]string
		props    map[string]string
	}{
		{idWorker, RoleWorker, nil, map[string]string{
			"MemorySize": "REF:" + ParamWorkerMemory, "Timeout": "REF:" + ParamWorkerTimeout,
			"ReservedConcurrentExecutions": `{"Fn::If":["HasWorkerReservedConcurrency",{"Ref":"WorkerReservedConcurrency"},{"Ref":"AWS::NoValue"}]}`,
			"Role":                         "GETATT:" + idWorkerRole + ".Arn",
		}},
		{idCoordinator, RoleCoordinator, map[string]string{EnvWorkerFunction: "REF:" + idWorker, EnvReport: "REF:" + ParamNightlyReport}, map[string]string{
			"MemorySize": "1024", "Timeout": "900", "Role": "GETATT:" + idCoordinatorRole + ".Arn",
		}},
	} {
		p := props(t, tmpl, c.id, "AWS::Lambda::Function")
		want := map[string]string{"Runtime": "provided.al2023", "Handler": "bootstrap", "Architectures": "[arm64]", "Code": LambdaZip}
		for k, v := range c.props {
			want[k] = v
		}
		for k, v := range want {
			if got := val(t, p[k]); got != v {
				t.Errorf("%s.%s = %s, want %s", c.id, k, got, v)
			}
		}
		wantEnv := map[string]string{EnvRole: c.role}
		for k, v := range common {
			wantEnv[k] = v
		}
		for k, v := range c.extraEnv {
			wantEnv[k] = v
		}
		gotEnv := map[string]string{}
		for k, v := range at(t, p, "Environment", "Variables").(map[string]interface{}) {
			gotEnv[k] = val(t, v)
		}
		if diff := cmp.Diff(wantEnv, gotEnv); diff != "" {
			t.Errorf("%s environment (-want +got):\n%s", c.id, diff)
		}
	}
}

func TestScheduleAndDeadLetters(t *testing.T) {
	tmpl := committedTree(t)
	rule := props(t, tmpl, idSchedule, "AWS::Events::Rule")
	if val(t, rule["ScheduleExpression"]) != "REF:"+ParamSchedule || val(t, at(t, rule, "Targets", "0", "Arn")) != "GETATT:"+idCoordinator+".Arn" {
		t.Errorf("nightly rule: %v", rule)
	}
	if d := at(t, tmpl, "Parameters", ParamSchedule, "Default"); d != "cron(30 1 * * ? *)" {
		t.Errorf("schedule default %v, want 01:30 UTC", d)
	}
	perm := props(t, tmpl, idSchedulePermission, "AWS::Lambda::Permission")
	if perm["Principal"] != "events.amazonaws.com" || val(t, perm["SourceArn"]) != "GETATT:"+idSchedule+".Arn" || val(t, perm["FunctionName"]) != "REF:"+idCoordinator {
		t.Errorf("rule permission: %v", perm)
	}
	for id, fn := range map[string]string{idWorkerInvokeConfig: idWorker, idCoordinatorInvokeConfig: idCoordinator} {
		p := props(t, tmpl, id, "AWS::Lambda::EventInvokeConfig")
		if val(t, p["FunctionName"]) != "REF:"+fn || val(t, at(t, p, "DestinationConfig", "OnFailure", "Destination")) != "GETATT:"+idDLQ+".Arn" {
			t.Errorf("%s: failed invocations of %s do not go to the dead-letter queue: %v", id, fn, p)
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
		idAlarmWorkerErrors:       {"AWS/Lambda", "Errors", "FunctionName=REF:" + idWorker},
		idAlarmCoordinatorErrors:  {"AWS/Lambda", "Errors", "FunctionName=REF:" + idCoordinator},
		idAlarmDeadLetters:        {"AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName=GETATT:" + idDLQ + ".QueueName"},
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
// coordinator's LW_REPORT (TestLambdaFunctions), and its condition creates
// the coordinator's reports/ policy (TestLambdaRolesStayInTheirPrefixes).
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
	if r := resource(t, tmpl, idCoordinatorReportPolicy, "AWS::IAM::Policy"); r["Condition"] != condNightlyReport {
		t.Errorf("%s is created whatever %s is: %v", idCoordinatorReportPolicy, ParamNightlyReport, r["Condition"])
	}
}
