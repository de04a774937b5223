// Package rietest runs a Lambda bootstrap under the AWS Lambda Runtime
// Interface Emulator for tests: it builds the bootstrap as deployed,
// installs the pinned emulator with go install, starts it on free local
// ports and invokes the function over the emulator's Invoke API. Both
// Lambda binaries' tests (cmd/rollup-lambda, cmd/collector-lambda) use it.
package rietest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Version pins the emulator (the same as scripts/install-rie.sh).
const Version = "v0.0.0-20261030222936-bef5c4ba774d"

// Skip skips t where the emulator cannot run: in -short mode and off Linux.
func Skip(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds bootstrap and runs the Lambda emulator")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the Lambda emulator runs on Linux")
	}
}

// Build builds the main package pkg (a directory or import path, as go
// build takes it) as deployed: linux, static, no RPC, named bootstrap in
// dir. It returns the binary's path.
func Build(dir, pkg string) (string, error) {
	bin := filepath.Join(dir, "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bin, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build bootstrap of %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// Install returns the pinned emulator, installing it with go install (into
// a cache folder named by its version) if it is not there yet.
func Install(t testing.TB) (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = t.TempDir()
	}
	gobin := filepath.Join(dir, "littlewarehouse", "aws-lambda-rie@"+Version)
	bin := filepath.Join(gobin, "aws-lambda-rie")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	pkg := "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@" + Version
	cmd := exec.Command("go", "install", pkg)
	cmd.Dir = os.TempDir() // outside this module
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("the Lambda Runtime Interface Emulator is needed and could not be installed "+
			"(go install %s, GOBIN=%s): %v\n%s\n(install it by hand with scripts/install-rie.sh, or run go test -short to skip this test)",
			pkg, gobin, err, out)
	}
	return bin, nil
}

// Emulator is one aws-lambda-rie process serving a bootstrap.
type Emulator struct {
	Name string
	URL  string // base URL of the emulator's Invoke API
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Start starts the emulator rie serving bootstrap as the function name, on
// free 127.0.0.1 ports, with env (plus PATH, HOME and
// AWS_LAMBDA_FUNCTION_NAME) as the function's whole environment. It waits
// until the emulator listens; the test's cleanup stops it and, if the test
// failed, logs the function's output.
func Start(t testing.TB, rie, bootstrap, name string, env []string) *Emulator {
	t.Helper()
	addr, apiAddr := freePort(t), freePort(t)
	e := &Emulator{Name: name, URL: "http://" + addr, out: &syncBuffer{}, done: make(chan struct{})}
	e.cmd = exec.Command(rie, "--runtime-interface-emulator-address", addr, "--runtime-api-address", apiAddr, bootstrap)
	e.cmd.Dir = filepath.Dir(bootstrap)
	e.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AWS_LAMBDA_FUNCTION_NAME=" + name}, env...)
	e.cmd.Stdout, e.cmd.Stderr = e.out, e.out
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", rie, err)
	}
	go func() { e.cmd.Wait(); close(e.done) }()
	t.Cleanup(func() {
		e.Stop()
		if t.Failed() {
			t.Logf("output of the %s function:\n%s", e.Name, tail(e.Output(), 6000))
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return e
		}
		select {
		case <-e.done:
			t.Fatalf("the emulator for %s exited:\n%s", name, e.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the emulator for %s does not listen on %s:\n%s", name, addr, e.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Output is what the emulator and the function wrote so far.
func (e *Emulator) Output() string { return e.out.String() }

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// children returns the processes whose parent is pid (the emulator starts
// bootstrap in a process group of its own).
func children(pid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at the last ')'.
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, child)
		}
	}
	return out
}

// Kill kills bootstrap and the emulator with SIGKILL in the middle of
// whatever they do, as Lambda ends an invocation that ran out of time or
// memory. It fails t if no bootstrap process is running.
func (e *Emulator) Kill(t testing.TB) {
	t.Helper()
	kids := children(e.cmd.Process.Pid)
	if len(kids) == 0 {
		t.Fatalf("no bootstrap process under the %s emulator", e.Name)
	}
	for _, pid := range kids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	e.cmd.Process.Signal(syscall.SIGKILL)
	<-e.done
}

// Stop ends bootstrap and the emulator (SIGKILL, as Lambda ends an
// environment). Stopping twice is fine.
func (e *Emulator) Stop() {
	select {
	case <-e.done:
		return
	default:
	}
	for _, pid := range children(e.cmd.Process.Pid) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	e.cmd.Process.Signal(syscall.SIGKILL)
	<-e.done
}

// Post invokes the function with payload and returns the emulator's HTTP
// status and body: the function's result, or its error as JSON.
func (e *Emulator) Post(payload []byte) (int, string, error) {
	status, _, body, err := e.Do(payload)
	return status, body, err
}

// Do is Post that also returns the response's header (X-Amz-Function-Error
// says the function returned an error).
func (e *Emulator) Do(payload []byte) (int, http.Header, string, error) {
	resp, err := http.Post(e.URL+"/2015-03-31/functions/function/invocations", "application/json", bytes.NewReader(payload))
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}

// Invoke is Post that fails t if the invocation could not be made.
func (e *Emulator) Invoke(t testing.TB, payload []byte) (int, string) {
	t.Helper()
	status, body, err := e.Post(payload)
	if err != nil {
		t.Fatalf("invoke %s: %v", e.Name, err)
	}
	return status, body
}
