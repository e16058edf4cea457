// Knowing when the pipeline stops: the stack's monitoring choices (IoT logging level, alarm
// thresholds), the CloudWatch metrics each alarm and dashboard widget reads (names and namespaces
// as AWS documents them), and the evaluation `npm run simulate` runs on its own figures with the
// same thresholds, to say what an alarm would have flagged. Plain data and functions: the
// program, the pack and the local pipeline share them.
import { bool, int, oneOf, optionalStr, type RawConfig } from "./config-values";
import { invalidConfig as fail } from "./errors";
import { PROJECT } from "./project";
import { LIFECYCLE_TOPIC } from "./topics";

/** IoT's log levels (SetV2LoggingOptions), plus `unmanaged`: this stack leaves the account's IoT logging alone. */
export type IotLogLevel = "ERROR" | "WARN" | "INFO" | "DEBUG" | "DISABLED" | "unmanaged";
export const IOT_LOG_LEVELS: readonly IotLogLevel[] = [
  "ERROR",
  "WARN",
  "INFO",
  "DEBUG",
  "DISABLED",
  "unmanaged",
];

/** The alarms a stack gets, and their thresholds. */
export interface AlarmConfig {
  readonly enabled: boolean;
  /** An e-mail address the alarms' topic notifies (after the recipient confirms); undefined for none. */
  readonly email?: string;
  /**
   * `alarmEmail: external`: the stack subscribes nobody, its owner subscribes the topic outside the
   * stack (a pager, a chat integration); the topic's ARN is the `monitoring.topicArn` output.
   */
  readonly subscribedElsewhere?: boolean;
  /** The period each alarm evaluates, in seconds (a multiple of 60). */
  readonly periodSeconds: number;
  /** The rule's error rate, in percent of the messages on its topic, above which its alarm fires. */
  readonly ruleErrorRatePercent: number;
  /** The age, in seconds, of the oldest record not yet in S3 above which a stream's alarm fires. */
  readonly deliveryFreshnessSeconds: number;
  /**
   * The presence alarm (`presenceAlarm`): fires when at least this many devices disconnected
   * without saying so (every disconnect reason but CLIENT_INITIATED_DISCONNECT) in one period;
   * undefined when off.
   */
  readonly presenceDisconnects?: number;
}

export interface MonitoringConfig {
  readonly iotLogLevel: IotLogLevel;
  readonly alarms: AlarmConfig;
}

/** The `alarmEmail` value that says the alarms' topic is subscribed outside the stack. */
export const ALARM_EMAIL_EXTERNAL = "external";

/** One CloudWatch metric, as the alarms and the dashboard name it. */
export interface MetricRef {
  readonly namespace: string;
  readonly name: string;
  /** The dimension that names the resource (the rule, the stream, the application). */
  readonly dimension?: string;
  readonly statistic: "Sum" | "Maximum" | "Average";
}

/**
 * The metrics the monitoring reads.
 * - AWS/IoT: https://docs.aws.amazon.com/iot/latest/developerguide/metrics_dimensions.html
 * - AWS/Firehose: https://docs.aws.amazon.com/firehose/latest/dev/monitoring-with-cloudwatch-metrics.html
 * - AWS/KinesisAnalytics: https://docs.aws.amazon.com/managed-flink/latest/java/metrics-dimensions.html
 * - RuleErrors: a metric filter on the rule's error log group, one count per message the error
 *   action received (every failed action and every message the SQL could not be evaluated on);
 *   IoT's own `Failure` metric carries an `ActionType` dimension whose values AWS does not list.
 */
export const METRICS = {
  messagesIn: {
    namespace: "AWS/IoT",
    name: "PublishIn.Success",
    dimension: "Protocol",
    statistic: "Sum",
  },
  topicMatch: { namespace: "AWS/IoT", name: "TopicMatch", dimension: "RuleName", statistic: "Sum" },
  ruleErrors: { namespace: PROJECT, name: "RuleErrors", dimension: "RuleName", statistic: "Sum" },
  incomingRecords: {
    namespace: "AWS/Firehose",
    name: "IncomingRecords",
    dimension: "DeliveryStreamName",
    statistic: "Sum",
  },
  deliveredRecords: {
    namespace: "AWS/Firehose",
    name: "DeliveryToS3.Records",
    dimension: "DeliveryStreamName",
    statistic: "Sum",
  },
  deliveryFreshness: {
    namespace: "AWS/Firehose",
    name: "DeliveryToS3.DataFreshness",
    dimension: "DeliveryStreamName",
    statistic: "Maximum",
  },
  flinkDowntime: {
    namespace: "AWS/KinesisAnalytics",
    name: "downtime",
    dimension: "Application",
    statistic: "Average",
  },
} as const satisfies Record<string, MetricRef>;

/**
 * The presence example: a rule on AWS IoT's lifecycle events
 * (https://docs.aws.amazon.com/iot/latest/developerguide/life-cycle-events.html) that puts one
 * count per unexpected disconnection into a CloudWatch metric through the rule's `cloudwatchMetric`
 * action (https://docs.aws.amazon.com/iot/latest/developerguide/cloudwatch-metrics-rule-action.html:
 * namespace, name, value and unit, no dimensions, so the stack is in the namespace), and the
 * alarm on it. A device that sends DISCONNECT meant to go; every other reason (CONNECTION_LOST,
 * MQTT_KEEP_ALIVE_TIMEOUT, DUPLICATE_CLIENTID, ...) is one that went offline.
 */
export const PRESENCE = {
  /** The lifecycle topic filter of every client's disconnection. */
  topicFilter: `${LIFECYCLE_TOPIC.disconnected}+`,
  /** The reasons that are not a device going offline. */
  intendedReasons: ["CLIENT_INITIATED_DISCONNECT"],
  metricName: "DeviceDisconnects",
  metricUnit: "Count",
  metricValue: "1",
} as const;

/** The presence rule's statement: one output per unexpected disconnection. */
export function presenceRuleSql(): string {
  const where = PRESENCE.intendedReasons.map((r) => `disconnectReason <> '${r}'`).join(" AND ");
  return `SELECT clientId, disconnectReason, timestamp FROM '${PRESENCE.topicFilter}' WHERE ${where}`;
}

/** The presence metric of a stack: `iot-pipeline/<stack>` / `DeviceDisconnects`, Sum per period. */
export function presenceMetric(stack: string): MetricRef {
  return { namespace: `${PROJECT}/${stack}`, name: PRESENCE.metricName, statistic: "Sum" };
}

/** The name of the presence rule the stack adds when `presenceAlarm` is on. */
export const PRESENCE_RULE_NAME = "device_presence";

/**
 * The presence rule as a `rules` entry (core/topic-rules/config.ts parses it like the stack's
 * own): every unexpected disconnection puts 1 on the presence metric, which the presence alarm
 * watches (https://docs.aws.amazon.com/iot/latest/developerguide/life-cycle-events.html, the
 * disconnect event; cloudwatch-metrics-rule-action.html, the action).
 */
export function presenceTopicRule(stack: string): Record<string, unknown> {
  const metric = presenceMetric(stack);
  return {
    name: PRESENCE_RULE_NAME,
    description: "Devices that went offline without a DISCONNECT, counted for the presence alarm",
    sql: presenceRuleSql(),
    actions: [
      {
        cloudwatchMetric: {
          metricNamespace: metric.namespace,
          metricName: metric.name,
          metricValue: PRESENCE.metricValue,
          metricUnit: PRESENCE.metricUnit,
        },
      },
    ],
  };
}

/** Whether a disconnect reason counts in the presence metric (the rule's WHERE). */
export function isUnexpectedDisconnect(reason: string): boolean {
  return !(PRESENCE.intendedReasons as readonly string[]).includes(reason);
}

/** The metric filter pattern that counts a rule's error-action messages (they are JSON with `ruleName`). */
export function ruleErrorFilterPattern(ruleName: string): string {
  return `{ $.ruleName = "${ruleName}" }`;
}

/** The kinds of alarm a stack has. */
export type AlarmKind =
  | "rule-error-rate"
  | "delivery-freshness"
  | "flink-downtime"
  | "device-disconnects"
  | "rule-metric"
  | "alarm-state";

/**
 * An alarm's CloudWatch name: `<namePrefix>-rule-error-rate`, `<namePrefix>-<stream label>-delivery-freshness`
 * (labels `telemetry`, `windows`), `<namePrefix>-flink-downtime`.
 */
export function alarmName(namePrefix: string, kind: AlarmKind, streamLabel?: string): string {
  return kind === "delivery-freshness"
    ? `${namePrefix}-${streamLabel ?? "telemetry"}-${kind}`
    : `${namePrefix}-${kind}`;
}

/** What each alarm watches, for the docs, the dashboard and the local summary. */
export const ALARM_DESCRIPTIONS: Readonly<Record<AlarmKind, string>> = {
  "rule-error-rate":
    "the topic rule's errors (messages its error action received) above ruleErrorRatePercent of the messages on its topic, in one period",
  "delivery-freshness":
    "a Firehose stream's oldest undelivered record older than deliveryFreshnessSeconds (DeliveryToS3.DataFreshness, Maximum)",
  "flink-downtime":
    "the Managed Flink application down (downtime > 0, AWS's recommended alarm for every application)",
  "device-disconnects":
    "devices going offline: at least presenceAlarmDisconnects disconnections other than CLIENT_INITIATED_DISCONNECT in one period (the presence rule's DeviceDisconnects metric)",
  "rule-metric":
    "a metric a rule's CloudWatch metric action puts, its statistic above the action's alarm threshold for its evaluation periods",
  "alarm-state": "a rule's CloudWatch alarm action set an alarm's state to ALARM",
};

/** An alarm the stack creates on a rule's CloudWatch metric action (core/plan.ts metricAlarms). */
export interface MetricAlarmPlan {
  /** The alarm's name in CloudWatch. */
  readonly name: string;
  /** The rule and the action (`<kind>-<index>`) whose metric it watches. */
  readonly ruleName: string;
  readonly actionId: string;
  readonly namespace: string;
  readonly metricName: string;
  readonly statistic: "Sum" | "Average" | "Maximum" | "Minimum" | "SampleCount";
  readonly periodSeconds: number;
  readonly evaluationPeriods: number;
  readonly threshold: number;
}

/** One period of one metric's data points, as CloudWatch aggregates them. */
export interface MetricPeriod {
  /** Epoch ms (stack time) the period starts. */
  readonly start: number;
  readonly sum: number;
  readonly sampleCount: number;
  readonly minimum: number;
  readonly maximum: number;
}

/** A period's statistic (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Statistics-definitions.html). */
export function periodStatistic(p: MetricPeriod, statistic: MetricAlarmPlan["statistic"]): number {
  switch (statistic) {
    case "Sum":
      return p.sum;
    case "Average":
      return p.sum / p.sampleCount;
    case "Maximum":
      return p.maximum;
    case "Minimum":
      return p.minimum;
    case "SampleCount":
      return p.sampleCount;
  }
}

/**
 * The metric alarm would have fired: `evaluationPeriods` consecutive periods whose statistic is
 * above the threshold (GreaterThanThreshold; a period without data does not breach, the alarm's
 * treatMissingData notBreaching). Periods are in order, without gaps only where data came.
 */
export function evaluateMetricAlarm(
  alarm: MetricAlarmPlan,
  periods: readonly MetricPeriod[],
  /** A period's length in the periods' clock (the local pipeline's runs faster with `--fast`). */
  periodMs: number = alarm.periodSeconds * 1000,
): AlarmFinding | undefined {
  let run = 0;
  let previous: number | undefined;
  for (const p of periods) {
    const breaching = periodStatistic(p, alarm.statistic) > alarm.threshold;
    run =
      breaching && (run === 0 || p.start - (previous ?? p.start) === periodMs)
        ? run + 1
        : breaching
          ? 1
          : 0;
    previous = p.start;
    if (run >= alarm.evaluationPeriods) {
      return {
        kind: "rule-metric",
        subject: alarm.name,
        message: `alarm ${alarm.name}: ${alarm.namespace}/${alarm.metricName} ${alarm.statistic} ${Number(periodStatistic(p, alarm.statistic).toFixed(6))} above ${alarm.threshold} for ${alarm.evaluationPeriods} period(s) of ${alarm.periodSeconds} s, from ${new Date(p.start - (alarm.evaluationPeriods - 1) * periodMs).toISOString()}`,
      };
    }
  }
  return undefined;
}

/** One period of the local pipeline's rule figures. */
export interface RulePeriod {
  /** Epoch ms the period started. */
  readonly start: number;
  /** Messages on a topic the rule listens to (TopicMatch). */
  readonly onTopic: number;
  /** Messages the error action received (RuleErrors). */
  readonly errors: number;
}

/** What the local pipeline measured, in the stack's time (seconds already multiplied by any speed-up). */
export interface LocalFigures {
  readonly rulePeriods: readonly RulePeriod[];
  /** Largest age of a stream's oldest record when its object was written, by stream name, in seconds. */
  readonly deliveryFreshnessSeconds: Readonly<Record<string, number>>;
  /** The analytics job's downtime in ms; undefined without analytics. */
  readonly flinkDowntimeMs?: number;
  /** Unexpected disconnections per period (the presence metric), periods with none left out. */
  readonly disconnectPeriods?: readonly { readonly start: number; readonly disconnects: number }[];
}

/** An alarm that would have fired during the run. */
export interface AlarmFinding {
  readonly kind: AlarmKind;
  /** The rule or stream it concerns. */
  readonly subject: string;
  readonly message: string;
}

const pct = (n: number) => `${Number(n.toFixed(2))}%`;

/**
 * The alarms the stack's thresholds would have fired on the local figures. A period with no
 * message on the rule's topic has no rate (CloudWatch sees missing data, which does not breach).
 */
export function evaluateAlarms(
  figures: LocalFigures,
  alarms: AlarmConfig,
  ruleName: string,
): AlarmFinding[] {
  const out: AlarmFinding[] = [];
  for (const p of figures.rulePeriods) {
    if (p.onTopic === 0) continue;
    const rate = (100 * p.errors) / p.onTopic;
    if (rate > alarms.ruleErrorRatePercent) {
      out.push({
        kind: "rule-error-rate",
        subject: ruleName,
        message: `rule ${ruleName}: ${p.errors} error(s) in ${p.onTopic} message(s) = ${pct(rate)} in the period from ${new Date(p.start).toISOString()}, above ${pct(alarms.ruleErrorRatePercent)}`,
      });
    }
  }
  for (const [stream, seconds] of Object.entries(figures.deliveryFreshnessSeconds)) {
    if (seconds > alarms.deliveryFreshnessSeconds) {
      out.push({
        kind: "delivery-freshness",
        subject: stream,
        message: `stream ${stream}: a record waited ${Math.round(seconds)} s for S3, above ${alarms.deliveryFreshnessSeconds} s`,
      });
    }
  }
  const threshold = alarms.presenceDisconnects;
  for (const p of figures.disconnectPeriods ?? []) {
    if (threshold !== undefined && p.disconnects >= threshold) {
      out.push({
        kind: "device-disconnects",
        subject: PRESENCE.metricName,
        message: `${p.disconnects} device disconnection(s) other than CLIENT_INITIATED_DISCONNECT in the period from ${new Date(p.start).toISOString()}, at or above ${threshold}`,
      });
    }
  }
  if ((figures.flinkDowntimeMs ?? 0) > 0) {
    out.push({
      kind: "flink-downtime",
      subject: "analytics",
      message: `the analytics job was down for ${figures.flinkDowntimeMs} ms`,
    });
  }
  return out;
}

/** The monitoring keys: IoT logging and the alarms' thresholds. */
export function parseMonitoringConfig(raw: RawConfig): MonitoringConfig {
  const given = optionalStr(raw, "alarmEmail");
  const subscribedElsewhere = given === ALARM_EMAIL_EXTERNAL;
  const email = subscribedElsewhere ? undefined : given;
  if (email !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) {
    fail(
      "alarmEmail",
      email,
      `set an e-mail address (name@example.com), ${ALARM_EMAIL_EXTERNAL} if you subscribe the alarms' topic outside the stack, or leave it empty for none`,
    );
  }
  const periodSeconds = int(raw, "alarmPeriodSeconds", 60, 86400, "seconds");
  if (periodSeconds % 60 !== 0) {
    fail(
      "alarmPeriodSeconds",
      periodSeconds,
      "must be a multiple of 60 (CloudWatch's periods for these metrics)",
    );
  }
  // Checked against the streams' buffering where the plan is made (core/monitoring.ts).
  const freshness = int(raw, "deliveryFreshnessSeconds", 60, 86400, "seconds");
  const alarmsOn = bool(raw, "alarms");
  const presence = bool(raw, "presenceAlarm");
  if (presence && !alarmsOn) {
    fail("presenceAlarm", true, "needs alarms: true (it is one of the stack's alarms)");
  }
  const presenceDisconnects = int(raw, "presenceAlarmDisconnects", 1, 1_000_000, "disconnections");
  return {
    iotLogLevel: oneOf(raw, "iotLogLevel", IOT_LOG_LEVELS),
    alarms: {
      enabled: alarmsOn,
      email,
      subscribedElsewhere,
      periodSeconds,
      ruleErrorRatePercent: int(raw, "ruleErrorRatePercent", 0, 100, "percent"),
      deliveryFreshnessSeconds: freshness,
      ...(presence ? { presenceDisconnects } : {}),
    },
  };
}

/**
 * One metric line of a CloudWatch dashboard widget: namespace, metric name, dimension name and
 * value, then optional rendering properties (`{ stat, yAxis }`), as the dashboard body takes it
 * (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html).
 */
export type DashboardMetric = (string | Record<string, unknown>)[];

/** One metric widget of the stack's dashboard. */
export interface DashboardWidget {
  readonly type: "metric";
  readonly width: number;
  readonly height: number;
  readonly properties: {
    readonly title: string;
    readonly region: string;
    readonly period: number;
    readonly stat: string;
    readonly metrics: DashboardMetric[];
    readonly annotations?: {
      readonly horizontal: readonly { readonly label: string; readonly value: number }[];
    };
  };
}

/**
 * The dashboard's widgets: the figures `npm run simulate` also prints. The program deploys them
 * (components/monitoring/pipeline-alarms.ts) and the local dashboard page draws them
 * (local/dashboard/), fed with the local pipeline's figures under the same names.
 */
export function dashboardBody(
  region: string,
  rule: string,
  streams: Readonly<Record<string, string>>,
  windowsStream: string | undefined,
  flinkApp: string | undefined,
  a: AlarmConfig,
): { widgets: DashboardWidget[] } {
  const m = METRICS;
  const widget = (
    title: string,
    metrics: DashboardMetric[],
    extra: Pick<DashboardWidget["properties"], "annotations"> = {},
  ): DashboardWidget => ({
    type: "metric",
    width: 12,
    height: 6,
    properties: { title, region, period: a.periodSeconds, stat: "Sum", metrics, ...extra },
  });
  const names = Object.values(streams);
  return {
    widgets: [
      widget("Messages in (MQTT publishes accepted)", [
        [m.messagesIn.namespace, m.messagesIn.name, m.messagesIn.dimension, "MQTT"],
      ]),
      widget(`Rule ${rule}: matches and errors`, [
        [m.topicMatch.namespace, m.topicMatch.name, m.topicMatch.dimension, rule],
        [m.ruleErrors.namespace, m.ruleErrors.name, m.ruleErrors.dimension, rule],
      ]),
      widget(
        "Records delivered to S3",
        names.map((s) => [
          m.deliveredRecords.namespace,
          m.deliveredRecords.name,
          m.deliveredRecords.dimension,
          s,
        ]),
      ),
      widget(
        "Delivery freshness (s)",
        names.map((s) => [
          m.deliveryFreshness.namespace,
          m.deliveryFreshness.name,
          m.deliveryFreshness.dimension,
          s,
          { stat: "Maximum" },
        ]),
        { annotations: { horizontal: [{ label: "alarm", value: a.deliveryFreshnessSeconds }] } },
      ),
      ...(windowsStream === undefined
        ? []
        : [
            widget("Window output (windows delivered) and Flink downtime", [
              [
                m.deliveredRecords.namespace,
                m.deliveredRecords.name,
                m.deliveredRecords.dimension,
                windowsStream,
              ],
              ...(flinkApp === undefined
                ? []
                : [
                    [
                      m.flinkDowntime.namespace,
                      m.flinkDowntime.name,
                      m.flinkDowntime.dimension,
                      flinkApp,
                      { stat: "Average", yAxis: "right" },
                    ],
                  ]),
            ]),
          ]),
    ],
  };
}
