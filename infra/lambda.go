package infra

import (
	"slices"

	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/events"
	"github.com/awslabs/goformation/v7/cloudformation/iam"
	"github.com/awslabs/goformation/v7/cloudformation/lambda"
	"github.com/awslabs/goformation/v7/cloudformation/logs"
	"github.com/awslabs/goformation/v7/cloudformation/sqs"
)

// Lambda roles of the one binary (LW_ROLE).
const (
	RoleCoordinator = "coordinator"
	RoleWorker      = "worker"
)

// lambdas adds the coordinator and the worker (docs/design.md §Where it runs), their
// roles and log groups, the nightly rule and the dead-letter queue.
//
// The coordinator, started by the rule, plans, invokes one worker per stale
// day asynchronously, waits for their manifests, builds the windowed tables
// and registers partitions in Glue. A worker builds one day. Both run the same
// bootstrap. An invocation that fails after Lambda's retries goes to the
// dead-letter queue (EventInvokeConfig on-failure destination), and the
// next night's plan picks the day up again.
//
// With NightlyReport=true the coordinator also writes the HTML report to
// reports/latest.html (LW_REPORT); only then does it get a policy allowing
// s3:PutObject there, and nowhere else new.
func (b *builder) lambdas() {
	b.add(idDLQ, &sqs.Queue{
		MessageRetentionPeriod: cloudformation.Int(dlqRetentionSeconds),
		SqsManagedSseEnabled:   cloudformation.Bool(true),
	})
	for id, role := range map[string]string{idCoordinatorLogGroup: RoleCoordinator, idWorkerLogGroup: RoleWorker} {
		b.add(id, &logs.LogGroup{
			LogGroupName:    cloudformation.SubPtr("/aws/lambda/${AWS::StackName}-" + role),
			RetentionInDays: cloudformation.Int(logRetentionDays),
		})
	}

	lambdaTrust := assumeRole("lambda.amazonaws.com", nil)
	// Both read every input (raw/, and raw-errors/ for the conversion
	// failures counted in data_quality_daily and quarantine) and read and
	// write their outputs (curated/) and state (_state/: index, segments,
	// leases, users, manifests). Nothing else in the bucket.
	storeAccess := []statement{
		allow("ListBucket", s3ListBucket, bucketARN()),
		allow("ReadInputs", s3Read, objectsARNs(prefixRaw, prefixRawErrors)...),
		allow("ReadWriteOutputs", s3ReadWrite, objectsARNs(prefixCurated, prefixState)...),
	}
	b.add(idWorkerRole, role("Rollup worker: one day from raw/ to curated/",
		lambdaTrust, "rollup-worker",
		policy(slices.Concat(storeAccess, []statement{
			allow("Log", logsWrite, cloudformation.GetAtt(idWorkerLogGroup, "Arn")),
			allow("DeadLetter", []string{"sqs:SendMessage"}, cloudformation.GetAtt(idDLQ, "Arn")),
		})...)))
	b.add(idCoordinatorRole, role("Rollup coordinator: plan, fan out to workers, windowed tables, Glue partitions",
		lambdaTrust, "rollup-coordinator",
		policy(slices.Concat(storeAccess, []statement{
			allow("Catalog", glueCatalog, glueCatalogARN(), glueDatabaseARN(), glueTableARN("*")),
			allow("InvokeWorker", []string{"lambda:InvokeFunction"}, cloudformation.GetAtt(idWorker, "Arn")),
			allow("Log", logsWrite, cloudformation.GetAtt(idCoordinatorLogGroup, "Arn")),
			allow("DeadLetter", []string{"sqs:SendMessage"}, cloudformation.GetAtt(idDLQ, "Arn")),
		})...)))

	b.add(idCoordinatorReportPolicy, &iam.Policy{
		PolicyName:                 "rollup-coordinator-report",
		Roles:                      []string{cloudformation.Ref(idCoordinatorRole)},
		PolicyDocument:             policy(allow("WriteReport", []string{"s3:PutObject"}, objectsARN(prefixReports))),
		AWSCloudFormationCondition: condNightlyReport,
	})

	env := func(role string) map[string]string {
		v := map[string]string{
			EnvRole:         role,
			EnvStore:        cloudformation.Sub("s3://${" + idBucket + "}/"),
			EnvGlueDatabase: cloudformation.Ref(idDatabase),
			EnvTZ:           cloudformation.Ref(ParamTimeZone),
			EnvMaxLateness:  cloudformation.Ref(ParamMaxLateness),
			EnvParallel:     cloudformation.Ref(ParamParallel),
		}
		if role == RoleCoordinator {
			v[EnvWorkerFunction] = cloudformation.Ref(idWorker)
			v[EnvReport] = cloudformation.Ref(ParamNightlyReport)
		}
		return v
	}
	fn := func(role, desc, roleID, logGroup string, memory, timeout int) *lambda.Function {
		return &lambda.Function{
			Description:   cloudformation.String(desc),
			Architectures: []string{"arm64"},
			Runtime:       cloudformation.String("provided.al2023"),
			Handler:       cloudformation.String("bootstrap"),
			// Replaced by LambdaZip in the JSON (see override).
			Code:          &lambda.Function_Code{S3Bucket: cloudformation.String("PACKAGE"), S3Key: cloudformation.String(LambdaZip)},
			Role:          cloudformation.GetAtt(roleID, "Arn"),
			MemorySize:    cloudformation.Int(memory),
			Timeout:       cloudformation.Int(timeout),
			Environment:   &lambda.Function_Environment{Variables: env(role)},
			LoggingConfig: &lambda.Function_LoggingConfig{LogGroup: cloudformation.RefPtr(logGroup)},
		}
	}
	worker := fn(RoleWorker, "Little Warehouse rollup worker: builds one reporting day", idWorkerRole, idWorkerLogGroup, defaultWorkerMemory, defaultWorkerTimeout)
	worker.ReservedConcurrentExecutions = cloudformation.Int(defaultWorkerReservedConcurrency)
	b.add(idWorker, worker)
	b.refNumber(idWorker, []string{"MemorySize"}, ParamWorkerMemory)
	b.refNumber(idWorker, []string{"Timeout"}, ParamWorkerTimeout)
	b.override(idWorker, []string{"ReservedConcurrentExecutions"}, map[string]interface{}{
		"Fn::If": []interface{}{condHasReservedConcurrency, map[string]interface{}{"Ref": ParamWorkerReservedConcurrency}, map[string]interface{}{"Ref": "AWS::NoValue"}},
	})
	b.add(idCoordinator, fn(RoleCoordinator, "Little Warehouse rollup coordinator: the nightly run", idCoordinatorRole, idCoordinatorLogGroup, coordinatorMemory, coordinatorTimeout))
	for _, id := range []string{idWorker, idCoordinator} {
		b.override(id, []string{"Code"}, LambdaZip)
	}

	for id, fnID := range map[string]string{idWorkerInvokeConfig: idWorker, idCoordinatorInvokeConfig: idCoordinator} {
		b.add(id, &lambda.EventInvokeConfig{
			FunctionName:             cloudformation.Ref(fnID),
			Qualifier:                "$LATEST",
			MaximumRetryAttempts:     cloudformation.Int(asyncRetries),
			MaximumEventAgeInSeconds: cloudformation.Int(asyncMaxEventAgeSeconds),
			DestinationConfig: &lambda.EventInvokeConfig_DestinationConfig{
				OnFailure: &lambda.EventInvokeConfig_OnFailure{Destination: cloudformation.GetAtt(idDLQ, "Arn")},
			},
		})
	}

	b.add(idSchedule, &events.Rule{
		Description:        cloudformation.String("Little Warehouse nightly rollup"),
		ScheduleExpression: cloudformation.RefPtr(ParamSchedule),
		State:              cloudformation.String("ENABLED"),
		Targets:            []events.Rule_Target{{Id: RoleCoordinator, Arn: cloudformation.GetAtt(idCoordinator, "Arn")}},
	})
	b.add(idSchedulePermission, &lambda.Permission{
		Action:       "lambda:InvokeFunction",
		FunctionName: cloudformation.Ref(idCoordinator),
		Principal:    "events.amazonaws.com",
		SourceArn:    cloudformation.GetAttPtr(idSchedule, "Arn"),
	})
}
