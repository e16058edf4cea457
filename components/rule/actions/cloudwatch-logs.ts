// The CloudWatch Logs rule action (used as the rule's error action): messages go to one log group,
// through a role allowed logs:CreateLogStream, logs:DescribeLogStreams and logs:PutLogEvents there
// (https://docs.aws.amazon.com/iot/latest/developerguide/cloudwatch-logs-rule-action.html).
import type * as pulumi from "@pulumi/pulumi";
import {
  actionRole,
  type RuleAction,
  type RuleActionRoleBinding,
  type RuleActionConfigOf,
  type RuleBindContext,
} from "./action";
import { logGroupPolicyArn } from "../../private/iam";

export interface CloudWatchLogsActionArgs {
  readonly logGroupName: pulumi.Input<string>;
  /** The log group's ARN (without a trailing `:*`), the only group the role may write to. */
  readonly logGroupArn: pulumi.Input<string>;
  /** The role's name; auto-named when undefined. */
  readonly roleName?: pulumi.Input<string>;
  /** @default "cloudwatch-logs" */
  readonly id?: string;
}

export class CloudWatchLogsAction implements RuleAction {
  readonly id: string;

  constructor(private readonly args: CloudWatchLogsActionArgs) {
    this.id = args.id ?? "cloudwatch-logs";
  }

  bind(rule: RuleBindContext): RuleActionRoleBinding<RuleActionConfigOf<"cloudwatchLogs">> {
    const { role, grant } = actionRole(
      rule,
      this.id,
      this.args.roleName,
      this.args.logGroupArn,
      (arn) => [
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
      ],
    );
    return {
      role,
      grant,
      config: {
        kind: "cloudwatchLogs",
        value: { logGroupName: this.args.logGroupName, roleArn: role.arn },
      },
    };
  }
}
