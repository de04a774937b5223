package infra

import (
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/glue"
	"github.com/awslabs/goformation/v7/cloudformation/policies"
	"github.com/awslabs/goformation/v7/cloudformation/s3"
	"github.com/littlewarehouse/warehouse/internal/catalog"
)

// noncurrentVersionDays is how long a non-current object version is kept.
const noncurrentVersionDays = 1

// storage adds the bucket and its policy.
//
// Lifecycle: raw/ moves to Standard-IA after RawInfrequentAccessDays (it is
// read once when it arrives, then only for rebuilds); the rollup's routing
// segments expire after SegmentRetentionDays (segments of days past the max
// lateness are never read again, docs/design.md §Routing and segments); Athena's results after 30
// days; incomplete multipart uploads anywhere after a day. Superseded run
// folders under curated/ are deleted by the job itself after its grace
// period (docs/design.md §Publish and commit): a lifecycle rule cannot tell a superseded run from
// the current one, so curated/ has no expiry. The bucket is not versioned,
// so a deleted run is gone and costs nothing; should versioning be turned
// on, non-current versions expire after noncurrentVersionDays, so that a
// row rollup erase removed does not live on in an old version.
func (b *builder) storage() {
	rules := []s3.Bucket_Rule{
		{
			Id:          cloudformation.String("raw-to-infrequent-access"),
			Status:      "Enabled",
			Prefix:      cloudformation.String(prefixRaw),
			Transitions: []s3.Bucket_Transition{{StorageClass: "STANDARD_IA", TransitionInDays: cloudformation.Int(defaultRawInfrequentAccessDays)}},
		},
		{
			Id:               cloudformation.String("expire-routing-segments"),
			Status:           "Enabled",
			Prefix:           cloudformation.String(prefixSegments),
			ExpirationInDays: cloudformation.Int(defaultSegmentRetentionDays),
		},
		{
			Id:               cloudformation.String("expire-athena-results"),
			Status:           "Enabled",
			Prefix:           cloudformation.String(prefixAthenaResults),
			ExpirationInDays: cloudformation.Int(athenaResultsRetentionDays),
		},
		{
			// An erased row must not live on in an old version (rollup
			// erase): if versioning is ever turned on (a backup policy, a
			// replication rule), every overwritten or deleted object's old
			// version goes the day after.
			Id:                          cloudformation.String("expire-noncurrent-versions"),
			Status:                      "Enabled",
			NoncurrentVersionExpiration: &s3.Bucket_NoncurrentVersionExpiration{NoncurrentDays: noncurrentVersionDays},
		},
		{
			Id:                             cloudformation.String("abort-incomplete-multipart-uploads"),
			Status:                         "Enabled",
			AbortIncompleteMultipartUpload: &s3.Bucket_AbortIncompleteMultipartUpload{DaysAfterInitiation: 1},
		},
	}
	b.add(idBucket, &s3.Bucket{
		BucketName: cloudformation.RefPtr(ParamBucketName),
		BucketEncryption: &s3.Bucket_BucketEncryption{ServerSideEncryptionConfiguration: []s3.Bucket_ServerSideEncryptionRule{{
			ServerSideEncryptionByDefault: &s3.Bucket_ServerSideEncryptionByDefault{SSEAlgorithm: "AES256"},
		}}},
		PublicAccessBlockConfiguration: &s3.Bucket_PublicAccessBlockConfiguration{
			BlockPublicAcls: cloudformation.Bool(true), BlockPublicPolicy: cloudformation.Bool(true),
			IgnorePublicAcls: cloudformation.Bool(true), RestrictPublicBuckets: cloudformation.Bool(true),
		},
		OwnershipControls:      &s3.Bucket_OwnershipControls{Rules: []s3.Bucket_OwnershipControlsRule{{ObjectOwnership: cloudformation.String("BucketOwnerEnforced")}}},
		LifecycleConfiguration: &s3.Bucket_LifecycleConfiguration{Rules: rules},
		// A renamed bucket is a new bucket: keep the old one and its data.
		AWSCloudFormationUpdateReplacePolicy: policies.UpdateReplacePolicy("Retain"),
	})
	b.refNumber(idBucket, []string{"LifecycleConfiguration", "Rules", "0", "Transitions", "0", "TransitionInDays"}, ParamRawInfrequentAccessDays)
	b.refNumber(idBucket, []string{"LifecycleConfiguration", "Rules", "1", "ExpirationInDays"}, ParamSegmentRetentionDays)

	// TLS only, 1.2 or later. Deny statements: Principal "*" is every caller
	// and "s3:*" every action, as a deny must be.
	both := []string{bucketARN(), objectsARN("")}
	b.add(idBucketPolicy, &s3.BucketPolicy{
		Bucket: cloudformation.Ref(idBucket),
		PolicyDocument: policy(
			statement{Sid: "DenyInsecureTransport", Effect: "Deny", Principal: "*", Action: []string{"s3:*"}, Resource: both,
				Condition: map[string]map[string]interface{}{"Bool": {"aws:SecureTransport": "false"}}},
			statement{Sid: "DenyOldTLS", Effect: "Deny", Principal: "*", Action: []string{"s3:*"}, Resource: both,
				Condition: map[string]map[string]interface{}{"NumericLessThan": {"s3:TlsVersion": "1.2"}}},
		),
	})
}

// catalog adds the Glue database, the raw table and every curated table.
func (b *builder) catalog(cfg Config) error {
	b.add(idDatabase, &glue.Database{
		CatalogId: cloudformation.Ref("AWS::AccountId"),
		DatabaseInput: &glue.Database_DatabaseInput{
			Name:        cloudformation.RefPtr(ParamGlueDatabaseName),
			Description: cloudformation.String("Little Warehouse: raw events and curated tables (generated, see infra/)"),
		},
	})
	defs := append([]catalog.TableDef{RawTableDef(cfg.RawColumns)}, CuratedTableDefs(cfg.Curated)...)
	for _, d := range defs {
		t, err := glueTable(d)
		if err != nil {
			return err
		}
		b.add(TableID(d.Name), t)
	}
	return nil
}
