// Package collector is the ingest HTTP API apps send events to: it checks
// each event against the raw schema (internal/event), stamps it with an
// event_id (UUIDv7) and received_at, and hands it to a Sink — a Firehose
// delivery stream, or the local stream that writes raw Parquet to a store.
//
// See docs/collector.md for running and configuring it.
package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	fh "github.com/aws/aws-sdk-go-v2/service/firehose"

	"github.com/littlewarehouse/warehouse/internal/firehose"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// ErrConfig is wrapped by errors about the configuration (exit code 2).
var ErrConfig = errors.New("invalid configuration")

// Config configures the collector. Zero fields take the values of
// DefaultConfig.
type Config struct {
	// Addr is the address to listen on, e.g. ":8080" or "127.0.0.1:0".
	Addr string

	// APIKeys are the keys accepted in X-Api-Key; several at once let a key
	// be rotated. NoAuth (local experiments only) accepts requests without.
	APIKeys []string
	NoAuth  bool
	// AllowedOrigins lists the browser origins (scheme://host[:port]) that
	// may call the API; "*" allows every origin. Empty refuses browsers.
	AllowedOrigins []string

	// MaxBodyBytes and MaxEvents bound one request (413 and 400 beyond).
	MaxBodyBytes int64
	MaxEvents    int
	// RatePerSecond and RateBurst shape the token bucket of each API key
	// (429 beyond); a negative RatePerSecond switches rate limiting off.
	RatePerSecond float64
	RateBurst     int
	// AuthFailures is how many failed authentications (a missing or wrong
	// X-Api-Key) a client — an IP address, an IPv6 /64 — may make at once;
	// they come back at AuthFailures per AuthFailureWindow. Past them its
	// requests get 429 with Retry-After without their key being checked. A
	// negative AuthFailures switches the limit off.
	AuthFailures      int
	AuthFailureWindow time.Duration

	// FirehoseStream, when set, sends events to that Firehose delivery
	// stream; Region and FirehoseEndpoint override the AWS SDK's defaults.
	FirehoseStream   string
	FirehoseEndpoint string
	Region           string

	// Otherwise the local delivery stream writes to Store (a path or URL,
	// see store.Open) as Stream, with Firehose's buffering hints.
	Store          string
	Stream         string
	BufferSize     int64
	BufferInterval time.Duration

	// Server timeouts. SinkTimeout bounds handing a request's events to the
	// sink and must be shorter than WriteTimeout; ShutdownTimeout bounds
	// draining requests and writing the local buffer at shutdown.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	SinkTimeout       time.Duration
	ShutdownTimeout   time.Duration

	// Logger receives JSON logs (default: JSON on stderr at Info).
	Logger *slog.Logger
	// Now is the clock for received_at and rate limits (default time.Now).
	Now func() time.Time
	// OnListen, if set, is called with the bound address before serving.
	OnListen func(net.Addr)
}

// DefaultConfig returns the defaults: the local stream under ./data with
// Firehose's default buffering hints (128 MiB, 900 s).
func DefaultConfig() Config {
	return Config{
		Addr:              ":8080",
		MaxBodyBytes:      1 << 20,
		MaxEvents:         500,
		RatePerSecond:     100,
		RateBurst:         200,
		AuthFailures:      20,
		AuthFailureWindow: time.Minute,
		Store:             "./data",
		Stream:            firehose.DefaultStream,
		BufferSize:        firehose.DefaultBufferSize,
		BufferInterval:    firehose.DefaultBufferInterval,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		SinkTimeout:       20 * time.Second,
		ShutdownTimeout:   30 * time.Second,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setDefault(&c.Addr, d.Addr)
	setDefault(&c.MaxBodyBytes, d.MaxBodyBytes)
	setDefault(&c.MaxEvents, d.MaxEvents)
	setDefault(&c.RatePerSecond, d.RatePerSecond)
	setDefault(&c.RateBurst, d.RateBurst)
	setDefault(&c.AuthFailures, d.AuthFailures)
	setDefault(&c.AuthFailureWindow, d.AuthFailureWindow)
	setDefault(&c.Store, d.Store)
	setDefault(&c.Stream, d.Stream)
	setDefault(&c.BufferSize, d.BufferSize)
	setDefault(&c.BufferInterval, d.BufferInterval)
	setDefault(&c.ReadHeaderTimeout, d.ReadHeaderTimeout)
	setDefault(&c.ReadTimeout, d.ReadTimeout)
	setDefault(&c.WriteTimeout, d.WriteTimeout)
	setDefault(&c.IdleTimeout, d.IdleTimeout)
	setDefault(&c.SinkTimeout, d.SinkTimeout)
	setDefault(&c.ShutdownTimeout, d.ShutdownTimeout)
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func setDefault[T comparable](p *T, d T) {
	var zero T
	if *p == zero {
		*p = d
	}
}

// validateHTTP checks the fields the handler uses.
func (c Config) validateHTTP() error {
	var errs []error
	if c.MaxBodyBytes < 0 {
		errs = append(errs, errors.New("max body must be positive"))
	}
	if c.MaxEvents < 0 {
		errs = append(errs, errors.New("max events must be positive"))
	}
	if c.RatePerSecond > 0 && c.RateBurst < 1 {
		errs = append(errs, errors.New("rate burst must be at least 1"))
	}
	if c.AuthFailureWindow < 0 {
		errs = append(errs, errors.New("auth failure window must be positive"))
	}
	if !c.NoAuth && len(c.APIKeys) == 0 {
		errs = append(errs, errors.New("no api keys: set COLLECTOR_API_KEYS or --api-keys-file (or --no-auth for a local experiment)"))
	}
	if c.SinkTimeout >= c.WriteTimeout {
		errs = append(errs, fmt.Errorf("sink timeout %s must be shorter than write timeout %s", c.SinkTimeout, c.WriteTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// Run serves the collector until ctx is done, then shuts down gracefully:
// it stops accepting connections, lets requests in flight finish, and
// writes whatever the local stream buffered. It returns nil after a clean
// shutdown, an error wrapping ErrConfig for a bad configuration, and any
// other error when serving failed or buffered events could not be written.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	if err := cfg.validateHTTP(); err != nil {
		return err
	}
	log := cfg.Logger
	if cfg.NoAuth {
		log.Warn("API keys are off (--no-auth): anyone who reaches this address can send events")
	}

	sink, closeSink, err := openSink(ctx, cfg)
	if err != nil {
		return err
	}
	h, err := NewHandler(cfg, sink)
	if err != nil {
		closeSink(ctx)
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		closeSink(ctx)
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if cfg.OnListen != nil {
		cfg.OnListen(ln.Addr())
	}
	log.Info("collector listening", "addr", ln.Addr().String(), "sink", sinkName(cfg),
		"api_keys", len(cfg.APIKeys), "allowed_origins", len(cfg.AllowedOrigins))

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}

	log.Info("collector shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	shutErr := srv.Shutdown(sctx)
	if shutErr != nil {
		shutErr = fmt.Errorf("drain requests: %w", shutErr)
	}
	closeErr := closeSink(sctx)
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	if err := errors.Join(serveErr, shutErr, closeErr); err != nil {
		return err
	}
	log.Info("collector stopped")
	return nil
}

func sinkName(cfg Config) string {
	if cfg.FirehoseStream != "" {
		return "firehose:" + cfg.FirehoseStream
	}
	return "local:" + cfg.Store
}

// openSink returns the configured sink and the function that closes it.
func openSink(ctx context.Context, cfg Config) (Sink, func(context.Context) error, error) {
	if cfg.FirehoseStream != "" {
		var opts []func(*awsconfig.LoadOptions) error
		if cfg.Region != "" {
			opts = append(opts, awsconfig.WithRegion(cfg.Region))
		}
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: aws: %w", ErrConfig, err)
		}
		if awsCfg.Region == "" {
			return nil, nil, fmt.Errorf("%w: no AWS region for Firehose stream %s: set --region or AWS_REGION", ErrConfig, cfg.FirehoseStream)
		}
		api := fh.NewFromConfig(awsCfg, func(o *fh.Options) {
			if cfg.FirehoseEndpoint != "" {
				o.BaseEndpoint = aws.String(cfg.FirehoseEndpoint)
			}
		})
		c := firehose.NewClient(api, cfg.FirehoseStream, firehose.ClientOptions{Logger: cfg.Logger})
		return c, func(context.Context) error { return nil }, nil
	}
	st, err := store.Open(ctx, cfg.Store, store.Options{Create: true})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	l, err := firehose.NewLocal(firehose.LocalConfig{
		Store:          st,
		Stream:         cfg.Stream,
		BufferSize:     cfg.BufferSize,
		BufferInterval: cfg.BufferInterval,
		Now:            cfg.Now,
		Logger:         cfg.Logger,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return l, l.Close, nil
}
