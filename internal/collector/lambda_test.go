package collector

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/littlewarehouse/warehouse/internal/ssmtest"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLambdaConfigFromEnv(t *testing.T) {
	cfg, err := LambdaConfigFromEnv(envOf(map[string]string{
		EnvFirehoseStream: "prod-events", EnvAPIKeysParameter: "/lw/collector/api-keys",
		EnvAllowedOrigins: " https://app.example.com, https://www.example.com ,", EnvRate: "20", EnvBurst: "40",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.FirehoseStream != "prod-events" || cfg.APIKeysParameter != "/lw/collector/api-keys" ||
		strings.Join(cfg.AllowedOrigins, " ") != "https://app.example.com https://www.example.com" ||
		cfg.RatePerSecond != 20 || cfg.RateBurst != 40 || len(cfg.APIKeys) != 0 {
		t.Errorf("config %+v", cfg)
	}

	cfg, err = LambdaConfigFromEnv(envOf(map[string]string{EnvFirehoseStream: "s", EnvAPIKeysParameter: "/p", EnvRate: "0"}))
	if err != nil || cfg.RatePerSecond >= 0 || cfg.RateBurst != DefaultConfig().RateBurst || len(cfg.AllowedOrigins) != 0 {
		t.Errorf("LW_RATE=0: %+v, %v; want the limiter off and default burst", cfg, err)
	}

	_, err = LambdaConfigFromEnv(envOf(map[string]string{EnvRate: "fast", EnvBurst: "0"}))
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("error %v does not wrap ErrConfig", err)
	}
	for _, want := range []string{EnvFirehoseStream, EnvAPIKeysParameter, EnvRate, EnvBurst} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestKeysFromParameter(t *testing.T) {
	fake := ssmtest.NewServer(map[string]string{
		"/lw/keys":  key1 + "," + key2 + "\n# retired below\n",
		"/lw/empty": " # nothing\n",
	})
	defer fake.Close()
	ctx := context.Background()
	keys, err := KeysFromParameter(ctx, fake.SDKClient(), "/lw/keys")
	if err != nil || strings.Join(keys, " ") != key1+" "+key2 {
		t.Fatalf("keys %v, %v", keys, err)
	}
	if c := fake.Calls(); len(c) != 1 || !c[0].WithDecryption {
		t.Errorf("calls %+v, want one GetParameter WithDecryption", c)
	}
	for _, name := range []string{"/lw/missing", "/lw/empty"} {
		_, err := KeysFromParameter(ctx, fake.SDKClient(), name)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v, want one naming the parameter", name, err)
		}
	}
}

// TestNewLambdaColdStart: the cold start reads the keys through the SDK's
// standard endpoint variable, and says what is wrong without a key in the
// log or the error.
func TestNewLambdaColdStart(t *testing.T) {
	awsTestEnv(t)
	t.Setenv("AWS_REGION", "eu-west-1")
	fake := ssmtest.NewServer(map[string]string{"/lw/keys": key1, "/lw/weak": "short-key"})
	defer fake.Close()
	t.Setenv("AWS_ENDPOINT_URL_SSM", fake.URL)
	var logs bytes.Buffer
	cfg := LambdaConfig{Config: Config{FirehoseStream: "s", Logger: slog.New(slog.NewJSONHandler(&logs, nil))}, APIKeysParameter: "/lw/keys"}
	fn, err := NewLambda(context.Background(), cfg)
	if err != nil || fn == nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "collector function ready") || strings.Contains(logs.String(), key1) {
		t.Errorf("cold start log: %s", logs.String())
	}
	cfg.APIKeysParameter = "/lw/weak"
	_, err = NewLambda(context.Background(), cfg)
	if !errors.Is(err, ErrConfig) || strings.Contains(err.Error(), "short-key") {
		t.Errorf("weak key: %v; want ErrConfig without the key", err)
	}
	cfg.APIKeysParameter = "/lw/missing"
	if _, err = NewLambda(context.Background(), cfg); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "/lw/missing") {
		t.Errorf("missing parameter: %v", err)
	}
}
