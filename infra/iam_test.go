package infra

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// stmt is one policy statement of the template, with its resources resolved.
type stmt struct {
	where     string // resource id and policy
	effect    string
	actions   []string
	resources []string
}

func strs(t *testing.T, v interface{}) []string {
	t.Helper()
	switch x := v.(type) {
	case nil:
		return nil
	case []interface{}:
		var out []string
		for _, e := range x {
			out = append(out, resolve(t, e))
		}
		return out
	default:
		return []string{resolve(t, x)}
	}
}

// policyStatements returns every statement of every permission policy in
// tmpl (role policies, managed policies, the bucket policy), by resource id;
// the statements of an AWS::IAM::Policy are under the id of each role it is
// attached to, their where naming the policy and its condition, if any.
// Trust policies are not permission policies and are left out.
func policyStatements(t *testing.T, tmpl map[string]interface{}) map[string][]stmt {
	t.Helper()
	out := map[string][]stmt{}
	add := func(id, where string, doc interface{}) {
		for _, s := range doc.(map[string]interface{})["Statement"].([]interface{}) {
			s := s.(map[string]interface{})
			out[id] = append(out[id], stmt{where: where, effect: s["Effect"].(string), actions: strs(t, s["Action"]), resources: strs(t, s["Resource"])})
		}
	}
	for id, r := range tmpl["Resources"].(map[string]interface{}) {
		r := r.(map[string]interface{})
		p := r["Properties"].(map[string]interface{})
		switch r["Type"] {
		case "AWS::IAM::Role":
			for _, pol := range p["Policies"].([]interface{}) {
				pol := pol.(map[string]interface{})
				add(id, id+"/"+pol["PolicyName"].(string), pol["PolicyDocument"])
			}
		case "AWS::IAM::ManagedPolicy", "AWS::S3::BucketPolicy":
			add(id, id, p["PolicyDocument"])
		case "AWS::IAM::Policy":
			if p["Users"] != nil || p["Groups"] != nil {
				t.Fatalf("%s: a policy attached to users or groups is not checked by these tests", id)
			}
			where := id
			if c, ok := r["Condition"].(string); ok {
				where += " (if " + c + ")"
			}
			for _, role := range strs(t, p["Roles"]) {
				roleID, ok := strings.CutPrefix(role, "REF:")
				if !ok {
					t.Fatalf("%s: attached to %s, not to a role of the stack", id, role)
				}
				add(roleID, where, p["PolicyDocument"])
			}
		case "AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy":
			t.Fatalf("%s: %s is not checked by these tests: add it to policyStatements", id, r["Type"])
		}
	}
	return out
}

// wildcardExceptions are the only statements allowed a "*" where AWS
// requires one, by resource id:
//   - AthenaReaderPolicy: athena:ListDataCatalogs, ListEngineVersions and
//     ListWorkGroups have no resource type, so Resource must be "*"
//     (AthenaListActions).
//   - DataBucketPolicy: the TLS-only deny statements deny "s3:*" to
//     Principal "*"; a deny must cover every action and every caller.
var wildcardExceptions = map[string]func(s stmt) bool{
	idReaderPolicy: func(s stmt) bool {
		return s.effect == "Allow" && slices.Equal(s.resources, []string{"*"}) && slices.Equal(s.actions, AthenaListActions)
	},
	idBucketPolicy: func(s stmt) bool {
		return s.effect == "Deny" && slices.Equal(s.actions, []string{"s3:*"}) && !slices.Contains(s.resources, "*")
	},
}

// TestNoWildcardPermissions: no statement has Action "*" or Resource "*",
// and no Allow grants a whole service ("s3:*"), except the named
// exceptions above.
func TestNoWildcardPermissions(t *testing.T) {
	seen := map[string]bool{}
	for id, ss := range policyStatements(t, committedTree(t)) {
		for _, s := range ss {
			wild := slices.Contains(s.resources, "*")
			for _, a := range s.actions {
				wild = wild || strings.Contains(a, "*")
			}
			if !wild {
				continue
			}
			if ok := wildcardExceptions[id]; ok != nil && ok(s) {
				seen[id] = true
				continue
			}
			t.Errorf("%s: %s %v on %v: a wildcard outside the named exceptions", s.where, s.effect, s.actions, s.resources)
		}
	}
	for id := range wildcardExceptions {
		if !seen[id] {
			t.Errorf("exception for %s is no longer needed: remove it", id)
		}
	}
}

// grants flattens a principal's Allow statements into resource → actions.
func grants(t *testing.T, ss []stmt) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, s := range ss {
		if s.effect != "Allow" {
			t.Errorf("%s: unexpected %s statement", s.where, s.effect)
			continue
		}
		for _, r := range s.resources {
			out[r] = append(out[r], s.actions...)
		}
	}
	for r := range out {
		sort.Strings(out[r])
		out[r] = slices.Compact(out[r])
	}
	return out
}

const (
	arnBucket  = "arn:aws:s3:::BUCKET"
	arnCatalog = "arn:aws:glue:REGION:ACCOUNT:catalog"
	arnDB      = "arn:aws:glue:REGION:ACCOUNT:database/DB"
)

func objects(prefix string) string { return arnBucket + "/" + prefix + "*" }

// TestFirehoseRoleWritesOnlyRaw: Firehose can write raw/ and raw-errors/,
// read the raw table's schema and write its own log group, and nothing else.
func TestFirehoseRoleWritesOnlyRaw(t *testing.T) {
	got := grants(t, policyStatements(t, committedTree(t))[idFirehoseRole])
	objectWrite := []string{"s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"}
	want := map[string][]string{
		arnBucket:              {"s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"},
		objects("raw/"):        objectWrite,
		objects("raw-errors/"): objectWrite,
		arnCatalog:             glueReadTable,
		arnDB:                  glueReadTable,
		"arn:aws:glue:REGION:ACCOUNT:table/DB/raw_events": glueReadTable,
		"GETATT:" + idFirehoseLogGroup + ".Arn":           {"logs:PutLogEvents"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Firehose role permissions (-want +got):\n%s", diff)
	}
}

// TestRollupRoleStaysInItsPrefixes: the rollup function reads raw/ and
// raw-errors/ (only the erase function rewrites them), reads and
// writes curated/ and _state/, and nothing else in
// the bucket, except that it may put objects under reports/ when
// NightlyReport is true; it keeps its one Glue database current and writes
// its log group. It invokes nothing: the state machine does.
func TestRollupRoleStaysInItsPrefixes(t *testing.T) {
	all := policyStatements(t, committedTree(t))
	readWrite := []string{"s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"}
	glue := sorted(glueCatalog)
	want := map[string][]string{
		arnBucket:                                {"s3:GetBucketLocation", "s3:ListBucket"},
		objects("raw/"):                          {"s3:GetObject"},
		objects("raw-errors/"):                   {"s3:GetObject"},
		objects("config/"):                       {"s3:GetObject"},
		objects("curated/"):                      readWrite,
		objects("_state/"):                       readWrite,
		objects("reports/"):                      {"s3:PutObject"},
		arnCatalog:                               glue,
		arnDB:                                    glue,
		"arn:aws:glue:REGION:ACCOUNT:table/DB/*": glue,
		"GETATT:" + idRollupLogGroup + ".Arn":    {"logs:CreateLogStream", "logs:PutLogEvents"},
	}
	if diff := cmp.Diff(want, grants(t, all[idRollupRole])); diff != "" {
		t.Errorf("rollup role permissions (-want +got):\n%s", diff)
	}
	// reports/ is granted only with NightlyReport=true, by its own policy.
	for _, s := range all[idRollupRole] {
		if slices.Contains(s.resources, objects("reports/")) && s.where != idRollupReportPolicy+" (if "+condNightlyReport+")" {
			t.Errorf("%s grants %v on reports/ whatever NightlyReport is", s.where, s.actions)
		}
	}
}

// The nightly state machine's ARN and its executions', as resolve renders
// them.
const (
	arnNightly         = "arn:aws:states:REGION:ACCOUNT:stateMachine:STACK-nightly"
	arnNightlyRuns     = "arn:aws:states:REGION:ACCOUNT:execution:STACK-nightly:*"
	arnNightlyChildren = "arn:aws:states:REGION:ACCOUNT:execution:STACK-nightly/*"
)

// TestStateMachineRoleInvokesOnlyTheFunction: the state machine's role may
// invoke the rollup function and no other, and otherwise only run its own
// Distributed Maps: start executions of itself, describe, stop and redrive
// their child executions, describe its own executions.
func TestStateMachineRoleInvokesOnlyTheFunction(t *testing.T) {
	tmpl := committedTree(t)
	want := map[string][]string{
		"GETATT:" + idRollup + ".Arn": {"lambda:InvokeFunction"},
		"GETATT:" + idErase + ".Arn":  {"lambda:InvokeFunction"},
		arnNightly:                    {"states:StartExecution"},
		arnNightlyChildren:            {"states:DescribeExecution", "states:RedriveExecution", "states:StopExecution"},
		arnNightlyRuns:                {"states:DescribeExecution"},
	}
	if diff := cmp.Diff(want, grants(t, policyStatements(t, tmpl)[idStateMachineRole])); diff != "" {
		t.Errorf("state machine role permissions (-want +got):\n%s", diff)
	}
	// The ARN the role names is the state machine's: its name is set.
	p := props(t, tmpl, idStateMachine, "AWS::StepFunctions::StateMachine")
	if got := "arn:aws:states:REGION:ACCOUNT:stateMachine:" + resolve(t, p["StateMachineName"]); got != arnNightly {
		t.Errorf("state machine %s, its role names %s", got, arnNightly)
	}
	if got := val(t, p["RoleArn"]); got != "GETATT:"+idStateMachineRole+".Arn" {
		t.Errorf("state machine role %s", got)
	}
	trust := at(t, resource(t, tmpl, idStateMachineRole, "AWS::IAM::Role"), "Properties", "AssumeRolePolicyDocument", "Statement", "0", "Principal", "Service")
	if trust != "states.amazonaws.com" {
		t.Errorf("state machine role trusts %v", trust)
	}
}

// TestNightlyRuleRoleStartsOnlyTheStateMachine: the rule's role may start
// executions of the nightly state machine, and nothing else.
func TestNightlyRuleRoleStartsOnlyTheStateMachine(t *testing.T) {
	tmpl := committedTree(t)
	want := map[string][]string{"REF:" + idStateMachine: {"states:StartExecution"}}
	if diff := cmp.Diff(want, grants(t, policyStatements(t, tmpl)[idScheduleRole])); diff != "" {
		t.Errorf("nightly rule role permissions (-want +got):\n%s", diff)
	}
	trust := at(t, resource(t, tmpl, idScheduleRole, "AWS::IAM::Role"), "Properties", "AssumeRolePolicyDocument", "Statement", "0", "Principal", "Service")
	if trust != "events.amazonaws.com" {
		t.Errorf("nightly rule role trusts %v", trust)
	}
}

// TestOnlyTheStateMachineInvokesFunctions: no other principal of the stack
// may invoke a Lambda function or start an execution: the rollup function
// invokes nothing, and the collector is invoked through its URL only.
func TestOnlyTheStateMachineInvokesFunctions(t *testing.T) {
	for id, ss := range policyStatements(t, committedTree(t)) {
		for _, s := range ss {
			for _, a := range s.actions {
				if a == "lambda:InvokeFunction" && id != idStateMachineRole ||
					a == "states:StartExecution" && id != idStateMachineRole && id != idScheduleRole {
					t.Errorf("%s: %s on %v", s.where, a, s.resources)
				}
			}
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// TestRollupGlueActionsAreTheCatalogsCalls: the rollup function may call
// exactly the Glue APIs internal/catalog calls, no more and no fewer.
func TestRollupGlueActionsAreTheCatalogsCalls(t *testing.T) {
	dir := filepath.Join("..", "internal", "catalog")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]bool{}
	fset := token.NewFileSet()
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			// <x>.client.<Operation>(...): the Glue client's calls.
			if call, ok := n.(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
					if recv, ok := sel.X.(*ast.SelectorExpr); ok && recv.Sel.Name == "client" {
						calls["glue:"+sel.Sel.Name] = true
					}
				}
			}
			return true
		})
	}
	if len(calls) == 0 {
		t.Fatal("found no Glue calls in internal/catalog: has the client field been renamed?")
	}
	if diff := cmp.Diff(sortedKeys(calls), sorted(glueCatalog)); diff != "" {
		t.Errorf("rollup Glue actions differ from internal/catalog's calls (-calls +granted):\n%s", diff)
	}
}

// TestReaderPolicyReadsOnly: the managed policy for Power BI reads curated/
// and raw/ and writes only Athena's results.
func TestReaderPolicyReadsOnly(t *testing.T) {
	got := grants(t, policyStatements(t, committedTree(t))[idReaderPolicy])
	for r, actions := range got {
		for _, a := range actions {
			write := a == "s3:PutObject" || a == "s3:DeleteObject" || a == "s3:AbortMultipartUpload" ||
				strings.HasPrefix(a, "glue:Create") || strings.HasPrefix(a, "glue:Update") || strings.HasPrefix(a, "glue:Delete") || strings.HasPrefix(a, "glue:Batch") && a != "glue:BatchGetPartition"
			if write && r != objects("athena-results/") {
				t.Errorf("reader policy: %s on %s", a, r)
			}
		}
	}
	for _, r := range []string{objects("curated/"), objects("raw/")} {
		if !slices.Equal(got[r], []string{"s3:GetObject"}) {
			t.Errorf("reader policy on %s: %v, want s3:GetObject", r, got[r])
		}
	}
}

// TestEraseRoleRewritesRaw: the erase function (the Erase state) is the
// one role besides Firehose's that may write raw/ and raw-errors/; it
// rewrites a person's objects, rebuilds their days and registers them.
func TestEraseRoleRewritesRaw(t *testing.T) {
	all := policyStatements(t, committedTree(t))
	readWrite := []string{"s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"}
	glue := sorted(glueCatalog)
	want := map[string][]string{
		arnBucket:                                {"s3:GetBucketLocation", "s3:ListBucket"},
		objects("raw/"):                          readWrite,
		objects("raw-errors/"):                   readWrite,
		objects("config/"):                       {"s3:GetObject"},
		objects("curated/"):                      readWrite,
		objects("_state/"):                       readWrite,
		arnCatalog:                               glue,
		arnDB:                                    glue,
		"arn:aws:glue:REGION:ACCOUNT:table/DB/*": glue,
		"GETATT:" + idEraseLogGroup + ".Arn":     {"logs:CreateLogStream", "logs:PutLogEvents"},
	}
	if diff := cmp.Diff(want, grants(t, all[idEraseRole])); diff != "" {
		t.Errorf("erase role permissions (-want +got):\n%s", diff)
	}
	for role, stmts := range all {
		if role == idEraseRole || role == idFirehoseRole {
			continue
		}
		for _, s := range stmts {
			for _, a := range s.actions {
				if (a == "s3:PutObject" || a == "s3:DeleteObject") && (slices.Contains(s.resources, objects("raw/")) || slices.Contains(s.resources, objects("raw-errors/"))) {
					t.Errorf("%s (%s) may %s in raw/: only the erase function and Firehose may", role, s.where, a)
				}
			}
		}
	}
}
