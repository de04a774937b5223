package sfntest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// Server is the Step Functions API (the JSON 1.0 protocol: POST /, an
// X-Amz-Target of AWSStepFunctions.<Operation>) for one state machine,
// whose executions run for real (Run: aws-local-stepfunctions invoking the
// functions at LambdaURL). It serves StartExecution and DescribeExecution
// with their documented limits and errors: an unknown state machine
// (StateMachineDoesNotExist), an execution name of 1 to 80 characters
// without whitespace, wildcards or control characters (InvalidName), an
// input that is JSON of at most 256 KiB (InvalidExecutionInput), a name
// used before with another input (ExecutionAlreadyExists), an unknown
// execution (ExecutionDoesNotExist).
type Server struct {
	URL        string
	Machine    string // the state machine's ARN
	Definition []byte
	LambdaURL  string

	dir     string // the installed tools
	defFile string // Definition, written once
	mu      sync.Mutex
	execs   map[string]*execution // by ARN
	wg      sync.WaitGroup
}

type execution struct {
	arn, name, input string
	started, stopped time.Time
	done             bool
	result           *Execution
	err              error
}

// MaxInput is Step Functions' limit on an execution's input, in bytes.
const MaxInput = 256 << 10

var badName = regexp.MustCompile(`[\s<>{}\[\]?*"#%\\^|~` + "`" + `$&,;:/\x00-\x1f\x7f-\x9f]`)

// NewServer starts the API for the state machine machine (an ARN) running
// definition; the test's cleanup waits for the executions it started.
func NewServer(t testing.TB, machine string, definition []byte, lambdaURL string) *Server {
	s := &Server{Machine: machine, Definition: definition, LambdaURL: lambdaURL, dir: Install(t), execs: map[string]*execution{}}
	s.defFile = writeDefinition(t, definition)
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() { s.wg.Wait(); srv.Close() })
	s.URL = srv.URL
	return s
}

// Execution returns what the execution named name did, once it ended.
func (s *Server) Execution(name string) *Execution {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.execs {
		if e.name == name && e.done {
			return e.result
		}
	}
	return nil
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-amz-json-1.0" {
		apiError(w, http.StatusBadRequest, "SerializationException", "want a POST of application/x-amz-json-1.0")
		return
	}
	switch r.Header.Get("X-Amz-Target") {
	case "AWSStepFunctions.StartExecution":
		s.start(w, body)
	case "AWSStepFunctions.DescribeExecution":
		s.describe(w, body)
	default:
		apiError(w, http.StatusBadRequest, "UnknownOperationException", "operation "+r.Header.Get("X-Amz-Target")+" is not served here")
	}
}

func (s *Server) start(w http.ResponseWriter, body []byte) {
	var in struct {
		StateMachineArn string  `json:"stateMachineArn"`
		Name            *string `json:"name"`
		Input           *string `json:"input"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		apiError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	name, input := "", "{}"
	if in.Name != nil {
		name = *in.Name
	}
	if in.Input != nil {
		input = *in.Input
	}
	switch {
	case in.StateMachineArn != s.Machine:
		apiError(w, http.StatusBadRequest, "StateMachineDoesNotExist", "State Machine Does Not Exist: '"+in.StateMachineArn+"'")
		return
	case name == "":
		name = fmt.Sprintf("exec-%d", time.Now().UnixNano())
	case utf8.RuneCountInString(name) > 80 || badName.MatchString(name):
		apiError(w, http.StatusBadRequest, "InvalidName", "Invalid Name: '"+name+"'")
		return
	}
	if len(input) > MaxInput || !json.Valid([]byte(input)) {
		apiError(w, http.StatusBadRequest, "InvalidExecutionInput", fmt.Sprintf("Invalid State Machine Execution Input (%d bytes; at most %d of JSON)", len(input), MaxInput))
		return
	}
	arn := fmt.Sprintf("arn:aws:states:us-east-1:123456789012:execution:%s:%s", machineName(s.Machine), name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.execs[arn]; ok {
		if e.input != input || e.done {
			apiError(w, http.StatusBadRequest, "ExecutionAlreadyExists", "Execution Already Exists: '"+arn+"'")
			return
		}
	} else {
		e := &execution{arn: arn, name: name, input: input, started: time.Now()}
		s.execs[arn] = e
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			res, err := run(s.dir, s.defFile, input, name, s.LambdaURL)
			s.mu.Lock()
			e.result, e.err, e.done, e.stopped = res, err, true, time.Now()
			s.mu.Unlock()
		}()
	}
	reply(w, map[string]any{"executionArn": arn, "startDate": epoch(s.execs[arn].started)})
}

func (s *Server) describe(w http.ResponseWriter, body []byte) {
	var in struct {
		ExecutionArn string `json:"executionArn"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		apiError(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.execs[in.ExecutionArn]
	if !ok {
		apiError(w, http.StatusBadRequest, "ExecutionDoesNotExist", "Execution Does Not Exist: '"+in.ExecutionArn+"'")
		return
	}
	out := map[string]any{"executionArn": e.arn, "stateMachineArn": s.Machine, "name": e.name, "status": "RUNNING",
		"startDate": epoch(e.started), "input": e.input}
	switch {
	case !e.done:
	case e.err != nil:
		out["status"], out["error"], out["cause"], out["stopDate"] = "FAILED", "States.Runtime", e.err.Error(), epoch(e.stopped)
	case e.result.Error != "":
		out["status"], out["error"], out["cause"], out["stopDate"] = "FAILED", e.result.Error, e.result.Cause, epoch(e.stopped)
	default:
		out["status"], out["output"], out["stopDate"] = "SUCCEEDED", string(e.result.Output), epoch(e.stopped)
	}
	reply(w, out)
}

func machineName(arn string) string {
	for i := len(arn) - 1; i >= 0; i-- {
		if arn[i] == ':' {
			return arn[i+1:]
		}
	}
	return arn
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	json.NewEncoder(w).Encode(v)
}

func apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}
