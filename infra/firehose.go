package infra

import (
	"github.com/awslabs/goformation/v7/cloudformation"
	"github.com/awslabs/goformation/v7/cloudformation/kinesisfirehose"
	"github.com/awslabs/goformation/v7/cloudformation/logs"
	"github.com/littlewarehouse/warehouse/internal/catalog"
)

// Firehose delivery settings (docs/collector.md "Sending to Firehose").
const (
	// FirehosePrefix is Firehose's default layout, spelled out:
	// raw/YYYY/MM/DD/HH/ by arrival hour, UTC.
	FirehosePrefix = "raw/!{timestamp:yyyy/MM/dd/HH}/"
	// FirehoseErrorPrefix puts conversion failures under
	// raw-errors/format-conversion-failed/YYYY/MM/DD/HH/, where the rollup
	// reads them.
	FirehoseErrorPrefix = "raw-errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd/HH}/"
	firehoseLogStream   = "DestinationDelivery"
)

// firehose adds the delivery stream, its role and its log group.
//
// The stream converts JSON to Parquet with the schema of the raw Glue table
// at its LATEST version: the stream has no column list of its own, so the
// raw table (from event.Columns()) is the one definition both read, and a
// column added to event.Raw reaches the conversion when the stack is
// updated, with no stream edit (the seed system's worst pain).
func (b *builder) firehose() {
	b.add(idFirehoseLogGroup, &logs.LogGroup{
		LogGroupName:    cloudformation.SubPtr("/aws/kinesisfirehose/${AWS::StackName}-events"),
		RetentionInDays: cloudformation.Int(logRetentionDays),
	})
	b.add(idFirehoseLogStream, &logs.LogStream{
		LogGroupName:  cloudformation.Ref(idFirehoseLogGroup),
		LogStreamName: cloudformation.String(firehoseLogStream),
	})

	rawTable := TableID(catalog.RawTable)
	b.add(idFirehoseRole, role("Firehose: write raw/ and raw-errors/, read the raw table's schema",
		assumeRole("firehose.amazonaws.com", map[string]map[string]interface{}{
			"StringEquals": {"sts:ExternalId": cloudformation.Ref("AWS::AccountId")},
		}),
		"deliver-raw",
		policy(
			allow("ListBucket", []string{"s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"}, bucketARN()),
			allow("WriteRaw", []string{"s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"}, objectsARNs(prefixRaw, prefixRawErrors)...),
			allow("ReadRawSchema", glueReadTable, glueCatalogARN(), glueDatabaseARN(), glueTableARN(catalog.RawTable)),
			allow("Log", []string{"logs:PutLogEvents"}, cloudformation.GetAtt(idFirehoseLogGroup, "Arn")),
		)))

	b.add(idStream, &kinesisfirehose.DeliveryStream{
		DeliveryStreamName: cloudformation.SubPtr("${AWS::StackName}-events"),
		DeliveryStreamType: cloudformation.String("DirectPut"),
		DeliveryStreamEncryptionConfigurationInput: &kinesisfirehose.DeliveryStream_DeliveryStreamEncryptionConfigurationInput{
			KeyType: "AWS_OWNED_CMK",
		},
		ExtendedS3DestinationConfiguration: &kinesisfirehose.DeliveryStream_ExtendedS3DestinationConfiguration{
			BucketARN:         cloudformation.GetAtt(idBucket, "Arn"),
			RoleARN:           cloudformation.GetAtt(idFirehoseRole, "Arn"),
			Prefix:            cloudformation.String(FirehosePrefix),
			ErrorOutputPrefix: cloudformation.String(FirehoseErrorPrefix),
			BufferingHints: &kinesisfirehose.DeliveryStream_BufferingHints{
				SizeInMBs:         cloudformation.Int(firehoseBufferMiB),
				IntervalInSeconds: cloudformation.Int(firehoseBufferSeconds),
			},
			// Parquet is compressed inside; the object must not be.
			CompressionFormat: cloudformation.String("UNCOMPRESSED"),
			CloudWatchLoggingOptions: &kinesisfirehose.DeliveryStream_CloudWatchLoggingOptions{
				Enabled:       cloudformation.Bool(true),
				LogGroupName:  cloudformation.RefPtr(idFirehoseLogGroup),
				LogStreamName: cloudformation.RefPtr(idFirehoseLogStream),
			},
			DataFormatConversionConfiguration: &kinesisfirehose.DeliveryStream_DataFormatConversionConfiguration{
				Enabled: cloudformation.Bool(true),
				InputFormatConfiguration: &kinesisfirehose.DeliveryStream_InputFormatConfiguration{
					Deserializer: &kinesisfirehose.DeliveryStream_Deserializer{
						// OpenX reads the collector's yyyy-MM-ddTHH:mm:ss.SSSZ
						// timestamps without configuration; keys match columns
						// case-insensitively, as firehose.Convert does locally.
						OpenXJsonSerDe: &kinesisfirehose.DeliveryStream_OpenXJsonSerDe{
							CaseInsensitive:                    cloudformation.Bool(true),
							ConvertDotsInJsonKeysToUnderscores: cloudformation.Bool(false),
						},
					},
				},
				OutputFormatConfiguration: &kinesisfirehose.DeliveryStream_OutputFormatConfiguration{
					Serializer: &kinesisfirehose.DeliveryStream_Serializer{
						ParquetSerDe: &kinesisfirehose.DeliveryStream_ParquetSerDe{Compression: cloudformation.String("SNAPPY")},
					},
				},
				SchemaConfiguration: &kinesisfirehose.DeliveryStream_SchemaConfiguration{
					CatalogId:    cloudformation.RefPtr("AWS::AccountId"),
					Region:       cloudformation.RefPtr("AWS::Region"),
					DatabaseName: cloudformation.RefPtr(idDatabase),
					TableName:    cloudformation.RefPtr(rawTable),
					VersionId:    cloudformation.String("LATEST"),
					RoleARN:      cloudformation.GetAttPtr(idFirehoseRole, "Arn"),
				},
			},
		},
	})
}
