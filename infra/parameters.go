package infra

import (
	"strconv"

	"github.com/awslabs/goformation/v7/cloudformation"
)

// Parameter names, for `aws cloudformation deploy --parameter-overrides`.
const (
	ParamBucketName                = "BucketName"
	ParamGlueDatabaseName          = "GlueDatabaseName"
	ParamSchedule                  = "Schedule"
	ParamTimeZone                  = "TimeZone"
	ParamMaxLateness               = "MaxLateness"
	ParamAlarmEmail                = "AlarmEmail"
	ParamWorkerMemory              = "WorkerMemory"
	ParamWorkerTimeout             = "WorkerTimeout"
	ParamWorkerReservedConcurrency = "WorkerReservedConcurrency"
	ParamParallel                  = "Parallel"
	ParamAthenaBytesScannedCutoff  = "AthenaBytesScannedCutoff"
	ParamRawInfrequentAccessDays   = "RawInfrequentAccessDays"
	ParamSegmentRetentionDays      = "SegmentRetentionDays"
	ParamNightlyReport             = "NightlyReport"

	ParamCollectorAPIKeysParameter    = "CollectorApiKeysParameter"
	ParamCollectorAllowedOrigins      = "CollectorAllowedOrigins"
	ParamCollectorReservedConcurrency = "CollectorReservedConcurrency"
	ParamCollectorRate                = "CollectorRate"
	ParamCollectorBurst               = "CollectorBurst"
)

// Defaults of the numeric parameters; the typed template holds them where
// the JSON holds a reference to the parameter (see override).
const (
	defaultWorkerMemory              = 3008 // MB; the most a new account may get; up to 10240
	defaultWorkerTimeout             = 900  // s, Lambda's maximum
	defaultWorkerReservedConcurrency = 10
	defaultParallel                  = 8
	defaultAthenaBytesScannedCutoff  = 10 << 30 // 10 GiB ≈ $0.05 a query
	defaultRawInfrequentAccessDays   = 30       // S3's minimum for a STANDARD_IA transition
	defaultSegmentRetentionDays      = 14       // ≥ max lateness (7 days) + 1 day + slack

	defaultCollectorAPIKeysParameter    = "/littlewarehouse/collector/api-keys"
	defaultCollectorReservedConcurrency = 10
	defaultCollectorRate                = 100 // requests a second per key, in each environment
	defaultCollectorBurst               = 200
)

// Fixed settings a small team need not change.
const (
	logRetentionDays           = 90
	athenaResultsRetentionDays = 30
	firehoseBufferMiB          = 128
	firehoseBufferSeconds      = 900
)

// Conditions.
const (
	condHasAlarmEmail           = "HasAlarmEmail"
	condHasReservedConcurrency  = "HasWorkerReservedConcurrency"
	condHasCollectorConcurrency = "HasCollectorReservedConcurrency"
	condHasCollectorOrigins     = "HasCollectorAllowedOrigins"
	condNightlyReport           = "HasNightlyReport"
)

func (b *builder) parameters() {
	str := func(desc, def, pattern, constraint string) cloudformation.Parameter {
		p := cloudformation.Parameter{Type: "String", Description: cloudformation.String(desc)}
		if def != "" {
			p.Default = def
		}
		if pattern != "" {
			p.AllowedPattern = cloudformation.String(pattern)
			p.ConstraintDescription = cloudformation.String(constraint)
		}
		return p
	}
	num := func(desc string, def, min, max int) cloudformation.Parameter {
		fmin, fmax := float64(min), float64(max)
		return cloudformation.Parameter{Type: "Number", Description: cloudformation.String(desc), Default: def, MinValue: &fmin, MaxValue: &fmax}
	}
	b.t.Parameters = cloudformation.Parameters{
		ParamBucketName: str("Name of the S3 bucket the stack creates for raw/, raw-errors/, curated/, _state/ and athena-results/ (globally unique).",
			"", `^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`, "3-63 lowercase letters, digits, dots and hyphens"),
		ParamGlueDatabaseName: str("Glue database of the raw and curated tables.",
			"warehouse", `^[a-z0-9_]{1,255}$`, "lowercase letters, digits and underscores"),
		ParamSchedule: str("When the nightly rollup runs: an EventBridge schedule expression, in UTC.",
			"cron(30 1 * * ? *)", `^(cron|rate)\(.+\)$`, "cron(...) or rate(...)"),
		ParamTimeZone: str("Reporting time zone (IANA name): every dt is a calendar day in it. One per bucket.",
			"UTC", "", ""),
		ParamMaxLateness: str("How late an event may arrive and still count at its own time, as a Go duration (168h = 7 days).",
			"168h", `^([0-9]+(\.[0-9]+)?(h|m|s|ms))+$`, "a Go duration such as 168h or 72h"),
		ParamAlarmEmail: str("E-mail address alarms are sent to (confirm the subscription e-mail); empty for none.",
			"", `^$|^[^@\s]+@[^@\s]+$`, "an e-mail address, or empty"),
		ParamWorkerMemory: num("Memory of the rollup function, MB (each invocation is one stage of the nightly run; the biggest builds one reporting day). Also buys CPU; up to 10240 where the account allows.",
			defaultWorkerMemory, 512, 10240),
		ParamWorkerTimeout: num("Timeout of one rollup function invocation (one stage), seconds.", defaultWorkerTimeout, 60, 900),
		ParamWorkerReservedConcurrency: num("Concurrency reserved for the rollup function (and its cap); 0 reserves none (needed on accounts whose concurrency limit is 10).",
			defaultWorkerReservedConcurrency, 0, 1000),
		// A String, not a Number: it only ever becomes an environment
		// variable. 256 is the most LW_PARALLEL takes (internal/lambda).
		ParamParallel: str("LW_PARALLEL: raw objects a stage reads at once, and route parts and days the state machine runs at once (its Maps' MaxConcurrency); keep it at or under WorkerReservedConcurrency.",
			strconv.Itoa(defaultParallel), `^([1-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-6])$`, "a whole number from 1 to 256"),
		ParamAthenaBytesScannedCutoff: num("Athena workgroup: a query scanning more bytes than this is cancelled (at least 10 MB).",
			defaultAthenaBytesScannedCutoff, 10_000_000, 1<<50),
		ParamRawInfrequentAccessDays: num("Days after which raw/ objects move to S3 Standard-IA (30 at least).",
			defaultRawInfrequentAccessDays, 30, 3650),
		ParamNightlyReport: {Type: "String", Default: "false", AllowedValues: []interface{}{"true", "false"},
			Description: cloudformation.String("LW_REPORT: true makes every run of the state machine write the HTML report of the curated tables to reports/latest.html in the bucket (the Report state; and lets the rollup function write there)."),
		},
		ParamSegmentRetentionDays: num("Days the rollup's per-day routing segments (_state/segments/) are kept; more than the max lateness in days plus 2.",
			defaultSegmentRetentionDays, 3, 3650),
		ParamCollectorAPIKeysParameter: str("Name of the SSM parameter (a SecureString with the AWS managed key aws/ssm, created by you, not by the stack) holding the collector's API keys, comma- or newline-separated. The name, never a key.",
			defaultCollectorAPIKeysParameter, `^/[a-zA-Z0-9_./-]{1,1010}$`, "a parameter name starting with /, e.g. /littlewarehouse/collector/api-keys"),
		ParamCollectorAllowedOrigins: str("Browser origins allowed to call the collector's URL (CORS), comma-separated without spaces, e.g. https://app.example.com,https://www.example.com; * for any; empty refuses browsers.",
			"", `^$|^\*$|^https?://[^,\s*]+(,https?://[^,\s*]+)*$`, "empty, *, or scheme://host[:port] origins separated by commas, no spaces"),
		ParamCollectorReservedConcurrency: num("Concurrency reserved for the collector (and its cap: requests beyond it are throttled, 429); 0 reserves none (needed on accounts whose concurrency limit is 10).",
			defaultCollectorReservedConcurrency, 0, 1000),
		// Strings, not Numbers: they only ever become environment variables.
		ParamCollectorRate: str("Requests a second allowed per API key in each collector environment, on average (over it: 429 with Retry-After); 0 turns the limiter off. At most this times CollectorReservedConcurrency in all.",
			strconv.Itoa(defaultCollectorRate), `^[0-9]{1,6}(\.[0-9]+)?$`, "a number of requests a second, 0 for no limit"),
		ParamCollectorBurst: str("Requests an API key may make at once in one collector environment before CollectorRate applies.",
			strconv.Itoa(defaultCollectorBurst), `^[1-9][0-9]{0,6}$`, "a whole number, 1 or more"),
	}
	b.t.Conditions = map[string]interface{}{
		condHasAlarmEmail:           cloudformation.Not([]string{cloudformation.Equals(cloudformation.Ref(ParamAlarmEmail), "")}),
		condHasReservedConcurrency:  cloudformation.Not([]string{cloudformation.Equals(cloudformation.Ref(ParamWorkerReservedConcurrency), "0")}),
		condHasCollectorConcurrency: cloudformation.Not([]string{cloudformation.Equals(cloudformation.Ref(ParamCollectorReservedConcurrency), "0")}),
		condHasCollectorOrigins:     cloudformation.Not([]string{cloudformation.Equals(cloudformation.Ref(ParamCollectorAllowedOrigins), "")}),
		condNightlyReport:           cloudformation.Equals(cloudformation.Ref(ParamNightlyReport), "true"),
	}
	b.t.Metadata = map[string]interface{}{
		"AWS::CloudFormation::Interface": map[string]interface{}{
			"ParameterGroups": []interface{}{
				map[string]interface{}{"Label": map[string]string{"default": "Storage and catalog"}, "Parameters": []string{ParamBucketName, ParamGlueDatabaseName, ParamRawInfrequentAccessDays, ParamSegmentRetentionDays}},
				map[string]interface{}{"Label": map[string]string{"default": "Nightly rollup"}, "Parameters": []string{ParamSchedule, ParamTimeZone, ParamMaxLateness, ParamWorkerMemory, ParamWorkerTimeout, ParamWorkerReservedConcurrency, ParamParallel, ParamNightlyReport}},
				map[string]interface{}{"Label": map[string]string{"default": "Collector (function URL)"}, "Parameters": []string{ParamCollectorAPIKeysParameter, ParamCollectorAllowedOrigins, ParamCollectorReservedConcurrency, ParamCollectorRate, ParamCollectorBurst}},
				map[string]interface{}{"Label": map[string]string{"default": "Queries and alarms"}, "Parameters": []string{ParamAthenaBytesScannedCutoff, ParamAlarmEmail}},
			},
		},
	}
}

func (b *builder) outputs() {
	out := func(desc string, v string) cloudformation.Output {
		return cloudformation.Output{Value: v, Description: cloudformation.String(desc)}
	}
	b.t.Outputs = cloudformation.Outputs{
		"Store":                 out("The rollup's --store (and LW_STORE)", cloudformation.Sub("s3://${"+idBucket+"}/")),
		"Bucket":                out("The data bucket", cloudformation.Ref(idBucket)),
		"DeliveryStreamName":    out("The collector's --firehose-stream", cloudformation.Ref(idStream)),
		"GlueDatabase":          out("Glue database of the tables (rollup --glue-database)", cloudformation.Ref(idDatabase)),
		"AthenaWorkGroup":       out("Athena workgroup for Power BI and ad-hoc queries", cloudformation.Ref(idWorkGroup)),
		"AthenaReaderPolicyArn": out("Managed policy to attach to the IAM user or role Power BI queries as", cloudformation.Ref(idReaderPolicy)),
		"StateMachineArn":       out("The nightly state machine (rollup --dispatch sfn:<this> for a backfill of any length)", cloudformation.Ref(idStateMachine)),
		"RollupFunctionName":    out("The rollup Lambda function (rollup --dispatch lambda:<this> for one day)", cloudformation.Ref(idRollup)),
		"AlarmTopicArn":         out("SNS topic of the alarms", cloudformation.Ref(idTopic)),
		"CollectorUrl":          out("The collector's function URL: POST <this>v1/events with X-Api-Key", cloudformation.GetAtt(idCollectorURL, "FunctionUrl")),
		"CollectorFunctionName": out("The collector Lambda function", cloudformation.Ref(idCollector)),
	}
}
