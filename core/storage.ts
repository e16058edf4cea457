// Storage an auditor accepts: the bucket policy statement that refuses plain HTTP, the lifecycle
// rules a stack's config asks for, and the checks the policy pack runs on both. Plain data and
// functions, shared by the program and the pack (which must stay importable by its bundle).
import { createHash } from "node:crypto";
import { bool, int, oneOf, type RawConfig } from "./config-values";
import { invalidConfig as fail } from "./errors";
import { PROJECT } from "./project";

/** Storage classes a lifecycle rule may move objects to (S3 API, Transition). */
export type StorageClass =
  "STANDARD_IA" | "INTELLIGENT_TIERING" | "GLACIER_IR" | "GLACIER" | "DEEP_ARCHIVE";
export const STORAGE_CLASSES: readonly StorageClass[] = [
  "STANDARD_IA",
  "INTELLIGENT_TIERING",
  "GLACIER_IR",
  "GLACIER",
  "DEEP_ARCHIVE",
];

/**
 * Days before S3 accepts a transition to Standard-IA: objects must have been stored 30 days
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-transition-general-considerations.html).
 */
export const STANDARD_IA_MIN_DAYS = 30;

/** The lifecycle a stack's config asks for; 0 days means "never". */
export interface LifecycleConfig {
  readonly transitionDays: number;
  readonly storageClass: StorageClass;
  readonly expirationDays: number;
  readonly noncurrentVersionExpirationDays: number;
}

/** What the stack config says about the bucket. */
export interface StorageConfig {
  /** `pulumi destroy` deletes the bucket with its objects (after everything that writes to it). */
  readonly forceDestroy: boolean;
  readonly versioning: boolean;
  readonly lifecycle: LifecycleConfig;
  /** S3 server access logs to a log bucket of the stack's own. */
  readonly accessLogging: boolean;
  /** A customer-managed KMS key for the bucket, the delivery stream, the alarms' topic and Athena's results. */
  readonly kmsKey: boolean;
}

/** Incomplete multipart uploads (Firehose uploads in parts) are aborted after this many days. */
export const ABORT_MULTIPART_DAYS = 7;

/** Athena's query results are scratch data: they expire after this many days. */
export const QUERY_RESULTS_EXPIRATION_DAYS = 7;

/** Server access logs are kept a year. */
export const ACCESS_LOG_EXPIRATION_DAYS = 365;

/** One lifecycle rule in the shape aws.s3.BucketLifecycleConfiguration takes it. */
export interface LifecycleRule {
  readonly id: string;
  readonly status: "Enabled";
  readonly filter: { readonly prefix: string };
  readonly transitions?: readonly { readonly days: number; readonly storageClass: StorageClass }[];
  readonly expiration?: { readonly days: number };
  readonly noncurrentVersionExpiration?: { readonly noncurrentDays: number };
  readonly abortIncompleteMultipartUpload: { readonly daysAfterInitiation: number };
}

/** Prefixes of which none lies under another (the outer one's rule already covers it), sorted. */
export function outermostPrefixes(prefixes: readonly string[]): string[] {
  const unique = [...new Set(prefixes)].sort();
  return unique.filter((p) => !unique.some((q) => q !== p && p.startsWith(q)));
}

/** A rule id S3 accepts (at most 255 characters): the prefix's folders joined by dashes. */
function ruleId(kind: string, prefix: string): string {
  const name = prefix.replace(/\/+$/, "").replace(/[^A-Za-z0-9_.-]+/g, "-") || "root";
  return `${kind}-${name}`.slice(0, 255);
}

/**
 * The data's lifecycle rules: for each data prefix (never the whole bucket, which also holds the
 * Flink application's code), transition and expiry as configured, old versions expired, and
 * abandoned uploads aborted. Empty when the config asks for neither transition nor expiry.
 */
export function dataLifecycleRules(
  prefixes: readonly string[],
  lifecycle: LifecycleConfig,
  versioning: boolean,
): LifecycleRule[] {
  if (lifecycle.transitionDays === 0 && lifecycle.expirationDays === 0) return [];
  return outermostPrefixes(prefixes).map((prefix) => ({
    id: ruleId("data", prefix),
    status: "Enabled" as const,
    filter: { prefix },
    ...(lifecycle.transitionDays > 0
      ? { transitions: [{ days: lifecycle.transitionDays, storageClass: lifecycle.storageClass }] }
      : {}),
    ...(lifecycle.expirationDays > 0 ? { expiration: { days: lifecycle.expirationDays } } : {}),
    ...(versioning
      ? {
          noncurrentVersionExpiration: {
            noncurrentDays: lifecycle.noncurrentVersionExpirationDays,
          },
        }
      : {}),
    abortIncompleteMultipartUpload: { daysAfterInitiation: ABORT_MULTIPART_DAYS },
  }));
}

/** A rule that expires everything under a prefix after `days` (query results, access logs). */
export function expiryRule(prefix: string, days: number, versioning: boolean): LifecycleRule {
  return {
    id: ruleId("expire", prefix),
    status: "Enabled",
    filter: { prefix },
    expiration: { days },
    ...(versioning ? { noncurrentVersionExpiration: { noncurrentDays: 1 } } : {}),
    abortIncompleteMultipartUpload: { daysAfterInitiation: ABORT_MULTIPART_DAYS },
  };
}

/** A bucket policy statement (resource policies name a Principal, unlike the roles' grants). */
export interface BucketPolicyStatement {
  readonly Sid: string;
  readonly Effect: "Allow" | "Deny";
  readonly Principal: "*" | { readonly Service: string } | { readonly AWS: string };
  readonly Action: string | readonly string[];
  readonly Resource: readonly string[];
  readonly Condition?: Readonly<
    Record<string, Readonly<Record<string, string | readonly string[]>>>
  >;
}

/**
 * Refuse every request to the bucket and its objects that does not come over TLS: the statement
 * S3's security best practices give for `aws:SecureTransport`
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html).
 */
export function denyInsecureTransport(bucketArn: string): BucketPolicyStatement {
  return {
    Sid: "DenyInsecureTransport",
    Effect: "Deny",
    Principal: "*",
    Action: "s3:*",
    Resource: [bucketArn, `${bucketArn}/*`],
    Condition: { Bool: { "aws:SecureTransport": "false" } },
  };
}

/**
 * Let S3's logging service write a source bucket's access logs into this one, under `prefix`
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html).
 */
export function allowAccessLogDelivery(
  logBucketArn: string,
  prefix: string,
  sourceBucketArn: string,
  accountId: string,
): BucketPolicyStatement {
  return {
    Sid: "S3ServerAccessLogsPolicy",
    Effect: "Allow",
    Principal: { Service: "logging.s3.amazonaws.com" },
    Action: "s3:PutObject",
    Resource: [`${logBucketArn}/${prefix}*`],
    Condition: {
      ArnLike: { "aws:SourceArn": sourceBucketArn },
      StringEquals: { "aws:SourceAccount": accountId },
    },
  };
}

function asList(v: unknown): unknown[] {
  return Array.isArray(v) ? v : v === undefined ? [] : [v];
}

function parseDocument(doc: unknown): Record<string, unknown> | undefined {
  if (typeof doc === "string") {
    try {
      return parseDocument(JSON.parse(doc));
    } catch {
      return undefined;
    }
  }
  return typeof doc === "object" && doc !== null && !Array.isArray(doc)
    ? (doc as Record<string, unknown>)
    : undefined;
}

/**
 * Whether a bucket policy document refuses requests without TLS for everyone, on the bucket and
 * on every object: a Deny for principal `*`, actions `s3:*` (or `*`), conditioned on
 * `aws:SecureTransport` false. `bucketArn` undefined accepts any bucket's ARN pair (when the ARN
 * is not known yet).
 */
export function deniesInsecureTransport(doc: unknown, bucketArn?: string): boolean {
  const parsed = parseDocument(doc);
  if (parsed === undefined) return false;
  return asList(parsed.Statement).some((raw) => {
    const s = parseDocument(raw);
    if (s === undefined || s.Effect !== "Deny") return false;
    const principal = s.Principal;
    const everyone =
      principal === "*" ||
      (typeof principal === "object" &&
        principal !== null &&
        asList((principal as Record<string, unknown>).AWS).includes("*"));
    const actions = asList(s.Action);
    const allActions = actions.includes("s3:*") || actions.includes("*");
    const resources = asList(s.Resource).filter((r): r is string => typeof r === "string");
    const covers =
      resources.includes("*") ||
      (bucketArn !== undefined
        ? resources.includes(bucketArn) && resources.includes(`${bucketArn}/*`)
        : resources.some((r) => resources.includes(`${r}/*`)));
    const bool = parseDocument(parseDocument(s.Condition)?.Bool);
    const insecure = asList(bool?.["aws:SecureTransport"]).map(String);
    return everyone && allActions && covers && insecure.length === 1 && insecure[0] === "false";
  });
}

/** Whether a lifecycle rule (as aws.s3.BucketLifecycleConfiguration holds it) expires something. */
export function ruleExpiresData(rule: Record<string, unknown>): boolean {
  if (rule.status !== "Enabled") return false;
  const days = (v: unknown, key: string) => {
    const o = asList(v)[0];
    const n = typeof o === "object" && o !== null ? (o as Record<string, unknown>)[key] : undefined;
    return typeof n === "number" && n > 0;
  };
  return days(rule.expiration, "days") || days(rule.noncurrentVersionExpiration, "noncurrentDays");
}

/** The storage keys: versioning, lifecycle, access logging and the encryption key. */
export function parseStorageConfig(raw: RawConfig): StorageConfig {
  const storageClass = oneOf(raw, "transitionStorageClass", STORAGE_CLASSES);
  const transitionDays = int(raw, "transitionDays", 0, 36500, "days (0: never)");
  if (
    storageClass === "STANDARD_IA" &&
    transitionDays > 0 &&
    transitionDays < STANDARD_IA_MIN_DAYS
  ) {
    fail(
      "transitionDays",
      transitionDays,
      `must be 0 or at least ${STANDARD_IA_MIN_DAYS} for STANDARD_IA: S3 moves objects there only after 30 days`,
    );
  }
  const expirationDays = int(raw, "expirationDays", 0, 36500, "days (0: never)");
  if (expirationDays > 0 && transitionDays > 0 && expirationDays <= transitionDays) {
    fail(
      "expirationDays",
      expirationDays,
      `must be greater than transitionDays (${transitionDays}), or 0: objects would expire before they move`,
    );
  }
  return {
    forceDestroy: bool(raw, "forceDestroy"),
    versioning: bool(raw, "versioning"),
    lifecycle: {
      transitionDays,
      storageClass,
      expirationDays,
      noncurrentVersionExpirationDays: int(
        raw,
        "noncurrentVersionExpirationDays",
        1,
        36500,
        "days",
      ),
    },
    accessLogging: bool(raw, "accessLogging"),
    kmsKey: bool(raw, "kmsKey"),
  };
}

/** S3's bucket naming rules (general purpose buckets). */
export function isValidBucketName(name: string): boolean {
  return (
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name) &&
    !name.includes("..") &&
    !/^\d+\.\d+\.\d+\.\d+$/.test(name) &&
    !name.startsWith("xn--") &&
    !name.endsWith("-s3alias")
  );
}

/**
 * The bucket name a stack gets when none is configured: `<project>-<stack>-<account>-<region>`,
 * lower-cased. Account and region make it globally unique (the seed's fixed name is long taken)
 * and stable across updates, unlike auto-naming's random suffix. A stack name too long for S3's
 * 63 characters is shortened and a hash of it appended, so two long stack names still differ.
 */
export function deriveBucketName(stack: string, accountId: string, region: string): string {
  const tail = `-${accountId}-${region}`.toLowerCase();
  let head = `${PROJECT}-${stack}`.toLowerCase().replace(/[^a-z0-9-]+/g, "-");
  if (head.length + tail.length > 63) {
    const hash = createHash("sha256").update(stack).digest("hex").slice(0, 6);
    head = `${head.slice(0, 63 - tail.length - hash.length - 1).replace(/-+$/, "")}-${hash}`;
  }
  return `${head}${tail}`.replace(/-{2,}/g, "-");
}
