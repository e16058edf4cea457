// The CloudWatch Logs rule action (used as the rule's error action): messages go to one log group,
// through a role allowed logs:CreateLogStream, logs:DescribeLogStreams and logs:PutLogEvents there
// (https://docs.aws.amazon.com/iot/latest/developerguide/cloudwatch-logs-rule-action.html).
import * as aws from "@pulumi/aws";
import type * as pulumi from "@pulumi/pulumi";
import {
  actionRole,
  type ProgramActionFactory,
  type RuleAction,
  type RuleActionBinding,
  type RuleActionConfigOf,
  type RuleBindContext,
} from "./action";
import { logGroupPolicyArn } from "../../private/iam";

/** A log group the action creates for itself (named `<rule>-<id>` among the rule's children). */
export interface OwnLogGroup {
  readonly name: string;
  /** @default 30 */
  readonly retentionInDays?: number;
}

export interface CloudWatchLogsActionArgs {
  /** An existing group, or `create` for one of the action's own. */
  readonly logGroup:
    | { readonly name: pulumi.Input<string>; readonly arn: pulumi.Input<string> }
    | { readonly create: OwnLogGroup };
  /** The role's name; auto-named when undefined. */
  readonly roleName?: pulumi.Input<string>;
  /** @default "cloudwatch-logs" */
  readonly id?: string;
}

export class CloudWatchLogsAction implements RuleAction {
  readonly id: string;

  /** The group the action created (`logGroup.create`), once bound. */
  logGroup?: aws.cloudwatch.LogGroup;

  constructor(private readonly args: CloudWatchLogsActionArgs) {
    this.id = args.id ?? "cloudwatch-logs";
  }

  bind(rule: RuleBindContext): RuleActionBinding<RuleActionConfigOf<"cloudwatchLogs">> {
    const given = this.args.logGroup;
    let group: { name: pulumi.Input<string>; arn: pulumi.Input<string> };
    if ("create" in given) {
      this.logGroup = new aws.cloudwatch.LogGroup(
        `${rule.name}-${this.id}`,
        { name: given.create.name, retentionInDays: given.create.retentionInDays ?? 30 },
        { parent: rule.parent },
      );
      group = this.logGroup;
    } else {
      group = given;
    }
    const { role, grant } = actionRole(rule, this.id, this.args.roleName, group.arn, (arn) => [
      {
        // Group-level actions: IAM sees the group's ARN with a trailing `:*`
        // (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/iam-access-control-overview-cwl.html).
        Sid: "FindAndCreateLogStreams",
        Effect: "Allow" as const,
        Action: ["logs:CreateLogStream", "logs:DescribeLogStreams"],
        Resource: [logGroupPolicyArn(arn)],
      },
      {
        // PutLogEvents authorizes on the stream; IoT names the streams itself.
        Sid: "WriteLogEvents",
        Effect: "Allow" as const,
        Action: ["logs:PutLogEvents"],
        Resource: [`${arn}:log-stream:*`],
      },
    ]);
    return {
      role,
      grant,
      config: {
        kind: "cloudwatchLogs",
        value: { logGroupName: group.name, roleArn: role.arn },
      },
    };
  }
}

/** `cloudwatchLogs` in the stack config: a log group the stack creates for the rule. */
export const cloudwatchLogsFromConfig: ProgramActionFactory<"cloudwatchLogs"> = (spec, ctx) =>
  new CloudWatchLogsAction({
    id: ctx.id,
    logGroup: { create: { name: spec.params.logGroupName } },
  });
