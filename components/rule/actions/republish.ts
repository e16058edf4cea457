// The republish rule action: the message goes to another MQTT topic (a substitution template)
// with a QoS and MQTT 5 headers, through a role allowed only iot:Publish on the topics the
// template can name (https://docs.aws.amazon.com/iot/latest/developerguide/republish-rule-action.html).
import type * as pulumi from "@pulumi/pulumi";
import type { RepublishHeaders } from "../../../core/topic-rules/actions/republish";
import { republishTopicPattern } from "../../../core/topic-rules/resources";
import {
  actionRole,
  type ProgramActionFactory,
  type RuleAction,
  type RuleActionBinding,
  type RuleActionConfigOf,
  type RuleBindContext,
} from "./action";

export interface RepublishActionArgs {
  /** The topic as configured (`$$` for a reserved topic's `$`, `${...}` templates). */
  readonly topic: string;
  /** @default 0 */
  readonly qos?: 0 | 1;
  readonly headers?: RepublishHeaders;
  /** @default "republish" */
  readonly id?: string;
}

export class RepublishAction implements RuleAction {
  readonly id: string;

  constructor(private readonly args: RepublishActionArgs) {
    this.id = args.id ?? "republish";
  }

  bind(rule: RuleBindContext): RuleActionBinding<RuleActionConfigOf<"republish">> {
    // iot:Publish authorizes on the topic's ARN; a template's `${...}` may become any one level
    // or more, so the grant holds `*` there and nothing wider.
    const topicArn: pulumi.Output<string> = rule.arn(
      "iot",
      `topic/${republishTopicPattern(this.args.topic)}`,
    );
    const { role, grant } = actionRole(rule, this.id, undefined, topicArn, (arn) => [
      { Sid: "Publish", Effect: "Allow" as const, Action: ["iot:Publish"], Resource: [arn] },
    ]);
    const h = this.args.headers;
    return {
      role,
      grant,
      config: {
        kind: "republish",
        value: {
          topic: this.args.topic,
          qos: this.args.qos ?? 0,
          roleArn: role.arn,
          ...(h === undefined
            ? {}
            : { headers: { ...h, userProperties: h.userProperties?.map((u) => ({ ...u })) } }),
        },
      },
    };
  }
}

export const republishFromConfig: ProgramActionFactory<"republish"> = (spec, ctx) =>
  new RepublishAction({ id: ctx.id, ...spec.params });
