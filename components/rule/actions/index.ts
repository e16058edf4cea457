// Topic rule actions, one per file: each binds to its rule, creating the role it assumes.
export * from "./action";
export * from "./cloudwatch-logs";
export * from "./firehose";
export * from "./kinesis";
