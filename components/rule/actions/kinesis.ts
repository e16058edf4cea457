// The Kinesis Data Streams rule action: each message is put on one stream under a partition key,
// through a role allowed only kinesis:PutRecord on that stream
// (https://docs.aws.amazon.com/iot/latest/developerguide/kinesis-rule-action.html).
import type * as pulumi from "@pulumi/pulumi";
import {
  actionRole,
  type RuleAction,
  type RuleActionRoleBinding,
  type RuleActionConfigOf,
  type RuleBindContext,
} from "./action";

export interface KinesisActionArgs {
  readonly streamName: pulumi.Input<string>;
  /** The only resource the action's role may write to. */
  readonly streamArn: pulumi.Input<string>;
  /** Partition key, an IoT SQL substitution template such as `${topic()}`. */
  readonly partitionKey: string;
  /** The role's name; auto-named when undefined. */
  readonly roleName?: pulumi.Input<string>;
  /** @default "kinesis" */
  readonly id?: string;
}

export class KinesisAction implements RuleAction {
  readonly id: string;

  constructor(readonly args: KinesisActionArgs) {
    this.id = args.id ?? "kinesis";
  }

  bind(rule: RuleBindContext): RuleActionRoleBinding<RuleActionConfigOf<"kinesis">> {
    const { role, grant } = actionRole(
      rule,
      this.id,
      this.args.roleName,
      this.args.streamArn,
      (arn) => [
        {
          Sid: "PutRecord",
          Effect: "Allow" as const,
          Action: ["kinesis:PutRecord"],
          Resource: [arn],
        },
      ],
    );
    return {
      role,
      grant,
      config: {
        kind: "kinesis",
        value: {
          streamName: this.args.streamName,
          roleArn: role.arn,
          partitionKey: this.args.partitionKey,
        },
      },
    };
  }
}
