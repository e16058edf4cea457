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

/** What Firehose's S3 destination calls on the bucket (Firehose developer guide, S3 access). */
export const S3_DELIVERY_ACTIONS = [
  "s3:AbortMultipartUpload",
  "s3:GetBucketLocation",
  "s3:GetObject",
  "s3:ListBucket",
  "s3:ListBucketMultipartUploads",
  "s3:PutObject",
];

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
}

export interface FirehoseToS3 {
  readonly stream: aws.kinesis.FirehoseDeliveryStream;
  readonly role: aws.iam.Role;
  readonly logGroup?: aws.cloudwatch.LogGroup;
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
        .all([args.bucketArn, logStream?.arn, args.kinesisSourceArn])
        .apply(([bucketArn, logStreamArn, sourceArn]) => {
          const statements: IamStatement[] = [
            {
              Sid: "DeliverToBucket",
              Effect: "Allow",
              Action: [...S3_DELIVERY_ACTIONS],
              Resource: [bucketArn, `${bucketArn}/*`],
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
        compressionFormat: args.compression,
        prefix: args.prefix,
        errorOutputPrefix: args.errorOutputPrefix,
        ...(args.newlineDelimited === true
          ? {
              processingConfiguration: {
                enabled: true,
                processors: [{ type: "AppendDelimiterToRecord" }],
              },
            }
          : {}),
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
