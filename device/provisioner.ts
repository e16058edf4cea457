// A device provisioning itself by claim: connects with the claim certificate, asks AWS IoT's
// device provisioning MQTT API for a certificate (from a CSR it makes, so its key never leaves it,
// or CreateKeysAndCertificate on request), registers through the template with its serial, and
// keeps what it got (certificate and key, 0600) so a later boot reuses it.
import "reflect-metadata";
import { webcrypto, X509Certificate, createPrivateKey } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as x509 from "@peculiar/x509";
import mqtt, { type ErrorWithSubackPacket, type MqttClient } from "mqtt";
import { CLAIM_CLIENT_PREFIX } from "../core/provisioning/claim-policy";
import { SERIAL_PARAMETER } from "../core/provisioning/template";
import {
  requestTopic,
  type ProvisioningApi,
  type ProvisioningErrorPayload,
} from "../core/provisioning/topics";
import { writeFileAtomic } from "../core/atomic-write";
import { PROVISIONING_SERIAL } from "../core/provisioning/config";
import { withTimeout } from "../core/timeout";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** What a provisioned device keeps. */
export interface DeviceIdentityFiles {
  readonly thingName: string;
  readonly certificateId: string;
  readonly certificatePem: string;
  readonly privateKeyPem: string;
  /** The template's DeviceConfiguration (the telemetry topic, here). */
  readonly deviceConfiguration: Readonly<Record<string, string>>;
}

export interface ProvisionOptions {
  /** `mqtts://host:port` */
  readonly url: string;
  /** The claim certificate and key every device ships with; `ca` undefined: Node's trust store. */
  readonly claim: { readonly cert: string; readonly key: string; readonly ca?: string };
  readonly templateName: string;
  readonly serial: string;
  /** CreateCertificateFromCsr (default: the key never leaves the device) or CreateKeysAndCertificate. */
  readonly certificateRequest?: "csr" | "keys";
  /** Per call (connect, each request). @default 10000 */
  readonly timeoutMs?: number;
  /**
   * The MQTT version of the claim connection: 5 (MQTT 5, as AWS's current Device SDK samples
   * connect; AWS IoT's provisioning MQTT API answers both) or 4 (MQTT 3.1.1). @default 5
   */
  readonly protocol?: 4 | 5;
  /** Called on the claim connection's CONNACK (the benchmark's clock starts here). */
  readonly onConnected?: () => void;
}

/** The API refused: the documented error payload, and which call. */
export class ProvisioningRejected extends Error {
  constructor(
    readonly api: ProvisioningApi,
    readonly error: ProvisioningErrorPayload,
  ) {
    super(`${api} rejected: ${error.statusCode} ${error.errorCode}: ${error.errorMessage}`);
    this.name = "ProvisioningRejected";
  }
}

/** The claim connection's client id for a serial (the claim policy allows only this namespace). */
export function claimClientId(serial: string): string {
  return `${CLAIM_CLIENT_PREFIX}${serial}`;
}

/** A new P-256 key pair and a CSR for it (PEM). */
export async function makeCsr(commonName: string): Promise<{ csrPem: string; keyPem: string }> {
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = (await webcrypto.subtle.generateKey(alg, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${commonName}`,
    keys,
    signingAlgorithm: alg,
  });
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey);
  return {
    csrPem: csr.toString("pem"),
    keyPem: x509.PemConverter.encode(pkcs8, "PRIVATE KEY"),
  };
}

/** One request of the API on an open connection: subscribe, publish, wait for either answer. */
async function call(
  client: MqttClient,
  api: ProvisioningApi,
  templateName: string,
  body: unknown,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  const topic = requestTopic(api, "json", templateName);
  const accepted = `${topic}/accepted`;
  const rejected = `${topic}/rejected`;
  // "Before publishing a request message topic, subscribe to the response topics."
  const granted = await withTimeout(
    client.subscribeAsync([accepted, rejected], { qos: 1 }).catch((e: ErrorWithSubackPacket) => {
      // mqtt.js rejects on a SUBACK failure code: the policy does not allow the filter (0x80 in
      // MQTT 3.1.1, 0x87 Not authorized in MQTT 5).
      const code = e.packet?.granted?.find((g) => typeof g === "number" && g >= 0x80) ?? 0x80;
      throw new Error(
        `the broker refused the subscription to ${topic}/+ (SUBACK 0x${code.toString(16)}): ${e.message}`,
      );
    }),
    timeoutMs,
    `timed out after ${timeoutMs} ms subscribing to ${topic}/+`,
  );
  const refused = granted.filter((g) => g.qos >= 0x80);
  if (refused.length > 0) {
    throw new Error(
      `the broker refused the subscription to ${refused.map((g) => g.topic).join(", ")} (SUBACK 0x${refused[0].qos.toString(16)})`,
    );
  }
  const answer = new Promise<Record<string, unknown>>((resolve, reject) => {
    const onMessage = (t: string, payload: Buffer) => {
      if (t !== accepted && t !== rejected) return;
      client.off("message", onMessage);
      let parsed: unknown;
      try {
        parsed = JSON.parse(payload.toString("utf8"));
      } catch {
        reject(new Error(`${api}: the response on ${t} is not JSON`));
        return;
      }
      const obj = (typeof parsed === "object" && parsed !== null ? parsed : {}) as Record<
        string,
        unknown
      >;
      if (t === rejected) {
        reject(
          new ProvisioningRejected(api, {
            statusCode: Number(obj.statusCode),
            errorCode: String(obj.errorCode),
            errorMessage: String(obj.errorMessage),
          }),
        );
      } else {
        resolve(obj);
      }
    };
    client.on("message", onMessage);
  });
  await withTimeout(
    client.publishAsync(topic, body === undefined ? "" : JSON.stringify(body), { qos: 1 }),
    timeoutMs,
    `timed out after ${timeoutMs} ms publishing ${api}`,
  );
  return withTimeout(
    answer,
    timeoutMs,
    `timed out after ${timeoutMs} ms waiting for ${api}'s answer`,
  );
}

function str(obj: Record<string, unknown>, key: string, api: string): string {
  const v = obj[key];
  if (typeof v !== "string" || v === "") throw new Error(`${api}'s answer has no ${key}`);
  return v;
}

/**
 * Provisions one device: claim connection, certificate, RegisterThing with its serial, then the
 * claim connection closes ("the device must disconnect from the session that it initiated with the
 * provisioning claim certificate and reconnect using the permanent certificate").
 */
export async function provisionDevice(opts: ProvisionOptions): Promise<DeviceIdentityFiles> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const client = mqtt.connect(opts.url, {
    clientId: claimClientId(opts.serial),
    key: opts.claim.key,
    cert: opts.claim.cert,
    ca: opts.claim.ca,
    rejectUnauthorized: true,
    protocolVersion: opts.protocol ?? 5,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: timeoutMs,
  });
  let lastError: Error | undefined;
  client.on("error", (e) => (lastError = e));
  try {
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        client.once("connect", () => resolve());
        client.once("close", () =>
          reject(lastError ?? new Error("the broker closed the claim connection")),
        );
      }),
      timeoutMs,
      `timed out after ${timeoutMs} ms connecting with the claim certificate`,
    );
    opts.onConnected?.();
    let certificatePem: string;
    let privateKeyPem: string;
    let token: string;
    let certificateId: string;
    if ((opts.certificateRequest ?? "csr") === "csr") {
      const { csrPem, keyPem } = await makeCsr(opts.serial);
      const r = await call(
        client,
        "CreateCertificateFromCsr",
        "",
        { certificateSigningRequest: csrPem },
        timeoutMs,
      );
      certificatePem = str(r, "certificatePem", "CreateCertificateFromCsr");
      token = str(r, "certificateOwnershipToken", "CreateCertificateFromCsr");
      certificateId = str(r, "certificateId", "CreateCertificateFromCsr");
      privateKeyPem = keyPem;
    } else {
      const r = await call(client, "CreateKeysAndCertificate", "", undefined, timeoutMs);
      certificatePem = str(r, "certificatePem", "CreateKeysAndCertificate");
      privateKeyPem = str(r, "privateKey", "CreateKeysAndCertificate");
      token = str(r, "certificateOwnershipToken", "CreateKeysAndCertificate");
      certificateId = str(r, "certificateId", "CreateKeysAndCertificate");
    }
    const reg = await call(
      client,
      "RegisterThing",
      opts.templateName,
      { certificateOwnershipToken: token, parameters: { [SERIAL_PARAMETER]: opts.serial } },
      timeoutMs,
    );
    const config = reg.deviceConfiguration;
    const deviceConfiguration: Record<string, string> = {};
    if (typeof config === "object" && config !== null) {
      for (const [k, v] of Object.entries(config)) deviceConfiguration[k] = String(v);
    }
    return {
      thingName: str(reg, "thingName", "RegisterThing"),
      certificateId,
      certificatePem,
      privateKeyPem,
      deviceConfiguration,
    };
  } finally {
    await client.endAsync(true).catch(() => undefined);
  }
}

// ---- Keeping identities ---------------------------------------------------------------------

function identityDir(dir: string, serial: string): string {
  if (!PROVISIONING_SERIAL.test(serial))
    throw new Error(`serial ${JSON.stringify(serial)} is not 1-64 of [A-Za-z0-9_-]`);
  return path.join(dir, serial);
}

/** Stores an identity under `<dir>/<serial>/`: the key mode 0600, the folder 0700. */
export function saveIdentity(dir: string, serial: string, id: DeviceIdentityFiles): void {
  const d = identityDir(dir, serial);
  fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  fs.chmodSync(d, 0o700);
  writeFileAtomic(path.join(d, "device.key"), id.privateKeyPem, 0o600);
  writeFileAtomic(path.join(d, "device.crt"), id.certificatePem, 0o644);
  // Written last: an identity is there only when all three files are.
  writeFileAtomic(
    path.join(d, "identity.json"),
    JSON.stringify(
      {
        thingName: id.thingName,
        certificateId: id.certificateId,
        deviceConfiguration: id.deviceConfiguration,
      },
      null,
      2,
    ) + "\n",
    0o644,
  );
}

/**
 * The identity a device stored on an earlier boot, or undefined when there is none or it is not
 * usable (unreadable, key and certificate not a pair, expired): the device provisions again.
 */
export function loadIdentity(
  dir: string,
  serial: string,
  now: Date = new Date(),
): DeviceIdentityFiles | undefined {
  const d = identityDir(dir, serial);
  try {
    const meta = JSON.parse(fs.readFileSync(path.join(d, "identity.json"), "utf8")) as Record<
      string,
      unknown
    >;
    const certificatePem = fs.readFileSync(path.join(d, "device.crt"), "utf8");
    const privateKeyPem = fs.readFileSync(path.join(d, "device.key"), "utf8");
    const cert = new X509Certificate(certificatePem);
    if (!cert.checkPrivateKey(createPrivateKey(privateKeyPem))) return undefined;
    if (new Date(cert.validTo).getTime() <= now.getTime()) return undefined;
    if (typeof meta.thingName !== "string" || typeof meta.certificateId !== "string")
      return undefined;
    return {
      thingName: meta.thingName,
      certificateId: meta.certificateId,
      certificatePem,
      privateKeyPem,
      deviceConfiguration: (meta.deviceConfiguration ?? {}) as Record<string, string>,
    };
  } catch {
    return undefined;
  }
}
