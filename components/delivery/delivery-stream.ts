// Delivery to storage: a private, encrypted S3 bucket and the Firehose stream (Direct PUT,
// extended_s3) that buffers the rule's records into it, through a role scoped to that bucket.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { Compression } from "../../core/delivery";
import { allowDocument, trustPolicy } from "../private/iam";

export type SseAlgorithm = "AES256" | "aws:kms";

export interface DeliveryStreamArgs {
  /** The Firehose stream's name (the seed's `weather-data-stream`). */
  readonly streamName: string;
  /** The bucket's physical name; the pipeline derives a unique one when none is configured. */
  readonly bucketName: pulumi.Input<string>;
  /** Buffering size hint, 1-128 MiB. @default 5 */
  readonly bufferSizeMiB?: number;
  /** Buffering interval hint, 0-900 s. @default 300 */
  readonly bufferIntervalSeconds?: number;
  /** Compression of delivered objects. @default "UNCOMPRESSED" (the seed's "off") */
  readonly compression?: Compression;
  /** Key prefix of delivered objects; Firehose appends YYYY/MM/dd/HH/ (UTC). @default "telemetry/" */
  readonly prefix?: string;
  /** Key prefix of records that could not be delivered. @default "errors/" */
  readonly errorOutputPrefix?: string;
  /** Firehose error logging to CloudWatch Logs (a log group and stream of its own). @default false */
  readonly errorLogging?: boolean;
  /**
   * Server-side encryption. `aws:kms` uses the account's AWS-managed `aws/s3` key, which S3 may
   * use on Firehose's behalf without a grant in the role.
   * @default "AES256"
   */
  readonly sseAlgorithm?: SseAlgorithm;
}

/** Firehose's own log-group convention, so the console's "error logs" link finds it. */
export function firehoseLogGroupName(streamName: string): string {
  return `/aws/kinesisfirehose/${streamName}`;
}

/** The log stream Firehose writes S3 delivery errors to. */
export const FIREHOSE_LOG_STREAM = "DestinationDelivery";

export class DeliveryStream extends pulumi.ComponentResource {
  /** The destination bucket. */
  readonly bucket: aws.s3.Bucket;
  /** The Firehose delivery stream. */
  readonly stream: aws.kinesis.FirehoseDeliveryStream;
  /** The role Firehose assumes to write to the bucket. */
  readonly role: aws.iam.Role;
  /** The error log group, when error logging is on. */
  readonly logGroup?: aws.cloudwatch.LogGroup;
  /** The bucket's name. */
  readonly bucketName: pulumi.Output<string>;
  /** The stream's name. */
  readonly streamName: pulumi.Output<string>;
  /** The stream's ARN, which the rule's role is scoped to. */
  readonly streamArn: pulumi.Output<string>;

  constructor(name: string, args: DeliveryStreamArgs, opts?: pulumi.ComponentResourceOptions) {
    super("iot-pipeline:delivery:DeliveryStream", name, {}, opts);
    const parent = { parent: this };
    const errorLogging = args.errorLogging ?? false;

    this.bucket = new aws.s3.Bucket(`${name}-bucket`, { bucket: args.bucketName }, parent);
    new aws.s3.BucketPublicAccessBlock(
      `${name}-bucket-public-access`,
      {
        bucket: this.bucket.id,
        blockPublicAcls: true,
        blockPublicPolicy: true,
        ignorePublicAcls: true,
        restrictPublicBuckets: true,
      },
      parent,
    );
    new aws.s3.BucketServerSideEncryptionConfiguration(
      `${name}-bucket-encryption`,
      {
        bucket: this.bucket.id,
        rules: [
          {
            applyServerSideEncryptionByDefault: { sseAlgorithm: args.sseAlgorithm ?? "AES256" },
            bucketKeyEnabled: args.sseAlgorithm === "aws:kms",
          },
        ],
      },
      parent,
    );

    let logStream: aws.cloudwatch.LogStream | undefined;
    if (errorLogging) {
      this.logGroup = new aws.cloudwatch.LogGroup(
        `${name}-errors`,
        { name: firehoseLogGroupName(args.streamName), retentionInDays: 30 },
        parent,
      );
      logStream = new aws.cloudwatch.LogStream(
        `${name}-errors-stream`,
        { name: FIREHOSE_LOG_STREAM, logGroupName: this.logGroup.name },
        parent,
      );
    }

    const accountId = aws.getCallerIdentityOutput({}, parent).accountId;
    this.role = new aws.iam.Role(
      `${name}-role`,
      { assumeRolePolicy: accountId.apply((a) => trustPolicy("firehose.amazonaws.com", a)) },
      parent,
    );
    const policy = new aws.iam.RolePolicy(
      `${name}-role-policy`,
      {
        role: this.role.id,
        policy: pulumi.all([this.bucket.arn, logStream?.arn]).apply(([bucketArn, logStreamArn]) =>
          allowDocument(
            {
              Sid: "DeliverToBucket",
              Effect: "Allow",
              // The actions Firehose's S3 destination documents, on this bucket only.
              Action: [
                "s3:AbortMultipartUpload",
                "s3:GetBucketLocation",
                "s3:GetObject",
                "s3:ListBucket",
                "s3:ListBucketMultipartUploads",
                "s3:PutObject",
              ],
              Resource: [bucketArn, `${bucketArn}/*`],
            },
            ...(logStreamArn === undefined
              ? []
              : [
                  {
                    Sid: "LogDeliveryErrors",
                    Effect: "Allow" as const,
                    Action: ["logs:PutLogEvents"],
                    Resource: [logStreamArn],
                  },
                ]),
          ),
        ),
      },
      parent,
    );

    this.stream = new aws.kinesis.FirehoseDeliveryStream(
      `${name}-stream`,
      {
        name: args.streamName,
        destination: "extended_s3",
        extendedS3Configuration: {
          bucketArn: this.bucket.arn,
          roleArn: this.role.arn,
          bufferingSize: args.bufferSizeMiB ?? 5,
          bufferingInterval: args.bufferIntervalSeconds ?? 300,
          compressionFormat: args.compression ?? "UNCOMPRESSED",
          prefix: args.prefix ?? "telemetry/",
          errorOutputPrefix: args.errorOutputPrefix ?? "errors/",
          cloudwatchLoggingOptions:
            this.logGroup !== undefined && logStream !== undefined
              ? { enabled: true, logGroupName: this.logGroup.name, logStreamName: logStream.name }
              : { enabled: false },
        },
      },
      // Firehose checks its role on creation: the grant must exist first.
      { parent: this, dependsOn: [policy] },
    );

    this.bucketName = this.bucket.bucket;
    this.streamName = this.stream.name;
    this.streamArn = this.stream.arn;
    this.registerOutputs({
      bucketName: this.bucketName,
      streamName: this.streamName,
      streamArn: this.streamArn,
      roleArn: this.role.arn,
    });
  }
}
