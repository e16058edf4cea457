// The pipeline bucket's lifecycle rules for a stack: the configured transition and expiry on every
// folder the stack writes data to (the lake's telemetry, the error prefixes, the analytics windows),
// short expiry for Athena's results, and nothing on the Flink application's code. One definition
// for the program's lifecycle configuration and the local bucket's mirror of it.
import type { DeliveryConfig } from "./delivery";
import { invalidConfig } from "./errors";
import { ATHENA_RESULTS_PREFIX, folderOf, type LakeLayout } from "./lake";
import {
  dataLifecycleRules,
  expiryRule,
  QUERY_RESULTS_EXPIRATION_DAYS,
  type LifecycleRule,
  type StorageConfig,
} from "./storage";

/** The folders of the bucket that hold delivered data, outermost first (core/storage.ts). */
export function dataPrefixes(layout: LakeLayout, windows: DeliveryConfig | undefined): string[] {
  const prefixes = [layout.location, folderOf(layout.errorOutputPrefix)];
  if (windows !== undefined) prefixes.push(windows.prefix, folderOf(windows.errorOutputPrefix));
  return prefixes.filter((p) => p !== "");
}

/**
 * Every lifecycle rule of the stack's bucket, from the lake's layout and the windows' delivery
 * (core/plan.ts works both out once). `errorOutputPrefix` is the configured one: with a rule to
 * apply, it must lie in a folder, since a rule for the bucket's root would reach everything.
 */
export function bucketLifecycleRules(
  layout: LakeLayout,
  windows: DeliveryConfig | undefined,
  s: StorageConfig,
  errorOutputPrefix: string,
): LifecycleRule[] {
  if (
    (s.lifecycle.expirationDays > 0 || s.lifecycle.transitionDays > 0) &&
    folderOf(errorOutputPrefix) === ""
  ) {
    invalidConfig(
      "errorOutputPrefix",
      errorOutputPrefix,
      "must begin with a folder such as errors/ when a lifecycle rule applies: a rule for the bucket's root would also expire the Flink application's code",
    );
  }
  return [
    ...dataLifecycleRules(dataPrefixes(layout, windows), s.lifecycle, s.versioning),
    expiryRule(ATHENA_RESULTS_PREFIX, QUERY_RESULTS_EXPIRATION_DAYS, s.versioning),
  ];
}
