// Topic rule actions, one per file: each binds to its rule, creating the role it assumes.
import type { ActionKind, ActionSpec } from "../../../core/topic-rules/actions";
import type { ProgramActionContext, ProgramActionFactory, RuleAction } from "./action";
import { cloudwatchAlarmFromConfig } from "./cloudwatch-alarm";
import { cloudwatchLogsFromConfig } from "./cloudwatch-logs";
import { cloudwatchMetricFromConfig } from "./cloudwatch-metric";
import { dynamoDbV2FromConfig } from "./dynamodb-v2";
import { httpFromConfig } from "./http";
import { lambdaFromConfig } from "./lambda";
import { republishFromConfig } from "./republish";
import { s3FromConfig } from "./s3";
import { snsFromConfig } from "./sns";
import { sqsFromConfig } from "./sqs";

export * from "./action";
export * from "./cloudwatch-alarm";
export * from "./cloudwatch-logs";
export * from "./cloudwatch-metric";
export * from "./dynamodb-v2";
export * from "./firehose";
export * from "./http";
export * from "./kinesis";
export * from "./lambda";
export * from "./republish";
export * from "./s3";
export * from "./sns";
export * from "./sqs";

/** The program module of each kind the stack config can name (core/topic-rules/actions/). */
export const PROGRAM_ACTIONS: { readonly [K in ActionKind]: ProgramActionFactory<K> } = {
  republish: republishFromConfig,
  cloudwatchMetric: cloudwatchMetricFromConfig,
  cloudwatchAlarm: cloudwatchAlarmFromConfig,
  cloudwatchLogs: cloudwatchLogsFromConfig,
  lambda: lambdaFromConfig,
  s3: s3FromConfig,
  sns: snsFromConfig,
  sqs: sqsFromConfig,
  dynamoDBv2: dynamoDbV2FromConfig,
  http: httpFromConfig,
};

/** A configured action as its RuleAction. */
export function programAction(spec: ActionSpec, ctx: ProgramActionContext): RuleAction {
  return (PROGRAM_ACTIONS[spec.kind] as ProgramActionFactory<ActionKind>)(spec, ctx);
}
