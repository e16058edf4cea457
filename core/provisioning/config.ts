// The `provisioning` stack config key (certificateMode fleet-provisioning), validated into one
// typed reading for the program, the local broker and the simulator (core/stack-config.ts calls it).
import { invalidConfig as fail } from "../errors";
import { IOT_POLICY_NAME, IOT_THING_NAME } from "../iot-limits";
import { CLAIM_CLIENT_PREFIX } from "./claim-policy";
import { isTemplateName } from "./topics";

/** Fleet provisioning by claim (certificateMode fleet-provisioning); see core/provisioning/. */
export interface ProvisioningConfig {
  /** The provisioning template's name. */
  readonly templateName: string;
  /** The claim certificate's IoT policy. */
  readonly claimPolicyName: string;
  /** The one fleet group devices are provisioned into, and its thing-name prefix. */
  readonly group: string;
  readonly thingPrefix: string;
  /** Whether claims may also call CreateKeysAndCertificate (AWS then sends the private key). */
  readonly createKeys: boolean;
  /** The pre-provisioning hook's list of serials; undefined: any serial. */
  readonly allowedSerials?: readonly string[];
  /**
   * Whether a serial whose thing already exists may provision again (and so get a certificate of
   * its own for that thing). Off by default: the hook refuses it (docs/provisioning.md).
   */
  readonly allowReprovisioning: boolean;
}

/**
 * A serial a device passes to RegisterThing; the thing name is the group's prefix plus it. The
 * device keeps its identity in a folder named by it, so the same rule keeps that name a plain one.
 */
export const PROVISIONING_SERIAL = /^[a-zA-Z0-9_-]{1,64}$/;

/**
 * Validates the `provisioning` value against the fleet (one `{thingPrefix, count}` group), or
 * throws a ConfigError naming the first bad key.
 */
export function parseProvisioningConfig(
  v: unknown,
  fleet: ReadonlyArray<{ readonly group: string; readonly thingPrefix?: string }>,
): ProvisioningConfig {
  const shape =
    "must be {templateName, claimPolicyName, createKeys, allowedSerials, allowReprovisioning} (allowedSerials: a list of serials for the pre-provisioning hook, or null for any serial)";
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail("provisioning", v, shape);
  const p = v as Record<string, unknown>;
  if (fleet.length !== 1 || fleet[0].thingPrefix === undefined) {
    fail(
      "fleet",
      fleet.map((g) => g.group),
      "certificateMode fleet-provisioning provisions into one group: declare exactly one fleet group with thingPrefix and count (the devices' thing names are the prefix plus their serial)",
    );
  }
  const group = fleet[0].group;
  const thingPrefix = fleet[0].thingPrefix as string;
  if (thingPrefix.startsWith(CLAIM_CLIENT_PREFIX)) {
    fail(
      "fleet[0].thingPrefix",
      thingPrefix,
      `must not start with ${CLAIM_CLIENT_PREFIX}, the client ids of claim connections`,
    );
  }
  const templateName = p.templateName;
  if (typeof templateName !== "string" || !isTemplateName(templateName)) {
    fail(
      "provisioning.templateName",
      templateName,
      "use 1-36 letters, digits, '_' or '-' (AWS IoT provisioning template names)",
    );
  }
  const claimPolicyName = p.claimPolicyName;
  if (typeof claimPolicyName !== "string" || !IOT_POLICY_NAME.test(claimPolicyName)) {
    fail(
      "provisioning.claimPolicyName",
      claimPolicyName,
      "use 1-128 letters, digits or + = , . @ _ - (IoT policy names)",
    );
  }
  const createKeys = p.createKeys ?? false;
  if (typeof createKeys !== "boolean") {
    fail("provisioning.createKeys", createKeys, "must be true or false");
  }
  const allowReprovisioning = p.allowReprovisioning ?? false;
  if (typeof allowReprovisioning !== "boolean") {
    fail(
      "provisioning.allowReprovisioning",
      allowReprovisioning,
      "must be true (a serial whose thing exists may provision again, with a certificate of its own) or false (the pre-provisioning hook refuses it)",
    );
  }
  let allowedSerials: string[] | undefined;
  if (p.allowedSerials !== undefined && p.allowedSerials !== null) {
    if (
      !Array.isArray(p.allowedSerials) ||
      p.allowedSerials.length === 0 ||
      p.allowedSerials.length > 10000
    ) {
      fail(
        "provisioning.allowedSerials",
        p.allowedSerials,
        "must be a list of 1-10000 serials, or null for any serial",
      );
    }
    allowedSerials = p.allowedSerials.map((s: unknown, i: number) => {
      const text = typeof s === "number" ? String(s) : s;
      if (
        typeof text !== "string" ||
        !PROVISIONING_SERIAL.test(text) ||
        !IOT_THING_NAME.test(`${thingPrefix}${text}`)
      ) {
        fail(
          `provisioning.allowedSerials[${i}]`,
          s,
          "serials are 1-64 letters, digits, '_' or '-', and the prefix plus the serial must be a thing name",
        );
      }
      return text;
    });
  }
  return {
    templateName,
    claimPolicyName,
    group,
    thingPrefix,
    createKeys,
    allowedSerials,
    allowReprovisioning,
  };
}
