// The CloudWatch metric rule action: a metric datum from each message (namespace, name, value,
// unit, timestamp: substitution templates), through a role allowed cloudwatch:PutMetricData, which
// IAM authorizes on no resource, narrowed to the action's namespace by the documented condition
// key (https://docs.aws.amazon.com/iot/latest/developerguide/cloudwatch-metrics-rule-action.html;
// https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html).
// With an `alarm`, the stack also creates a CloudWatch alarm on the metric.
import * as aws from "@pulumi/aws";
import type * as pulumi from "@pulumi/pulumi";
import type { CloudWatchMetricParams } from "../../../core/topic-rules/actions/cloudwatch-metric";
import { templatePattern } from "../../../core/topic-rules/resources";
import { serviceRole } from "../../private/iam";
import {
  type ProgramActionFactory,
  type RuleAction,
  type RuleActionBinding,
  type RuleActionConfigOf,
  type RuleBindContext,
} from "./action";

export interface CloudWatchMetricActionArgs extends CloudWatchMetricParams {
  /** @default "cloudwatch-metric" */
  readonly id?: string;
  /** The alarm's name, when `alarm` is set. */
  readonly alarmName?: string;
  /** Where the alarm notifies (the stack's alarm topic). */
  readonly alarmTopicArn?: pulumi.Input<string>;
}

export class CloudWatchMetricAction implements RuleAction {
  readonly id: string;
  /** The alarm on the metric, once bound (`alarm` set). */
  alarm?: aws.cloudwatch.MetricAlarm;

  constructor(private readonly args: CloudWatchMetricActionArgs) {
    this.id = args.id ?? "cloudwatch-metric";
  }

  bind(rule: RuleBindContext): RuleActionBinding<RuleActionConfigOf<"cloudwatchMetric">> {
    const a = this.args;
    const { role, grant } = serviceRole(
      `${rule.name}-${this.id}-role`,
      {
        service: "iot.amazonaws.com",
        accountId: rule.accountId,
        statements: [
          {
            Sid: "PutMetricData",
            Effect: "Allow" as const,
            Action: ["cloudwatch:PutMetricData"],
            Resource: ["*"],
            // PutMetricData has no resource type; the namespace condition is its narrowing.
            Condition: {
              StringLike: { "cloudwatch:namespace": templatePattern(a.metricNamespace) },
            },
          },
        ],
      },
      rule.parent,
    );
    const alarm = a.alarm;
    if (alarm !== undefined) {
      this.alarm = new aws.cloudwatch.MetricAlarm(
        `${rule.name}-${this.id}-alarm`,
        {
          name: a.alarmName,
          namespace: a.metricNamespace,
          metricName: a.metricName,
          statistic: alarm.statistic,
          period: alarm.periodSeconds,
          evaluationPeriods: alarm.evaluationPeriods,
          threshold: alarm.threshold,
          comparisonOperator: "GreaterThanThreshold",
          // No datum in a period: no message crossed the rule's WHERE, which is not an alarm.
          treatMissingData: "notBreaching",
          ...(a.alarmTopicArn === undefined
            ? {}
            : { alarmActions: [a.alarmTopicArn], okActions: [a.alarmTopicArn] }),
        },
        { parent: rule.parent },
      );
    }
    return {
      role,
      grant,
      config: {
        kind: "cloudwatchMetric",
        value: {
          metricNamespace: a.metricNamespace,
          metricName: a.metricName,
          metricValue: a.metricValue,
          metricUnit: a.metricUnit,
          ...(a.metricTimestamp === undefined ? {} : { metricTimestamp: a.metricTimestamp }),
          roleArn: role.arn,
        },
      },
    };
  }
}

export const cloudwatchMetricFromConfig: ProgramActionFactory<"cloudwatchMetric"> = (spec, ctx) => {
  const alarm = ctx.plan.monitoring.metricAlarms.find(
    (a) => a.ruleName === ctx.ruleName && a.actionId === ctx.id,
  );
  return new CloudWatchMetricAction({
    id: ctx.id,
    ...spec.params,
    ...(alarm === undefined ? {} : { alarmName: alarm.name, alarmTopicArn: ctx.alarmTopicArn }),
  });
};
