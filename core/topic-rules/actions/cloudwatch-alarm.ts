// The CloudWatch alarm action's parameters: the alarm whose state it sets, the state and the
// reason (https://docs.aws.amazon.com/iot/latest/developerguide/cloudwatch-alarms-rule-action.html).
import { ParamReader, type ActionDefinition } from "./action";

export const ALARM_STATES = ["OK", "ALARM", "INSUFFICIENT_DATA"] as const;

export interface CloudWatchAlarmParams {
  /**
   * The alarm's name. Plain text, not a template here: the action's role is granted
   * cloudwatch:SetAlarmState on this one alarm's ARN.
   */
  readonly alarmName: string;
  /** A template giving OK, ALARM or INSUFFICIENT_DATA. */
  readonly stateValue: string;
  /** A template (at most 1023 characters once filled in). */
  readonly stateReason: string;
}

export interface CloudWatchAlarmSpec {
  readonly kind: "cloudwatchAlarm";
  readonly params: CloudWatchAlarmParams;
}

export const cloudwatchAlarmDefinition: ActionDefinition<"cloudwatchAlarm", CloudWatchAlarmParams> =
  {
    kind: "cloudwatchAlarm",
    failedAction: "CloudwatchAlarmAction",
    page: "https://docs.aws.amazon.com/iot/latest/developerguide/cloudwatch-alarms-rule-action.html",
    parse(raw, ctx) {
      const p: ParamReader = new ParamReader(raw, ctx, ["alarmName", "stateValue", "stateReason"]);
      const alarmName = p.string(
        "alarmName",
        /^[^${}]{1,255}$/,
        "set the alarm's name (1-255 characters, no ${...}: the role is granted that one alarm)",
      );
      const stateValue = p.template("stateValue");
      if (!stateValue.includes("${") && !(ALARM_STATES as readonly string[]).includes(stateValue)) {
        p.fail(
          "stateValue",
          stateValue,
          `use ${ALARM_STATES.join(", ")} or a \${...} that gives one`,
        );
      }
      return { alarmName, stateValue, stateReason: p.template("stateReason", 1023) };
    },
  };
