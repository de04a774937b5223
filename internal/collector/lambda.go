package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	fh "github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/littlewarehouse/warehouse/internal/firehose"
)

// Environment variables of the collector function (cmd/collector-lambda),
// set by the stack (infra). None of them holds a key: the keys live in the
// SSM parameter named by EnvAPIKeysParameter.
const (
	// EnvFirehoseStream is the delivery stream the events go to (required).
	EnvFirehoseStream = "LW_FIREHOSE_STREAM"
	// EnvAPIKeysParameter is the name of the SSM parameter (a SecureString)
	// holding the API keys, comma- or newline-separated (required).
	EnvAPIKeysParameter = "LW_API_KEYS_PARAMETER"
	// EnvAllowedOrigins is the CORS allow-list, comma-separated; "*"
	// allows any origin; empty refuses browsers (Config.AllowedOrigins).
	EnvAllowedOrigins = "LW_ALLOWED_ORIGINS"
	// EnvRate and EnvBurst shape each key's token bucket (requests a second
	// and burst, Config.RatePerSecond and RateBurst) in one execution
	// environment; EnvRate 0 switches the limiter off. Empty: the defaults.
	EnvRate  = "LW_RATE"
	EnvBurst = "LW_BURST"
)

// LambdaConfig configures the collector function.
type LambdaConfig struct {
	// Config holds the HTTP settings (origins, limits, logger) and
	// FirehoseStream; its APIKeys are filled from APIKeysParameter at cold
	// start. The local stream is not used on Lambda.
	Config
	// APIKeysParameter is the name of the SSM parameter with the keys.
	APIKeysParameter string
}

// LambdaConfigFromEnv reads the collector function's configuration from
// its environment (the Env* variables). Errors wrap ErrConfig and name the
// variable.
func LambdaConfigFromEnv(getenv func(string) string) (LambdaConfig, error) {
	cfg := LambdaConfig{Config: DefaultConfig()}
	cfg.FirehoseStream = strings.TrimSpace(getenv(EnvFirehoseStream))
	cfg.APIKeysParameter = strings.TrimSpace(getenv(EnvAPIKeysParameter))
	var errs []error
	if cfg.FirehoseStream == "" {
		errs = append(errs, fmt.Errorf("%s is not set: the delivery stream to send events to", EnvFirehoseStream))
	}
	if cfg.APIKeysParameter == "" {
		errs = append(errs, fmt.Errorf("%s is not set: the SSM parameter holding the API keys", EnvAPIKeysParameter))
	}
	for _, o := range strings.Split(getenv(EnvAllowedOrigins), ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.AllowedOrigins = append(cfg.AllowedOrigins, o)
		}
	}
	if v := strings.TrimSpace(getenv(EnvRate)); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		switch {
		case err != nil || r < 0:
			errs = append(errs, fmt.Errorf("%s=%q: want requests a second, 0 or more", EnvRate, v))
		case r == 0:
			cfg.RatePerSecond = -1 // off
		default:
			cfg.RatePerSecond = r
		}
	}
	if v := strings.TrimSpace(getenv(EnvBurst)); v != "" {
		b, err := strconv.Atoi(v)
		if err != nil || b < 1 {
			errs = append(errs, fmt.Errorf("%s=%q: want a whole number, 1 or more", EnvBurst, v))
		}
		cfg.RateBurst = b
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return cfg, nil
}

// ParameterAPI is the part of the SSM client that KeysFromParameter uses;
// *ssm.Client (aws-sdk-go-v2) implements it.
type ParameterAPI interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

var _ ParameterAPI = (*ssm.Client)(nil)

// KeysFromParameter reads the API keys from the SSM parameter name, with
// decryption (a SecureString; a plain String works too), and splits them
// as ParseKeys does. The keys are returned, never logged, and never part
// of an error: a missing parameter, a denied read or an empty value is an
// error that names only the parameter.
func KeysFromParameter(ctx context.Context, api ParameterAPI, name string) ([]string, error) {
	out, err := api.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name), WithDecryption: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("read api keys from SSM parameter %s: %w", name, err)
	}
	if out.Parameter == nil || out.Parameter.Value == nil {
		return nil, fmt.Errorf("read api keys from SSM parameter %s: no value", name)
	}
	keys := ParseKeys(*out.Parameter.Value)
	if len(keys) == 0 {
		return nil, fmt.Errorf("SSM parameter %s holds no api keys", name)
	}
	return keys, nil
}

// NewLambda does the collector function's cold start: it loads the AWS
// configuration the usual way (region, credentials, and endpoints from
// AWS_ENDPOINT_URL_SSM and AWS_ENDPOINT_URL_FIREHOSE), reads the API keys
// from cfg.APIKeysParameter, and returns the collector's Handler over the
// Firehose stream, served as a function URL. Keys are read once: a changed
// parameter takes effect in new execution environments (see
// infra/README.md for rotating a key). Errors about the configuration or
// the keys wrap ErrConfig.
func NewLambda(ctx context.Context, cfg LambdaConfig) (*FunctionURL, error) {
	c := cfg.Config.withDefaults()
	if c.FirehoseStream == "" || cfg.APIKeysParameter == "" {
		return nil, fmt.Errorf("%w: the collector function needs a Firehose stream and an API keys parameter", ErrConfig)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: aws: %w", ErrConfig, err)
	}
	if awsCfg.Region == "" {
		return nil, fmt.Errorf("%w: no AWS region: set AWS_REGION", ErrConfig)
	}
	keys, err := KeysFromParameter(ctx, ssm.NewFromConfig(awsCfg), cfg.APIKeysParameter)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c.APIKeys, c.NoAuth = keys, false
	sink := firehose.NewClient(fh.NewFromConfig(awsCfg), c.FirehoseStream, firehose.ClientOptions{Logger: c.Logger})
	h, err := NewHandler(c, sink)
	if err != nil {
		return nil, err
	}
	rate := slog.Float64("rate", c.RatePerSecond)
	if c.RatePerSecond < 0 {
		rate = slog.String("rate", "off")
	}
	c.Logger.Info("collector function ready", "sink", sinkName(c), "api_keys_parameter", cfg.APIKeysParameter,
		"api_keys", len(keys), "allowed_origins", len(c.AllowedOrigins), rate, "burst", c.RateBurst)
	return &FunctionURL{Handler: h}, nil
}
