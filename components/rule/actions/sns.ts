// The SNS rule action: each message is published to one topic of the stack's account, through a
// role allowed only sns:Publish on that topic
// (https://docs.aws.amazon.com/iot/latest/developerguide/sns-rule-action.html: "An IAM role that AWS
// IoT can assume to perform the sns:Publish operation").
import type * as pulumi from "@pulumi/pulumi";
import type { SnsParams } from "../../../core/topic-rules/actions/sns";
import {
  actionRole,
  type ProgramActionFactory,
  type RuleAction,
  type RuleActionRoleBinding,
  type RuleActionConfigOf,
  type RuleBindContext,
} from "./action";

export interface SnsActionArgs {
  /** The topic's name, in the stack's account and region. */
  readonly topicName: string;
  /** @default "RAW" */
  readonly messageFormat?: SnsParams["messageFormat"];
  /** The role's name; auto-named when undefined. */
  readonly roleName?: pulumi.Input<string>;
  /** @default "sns" */
  readonly id?: string;
}

export class SnsAction implements RuleAction {
  readonly id: string;

  constructor(private readonly args: SnsActionArgs) {
    this.id = args.id ?? "sns";
  }

  bind(rule: RuleBindContext): RuleActionRoleBinding<RuleActionConfigOf<"sns">> {
    // The topic's ARN: `arn:<partition>:sns:<region>:<account>:<name>` (list_amazonsns.html).
    const topicArn = rule.arn("sns", this.args.topicName);
    const { role, grant } = actionRole(rule, this.id, this.args.roleName, topicArn, (arn) => [
      {
        // Publish authorizes on the topic (resource type `topic`,
        // arn:${Partition}:sns:${Region}:${Account}:${TopicName}: list_amazonsns.html).
        Sid: "Publish",
        Effect: "Allow" as const,
        Action: ["sns:Publish"],
        Resource: [arn],
      },
    ]);
    return {
      role,
      grant,
      config: {
        kind: "sns",
        value: {
          targetArn: topicArn,
          messageFormat: this.args.messageFormat ?? "RAW",
          roleArn: role.arn,
        },
      },
    };
  }
}

export const snsFromConfig: ProgramActionFactory<"sns"> = (spec, ctx) =>
  new SnsAction({ id: ctx.id, ...spec.params });
