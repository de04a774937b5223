package infra

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/awslabs/goformation/v7"
)

var update = flag.Bool("update", false, "rewrite infra/template.json from the Go schemas")

const templateFile = "template.json"

const regenerate = "regenerate it with `make infra` (or `go run ./cmd/infragen -o infra/template.json` from the repository root) and commit it"

// committed returns the committed template.
func committed(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(templateFile)
	if err != nil {
		t.Fatalf("read infra/%s: %v; %s", templateFile, err, regenerate)
	}
	return b
}

// tree decodes a template into plain JSON values (numbers as json.Number).
func tree(t *testing.T, b []byte) map[string]interface{} {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v map[string]interface{}
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode template: %v", err)
	}
	return v
}

// committedTree is the committed template, decoded.
func committedTree(t *testing.T) map[string]interface{} { return tree(t, committed(t)) }

// generatedTree is the template of cfg, decoded.
func generatedTree(t *testing.T, cfg Config) map[string]interface{} {
	t.Helper()
	b, err := JSON(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tree(t, b)
}

// resource returns the resource id of tmpl, failing if it is missing or
// not of type typ.
func resource(t *testing.T, tmpl map[string]interface{}, id, typ string) map[string]interface{} {
	t.Helper()
	r, ok := tmpl["Resources"].(map[string]interface{})[id].(map[string]interface{})
	if !ok {
		t.Fatalf("template has no resource %s", id)
	}
	if r["Type"] != typ {
		t.Fatalf("resource %s is a %v, want %s", id, r["Type"], typ)
	}
	return r
}

func props(t *testing.T, tmpl map[string]interface{}, id, typ string) map[string]interface{} {
	t.Helper()
	return resource(t, tmpl, id, typ)["Properties"].(map[string]interface{})
}

// at walks v along keys (object keys, or indices as "0", "1", ...).
func at(t *testing.T, v interface{}, keys ...string) interface{} {
	t.Helper()
	for i, k := range keys {
		switch n := v.(type) {
		case map[string]interface{}:
			next, ok := n[k]
			if !ok {
				t.Fatalf("no %s at %s", k, strings.Join(keys[:i], "."))
			}
			v = next
		case []interface{}:
			j, err := strconv.Atoi(k)
			if err != nil || j < 0 || j >= len(n) {
				t.Fatalf("no index %s at %s", k, strings.Join(keys[:i], "."))
			}
			v = n[j]
		default:
			t.Fatalf("%s is not an object or array", strings.Join(keys[:i], "."))
		}
	}
	return v
}

func ref(id string) map[string]interface{} { return map[string]interface{}{"Ref": id} }

// TestTemplateIsRegenerated fails when infra/template.json is not what the
// Go schemas give, e.g. after a column was added to event.Raw or a rollup
// struct without `make infra`.
func TestTemplateIsRegenerated(t *testing.T) {
	want, err := JSON(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(templateFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got := committed(t)
	if bytes.Equal(got, want) {
		return
	}
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	line := 0
	for line < len(g) && line < len(w) && g[line] == w[line] {
		line++
	}
	show := func(lines []string) string {
		if line < len(lines) {
			return strings.TrimSpace(lines[line])
		}
		return "(end of file)"
	}
	t.Fatalf("infra/template.json is out of date with the Go schemas (internal/event, rollups, infra); %s.\n"+
		"first difference at line %d:\n  committed: %s\n  generated: %s", regenerate, line+1, show(g), show(w))
}

func TestJSONIsDeterministic(t *testing.T) {
	first, err := JSON(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		again, err := JSON(DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatal("two generations of the template differ")
		}
	}
	// The Glue types hold map<string,string>. (The state machine's
	// definition is a JSON string inside the template: its own escapes
	// are StateMachineDefinition's.)
	if !bytes.HasSuffix(first, []byte("}\n")) || !bytes.Contains(first, []byte(`map<string,string>`)) {
		t.Error("the template should end in a newline and not escape < and > (map<string,string>)")
	}
}

// newerThanGoformation are the properties the template uses that
// goformation v7's types and schema do not know yet, by resource type.
// packaged drops them, so that the checks against goformation see the rest;
// their own tests check them.
var newerThanGoformation = map[string][]string{
	// Restricts the collector's public lambda:InvokeFunction grant to calls
	// through its function URL (required for new function URLs since
	// October 2025).
	"AWS::Lambda::Permission": {"InvokedViaFunctionUrl"},
}

// packaged returns tmpl as `aws cloudformation package` leaves it: the
// Lambda functions' Code, a local path in the committed template, replaced
// by {S3Bucket, S3Key}. It checks that every function's path is its zip
// (CollectorZip for the collector, LambdaZip for the others), and drops
// the properties of newerThanGoformation.
func packaged(t *testing.T, tmpl map[string]interface{}) map[string]interface{} {
	t.Helper()
	n := 0
	for id, r := range tmpl["Resources"].(map[string]interface{}) {
		r := r.(map[string]interface{})
		p := r["Properties"].(map[string]interface{})
		for _, k := range newerThanGoformation[r["Type"].(string)] {
			delete(p, k)
		}
		if r["Type"] != "AWS::Lambda::Function" {
			continue
		}
		zip := LambdaZip
		if id == idCollector {
			zip = CollectorZip
		}
		if p["Code"] != zip {
			t.Errorf("%s: Code is %v, want the local path %q for aws cloudformation package", id, p["Code"], zip)
		}
		p["Code"] = map[string]interface{}{"S3Bucket": "artifacts", "S3Key": "0123456789abcdef0123456789abcdef"}
		n++
	}
	if n != 3 {
		t.Errorf("template has %d Lambda functions, want 3 (rollup, erase, collector)", n)
	}
	return tmpl
}

func TestLambdaZipIsWhereMakeLambdaPutsIt(t *testing.T) {
	// Paths in a template are relative to its folder (infra/).
	for zip, want := range map[string]string{LambdaZip: "dist/rollup-lambda-arm64.zip", CollectorZip: "dist/collector-lambda-arm64.zip"} {
		if got := filepath.ToSlash(filepath.Clean(filepath.Join("infra", zip))); got != want {
			t.Errorf("%s resolves to %s from the repository root, want %s (scripts/lambda-zip.sh)", zip, got, want)
		}
	}
}

// TestTemplateParsesWithGoformation parses the packaged template into
// goformation's typed resources.
func TestTemplateParsesWithGoformation(t *testing.T) {
	b, err := json.Marshal(packaged(t, committedTree(t)))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := goformation.ParseJSON(b)
	if err != nil {
		t.Fatalf("goformation.ParseJSON: %v", err)
	}
	counts := map[string]int{}
	for _, r := range tmpl.Resources {
		counts[r.AWSCloudFormationType()]++
	}
	want := map[string]int{
		"AWS::S3::Bucket": 1, "AWS::S3::BucketPolicy": 1,
		"AWS::KinesisFirehose::DeliveryStream": 1,
		"AWS::Glue::Database":                  1, "AWS::Glue::Table": 1 + len(DefaultConfig().Curated),
		"AWS::Lambda::Function": 3, "AWS::Lambda::Permission": 2, "AWS::Lambda::Url": 1,
		"AWS::StepFunctions::StateMachine": 1,
		"AWS::Events::Rule":                1, "AWS::Athena::WorkGroup": 1,
		"AWS::CloudWatch::Alarm": 6, "AWS::SNS::Topic": 1, "AWS::SNS::Subscription": 1,
		"AWS::IAM::Role": 6, "AWS::IAM::ManagedPolicy": 1, "AWS::IAM::Policy": 1, "AWS::Logs::LogGroup": 4, "AWS::Logs::LogStream": 1,
	}
	for typ, n := range want {
		if counts[typ] != n {
			t.Errorf("%d resources of type %s, want %d", counts[typ], typ, n)
		}
	}
	for typ := range counts {
		if _, ok := want[typ]; !ok {
			t.Errorf("unexpected resource type %s: add it to this test", typ)
		}
	}
	fns := tmpl.GetAllLambdaFunctionResources()
	for id, fn := range fns {
		if fn.Code == nil || fn.Code.S3Bucket == nil || fn.Code.S3Key == nil {
			t.Errorf("%s: the packaged Code is not an S3 location", id)
		}
	}
}
