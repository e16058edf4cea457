// Test fixtures shared by the broker and device tests: a throw-away PKI and broker, and waiting
// helpers that resolve on events rather than on time.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { ensurePki, type Pki } from "../../local/ca";
import { LocalBroker, type BrokerHooks } from "../../local/broker";

export const THINGS = ["sensor-a", "sensor-b", "sensor-c"];

const made: string[] = [];
process.once("exit", () => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

/** A fresh temporary folder, removed when the test process exits. */
export function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `iot-${prefix}-`));
  made.push(d);
  return d;
}

/** A PKI for THINGS plus console, in a fresh temporary folder. */
export async function testPki(): Promise<Pki> {
  return ensurePki(path.join(tempDir("pki"), "pki"), [...THINGS, "console"]);
}

export async function startBroker(pki: Pki, hooks?: BrokerHooks, port = 0): Promise<LocalBroker> {
  return LocalBroker.start({
    ca: pki.caPem,
    key: pki.server.key,
    cert: pki.server.cert,
    port,
    hooks,
  });
}

/** Connects with mqtt.js as `identity` (client id defaults to the same name), no reconnects. */
export function connectAs(
  broker: LocalBroker,
  pki: Pki,
  identity: string,
  clientId: string = identity,
): MqttClient {
  const c = pki.credentialsFor(identity);
  const client = mqtt.connect(broker.url, {
    ...c,
    clientId,
    rejectUnauthorized: true,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  client.on("error", () => undefined); // the tests look at the outcome, not the noise
  return client;
}

/** Resolves "connect" or the error/close that came first. */
export function connectOutcome(client: MqttClient): Promise<"connect" | Error | "close"> {
  return new Promise((resolve) => {
    client.once("connect", () => resolve("connect"));
    client.once("error", (e) => resolve(e));
    client.once("close", () => resolve("close"));
  });
}

export async function subscribed(client: MqttClient, filter: string, qos: 0 | 1 = 1) {
  if (!client.connected) await new Promise((r) => client.once("connect", r));
  return client.subscribeAsync(filter, { qos });
}

/** Polls a condition on the event loop (no wall-clock assertion); fails after `limitMs`. */
export async function until(cond: () => boolean, what: string, limitMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A valid telemetry message from `thing`, numbered by `seq` in its timestamp. */
export function reading(thing: string, seq: number, temperature = 20) {
  return {
    thing,
    timestamp: 1_700_000_000_000 + seq,
    temperature,
    max_temperature: Math.max(temperature, 25),
    min_temperature: Math.min(temperature, 10),
  };
}
