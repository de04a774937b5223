package infra

import (
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/events"
	"github.com/awslabs/goformation/v7/cloudformation/iam"
	"github.com/awslabs/goformation/v7/cloudformation/lambda"
	"github.com/awslabs/goformation/v7/cloudformation/logs"
	"github.com/awslabs/goformation/v7/cloudformation/stepfunctions"
)

// The nightly state machine's name is set, not generated, so that the
// policies of its own role can name its ARN (a GetAtt or Ref of the state
// machine there would be a dependency cycle).
const (
	stateMachineNameSuffix = "-nightly"
	// functionARNKey is the DefinitionSubstitutions key every Task state's
	// Resource names.
	functionARNKey = "RollupFunctionArn"
	eraseARNKey    = "EraseFunctionArn"
)

// rollup adds the nightly run (docs/design.md §Where it runs): the one
// rollup function, the state machine whose every Task invokes it with a
// stage event (StateMachineDefinition), the nightly rule that starts the
// state machine, and their roles and log group.
//
// Step Functions invokes the function synchronously and owns the fan-out,
// its concurrency ($.parallel, from LW_PARALLEL), the retries and the
// failures: nothing is invoked asynchronously, so there is no
// EventInvokeConfig and no dead-letter queue. The execution history is the
// night's record; the state machine has no logging configuration (its
// role would need the CloudWatch Logs delivery actions on "*"; the run
// summary and the function's log group say what the history does not).
//
// The function's role reads and writes what the stages do in the store,
// keeps the Glue catalog current (the register stage) and writes its log
// group; with NightlyReport=true, and only then, a policy of its own lets
// it put objects under reports/. It invokes nothing. The state machine's
// role may invoke exactly the function and run its own Distributed Maps
// (child executions of the same state machine); the rule's role may start
// exactly the state machine.
func (b *builder) rollup() {
	b.functionLogGroup(idRollupLogGroup, "rollup")
	b.functionLogGroup(idEraseLogGroup, "erase")
	// Every stage reads its inputs (raw/, and raw-errors/ for the
	// conversion failures counted in data_quality_daily and quarantine)
	// and reads and writes its outputs (curated/) and state (_state/:
	// index, segments, leases, users, manifests, the run's records,
	// erasure requests). Nothing else in the bucket.
	b.add(idRollupRole, storeRole("Rollup function: every stage of the nightly run but Erase, from raw/ to curated/ and the Glue partitions",
		"rollup", allow("ReadInputs", s3Read, objectsARNs(prefixRaw, prefixRawErrors)...), idRollupLogGroup))
	// The erase function (the same code, the Erase state's) also rewrites
	// the raw objects and error files that hold an erased person's rows (a
	// new object, then the old one deleted): the only writes to raw/ and
	// raw-errors/ besides Firehose's, kept out of every other stage.
	b.add(idEraseRole, storeRole("Erase function: the Erase state, which rewrites the raw objects holding an erased person's rows and rebuilds their days",
		"erase", allow("RewriteInputs", s3ReadWrite, objectsARNs(prefixRaw, prefixRawErrors)...), idEraseLogGroup))
	b.add(idRollupReportPolicy, &iam.Policy{
		PolicyName:                 "rollup-report",
		Roles:                      []string{cloudformation.Ref(idRollupRole)},
		PolicyDocument:             policy(allow("WriteReport", []string{"s3:PutObject"}, objectsARN(prefixReports))),
		AWSCloudFormationCondition: condNightlyReport,
	})

	b.add(idRollup, rollupFunction("Little Warehouse rollup: one stage of the nightly run per invocation (start, route, plan, build a day, windowed, register, report, finish)",
		idRollupRole, idRollupLogGroup, true))
	b.add(idErase, rollupFunction("Little Warehouse erase: the nightly run's Erase state (pending rollup erase requests)", idEraseRole, idEraseLogGroup, false))
	for _, id := range []string{idRollup, idErase} {
		b.override(id, []string{"Code"}, LambdaZip)
		b.refNumber(id, []string{"MemorySize"}, ParamWorkerMemory)
		b.refNumber(id, []string{"Timeout"}, ParamWorkerTimeout)
	}
	b.override(idRollup, []string{"ReservedConcurrentExecutions"}, map[string]interface{}{
		"Fn::If": []interface{}{condHasReservedConcurrency, map[string]interface{}{"Ref": ParamWorkerReservedConcurrency}, map[string]interface{}{"Ref": "AWS::NoValue"}},
	})

	b.stateMachine()

	b.add(idScheduleRole, role("Nightly rule: start the nightly state machine",
		assumeRole("events.amazonaws.com", nil), "start-nightly",
		policy(allow("StartNightly", []string{"states:StartExecution"}, cloudformation.Ref(idStateMachine)))))
	// The target gets the scheduled event as the execution's input: the
	// start stage reads it as a nightly catch-up.
	b.add(idSchedule, &events.Rule{
		Description:        cloudformation.String("Little Warehouse nightly rollup: starts the nightly state machine"),
		ScheduleExpression: cloudformation.RefPtr(ParamSchedule),
		State:              cloudformation.String("ENABLED"),
		Targets: []events.Rule_Target{{
			Id:      "nightly",
			Arn:     cloudformation.Ref(idStateMachine),
			RoleArn: cloudformation.GetAttPtr(idScheduleRole, "Arn"),
		}},
	})
}

// stateMachine adds the nightly state machine and its role.
//
// A Distributed Map runs each item as a child execution of this same state
// machine, so besides invoking the function the role may start executions
// of it, describe, stop and redrive the child executions, and describe its
// own executions: the IAM policies the Step Functions guide gives for
// Distributed Map states (whose versions name either the child or the
// parent executions) and for redriving a Map Run (a redriven execution
// redrives its failed child executions with this role). All of them are
// this state machine's executions; no other.
func (b *builder) stateMachine() {
	b.add(idStateMachineRole, role("Nightly state machine: invoke the rollup function, run its Distributed Maps",
		assumeRole("states.amazonaws.com", nil), "run-nightly",
		policy(
			allow("InvokeRollup", []string{"lambda:InvokeFunction"}, cloudformation.GetAtt(idRollup, "Arn"), cloudformation.GetAtt(idErase, "Arn")),
			allow("StartChildExecutions", []string{"states:StartExecution"}, stateMachineARN()),
			allow("ManageChildExecutions", []string{"states:DescribeExecution", "states:RedriveExecution", "states:StopExecution"},
				childExecutionsARN()),
			allow("DescribeOwnExecutions", []string{"states:DescribeExecution"}, executionsARN()),
		)))

	// DefinitionString, not Definition: the definition holds nulls
	// ("ResultPath": null discards a result), and CloudFormation refuses
	// null values anywhere in a template but inside a string.
	b.add(idStateMachine, &stepfunctions.StateMachine{
		StateMachineName: cloudformation.SubPtr("${AWS::StackName}" + stateMachineNameSuffix),
		StateMachineType: cloudformation.String("STANDARD"),
		RoleArn:          cloudformation.GetAtt(idStateMachineRole, "Arn"),
		DefinitionString: cloudformation.String(string(StateMachineDefinition("${"+functionARNKey+"}", "${"+eraseARNKey+"}"))),
		DefinitionSubstitutions: map[string]interface{}{
			functionARNKey: cloudformation.GetAtt(idRollup, "Arn"),
			eraseARNKey:    cloudformation.GetAtt(idErase, "Arn"),
		},
	})
}

// stateMachineARN is the nightly state machine's ARN, built from its name.
func stateMachineARN() string {
	return cloudformation.Sub("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}" + stateMachineNameSuffix)
}

// executionsARN is every execution of the nightly state machine, started
// by the rule, by hand or by rollup --dispatch sfn:
// (execution:<name>:<execution>).
func executionsARN() string {
	return cloudformation.Sub("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${AWS::StackName}" + stateMachineNameSuffix + ":*")
}

// childExecutionsARN is every child execution its Distributed Maps start
// (execution:<name>/<map run>:<child>).
func childExecutionsARN() string {
	return cloudformation.Sub("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${AWS::StackName}" + stateMachineNameSuffix + "/*")
}

// rollupFunction is the rollup binary as a function with role roleID,
// logging to logGroup; reserved says whether it takes the reserved
// concurrency (the days' builds; the erase function runs one at a time).
func rollupFunction(desc, roleID, logGroup string, reserved bool) *lambda.Function {
	fn := &lambda.Function{
		Description:   cloudformation.String(desc),
		Architectures: []string{"arm64"},
		Runtime:       cloudformation.String("provided.al2023"),
		Handler:       cloudformation.String("bootstrap"),
		// Replaced by LambdaZip in the JSON (see override).
		Code:       &lambda.Function_Code{S3Bucket: cloudformation.String("PACKAGE"), S3Key: cloudformation.String(LambdaZip)},
		Role:       cloudformation.GetAtt(roleID, "Arn"),
		MemorySize: cloudformation.Int(defaultWorkerMemory),
		Timeout:    cloudformation.Int(defaultWorkerTimeout),
		Environment: &lambda.Function_Environment{Variables: map[string]string{
			EnvStore:        cloudformation.Sub("s3://${" + idBucket + "}/"),
			EnvGlueDatabase: cloudformation.Ref(idDatabase),
			EnvTZ:           cloudformation.Ref(ParamTimeZone),
			EnvMaxLateness:  cloudformation.Ref(ParamMaxLateness),
			EnvParallel:     cloudformation.Ref(ParamParallel),
			EnvReport:       cloudformation.Ref(ParamNightlyReport),
		}},
		LoggingConfig: &lambda.Function_LoggingConfig{LogGroup: cloudformation.RefPtr(logGroup)},
	}
	if reserved {
		fn.ReservedConcurrentExecutions = cloudformation.Int(defaultWorkerReservedConcurrency)
	}
	return fn
}

// functionLogGroup adds the log group of the function /aws/lambda/<stack>-<suffix>.
func (b *builder) functionLogGroup(id, suffix string) {
	b.add(id, &logs.LogGroup{
		LogGroupName:    cloudformation.SubPtr("/aws/lambda/${AWS::StackName}-" + suffix),
		RetentionInDays: cloudformation.Int(logRetentionDays),
	})
}

// storeRole is the role of a function running the rollup code: inputs as
// raw grants, config/ read, curated/ and _state/ read and written, the
// Glue database kept current, its log group written; nothing else.
func storeRole(desc, name string, raw statement, logGroup string) *iam.Role {
	return role(desc, assumeRole("lambda.amazonaws.com", nil), name,
		policy(
			allow("ListBucket", s3ListBucket, bucketARN()),
			raw,
			allow("ReadConfig", s3Read, objectsARN(prefixConfig)),
			allow("ReadWriteOutputs", s3ReadWrite, objectsARNs(prefixCurated, prefixState)...),
			allow("Catalog", glueCatalog, glueCatalogARN(), glueDatabaseARN(), glueTableARN("*")),
			allow("Log", logsWrite, cloudformation.GetAtt(logGroup, "Arn")),
		))
}
