// Delivery to storage: a private, encrypted S3 bucket and the Firehose stream (Direct PUT,
// extended_s3) that buffers the rule's records into it, through a role scoped to that bucket.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { Compression } from "../../core/delivery";
import {
  bucketControls,
  type BucketControls,
  type BucketControlsArgs,
} from "../storage/bucket-controls";
import { firehoseToS3, type FirehoseToS3Args } from "./firehose-to-s3";

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
  /**
   * Let `pulumi destroy` delete the bucket with its objects (and its access log bucket). Pulumi
   * deletes the bucket after the Firehose streams and the Flink application that write to it, so
   * nothing refills it meanwhile.
   * @default false: the bucket keeps the data and destroy fails until it is emptied
   */
  readonly forceDestroy?: boolean;
  /**
   * Encrypt the bucket with this customer-managed key (SSE-KMS with an S3 bucket key) and grant the
   * stream's role its data keys; also the stream's own encryption key when `streamEncryption` is on.
   * @default undefined: sseAlgorithm decides
   */
  readonly kmsKeyArn?: pulumi.Input<string>;
  /**
   * Server-side encryption of the stream (Direct PUT): with `kmsKeyArn`, or an AWS-owned key.
   * @default false
   */
  readonly streamEncryption?: boolean;
  /**
   * Ownership, versioning, lifecycle, a TLS-only bucket policy and access logging
   * (components/storage/bucket-controls.ts).
   * @default undefined: none of them
   */
  readonly controls?: BucketControlsArgs;
  /** Convert records to Parquet through a Glue table (firehose-to-s3.ts). @default undefined: JSON */
  readonly parquet?: FirehoseToS3Args["parquet"];
  /** Dynamic partitioning's jq query. @default undefined: not partitioned */
  readonly partitionQuery?: string;
  /** The objects' extension. @default undefined: Firehose's own */
  readonly fileExtension?: string;
}

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
  /** The bucket's customer-managed key, if any: writers into the bucket need its data keys. */
  readonly kmsKeyArn?: pulumi.Input<string>;
  /** The bucket's ownership, versioning, lifecycle, policy and access logging, when asked for. */
  readonly controls?: BucketControls;

  constructor(name: string, args: DeliveryStreamArgs, opts?: pulumi.ComponentResourceOptions) {
    super("iot-pipeline:delivery:DeliveryStream", name, {}, opts);
    const parent = { parent: this };

    this.bucket = new aws.s3.Bucket(
      `${name}-bucket`,
      { bucket: args.bucketName, forceDestroy: args.forceDestroy ?? false },
      parent,
    );
    const publicAccess = new aws.s3.BucketPublicAccessBlock(
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
          args.kmsKeyArn === undefined
            ? {
                applyServerSideEncryptionByDefault: { sseAlgorithm: args.sseAlgorithm ?? "AES256" },
                bucketKeyEnabled: args.sseAlgorithm === "aws:kms",
              }
            : {
                applyServerSideEncryptionByDefault: {
                  sseAlgorithm: "aws:kms",
                  kmsMasterKeyId: args.kmsKeyArn,
                },
                // One data key per bucket and period instead of per object: fewer KMS calls.
                bucketKeyEnabled: true,
              },
        ],
      },
      parent,
    );
    this.kmsKeyArn = args.kmsKeyArn;
    this.controls =
      args.controls === undefined
        ? undefined
        : bucketControls(
            `${name}-bucket`,
            this.bucket,
            publicAccess,
            args.controls,
            this,
            args.forceDestroy ?? false,
          );

    const delivery = firehoseToS3(
      name,
      {
        streamName: args.streamName,
        bucketArn: this.bucket.arn,
        accountId: aws.getCallerIdentityOutput({}, parent).accountId,
        bufferSizeMiB: args.bufferSizeMiB ?? 5,
        bufferIntervalSeconds: args.bufferIntervalSeconds ?? 300,
        compression: args.compression ?? "UNCOMPRESSED",
        prefix: args.prefix ?? "telemetry/",
        errorOutputPrefix: args.errorOutputPrefix ?? "errors/",
        errorLogging: args.errorLogging === true ? { streamName: args.streamName } : undefined,
        parquet: args.parquet,
        partitionQuery: args.partitionQuery,
        fileExtension: args.fileExtension,
        bucketKeyArn: args.kmsKeyArn,
        streamEncryption: args.streamEncryption === true ? { keyArn: args.kmsKeyArn } : undefined,
      },
      this,
    );
    this.stream = delivery.stream;
    this.role = delivery.role;
    this.logGroup = delivery.logGroup;

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
