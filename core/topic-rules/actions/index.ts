// The action kinds the stack config can name, one module each (./action.ts says how to add one).
import type { ActionDefinition } from "./action";
import { cloudwatchAlarmDefinition, type CloudWatchAlarmSpec } from "./cloudwatch-alarm";
import { cloudwatchLogsDefinition, type CloudWatchLogsSpec } from "./cloudwatch-logs";
import { cloudwatchMetricDefinition, type CloudWatchMetricSpec } from "./cloudwatch-metric";
import { dynamoDbV2Definition, type DynamoDbV2Spec } from "./dynamodb-v2";
import { httpDefinition, type HttpSpec } from "./http";
import { lambdaDefinition, type LambdaSpec } from "./lambda";
import { republishDefinition, type RepublishSpec } from "./republish";
import { s3Definition, type S3Spec } from "./s3";
import { snsDefinition, type SnsSpec } from "./sns";
import { sqsDefinition, type SqsSpec } from "./sqs";

export * from "./action";
export * from "./cloudwatch-alarm";
export * from "./cloudwatch-logs";
export * from "./cloudwatch-metric";
export * from "./dynamodb-v2";
export * from "./http";
export * from "./lambda";
export * from "./republish";
export * from "./s3";
export * from "./sns";
export * from "./sqs";

/** One configured action: its kind (AWS's key for it) and its validated parameters. */
export type ActionSpec =
  | RepublishSpec
  | CloudWatchMetricSpec
  | CloudWatchAlarmSpec
  | CloudWatchLogsSpec
  | LambdaSpec
  | S3Spec
  | SnsSpec
  | SqsSpec
  | DynamoDbV2Spec
  | HttpSpec;

export type ActionKind = ActionSpec["kind"];

export type ActionSpecOf<K extends ActionKind> = Extract<ActionSpec, { kind: K }>;

/** Every kind's definition, by the key the config (and AWS's API) gives it. */
export const ACTION_DEFINITIONS: {
  readonly [K in ActionKind]: ActionDefinition<K, ActionSpecOf<K>["params"]>;
} = {
  republish: republishDefinition,
  cloudwatchMetric: cloudwatchMetricDefinition,
  cloudwatchAlarm: cloudwatchAlarmDefinition,
  cloudwatchLogs: cloudwatchLogsDefinition,
  lambda: lambdaDefinition,
  s3: s3Definition,
  sns: snsDefinition,
  sqs: sqsDefinition,
  dynamoDBv2: dynamoDbV2Definition,
  http: httpDefinition,
};

export const ACTION_KINDS = Object.keys(ACTION_DEFINITIONS) as ActionKind[];

/** The definition of a configured action. */
export function definitionOf<K extends ActionKind>(
  kind: K,
): ActionDefinition<K, ActionSpecOf<K>["params"]> {
  return ACTION_DEFINITIONS[kind];
}
