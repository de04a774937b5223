// Package ssmtest runs a fake AWS Systems Manager Parameter Store for tests:
// an httptest server that speaks the GetParameter operation of SSM's JSON
// protocol (awsJson1_1), holds the parameters it was given, and records
// every call so a test can check what was asked (WithDecryption).
package ssmtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// Call is one GetParameter call the server answered.
type Call struct {
	Name           string
	WithDecryption bool
	Found          bool
}

// Server is a fake Parameter Store. Close it when done.
type Server struct {
	*httptest.Server

	mu     sync.Mutex
	params map[string]string
	calls  []Call
}

// NewServer starts a fake Parameter Store holding params (name → value),
// each as a SecureString. Other names get ParameterNotFound.
func NewServer(params map[string]string) *Server {
	s := &Server{params: map[string]string{}}
	for k, v := range params {
		s.params[k] = v
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Calls returns the calls answered so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// SDKClient returns a real aws-sdk-go-v2 SSM client pointed at the server,
// with static credentials.
func (s *Server) SDKClient() *ssm.Client {
	return ssm.New(ssm.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		HTTPClient:   s.Client(),
	})
}

type getInput struct {
	Name           string `json:"Name"`
	WithDecryption bool   `json:"WithDecryption"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if target := r.Header.Get("X-Amz-Target"); target != "AmazonSSM.GetParameter" {
		fail(w, http.StatusBadRequest, "InvalidAction", fmt.Sprintf("operation %q is not faked", target))
		return
	}
	var in getInput
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Name == "" {
		fail(w, http.StatusBadRequest, "ValidationException", "bad GetParameter input")
		return
	}
	s.mu.Lock()
	value, ok := s.params[in.Name]
	s.calls = append(s.calls, Call{Name: in.Name, WithDecryption: in.WithDecryption, Found: ok})
	s.mu.Unlock()
	if !ok {
		fail(w, http.StatusBadRequest, "ParameterNotFound", "")
		return
	}
	if !in.WithDecryption {
		// What SSM returns for a SecureString read without decryption.
		value = "AQICAHencrypted-blob-not-the-value"
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(map[string]interface{}{
		"Parameter": map[string]interface{}{
			"Name": in.Name, "Type": "SecureString", "Value": value, "Version": 1, "DataType": "text",
			"ARN": "arn:aws:ssm:us-east-1:123456789012:parameter" + in.Name,
		},
	})
}

func fail(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"__type": typ, "message": msg})
}
