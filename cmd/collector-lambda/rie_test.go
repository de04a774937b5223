package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/littlewarehouse/warehouse/internal/collector"
	"github.com/littlewarehouse/warehouse/internal/firehose"
	"github.com/littlewarehouse/warehouse/internal/firehose/firehosetest"
	"github.com/littlewarehouse/warehouse/internal/rietest"
	"github.com/littlewarehouse/warehouse/internal/ssmtest"
)

const (
	apiKey    = "rie-key-0123456789abcdef0123"
	otherKey  = "old-key-abcdef0123456789abcd"
	keysParam = "/littlewarehouse/test/collector-api-keys"
	stream    = "lw-events"
)

// urlEvent is a function URL event (payload 2.0) as Lambda builds it.
func urlEvent(method, path string, headers map[string]string, body string) []byte {
	ev := events.LambdaFunctionURLRequest{
		Version: "2.0", RawPath: path, Headers: headers, Body: body,
		RequestContext: events.LambdaFunctionURLRequestContext{
			DomainName: "abc123.lambda-url.us-east-1.on.aws", RequestID: "req-1",
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{Method: method, Path: path, Protocol: "HTTP/1.1", SourceIP: "203.0.113.7"},
		},
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return b
}

// TestBootstrapUnderRIE runs the built collector bootstrap under the Lambda
// Runtime Interface Emulator, with the real aws-sdk-go-v2 clients reaching a
// fake Parameter Store (the keys) and a fake Firehose through the SDK's
// standard AWS_ENDPOINT_URL_SSM and AWS_ENDPOINT_URL_FIREHOSE: a batch of 3
// events is answered 200 with 3 event_ids and Firehose holds exactly those
// records; a bad key is 401 and sends nothing; a misconfigured function
// fails every invocation with the reason. No key ever reaches the output.
func TestBootstrapUnderRIE(t *testing.T) {
	rietest.Skip(t)
	t0 := time.Now()
	var bootstrap, rie string
	var buildErr, rieErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); bootstrap, buildErr = rietest.Build(t.TempDir(), ".") }()
	go func() { defer wg.Done(); rie, rieErr = rietest.Install(t) }()

	fh := firehosetest.NewServer(firehosetest.Options{Stream: stream})
	defer fh.Close()
	params := ssmtest.NewServer(map[string]string{keysParam: otherKey + "," + apiKey})
	defer params.Close()
	wg.Wait()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	if rieErr != nil {
		t.Fatal(rieErr)
	}

	t.Logf("bootstrap built, emulator ready: %v", time.Since(t0).Round(time.Millisecond))

	env := []string{
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=SECRETTEST", "AWS_EC2_METADATA_DISABLED=true",
		"AWS_ENDPOINT_URL_FIREHOSE=" + fh.URL, "AWS_ENDPOINT_URL_SSM=" + params.URL,
		collector.EnvFirehoseStream + "=" + stream, collector.EnvAPIKeysParameter + "=" + keysParam,
		collector.EnvAllowedOrigins + "=https://app.example.com",
	}
	fn := rietest.Start(t, rie, bootstrap, "collector", env)
	defer func() { t.Logf("done: %v", time.Since(t0).Round(time.Millisecond)) }()
	invoke := func(ev []byte) (events.LambdaFunctionURLResponse, collector.Response) {
		t.Helper()
		status, body := fn.Invoke(t, ev)
		var resp events.LambdaFunctionURLResponse
		if err := json.Unmarshal([]byte(body), &resp); err != nil || status != http.StatusOK || resp.StatusCode == 0 {
			t.Fatalf("invocation: HTTP %d %s", status, body)
		}
		var r collector.Response
		if err := json.Unmarshal([]byte(resp.Body), &r); err != nil {
			t.Fatalf("answer body %q: %v", resp.Body, err)
		}
		return resp, r
	}

	batch := `[
		{"event_name":"app_open","device_id":"d-1","event_time":"2026-11-24T13:05:09.120+13:00","platform":"ios"},
		{"event_name":"screen_view","user_id":"u-42","product":"shop","screen":"home"},
		{"event_name":"purchase","user_id":"u-42","product":"shop","event_time":1795525200123}
	]`
	resp, r := invoke(urlEvent("POST", "/v1/events", map[string]string{
		"content-type": "application/json", "x-api-key": apiKey, "origin": "https://app.example.com",
	}, batch))
	if resp.StatusCode != http.StatusOK || r.Accepted != 3 || r.Rejected != 0 || len(r.Events) != 3 {
		t.Fatalf("POST /v1/events: %d %s", resp.StatusCode, resp.Body)
	}
	if resp.Headers["Access-Control-Allow-Origin"] != "https://app.example.com" {
		t.Errorf("CORS headers missing: %v", resp.Headers)
	}
	var want, got []string
	for _, e := range r.Events {
		want = append(want, e.EventID)
	}
	for _, rec := range fh.Delivered() {
		rows, err := firehose.Convert(rec)
		if err != nil || len(rows) != 1 {
			t.Fatalf("record %q: %v", rec, err)
		}
		got = append(got, rows[0].EventID)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("Firehose received %v, want exactly the answered event_ids %v", got, want)
	}
	if c := params.Calls(); len(c) != 1 || !c[0].WithDecryption || c[0].Name != keysParam {
		t.Errorf("SSM calls %+v, want one GetParameter of %s with decryption (at cold start only)", c, keysParam)
	}

	before := len(fh.Delivered())
	resp, _ = invoke(urlEvent("POST", "/v1/events", map[string]string{
		"content-type": "application/json", "x-api-key": "wrong-key-0123456789abcdef",
	}, `{"event_name":"x","user_id":"u"}`))
	if resp.StatusCode != http.StatusUnauthorized || len(fh.Delivered()) != before {
		t.Errorf("bad key: %d %s, %d records sent", resp.StatusCode, resp.Body, len(fh.Delivered())-before)
	}
	fn.Stop()
	if out := fn.Output(); strings.Contains(out, apiKey) || strings.Contains(out, otherKey) || !strings.Contains(out, `"key_id":"key-`) {
		t.Errorf("the function's output holds a key, or no key_id:\n%s", out)
	}

	// A function whose parameter is missing says so in every answer.
	bad := rietest.Start(t, rie, bootstrap, "misconfigured", append(slices.Clone(env[:6]),
		collector.EnvFirehoseStream+"="+stream, collector.EnvAPIKeysParameter+"=/littlewarehouse/test/missing"))
	_, body := bad.Invoke(t, urlEvent("GET", "/healthz", nil, ""))
	if !strings.Contains(body, "/littlewarehouse/test/missing") || !strings.Contains(body, "ParameterNotFound") {
		t.Errorf("misconfigured function answered %s; want the parameter and the reason", body)
	}
	bad.Stop()
}
