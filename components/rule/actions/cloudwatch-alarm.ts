// The CloudWatch alarm rule action: sets one alarm's state (value and reason: substitution
// templates), through a role allowed only cloudwatch:SetAlarmState on that alarm
// (https://docs.aws.amazon.com/iot/latest/developerguide/cloudwatch-alarms-rule-action.html).
import type { CloudWatchAlarmParams } from "../../../core/topic-rules/actions/cloudwatch-alarm";
import {
  actionRole,
  type ProgramActionFactory,
  type RuleAction,
  type RuleActionBinding,
  type RuleActionConfigOf,
  type RuleBindContext,
} from "./action";

export interface CloudWatchAlarmActionArgs extends CloudWatchAlarmParams {
  /** @default "cloudwatch-alarm" */
  readonly id?: string;
}

export class CloudWatchAlarmAction implements RuleAction {
  readonly id: string;

  constructor(private readonly args: CloudWatchAlarmActionArgs) {
    this.id = args.id ?? "cloudwatch-alarm";
  }

  bind(rule: RuleBindContext): RuleActionBinding<RuleActionConfigOf<"cloudwatchAlarm">> {
    const a = this.args;
    const alarmArn = rule.arn("cloudwatch", `alarm:${a.alarmName}`);
    const { role, grant } = actionRole(rule, this.id, undefined, alarmArn, (arn) => [
      {
        Sid: "SetAlarmState",
        Effect: "Allow" as const,
        Action: ["cloudwatch:SetAlarmState"],
        Resource: [arn],
      },
    ]);
    return {
      role,
      grant,
      config: {
        kind: "cloudwatchAlarm",
        value: {
          alarmName: a.alarmName,
          stateValue: a.stateValue,
          stateReason: a.stateReason,
          roleArn: role.arn,
        },
      },
    };
  }
}

export const cloudwatchAlarmFromConfig: ProgramActionFactory<"cloudwatchAlarm"> = (spec, ctx) =>
  new CloudWatchAlarmAction({ id: ctx.id, ...spec.params });
