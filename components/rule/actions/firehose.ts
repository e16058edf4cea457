// The Firehose rule action: each message (with a separator) is put on one delivery stream, through
// a role allowed only firehose:PutRecord on that stream
// (https://docs.aws.amazon.com/iot/latest/developerguide/kinesis-firehose-rule-action.html).
import type * as pulumi from "@pulumi/pulumi";
import {
  actionRole,
  type RuleAction,
  type RuleActionRoleBinding,
  type RuleActionConfigOf,
  type RuleBindContext,
} from "./action";

export interface FirehoseActionArgs {
  readonly streamName: pulumi.Input<string>;
  /** The only resource the action's role may write to. */
  readonly streamArn: pulumi.Input<string>;
  /** Appended to each record; Firehose itself concatenates records without one. */
  readonly separator?: string;
  /** The role's name; auto-named when undefined. */
  readonly roleName?: pulumi.Input<string>;
  /** @default "firehose" */
  readonly id?: string;
}

export class FirehoseAction implements RuleAction {
  readonly id: string;

  constructor(private readonly args: FirehoseActionArgs) {
    this.id = args.id ?? "firehose";
  }

  bind(rule: RuleBindContext): RuleActionRoleBinding<RuleActionConfigOf<"firehose">> {
    const { role, grant } = actionRole(
      rule,
      this.id,
      this.args.roleName,
      this.args.streamArn,
      (arn) => [
        {
          Sid: "PutRecord",
          Effect: "Allow" as const,
          // The action calls PutRecord; PutRecordBatch only with batchMode, which stays off.
          Action: ["firehose:PutRecord"],
          Resource: [arn],
        },
      ],
    );
    return {
      role,
      grant,
      config: {
        kind: "firehose",
        value: {
          deliveryStreamName: this.args.streamName,
          roleArn: role.arn,
          ...(this.args.separator === undefined ? {} : { separator: this.args.separator }),
        },
      },
    };
  }
}
