// The pipeline's component resources, one per file, folder per service.
export * from "./analytics";
export * from "./delivery/delivery-stream";
export * from "./delivery/firehose-to-s3";
export * from "./identity/device-identity";
export * from "./identity/device-policy";
export * from "./pipeline";
export * from "./registry/thing-registry";
export * from "./rule/actions";
export * from "./rule/telemetry-rule";
