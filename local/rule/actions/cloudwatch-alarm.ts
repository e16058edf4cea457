// The CloudWatch alarm action offline: sets the state of one of the stack's alarms in the local
// CloudWatch, which the run's alarm report shows
// (https://docs.aws.amazon.com/iot/latest/developerguide/cloudwatch-alarms-rule-action.html).
import { ALARM_STATES } from "../../../core/topic-rules/actions/cloudwatch-alarm";
import { compileTemplate } from "../../../core/topic-rules/template";
import { ActionFailure, required, substitute, type LocalActionFactory } from "./action";

export const localCloudwatchAlarm: LocalActionFactory<"cloudwatchAlarm"> = (
  spec,
  services,
  ctx,
) => {
  const cloudwatch = required(services.cloudwatch, "the local CloudWatch", ctx);
  const p = spec.params;
  const state = compileTemplate(p.stateValue);
  const reason = compileTemplate(p.stateReason);
  return {
    kind: "cloudwatchAlarm",
    failedAction: "CloudwatchAlarmAction",
    resource: p.alarmName,
    async run(m) {
      const value = substitute(state, m);
      if (!(ALARM_STATES as readonly string[]).includes(value)) {
        throw new ActionFailure(
          `Failed to set alarm state of ${p.alarmName}: stateValue ${JSON.stringify(value)} is not one of ${ALARM_STATES.join(", ")}`,
          p.alarmName,
        );
      }
      const why = substitute(reason, m).slice(0, 1023);
      cloudwatch.setAlarmState(p.alarmName, value, why, m.receivedAt);
      await Promise.resolve();
    },
  };
};
