// Reading one raw config value by its syntax: what every section's parser (core/stack-config.ts,
// core/lake.ts, core/storage.ts, core/monitoring.ts, ...) builds on. A bad value throws a
// ConfigError naming the key and what is allowed.
import { invalidConfig as fail } from "./errors";

/** Raw config values by key (without the `iot-pipeline:` namespace), plus `aws:region`. */
export type RawConfig = Record<string, unknown>;

export function str(raw: RawConfig, key: string, allowed = "set a non-empty string"): string {
  const v = raw[key];
  if (typeof v !== "string" || v.trim() === "") fail(key, v, allowed);
  return v;
}

export function optionalStr(raw: RawConfig, key: string): string | undefined {
  const v = raw[key];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") fail(key, v, "set a string");
  return v;
}

/** Integers may arrive as numbers (YAML) or strings (the Pulumi CLI hands every value over as text). */
export function int(raw: RawConfig, key: string, min: number, max: number, unit: string): number {
  const v = raw[key];
  const n = typeof v === "string" && /^-?\d+$/.test(v.trim()) ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > max) {
    fail(key, v, `must be a whole number of ${unit} from ${min} to ${max}`);
  }
  return n;
}

export function bool(raw: RawConfig, key: string): boolean {
  const v = raw[key];
  if (v === true || v === "true") return true;
  if (v === false || v === "false") return false;
  return fail(key, v, "must be true or false");
}

export function oneOf<T extends string>(raw: RawConfig, key: string, allowed: readonly T[]): T {
  const v = raw[key];
  if (typeof v !== "string" || !(allowed as readonly string[]).includes(v)) {
    fail(key, v, `must be one of ${allowed.join(", ")}`);
  }
  return v as T;
}

/** Objects arrive as YAML structures from files, or as JSON text from the Pulumi CLI. */
export function structured(raw: RawConfig, key: string): unknown {
  const v = raw[key];
  if (typeof v !== "string") return v;
  try {
    return JSON.parse(v);
  } catch {
    return fail(key, v, "must be a YAML/JSON structure");
  }
}
