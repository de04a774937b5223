// Package firehosetest runs a fake Amazon Data Firehose for tests: an
// httptest server that speaks the PutRecordBatch operation of Firehose's
// JSON protocol (awsJson1_1), enforces its documented limits, fails chosen
// records the way Firehose does, and records what it delivered.
package firehosetest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	fh "github.com/aws/aws-sdk-go-v2/service/firehose"
)

// Limits the server enforces, from the PutRecordBatch API reference.
const (
	MaxRecords     = 500
	MaxBatchBytes  = 4 << 20
	MaxRecordBytes = 1000 << 10
)

// Options choose the failures the server injects.
type Options struct {
	// Stream is the only delivery stream that exists (default "events");
	// others get ResourceNotFoundException.
	Stream string
	// FailRecord, if set, is asked for each record of a call: seen is how
	// many times the same data came before (0 the first time). A record it
	// fails gets ErrorCode ServiceUnavailableException and is not delivered.
	FailRecord func(data []byte, seen int) bool
	// FailCalls makes the first FailCalls calls fail as a whole with HTTP
	// 503 ServiceUnavailableException.
	FailCalls int
}

// Call describes one PutRecordBatch call the server answered.
type Call struct {
	Records int    // records in the call
	Bytes   int    // their data, before base64
	Failed  int    // records answered with an ErrorCode
	Error   string // error type when the whole call failed
}

// Server is a fake Firehose. Close it when done.
type Server struct {
	*httptest.Server
	opts Options

	mu        sync.Mutex
	delivered [][]byte
	calls     []Call
	seen      map[string]int
}

// NewServer starts a fake Firehose.
func NewServer(opts Options) *Server {
	if opts.Stream == "" {
		opts.Stream = "events"
	}
	s := &Server{opts: opts, seen: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Stream returns the name of the stream the server holds.
func (s *Server) Stream() string { return s.opts.Stream }

// Delivered returns the data of every record accepted, in order of
// acceptance.
func (s *Server) Delivered() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.delivered...)
}

// Calls returns the calls answered so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// SDKClient returns a real aws-sdk-go-v2 Firehose client pointed at the
// server, with static credentials and the SDK's own retries switched off, so
// what a test sees is the caller's retrying alone.
func (s *Server) SDKClient() *fh.Client {
	return fh.New(fh.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(s.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		HTTPClient:       s.Client(),
		RetryMaxAttempts: 1,
	})
}

type putInput struct {
	DeliveryStreamName string
	Records            []struct{ Data []byte } // base64 in JSON
}

type entry struct {
	RecordId     string `json:",omitempty"`
	ErrorCode    string `json:",omitempty"`
	ErrorMessage string `json:",omitempty"`
}

type putOutput struct {
	Encrypted        bool
	FailedPutCount   int
	RequestResponses []entry
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method != http.MethodPost:
		s.fail(w, http.StatusMethodNotAllowed, "UnknownOperationException", "want POST")
		return
	case r.Header.Get("X-Amz-Target") != "Firehose_20150804.PutRecordBatch":
		s.fail(w, http.StatusBadRequest, "UnknownOperationException", "only Firehose_20150804.PutRecordBatch is served, got "+r.Header.Get("X-Amz-Target"))
		return
	case r.Header.Get("Content-Type") != "application/x-amz-json-1.1":
		s.fail(w, http.StatusBadRequest, "SerializationException", "want Content-Type application/x-amz-json-1.1")
		return
	case !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 "):
		s.fail(w, http.StatusForbidden, "MissingAuthenticationTokenException", "request is not signed")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		s.fail(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	var in putInput
	if err := json.Unmarshal(body, &in); err != nil {
		s.fail(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	call := Call{Records: len(in.Records)}
	for _, rec := range in.Records {
		call.Bytes += len(rec.Data)
	}
	reject := func(status int, typ, msg string) {
		call.Error = typ
		s.calls = append(s.calls, call)
		s.fail(w, status, typ, msg)
	}
	if in.DeliveryStreamName != s.opts.Stream {
		reject(http.StatusBadRequest, "ResourceNotFoundException", "Firehose "+in.DeliveryStreamName+" not found")
		return
	}
	if n := len(in.Records); n < 1 || n > MaxRecords {
		reject(http.StatusBadRequest, "InvalidArgumentException", fmt.Sprintf("Records has %d members, want 1 to %d", n, MaxRecords))
		return
	}
	for i, rec := range in.Records {
		if len(rec.Data) > MaxRecordBytes {
			reject(http.StatusBadRequest, "InvalidArgumentException", fmt.Sprintf("record %d has %d bytes, more than %d", i, len(rec.Data), MaxRecordBytes))
			return
		}
	}
	if call.Bytes > MaxBatchBytes {
		reject(http.StatusBadRequest, "InvalidArgumentException", fmt.Sprintf("records hold %d bytes, more than %d", call.Bytes, MaxBatchBytes))
		return
	}
	if s.opts.FailCalls > 0 {
		s.opts.FailCalls--
		reject(http.StatusServiceUnavailable, "ServiceUnavailableException", "Slow down.")
		return
	}

	out := putOutput{RequestResponses: make([]entry, len(in.Records))}
	for i, rec := range in.Records {
		k := string(rec.Data)
		seen := s.seen[k]
		s.seen[k]++
		if s.opts.FailRecord != nil && s.opts.FailRecord(rec.Data, seen) {
			out.RequestResponses[i] = entry{ErrorCode: "ServiceUnavailableException", ErrorMessage: "Slow down."}
			out.FailedPutCount++
			continue
		}
		s.delivered = append(s.delivered, rec.Data)
		out.RequestResponses[i] = entry{RecordId: fmt.Sprintf("rec-%d", len(s.delivered))}
	}
	call.Failed = out.FailedPutCount
	s.calls = append(s.calls, call)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(out)
}

func (s *Server) fail(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}
