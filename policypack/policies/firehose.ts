// Policy 5: a delivery stream outside dev logs its delivery errors to CloudWatch Logs; without
// them, records that fail to reach S3 vanish without a trace.
import type { ResourceValidationPolicy } from "@pulumi/policy";
import { TYPES, devStacksSchema, inDevStack, isSet, obj, str, validateType } from "./common";

/** `extended_s3` → `extendedS3Configuration`: the destination's configuration property. */
export function destinationConfigKey(destination: string): string {
  const camel = destination.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  return `${camel}Configuration`;
}

export const firehoseErrorLogging: ResourceValidationPolicy = {
  name: "firehose-delivery-stream-error-logging",
  description:
    "Outside the dev stacks, Firehose delivery streams log delivery errors to CloudWatch Logs (cloudwatchLoggingOptions enabled, with a log group and stream).",
  enforcementLevel: "mandatory",
  severity: "medium",
  configSchema: devStacksSchema,
  validateResource: validateType(TYPES.firehose, (props, args, report) => {
    if (inDevStack(args)) args.notApplicable("dev stack");
    const name = str(props.name) ?? args.name;
    const key = destinationConfigKey(str(props.destination) ?? "extended_s3");
    const logging = obj(obj(props[key])?.cloudwatchLoggingOptions);
    if (logging?.enabled !== true) {
      report(
        `delivery stream ${name} has no error logging: set ${key}.cloudwatchLoggingOptions.enabled to true with a logGroupName and logStreamName (config iot-pipeline:errorLogging true)`,
      );
      return;
    }
    // The log group's name is often another resource's output, unknown during preview.
    const missing = ["logGroupName", "logStreamName"].filter((k) => !isSet(logging, k));
    if (missing.length > 0) {
      report(
        `delivery stream ${name} enables error logging without ${missing.join(" and ")}; set ${missing.map((k) => `${key}.cloudwatchLoggingOptions.${k}`).join(" and ")}`,
      );
    }
  }),
};
