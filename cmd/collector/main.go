// Command collector is the ingest HTTP API of Little Warehouse: apps POST
// events to /v1/events, and the collector stamps them and sends them to a
// Firehose delivery stream, or — by default — to a local delivery stream that
// writes raw Parquet to a store. Run `collector --help` for the flags;
// docs/collector.md has the rest.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/littlewarehouse/warehouse/internal/collector"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // serving failed, or buffered events could not be written
	exitUsage  = 2 // bad flags, environment or configuration
)

// run is the whole program but for the process: parse, run, and turn the
// outcome into an exit code, in this one place.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case err != nil:
		fmt.Fprintf(stderr, "collector: %v\nRun collector --help for the flags.\n", err)
		return exitUsage
	}
	err = collector.Run(ctx, cfg)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, collector.ErrConfig):
		fmt.Fprintf(stderr, "collector: %v\n", err)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "collector: %v\n", err)
		return exitFailed
	}
}

const keysEnv = "COLLECTOR_API_KEYS"

// flagDoc explains one flag: a placeholder for its value and an example.
type flagDoc struct {
	arg, example string
}

var docs = map[string]flagDoc{
	"addr":                {"ADDR", "--addr 127.0.0.1:8080"},
	"api-keys-file":       {"PATH", "--api-keys-file /run/secrets/collector-keys"},
	"no-auth":             {"", "--no-auth"},
	"allowed-origins":     {"LIST", "--allowed-origins https://app.example.com,https://www.example.com"},
	"max-body":            {"SIZE", "--max-body 512KiB"},
	"max-events":          {"N", "--max-events 100"},
	"rate":                {"N", "--rate 20"},
	"burst":               {"N", "--burst 50"},
	"auth-failures":       {"N", "--auth-failures 10"},
	"auth-failure-window": {"DURATION", "--auth-failure-window 5m"},
	"firehose-stream":     {"NAME", "--firehose-stream warehouse-events"},
	"region":              {"REGION", "--region eu-west-1"},
	"firehose-endpoint":   {"URL", "--firehose-endpoint http://localhost:4566"},
	"store":               {"LOC", "--store ./data (or file:///srv/warehouse)"},
	"stream-name":         {"NAME", "--stream-name demo"},
	"buffer-size":         {"SIZE", "--buffer-size 1MiB"},
	"buffer-interval":     {"DURATION", "--buffer-interval 10s"},
	"read-header-timeout": {"DURATION", "--read-header-timeout 5s"},
	"read-timeout":        {"DURATION", "--read-timeout 30s"},
	"write-timeout":       {"DURATION", "--write-timeout 1m"},
	"idle-timeout":        {"DURATION", "--idle-timeout 2m"},
	"sink-timeout":        {"DURATION", "--sink-timeout 20s"},
	"shutdown-timeout":    {"DURATION", "--shutdown-timeout 30s"},
	"log-level":           {"LEVEL", "--log-level debug"},
}

// parseConfig builds the collector's configuration from the environment
// (COLLECTOR_<FLAG> for every flag, and COLLECTOR_API_KEYS) and the flags,
// which win over the environment.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (collector.Config, error) {
	d := collector.DefaultConfig()
	cfg := d
	fs := flag.NewFlagSet("collector", flag.ContinueOnError)
	fs.SetOutput(out)
	var keysFile, origins, logLevel string
	maxBody, bufSize := sizeValue(d.MaxBodyBytes), sizeValue(d.BufferSize)

	fs.StringVar(&cfg.Addr, "addr", d.Addr, "address to listen on (host:port; port 0 picks a free one)")
	fs.StringVar(&keysFile, "api-keys-file", "", "file of API keys, one or more a line, # for comments; added to those in "+keysEnv+" (comma-separated). Several keys are accepted at once, so a key can be rotated. A key has at least 16 characters.")
	fs.BoolVar(&cfg.NoAuth, "no-auth", false, "accept requests without an API key (local experiments only, never on a public address)")
	fs.StringVar(&origins, "allowed-origins", "", "comma-separated browser origins allowed to call the API (CORS), scheme://host[:port]; * allows any; empty refuses requests that carry an Origin")
	fs.Var(&maxBody, "max-body", "largest request body, in bytes or with KiB/MiB/GiB; larger is 413")
	fs.IntVar(&cfg.MaxEvents, "max-events", d.MaxEvents, "most events in one request; more is 400")
	rate := fs.Float64("rate", d.RatePerSecond, "requests a second allowed per API key, on average; over it is 429 with Retry-After; 0 turns rate limiting off")
	fs.IntVar(&cfg.RateBurst, "burst", d.RateBurst, "requests an API key may make at once before --rate applies")
	authFailures := fs.Int("auth-failures", d.AuthFailures, "failed authentications (missing or wrong X-Api-Key) one client IP address (IPv6: its /64) may make at once; they come back at this many per --auth-failure-window; past them the client gets 429 with Retry-After; 0 turns the limit off")
	fs.DurationVar(&cfg.AuthFailureWindow, "auth-failure-window", d.AuthFailureWindow, "the time in which --auth-failures failed authentications come back")
	fs.StringVar(&cfg.FirehoseStream, "firehose-stream", "", "send events to this Firehose delivery stream instead of the local stream (credentials and region from the usual AWS_* variables, ~/.aws or the instance role)")
	fs.StringVar(&cfg.Region, "region", "", "AWS region of the Firehose stream, if not set by AWS_REGION")
	fs.StringVar(&cfg.FirehoseEndpoint, "firehose-endpoint", "", "Firehose endpoint URL, for an emulator or a VPC endpoint (AWS_ENDPOINT_URL_FIREHOSE works too)")
	fs.StringVar(&cfg.Store, "store", d.Store, "where the local stream writes raw/ and raw-errors/ (a path or file:// URL) when no --firehose-stream is set")
	fs.StringVar(&cfg.Stream, "stream-name", d.Stream, "name of the local stream, in its object names: raw/YYYY/MM/DD/HH/<name>-1-...")
	fs.Var(&bufSize, "buffer-size", "local stream: write a Parquet object once this much is buffered (Firehose's buffer size hint)")
	fs.DurationVar(&cfg.BufferInterval, "buffer-interval", d.BufferInterval, "local stream: write a Parquet object once the oldest buffered event has waited this long (Firehose's buffer interval hint)")
	fs.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", d.ReadHeaderTimeout, "time allowed to read a request's headers")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", d.ReadTimeout, "time allowed to read a whole request")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", d.WriteTimeout, "time allowed from the end of the headers to the end of the answer; must exceed --sink-timeout")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", d.IdleTimeout, "how long an idle keep-alive connection stays open")
	fs.DurationVar(&cfg.SinkTimeout, "sink-timeout", d.SinkTimeout, "time allowed to hand a request's events to the stream, retries included; past it the answer is 503")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", d.ShutdownTimeout, "on SIGTERM or SIGINT, time allowed to finish requests and write the local buffer")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error; logs are JSON on stderr and never hold event contents or keys")
	fs.Usage = func() { usage(fs, out) }

	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %v", envName(f.Name), v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return cfg, err
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}

	cfg.MaxBodyBytes, cfg.BufferSize = int64(maxBody), int64(bufSize)
	cfg.RatePerSecond = *rate
	if *rate == 0 {
		cfg.RatePerSecond = -1 // off
	}
	cfg.AuthFailures = *authFailures
	switch {
	case *authFailures == 0:
		cfg.AuthFailures = -1 // off
	case *authFailures < 0:
		return cfg, fmt.Errorf("--auth-failures %d: want 0 (off) or more", *authFailures)
	}
	if cfg.AuthFailureWindow <= 0 {
		return cfg, fmt.Errorf("--auth-failure-window %s: want a positive duration", cfg.AuthFailureWindow)
	}
	cfg.APIKeys = collector.ParseKeys(getenv(keysEnv))
	if keysFile != "" {
		keys, err := collector.ReadKeysFile(keysFile)
		if err != nil {
			return cfg, err
		}
		cfg.APIKeys = append(cfg.APIKeys, keys...)
	}
	for _, o := range strings.Split(origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.AllowedOrigins = append(cfg.AllowedOrigins, o)
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return cfg, fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)
	}
	cfg.Logger = slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: level}))
	return cfg, nil
}

func envName(flagName string) string {
	return "COLLECTOR_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintf(w, `collector: the Little Warehouse ingest API.

  POST /v1/events   one JSON event or a JSON array of events (header X-Api-Key)
  GET  /healthz     liveness

Each accepted event gets an event_id (UUIDv7) and received_at, and goes to a
Firehose delivery stream (--firehose-stream) or, by default, to a local stream
that writes raw Parquet under --store exactly as Firehose would.

Usage:
  COLLECTOR_API_KEYS=<key>[,<key>...] collector [flags]

Example (local, small buffers for a demo):
  COLLECTOR_API_KEYS=dev-key-0123456789abcdef collector --addr 127.0.0.1:8080 \
    --store ./data --buffer-size 1MiB --buffer-interval 10s

Every flag can also be set by the environment variable COLLECTOR_<FLAG>, with
dashes as underscores (COLLECTOR_BUFFER_INTERVAL=10s); flags win.

Flags:
`)
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	for _, name := range names {
		f := fs.Lookup(name)
		d := docs[name]
		head := "  --" + name
		if d.arg != "" {
			head += " " + d.arg
		}
		def := ""
		if f.DefValue != "" && f.DefValue != "false" {
			def = fmt.Sprintf(", default %s", f.DefValue)
		}
		fmt.Fprintf(w, "%s   (%s%s)\n", head, envName(name), def)
		for _, line := range wrap(f.Usage, 70) {
			fmt.Fprintf(w, "        %s\n", line)
		}
		fmt.Fprintf(w, "        e.g. %s\n", d.example)
	}
	fmt.Fprintf(w, `
Exit status: 0 after a clean shutdown (SIGTERM or SIGINT: requests finish and
the local buffer is written), 1 if serving failed or buffered events could not
be written, 2 for bad flags or configuration.
`)
}

// wrap breaks text into lines of at most width characters, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	return append(lines, line)
}

// sizeValue is a byte count flag that takes 1048576, 512KiB, 1MiB or 2GiB.
type sizeValue int64

func (s *sizeValue) String() string {
	v := int64(*s)
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v >= u.n && v%u.n == 0 {
			return strconv.FormatInt(v/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatInt(v, 10)
}

func (s *sizeValue) Set(text string) error {
	t := strings.TrimSpace(text)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.n
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<50)/mult {
		return errors.New("want a positive size such as 1048576, 512KiB or 1MiB")
	}
	*s = sizeValue(n * mult)
	return nil
}
