package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/littlewarehouse/warehouse/internal/collector"
	"github.com/littlewarehouse/warehouse/internal/event"
	"github.com/littlewarehouse/warehouse/internal/store"
)

// TestMain lets the test binary be the collector itself, so a test can run
// it as a process and send it SIGTERM.
func TestMain(m *testing.M) {
	if os.Getenv("COLLECTOR_TEST_BE_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestHelpExplainsEveryFlagWithAnExample(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, env(nil), &out); code != exitOK {
		t.Fatalf("--help exits %d", code)
	}
	help := out.String()
	for name, d := range docs {
		if !strings.Contains(help, "--"+name) || !strings.Contains(help, "e.g. "+d.example) || !strings.Contains(help, envName(name)) {
			t.Errorf("help does not explain --%s with its example and variable", name)
		}
	}
	if n := strings.Count(help, "\n  --"); n != len(docs) {
		t.Errorf("help lists %d flags, docs has %d: a flag lacks a doc or the reverse", n, len(docs))
	}
	for _, s := range []string{"COLLECTOR_API_KEYS", "POST /v1/events", "Exit status"} {
		if !strings.Contains(help, s) {
			t.Errorf("help lacks %q", s)
		}
	}
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	keysFile := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(keysFile, []byte("# rotated in May\nfile-key-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{
		"COLLECTOR_API_KEYS":        "env-key-0123456789abcdef, env-key-2-0123456789abcdef",
		"COLLECTOR_BUFFER_INTERVAL": "10s",
		"COLLECTOR_ADDR":            "127.0.0.1:9999",
		"COLLECTOR_MAX_BODY":        "512KiB",
		"COLLECTOR_AUTH_FAILURES":   "5",
	}
	cfg, err := parseConfig([]string{
		"--addr", "127.0.0.1:8081", "--api-keys-file", keysFile, "--buffer-size", "1MiB",
		"--allowed-origins", "https://a.example.com, https://b.example.com", "--rate", "0",
		"--auth-failure-window", "5m",
	}, env(vars), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.1:8081" {
		t.Errorf("Addr %q: the flag must win over the environment", cfg.Addr)
	}
	if want := []string{"env-key-0123456789abcdef", "env-key-2-0123456789abcdef", "file-key-0123456789abcdef"}; !slices.Equal(cfg.APIKeys, want) {
		t.Errorf("APIKeys %q, want %q", cfg.APIKeys, want)
	}
	if cfg.BufferInterval != 10*time.Second || cfg.BufferSize != 1<<20 || cfg.MaxBodyBytes != 512<<10 {
		t.Errorf("BufferInterval %s, BufferSize %d, MaxBodyBytes %d", cfg.BufferInterval, cfg.BufferSize, cfg.MaxBodyBytes)
	}
	if !slices.Equal(cfg.AllowedOrigins, []string{"https://a.example.com", "https://b.example.com"}) {
		t.Errorf("AllowedOrigins %q", cfg.AllowedOrigins)
	}
	if cfg.RatePerSecond >= 0 {
		t.Errorf("--rate 0 gives RatePerSecond %v, want rate limiting off", cfg.RatePerSecond)
	}
	if cfg.AuthFailures != 5 || cfg.AuthFailureWindow != 5*time.Minute {
		t.Errorf("AuthFailures %d per %s, want 5 per 5m", cfg.AuthFailures, cfg.AuthFailureWindow)
	}
	if off, err := parseConfig([]string{"--auth-failures", "0"}, env(nil), io.Discard); err != nil || off.AuthFailures >= 0 {
		t.Errorf("--auth-failures 0 gives AuthFailures %d (%v), want the limit off", off.AuthFailures, err)
	}
	d := collector.DefaultConfig()
	if cfg.MaxEvents != d.MaxEvents || cfg.WriteTimeout != d.WriteTimeout || cfg.Store != d.Store {
		t.Errorf("defaults not kept: %+v", cfg)
	}
}

func TestBadInvocationsExit2(t *testing.T) {
	t.Parallel()
	keys := map[string]string{"COLLECTOR_API_KEYS": "k-0123456789abcdef"}
	tests := []struct {
		name string
		args []string
		vars map[string]string
	}{
		{"an unknown flag", []string{"--nope"}, keys},
		{"a bad size", []string{"--buffer-size", "lots"}, keys},
		{"a bad variable", nil, map[string]string{"COLLECTOR_API_KEYS": "k-0123456789abcdef", "COLLECTOR_MAX_EVENTS": "many"}},
		{"a stray argument", []string{"serve"}, keys},
		{"no api keys", []string{"--addr", "127.0.0.1:0"}, nil},
		{"a short api key", []string{"--addr", "127.0.0.1:0"}, map[string]string{"COLLECTOR_API_KEYS": "short"}},
		{"a bad log level", []string{"--log-level", "loud"}, keys},
		{"negative auth failures", []string{"--auth-failures", "-1"}, keys},
		{"a zero auth failure window", []string{"--auth-failure-window", "0s"}, keys},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			args := append([]string{"--store", t.TempDir()}, tc.args...)
			if code := run(context.Background(), args, env(tc.vars), &out); code != exitUsage {
				t.Errorf("exit %d, want %d; output:\n%s", code, exitUsage, out.String())
			}
		})
	}
}

func TestSizeValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
	}{{"1048576", 1 << 20}, {"512KiB", 512 << 10}, {"128MiB", 128 << 20}, {"2GiB", 2 << 30}, {"10B", 10}}
	for _, tc := range tests {
		var s sizeValue
		if err := s.Set(tc.in); err != nil || int64(s) != tc.want {
			t.Errorf("Set(%q) = %d, %v; want %d", tc.in, s, err, tc.want)
		}
	}
	for _, bad := range []string{"", "0", "-1", "1.5MiB", "1MB", "lots"} {
		var s sizeValue
		if err := s.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}

// TestSIGTERMWritesTheBuffer runs the collector as a process with the local
// stream and a buffer that would wait 15 minutes, posts an event, sends
// SIGTERM, and finds the event in raw Parquet after a clean exit.
func TestSIGTERMWritesTheBuffer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a process")
	}
	t.Parallel()
	dir := t.TempDir()
	const key = "proc-key-0123456789abcdef"
	cmd := exec.Command(os.Args[0], "--addr", "127.0.0.1:0", "--store", dir, "--stream-name", "proc")
	cmd.Env = append(os.Environ(), "COLLECTOR_TEST_BE_MAIN=1", "COLLECTOR_API_KEYS="+key)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	// The first log line names the address.
	lines := bufio.NewScanner(stderr)
	var addr string
	for addr == "" && lines.Scan() {
		var l struct{ Msg, Addr string }
		if json.Unmarshal(lines.Bytes(), &l) == nil && l.Msg == "collector listening" {
			addr = l.Addr
		}
	}
	if addr == "" {
		t.Fatal("collector did not say where it listens")
	}
	var logs bytes.Buffer
	copied := make(chan struct{})
	go func() {
		for lines.Scan() {
			logs.Write(lines.Bytes())
			logs.WriteByte('\n')
		}
		close(copied)
	}()

	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/events", strings.NewReader(`{"event_name":"app_open","device_id":"d-1"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Api-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var answer collector.Response
	json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(answer.Events) != 1 {
		t.Fatalf("POST: %d %+v", resp.StatusCode, answer)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { <-copied; done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("collector exited with %v; logs:\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("collector did not exit within 30s of SIGTERM")
	}

	st, err := store.OpenDir(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := st.List(context.Background(), "raw/")
	if err != nil || len(objs) != 1 {
		t.Fatalf("raw objects %+v, %v; want 1", objs, err)
	}
	r, err := st.Open(context.Background(), objs[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rows, err := parquet.Read[event.Raw](r, r.Size())
	if err != nil || len(rows) != 1 || rows[0].EventID != answer.Events[0].EventID || rows[0].DeviceID != "d-1" {
		t.Errorf("rows %+v, %v; want the accepted event %s", rows, err, answer.Events[0].EventID)
	}
}
