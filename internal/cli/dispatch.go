package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/littlewarehouse/warehouse/internal/job"
	"github.com/littlewarehouse/warehouse/internal/lambda"
)

// dispatch sends the stale days of cfg to the Lambda worker function named
// by target ("lambda:FUNCTION"), shows progress while their manifests
// appear for at most wait (see lambda.Options.Wait), then runs the
// windowed stage and the registration here.
func dispatch(ctx context.Context, cfg job.Config, target string, wait time.Duration, stdout, stderr io.Writer) error {
	fn, ok := strings.CutPrefix(target, "lambda:")
	if !ok || fn == "" {
		return usagef("--dispatch %q: want lambda:FUNCTION", target)
	}
	if wait <= 0 {
		return usagef("--dispatch-wait %s: want a positive duration (e.g. 1h)", wait)
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("AWS configuration: %w", err)
	}
	client := awslambda.NewFromConfig(awsCfg) // AWS_ENDPOINT_URL_LAMBDA overrides the endpoint
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	progress := func(p lambda.Progress) {
		fmt.Fprintf(stderr, "%s %-10s %d/%d days done, %d failed\n", p.Day, p.Status, p.Done, p.Total, p.Failed)
	}
	sum, err := lambda.DispatchBackfill(ctx, cfg, client, fn, progress,
		func(o *lambda.Options) {
			o.Registrar = lambda.RegistrarFunc(job.Register)
			o.Wait = wait
			o.RouteProgress = func(p lambda.RouteProgress) { fmt.Fprintln(stderr, p) }
		})
	if sum != nil {
		fmt.Fprintf(stdout, "run %s: %s; %d days planned, %d built, %d failed, %d pending\n",
			sum.Run, sum.Status, sum.Planned, sum.Built, sum.Failed, len(sum.Pending))
	}
	return err
}
