// The streaming window in the cloud: a Kinesis Data Stream the topic rule feeds, and a Managed
// Service for Apache Flink application running analytics/flink/main.py over the generated Flink SQL.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type { DeliveryConfig } from "../../core/delivery";
import { CONNECTOR_JAR, CONNECTOR_URL, verifiedConnectorJar } from "../../core/flink-connector";
import { UserError } from "../../core/errors";
import { PROJECT_DIR } from "../../core/project";
import type { FlinkConnectorSource } from "../../core/stack-config";
import {
  flinkSqlStatements,
  sqlPropertyMap,
  SQL_PROPERTY_GROUP,
  type WindowSpec,
} from "../../core/analytics/window";
import { firehoseToS3 } from "../delivery/firehose-to-s3";
import { logGroupPolicyArn, serviceRole } from "../private/iam";
import { KinesisAction } from "../rule/actions/kinesis";

/** The Managed Flink runtime: Flink 1.20, Python 3.11. */
export const FLINK_RUNTIME = "FLINK-1_20";

export { CONNECTOR_JAR, CONNECTOR_URL, KINESIS_CONNECTOR } from "../../core/flink-connector";

/** The PyFlink program, kept in the repository. */
export const MAIN_PY = path.join(PROJECT_DIR, "analytics", "flink", "main.py");

/** The property group Managed Flink reads to start a Python application. */
export const RUN_OPTIONS_GROUP = "kinesis.analytics.flink.run.options";
export const RUN_OPTIONS = { python: "main.py", jarfile: `lib/${CONNECTOR_JAR}` } as const;

/**
 * The rule action's partition key: the payload's thing name. One sensor's readings then stay in
 * order on one shard (what event-time windows want), it is the key grouped windows use, and unlike
 * `${clientid()}` it names the sensor under the tutorial policy too, where any client id may connect.
 */
export const PARTITION_KEY = "${thing}";

/** Where the application's code lives in the bucket: outside the analytics prefix it may write. */
export const CODE_PREFIX = "flink-code/";

/**
 * What the Kinesis connector's source (the polling KinesisStreamsSource of
 * flink-connector-aws 5.0) calls on the telemetry stream: ListShards and DescribeStreamSummary to
 * discover shards, GetShardIterator and GetRecords to read them. Each call is authorized by the
 * IAM action of the same name.
 */
export const STREAM_READ_ACTIONS = [
  "kinesis:DescribeStreamSummary",
  "kinesis:GetRecords",
  "kinesis:GetShardIterator",
  "kinesis:ListShards",
];

/** What the connector's sink (KinesisStreamsSink) calls on the windows stream. */
export const WINDOW_WRITE_ACTIONS = ["kinesis:PutRecords"];

/** The code object's key: named by its content, so a changed main.py or jar updates the application. */
export function codeObjectKey(
  mainPy: string = fs.readFileSync(MAIN_PY, "utf8"),
  connector: FlinkConnectorSource = {},
): string {
  const hash = createHash("sha256")
    .update(mainPy)
    .update("\0")
    .update(connector.sha512 ?? connector.url ?? CONNECTOR_URL)
    .digest("hex");
  return `${CODE_PREFIX}stream-analytics-${hash.slice(0, 16)}.zip`;
}

export interface StreamAnalyticsArgs {
  /** The validated window spec (core/analytics/window.ts). */
  readonly spec: WindowSpec;
  /** The pipeline's bucket: windows land under `spec.prefix`, the code under `flink-code/`. */
  readonly bucketName: pulumi.Input<string>;
  readonly bucketArn: pulumi.Input<string>;
  /** Name of the role the topic rule's Kinesis action assumes; auto-named when undefined. */
  readonly ruleActionRoleName?: string;
  /** The Firehose stream that delivers the windows (core/delivery.ts windowsDeliveryConfig). */
  readonly windowsDelivery: DeliveryConfig;
  /**
   * The telemetry Kinesis stream's name.
   * @default auto-named from the component's name
   */
  readonly streamName?: string;
  /**
   * The Flink application's name.
   * @default auto-named from the component's name
   */
  readonly applicationName?: string;
  /**
   * Retention of the application's log group, in days.
   * @default 14
   */
  readonly logRetentionDays?: number;
  /**
   * Start the application on `pulumi up`.
   * @default true
   */
  readonly start?: boolean;
  /**
   * The bucket's customer-managed key: the windows' stream makes data keys with it and the
   * application decrypts its code with it.
   * @default undefined: the bucket uses S3-managed keys
   */
  readonly bucketKeyArn?: pulumi.Input<string>;
  /**
   * Where the connector jar comes from and the SHA-512 it must have (core/flink-connector.ts).
   * @default Maven Central, not pinned: the jar is accepted with its digest logged
   */
  readonly connector?: FlinkConnectorSource;
}

export class StreamAnalytics extends pulumi.ComponentResource {
  /** The on-demand Kinesis Data Stream the topic rule puts telemetry on. */
  readonly stream: aws.kinesis.Stream;
  /** The on-demand Kinesis Data Stream the Flink job writes each closed window to. */
  readonly windowsStream: aws.kinesis.Stream;
  /** The Firehose stream that delivers the windows to the bucket under the spec's prefix. */
  readonly windowsDelivery: aws.kinesis.FirehoseDeliveryStream;
  /** The zip of main.py and the connector jar. */
  readonly code: aws.s3.BucketObjectv2;
  /** The application's service execution role. */
  readonly role: aws.iam.Role;
  readonly logGroup: aws.cloudwatch.LogGroup;
  readonly logStream: aws.cloudwatch.LogStream;
  /** The Managed Flink application. */
  readonly application: aws.kinesisanalyticsv2.Application;
  /** The Flink SQL statements the application runs, in order. */
  readonly statements: pulumi.Output<string[]>;
  /** The second action of the topic rule: this stream, keyed by thing. */
  readonly ruleAction: KinesisAction;
  readonly streamName: pulumi.Output<string>;
  readonly streamArn: pulumi.Output<string>;
  readonly applicationName: pulumi.Output<string>;
  readonly applicationArn: pulumi.Output<string>;
  /** `s3://<bucket>/<prefix>`, where the windows are delivered. */
  readonly windowsUri: pulumi.Output<string>;

  constructor(name: string, args: StreamAnalyticsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("iot-pipeline:analytics:StreamAnalytics", name, {}, opts);
    const parent = { parent: this };
    const spec = args.spec;
    if (spec.prefix.startsWith(CODE_PREFIX)) {
      throw new Error(
        `analytics prefix ${spec.prefix} lies under ${CODE_PREFIX}, where the application's code lives; choose another prefix`,
      );
    }
    const region = aws.getRegionOutput({}, parent).region;
    const accountId = aws.getCallerIdentityOutput({}, parent).accountId;
    const bucketArn = pulumi.output(args.bucketArn);
    // On-demand: no shards to size, billed per GB; a sensor fleet's trickle fits it. The
    // AWS-managed key needs no KMS grants in the producers' or the consumers' roles.
    const onDemandEncrypted = {
      streamModeDetails: { streamMode: "ON_DEMAND" },
      retentionPeriod: 24,
      encryptionType: "KMS",
      kmsKeyId: "alias/aws/kinesis",
    };

    this.stream = new aws.kinesis.Stream(
      `${name}-stream`,
      { name: args.streamName, ...onDemandEncrypted },
      parent,
    );
    this.windowsStream = new aws.kinesis.Stream(
      `${name}-windows-kinesis`,
      onDemandEncrypted,
      parent,
    );
    // The windows reach S3 the way telemetry does: Firehose, reading the windows stream, one JSON
    // line per window under the spec's prefix (Managed Flink's one jarfile has no S3 file system).
    const w = args.windowsDelivery;
    const windows = firehoseToS3(
      `${name}-windows`,
      {
        streamName: w.streamName,
        bucketArn,
        accountId,
        bufferSizeMiB: w.bufferSizeMiB,
        bufferIntervalSeconds: w.bufferIntervalSeconds,
        compression: w.compression,
        prefix: w.prefix,
        errorOutputPrefix: w.errorOutputPrefix,
        errorLogging: w.errorLogging ? { streamName: w.streamName } : undefined,
        kinesisSourceArn: this.windowsStream.arn,
        newlineDelimited: true,
        bucketKeyArn: args.bucketKeyArn,
      },
      this,
    );
    this.windowsDelivery = windows.stream;

    const codeKey = codeObjectKey(undefined, args.connector);
    this.code = new aws.s3.BucketObjectv2(
      `${name}-code`,
      {
        bucket: args.bucketName,
        key: codeKey,
        // Pulumi zips the archive: main.py at the root and the jar under lib/, where the run
        // options point. The jar is the cached copy whose SHA-512 matched the pinned digest: a
        // RemoteAsset would be fetched at every preview and up, and never checked.
        source: new pulumi.asset.AssetArchive({
          "main.py": new pulumi.asset.FileAsset(MAIN_PY),
          [RUN_OPTIONS.jarfile]: new pulumi.asset.FileAsset(
            verifiedConnectorJar({
              url: args.connector?.url,
              sha512: args.connector?.sha512,
            }).catch((e: unknown) => {
              // The CLI prints a RunError's message alone: one line, no stack trace.
              throw e instanceof UserError ? new pulumi.RunError(e.message) : e;
            }),
          ),
        }),
        contentType: "application/zip",
      },
      parent,
    );

    this.logGroup = new aws.cloudwatch.LogGroup(
      `${name}-logs`,
      { retentionInDays: args.logRetentionDays ?? 14 },
      parent,
    );
    this.logStream = new aws.cloudwatch.LogStream(
      `${name}-log-stream`,
      { logGroupName: this.logGroup.name, name: "application" },
      parent,
    );

    const { role, grant } = serviceRole(
      `${name}-role`,
      {
        service: "kinesisanalytics.amazonaws.com",
        accountId,
        statements: pulumi
          .all([
            this.stream.arn,
            this.windowsStream.arn,
            bucketArn,
            this.logGroup.arn,
            this.logStream.name,
            args.bucketKeyArn,
          ])
          .apply(([streamArn, windowsArn, bucket, logGroupArn, logStreamName, keyArn]) => [
            {
              Sid: "ReadApplicationCode",
              Effect: "Allow" as const,
              // The code location names no object version: GetObject alone reads it.
              Action: ["s3:GetObject"],
              Resource: [`${bucket}/${codeKey}`],
            },
            {
              // The one wildcard AWS requires (core/iam/policy-audit.ts REQUIRED_WILDCARDS).
              Sid: "ListLogGroups",
              Effect: "Allow" as const,
              Action: ["logs:DescribeLogGroups"],
              Resource: [`${logGroupArn.slice(0, logGroupArn.indexOf(":log-group:"))}:log-group:*`],
            },
            {
              Sid: "ListLogStreams",
              Effect: "Allow" as const,
              Action: ["logs:DescribeLogStreams"],
              Resource: [logGroupPolicyArn(logGroupArn)],
            },
            {
              Sid: "WriteLogs",
              Effect: "Allow" as const,
              Action: ["logs:PutLogEvents"],
              Resource: [`${logGroupArn}:log-stream:${logStreamName}`],
            },
            {
              Sid: "ReadTelemetryStream",
              Effect: "Allow" as const,
              Action: [...STREAM_READ_ACTIONS],
              Resource: [streamArn],
            },
            {
              Sid: "WriteWindows",
              Effect: "Allow" as const,
              Action: [...WINDOW_WRITE_ACTIONS],
              Resource: [windowsArn],
            },
            // The code object is encrypted with the bucket's key: reading it decrypts its data key.
            ...(keyArn === undefined
              ? []
              : [
                  {
                    Sid: "DecryptApplicationCode",
                    Effect: "Allow" as const,
                    Action: ["kms:Decrypt"],
                    Resource: [keyArn],
                  },
                ]),
          ]),
      },
      this,
    );
    this.role = role;

    this.statements = pulumi
      .all([this.stream.arn, this.windowsStream.arn, region])
      .apply(([sourceStreamArn, sinkStreamArn, r]) =>
        flinkSqlStatements(spec, { sourceStreamArn, sinkStreamArn, region: r }),
      );

    this.application = new aws.kinesisanalyticsv2.Application(
      `${name}-app`,
      {
        name: args.applicationName,
        runtimeEnvironment: FLINK_RUNTIME,
        serviceExecutionRole: this.role.arn,
        startApplication: args.start ?? true,
        applicationConfiguration: {
          applicationCodeConfiguration: {
            codeContentType: "ZIPFILE",
            codeContent: { s3ContentLocation: { bucketArn, fileKey: this.code.key } },
          },
          environmentProperties: {
            propertyGroups: [
              { propertyGroupId: RUN_OPTIONS_GROUP, propertyMap: { ...RUN_OPTIONS } },
              {
                propertyGroupId: SQL_PROPERTY_GROUP,
                propertyMap: this.statements.apply(sqlPropertyMap),
              },
            ],
          },
          flinkApplicationConfiguration: {
            checkpointConfiguration: { configurationType: "DEFAULT" },
            monitoringConfiguration: {
              configurationType: "CUSTOM",
              // INFO: Flink logs some failures at INFO, which ERROR would hide.
              logLevel: "INFO",
              metricsLevel: "APPLICATION",
            },
            // One KPU: a window over a sensor fleet needs no more, and autoscaling would add cost.
            parallelismConfiguration: {
              configurationType: "CUSTOM",
              parallelism: 1,
              parallelismPerKpu: 1,
              autoScalingEnabled: false,
            },
          },
        },
        cloudwatchLoggingOptions: { logStreamArn: this.logStream.arn },
      },
      // The service checks the role's access to the code and the log stream when it creates the app.
      { parent: this, dependsOn: [grant, this.code] },
    );

    this.streamName = this.stream.name;
    this.streamArn = this.stream.arn;
    this.applicationName = this.application.name;
    this.applicationArn = this.application.arn;
    this.windowsUri = pulumi.interpolate`s3://${args.bucketName}/${spec.prefix}`;
    this.ruleAction = new KinesisAction({
      streamName: this.stream.name,
      streamArn: this.stream.arn,
      partitionKey: PARTITION_KEY,
      roleName: args.ruleActionRoleName,
    });

    this.registerOutputs({
      windowsStreamName: this.windowsStream.name,
      windowsDeliveryName: this.windowsDelivery.name,
      streamName: this.streamName,
      streamArn: this.streamArn,
      applicationName: this.applicationName,
      applicationArn: this.applicationArn,
      windowsUri: this.windowsUri,
    });
  }
}
