// Fleet provisioning by claim: the pre-provisioning hook's rule, shared by the Lambda hook, the
// program and the local provisioning service.
import { isObject, SERIAL_PARAMETER } from "./template";

// ---- The pre-provisioning hook's rule ---------------------------------------------------------
// https://docs.aws.amazon.com/iot/latest/developerguide/pre-provisioning-hook.html

/** What the hook returns (the page's return value). */
export interface PreProvisioningHookResponse {
  readonly allowProvisioning: boolean;
  readonly parameterOverrides?: Readonly<Record<string, string>>;
}

/** What the stack's hook decides by: its config (the archive's HOOK_CONFIG_FILE, or the stack's). */
export interface HookRule {
  /** Serials that may provision; undefined: any. */
  readonly allowedSerials?: readonly string[];
  /** The fleet's thing-name prefix: the template names each thing `<prefix><SerialNumber>`. */
  readonly thingPrefix: string;
  /** Whether a serial whose thing already exists may provision again. */
  readonly allowReprovisioning: boolean;
}

/**
 * Whether the stack needs a pre-provisioning hook: to hold serials to a list, or to refuse a known
 * serial. AWS applies a template to a thing that exists (its OverrideSettings merge into it), so
 * without a hook any claim holder could provision an already-provisioned serial and then connect as
 * that thing with a key of its own.
 */
export function hookRequired(rule: Omit<HookRule, "thingPrefix">): boolean {
  return rule.allowedSerials !== undefined || !rule.allowReprovisioning;
}

/** The request's serial (a string `SerialNumber` parameter), or undefined. */
export function hookSerial(request: unknown): string | undefined {
  const params = isObject(request) && isObject(request.parameters) ? request.parameters : undefined;
  const serial = params?.[SERIAL_PARAMETER];
  return typeof serial === "string" ? serial : undefined;
}

/** The thing a serial provisions into (the template's `Fn::Join ["", [prefix, Ref SerialNumber]]`). */
export function hookThingName(rule: HookRule, serial: string): string {
  return `${rule.thingPrefix}${serial}`;
}

/**
 * The stack's hook: provisioning proceeds only for a serial on the stack's list (when it has one),
 * and, unless the stack allows re-provisioning, only when the serial's thing does not exist yet
 * (`thingExists`: the registry's answer, DescribeThing's in the cloud). Anything that is not a
 * request with a string serial is refused: a hook must fail closed.
 */
export function preProvisioningDecision(
  request: unknown,
  rule: HookRule,
  thingExists: boolean,
): PreProvisioningHookResponse & { readonly reason: string } {
  const serial = hookSerial(request);
  if (serial === undefined) {
    return { allowProvisioning: false, reason: `the request has no ${SERIAL_PARAMETER} parameter` };
  }
  if (rule.allowedSerials !== undefined && !rule.allowedSerials.includes(serial)) {
    return {
      allowProvisioning: false,
      reason: `serial ${JSON.stringify(serial)} is not on the stack's list of allowed serials`,
    };
  }
  if (thingExists && !rule.allowReprovisioning) {
    return {
      allowProvisioning: false,
      reason: `serial ${JSON.stringify(serial)} is already provisioned (thing ${hookThingName(rule, serial)} exists) and the stack does not allow re-provisioning (provisioning.allowReprovisioning); delete the thing to provision it anew`,
    };
  }
  return { allowProvisioning: true, reason: `serial ${JSON.stringify(serial)} is allowed` };
}

/**
 * The file beside the function's code that holds its HookRule (JSON: `allowedSerials` or null,
 * `thingPrefix`, `allowReprovisioning`). Not environment variables: Lambda caps a function's
 * variables at 4 KB, less than a fleet's list of serials.
 */
export const HOOK_CONFIG_FILE = "hook-config.json";

/** The HookRule of a parsed HOOK_CONFIG_FILE, or undefined when it is not one (fail closed). */
export function parseHookRule(v: unknown): HookRule | undefined {
  if (!isObject(v) || typeof v.thingPrefix !== "string") return undefined;
  if (typeof v.allowReprovisioning !== "boolean") return undefined;
  const list = v.allowedSerials;
  if (list !== null && !(Array.isArray(list) && list.every((s) => typeof s === "string"))) {
    return undefined;
  }
  return {
    thingPrefix: v.thingPrefix,
    allowReprovisioning: v.allowReprovisioning,
    ...(list === null ? {} : { allowedSerials: list as string[] }),
  };
}
