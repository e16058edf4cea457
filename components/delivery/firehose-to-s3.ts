// One Firehose stream into a bucket the caller owns, with the role Firehose assumes for it and,
// optionally, its error logging: what the telemetry delivery and the analytics windows' delivery
// share. Its source is Direct PUT (the topic rule) or a Kinesis Data Stream (the Flink job's output).
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { Compression } from "../../core/delivery";
import { type IamStatement, serviceRole } from "../private/iam";

/** Firehose's own log-group convention, so the console's "error logs" link finds it. */
export function firehoseLogGroupName(streamName: string): string {
  return `/aws/kinesisfirehose/${streamName}`;
}

/** The log stream Firehose writes S3 delivery errors to. */
export const FIREHOSE_LOG_STREAM = "DestinationDelivery";

/**
 * What Firehose's S3 destination calls (Firehose developer guide, S3 access), split by the resource
 * type IAM authorizes each on (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html):
 * these on the bucket ARN ...
 */
export const S3_BUCKET_ACTIONS = [
  "s3:GetBucketLocation",
  "s3:ListBucket",
  "s3:ListBucketMultipartUploads",
];
/** ... and these on the objects' ARNs (`bucket/*`). */
export const S3_OBJECT_ACTIONS = ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"];

/**
 * What Firehose calls on the Glue table it converts records with
 * (https://docs.aws.amazon.com/firehose/latest/dev/controlling-access.html#using-iam-glue), on the
 * catalog, database and table, which Glue authorizes table reads on
 * (https://docs.aws.amazon.com/glue/latest/dg/glue-specifying-resource-arns.html).
 */
export const GLUE_SCHEMA_ACTIONS = [
  "glue:GetTable",
  "glue:GetTableVersion",
  "glue:GetTableVersions",
];

/** What Firehose calls on a customer-managed key that encrypts the bucket (same page, S3 access). */
export const KMS_DATA_KEY_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey"];

/** What Firehose calls to read a Kinesis Data Stream source (same page). */
export const KINESIS_SOURCE_ACTIONS = [
  "kinesis:DescribeStream",
  "kinesis:GetShardIterator",
  "kinesis:GetRecords",
  "kinesis:ListShards",
];

export interface FirehoseToS3Args {
  /** The stream's name. */
  readonly streamName: pulumi.Input<string>;
  readonly bucketArn: pulumi.Input<string>;
  readonly accountId: pulumi.Input<string>;
  /** The role's name; auto-named when undefined. */
  readonly roleName?: string;
  readonly bufferSizeMiB: number;
  readonly bufferIntervalSeconds: number;
  readonly compression: Compression;
  readonly prefix: string;
  readonly errorOutputPrefix: string;
  /** Log delivery errors to `/aws/kinesisfirehose/<stream>` (stream name known up front). */
  readonly errorLogging?: { readonly streamName: string };
  /** Read from this Kinesis Data Stream instead of Direct PUT. */
  readonly kinesisSourceArn?: pulumi.Input<string>;
  /** Append "\n" to every record (Firehose's AppendDelimiterToRecord processor). */
  readonly newlineDelimited?: boolean;
  /** Convert records to Parquet with this Glue table's schema (needs a 64 MiB buffer). */
  readonly parquet?: {
    readonly databaseName: pulumi.Input<string>;
    readonly tableName: pulumi.Input<string>;
    readonly glueArns: pulumi.Input<{ catalog: string; database: string; table: string }>;
    /** Parquet's own codec; the stream's compressionFormat must then be UNCOMPRESSED. */
    readonly compression: "SNAPPY" | "GZIP" | "UNCOMPRESSED";
  };
  /** Dynamic partitioning with this jq metadata-extraction query (inline parsing). */
  readonly partitionQuery?: string;
  /** The object names' extension (`.parquet`). */
  readonly fileExtension?: string;
  /** The bucket's customer-managed key: the role may make and read data keys with it. */
  readonly bucketKeyArn?: pulumi.Input<string>;
  /** Server-side encryption of the stream itself (Direct PUT sources only). */
  readonly streamEncryption?: { readonly keyArn?: pulumi.Input<string> };
}

export interface FirehoseToS3 {
  readonly stream: aws.kinesis.FirehoseDeliveryStream;
  readonly role: aws.iam.Role;
  readonly logGroup?: aws.cloudwatch.LogGroup;
}

/**
 * The stream's record processors: the newline the windows need, and the metadata extraction that
 * dynamic partitioning reads its keys from (JQ-1.6, inline parsing).
 */
function processing(args: FirehoseToS3Args) {
  const processors: {
    type: string;
    parameters?: { parameterName: string; parameterValue: string }[];
  }[] = [];
  if (args.partitionQuery !== undefined) {
    processors.push({
      type: "MetadataExtraction",
      parameters: [
        { parameterName: "MetadataExtractionQuery", parameterValue: args.partitionQuery },
        { parameterName: "JsonParsingEngine", parameterValue: "JQ-1.6" },
      ],
    });
  }
  if (args.newlineDelimited === true) processors.push({ type: "AppendDelimiterToRecord" });
  return processors.length === 0 ? {} : { processingConfiguration: { enabled: true, processors } };
}

/** The stream `name-stream`, its role `name-role` and log group `name-errors`, under `parent`. */
export function firehoseToS3(
  name: string,
  args: FirehoseToS3Args,
  parent: pulumi.Resource,
): FirehoseToS3 {
  let logGroup: aws.cloudwatch.LogGroup | undefined;
  let logStream: aws.cloudwatch.LogStream | undefined;
  if (args.errorLogging !== undefined) {
    logGroup = new aws.cloudwatch.LogGroup(
      `${name}-errors`,
      { name: firehoseLogGroupName(args.errorLogging.streamName), retentionInDays: 30 },
      { parent },
    );
    logStream = new aws.cloudwatch.LogStream(
      `${name}-errors-stream`,
      { name: FIREHOSE_LOG_STREAM, logGroupName: logGroup.name },
      { parent },
    );
  }

  const { role, grant } = serviceRole(
    `${name}-role`,
    {
      service: "firehose.amazonaws.com",
      roleName: args.roleName,
      accountId: args.accountId,
      statements: pulumi
        .all([
          args.bucketArn,
          logStream?.arn,
          args.kinesisSourceArn,
          args.parquet?.glueArns,
          args.bucketKeyArn,
        ])
        .apply(([bucketArn, logStreamArn, sourceArn, glue, keyArn]) => {
          const statements: IamStatement[] = [
            {
              Sid: "FindBucket",
              Effect: "Allow",
              Action: [...S3_BUCKET_ACTIONS],
              Resource: [bucketArn],
            },
            {
              Sid: "DeliverToBucket",
              Effect: "Allow",
              Action: [...S3_OBJECT_ACTIONS],
              Resource: [`${bucketArn}/*`],
            },
          ];
          if (sourceArn !== undefined) {
            statements.push({
              Sid: "ReadSourceStream",
              Effect: "Allow",
              Action: [...KINESIS_SOURCE_ACTIONS],
              Resource: [sourceArn],
            });
          }
          if (glue !== undefined) {
            statements.push({
              Sid: "ReadTableSchema",
              Effect: "Allow",
              Action: [...GLUE_SCHEMA_ACTIONS],
              Resource: [glue.catalog, glue.database, glue.table],
            });
          }
          if (keyArn !== undefined) {
            statements.push({
              Sid: "EncryptObjects",
              Effect: "Allow",
              Action: [...KMS_DATA_KEY_ACTIONS],
              Resource: [keyArn],
            });
          }
          if (logStreamArn !== undefined) {
            statements.push({
              Sid: "LogDeliveryErrors",
              Effect: "Allow",
              Action: ["logs:PutLogEvents"],
              Resource: [logStreamArn],
            });
          }
          return statements;
        }),
    },
    parent,
  );

  const stream = new aws.kinesis.FirehoseDeliveryStream(
    `${name}-stream`,
    {
      name: args.streamName,
      destination: "extended_s3",
      ...(args.streamEncryption === undefined || args.kinesisSourceArn !== undefined
        ? {}
        : {
            serverSideEncryption:
              args.streamEncryption.keyArn === undefined
                ? { enabled: true, keyType: "AWS_OWNED_CMK" }
                : {
                    enabled: true,
                    keyType: "CUSTOMER_MANAGED_CMK",
                    keyArn: args.streamEncryption.keyArn,
                  },
          }),
      ...(args.kinesisSourceArn === undefined
        ? {}
        : {
            kinesisSourceConfiguration: {
              kinesisStreamArn: args.kinesisSourceArn,
              roleArn: role.arn,
            },
          }),
      extendedS3Configuration: {
        bucketArn: args.bucketArn,
        roleArn: role.arn,
        bufferingSize: args.bufferSizeMiB,
        bufferingInterval: args.bufferIntervalSeconds,
        // Format conversion needs UNCOMPRESSED here; Parquet compresses its own pages.
        compressionFormat: args.parquet === undefined ? args.compression : "UNCOMPRESSED",
        prefix: args.prefix,
        errorOutputPrefix: args.errorOutputPrefix,
        ...processing(args),
        ...(args.partitionQuery === undefined
          ? {}
          : { dynamicPartitioningConfiguration: { enabled: true } }),
        ...(args.fileExtension === undefined ? {} : { fileExtension: args.fileExtension }),
        ...(args.parquet === undefined
          ? {}
          : {
              dataFormatConversionConfiguration: {
                enabled: true,
                inputFormatConfiguration: { deserializer: { openXJsonSerDe: {} } },
                outputFormatConfiguration: {
                  serializer: { parquetSerDe: { compression: args.parquet.compression } },
                },
                schemaConfiguration: {
                  databaseName: args.parquet.databaseName,
                  tableName: args.parquet.tableName,
                  roleArn: role.arn,
                },
              },
            }),
        cloudwatchLoggingOptions:
          logGroup !== undefined && logStream !== undefined
            ? { enabled: true, logGroupName: logGroup.name, logStreamName: logStream.name }
            : { enabled: false },
      },
    },
    // Firehose checks its role on creation: the grant must exist first.
    { parent, dependsOn: [grant] },
  );
  return { stream, role, logGroup };
}
