// Knowing when the pipeline stops, in the cloud: an SNS topic (an optional e-mail subscription),
// CloudWatch alarms on the topic rule's error rate, each Firehose stream's delivery freshness and
// the Managed Flink application's downtime, and a dashboard of messages in, rule matches, records
// delivered, delivery freshness and window output. Metric names and thresholds: core/monitoring.ts.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { METRICS, ruleErrorFilterPattern, type AlarmConfig } from "../../core/monitoring";

export interface PipelineAlarmsArgs {
  /** Prefix of the alarm and dashboard names (`iot-pipeline-<stack>`). */
  readonly namePrefix: string;
  readonly alarms: AlarmConfig;
  readonly ruleName: pulumi.Input<string>;
  /** The rule's error log group: its messages are the rule's errors. */
  readonly ruleErrorLogGroupName: pulumi.Input<string>;
  /** The Firehose streams whose freshness is watched, by a short label (`telemetry`, `windows`). */
  readonly streams: Readonly<Record<string, pulumi.Input<string>>>;
  /** The stream whose records are the analytics windows, for the dashboard. */
  readonly windowsStream?: pulumi.Input<string>;
  /** The Managed Flink application, when analytics is on. */
  readonly flinkApplicationName?: pulumi.Input<string>;
  /** Encrypt the topic with this key (its policy lets CloudWatch use it). @default SNS unencrypted */
  readonly kmsKeyArn?: pulumi.Input<string>;
}

export class PipelineAlarms extends pulumi.ComponentResource {
  readonly topic: aws.sns.Topic;
  readonly subscription?: aws.sns.TopicSubscription;
  readonly ruleErrors: aws.cloudwatch.LogMetricFilter;
  /** Every alarm, by name. */
  readonly alarms: Readonly<Record<string, aws.cloudwatch.MetricAlarm>>;
  readonly dashboard: aws.cloudwatch.Dashboard;
  private readonly baseName: string;
  private readonly args: PipelineAlarmsArgs;
  private readonly actions: Record<string, unknown>;

  constructor(name: string, args: PipelineAlarmsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("iot-pipeline:monitoring:PipelineAlarms", name, {}, opts);
    this.baseName = name;
    this.args = args;
    const parent = { parent: this };
    const a = args.alarms;
    const period = a.periodSeconds;

    this.topic = new aws.sns.Topic(
      `${name}-topic`,
      {
        name: `${args.namePrefix}-alarms`,
        ...(args.kmsKeyArn === undefined ? {} : { kmsMasterKeyId: args.kmsKeyArn }),
      },
      parent,
    );
    if (a.email !== undefined) {
      this.subscription = new aws.sns.TopicSubscription(
        `${name}-email`,
        { topic: this.topic.arn, protocol: "email", endpoint: a.email },
        parent,
      );
    }
    const actions = {
      alarmActions: [this.topic.arn],
      okActions: [this.topic.arn],
      evaluationPeriods: 1,
      datapointsToAlarm: 1,
      // No data is no traffic (or a stopped stream), not a failure.
      treatMissingData: "notBreaching",
    };

    // One count per message the rule's error action logged: every failed action and every message
    // the SQL could not be evaluated on. The messages are JSON with the rule's name.
    const m = METRICS;
    const alarms: Record<string, aws.cloudwatch.MetricAlarm> = {};
    this.alarms = alarms;
    this.actions = actions;
    this.ruleErrors = this.ruleErrorRate(
      { resource: name, cloudwatch: args.namePrefix },
      args.ruleName,
      args.ruleErrorLogGroupName,
    );
    for (const [label, stream] of Object.entries(args.streams)) {
      const alarmName = `${args.namePrefix}-${label}-delivery-freshness`;
      alarms[alarmName] = new aws.cloudwatch.MetricAlarm(
        `${name}-${label}-freshness`,
        {
          name: alarmName,
          alarmDescription: `A record waited more than ${a.deliveryFreshnessSeconds} s for S3 in the ${label} stream`,
          namespace: m.deliveryFreshness.namespace,
          metricName: m.deliveryFreshness.name,
          dimensions: { [m.deliveryFreshness.dimension]: stream },
          statistic: m.deliveryFreshness.statistic,
          period,
          comparisonOperator: "GreaterThanThreshold",
          threshold: a.deliveryFreshnessSeconds,
          ...actions,
        },
        parent,
      );
    }
    if (args.flinkApplicationName !== undefined) {
      const alarmName = `${args.namePrefix}-flink-downtime`;
      alarms[alarmName] = new aws.cloudwatch.MetricAlarm(
        `${name}-flink-downtime`,
        {
          name: alarmName,
          alarmDescription:
            "The analytics application is down (downtime > 0, AWS's recommended alarm for every Managed Flink application)",
          namespace: m.flinkDowntime.namespace,
          metricName: m.flinkDowntime.name,
          dimensions: { [m.flinkDowntime.dimension]: args.flinkApplicationName },
          statistic: m.flinkDowntime.statistic,
          period,
          comparisonOperator: "GreaterThanThreshold",
          threshold: 0,
          ...actions,
        },
        parent,
      );
    }

    const region = aws.getRegionOutput({}, parent).region;
    this.dashboard = new aws.cloudwatch.Dashboard(
      `${name}-dashboard`,
      {
        dashboardName: args.namePrefix,
        dashboardBody: pulumi
          .all([
            region,
            args.ruleName,
            pulumi.all(args.streams),
            args.windowsStream,
            args.flinkApplicationName,
          ])
          .apply(([r, rule, streams, windows, app]) =>
            JSON.stringify(dashboardBody(r, rule, streams, windows, app, a)),
          ),
      },
      parent,
    );

    this.registerOutputs({ topicArn: this.topic.arn, dashboard: this.dashboard.dashboardName });
  }

  /**
   * The error-rate alarm of one of the stack's further rules (`rules`) whose error action logs
   * to a group of its own: `<prefix>-<rule>-rule-errors` counts its messages,
   * `<prefix>-<rule>-rule-error-rate` fires as the telemetry rule's does.
   */
  watchRule(ruleName: string, errorLogGroup: aws.cloudwatch.LogGroup): aws.cloudwatch.MetricAlarm {
    this.ruleErrorRate(
      {
        resource: `${this.baseName}-${ruleName}`,
        cloudwatch: `${this.args.namePrefix}-${ruleName}`,
      },
      ruleName,
      errorLogGroup.name,
      errorLogGroup,
    );
    return this.alarms[`${this.args.namePrefix}-${ruleName}-rule-error-rate`];
  }

  /** A rule's error count (a metric filter on its error log group) and its error-rate alarm. */
  private ruleErrorRate(
    names: { readonly resource: string; readonly cloudwatch: string },
    ruleName: pulumi.Input<string>,
    errorLogGroupName: pulumi.Input<string>,
    logGroup?: pulumi.Resource,
  ): aws.cloudwatch.LogMetricFilter {
    const m = METRICS;
    const a = this.args.alarms;
    const period = a.periodSeconds;
    const filter = new aws.cloudwatch.LogMetricFilter(
      `${names.resource}-rule-errors`,
      {
        name: `${names.cloudwatch}-rule-errors`,
        logGroupName: errorLogGroupName,
        pattern: pulumi.output(ruleName).apply(ruleErrorFilterPattern),
        metricTransformation: {
          name: m.ruleErrors.name,
          namespace: m.ruleErrors.namespace,
          value: "1",
          unit: "Count",
          dimensions: { [m.ruleErrors.dimension]: "$.ruleName" },
        },
      },
      { parent: this, ...(logGroup === undefined ? {} : { dependsOn: [logGroup] }) },
    );
    const ruleAlarm = `${names.cloudwatch}-rule-error-rate`;
    (this.alarms as Record<string, aws.cloudwatch.MetricAlarm>)[ruleAlarm] =
      new aws.cloudwatch.MetricAlarm(
        `${names.resource}-rule-error-rate`,
        {
          name: ruleAlarm,
          alarmDescription: `More than ${a.ruleErrorRatePercent}% of the messages on the rule's topic went to its error action in ${period} s`,
          comparisonOperator: "GreaterThanThreshold",
          threshold: a.ruleErrorRatePercent,
          metricQueries: [
            {
              id: "errors",
              returnData: false,
              metric: {
                namespace: m.ruleErrors.namespace,
                metricName: m.ruleErrors.name,
                dimensions: { [m.ruleErrors.dimension]: ruleName },
                stat: m.ruleErrors.statistic,
                period,
              },
            },
            {
              id: "messages",
              returnData: false,
              metric: {
                namespace: m.topicMatch.namespace,
                metricName: m.topicMatch.name,
                dimensions: { [m.topicMatch.dimension]: ruleName },
                stat: m.topicMatch.statistic,
                period,
              },
            },
            {
              id: "rate",
              label: "rule error rate (%)",
              returnData: true,
              expression: "100 * FILL(errors, 0) / messages",
            },
          ],
          ...this.actions,
        },
        { parent: this, dependsOn: [filter] },
      );
    return filter;
  }
}

type Metric = (string | Record<string, unknown>)[];

/** The dashboard's widgets: the figures `npm run simulate` also prints. */
export function dashboardBody(
  region: string,
  rule: string,
  streams: Readonly<Record<string, string>>,
  windowsStream: string | undefined,
  flinkApp: string | undefined,
  a: AlarmConfig,
) {
  const m = METRICS;
  const widget = (title: string, metrics: Metric[], extra: Record<string, unknown> = {}) => ({
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
