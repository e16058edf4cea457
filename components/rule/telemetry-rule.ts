// The telemetry topic rule: IoT SQL over the devices' topic, the pipeline's actions (Firehose,
// the analytics' Kinesis) and an error action into a CloudWatch log group of the rule's own.
import type * as aws from "@pulumi/aws";
import type * as pulumi from "@pulumi/pulumi";
import { ruleErrorLogGroupName } from "../../core/topic-rules/actions/cloudwatch-logs";
import type { RuleAction } from "./actions/action";
import { CloudWatchLogsAction } from "./actions/cloudwatch-logs";
import { TopicRule } from "./topic-rule";

export { ruleErrorLogGroupName };

export interface TelemetryRuleArgs {
  /** The rule's name: letters, digits and underscores (the seed's `sensor_rule`). */
  readonly ruleName: string;
  /** IoT SQL (version 2016-03-23). */
  readonly sql: string;
  /** What the rule is for, shown in the AWS IoT console. @default undefined: none */
  readonly description?: string;
  /** What the rule does with every matched message (the Firehose action, the analytics' Kinesis one). */
  readonly actions: readonly RuleAction[];
  /** Name of the role the error action assumes. */
  readonly errorRoleName: string;
  /**
   * Error log group name.
   * @default `/iot/rules/<ruleName>/errors`
   */
  readonly errorLogGroupName?: string;
}

export class TelemetryRule extends TopicRule {
  /** The role the error action assumes. */
  readonly errorRole: aws.iam.Role;
  /** Where failed actions are logged. */
  readonly errorLogGroup: aws.cloudwatch.LogGroup;

  constructor(name: string, args: TelemetryRuleArgs, opts?: pulumi.ComponentResourceOptions) {
    // CloudWatch Logs rather than S3 for errors: they are for an operator to read now, and the
    // delivery bucket stays Firehose's alone.
    const errors = new CloudWatchLogsAction({
      id: "errors",
      logGroup: {
        create: { name: args.errorLogGroupName ?? ruleErrorLogGroupName(args.ruleName) },
      },
      roleName: args.errorRoleName,
    });
    super(
      name,
      {
        ruleName: args.ruleName,
        sql: args.sql,
        description: args.description,
        actions: args.actions,
        errorAction: errors,
      },
      opts,
      // The type token of the stack's first rule since before the rules list: URNs stay.
      "iot-pipeline:rule:TelemetryRule",
    );
    if (errors.logGroup === undefined || this.errorBinding?.role === undefined) {
      throw new Error("the telemetry rule's error action was not bound");
    }
    this.errorLogGroup = errors.logGroup;
    this.errorRole = this.errorBinding.role;
  }
}
