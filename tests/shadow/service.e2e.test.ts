// The Device Shadow service in the embedded pipeline over real mutual TLS with mqtt.js: every topic
// of https://docs.aws.amazon.com/iot/latest/developerguide/device-shadow-mqtt.html answered as the
// page says, the flows of device-shadow-data-flow.html, the reserved topics' "Subscribe" only rule
// (reserved-topics.html), and the shadow still there after a restart.
import * as assert from "node:assert/strict";
import type { MqttClient } from "mqtt";
import { loadStackConfig, type StackConfig } from "../../core/stack-config";
import { startLocalPipeline, type LocalPipeline } from "../../local/pipeline/pipeline";
import { testClient } from "../helpers/broker";
import { tempDir } from "../helpers/temp";
import { until } from "../helpers/wait";

interface Received {
  topic: string;
  body: Record<string, unknown>;
}

/** An mqtt.js client that records what it receives. */
async function client(
  p: LocalPipeline,
  creds: { cert: string; key: string; ca: string },
  clientId: string,
  filters: string[],
): Promise<MqttClient & { got: Received[] }> {
  const c = Object.assign(testClient(p.url, creds, clientId), { got: [] as Received[] });
  c.on("message", (topic, payload) => {
    c.got.push({ topic, body: JSON.parse(payload.toString()) as Record<string, unknown> });
  });
  await new Promise((r) => c.once("connect", r));
  if (filters.length > 0) await c.subscribeAsync(filters, { qos: 1 });
  return c;
}

function take(c: { got: Received[] }, topic: string): Record<string, unknown>[] {
  return c.got.filter((m) => m.topic === topic).map((m) => m.body);
}

describe("Device Shadow service over MQTT (embedded pipeline, dev stack)", function () {
  this.timeout(30_000);
  let config: StackConfig;
  let p: LocalPipeline;
  let thing: string;
  let stateDir: string;
  const open: MqttClient[] = [];

  before(async () => {
    config = loadStackConfig("dev");
    thing = config.things[0].name;
    stateDir = tempDir("shadow-e2e");
    p = await startLocalPipeline(config, { stateDir });
  });
  after(async () => {
    for (const c of open.splice(0)) c.end(true);
    await p?.stop();
  });

  const prefix = () => `$aws/things/${thing}/shadow`;

  it("the page's flow: an app sets desired, the device gets /update/delta, reports, and /get returns the whole document", async () => {
    const pre = prefix();
    const device = await client(p, p.credentialsFor(thing), thing, [
      `${pre}/update/accepted`,
      `${pre}/update/rejected`,
      `${pre}/update/delta`,
      `${pre}/update/documents`,
      `${pre}/get/accepted`,
      `${pre}/get/rejected`,
    ]);
    open.push(device);
    const app = await client(p, p.consoleCredentials(), "console-app", []);
    open.push(app);

    // /get of a shadow that does not exist: 404 "No shadow exists with name" (error messages page).
    await device.publishAsync(`${pre}/get`, "", { qos: 1 });
    await until(() => take(device, `${pre}/get/rejected`).length === 1, "get/rejected");
    const notFound = take(device, `${pre}/get/rejected`)[0];
    assert.equal(notFound.code, 404);
    assert.equal(notFound.message, `No shadow exists with name: ${thing}`);

    await app.publishAsync(
      `${pre}/update`,
      JSON.stringify({ state: { desired: { interval: 5, color: "red" } }, clientToken: "app-1" }),
      { qos: 1 },
    );
    await until(() => take(device, `${pre}/update/delta`).length === 1, "update/delta");
    const delta = take(device, `${pre}/update/delta`)[0];
    assert.deepEqual(delta.state, { interval: 5, color: "red" });
    assert.equal(delta.version, 1);
    assert.equal(delta.clientToken, "app-1");
    assert.equal(take(device, `${pre}/update/accepted`)[0].version, 1);
    await until(() => take(device, `${pre}/update/documents`).length === 1, "update/documents");

    // The device reports part of it: the delta then holds only what still differs.
    await device.publishAsync(
      `${pre}/update`,
      JSON.stringify({ state: { reported: { interval: 5 } }, clientToken: "dev-1" }),
      { qos: 1 },
    );
    await until(() => take(device, `${pre}/update/accepted`).length === 2, "second accepted");
    const accepted = take(device, `${pre}/update/accepted`)[1];
    assert.deepEqual(accepted.state, { reported: { interval: 5 } });
    assert.equal(accepted.clientToken, "dev-1");
    assert.equal(accepted.version, 2);
    await until(() => take(device, `${pre}/update/delta`).length === 2, "second delta");
    assert.deepEqual(take(device, `${pre}/update/delta`)[1].state, { color: "red" });

    await device.publishAsync(`${pre}/get`, JSON.stringify({ clientToken: "g" }), { qos: 1 });
    await until(() => take(device, `${pre}/get/accepted`).length === 1, "get/accepted");
    const doc = take(device, `${pre}/get/accepted`)[0];
    assert.deepEqual(doc.state, {
      desired: { interval: 5, color: "red" },
      reported: { interval: 5 },
      delta: { color: "red" },
    });
    assert.equal(doc.version, 2);
    assert.equal(doc.clientToken, "g");

    // Optimistic locking: a stale version is refused with 409 "Version conflict".
    await device.publishAsync(
      `${pre}/update`,
      JSON.stringify({ state: { reported: { color: "red" } }, version: 1, clientToken: "old" }),
      { qos: 1 },
    );
    await until(() => take(device, `${pre}/update/rejected`).length === 1, "update/rejected");
    assert.deepEqual(
      { ...take(device, `${pre}/update/rejected`)[0], timestamp: 0 },
      { code: 409, message: "Version conflict", clientToken: "old", timestamp: 0 },
    );
  });

  it("named shadows: their own topics and documents, and /delete keeps the version", async () => {
    const pre = `${prefix()}/name/config`;
    const device = await client(p, p.credentialsFor(thing), `${thing}`, [
      `${pre}/update/accepted`,
      `${pre}/delete/accepted`,
      `${pre}/delete/rejected`,
    ]);
    open.push(device);
    await device.publishAsync(`${pre}/update`, JSON.stringify({ state: { reported: { a: 1 } } }), {
      qos: 1,
    });
    await until(() => take(device, `${pre}/update/accepted`).length === 1, "named accepted");
    await device.publishAsync(`${pre}/delete`, "", { qos: 1 });
    await until(() => take(device, `${pre}/delete/accepted`).length === 1, "delete/accepted");
    assert.equal(take(device, `${pre}/delete/accepted`)[0].version, 1);
    await device.publishAsync(`${pre}/delete`, "", { qos: 1 });
    await until(() => take(device, `${pre}/delete/rejected`).length === 1, "delete/rejected");
    assert.equal(take(device, `${pre}/delete/rejected`)[0].code, 404);
    await device.publishAsync(`${pre}/update`, JSON.stringify({ state: { reported: { a: 2 } } }), {
      qos: 1,
    });
    await until(() => take(device, `${pre}/update/accepted`).length === 2, "after delete");
    assert.equal(take(device, `${pre}/update/accepted`)[1].version, 2);
  });

  it("a device cannot publish on a response topic: they are 'Subscribe' only (reserved-topics.html)", async () => {
    const c = testClient(p.url, p.credentialsFor(thing), thing);
    open.push(c);
    await new Promise((r) => c.once("connect", r));
    const closed = new Promise<void>((r) => c.once("close", () => r()));
    c.publish(`${prefix()}/update/accepted`, JSON.stringify({ state: {} }), { qos: 1 });
    await closed; // MQTT 3.1.1: a refused publish closes the connection
    assert.ok(p.broker.stats.publishDenials >= 1);
  });

  it("the shadow is still there after the pipeline restarts (state folder)", async () => {
    for (const c of open.splice(0)) c.end(true);
    await p.stop();
    p = await startLocalPipeline(config, { stateDir });
    const doc = p.shadows.read(thing);
    assert.deepEqual((doc?.state as Record<string, unknown>).reported, { interval: 5 });
    assert.equal(doc?.version, 2);
    assert.equal(p.shadows.read(thing, "config")?.version, 2);
  });
});

describe("Device Shadow topics under prod's least-privilege policy (mqtt.js over mutual TLS)", function () {
  this.timeout(30_000);
  const open: MqttClient[] = [];
  let p: LocalPipeline | undefined;
  afterEach(async () => {
    for (const c of open.splice(0)) c.end(true);
    await p?.stop();
    p = undefined;
  });

  async function start(deviceShadows: boolean): Promise<[LocalPipeline, string, string]> {
    const loaded = loadStackConfig("prod");
    const config = { ...loaded, policy: { ...loaded.policy, deviceShadows } };
    p = await startLocalPipeline(config, { stateDir: tempDir("shadow-prod") });
    return [p, config.things[0].name, config.things[1].name];
  }

  it("without deviceShadows the device may not use its shadow: SUBACK 0x80, and its publish is refused", async () => {
    const [pipeline, thing] = await start(false);
    const c = testClient(pipeline.url, pipeline.credentialsFor(thing), thing);
    open.push(c);
    await new Promise((r) => c.once("connect", r));
    // SUBACK 0x80: mqtt.js rejects the subscription.
    await assert.rejects(
      c.subscribeAsync(`$aws/things/${thing}/shadow/update/accepted`, { qos: 1 }),
      /Subscribe error/,
    );
    const closed = new Promise<void>((r) => c.once("close", () => r()));
    c.publish(`$aws/things/${thing}/shadow/update`, '{"state":{"reported":{"a":1}}}', { qos: 1 });
    await closed;
    assert.equal(pipeline.shadows.read(thing), undefined);
  });

  it("with deviceShadows the device updates its own shadow and may not touch another thing's", async () => {
    const [pipeline, thing, other] = await start(true);
    const c = await client(pipeline, pipeline.credentialsFor(thing), thing, [
      `$aws/things/${thing}/shadow/update/accepted`,
    ]);
    open.push(c);
    await c.publishAsync(`$aws/things/${thing}/shadow/update`, '{"state":{"reported":{"a":1}}}', {
      qos: 1,
    });
    await until(
      () => take(c, `$aws/things/${thing}/shadow/update/accepted`).length === 1,
      "accepted",
    );
    await assert.rejects(
      c.subscribeAsync(`$aws/things/${other}/shadow/update/accepted`, { qos: 1 }),
      /Subscribe error/,
    );
    const closed = new Promise<void>((r) => c.once("close", () => r()));
    c.publish(`$aws/things/${other}/shadow/update`, '{"state":{"desired":{"a":2}}}', { qos: 1 });
    await closed;
    assert.equal(pipeline.shadows.read(other), undefined);
  });
});
