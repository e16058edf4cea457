// The pipeline plan: one stack's config resolved once into everything both back ends build from.
// The rule statement parsed, every derived name (with its length checked where its suffix is
// added), the lake's layout and columns, the bucket's lifecycle rules, the windows' delivery, the
// CSRs' contents. The Pulumi program (components/pipeline.ts) turns the plan into resources, the
// local pipeline (local/pipeline/pipeline.ts) into emulators; neither works any of it out again.
// planPipeline is pure; loadPlan reads the stack's files first.
import { bucketLifecycleRules } from "./bucket-lifecycle";
import { windowsDeliveryConfig, windowsStreamName, type DeliveryConfig } from "./delivery";
import { ConfigError, invalidConfig } from "./errors";
import { createEvaluator } from "./iot-policy/policy-eval";
import { PolicyDocumentError, policyDocumentFor } from "./iot-policy/policy";
import {
  lakeColumns,
  lakeDatabaseName,
  planLakeLayout,
  lakeWorkgroupName,
  LAKE_TABLE,
  parquetCompression,
  PARTITION_QUERY,
  PARTITIONED_DELAY_FACTOR,
  savedQueries,
  type LakeColumn,
  type LakeLayout,
  type SavedQuery,
} from "./lake";
import type { AlarmConfig, IotLogLevel, MetricAlarmPlan } from "./monitoring";
import { PROJECT } from "./project";
import { parseRuleSql, RuleSqlError, type RuleStatement } from "./rule-sql";
import {
  loadStackConfig,
  type CertificateMode,
  type FlinkConnectorSource,
  type StackConfig,
} from "./stack-config";
import type { LifecycleRule } from "./storage";
import type { TopicRuleConfig } from "./topic-rules/config";
import type { WindowSpec } from "./analytics/window";

/**
 * IAM role names are at most 64 characters
 * (https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html, RoleName).
 */
export const IAM_ROLE_NAME_MAX = 64;

/** The roles the stack derives from `ruleRoleName`, by the suffix each appends. */
export const ROLE_SUFFIXES = {
  errors: "-errors",
  kinesis: "-kinesis",
  logging: "-logging",
} as const;

/**
 * `ruleRoleName` with a suffix: the name of one of the roles derived from it. Its length is
 * checked here, where the suffix is added, against IAM's 64 characters.
 */
export function suffixedRoleName(base: string, suffix: string): string {
  const name = `${base}${suffix}`;
  if (name.length > IAM_ROLE_NAME_MAX) {
    invalidConfig(
      "ruleRoleName",
      base,
      "use 1-56 letters, digits or + = , . @ _ - (IAM role names)",
    );
  }
  return name;
}

/**
 * The rule's statement, parsed once for the whole stack with the parser the local rule engine
 * runs: a statement AWS would refuse fails here, in one line naming `ruleSql`.
 */
export function parseRuleStatement(sql: string, key = "ruleSql"): RuleStatement {
  try {
    return parseRuleSql(sql);
  } catch (e) {
    if (!(e instanceof RuleSqlError)) throw e;
    return invalidConfig(key, sql, e.message);
  }
}

/**
 * One of the stack's further topic rules (`rules`), its SQL parsed once: the program creates it
 * with its actions (components/rule/actions/), the local rule engine runs it
 * (local/rule/actions/).
 */
export interface TopicRulePlan extends TopicRuleConfig {
  readonly statement: RuleStatement;
}

/** The IAM roles of the rule, its actions and the account's IoT logging. */
export interface RoleNames {
  /** The Firehose action's role: `ruleRoleName` itself. */
  readonly rule: string;
  /** The rule's error action. */
  readonly errors: string;
  /** The analytics' Kinesis action. */
  readonly kinesis: string;
  /** The account's IoT logging. */
  readonly logging: string;
}

/** The topic rule. */
export interface RulePlan {
  readonly name: string;
  readonly sql: string;
  /** The statement, parsed once: the lake's columns and the local rule engine read it. */
  readonly statement: RuleStatement;
  /** The rule's description in AWS IoT (`ruleDescription`); undefined when empty. */
  readonly description?: string;
}

/** The telemetry's Firehose stream, its prefixes those of the lake's layout. */
export interface TelemetryDeliveryPlan extends DeliveryConfig {
  /** Dynamic partitioning's jq query; undefined when not partitioned. */
  readonly partitionQuery?: string;
  /** The objects' extension; undefined for Firehose's own. */
  readonly fileExtension?: string;
}

/** The pipeline's bucket, in one place for every writer and reader of it. */
export interface StoragePlan {
  /** The configured name; undefined when the program derives one (stack-config deriveBucketName). */
  readonly bucketName?: string;
  /** `pulumi destroy` deletes the bucket with its objects, its log bucket and the workgroup. */
  readonly forceDestroy: boolean;
  readonly versioning: boolean;
  readonly accessLogging: boolean;
  /** Every lifecycle rule of the bucket (core/bucket-lifecycle.ts). */
  readonly lifecycleRules: readonly LifecycleRule[];
  /** The alias of the stack's customer-managed key; undefined when `kmsKey` is off. */
  readonly kmsKeyAlias?: string;
}

/** The queryable lake: the Glue database and table, the workgroup, the saved queries. */
export interface LakePlan {
  readonly databaseName: string;
  readonly workgroupName: string;
  readonly tableName: string;
  readonly layout: LakeLayout;
  readonly columns: readonly LakeColumn[];
  /** The codec of the lake's Parquet objects, from the stream's compression. */
  readonly parquetCodec: "SNAPPY" | "GZIP";
  readonly savedQueries: readonly SavedQuery[];
}

/** The streaming window, when analytics is enabled. */
export interface AnalyticsPlan {
  readonly spec: WindowSpec;
  /** The windows' own delivery stream into the bucket. */
  readonly windowsDelivery: DeliveryConfig;
  /** The role of the rule's Kinesis action feeding the window. */
  readonly ruleActionRoleName: string;
  readonly connector: FlinkConnectorSource;
}

/**
 * Checks `deliveryFreshnessSeconds` (the alarms' threshold) against the longest a record waits in a healthy stream: the
 * buffer interval (1.5 times it with dynamic partitioning), and the windows' stream's 60 s when
 * analytics is on. A threshold below that would fire on a healthy stream.
 */
export function checkDeliveryFreshness(
  freshness: number,
  streams: { bufferIntervalSeconds: number; partitionByThing: boolean; analytics: boolean },
): void {
  const { bufferIntervalSeconds, partitionByThing, analytics } = streams;
  const normal = Math.max(
    bufferIntervalSeconds * (partitionByThing ? PARTITIONED_DELAY_FACTOR : 1),
    analytics ? 60 : 0,
  );
  if (freshness <= normal) {
    invalidConfig(
      "deliveryFreshnessSeconds",
      freshness,
      `must be greater than ${normal} s, the longest a record waits in a healthy stream (bufferIntervalSeconds${partitionByThing ? " × 1.5 with partitionByThing" : ""}${analytics ? ", 60 s for the windows' stream" : ""})`,
    );
  }
}

/**
 * The stack's IoT policy, checked the way the broker will evaluate it, with the stack's region and
 * telemetry topic: a document that uses a condition key, operator or variable the evaluator does
 * not implement, a malformed ARN or an empty statement stops the program, `npm run simulate` and
 * `npm run check` here, in one line.
 */
export function checkPolicyDocument(config: StackConfig): void {
  const { mode, document } = config.policy;
  const topic = config.telemetryTopic;
  // The evaluator's own reading: the same parser and checks as the broker and the pack.
  const ctx = { partition: "aws", region: config.region, accountId: "000000000000" };
  try {
    createEvaluator([policyDocumentFor(mode, ctx, topic, document)]);
  } catch (e) {
    if (!(e instanceof PolicyDocumentError)) throw e;
    throw new ConfigError(
      mode === "custom"
        ? `config ${PROJECT}:policyDocument is invalid: ${e.message}`
        : `config ${PROJECT}:policyMode = ${JSON.stringify(mode)} with telemetryTopic ${JSON.stringify(topic)} gives an invalid IoT policy: ${e.message}`,
    );
  }
}

/** IoT logging and the alarms. */
export interface MonitoringPlan {
  readonly iotLogLevel: IotLogLevel;
  /** The IoT logging role; used unless the level is `unmanaged`. */
  readonly loggingRoleName: string;
  readonly alarms: AlarmConfig;
  /** What the alarms, their topic and the dashboard are named after. */
  readonly namePrefix: string;
  /** The alarms the further rules' CloudWatch metric actions ask for (`alarm`). */
  readonly metricAlarms: readonly MetricAlarmPlan[];
}

/**
 * The names of the alarms the stack creates: the pipeline's (when `alarms` is on), each further
 * rule's error rate, and the rules' metric alarms. A CloudWatch alarm action must name one of them.
 */
export function stackAlarmNames(
  config: StackConfig,
  namePrefix: string,
  metricAlarms: readonly MetricAlarmPlan[],
): string[] {
  const pipeline = config.monitoring.alarms.enabled
    ? [
        `${namePrefix}-rule-error-rate`,
        `${namePrefix}-telemetry-delivery-freshness`,
        ...(config.analytics === undefined
          ? []
          : [`${namePrefix}-windows-delivery-freshness`, `${namePrefix}-flink-downtime`]),
        ...config.rules
          .filter((r) => r.errorAction?.kind === "cloudwatchLogs")
          .map((r) => `${namePrefix}-${r.name}-rule-error-rate`),
      ]
    : [];
  return [...pipeline, ...metricAlarms.map((a) => a.name)];
}

/** Each CloudWatch alarm action names an alarm of the stack (its one resource the role may set). */
function checkAlarmTargets(config: StackConfig, alarms: readonly string[]): void {
  for (const [i, r] of config.rules.entries()) {
    const all = [
      ...r.actions.map((a, j) => ({ a, at: `rules[${i}].actions[${j}]` })),
      ...(r.errorAction === undefined ? [] : [{ a: r.errorAction, at: `rules[${i}].errorAction` }]),
    ];
    for (const { a, at } of all) {
      if (a.kind === "cloudwatchAlarm" && !alarms.includes(a.params.alarmName)) {
        invalidConfig(
          `${at}.cloudwatchAlarm.alarmName`,
          a.params.alarmName,
          `name an alarm of the stack: ${alarms.join(", ") || "(none: turn alarms on or give a cloudwatchMetric action an alarm)"}`,
        );
      }
    }
  }
}

/** The alarms of the rules' metric actions: `<namePrefix>-<rule>-<metricName>`. */
export function planMetricAlarms(
  rules: readonly TopicRuleConfig[],
  namePrefix: string,
): MetricAlarmPlan[] {
  const out: MetricAlarmPlan[] = [];
  for (const [i, r] of rules.entries()) {
    for (const [j, a] of r.actions.entries()) {
      if (a.kind !== "cloudwatchMetric" || a.params.alarm === undefined) continue;
      const name = `${namePrefix}-${r.name}-${a.params.metricName}`;
      // CloudWatch alarm names: 1-255 characters (API_PutMetricAlarm, AlarmName).
      if (name.length > 255 || out.some((x) => x.name === name)) {
        invalidConfig(
          `rules[${i}].actions[${j}].cloudwatchMetric.metricName`,
          a.params.metricName,
          `the alarm ${name} must be unique and at most 255 characters; rename the metric`,
        );
      }
      out.push({
        name,
        ruleName: r.name,
        actionId: `cloudwatchMetric-${j}`,
        namespace: a.params.metricNamespace,
        metricName: a.params.metricName,
        ...a.params.alarm,
      });
    }
  }
  return out;
}

/** The devices' certificates. */
export interface CertificatesPlan {
  readonly mode: CertificateMode;
  /** csr mode: each thing's CSR (PEM), as read when the config was loaded; empty otherwise. */
  readonly csrPems: Readonly<Record<string, string>>;
}

export interface PipelinePlan {
  /** The user's input, as parseStackConfig read it. */
  readonly config: StackConfig;
  readonly stack: string;
  readonly region: string;
  readonly rule: RulePlan;
  /** The stack's further topic rules (`rules`), after the telemetry rule, in config order. */
  readonly rules: readonly TopicRulePlan[];
  readonly roles: RoleNames;
  readonly delivery: TelemetryDeliveryPlan;
  /** The windows' stream name, derived whether or not analytics is enabled (its length is checked). */
  readonly windowsStreamName: string;
  readonly storage: StoragePlan;
  readonly lake: LakePlan;
  readonly analytics?: AnalyticsPlan;
  readonly monitoring: MonitoringPlan;
  readonly certificates: CertificatesPlan;
}

/**
 * Resolves a stack config (each key's syntax checked) into its plan. Pure: the same config always
 * gives the same plan, with no file read and no call out. Throws a ConfigError, one line naming
 * the key, where a derived value cannot be made: a name too long once its suffix is added, SQL
 * that does not parse, prefixes or buffers the lake cannot use, a lifecycle rule without a folder,
 * a freshness threshold a healthy stream would cross.
 */
export function planPipeline(config: StackConfig): PipelinePlan {
  const base = config.rule.roleName;
  const roles: RoleNames = {
    rule: suffixedRoleName(base, ""),
    errors: suffixedRoleName(base, ROLE_SUFFIXES.errors),
    kinesis: suffixedRoleName(base, ROLE_SUFFIXES.kinesis),
    logging: suffixedRoleName(base, ROLE_SUFFIXES.logging),
  };
  // Derived (and checked) even without analytics, so that turning analytics on later never
  // meets a stream name that no longer fits.
  const windowsStream = windowsStreamName(config.delivery.streamName);
  const statement = parseRuleStatement(config.rule.sql);
  checkPolicyDocument(config);
  const spec = config.analytics;
  const layout = planLakeLayout(config.delivery, config.lake, spec?.prefix);
  const windowsDelivery =
    spec === undefined ? undefined : windowsDeliveryConfig(config.delivery, spec.prefix);
  const s = config.storage;
  checkDeliveryFreshness(config.monitoring.alarms.deliveryFreshnessSeconds, {
    bufferIntervalSeconds: config.delivery.bufferIntervalSeconds,
    partitionByThing: config.lake.partitionByThing,
    analytics: spec !== undefined,
  });
  const namePrefix = `${PROJECT}-${config.stack}`;
  const metricAlarms = planMetricAlarms(config.rules, namePrefix);
  checkAlarmTargets(config, stackAlarmNames(config, namePrefix, metricAlarms));
  return {
    config,
    stack: config.stack,
    region: config.region,
    rule: {
      name: config.rule.name,
      sql: config.rule.sql,
      statement,
      ...(config.rule.description === undefined ? {} : { description: config.rule.description }),
    },
    rules: config.rules.map((r, i) => ({
      ...r,
      statement: parseRuleStatement(r.sql, `rules[${i}].sql`),
    })),
    roles,
    delivery: {
      ...config.delivery,
      prefix: layout.prefix,
      errorOutputPrefix: layout.errorOutputPrefix,
      ...(layout.partitionByThing ? { partitionQuery: PARTITION_QUERY } : {}),
      ...(layout.fileExtension === undefined ? {} : { fileExtension: layout.fileExtension }),
    },
    windowsStreamName: windowsStream,
    storage: {
      ...(config.delivery.bucketName === undefined
        ? {}
        : { bucketName: config.delivery.bucketName }),
      forceDestroy: s.forceDestroy,
      versioning: s.versioning,
      accessLogging: s.accessLogging,
      lifecycleRules: bucketLifecycleRules(
        layout,
        windowsDelivery,
        s,
        config.delivery.errorOutputPrefix,
      ),
      ...(s.kmsKey ? { kmsKeyAlias: `${PROJECT}-${config.stack}` } : {}),
    },
    lake: {
      databaseName: lakeDatabaseName(config.stack),
      workgroupName: lakeWorkgroupName(config.stack),
      tableName: LAKE_TABLE,
      layout,
      columns: lakeColumns(statement),
      parquetCodec: parquetCompression(config.delivery.compression),
      savedQueries: savedQueries(spec?.windowSeconds),
    },
    ...(spec === undefined || windowsDelivery === undefined
      ? {}
      : {
          analytics: {
            spec,
            windowsDelivery,
            ruleActionRoleName: roles.kinesis,
            connector: config.flinkConnector,
          },
        }),
    monitoring: {
      iotLogLevel: config.monitoring.iotLogLevel,
      loggingRoleName: roles.logging,
      alarms: config.monitoring.alarms,
      namePrefix: `${PROJECT}-${config.stack}`,
      metricAlarms,
    },
    certificates: { mode: config.certificates.mode, csrPems: config.certificates.csrPems },
  };
}

/** A plan as it is, or the plan of a config: for entry points that take either. */
export function planOf(input: StackConfig | PipelinePlan): PipelinePlan {
  return isPlan(input) ? input : planPipeline(input);
}

function isPlan(input: StackConfig | PipelinePlan): input is PipelinePlan {
  return "roles" in input && "config" in input;
}

/** Reads, validates and plans one stack from its files (`npm run simulate`, `query`, the tests). */
export function loadPlan(stack: string, dir?: string): PipelinePlan {
  return planPipeline(loadStackConfig(stack, dir));
}
