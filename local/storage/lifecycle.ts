// The local bucket's mirror of the stack's lifecycle expiry: at the pipeline's start, objects older
// than a rule's expiration (by their write time, as S3 counts from creation) are removed and
// counted. Transitions change only the storage class, which a folder has none of, so they are
// reported, not applied.
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { LifecycleRule } from "../../core/storage";
import type { LocalBucket } from "./s3";

export interface LifecycleResult {
  readonly expired: number;
  /** Objects past a transition's age (S3 would have moved them to another storage class). */
  readonly transitioned: number;
}

const DAY_MS = 86_400_000;

/** Applies the rules' expiry to the bucket's objects, as of `now`. */
export async function applyLifecycle(
  bucket: LocalBucket,
  rules: readonly LifecycleRule[],
  now = Date.now(),
  log: (line: string) => void = () => undefined,
): Promise<LifecycleResult> {
  const keys = await bucket.listKeys();
  let expired = 0;
  let transitioned = 0;
  for (const rule of rules) {
    const under = keys.filter((k) => k.startsWith(rule.filter.prefix));
    let ruleExpired = 0;
    for (const key of under) {
      const file = path.join(bucket.dir, ...key.split("/"));
      const stat = await fs.stat(file).catch(() => undefined);
      if (stat === undefined) continue;
      const age = now - stat.mtimeMs;
      if (rule.expiration !== undefined && age > rule.expiration.days * DAY_MS) {
        await fs.rm(file, { force: true });
        ruleExpired++;
      } else if (rule.transitions?.some((t) => age > t.days * DAY_MS)) {
        transitioned++;
      }
    }
    if (ruleExpired > 0) {
      log(
        `lifecycle: expired ${ruleExpired} object(s) under ${rule.filter.prefix} older than ${rule.expiration?.days} day(s) (rule ${rule.id})`,
      );
    }
    expired += ruleExpired;
  }
  return { expired, transitioned };
}
