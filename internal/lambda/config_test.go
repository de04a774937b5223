package lambda

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigFromEnvDefaults(t *testing.T) {
	c, err := ConfigFromEnv(env(map[string]string{
		EnvStore: "s3://lake/warehouse",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Location != time.UTC || c.MaxLateness != 7*24*time.Hour || c.Parallel != 8 || c.RawPrefix != "raw/" ||
		c.GracePeriod != 6*time.Hour || c.GlueDatabase != "" || c.HTMLReport {
		t.Errorf("defaults: %+v", c)
	}
	if r := c.Rules(); r.MaxLateness != c.MaxLateness || r.Loc != time.UTC {
		t.Errorf("rules: %+v", r)
	}
}

func TestConfigFromEnvAll(t *testing.T) {
	c, err := ConfigFromEnv(env(map[string]string{
		EnvStore: "s3://lake/", EnvTZ: "Pacific/Auckland", EnvMaxLateness: "3d",
		EnvParallel: "16", EnvRawPrefix: "firehose/events", EnvGracePeriod: "0", EnvGlueDatabase: "warehouse",
		EnvReport: "true",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Location.String() != "Pacific/Auckland" || c.MaxLateness != 72*time.Hour || c.Parallel != 16 ||
		c.RawPrefix != "firehose/events/" || c.GracePeriod != 0 || c.GlueDatabase != "warehouse" || !c.HTMLReport {
		t.Errorf("config: %+v", c)
	}
	// A local store has no grace period; surrounding spaces do not count.
	c, err = ConfigFromEnv(env(map[string]string{EnvStore: " /tmp/lake ", EnvMaxLateness: "90m", EnvReport: "false"}))
	if err != nil || c.Store != "/tmp/lake" || c.GracePeriod != 0 || c.MaxLateness != 90*time.Minute || c.HTMLReport {
		t.Errorf("local store: %+v, %v", c, err)
	}
}

func TestConfigFromEnvErrors(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want []string // substrings of the error, each naming its variable
	}{
		{map[string]string{}, []string{"LW_STORE is not set"}},
		// Every problem at once.
		{map[string]string{EnvTZ: "Mars/Olympus", EnvParallel: "0"}, []string{"LW_STORE is not set", `LW_TZ="Mars/Olympus"`, "LW_PARALLEL"}},
		{map[string]string{EnvStore: "s3://"}, []string{"LW_STORE", "no bucket"}},
		{map[string]string{EnvStore: "gs://b/p"}, []string{`LW_STORE="gs://b/p"`}},
		{map[string]string{EnvStore: "s3://b", EnvTZ: "Mars/Olympus"}, []string{`LW_TZ="Mars/Olympus"`}},
		{map[string]string{EnvStore: "s3://b", EnvTZ: "Local"}, []string{`LW_TZ="Local"`}},
		{map[string]string{EnvStore: "s3://b", EnvMaxLateness: "a week"}, []string{"LW_MAX_LATENESS"}},
		{map[string]string{EnvStore: "s3://b", EnvMaxLateness: "-1h"}, []string{"LW_MAX_LATENESS"}},
		{map[string]string{EnvStore: "s3://b", EnvParallel: "0"}, []string{"LW_PARALLEL"}},
		{map[string]string{EnvStore: "s3://b", EnvParallel: "eight"}, []string{"LW_PARALLEL"}},
		{map[string]string{EnvStore: "s3://b", EnvRawPrefix: "/abs"}, []string{"LW_RAW_PREFIX"}},
		{map[string]string{EnvStore: "s3://b", EnvGracePeriod: "-5m"}, []string{"LW_GRACE_PERIOD"}},
		{map[string]string{EnvStore: "s3://b", EnvReport: "yes"}, []string{`LW_REPORT="yes"`, "true or false"}},
	}
	for _, c := range cases {
		_, err := ConfigFromEnv(env(c.env))
		var ce *ConfigError
		if !errors.As(err, &ce) {
			t.Errorf("%v: err = %v, want a ConfigError", c.env, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: %q does not say %q", c.env, err, w)
			}
		}
	}
}

// TestNewHandlerFromEnv: the handler opens the store LW_STORE names; a bad
// environment is a ConfigError naming every problem.
func TestNewHandlerFromEnv(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	h, err := NewHandlerFromEnv(ctx, env(map[string]string{EnvStore: dir, EnvParallel: "3"}), Deps{})
	if err != nil {
		t.Fatal(err)
	}
	if h.env.Config.Parallel != 3 || h.env.Store == nil || h.env.Log == nil || h.env.Deps.Now == nil {
		t.Errorf("handler env: %+v", h.env)
	}
	if err := h.env.Store.Put(ctx, "x", []byte("y")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "x")); err != nil || string(b) != "y" {
		t.Errorf("the handler's store is not %s: %q, %v", dir, b, err)
	}
	_, err = NewHandlerFromEnv(ctx, env(map[string]string{EnvTZ: "Mars/Olympus"}), Deps{})
	var ce *ConfigError
	if !errors.As(err, &ce) || len(ce.Errs) != 2 {
		t.Errorf("bad environment: %v; want a ConfigError with 2 problems", err)
	}
}
