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
import { localDynamoDbV2, localSns, localSqs } from "./recorded";
import { localHttp } from "./http";
import { localLambda } from "./lambda";
import { localRepublish } from "./republish";
import { localS3 } from "./s3";

export * from "./action";
export * from "./http";
export * from "./lambda";
export * from "./recorded";
export * from "./request-log";
export * from "./s3";

export const LOCAL_ACTIONS: { readonly [K in ActionKind]: LocalActionFactory<K> } = {
  republish: localRepublish,
  cloudwatchMetric: localCloudwatchMetric,
  cloudwatchAlarm: localCloudwatchAlarm,
  cloudwatchLogs: localCloudwatchLogs,
  lambda: localLambda,
  s3: localS3,
  sns: localSns,
  sqs: localSqs,
  dynamoDBv2: localDynamoDbV2,
  http: localHttp,
};

/** A configured action's executor. */
export function localAction(
  spec: ActionSpec,
  services: LocalActionServices,
  ctx: LocalActionContext,
): LocalAction {
  return (LOCAL_ACTIONS[spec.kind] as LocalActionFactory<ActionKind>)(spec, services, ctx);
}
