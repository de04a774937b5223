// Command collector-lambda is the collector (internal/collector) as a Lambda
// function behind a function URL, built as `bootstrap` for the
// provided.al2023 runtime:
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap ./cmd/collector-lambda
//
// It serves the same API as cmd/collector (POST /v1/events, GET /healthz)
// and sends events to the Firehose stream LW_FIREHOSE_STREAM. At cold start
// it reads the API keys from the SSM parameter named by
// LW_API_KEYS_PARAMETER; see collector.LambdaConfigFromEnv for the other
// variables and infra/README.md for the stack that sets them.
package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"

	awslambda "github.com/aws/aws-lambda-go/lambda"

	"github.com/littlewarehouse/warehouse/internal/collector"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx := context.Background()
	cfg, err := collector.LambdaConfigFromEnv(os.Getenv)
	var fn *collector.FunctionURL
	if err == nil {
		cfg.Logger = log
		fn, err = collector.NewLambda(ctx, cfg)
	}
	if err != nil {
		// Fail every invocation with the reason (never a key), so that it
		// shows in the function's errors and alarms, not only here.
		log.Error("cold start failed: the collector function is misconfigured", "error", err.Error())
		awslambda.Start(func(context.Context, json.RawMessage) (any, error) { return nil, err })
		return
	}
	awslambda.Start(fn.Handle)
}
