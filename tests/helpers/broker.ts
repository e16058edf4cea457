// A throw-away PKI and local broker, and mqtt.js clients of it that resolve on events rather than
// on time: for the broker's own tests and every suite that needs a device to talk to it.
import "reflect-metadata"; // @peculiar/x509 needs it before it loads
import { webcrypto } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as x509 from "@peculiar/x509";
import mqtt, { type MqttClient } from "mqtt";
import { ensurePki, issueCertificate, type Pki } from "../../local/identity/ca";
import { LocalBroker, type BrokerHooks, type BrokerOptions } from "../../local/broker/broker";
import { tempDir } from "./temp";

const THINGS = ["sensor-a", "sensor-b", "sensor-c"];

/** A PKI for THINGS plus console, in a fresh temporary folder. */
export async function testPki(): Promise<Pki> {
  return ensurePki(path.join(tempDir("pki"), "pki"), [...THINGS, "console"]);
}

export async function startBroker(
  pki: Pki,
  hooks?: BrokerHooks,
  port = 0,
  options: Partial<BrokerOptions> = {},
): Promise<LocalBroker> {
  return LocalBroker.start({
    ca: pki.caPem,
    key: pki.server.key,
    cert: pki.server.cert,
    port,
    hooks,
    ...options,
  });
}

/**
 * An mqtt.js client of `url` over mutual TLS with these credentials: MQTT 3.1.1, the server's
 * certificate verified, no reconnects, errors left to the test's outcome.
 */
export function testClient(
  url: string,
  creds: { readonly cert: string; readonly key: string; readonly ca: string },
  clientId: string,
): MqttClient {
  const client = mqtt.connect(url, {
    cert: creds.cert,
    key: creds.key,
    ca: creds.ca,
    clientId,
    rejectUnauthorized: true,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  client.on("error", () => undefined); // the tests look at the outcome, not the noise
  return client;
}

/** Connects with mqtt.js as `identity` (client id defaults to the same name), no reconnects. */
export function connectAs(
  broker: LocalBroker,
  pki: Pki,
  identity: string,
  clientId: string = identity,
): MqttClient {
  return testClient(broker.url, pki.credentialsFor(identity), clientId);
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

/** A certificate for sensor-a from the broker's own CA that expired yesterday. */
export async function expiredLeaf(pki: Pki): Promise<{ key: string; cert: string }> {
  const caKey = await webcrypto.subtle.importKey(
    "pkcs8",
    Buffer.from(
      fs.readFileSync(path.join(pki.dir, "ca.key"), "utf8").replace(/-----[A-Z ]+-----|\s/g, ""),
      "base64",
    ),
    { name: "ECDSA", namedCurve: "P-256" },
    false,
    ["sign"],
  );
  const ca = {
    cert: new x509.X509Certificate(pki.caPem),
    key: caKey,
    certPem: pki.caPem,
    keyPem: "",
  };
  return issueCertificate(ca, "sensor-a", {
    notBefore: new Date(Date.now() - 3 * 86_400_000),
    notAfter: new Date(Date.now() - 86_400_000),
  });
}
