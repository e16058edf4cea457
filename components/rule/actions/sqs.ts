// The SQS rule action: each message is sent to one queue of the stack's account, through a role
// allowed only sqs:SendMessage on that queue
// (https://docs.aws.amazon.com/iot/latest/developerguide/sqs-rule-action.html: "An IAM role that AWS
// IoT can assume to perform the sqs:SendMessage operation").
import * as pulumi from "@pulumi/pulumi";
import { sqsQueueUrl } from "../../../core/topic-rules/actions/sqs";
import {
  actionRole,
  type ProgramActionFactory,
  type RuleAction,
  type RuleActionRoleBinding,
  type RuleActionConfigOf,
  type RuleBindContext,
} from "./action";

export interface SqsActionArgs {
  /** The queue's name, in the stack's account and region (not FIFO: the action does not support it). */
  readonly queueName: string;
  /** Base64-encode the message before sending it. @default false */
  readonly useBase64?: boolean;
  /** The role's name; auto-named when undefined. */
  readonly roleName?: pulumi.Input<string>;
  /** @default "sqs" */
  readonly id?: string;
}

export class SqsAction implements RuleAction {
  readonly id: string;

  constructor(private readonly args: SqsActionArgs) {
    this.id = args.id ?? "sqs";
  }

  bind(rule: RuleBindContext): RuleActionRoleBinding<RuleActionConfigOf<"sqs">> {
    const name = this.args.queueName;
    // The queue's ARN: `arn:<partition>:sqs:<region>:<account>:<name>` (list_amazonsqs.html).
    const queueArn = rule.arn("sqs", name);
    const { role, grant } = actionRole(rule, this.id, this.args.roleName, queueArn, (arn) => [
      {
        // SendMessage authorizes on the queue (resource type `queue`,
        // arn:${Partition}:sqs:${Region}:${Account}:${QueueName}: list_amazonsqs.html).
        Sid: "SendMessage",
        Effect: "Allow" as const,
        Action: ["sqs:SendMessage"],
        Resource: [arn],
      },
    ]);
    return {
      role,
      grant,
      config: {
        kind: "sqs",
        value: {
          // The ARN's region and account make the URL.
          queueUrl: queueArn.apply((arn) => {
            const [, , , region, account] = arn.split(":");
            return sqsQueueUrl(region, account, name);
          }),
          useBase64: this.args.useBase64 ?? false,
          roleArn: role.arn,
        },
      },
    };
  }
}

export const sqsFromConfig: ProgramActionFactory<"sqs"> = (spec, ctx) =>
  new SqsAction({ id: ctx.id, ...spec.params });
