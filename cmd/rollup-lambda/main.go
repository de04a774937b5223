// Command rollup-lambda is the Lambda entry point of the rollup job, built
// as `bootstrap` for the provided.al2023 runtime:
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap ./cmd/rollup-lambda
//
// Every invocation is one stage of a run (start, route, plan, build,
// windowed, register, report, finish), called by the nightly state machine
// (infra.StateMachineDefinition). See internal/lambda for the stage events,
// the environment variables and what each stage does.
package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"

	awslambda "github.com/aws/aws-lambda-go/lambda"

	"github.com/littlewarehouse/warehouse/internal/catalog"
	"github.com/littlewarehouse/warehouse/internal/gcpolicy"
	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/lambda"
	"github.com/littlewarehouse/warehouse/internal/metrics"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	deps := lambda.Deps{
		Log:       log,
		Metrics:   metrics.New(os.Stdout, metrics.Namespace),
		Registrar: lambda.NopRegistrar{},
	}
	ctx := context.Background()
	var err error
	// With LW_GLUE_DATABASE set, the register stage registers every
	// partition in Glue (and builds leave superseded runs to it).
	if db := os.Getenv(lambda.EnvGlueDatabase); db != "" {
		var g *catalog.Glue
		if g, err = catalog.OpenGlue(ctx, catalog.GlueOptions{Database: db}); err == nil {
			deps.Catalog, deps.Registrar = g, lambda.RegistrarFunc(job.Register)
		}
	}
	var h *lambda.Handler
	if err == nil {
		h, err = lambda.NewHandlerFromEnv(ctx, os.Getenv, deps)
	}
	if err != nil {
		// Fail every invocation with the reason, so that it shows in the
		// caller's response and the function's errors, not only here.
		log.Error("cold start failed: the function is misconfigured", "error", err.Error())
		awslambda.Start(func(context.Context, json.RawMessage) (any, error) { return nil, err })
		return
	}
	gc := gcpolicy.Apply(os.Getenv) // the whole process's GOGC and memory limit; see gcpolicy.Percent
	log.Info("cold start", "store", os.Getenv(lambda.EnvStore), "go_memory_limit", gc.Limit, "gogc", gc.Percent)
	awslambda.Start(h.Handle)
}
