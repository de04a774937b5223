package infra

import (
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/iam"
)

// policyDocument is an IAM policy document. Resource strings are literal
// ARNs or goformation intrinsics (cloudformation.Sub, GetAtt): never raw
// {"Ref": …} maps, which goformation would try to resolve.
type policyDocument struct {
	Version   string      `json:"Version"`
	Statement []statement `json:"Statement"`
}

// statement is one IAM policy statement.
type statement struct {
	Sid       string                            `json:"Sid,omitempty"`
	Effect    string                            `json:"Effect"`
	Principal interface{}                       `json:"Principal,omitempty"`
	Action    []string                          `json:"Action"`
	Resource  []string                          `json:"Resource,omitempty"`
	Condition map[string]map[string]interface{} `json:"Condition,omitempty"`
}

func policy(statements ...statement) policyDocument {
	return policyDocument{Version: "2012-10-17", Statement: statements}
}

func allow(sid string, actions []string, resources ...string) statement {
	return statement{Sid: sid, Effect: "Allow", Action: actions, Resource: resources}
}

// assumeRole is the trust policy letting service assume a role; condition,
// if not nil, guards against the confused deputy.
func assumeRole(service string, condition map[string]map[string]interface{}) policyDocument {
	return policy(statement{
		Effect:    "Allow",
		Principal: map[string]interface{}{"Service": service},
		Action:    []string{"sts:AssumeRole"},
		Condition: condition,
	})
}

func role(description string, trust policyDocument, name string, doc policyDocument) *iam.Role {
	return &iam.Role{
		Description:              cloudformation.String(description),
		AssumeRolePolicyDocument: trust,
		Policies:                 []iam.Role_Policy{{PolicyName: name, PolicyDocument: doc}},
	}
}

// ARNs of the stack's resources, as Fn::Sub strings.

func bucketARN() string { return cloudformation.Sub("arn:${AWS::Partition}:s3:::${" + idBucket + "}") }

// objectsARN is every object under prefix (which ends in "/").
func objectsARN(prefix string) string {
	return cloudformation.Sub("arn:${AWS::Partition}:s3:::${" + idBucket + "}/" + prefix + "*")
}

func objectsARNs(prefixes ...string) []string {
	out := make([]string, len(prefixes))
	for i, p := range prefixes {
		out[i] = objectsARN(p)
	}
	return out
}

func glueCatalogARN() string {
	return cloudformation.Sub("arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:catalog")
}

func glueDatabaseARN() string {
	return cloudformation.Sub("arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:database/${" + idDatabase + "}")
}

// glueTableARN is table name of the stack's database; "*" is all its tables.
func glueTableARN(name string) string {
	return cloudformation.Sub("arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:table/${" + idDatabase + "}/" + name)
}

// Actions, by what they let a principal do.
var (
	// s3ListBucket lets a role list key names in the bucket. It is granted
	// on the bucket without an s3:prefix condition on purpose: S3 answers a
	// GET or HEAD of a missing key with 404 only to a caller that may list
	// the bucket, and 403 otherwise, and the store relies on 404 (a missing
	// manifest or lease is normal). It reveals key names, never contents;
	// object reads and writes stay limited to the prefixes below.
	s3ListBucket  = []string{"s3:GetBucketLocation", "s3:ListBucket"}
	s3Read        = []string{"s3:GetObject"}
	s3ReadWrite   = []string{"s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"}
	logsWrite     = []string{"logs:CreateLogStream", "logs:PutLogEvents"}
	glueReadTable = []string{"glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"}
	// glueCatalog is what the rollup function does in Glue, in its register
	// stage (docs/design.md §Publish and commit, §Where it runs): keep the
	// tables' schemas current and register partitions.
	// They are exactly the Glue calls of internal/catalog (a test checks it):
	// CreateDatabase is used only if the database is missing, which on
	// this stack it never is, but the call is made on its one database.
	glueCatalog = []string{
		"glue:BatchCreatePartition", "glue:BatchDeletePartition", "glue:BatchUpdatePartition",
		"glue:CreateDatabase", "glue:CreateTable", "glue:GetDatabase", "glue:GetPartitions", "glue:GetTable",
		"glue:UpdateTable",
	}
	glueReadCatalog = []string{
		"glue:BatchGetPartition", "glue:GetDatabase", "glue:GetDatabases", "glue:GetPartition", "glue:GetPartitions",
		"glue:GetTable", "glue:GetTables",
	}
)

// Key prefixes of the bucket (docs/design.md §Layout).
const (
	prefixRaw           = "raw/"
	prefixRawErrors     = "raw-errors/"
	prefixCurated       = "curated/"
	prefixState         = "_state/"
	prefixConfig        = "config/" // what people set (funnels.json): the functions read it
	prefixSegments      = "_state/segments/"
	prefixAthenaResults = "athena-results/"
	prefixReports       = "reports/"
)
