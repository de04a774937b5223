// Command rollup builds the warehouse's curated tables; see rollup --help.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/littlewarehouse/warehouse/internal/cli"
	"github.com/littlewarehouse/warehouse/internal/gcpolicy"
)

func main() {
	gcpolicy.Apply(os.Getenv) // the whole process's GOGC and memory limit; see gcpolicy.Percent
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
