package lambda

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigFromEnvDefaults(t *testing.T) {
	c, err := ConfigFromEnv(env(map[string]string{
		EnvRole: "coordinator", EnvStore: "s3://lake/warehouse", EnvWorkerFunction: "rollup-worker",
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
		EnvRole: "worker", EnvStore: "s3://lake/", EnvTZ: "Pacific/Auckland", EnvMaxLateness: "3d",
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
	// A worker needs no worker function; a local store has no grace period.
	c, err = ConfigFromEnv(env(map[string]string{EnvRole: "worker", EnvStore: "/tmp/lake", EnvMaxLateness: "90m"}))
	if err != nil || c.GracePeriod != 0 || c.MaxLateness != 90*time.Minute {
		t.Errorf("local worker: %+v, %v", c, err)
	}
}

func TestConfigFromEnvErrors(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want []string // substrings of the error, each naming its variable
	}{
		{map[string]string{}, []string{"LW_ROLE is not set", "LW_STORE is not set"}}, // every problem at once
		{map[string]string{EnvRole: "boss", EnvStore: "s3://b"}, []string{`LW_ROLE="boss"`}},
		{map[string]string{EnvRole: "coordinator", EnvStore: "s3://b"}, []string{"LW_WORKER_FUNCTION is not set"}},
		{map[string]string{EnvRole: "worker", EnvStore: "s3://"}, []string{"LW_STORE", "no bucket"}},
		{map[string]string{EnvRole: "worker", EnvStore: "gs://b/p"}, []string{`LW_STORE="gs://b/p"`}},
		{map[string]string{EnvRole: "worker", EnvStore: "s3://b", EnvTZ: "Mars/Olympus"}, []string{`LW_TZ="Mars/Olympus"`}},
		{map[string]string{EnvRole: "worker", EnvStore: "s3://b", EnvTZ: "Local"}, []string{`LW_TZ="Local"`}},
		{map[string]string{EnvRole: "worker", EnvStore: "s3://b", EnvMaxLateness: "a week"}, []string{"LW_MAX_LATENESS"}},
		{map[string]string{EnvRole: "worker", EnvStore: "s3://b", EnvMaxLateness: "-1h"}, []string{"LW_MAX_LATENESS"}},
		{map[string]string{EnvRole: "worker", EnvStore: "s3://b", EnvParallel: "0"}, []string{"LW_PARALLEL"}},
		{map[string]string{EnvRole: "worker", EnvStore: "s3://b", EnvParallel: "eight"}, []string{"LW_PARALLEL"}},
		{map[string]string{EnvRole: "worker", EnvStore: "s3://b", EnvRawPrefix: "/abs"}, []string{"LW_RAW_PREFIX"}},
		{map[string]string{EnvRole: "worker", EnvStore: "s3://b", EnvGracePeriod: "-5m"}, []string{"LW_GRACE_PERIOD"}},
		{map[string]string{EnvRole: "worker", EnvStore: "s3://b", EnvReport: "yes"}, []string{`LW_REPORT="yes"`, "true or false"}},
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
