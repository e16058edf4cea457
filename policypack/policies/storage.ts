// Storage an auditor accepts: every S3 bucket refuses requests without TLS (mandatory everywhere),
// and outside the dev stacks every bucket has a lifecycle rule that expires data. Stack policies:
// in @pulumi/aws 7 the bucket policy and lifecycle are resources of their own beside the bucket.
import type { PolicyResource, StackValidationPolicy } from "@pulumi/policy";
import { deniesInsecureTransport, ruleExpiresData } from "../../core/storage";
import {
  BUCKET_KEYS,
  TYPES,
  devStacksSchema,
  inDevStack,
  items,
  peek,
  refersTo,
  str,
} from "./common";

const BUCKETS: readonly string[] = [TYPES.s3Bucket, TYPES.s3BucketV2];
const BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy";
const LIFECYCLES: readonly string[] = [
  "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
  "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
];

function bucketsOf(resources: readonly PolicyResource[]): PolicyResource[] {
  return resources.filter((r) => BUCKETS.includes(r.type));
}

export const s3BucketDenyInsecureTransport: StackValidationPolicy = {
  name: "s3-bucket-deny-insecure-transport",
  description:
    "Every S3 bucket has a bucket policy that denies all requests made without TLS (a Deny for every principal on s3:* over the bucket and its objects when aws:SecureTransport is false).",
  enforcementLevel: "mandatory",
  severity: "high",
  validateStack: (args, report) => {
    const buckets = bucketsOf(args.resources);
    if (buckets.length === 0) args.notApplicable("the stack has no S3 bucket");
    const policies = args.resources.filter((r) => r.type === BUCKET_POLICY);
    for (const bucket of buckets) {
      const arn = str(peek(bucket.props, "arn"));
      const mine = policies.filter((p) => refersTo(p, "bucket", bucket, BUCKET_KEYS));
      // The document names the bucket's ARN, unknown during a first preview: then any ARN pair does.
      const known = arn !== undefined && arn.startsWith("arn:") ? arn : undefined;
      if (!mine.some((p) => deniesInsecureTransport(p.props.policy, known))) {
        report(
          `S3 bucket ${bucket.name} accepts requests without TLS; add an aws.s3.BucketPolicy for it with a Deny for Principal "*" on s3:* over the bucket and its objects when aws:SecureTransport is "false"`,
          bucket.urn,
        );
      }
    }
  },
};

export const s3BucketLifecycle: StackValidationPolicy = {
  name: "s3-bucket-lifecycle",
  description:
    "Outside the dev stacks, every S3 bucket has a lifecycle configuration with an enabled rule that expires objects or their old versions.",
  enforcementLevel: "mandatory",
  severity: "medium",
  configSchema: devStacksSchema,
  validateStack: (args, report) => {
    if (inDevStack(args)) args.notApplicable("dev stack");
    const buckets = bucketsOf(args.resources);
    if (buckets.length === 0) args.notApplicable("the stack has no S3 bucket");
    const configs = args.resources.filter((r) => LIFECYCLES.includes(r.type));
    for (const bucket of buckets) {
      const mine = configs.filter((c) => refersTo(c, "bucket", bucket, BUCKET_KEYS));
      if (!mine.some((c) => items(c.props.rules).some(ruleExpiresData))) {
        report(
          `S3 bucket ${bucket.name} keeps every object forever; add an aws.s3.BucketLifecycleConfiguration for it with an Enabled rule that sets expiration.days or noncurrentVersionExpiration.noncurrentDays (config iot-pipeline:expirationDays)`,
          bucket.urn,
        );
      }
    }
  },
};
