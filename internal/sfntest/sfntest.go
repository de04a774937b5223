// Package sfntest runs the nightly state machine for tests with the real
// States Language tools from npm: asl-validator checks a definition, and
// aws-local-stepfunctions (a TypeScript implementation of the States
// Language) executes it, each Task invoking its Lambda function through
// the AWS SDK at AWS_ENDPOINT_URL_LAMBDA (the Runtime Interface Emulator).
// Server is the Step Functions API in front of such executions, speaking
// its JSON protocol, for the client of rollup --dispatch sfn:.
package sfntest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	_ "embed"
)

//go:embed js/package.json
var packageJSON []byte

//go:embed js/package-lock.json
var packageLock []byte

//go:embed js/run.mjs
var runScript []byte

var (
	installOnce sync.Once
	installDir  string
	installErr  error
)

// Skip skips t where the tools cannot run: in -short mode and without
// node and npm on PATH (make test installs them; see scripts/ensure-node.sh).
func Skip(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("installs and runs the States Language tools (node)")
	}
	if runtime.GOOS != "linux" {
		t.Skip("runs with the Lambda emulator, on Linux")
	}
	for _, bin := range []string{"node", "npm"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is not on PATH: make test installs it (scripts/ensure-node.sh)", bin)
			}
			t.Skipf("%s is not on PATH (scripts/ensure-node.sh installs it)", bin)
		}
	}
}

// Install installs the pinned tools (js/package-lock.json, with npm ci)
// into a cache folder named by the lock file's hash, once per process and
// once per machine, and returns that folder.
func Install(t testing.TB) string {
	t.Helper()
	installOnce.Do(func() { installDir, installErr = install() })
	if installErr != nil {
		t.Fatal(installErr)
	}
	return installDir
}

func install() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	sum := sha256.Sum256(append(append([]byte{}, packageLock...), runScript...))
	dir := filepath.Join(cache, "littlewarehouse", "sfn-"+hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "aws-local-stepfunctions")); err == nil {
		return dir, nil
	}
	tmp := dir + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	for name, b := range map[string][]byte{"package.json": packageJSON, "package-lock.json": packageLock, "run.mjs": runScript} {
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
			return "", err
		}
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm ci of the States Language tools (asl-validator, aws-local-stepfunctions) in %s: %v\n%s", tmp, err, out)
	}
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// Validate runs asl-validator on definition; the error holds its report.
func Validate(t testing.TB, definition []byte) error {
	t.Helper()
	dir := Install(t)
	cmd := exec.Command(filepath.Join(dir, "node_modules", ".bin", "asl-validator"), "--json-path", writeDefinition(t, definition))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("asl-validator: %v\n%s", err, out)
	}
	return nil
}

// Event is one event of an execution's log (aws-local-stepfunctions'
// EventLog: type, timestamp, state and, for Map items, index).
type Event struct {
	Type  string          `json:"type"`
	State *EventState     `json:"state,omitempty"`
	Index *int            `json:"index,omitempty"`
	Error string          `json:"Error,omitempty"` // StateFailed, ExecutionFailed, MapIterationFailed
	Cause json.RawMessage `json:"Cause,omitempty"`
	Raw   json.RawMessage `json:"-"`
}

// EventState is the state an event is about.
type EventState struct {
	Name   string          `json:"name"`
	Type   string          `json:"type"`
	Input  json.RawMessage `json:"input,omitempty"`
	Output json.RawMessage `json:"output,omitempty"`
}

// Execution is what one execution did.
type Execution struct {
	Events []Event
	Output json.RawMessage // set if it succeeded
	Error  string          // set if it failed: the error's name
	Cause  string
	Log    string // the driver's whole output
}

// Run executes definition with input as the execution named name, every
// Task invoking its Resource at lambdaURL (AWS_ENDPOINT_URL_LAMBDA), and
// Retry pauses left out. It fails t only if the driver itself fails.
func Run(t testing.TB, definition []byte, input, name, lambdaURL string) *Execution {
	t.Helper()
	ex, err := run(Install(t), writeDefinition(t, definition), input, name, lambdaURL)
	if err != nil {
		t.Fatal(err)
	}
	return ex
}

func run(dir, defFile, input, name, lambdaURL string) (*Execution, error) {
	cmd := exec.Command("node", filepath.Join(dir, "run.mjs"), defFile, input, name)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "AWS_ENDPOINT_URL_LAMBDA="+lambdaURL, "AWS_REGION=us-east-1",
		"AWS_MAX_ATTEMPTS=1", "AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=SECRETTEST")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("aws-local-stepfunctions: %v\n%s%s", err, out, stderr.Bytes())
	}
	ex := &Execution{Log: string(out)}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var last map[string]json.RawMessage
	for sc.Scan() {
		var line map[string]json.RawMessage
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		if raw, ok := line["event"]; ok {
			var ev Event
			json.Unmarshal(raw, &ev)
			ev.Raw = raw
			ex.Events = append(ex.Events, ev)
			continue
		}
		last = line
	}
	switch {
	case last == nil:
		return nil, fmt.Errorf("aws-local-stepfunctions ended without an outcome:\n%s%s", out, stderr.Bytes())
	case last["output"] != nil:
		ex.Output = last["output"]
	default:
		json.Unmarshal(last["error"], &ex.Error)
		json.Unmarshal(last["cause"], &ex.Cause)
	}
	return ex, nil
}

// Count counts the events of type typ (and, if state is not "", about that
// state).
func (ex *Execution) Count(typ, state string) int {
	n := 0
	for _, ev := range ex.Events {
		if ev.Type == typ && (state == "" || (ev.State != nil && ev.State.Name == state)) {
			n++
		}
	}
	return n
}

// History is the event log, a line an event, for a person.
func (ex *Execution) History() string {
	var b strings.Builder
	for _, ev := range ex.Events {
		line := ev.Type
		if ev.State != nil {
			line += " " + ev.State.Name
		}
		if ev.Index != nil {
			line += fmt.Sprintf(" [item %d]", *ev.Index)
		}
		if ev.Error != "" {
			cause := string(ev.Cause)
			if len(cause) > 160 {
				cause = cause[:160] + "…"
			}
			line += " " + ev.Error + ": " + cause
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// writeDefinition writes definition to a file of t's and returns its path.
func writeDefinition(t testing.TB, definition []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "definition.json")
	if err := os.WriteFile(f, definition, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}
