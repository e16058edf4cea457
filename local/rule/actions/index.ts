// The local executors of the action kinds the stack config can name, one module each
// (./action.ts says how to add one).
import type { ActionKind, ActionSpec } from "../../../core/topic-rules/actions";
import type {
  LocalAction,
  LocalActionContext,
  LocalActionFactory,
  LocalActionServices,
} from "./action";
import { localCloudwatchAlarm } from "./cloudwatch-alarm";
import { localCloudwatchLogs } from "./cloudwatch-logs";
import { localCloudwatchMetric } from "./cloudwatch-metric";
import { localRepublish } from "./republish";

export * from "./action";

export const LOCAL_ACTIONS: { readonly [K in ActionKind]: LocalActionFactory<K> } = {
  republish: localRepublish,
  cloudwatchMetric: localCloudwatchMetric,
  cloudwatchAlarm: localCloudwatchAlarm,
  cloudwatchLogs: localCloudwatchLogs,
};

/** A configured action's executor. */
export function localAction(
  spec: ActionSpec,
  services: LocalActionServices,
  ctx: LocalActionContext,
): LocalAction {
  return (LOCAL_ACTIONS[spec.kind] as LocalActionFactory<ActionKind>)(spec, services, ctx);
}
