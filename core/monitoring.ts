// Knowing when the pipeline stops: the stack's monitoring choices (IoT logging level, alarm
// thresholds), the CloudWatch metrics each alarm and dashboard widget reads (names and namespaces
// as AWS documents them), and the evaluation `npm run simulate` runs on its own figures with the
// same thresholds, to say what an alarm would have flagged. Plain data and functions: the
// program, the pack and the local pipeline share them.
import { bool, int, oneOf, optionalStr, type RawConfig } from "./config-values";
import { invalidConfig as fail } from "./errors";
import { PROJECT } from "./project";

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

/** The metric filter pattern that counts a rule's error-action messages (they are JSON with `ruleName`). */
export function ruleErrorFilterPattern(ruleName: string): string {
  return `{ $.ruleName = "${ruleName}" }`;
}

/** The kinds of alarm a stack has. */
export type AlarmKind =
  "rule-error-rate" | "delivery-freshness" | "flink-downtime" | "rule-metric" | "alarm-state";

/** What each alarm watches, for the docs, the dashboard and the local summary. */
export const ALARM_DESCRIPTIONS: Readonly<Record<AlarmKind, string>> = {
  "rule-error-rate":
    "the topic rule's errors (messages its error action received) above ruleErrorRatePercent of the messages on its topic, in one period",
  "delivery-freshness":
    "a Firehose stream's oldest undelivered record older than deliveryFreshnessSeconds (DeliveryToS3.DataFreshness, Maximum)",
  "flink-downtime":
    "the Managed Flink application down (downtime > 0, AWS's recommended alarm for every application)",
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
  return {
    iotLogLevel: oneOf(raw, "iotLogLevel", IOT_LOG_LEVELS),
    alarms: {
      enabled: bool(raw, "alarms"),
      email,
      subscribedElsewhere,
      periodSeconds,
      ruleErrorRatePercent: int(raw, "ruleErrorRatePercent", 0, 100, "percent"),
      deliveryFreshnessSeconds: freshness,
    },
  };
}
