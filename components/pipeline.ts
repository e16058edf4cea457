// The whole telemetry pipeline of one stack, built from its plan (core/plan.ts): registry →
// device identities → telemetry rule → Firehose delivery → S3, with the analytics plugged in
// beside the rule. Every name, layout and rule comes from the plan; this file only makes resources.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { FIREHOSE_RECORD_SEPARATOR } from "../core/delivery";
import type { PipelinePlan } from "../core/plan";
import { presenceMetric } from "../core/monitoring";
import { basicIngestRule } from "../core/stack-config";
import { deriveBucketName } from "../core/storage";
import type { AnalyticsContext, AnalyticsPlug, PipelineStorage } from "./analytics/hook";
import { streamAnalyticsPlug } from "./analytics/plug";
import { DeliveryStream } from "./delivery/delivery-stream";
import { DeviceIdentity } from "./identity/device-identity";
import { DevicePolicy } from "./identity/device-policy";
import { inChunks } from "./private/chunks";
import { FleetProvisioning } from "./provisioning/fleet-provisioning";
import { Lake } from "./lake/lake";
import { IotLogging } from "./monitoring/iot-logging";
import { PipelineAlarms } from "./monitoring/pipeline-alarms";
import { ThingRegistry } from "./registry/thing-registry";
import { FirehoseAction } from "./rule/actions/firehose";
import { CloudWatchLogsAction, programAction } from "./rule/actions";
import { TelemetryRule } from "./rule/telemetry-rule";
import { TopicRule } from "./rule/topic-rule";
import { DataKey } from "./storage/data-key";

export interface TelemetryPipelineArgs {
  /** The stack's plan (core/plan.ts planPipeline). */
  readonly plan: PipelinePlan;
  /**
   * Builds the analytics application inside the pipeline.
   * @default streamAnalyticsPlug: the Managed Flink window of the config's `analytics` spec (none when disabled)
   */
  readonly analytics?: (ctx: AnalyticsContext) => AnalyticsPlug | undefined;
}

export class TelemetryPipeline extends pulumi.ComponentResource {
  readonly registry: ThingRegistry;
  readonly policy: DevicePolicy;
  /**
   * Identities by thing name, in fleet order (none in fleet-provisioning mode); complete once
   * {@link fleetReady} settles.
   */
  readonly identities: Readonly<Record<string, DeviceIdentity>>;
  /** Settles once every thing and identity of the fleet is made (a chunk at a time). */
  readonly fleetReady: Promise<void>;
  /** Fleet provisioning by claim, in certificateMode fleet-provisioning. */
  readonly provisioning?: FleetProvisioning;
  readonly delivery: DeliveryStream;
  /** The pipeline's bucket, as the lake, the analytics and the outputs reach it. */
  readonly storage: PipelineStorage;
  readonly rule: TelemetryRule;
  /** The stack's further topic rules (`rules`), by rule name. */
  readonly rules: Readonly<Record<string, TopicRule>>;
  /** What the analytics plugged in, if anything. */
  readonly analytics?: AnalyticsPlug;
  /** The account's `iot:Data-ATS` endpoint the devices connect to. */
  readonly endpoint: pulumi.Output<string>;
  /** The Glue table and Athena workgroup over the delivered telemetry. */
  readonly lake: Lake;
  /** The stack's customer-managed key, when `kmsKey` is on. */
  readonly key?: DataKey;
  /** The account's IoT logging, unless `iotLogLevel` is `unmanaged`. */
  readonly iotLogging?: IotLogging;
  /** The alarms, their topic and the dashboard, when `alarms` is on. */
  readonly alarms?: PipelineAlarms;

  constructor(name: string, args: TelemetryPipelineArgs, opts?: pulumi.ComponentResourceOptions) {
    super("iot-pipeline:index:TelemetryPipeline", name, {}, opts);
    const plan = args.plan;
    const config = plan.config;
    const parent = { parent: this };

    // In fleet-provisioning mode the devices register themselves: the registry holds only the
    // thing type and group their template names.
    const provisioning = config.provisioning;
    this.registry = new ThingRegistry(
      `${name}-registry`,
      {
        thingType: config.thingType,
        fleet:
          provisioning === undefined
            ? config.fleet
            : config.fleet.map((g) => ({ ...g, things: [] })),
      },
      parent,
    );
    this.policy = new DevicePolicy(
      `${name}-device-policy`,
      {
        policyName: config.policy.name,
        mode: config.policy.mode,
        telemetryTopic: config.telemetryTopic,
        document: config.policy.document,
        deviceShadows: config.policy.deviceShadows,
        basicIngestRule: basicIngestRule(config),
      },
      parent,
    );
    const identities: Record<string, DeviceIdentity> = {};
    this.identities = identities;
    // Each thing's identity once the registry has made its thing, a chunk at a time like them.
    this.fleetReady = this.registry.ready.then(() =>
      inChunks(provisioning === undefined ? config.things : [], (thing) => {
        identities[thing.name] = new DeviceIdentity(
          `${name}-${thing.name}-identity`,
          {
            thingName: this.registry.things[thing.name].name,
            policyName: this.policy.policy.name,
            csrPem:
              plan.certificates.mode === "csr" ? plan.certificates.csrPems[thing.name] : undefined,
          },
          parent,
        );
      }),
    );
    if (provisioning !== undefined) {
      const group = config.fleet[0];
      this.provisioning = new FleetProvisioning(
        `${name}-provisioning`,
        {
          provisioning,
          template: {
            thingPrefix: provisioning.thingPrefix,
            thingTypeName: config.thingType.name,
            group: provisioning.group,
            attributes: group.attributes,
            policyName: config.policy.name,
            telemetryTopic: config.telemetryTopic,
          },
          registeredAfter: [
            this.registry.thingType,
            this.registry.groups[provisioning.group],
            this.policy.policy,
          ],
        },
        parent,
      );
    }

    const storage = plan.storage;
    const bucketName =
      storage.bucketName ??
      pulumi
        .all([
          aws.getCallerIdentityOutput({}, parent).accountId,
          aws.getRegionOutput({}, parent).region,
        ])
        .apply(([accountId, region]) => deriveBucketName(plan.stack, accountId, region));
    // storage and lake: the key, then the Glue table the stream converts records with.
    this.key =
      storage.kmsKeyAlias === undefined
        ? undefined
        : new DataKey(`${name}-key`, { alias: storage.kmsKeyAlias }, parent);
    const lake = plan.lake;
    this.lake = new Lake(
      `${name}-lake`,
      {
        databaseName: lake.databaseName,
        workgroupName: lake.workgroupName,
        bucketName,
        layout: lake.layout,
        columns: lake.columns,
        things: config.things.map((t) => t.name),
        savedQueries: lake.savedQueries,
        kmsKeyArn: this.key?.arn,
        forceDestroy: storage.forceDestroy,
      },
      parent,
    );
    const delivery = plan.delivery;
    this.delivery = new DeliveryStream(
      `${name}-delivery`,
      {
        streamName: delivery.streamName,
        bucketName,
        bufferSizeMiB: delivery.bufferSizeMiB,
        bufferIntervalSeconds: delivery.bufferIntervalSeconds,
        compression: delivery.compression,
        prefix: delivery.prefix,
        errorOutputPrefix: delivery.errorOutputPrefix,
        errorLogging: delivery.errorLogging,
        forceDestroy: storage.forceDestroy,
        kmsKeyArn: this.key?.arn,
        streamEncryption: true,
        controls: {
          versioning: storage.versioning,
          lifecycleRules: storage.lifecycleRules,
          accessLogging: storage.accessLogging,
        },
        parquet:
          lake.layout.format === "parquet"
            ? {
                databaseName: this.lake.database.name,
                tableName: this.lake.table.name,
                glueArns: this.lake.glueArns,
                compression: lake.parquetCodec,
              }
            : undefined,
        partitionQuery: delivery.partitionQuery,
        fileExtension: delivery.fileExtension,
      },
      parent,
    );
    this.storage = {
      bucketName: this.delivery.bucketName,
      bucketArn: this.delivery.bucket.arn,
      kmsKeyArn: this.delivery.kmsKeyArn,
    };

    // analytics: the streaming window plugs in here (components/analytics/). It is built before
    // the rule so that its Kinesis source can become one of the rule's actions.
    const plug = args.analytics ?? streamAnalyticsPlug;
    this.analytics = plug({ parent: this, name, plan, storage: this.storage });

    this.rule = new TelemetryRule(
      `${name}-rule`,
      {
        ruleName: plan.rule.name,
        sql: plan.rule.sql,
        description: plan.rule.description,
        actions: [
          new FirehoseAction({
            streamName: this.delivery.streamName,
            streamArn: this.delivery.streamArn,
            separator: FIREHOSE_RECORD_SEPARATOR,
            roleName: plan.roles.rule,
          }),
          ...(this.analytics?.ruleActions ?? []),
        ],
        errorRoleName: plan.roles.errors,
      },
      parent,
    );

    // monitoring: the account's IoT logging, the alarms and their dashboard.
    const monitoring = plan.monitoring;
    if (monitoring.iotLogLevel !== "unmanaged") {
      this.iotLogging = new IotLogging(
        `${name}-iot-logging`,
        { level: monitoring.iotLogLevel, roleName: monitoring.loggingRoleName },
        parent,
      );
    }
    if (monitoring.alarms.enabled) {
      const out = this.analytics?.outputs;
      const windows = out?.windowsDeliveryName;
      this.alarms = new PipelineAlarms(
        `${name}-alarms`,
        {
          namePrefix: monitoring.namePrefix,
          alarms: monitoring.alarms,
          ruleName: this.rule.ruleName,
          ruleErrorLogGroupName: this.rule.errorLogGroup.name,
          streams: {
            telemetry: this.delivery.streamName,
            ...(windows === undefined ? {} : { windows }),
          },
          windowsStream: windows,
          flinkApplicationName: out?.applicationName,
          ...(monitoring.alarms.presenceDisconnects === undefined
            ? {}
            : { presenceMetric: presenceMetric(config.stack) }),
          kmsKeyArn: this.key?.arn,
        },
        parent,
      );
    }

    // The further rules after the alarms: an action's own alarm notifies the stack's topic.
    const ctx_ = (ruleName: string, id: string, isErrorAction: boolean) => ({
      id,
      ruleName,
      isErrorAction,
      plan,
      alarmTopicArn: this.alarms?.topic.arn,
      bucket: {
        name: this.delivery.bucketName,
        arn: this.delivery.bucket.arn,
        kmsKeyArn: this.delivery.kmsKeyArn,
      },
    });
    this.rules = Object.fromEntries(
      plan.rules.map((r) => {
        const errorAction =
          r.errorAction === undefined
            ? undefined
            : programAction(r.errorAction, ctx_(r.name, "errors", true));
        const ctx = (id: string, isErrorAction: boolean) => ctx_(r.name, id, isErrorAction);
        return [
          r.name,
          new TopicRule(
            `${name}-topic-rule-${r.name}`,
            {
              ruleName: r.name,
              sql: r.sql,
              description: r.description,
              enabled: r.enabled,
              actions: r.actions.map((a, i) => programAction(a, ctx(`${a.kind}-${i}`, false))),
              errorAction,
            },
            parent,
          ),
        ];
      }),
    );
    // Each further rule logging its errors to a group of its own gets an error-rate alarm like
    // the telemetry rule's.
    for (const r of plan.rules) {
      const group = errorLogGroupOf(this.rules[r.name]?.errorAction);
      if (group !== undefined) this.alarms?.watchRule(r.name, group);
    }

    this.endpoint = aws.iot.getEndpointOutput(
      { endpointType: "iot:Data-ATS" },
      parent,
    ).endpointAddress;

    this.registerOutputs({
      endpoint: this.endpoint,
      thingNames: this.registry.thingNames,
      policyName: this.policy.policy.name,
      ruleName: this.rule.ruleName,
      streamName: this.delivery.streamName,
      bucketName: this.storage.bucketName,
      lakeTable: pulumi.interpolate`${this.lake.database.name}.${lake.tableName}`,
    });
  }
}

/** The log group a rule's CloudWatch Logs error action created, if that is its error action. */
function errorLogGroupOf(action: unknown): aws.cloudwatch.LogGroup | undefined {
  return action instanceof CloudWatchLogsAction ? action.logGroup : undefined;
}
