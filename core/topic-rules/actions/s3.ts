// The S3 action's parameters and its grant
// (https://docs.aws.amazon.com/iot/latest/developerguide/s3-rule-action.html): "An IAM role that
// AWS IoT can assume to perform the s3:PutObject operation"; `key` "The path to the file where
// the data is written" supports substitution templates; a canned ACL is refused (below). The
// bucket is the stack's own (the pipeline's bucket), so the role's grant names it.
import { parseTemplate } from "../template";
import { ParamReader, type ActionDefinition } from "./action";

export interface S3Params {
  /** The object key, a substitution template such as `raw/${topic()}/${timestamp()}`. */
  readonly key: string;
}

export interface S3Spec {
  readonly kind: "s3";
  readonly params: S3Params;
}

/**
 * The keys the action's role may write: the key itself when it has no template, else every key
 * under the key's literal folder (the text before the first template, up to its last `/`). A
 * grant cannot follow a template, so this is the narrowest it can be; a key that starts with a
 * template may write anywhere in the bucket.
 */
export function s3KeyGrant(key: string): string {
  const t = parseTemplate(key);
  if (!t.dynamic) return key;
  const first = t.parts[0];
  const prefix = first.kind === "text" ? first.text : "";
  return `${prefix.slice(0, prefix.lastIndexOf("/") + 1)}*`;
}

export const s3Definition: ActionDefinition<"s3", S3Params> = {
  kind: "s3",
  failedAction: "S3Action",
  page: "https://docs.aws.amazon.com/iot/latest/developerguide/s3-rule-action.html",
  parse(raw, ctx) {
    for (const k of ["cannedAcl", "cannedacl", "bucketName", "bucket"]) {
      if (k in raw) {
        const why = k.startsWith("canned")
          ? "a canned ACL is refused: the stack's bucket has ACLs disabled (BucketOwnerEnforced) and blocks public access, so an ACL fails or opens the object; remove it"
          : "the S3 action writes to the stack's own bucket, whose name the stack sets; remove it";
        new ParamReader({}, ctx, []).fail(k, raw[k], why);
      }
    }
    const p = new ParamReader(raw, ctx, ["key"]);
    const key = p.template("key", 1024);
    if (key.startsWith("/"))
      p.fail("key", key, "an S3 key is relative to the bucket: remove the leading /");
    return { key };
  },
};
