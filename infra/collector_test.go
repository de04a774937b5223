package infra

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/littlewarehouse/warehouse/internal/collector"
)

func TestCollectorFunction(t *testing.T) {
	tmpl := committedTree(t)
	p := props(t, tmpl, idCollector, "AWS::Lambda::Function")
	want := map[string]string{
		"Runtime": "provided.al2023", "Handler": "bootstrap", "Architectures": "[arm64]", "Code": CollectorZip,
		"Role": "GETATT:" + idCollectorRole + ".Arn", "MemorySize": "256", "Timeout": "30",
		"ReservedConcurrentExecutions": `{"Fn::If":["HasCollectorReservedConcurrency",{"Ref":"CollectorReservedConcurrency"},{"Ref":"AWS::NoValue"}]}`,
	}
	for k, v := range want {
		if got := val(t, p[k]); got != v {
			t.Errorf("%s.%s = %s, want %s", idCollector, k, got, v)
		}
	}
	if got := val(t, at(t, p, "LoggingConfig", "LogGroup")); got != "REF:"+idCollectorLogGroup {
		t.Errorf("log group %s", got)
	}
	// The environment names the parameter, never holds a key.
	wantEnv := map[string]string{
		collector.EnvFirehoseStream:   "REF:" + idStream,
		collector.EnvAPIKeysParameter: "REF:" + ParamCollectorAPIKeysParameter,
		collector.EnvAllowedOrigins:   "REF:" + ParamCollectorAllowedOrigins,
		collector.EnvRate:             "REF:" + ParamCollectorRate,
		collector.EnvBurst:            "REF:" + ParamCollectorBurst,
	}
	gotEnv := map[string]string{}
	for k, v := range at(t, p, "Environment", "Variables").(map[string]interface{}) {
		gotEnv[k] = val(t, v)
	}
	if diff := cmp.Diff(wantEnv, gotEnv); diff != "" {
		t.Errorf("collector environment (-want +got):\n%s", diff)
	}
	if d := at(t, tmpl, "Parameters", ParamCollectorAPIKeysParameter, "Default"); d != defaultCollectorAPIKeysParameter {
		t.Errorf("keys parameter default %v", d)
	}
}

// TestCollectorFunctionURL: a public URL (the collector checks keys), CORS
// from the allow-list only when there is one, and public invocation only
// through the URL.
func TestCollectorFunctionURL(t *testing.T) {
	tmpl := committedTree(t)
	u := props(t, tmpl, idCollectorURL, "AWS::Lambda::Url")
	if u["AuthType"] != "NONE" || val(t, u["TargetFunctionArn"]) != "GETATT:"+idCollector+".Arn" {
		t.Errorf("function URL %v", u)
	}
	cors, _ := json.Marshal(u["Cors"])
	wantCORS := `{"Fn::If":["HasCollectorAllowedOrigins",{"AllowHeaders":["content-type","x-api-key"],"AllowMethods":["GET","POST"],` +
		`"AllowOrigins":{"Fn::Split":[",",{"Ref":"CollectorAllowedOrigins"}]},"ExposeHeaders":["retry-after"],"MaxAge":600},{"Ref":"AWS::NoValue"}]}`
	if string(cors) != wantCORS {
		t.Errorf("CORS %s\nwant %s", cors, wantCORS)
	}
	pattern := regexp.MustCompile(at(t, tmpl, "Parameters", ParamCollectorAllowedOrigins, "AllowedPattern").(string))
	for origins, ok := range map[string]bool{
		"": true, "*": true, "https://app.example.com": true, "https://a.example.com,http://localhost:5173": true,
		"https://a.example.com, https://b.example.com": false, "app.example.com": false, "https://*.example.com": false,
	} {
		if pattern.MatchString(origins) != ok {
			t.Errorf("CollectorAllowedOrigins %q: accepted %v, want %v", origins, !ok, ok)
		}
	}

	url := props(t, tmpl, idCollectorURLPermission, "AWS::Lambda::Permission")
	if url["Action"] != "lambda:InvokeFunctionUrl" || url["Principal"] != "*" || url["FunctionUrlAuthType"] != "NONE" || val(t, url["FunctionName"]) != "REF:"+idCollector {
		t.Errorf("URL permission %v", url)
	}
	inv := props(t, tmpl, idCollectorInvokePermission, "AWS::Lambda::Permission")
	if inv["Action"] != "lambda:InvokeFunction" || inv["Principal"] != "*" || inv["InvokedViaFunctionUrl"] != true || val(t, inv["FunctionName"]) != "REF:"+idCollector {
		t.Errorf("invoke permission %v: want lambda:InvokeFunction for everyone only via the function URL", inv)
	}
}

// TestCollectorRoleOnlyPutsOnTheStream: the collector may put records on
// the stack's delivery stream (PutRecordBatch, nothing else of Firehose),
// read its one keys parameter and write its log group. No S3, no kms (the
// aws/ssm key's policy covers decryption through SSM).
func TestCollectorRoleOnlyPutsOnTheStream(t *testing.T) {
	got := grants(t, policyStatements(t, committedTree(t))[idCollectorRole])
	want := map[string][]string{
		"GETATT:" + idStream + ".Arn": {"firehose:PutRecordBatch"},
		"arn:aws:ssm:REGION:ACCOUNT:parameter${" + ParamCollectorAPIKeysParameter + "}": {"ssm:GetParameter"},
		"GETATT:" + idCollectorLogGroup + ".Arn":                                        {"logs:CreateLogStream", "logs:PutLogEvents"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("collector role permissions (-want +got):\n%s", diff)
	}
	// The parameter's ARN is built as ...:parameter<name>, right only for
	// names that start with "/".
	if p := at(t, committedTree(t), "Parameters", ParamCollectorAPIKeysParameter, "AllowedPattern").(string); !strings.HasPrefix(p, "^/") {
		t.Errorf("keys parameter pattern %s allows names without a leading /", p)
	}
}

// keyLike finds what looks like key material in a string: a long run of
// key characters mixing letters and digits (openssl rand -hex/-base64, an
// AWS access key id, a collector key like dev-key-0123456789abcdef), or a
// PEM block.
var keyLike = regexp.MustCompile(`[A-Za-z0-9+/=_-]{16,}|-----BEGIN`)

// awsAccessKeyID is an access key id, which has few digits.
var awsAccessKeyID = regexp.MustCompile(`\b(AKIA|ASIA)[A-Z0-9]{16}\b`)

func looksLikeKey(s string) (string, bool) {
	if m := awsAccessKeyID.FindString(s); m != "" {
		return m, true
	}
	for _, m := range keyLike.FindAllString(s, -1) {
		if strings.HasPrefix(m, "-----") {
			return m, true
		}
		letters := strings.IndexFunc(m, func(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }) >= 0
		digits := 0
		for _, r := range m {
			if r >= '0' && r <= '9' {
				digits++
			}
		}
		if letters && digits >= 4 {
			return m, true
		}
	}
	return "", false
}

// scanForKeys returns every string of v that looks like key material,
// with where it is.
func scanForKeys(v interface{}, where string) []string {
	var out []string
	switch n := v.(type) {
	case string:
		if m, ok := looksLikeKey(n); ok {
			out = append(out, where+": "+m)
		}
	case map[string]interface{}:
		for k, x := range n {
			out = append(out, scanForKeys(k, where+" (key)")...)
			out = append(out, scanForKeys(x, where+"."+k)...)
		}
	case []interface{}:
		for _, x := range n {
			out = append(out, scanForKeys(x, where)...)
		}
	}
	return out
}

// TestNoKeyMaterialInTemplate scans every string of the template for
// anything that looks like an API key or a secret, and checks that no
// parameter or environment variable is meant to carry one.
func TestNoKeyMaterialInTemplate(t *testing.T) {
	tmpl := committedTree(t)
	for _, hit := range scanForKeys(tmpl, "template") {
		t.Errorf("looks like key material: %s", hit)
	}
	for name := range tmpl["Parameters"].(map[string]interface{}) {
		if n := strings.ToLower(name); (strings.Contains(n, "key") || strings.Contains(n, "secret")) && !strings.HasSuffix(name, "Parameter") {
			t.Errorf("parameter %s looks like it carries a key; pass the name of an SSM parameter instead", name)
		}
	}
	for id, r := range tmpl["Resources"].(map[string]interface{}) {
		r := r.(map[string]interface{})
		if typ := r["Type"].(string); typ == "AWS::SSM::Parameter" || typ == "AWS::SecretsManager::Secret" {
			t.Errorf("%s: a %s in the stack would put its value in the template", id, typ)
		}
	}
}

// TestTheKeyScanCatchesKeys makes sure the scan above can fail.
func TestTheKeyScanCatchesKeys(t *testing.T) {
	for _, key := range []string{
		"dev-key-0123456789abcdef",                         // docs/collector.md's example
		"3f9a1c5e7b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d", // openssl rand -hex 24
		"q8Zr4Kx1Vb7Nm2Lp9Wt3Yc6Hd0Fg5Js=",                 // openssl rand -base64 24
		"AKIAIOSFODNN7EXAMPLE",
		"-----BEGIN PRIVATE KEY-----",
	} {
		tmpl := map[string]interface{}{"Resources": map[string]interface{}{"F": map[string]interface{}{
			"Properties": map[string]interface{}{"Environment": map[string]interface{}{"Variables": map[string]interface{}{"KEYS": "a," + key}}},
		}}}
		if len(scanForKeys(tmpl, "template")) == 0 {
			t.Errorf("%s: not caught", key)
		}
	}
}
