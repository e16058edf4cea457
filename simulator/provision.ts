// `npm run simulate -- --provision`: boots each device of a fleet-provisioning stack with the claim
// certificate only, lets it provision itself (device/provisioner.ts), keeps its identity for the
// next run, and counts how many were provisioned, reused, refused or failed, and why.
import * as path from "node:path";
import type { StackConfig } from "../core/stack-config";
import {
  loadIdentity,
  provisionDevice,
  ProvisioningRejected,
  saveIdentity,
  type DeviceIdentityFiles,
} from "../device/provisioner";
import type { MqttProtocol, Output } from "./options";
import type { DeviceCredentials } from "./targets";

/** How many devices provision at once: enough to keep the broker busy, few enough for a laptop. */
export const PROVISIONING_CONCURRENCY = 32;

export interface FleetProvisioningOptions {
  readonly config: StackConfig;
  /** The devices (thing names of the fleet config: the prefix plus the serial). */
  readonly things: readonly string[];
  readonly url: string;
  readonly claim: { readonly cert: string; readonly key: string; readonly ca?: string };
  /** Where identities are kept, per target (the local CA's differ from AWS's). */
  readonly identityDir: string;
  readonly certificateRequest: "csr" | "keys";
  /** The claim connections' MQTT version (simulate's `--protocol`). */
  readonly protocol: MqttProtocol;
  readonly out: Output;
  readonly signal?: AbortSignal;
  readonly concurrency?: number;
  /** Per request. @default 10000 */
  readonly timeoutMs?: number;
}

export interface FleetProvisioningResult {
  /** Credentials of every device that may publish, by thing name, in fleet order. */
  readonly credentials: Map<string, DeviceCredentials>;
  /** Its telemetry topic, from the template's device configuration. */
  readonly topics: Map<string, string>;
  readonly provisioned: number;
  readonly reused: number;
  /** Refused by the API (the hook, the token...): serial and the documented error. */
  readonly refused: ReadonlyArray<{ readonly serial: string; readonly why: string }>;
  /** Could not provision: the connection, a timeout, a local fault. */
  readonly failed: ReadonlyArray<{ readonly serial: string; readonly why: string }>;
  readonly elapsedMs: number;
}

/** The serial of a fleet thing: its name less the group's prefix. */
export function serialOf(config: StackConfig, thing: string): string {
  const prefix = config.provisioning?.thingPrefix ?? "";
  return thing.startsWith(prefix) ? thing.slice(prefix.length) : thing;
}

/** The folder of a target's identities: `<stateDir>/identities/<target>-<stack>`. */
export function identityDirFor(stateDir: string, target: "local" | "aws", stack: string): string {
  return path.join(stateDir, "identities", `${target}-${stack}`);
}

export async function provisionFleet(
  o: FleetProvisioningOptions,
): Promise<FleetProvisioningResult> {
  const started = performance.now();
  const templateName = o.config.provisioning?.templateName ?? "";
  const credentials = new Map<string, DeviceCredentials>();
  const topics = new Map<string, string>();
  const identities = new Map<string, DeviceIdentityFiles>();
  const refused: Array<{ serial: string; why: string }> = [];
  const failed: Array<{ serial: string; why: string }> = [];
  let provisioned = 0;
  let reused = 0;
  const progress = () =>
    o.out.progress(
      `provisioning: ${provisioned + reused + refused.length + failed.length}/${o.things.length} · provisioned ${provisioned} · reused ${reused} · refused ${refused.length} · failed ${failed.length}`,
    );
  const queue = [...o.things];
  const worker = async () => {
    for (let thing = queue.shift(); thing !== undefined; thing = queue.shift()) {
      if (o.signal?.aborted) return;
      const serial = serialOf(o.config, thing);
      const stored = loadIdentity(o.identityDir, serial);
      if (stored !== undefined) {
        identities.set(thing, stored);
        reused++;
        continue;
      }
      try {
        const id = await provisionDevice({
          url: o.url,
          claim: o.claim,
          templateName,
          serial,
          certificateRequest: o.certificateRequest,
          protocol: o.protocol,
          timeoutMs: o.timeoutMs,
        });
        saveIdentity(o.identityDir, serial, id);
        identities.set(thing, id);
        provisioned++;
      } catch (e) {
        const why = e instanceof Error ? e.message : String(e);
        if (e instanceof ProvisioningRejected) refused.push({ serial, why });
        else failed.push({ serial, why });
      }
    }
  };
  const ticker = setInterval(progress, process.stdout.isTTY ? 500 : 5000);
  try {
    await Promise.all(
      Array.from(
        { length: Math.min(o.concurrency ?? PROVISIONING_CONCURRENCY, o.things.length) },
        worker,
      ),
    );
  } finally {
    clearInterval(ticker);
  }
  progress();
  o.out.endProgress?.();
  // Fleet order, so that the publishing phase and its summary read like a pre-registered fleet's.
  for (const thing of o.things) {
    const id = identities.get(thing);
    if (id === undefined) continue;
    credentials.set(id.thingName, {
      cert: id.certificatePem,
      key: id.privateKeyPem,
      ca: o.claim.ca,
    });
    const topic = id.deviceConfiguration.telemetryTopic;
    if (topic !== undefined) topics.set(id.thingName, topic);
  }
  return {
    credentials,
    topics,
    provisioned,
    reused,
    refused,
    failed,
    elapsedMs: performance.now() - started,
  };
}

/** The lines a run prints about provisioning: counts, then each refusal and failure (20 at most). */
export function provisioningLines(r: FleetProvisioningResult): string[] {
  const lines = [
    `provisioning: ${r.provisioned} provisioned, ${r.reused} reused from earlier runs, ${r.refused.length} refused, ${r.failed.length} failed (${(r.elapsedMs / 1000).toFixed(1)} s)`,
  ];
  for (const [what, list] of [
    ["refused", r.refused],
    ["failed", r.failed],
  ] as const) {
    for (const x of list.slice(0, 20)) lines.push(`  serial ${x.serial} ${what}: ${x.why}`);
    if (list.length > 20) lines.push(`  ... and ${list.length - 20} more ${what}`);
  }
  return lines;
}
