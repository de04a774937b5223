package infra

import (
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/athena"
	"github.com/awslabs/goformation/v7/cloudformation/cloudwatch"
	"github.com/awslabs/goformation/v7/cloudformation/iam"
	"github.com/awslabs/goformation/v7/cloudformation/sns"
)

// AthenaListActions are the only actions of the stack granted on Resource
// "*": Athena defines no resource type for them, so AWS accepts nothing
// else. The Athena ODBC driver (Power BI) calls them to show the workgroups
// and catalogs; they reveal names, not data.
var AthenaListActions = []string{"athena:ListDataCatalogs", "athena:ListEngineVersions", "athena:ListWorkGroups"}

// athena adds the workgroup (results in athena-results/, a per-query scan
// cutoff) and a managed policy for the people and tools that query it.
func (b *builder) athena() {
	b.add(idWorkGroup, &athena.WorkGroup{
		Name:                  cloudformation.Sub("${AWS::StackName}"),
		Description:           cloudformation.String("Little Warehouse queries (Power BI, ad hoc): results in athena-results/, a per-query scan limit"),
		State:                 cloudformation.String("ENABLED"),
		RecursiveDeleteOption: cloudformation.Bool(true),
		WorkGroupConfiguration: &athena.WorkGroup_WorkGroupConfiguration{
			BytesScannedCutoffPerQuery:      cloudformation.Int(defaultAthenaBytesScannedCutoff),
			EnforceWorkGroupConfiguration:   cloudformation.Bool(true),
			PublishCloudWatchMetricsEnabled: cloudformation.Bool(true),
			EngineVersion:                   &athena.WorkGroup_EngineVersion{SelectedEngineVersion: cloudformation.String("Athena engine version 3")},
			ResultConfiguration: &athena.WorkGroup_ResultConfiguration{
				OutputLocation:          cloudformation.SubPtr("s3://${" + idBucket + "}/" + prefixAthenaResults),
				EncryptionConfiguration: &athena.WorkGroup_EncryptionConfiguration{EncryptionOption: "SSE_S3"},
			},
		},
	})
	b.refNumber(idWorkGroup, []string{"WorkGroupConfiguration", "BytesScannedCutoffPerQuery"}, ParamAthenaBytesScannedCutoff)

	workgroup := cloudformation.Sub("arn:${AWS::Partition}:athena:${AWS::Region}:${AWS::AccountId}:workgroup/${" + idWorkGroup + "}")
	dataCatalog := cloudformation.Sub("arn:${AWS::Partition}:athena:${AWS::Region}:${AWS::AccountId}:datacatalog/AwsDataCatalog")
	b.add(idReaderPolicy, &iam.ManagedPolicy{
		Description: cloudformation.String("Query the warehouse through its Athena workgroup (read-only): attach to the user or role Power BI connects as"),
		PolicyDocument: policy(
			allow("RunQueries", []string{
				"athena:BatchGetQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults", "athena:GetQueryResultsStream",
				"athena:GetWorkGroup", "athena:ListQueryExecutions", "athena:StartQueryExecution", "athena:StopQueryExecution",
			}, workgroup),
			allow("BrowseCatalog", []string{
				"athena:GetDataCatalog", "athena:GetDatabase", "athena:GetTableMetadata", "athena:ListDatabases", "athena:ListTableMetadata",
			}, dataCatalog),
			// No resource type exists for these: see AthenaListActions.
			allow("ListWorkGroups", AthenaListActions, "*"),
			allow("ReadCatalog", glueReadCatalog, glueCatalogARN(), glueDatabaseARN(), glueTableARN("*")),
			allow("ListBucket", s3ListBucket, bucketARN()),
			allow("ReadData", s3Read, objectsARNs(prefixCurated, prefixRaw)...),
			allow("WriteResults", []string{"s3:AbortMultipartUpload", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"}, objectsARN(prefixAthenaResults)),
		),
	})
}

// alarms adds the alarm topic, its optional e-mail subscription and the
// alarms: records Firehose could not convert, failed rollup and collector
// invocations, throttled collector requests, and nightly state machine
// executions that failed or timed out.
//
// The topic is not KMS-encrypted: CloudWatch alarms cannot publish to a
// topic encrypted with the AWS-managed SNS key, and alarm messages hold no
// data.
func (b *builder) alarms() {
	b.add(idTopic, &sns.Topic{DisplayName: cloudformation.String("Little Warehouse alarms")})
	b.add(idSubscription, &sns.Subscription{
		TopicArn:                   cloudformation.Ref(idTopic),
		Protocol:                   "email",
		Endpoint:                   cloudformation.RefPtr(ParamAlarmEmail),
		AWSCloudFormationCondition: condHasAlarmEmail,
	})
	alarm := func(desc, namespace, metric, stat, dimension, value string) *cloudwatch.Alarm {
		return &cloudwatch.Alarm{
			AlarmDescription:   cloudformation.String(desc),
			Namespace:          cloudformation.String(namespace),
			MetricName:         cloudformation.String(metric),
			Dimensions:         []cloudwatch.Alarm_Dimension{{Name: dimension, Value: value}},
			Statistic:          cloudformation.String(stat),
			Period:             cloudformation.Int(300),
			EvaluationPeriods:  1,
			Threshold:          cloudformation.Float64(0),
			ComparisonOperator: "GreaterThanThreshold",
			TreatMissingData:   cloudformation.String("notBreaching"),
			AlarmActions:       []string{cloudformation.Ref(idTopic)},
			OKActions:          []string{cloudformation.Ref(idTopic)},
		}
	}
	b.add(idAlarmConversion, alarm("Firehose could not convert records to Parquet: they are in raw-errors/format-conversion-failed/ (counted in data_quality_daily, rows in quarantine). A producer sends events that do not fit the raw schema.",
		"AWS/Firehose", "FailedConversion.Records", "Sum", "DeliveryStreamName", cloudformation.Ref(idStream)))
	b.add(idAlarmRollupErrors, alarm("A rollup function invocation (one stage of a run) failed. The state machine retries transient errors; AlarmNightlyFailed says whether the run failed. See the function's log group.",
		"AWS/Lambda", "Errors", "Sum", "FunctionName", cloudformation.Ref(idRollup)))
	b.add(idAlarmNightlyFailed, alarm("A run of the nightly state machine failed: a day, a route part or a stage failed after its retries. Open the execution in the Step Functions console; the run summary in _state/runs/ says which and why. The next run builds what is still stale.",
		"AWS/States", "ExecutionsFailed", "Sum", "StateMachineArn", cloudformation.Ref(idStateMachine)))
	b.add(idAlarmNightlyTimedOut, alarm("A run of the nightly state machine timed out (its TimeoutSeconds). Open the execution in the Step Functions console; redrive it or start a new one.",
		"AWS/States", "ExecutionsTimedOut", "Sum", "StateMachineArn", cloudformation.Ref(idStateMachine)))
	b.add(idAlarmCollectorErrors, alarm("The collector function failed invocations (clients got 502): a cold start that cannot read the API keys parameter, or a crash. See the collector's log group.",
		"AWS/Lambda", "Errors", "Sum", "FunctionName", cloudformation.Ref(idCollector)))
	b.add(idAlarmCollectorThrottles, alarm("Requests to the collector were throttled (clients got 429): its reserved concurrency is used up. Raise CollectorReservedConcurrency if the traffic is real.",
		"AWS/Lambda", "Throttles", "Sum", "FunctionName", cloudformation.Ref(idCollector)))
}
