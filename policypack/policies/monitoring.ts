// Knowing when it stops: outside the dev stacks, AWS IoT logging is on (Device Defender's
// LOGGING_DISABLED_CHECK), and the pipeline's moving parts have alarms with somewhere to notify:
// each topic rule (an alarm on its AWS/IoT metrics), each Firehose stream (its delivery freshness)
// and each Managed Flink application (its downtime).
import type { PolicyResource, StackValidationPolicy } from "@pulumi/policy";
import { METRICS } from "../../core/monitoring";
import { TYPES, devStacksSchema, inDevStack, obj, peek, refersTo, str } from "./common";

const LOGGING_OPTIONS = "aws:iot/loggingOptions:LoggingOptions";
const METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm";
const FLINK_APP = "aws:kinesisanalyticsv2/application:Application";
const SNS_TOPIC = "aws:sns/topic:Topic";
const SNS_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription";
/** What makes a stack move data through AWS IoT: things that connect, rules that route. */
const IOT_TYPES: readonly string[] = [TYPES.iotTopicRule, TYPES.iotThing];

export const iotLoggingEnabled: StackValidationPolicy = {
  name: "iot-logging-enabled",
  description:
    "Outside the dev stacks, a stack with AWS IoT things or topic rules turns IoT logging on: an aws.iot.LoggingOptions with a role and a defaultLogLevel other than DISABLED (Device Defender LOGGING_DISABLED_CHECK).",
  enforcementLevel: "mandatory",
  severity: "medium",
  configSchema: devStacksSchema,
  validateStack: (args, report) => {
    if (inDevStack(args)) args.notApplicable("dev stack");
    if (!args.resources.some((r) => IOT_TYPES.includes(r.type))) {
      args.notApplicable("the stack has no AWS IoT thing or topic rule");
    }
    const options = args.resources.filter((r) => r.type === LOGGING_OPTIONS);
    if (options.length === 0) {
      report(
        "AWS IoT logging is not configured; add an aws.iot.LoggingOptions with a logging role and defaultLogLevel ERROR, WARN, INFO or DEBUG (config iot-pipeline:iotLogLevel)",
      );
      return;
    }
    for (const o of options) {
      const level = str(o.props.defaultLogLevel);
      if (o.props.disableAllLogs === true || level === "DISABLED") {
        report(
          `aws.iot.LoggingOptions ${o.name} turns IoT logging off; set defaultLogLevel to ERROR, WARN, INFO or DEBUG and disableAllLogs to false`,
          o.urn,
        );
      }
    }
  },
};

/** One metric an alarm reads: the alarm's own, or each of its metric queries'. */
interface AlarmMetric {
  readonly namespace?: string;
  readonly metricName?: string;
  readonly dimensions: Record<string, unknown>;
}

function metricOf(m: unknown): AlarmMetric {
  return {
    namespace: str(peek(m, "namespace")),
    metricName: str(peek(m, "metricName")),
    dimensions: obj(peek(m, "dimensions")) ?? {},
  };
}

function alarmMetrics(alarm: PolicyResource): AlarmMetric[] {
  const own = str(peek(alarm.props, "metricName")) !== undefined ? [metricOf(alarm.props)] : [];
  const queries = peek(alarm.props, "metricQueries");
  const queried = (Array.isArray(queries) ? queries : [])
    .map((q: unknown) => peek(q, "metric"))
    .filter((m: unknown) => obj(m) !== undefined)
    .map(metricOf);
  return [...own, ...queried];
}

/**
 * Whether an alarm reads `metric` for `target`: the dimension's value is the target's name, or,
 * during preview when it is unknown, the engine says the alarm's metric property depends on it.
 */
function watches(
  alarm: PolicyResource,
  target: PolicyResource,
  metric: { namespace: string; name?: string; dimension: string },
): boolean {
  const name = str(peek(target.props, "name")) ?? target.name;
  const deps = [
    ...(alarm.propertyDependencies?.dimensions ?? []),
    ...(alarm.propertyDependencies?.metricQueries ?? []),
  ];
  return alarmMetrics(alarm).some(
    (m) =>
      m.namespace === metric.namespace &&
      (metric.name === undefined || m.metricName === metric.name) &&
      (peek(m.dimensions, metric.dimension) === name || deps.some((d) => d.urn === target.urn)),
  );
}

/** Whether an alarm has an action (a list, maybe of values unknown during preview). */
function notifies(alarm: PolicyResource): boolean {
  const actions: unknown = Object.getOwnPropertyDescriptor(alarm.props, "alarmActions")?.value;
  return Array.isArray(actions) && actions.length > 0;
}

export const cloudwatchPipelineAlarms: StackValidationPolicy = {
  name: "cloudwatch-pipeline-alarms",
  description:
    "Outside the dev stacks, every topic rule has an alarm on its AWS/IoT metrics, every Firehose stream an alarm on DeliveryToS3.DataFreshness, every Managed Flink application an alarm on downtime, and each alarm notifies someone (alarmActions).",
  enforcementLevel: "mandatory",
  severity: "medium",
  configSchema: devStacksSchema,
  validateStack: (args, report) => {
    if (inDevStack(args)) args.notApplicable("dev stack");
    const alarms = args.resources.filter((r) => r.type === METRIC_ALARM);
    const watched: {
      type: string;
      metric: { namespace: string; name?: string; dimension: string };
      what: string;
    }[] = [
      {
        type: TYPES.iotTopicRule,
        metric: { namespace: "AWS/IoT", dimension: METRICS.topicMatch.dimension },
        what: "topic rule",
      },
      {
        type: TYPES.firehose,
        metric: {
          namespace: METRICS.deliveryFreshness.namespace,
          name: METRICS.deliveryFreshness.name,
          dimension: METRICS.deliveryFreshness.dimension,
        },
        what: "delivery stream",
      },
      {
        type: FLINK_APP,
        metric: {
          namespace: METRICS.flinkDowntime.namespace,
          name: METRICS.flinkDowntime.name,
          dimension: METRICS.flinkDowntime.dimension,
        },
        what: "Managed Flink application",
      },
    ];
    const targets = args.resources.filter((r) => watched.some((w) => w.type === r.type));
    if (targets.length === 0)
      args.notApplicable("the stack has no topic rule, stream or application");
    for (const target of targets) {
      const w = watched.find((x) => x.type === target.type);
      if (w === undefined) continue;
      const name = str(peek(target.props, "name")) ?? target.name;
      const mine = alarms.filter((a) => watches(a, target, w.metric));
      const what = `${w.metric.namespace} ${w.metric.name ?? "metric"} with ${w.metric.dimension} = ${name}`;
      if (mine.length === 0) {
        report(
          `${w.what} ${name} has no alarm; add an aws.cloudwatch.MetricAlarm on ${what} with alarmActions (config iot-pipeline:alarms true)`,
          target.urn,
        );
      } else if (!mine.some(notifies)) {
        report(
          `the alarms on ${w.what} ${name} (${mine.map((a) => a.name).join(", ")}) notify no one; set alarmActions to an SNS topic`,
          target.urn,
        );
      }
    }
  },
};

/** The ARNs in an alarm's alarmActions that are known strings (unknown during preview reads as none). */
function actionArns(alarm: PolicyResource): string[] {
  const actions: unknown = peek(alarm.props, "alarmActions");
  return Array.isArray(actions) ? actions.filter((a): a is string => typeof a === "string") : [];
}

/**
 * Whether an alarm notifies `topic`: one of its actions is the topic's ARN, or, during preview
 * when the ARN is unknown, the engine says its alarmActions depend on the topic.
 */
function notifiesTopic(alarm: PolicyResource, topic: PolicyResource): boolean {
  const arn = str(peek(topic.props, "arn"));
  if (arn !== undefined && actionArns(alarm).includes(arn)) return true;
  return (alarm.propertyDependencies?.alarmActions ?? []).some((d) => d.urn === topic.urn);
}

export const snsAlarmTopicSubscribed: StackValidationPolicy = {
  name: "sns-alarm-topic-subscribed",
  description:
    "Outside the dev stacks, an SNS topic of the stack that CloudWatch alarms notify has a subscription in the stack (an alarm that notifies a topic nobody subscribes to reaches no one). Advisory: a topic may be subscribed outside the stack.",
  enforcementLevel: "advisory",
  severity: "medium",
  configSchema: devStacksSchema,
  validateStack: (args, report) => {
    if (inDevStack(args)) args.notApplicable("dev stack");
    const alarms = args.resources.filter((r) => r.type === METRIC_ALARM);
    const topics = args.resources
      .filter((r) => r.type === SNS_TOPIC)
      .map((topic) => ({ topic, alarms: alarms.filter((a) => notifiesTopic(a, topic)) }))
      .filter((t) => t.alarms.length > 0);
    if (topics.length === 0) args.notApplicable("no alarm notifies an SNS topic of this stack");
    const subscriptions = args.resources.filter((r) => r.type === SNS_SUBSCRIPTION);
    for (const { topic, alarms: theirs } of topics) {
      if (subscriptions.some((s) => refersTo(s, "topic", topic, ["arn", "id"]))) continue;
      const name = str(peek(topic.props, "name")) ?? topic.name;
      report(
        `SNS topic ${name} receives the alarms ${theirs.map((a) => a.name).join(", ")} but nothing in the stack subscribes to it, so they reach no one; add an aws.sns.TopicSubscription (pulumi config set iot-pipeline:alarmEmail you@example.com), or subscribe it outside the stack`,
        topic.urn,
      );
    }
  },
};
