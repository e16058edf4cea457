// Topic rule actions, one per file: each binds to its rule, creating the role it assumes.
export * from "./action";
export * from "./cloudwatch-logs";
export * from "./dynamodb-v2";
export * from "./firehose";
export * from "./http";
export * from "./kinesis";
export * from "./lambda";
export * from "./s3";
export * from "./sns";
export * from "./sqs";
