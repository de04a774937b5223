package infra

import (
	"encoding/json"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// deployerPolicyFile is the IAM policy of the person who deploys, updates
// and tears down the stack (infra/README.md "Who may deploy").
const deployerPolicyFile = "deployer-policy.json"

// deployerPlaceholders are the words infra/README.md replaces (with sed)
// before creating the policy.
var deployerPlaceholders = []string{"ACCOUNT_ID", "ARTIFACTS_BUCKET", "BUCKET_NAME", "GLUE_DATABASE", "REGION", "STACK_NAME"}

// deployActions are the calls CloudFormation makes with the deployer's
// credentials to create, update and delete each resource type of the
// template (the handlers' permissions in the CloudFormation resource
// schemas), besides what every deploy needs (deployCommon).
var deployActions = map[string][]string{
	"AWS::Athena::WorkGroup":               {"athena:CreateWorkGroup", "athena:GetWorkGroup", "athena:UpdateWorkGroup", "athena:DeleteWorkGroup", "athena:TagResource"},
	"AWS::CloudWatch::Alarm":               {"cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"},
	"AWS::Events::Rule":                    {"events:PutRule", "events:DescribeRule", "events:PutTargets", "events:RemoveTargets", "events:DeleteRule"},
	"AWS::Glue::Database":                  {"glue:CreateDatabase", "glue:GetDatabase", "glue:UpdateDatabase", "glue:DeleteDatabase"},
	"AWS::Glue::Table":                     {"glue:CreateTable", "glue:GetTable", "glue:UpdateTable", "glue:DeleteTable"},
	"AWS::IAM::ManagedPolicy":              {"iam:CreatePolicy", "iam:GetPolicy", "iam:CreatePolicyVersion", "iam:DeletePolicyVersion", "iam:ListPolicyVersions", "iam:DeletePolicy", "iam:AttachRolePolicy", "iam:DetachRolePolicy"},
	"AWS::IAM::Policy":                     {"iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"},
	"AWS::IAM::Role":                       {"iam:CreateRole", "iam:GetRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:DeleteRole", "iam:PassRole"},
	"AWS::KinesisFirehose::DeliveryStream": {"firehose:CreateDeliveryStream", "firehose:DescribeDeliveryStream", "firehose:UpdateDestination", "firehose:DeleteDeliveryStream", "iam:PassRole"},
	"AWS::Lambda::Function":                {"lambda:CreateFunction", "lambda:GetFunction", "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration", "lambda:PutFunctionConcurrency", "lambda:DeleteFunctionConcurrency", "lambda:DeleteFunction", "iam:PassRole", "s3:GetObject"},
	"AWS::Lambda::Permission":              {"lambda:AddPermission", "lambda:RemovePermission", "lambda:GetPolicy"},
	"AWS::Lambda::Url":                     {"lambda:CreateFunctionUrlConfig", "lambda:GetFunctionUrlConfig", "lambda:UpdateFunctionUrlConfig", "lambda:DeleteFunctionUrlConfig"},
	"AWS::Logs::LogGroup":                  {"logs:CreateLogGroup", "logs:DescribeLogGroups", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy", "logs:DeleteLogGroup"},
	"AWS::Logs::LogStream":                 {"logs:CreateLogStream", "logs:DescribeLogStreams", "logs:DeleteLogStream"},
	"AWS::S3::Bucket":                      {"s3:CreateBucket", "s3:PutBucketPublicAccessBlock", "s3:PutEncryptionConfiguration", "s3:PutLifecycleConfiguration", "s3:PutBucketOwnershipControls", "s3:DeleteBucket"},
	"AWS::S3::BucketPolicy":                {"s3:PutBucketPolicy", "s3:GetBucketPolicy", "s3:DeleteBucketPolicy"},
	"AWS::SNS::Subscription":               {"sns:Subscribe", "sns:GetSubscriptionAttributes", "sns:Unsubscribe"},
	"AWS::SNS::Topic":                      {"sns:CreateTopic", "sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:DeleteTopic"},
	"AWS::StepFunctions::StateMachine": {"states:CreateStateMachine", "states:DescribeStateMachine", "states:UpdateStateMachine", "states:DeleteStateMachine",
		"states:ListStateMachineVersions", "states:TagResource", "states:UntagResource", "states:ListTagsForResource", "iam:PassRole"},
}

// removedTypes are resource types earlier versions of the template held
// and this one does not: updating a stack deployed with them deletes them,
// with the deployer's credentials, so the policy still allows their delete
// handlers' calls (and no more). Drop an entry once no such stack is left.
var removedTypes = map[string][]string{
	// The coordinator's asynchronous invocations (before the state machine).
	"AWS::Lambda::EventInvokeConfig": {"lambda:GetFunctionEventInvokeConfig", "lambda:DeleteFunctionEventInvokeConfig"},
	"AWS::SQS::Queue":                {"sqs:GetQueueAttributes", "sqs:DeleteQueue"},
}

// deployCommon is what infra/README.md's deploy, first run and tear down
// steps call besides the resources' handlers.
var deployCommon = []string{
	"cloudformation:CreateChangeSet", "cloudformation:DescribeChangeSet", "cloudformation:ExecuteChangeSet",
	"cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents", "cloudformation:DeleteStack",
	"cloudformation:GetTemplateSummary",
	"s3:PutObject", "s3:ListBucket", "s3:DeleteObject", // package uploads; tear down empties the buckets
	"ssm:PutParameter", "ssm:GetParameter", "ssm:DeleteParameter", // the collector's keys
	"states:StartExecution", "states:DescribeExecution", // the first run's backfill, and following it
}

// deployerWildcardActions are the only actions the policy may grant on
// Resource "*": they name no resource.
var deployerWildcardActions = []string{"cloudformation:GetTemplateSummary", "cloudformation:ValidateTemplate", "logs:DescribeLogGroups"}

type deployerStatement struct {
	Sid       string
	Effect    string
	Action    json.RawMessage
	Resource  json.RawMessage
	Condition map[string]map[string]json.RawMessage
}

func oneOrMany(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		t.Fatalf("%s: want a string or a list of strings: %v", raw, err)
	}
	return many
}

func deployerPolicy(t *testing.T) ([]deployerStatement, []byte) {
	t.Helper()
	b, err := os.ReadFile(deployerPolicyFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Version   string
		Statement []deployerStatement
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", deployerPolicyFile, err)
	}
	if doc.Version != "2012-10-17" {
		t.Errorf("%s: Version %q, want 2012-10-17", deployerPolicyFile, doc.Version)
	}
	return doc.Statement, b
}

// TestDeployerPolicyCoversTheStack: the deployer's policy allows every
// call CloudFormation makes for every resource type the template holds
// (a new type without its actions here fails), and the steps of
// infra/README.md around it.
func TestDeployerPolicyCoversTheStack(t *testing.T) {
	stmts, _ := deployerPolicy(t)
	allowed := map[string]bool{}
	for _, s := range stmts {
		if s.Effect != "Allow" {
			continue
		}
		for _, a := range oneOrMany(t, s.Action) {
			allowed[a] = true
		}
	}
	need := map[string][]string{"(deploy steps)": deployCommon}
	for typ, acts := range removedTypes {
		need[typ+" (removed: deleted on update)"] = acts
	}
	for id, r := range committedTree(t)["Resources"].(map[string]interface{}) {
		typ := r.(map[string]interface{})["Type"].(string)
		if _, ok := removedTypes[typ]; ok {
			t.Errorf("resource %s is a %s, listed in removedTypes: move it back to deployActions", id, typ)
		}
		acts, ok := deployActions[typ]
		if !ok {
			t.Errorf("resource %s is a %s: add the actions CloudFormation needs for it to %s and to deployActions", id, typ, deployerPolicyFile)
			continue
		}
		need[typ] = acts
	}
	for what, acts := range need {
		for _, a := range acts {
			if !allowed[a] {
				t.Errorf("%s: %s does not allow %s", what, deployerPolicyFile, a)
			}
		}
	}
	// The dead-letter queue is gone: the policy may delete it, not make one.
	for a := range allowed {
		if strings.HasPrefix(a, "sqs:") && !slices.Contains(removedTypes["AWS::SQS::Queue"], a) {
			t.Errorf("%s allows %s: no queue is left in the stack", deployerPolicyFile, a)
		}
	}
}

// TestDeployerPolicyIsScoped: every statement names the stack's own
// resources through the placeholders infra/README.md fills in, never a
// whole service; Resource "*" only for actions that name no resource; and
// iam:PassRole only to the services the stack's roles are for.
func TestDeployerPolicyIsScoped(t *testing.T) {
	stmts, b := deployerPolicy(t)
	for _, s := range stmts {
		acts := oneOrMany(t, s.Action)
		res := oneOrMany(t, s.Resource)
		if s.Effect != "Allow" {
			t.Errorf("%s: Effect %s; the policy only allows", s.Sid, s.Effect)
		}
		for _, a := range acts {
			if a == "*" || strings.HasSuffix(a, ":*") {
				t.Errorf("%s: grants a whole service: %s", s.Sid, a)
			}
		}
		if slices.Contains(res, "*") {
			for _, a := range acts {
				if !slices.Contains(deployerWildcardActions, a) {
					t.Errorf("%s: %s on Resource \"*\"", s.Sid, a)
				}
			}
			continue
		}
		for _, r := range res {
			if !strings.Contains(r, "STACK_NAME") && !strings.Contains(r, "BUCKET_NAME") && !strings.Contains(r, "GLUE_DATABASE") &&
				!strings.Contains(r, "ARTIFACTS_BUCKET") && !strings.HasSuffix(r, ":catalog") && !strings.HasSuffix(r, ":parameter/littlewarehouse/collector/api-keys") {
				t.Errorf("%s: resource %s is not the stack's own", s.Sid, r)
			}
		}
		if slices.Contains(acts, "iam:PassRole") {
			svcs := s.Condition["StringEquals"]["iam:PassedToService"]
			var got []string
			if err := json.Unmarshal(svcs, &got); err != nil {
				t.Errorf("%s: iam:PassRole without an iam:PassedToService list: %v", s.Sid, err)
			}
			sort.Strings(got)
			// Firehose, the functions, the state machine and the nightly
			// rule's target each take a role of the stack.
			if !slices.Equal(got, []string{"events.amazonaws.com", "firehose.amazonaws.com", "lambda.amazonaws.com", "states.amazonaws.com"}) {
				t.Errorf("%s: iam:PassRole to %v, want events, firehose, lambda and states only", s.Sid, got)
			}
		}
	}
	used := map[string]bool{}
	for _, w := range regexp.MustCompile(`\b[A-Z][A-Z_]+[A-Z]\b`).FindAllString(string(b), -1) {
		used[w] = true
	}
	for _, w := range deployerPlaceholders {
		delete(used, w)
	}
	if len(used) > 0 {
		t.Errorf("%s uses placeholders the README does not fill in: %v", deployerPolicyFile, used)
	}
	readme, err := os.ReadFile(path.Join("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range deployerPlaceholders {
		if !strings.Contains(string(readme), "s/"+w+"/") {
			t.Errorf("infra/README.md does not fill in %s (no s/%s/ in its sed command)", w, w)
		}
	}
	// The policy lets its holder rewrite policies named <stack>-*: its own
	// name must not be one, or the deployer could grant itself anything.
	names := regexp.MustCompile(`create-policy --policy-name (\S+)`).FindAllStringSubmatch(string(readme), -1)
	if len(names) == 0 {
		t.Errorf("infra/README.md does not create the deployer's policy (aws iam create-policy --policy-name ...)")
	}
	for _, m := range names {
		if strings.HasPrefix(m[1], "$STACK-") || strings.HasPrefix(m[1], "${STACK}-") {
			t.Errorf("infra/README.md names the deployer's policy %s, inside the <stack>-* policies it may change", m[1])
		}
	}
}
