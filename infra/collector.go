package infra

import (
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/lambda"

	"github.com/littlewarehouse/warehouse/internal/collector"
)

// CollectorZip is where `make lambda` puts the collector function's
// bootstrap (cmd/collector-lambda, arm64), relative to the template's
// folder; `aws cloudformation package` uploads it like LambdaZip.
const CollectorZip = "../dist/collector-lambda-arm64.zip"

// Collector function settings a small team need not change.
const (
	collectorMemory  = 256 // MB: one request at a time, ≤ 1 MiB of body
	collectorTimeout = 30  // s: above the collector's 20 s sink timeout
)

// collectorFunction adds the collector (cmd/collector-lambda) behind a
// public function URL: the same http.Handler as cmd/collector, sending to
// the stack's delivery stream.
//
// The URL's AuthType is NONE because the collector checks API keys itself
// (X-Api-Key); the keys are in an SSM SecureString parameter whose name is
// a stack parameter, created by hand (infra/README.md) and read by the
// function at cold start: no key is in the template, the environment or
// the logs. The parameter must be encrypted with the AWS managed key
// aws/ssm, whose key policy lets every principal of the account decrypt
// through SSM, so the role needs no kms:Decrypt; a customer managed key
// would need a kms:Decrypt grant (with kms:ViaService ssm.<region>) added
// here.
//
// The role may put records on the one stream, read the one parameter and
// write its log group: nothing else. Reserved concurrency caps how many
// environments run at once (and so the bill and the load on Firehose); the
// collector's per-key token bucket applies in each environment.
func (b *builder) collectorFunction() {
	b.functionLogGroup(idCollectorLogGroup, "collector")
	b.add(idCollectorRole, role("Collector: put events on the delivery stream, read the API keys parameter",
		assumeRole("lambda.amazonaws.com", nil), "collect-events",
		policy(
			allow("PutEvents", []string{"firehose:PutRecordBatch"}, cloudformation.GetAtt(idStream, "Arn")),
			allow("ReadAPIKeys", []string{"ssm:GetParameter"}, collectorKeysParameterARN()),
			allow("Log", logsWrite, cloudformation.GetAtt(idCollectorLogGroup, "Arn")),
		)))

	fn := &lambda.Function{
		Description:   cloudformation.String("Little Warehouse collector: POST /v1/events behind a function URL, to Firehose"),
		Architectures: []string{"arm64"},
		Runtime:       cloudformation.String("provided.al2023"),
		Handler:       cloudformation.String("bootstrap"),
		// Replaced by CollectorZip in the JSON (see override).
		Code:       &lambda.Function_Code{S3Bucket: cloudformation.String("PACKAGE"), S3Key: cloudformation.String(CollectorZip)},
		Role:       cloudformation.GetAtt(idCollectorRole, "Arn"),
		MemorySize: cloudformation.Int(collectorMemory),
		Timeout:    cloudformation.Int(collectorTimeout),
		Environment: &lambda.Function_Environment{Variables: map[string]string{
			collector.EnvFirehoseStream:   cloudformation.Ref(idStream),
			collector.EnvAPIKeysParameter: cloudformation.Ref(ParamCollectorAPIKeysParameter),
			collector.EnvAllowedOrigins:   cloudformation.Ref(ParamCollectorAllowedOrigins),
			collector.EnvRate:             cloudformation.Ref(ParamCollectorRate),
			collector.EnvBurst:            cloudformation.Ref(ParamCollectorBurst),
		}},
		LoggingConfig:                &lambda.Function_LoggingConfig{LogGroup: cloudformation.RefPtr(idCollectorLogGroup)},
		ReservedConcurrentExecutions: cloudformation.Int(defaultCollectorReservedConcurrency),
	}
	b.add(idCollector, fn)
	b.override(idCollector, []string{"Code"}, CollectorZip)
	b.override(idCollector, []string{"ReservedConcurrentExecutions"}, map[string]interface{}{
		"Fn::If": []interface{}{condHasCollectorConcurrency, map[string]interface{}{"Ref": ParamCollectorReservedConcurrency}, map[string]interface{}{"Ref": "AWS::NoValue"}},
	})

	b.add(idCollectorURL, &lambda.Url{
		AuthType:          "NONE",
		TargetFunctionArn: cloudformation.GetAtt(idCollector, "Arn"),
		// Replaced in the JSON: CORS only with an allow-list (see override).
		Cors: &lambda.Url_Cors{AllowOrigins: []string{"ORIGINS"}},
	})
	// Lambda answers preflights and sets the CORS headers for the origins
	// of CollectorAllowedOrigins; the collector refuses other origins (403)
	// with the same list. Without origins the URL has no CORS at all.
	b.override(idCollectorURL, []string{"Cors"}, map[string]interface{}{
		"Fn::If": []interface{}{condHasCollectorOrigins, map[string]interface{}{
			"AllowOrigins":  map[string]interface{}{"Fn::Split": []interface{}{",", map[string]interface{}{"Ref": ParamCollectorAllowedOrigins}}},
			"AllowMethods":  []interface{}{"GET", "POST"},
			"AllowHeaders":  []interface{}{"content-type", "x-api-key"},
			"ExposeHeaders": []interface{}{"retry-after"},
			"MaxAge":        600,
		}, map[string]interface{}{"Ref": "AWS::NoValue"}},
	})
	// A public URL needs both grants (since October 2025): invoking the
	// URL, and invoking the function, the latter only through the URL.
	b.add(idCollectorURLPermission, &lambda.Permission{
		Action:              "lambda:InvokeFunctionUrl",
		FunctionName:        cloudformation.Ref(idCollector),
		Principal:           "*",
		FunctionUrlAuthType: cloudformation.String("NONE"),
	})
	b.add(idCollectorInvokePermission, &lambda.Permission{
		Action:       "lambda:InvokeFunction",
		FunctionName: cloudformation.Ref(idCollector),
		Principal:    "*",
	})
	// Newer than goformation's types: added to the JSON.
	b.overrides = append(b.overrides, override{
		Path:  []string{"Resources", idCollectorInvokePermission, "Properties", "InvokedViaFunctionUrl"},
		Value: true, Add: true,
	})
}

// collectorKeysParameterARN is the ARN of the API keys parameter, whose
// name starts with "/" (the parameter's AllowedPattern).
func collectorKeysParameterARN() string {
	return cloudformation.Sub("arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${" + ParamCollectorAPIKeysParameter + "}")
}
