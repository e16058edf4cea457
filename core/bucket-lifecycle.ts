// The pipeline bucket's lifecycle rules for a stack: the configured transition and expiry on every
// folder the stack writes data to (the lake's telemetry, the error prefixes, the analytics windows),
// short expiry for Athena's results, and nothing on the Flink application's code. One definition
// for the program's lifecycle configuration and the local bucket's mirror of it.
import { windowsDeliveryConfig } from "./delivery";
import { ATHENA_RESULTS_PREFIX, folderOf, lakeLayout } from "./lake";
import type { StackConfig } from "./stack-config";
import {
  dataLifecycleRules,
  expiryRule,
  QUERY_RESULTS_EXPIRATION_DAYS,
  type LifecycleRule,
} from "./storage";

/** The folders of the bucket that hold delivered data, outermost first (core/storage.ts). */
export function dataPrefixes(config: StackConfig): string[] {
  const layout = lakeLayout(config.delivery, config.lake);
  const prefixes = [layout.location, folderOf(layout.errorOutputPrefix)];
  if (config.analytics !== undefined) {
    const windows = windowsDeliveryConfig(config.delivery, config.analytics.prefix);
    prefixes.push(windows.prefix, folderOf(windows.errorOutputPrefix));
  }
  return prefixes.filter((p) => p !== "");
}

/** Every lifecycle rule of the stack's bucket. */
export function bucketLifecycleRules(config: StackConfig): LifecycleRule[] {
  const s = config.storage;
  return [
    ...dataLifecycleRules(dataPrefixes(config), s.lifecycle, s.versioning),
    expiryRule(ATHENA_RESULTS_PREFIX, QUERY_RESULTS_EXPIRATION_DAYS, s.versioning),
  ];
}
