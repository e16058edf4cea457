// The S3 rule action's parameters and its grant
// (https://docs.aws.amazon.com/iot/latest/developerguide/s3-rule-action.html): "An IAM role that
// AWS IoT can assume to perform the s3:PutObject operation"; `key` "The path to the file where
// the data is written" supports substitution templates; `cannedacl` is refused here (see below).
import { hasTemplate, literalPrefix } from "./template-text";

/** The S3 action's page. */
export const S3_ACTION_PAGE =
  "https://docs.aws.amazon.com/iot/latest/developerguide/s3-rule-action.html";

/** An S3 action as the stack config gives it: the stack's own bucket, one key template. */
export interface S3ActionSpec {
  readonly kind: "s3";
  /** The object key, a substitution template such as `raw/${topic()}/${timestamp()}`. */
  readonly key: string;
}

/**
 * Why an S3 action's config cannot be used, or undefined. A canned ACL is refused: the stack's
 * bucket enforces bucket-owner ownership with ACLs disabled and blocks public access, so an ACL
 * (`public-read` in the page's own example) either fails every PutObject or opens the object.
 */
export function s3ActionProblem(raw: Record<string, unknown>): string | undefined {
  for (const k of ["cannedAcl", "cannedacl"]) {
    if (k in raw) {
      return `${k} is refused: the stack's bucket has ACLs disabled and blocks public access; remove ${k} (access is the bucket policy's)`;
    }
  }
  const key = raw.key;
  if (typeof key !== "string" || key.trim() === "") {
    return "key is required: the object key, e.g. raw/${topic()}/${timestamp()} (a static key overwrites one object per message)";
  }
  if (key.startsWith("/"))
    return `key ${JSON.stringify(key)} starts with /; S3 keys are relative to the bucket`;
  return undefined;
}

/**
 * The keys the action's role may write: the key itself when it has no template, else every key
 * under the key's literal folder (the text before the first template, up to its last `/`). A
 * grant cannot follow a template, so this is the narrowest the role can be; a key that starts with
 * a template may write anywhere in the bucket, and the docs say so.
 */
export function s3KeyGrant(key: string): string {
  if (!hasTemplate(key)) return key;
  const prefix = literalPrefix(key);
  return `${prefix.slice(0, prefix.lastIndexOf("/") + 1)}*`;
}
