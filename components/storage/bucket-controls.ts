// What makes a bucket acceptable to an auditor, beside its public access block and default
// encryption (which DeliveryStream sets): objects owned by the bucket owner (ACLs off), versioning,
// the lifecycle rules of core/storage.ts, a bucket policy that refuses plain HTTP, and optionally
// server access logs into a log bucket that gets the same treatment.
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import {
  ACCESS_LOG_EXPIRATION_DAYS,
  allowAccessLogDelivery,
  denyInsecureTransport,
  expiryRule,
  type BucketPolicyStatement,
  type LifecycleRule,
} from "../../core/storage";

/** The prefix of the access logs in the log bucket. */
export const ACCESS_LOG_PREFIX = "access-logs/";

export interface BucketControlsArgs {
  readonly versioning: boolean;
  /** The lifecycle rules (core/storage.ts); none creates no lifecycle configuration. */
  readonly lifecycleRules: readonly LifecycleRule[];
  /** Log the bucket's requests to a log bucket of its own. */
  readonly accessLogging: boolean;
}

export interface BucketControls {
  readonly ownership: aws.s3.BucketOwnershipControls;
  readonly versioning?: aws.s3.BucketVersioning;
  readonly lifecycle?: aws.s3.BucketLifecycleConfiguration;
  readonly policy: aws.s3.BucketPolicy;
  /** The access log bucket, when access logging is on. */
  readonly logBucket?: aws.s3.Bucket;
}

function ownership(name: string, bucket: pulumi.Input<string>, parent: pulumi.Resource) {
  // BucketOwnerEnforced turns ACLs off: the bucket owner owns every object, whoever wrote it
  // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/about-object-ownership.html).
  return new aws.s3.BucketOwnershipControls(
    `${name}-ownership`,
    { bucket, rule: { objectOwnership: "BucketOwnerEnforced" } },
    { parent },
  );
}

function versioning(name: string, bucket: pulumi.Input<string>, parent: pulumi.Resource) {
  return new aws.s3.BucketVersioning(
    `${name}-versioning`,
    { bucket, versioningConfiguration: { status: "Enabled" } },
    { parent },
  );
}

function lifecycle(
  name: string,
  bucket: pulumi.Input<string>,
  rules: readonly LifecycleRule[],
  parent: pulumi.Resource,
  dependsOn: pulumi.Resource[],
) {
  return new aws.s3.BucketLifecycleConfiguration(
    `${name}-lifecycle`,
    {
      bucket,
      rules: rules.map((r) => ({
        ...r,
        filter: { ...r.filter },
        transitions: r.transitions?.map((t) => ({ ...t })),
      })),
    },
    // S3 applies noncurrent-version rules once versioning exists.
    { parent, dependsOn },
  );
}

function policy(
  name: string,
  bucket: aws.s3.Bucket,
  extra: pulumi.Input<BucketPolicyStatement[]>,
  parent: pulumi.Resource,
  dependsOn: pulumi.Resource[],
) {
  return new aws.s3.BucketPolicy(
    `${name}-policy`,
    {
      bucket: bucket.id,
      policy: pulumi.all([bucket.arn, extra]).apply(([arn, more]) =>
        JSON.stringify({
          Version: "2012-10-17",
          Statement: [denyInsecureTransport(arn), ...(more as BucketPolicyStatement[])],
        }),
      ),
    },
    // The public access block's BlockPublicPolicy judges the policy; let it exist first.
    { parent, dependsOn },
  );
}

/**
 * The controls for `bucket`, as children of `parent` named after `name`. `publicAccessBlock` is the
 * bucket's block, which the bucket policy waits for; the log bucket is torn down as the bucket is
 * (its `forceDestroy`).
 */
export function bucketControls(
  name: string,
  bucket: aws.s3.Bucket,
  publicAccessBlock: pulumi.Resource,
  args: BucketControlsArgs,
  parent: pulumi.Resource,
  forceDestroy: boolean,
): BucketControls {
  const own = ownership(name, bucket.id, parent);
  const ver = args.versioning ? versioning(name, bucket.id, parent) : undefined;
  const life =
    args.lifecycleRules.length > 0
      ? lifecycle(name, bucket.id, args.lifecycleRules, parent, ver ? [ver] : [])
      : undefined;
  const bucketPolicy = policy(name, bucket, [], parent, [publicAccessBlock]);

  let logBucket: aws.s3.Bucket | undefined;
  if (args.accessLogging) {
    const logs = `${name}-access-logs`;
    // Auto-named: the data bucket's name plus a suffix could pass S3's 63 characters.
    logBucket = new aws.s3.Bucket(logs, { forceDestroy }, { parent });
    const block = new aws.s3.BucketPublicAccessBlock(
      `${logs}-public-access`,
      {
        bucket: logBucket.id,
        blockPublicAcls: true,
        blockPublicPolicy: true,
        ignorePublicAcls: true,
        restrictPublicBuckets: true,
      },
      { parent },
    );
    // Server access logs can be delivered to a bucket encrypted with SSE-S3 (AES256).
    new aws.s3.BucketServerSideEncryptionConfiguration(
      `${logs}-encryption`,
      {
        bucket: logBucket.id,
        rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }],
      },
      { parent },
    );
    ownership(logs, logBucket.id, parent);
    const logVersioning = args.versioning ? versioning(logs, logBucket.id, parent) : undefined;
    lifecycle(
      logs,
      logBucket.id,
      [expiryRule(ACCESS_LOG_PREFIX, ACCESS_LOG_EXPIRATION_DAYS, args.versioning)],
      parent,
      logVersioning ? [logVersioning] : [],
    );
    const accountId = aws.getCallerIdentityOutput({}, { parent }).accountId;
    const logPolicy = policy(
      logs,
      logBucket,
      pulumi
        .all([logBucket.arn, bucket.arn, accountId])
        .apply(([logArn, sourceArn, account]) => [
          allowAccessLogDelivery(logArn, ACCESS_LOG_PREFIX, sourceArn, account),
        ]),
      parent,
      [block],
    );
    new aws.s3.BucketLogging(
      `${name}-logging`,
      { bucket: bucket.id, targetBucket: logBucket.id, targetPrefix: ACCESS_LOG_PREFIX },
      // S3 checks that it may write to the target when logging is turned on.
      { parent, dependsOn: [logPolicy] },
    );
  }
  return { ownership: own, versioning: ver, lifecycle: life, policy: bucketPolicy, logBucket };
}
