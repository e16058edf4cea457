// The telemetry topic rule: IoT SQL over the devices' topic, its actions (each an object from
// ./actions that creates its own role and grant), and an error action into a CloudWatch log group
// of the rule's own.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import type {
  RuleAction,
  RuleActionBinding,
  RuleActionConfigOf,
  RuleActionKind,
} from "./actions/action";
import { CloudWatchLogsAction } from "./actions/cloudwatch-logs";

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

/** The error log group a rule gets when none is named. */
export function ruleErrorLogGroupName(ruleName: string): string {
  return `/iot/rules/${ruleName}/errors`;
}

/** The topic rule's action lists (`firehoses`, `kineses`, ...) from bound actions. */
function actionLists(bindings: readonly RuleActionBinding[]) {
  const of = <K extends RuleActionKind>(kind: K) =>
    bindings
      .map((b) => b.config)
      .filter((c): c is RuleActionConfigOf<K> => c.kind === kind)
      .map((c) => c.value);
  const lists = {
    firehoses: of("firehose"),
    kineses: of("kinesis"),
    cloudwatchLogs: of("cloudwatchLogs"),
    lambdas: of("lambda"),
    s3: of("s3"),
    sns: of("sns"),
    sqs: of("sqs"),
    dynamodbv2s: of("dynamodbv2"),
    https: of("http"),
  };
  return Object.fromEntries(Object.entries(lists).filter(([, v]) => v.length > 0));
}

export class TelemetryRule extends pulumi.ComponentResource {
  /** The topic rule. */
  readonly rule: aws.iot.TopicRule;
  /** The role each action assumes, by action id (`firehose`, `kinesis`, ...). */
  readonly actionRoles: Readonly<Record<string, aws.iam.Role>>;
  /** The role the error action assumes. */
  readonly errorRole: aws.iam.Role;
  /** Where failed actions are logged. */
  readonly errorLogGroup: aws.cloudwatch.LogGroup;
  /** The rule's name. */
  readonly ruleName: pulumi.Output<string>;

  constructor(name: string, args: TelemetryRuleArgs, opts?: pulumi.ComponentResourceOptions) {
    super("iot-pipeline:rule:TelemetryRule", name, {}, opts);
    if (args.actions.length === 0) throw new Error(`topic rule ${args.ruleName} has no action`);
    const ids = args.actions.map((a) => a.id);
    if (new Set([...ids, "errors"]).size !== ids.length + 1) {
      throw new Error(`topic rule ${args.ruleName}'s action ids must be unique: ${ids.join(", ")}`);
    }
    const context = {
      parent: this,
      name,
      accountId: aws.getCallerIdentityOutput({}, { parent: this }).accountId,
      ruleName: args.ruleName,
    };
    const bindings = args.actions.map((a) => a.bind(context));
    this.actionRoles = Object.fromEntries(
      args.actions.flatMap((a, i) => {
        const role = bindings[i].role;
        return role === undefined ? [] : [[a.id, role]];
      }),
    );

    // CloudWatch Logs rather than S3 for errors: they are for an operator to read now, and the
    // delivery bucket stays Firehose's alone.
    this.errorLogGroup = new aws.cloudwatch.LogGroup(
      `${name}-errors`,
      { name: args.errorLogGroupName ?? ruleErrorLogGroupName(args.ruleName), retentionInDays: 30 },
      { parent: this },
    );
    const error = new CloudWatchLogsAction({
      id: "errors",
      logGroupName: this.errorLogGroup.name,
      logGroupArn: this.errorLogGroup.arn,
      roleName: args.errorRoleName,
    }).bind(context);
    this.errorRole = error.role;

    this.rule = new aws.iot.TopicRule(
      `${name}-rule`,
      {
        name: args.ruleName,
        enabled: true,
        sql: args.sql,
        sqlVersion: "2016-03-23",
        ...(args.description === undefined ? {} : { description: args.description }),
        ...actionLists(bindings),
        errorAction: { cloudwatchLogs: error.config.value },
      },
      // IoT checks that it can pass each role when the rule is created.
      {
        parent: this,
        dependsOn: [
          ...bindings.flatMap((b) => (b.grant === undefined ? [] : [b.grant])),
          error.grant,
        ],
      },
    );

    this.ruleName = this.rule.name;
    this.registerOutputs({ ruleName: this.ruleName });
  }
}
