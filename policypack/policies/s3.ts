// Policy 4: every S3 bucket of the stack blocks all public access and encrypts at rest. In
// @pulumi/aws 7 both are resources of their own beside the bucket, so this is a stack policy.
import type { PolicyResource, StackValidationPolicy } from "@pulumi/policy";
import { BUCKET_KEYS, TYPES, items, obj, refersTo, str } from "./common";

const BUCKETS: readonly string[] = [TYPES.s3Bucket, TYPES.s3BucketV2];
const ENCRYPTIONS: readonly string[] = [TYPES.s3Encryption, TYPES.s3EncryptionV2];
const BLOCK_FLAGS = [
  "blockPublicAcls",
  "blockPublicPolicy",
  "ignorePublicAcls",
  "restrictPublicBuckets",
] as const;
const SSE_ALGORITHMS = ["AES256", "aws:kms", "aws:kms:dsse"];

function algorithmOf(rule: Record<string, unknown> | undefined): string | undefined {
  return str(obj(rule?.applyServerSideEncryptionByDefault)?.sseAlgorithm);
}

function encrypted(bucket: PolicyResource, configs: readonly PolicyResource[]): boolean {
  // The bucket's own (deprecated) inline block still counts.
  const inline = algorithmOf(obj(obj(bucket.props.serverSideEncryptionConfiguration)?.rule));
  if (inline && SSE_ALGORITHMS.includes(inline)) return true;
  return configs.some(
    (c) =>
      refersTo(c, "bucket", bucket, BUCKET_KEYS) &&
      [...items(c.props.rules), ...items(c.props.rule)].some((r) =>
        SSE_ALGORITHMS.includes(algorithmOf(r) ?? ""),
      ),
  );
}

export const s3BucketPrivateAndEncrypted: StackValidationPolicy = {
  name: "s3-bucket-private-and-encrypted",
  description:
    "Every S3 bucket has a public access block with all four settings true and a server-side encryption configuration (AES256 or aws:kms).",
  enforcementLevel: "mandatory",
  severity: "high",
  validateStack: (args, report) => {
    const buckets = args.resources.filter((r) => BUCKETS.includes(r.type));
    if (buckets.length === 0) args.notApplicable("the stack has no S3 bucket");
    const blocks = args.resources.filter((r) => r.type === TYPES.s3PublicAccessBlock);
    const configs = args.resources.filter((r) => ENCRYPTIONS.includes(r.type));
    for (const bucket of buckets) {
      const block = blocks.find((b) => refersTo(b, "bucket", bucket, BUCKET_KEYS));
      if (!block) {
        report(
          `S3 bucket ${bucket.name} has no public access block; add an aws.s3.BucketPublicAccessBlock for it with ${BLOCK_FLAGS.join(", ")} all true`,
          bucket.urn,
        );
      } else {
        const open = BLOCK_FLAGS.filter((f) => block.props[f] !== true);
        if (open.length > 0) {
          report(
            `public access block ${block.name} of S3 bucket ${bucket.name} does not set ${open.join(", ")} to true; set all four to true`,
            block.urn,
          );
        }
      }
      if (!encrypted(bucket, configs)) {
        report(
          `S3 bucket ${bucket.name} has no server-side encryption; add an aws.s3.BucketServerSideEncryptionConfiguration for it with rules[0].applyServerSideEncryptionByDefault.sseAlgorithm AES256 or aws:kms`,
          bucket.urn,
        );
      }
    }
  },
};
