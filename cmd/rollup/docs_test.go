//go:build unix

package main

import (
	"context"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestDocsCommandsRun runs scripts/check-docs.sh: every local shell command
// in the ```sh blocks of README.md, docs/*.md and infra/README.md runs as
// written against a small demo store (the script prints what it skips and
// why: AWS, the network, make test itself). It builds bin/ and runs make
// demo, so it is skipped with -short.
func TestDocsCommandsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds bin/ and a demo store; skipped with -short")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "scripts/check-docs.sh")
	cmd.Dir = "../.."
	// Its own process group, so a timeout also stops a collector the
	// script started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/check-docs.sh: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
