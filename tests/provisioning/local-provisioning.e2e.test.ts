// Fleet provisioning by claim against the embedded pipeline of the fleet stack, over real mutual
// TLS: a device provisions itself and publishes under its new identity and the least-privilege
// policy; the hook's refusal, the claim policy, the ownership token and the registry's durability
// each as AWS's pages describe them (docs/provisioning.md cites each).
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import type { MqttClient } from "mqtt";
import { loadStackConfig, type StackConfig } from "../../core/stack-config";
import { requestTopic } from "../../core/provisioning/topics";
import {
  claimClientId,
  loadIdentity,
  makeCsr,
  provisionDevice,
  ProvisioningRejected,
  saveIdentity,
} from "../../device/provisioner";
import { startLocalPipeline, type LocalPipeline } from "../../local/pipeline/pipeline";
import { connectOutcome, testClient } from "../helpers/broker";
import { tempDir } from "../helpers/temp";
import { until } from "../helpers/wait";

const TEMPLATE = "sensor-fleet";

function reading(thing: string) {
  return {
    thing,
    timestamp: Date.now(),
    temperature: 20,
    max_temperature: 21,
    min_temperature: 19,
  };
}

async function connectWith(
  p: LocalPipeline,
  creds: { cert: string; key: string },
  clientId: string,
): Promise<MqttClient> {
  return testClient(p.url, { ...creds, ca: p.ca }, clientId);
}

/** Publishes one reading at QoS 1: "acked", or "closed" when the broker disconnects instead. */
async function publishOnce(client: MqttClient, topic: string, body: unknown) {
  return new Promise<"acked" | "closed">((resolve) => {
    client.once("close", () => resolve("closed"));
    client.publish(topic, JSON.stringify(body), { qos: 1 }, (err) =>
      resolve(err ? "closed" : "acked"),
    );
  });
}

describe("fleet provisioning by claim, at the embedded broker (real TLS)", function () {
  this.timeout(60_000);
  let config: StackConfig;
  let stateDir: string;
  let p: LocalPipeline;

  before(async () => {
    config = loadStackConfig("fleet");
    stateDir = tempDir("provisioning-e2e");
    p = await startLocalPipeline(config, { stateDir });
  });
  after(async () => {
    await p?.stop();
  });

  const claim = () => ({ ...p.claimCredentials(), ca: p.ca });

  it("provisions a device from its CSR, then it publishes under its own identity", async () => {
    const id = await provisionDevice({
      url: p.url,
      claim: claim(),
      templateName: TEMPLATE,
      serial: "1",
    });
    assert.equal(id.thingName, "store-sensor-seattle1");
    assert.equal(id.deviceConfiguration.telemetryTopic, "SeattleStoreTemp/store-sensor-seattle1");
    assert.match(id.certificateId, /^[0-9a-f]{64}$/);
    // The registry gained the thing with the template's type, group and attributes.
    const thing = p.provisioning?.registry.thing("store-sensor-seattle1");
    assert.deepEqual(thing, {
      name: "store-sensor-seattle1",
      typeName: "sensor",
      groups: ["Seattle"],
      attributes: { city: "Seattle", serialNumber: "1" },
    });
    const device = await connectWith(
      p,
      { cert: id.certificatePem, key: id.privateKeyPem },
      id.thingName,
    );
    assert.equal(await connectOutcome(device), "connect");
    assert.equal(
      await publishOnce(device, id.deviceConfiguration.telemetryTopic, reading(id.thingName)),
      "acked",
    );
    // The least-privilege policy still holds: another thing's topic disconnects it.
    assert.equal(
      await publishOnce(device, "SeattleStoreTemp/store-sensor-seattle2", reading(id.thingName)),
      "closed",
    );
    device.end(true);
  });

  it("CreateKeysAndCertificate is denied by the claim policy unless the stack allows it", async () => {
    await assert.rejects(
      provisionDevice({
        url: p.url,
        claim: claim(),
        templateName: TEMPLATE,
        serial: "2",
        certificateRequest: "keys",
        timeoutMs: 3000,
        protocol: 4,
      }),
      /the broker refused the subscription to \$aws\/certificates\/create\/json\/\+ \(SUBACK 0x80\)/,
    );
  });

  it("refuses a serial the hook does not list with 403 ACCESS_DENIED, and its certificate cannot connect", async () => {
    const client = await connectWith(p, claim(), claimClientId("5"));
    assert.equal(await connectOutcome(client), "connect");
    const answers: Record<string, Record<string, unknown>> = {};
    client.on(
      "message",
      (t, m) => (answers[t] = JSON.parse(m.toString()) as Record<string, unknown>),
    );
    const csrTopic = requestTopic("CreateCertificateFromCsr", "json");
    const regTopic = requestTopic("RegisterThing", "json", TEMPLATE);
    await client.subscribeAsync(
      [`${csrTopic}/accepted`, `${regTopic}/accepted`, `${regTopic}/rejected`],
      { qos: 1 },
    );
    const { csrPem, keyPem } = await makeCsr("5");
    await client.publishAsync(csrTopic, JSON.stringify({ certificateSigningRequest: csrPem }), {
      qos: 1,
    });
    await until(() => answers[`${csrTopic}/accepted`] !== undefined, "the CSR's certificate");
    const cert = answers[`${csrTopic}/accepted`];
    assert.deepEqual(Object.keys(cert).sort(), [
      "certificateId",
      "certificateOwnershipToken",
      "certificatePem",
    ]);
    await client.publishAsync(
      regTopic,
      JSON.stringify({
        certificateOwnershipToken: cert.certificateOwnershipToken,
        parameters: { SerialNumber: "5" },
      }),
      { qos: 1 },
    );
    await until(() => answers[`${regTopic}/rejected`] !== undefined, "RegisterThing's rejection");
    const rejection = answers[`${regTopic}/rejected`];
    assert.deepEqual(Object.keys(rejection).sort(), ["errorCode", "errorMessage", "statusCode"]);
    assert.equal(rejection.statusCode, 403);
    assert.equal(rejection.errorCode, "ACCESS_DENIED");
    assert.equal(answers[`${regTopic}/accepted`], undefined);
    assert.equal(p.provisioning?.registry.thing("store-sensor-seattle5"), undefined);
    client.end(true);
    // The certificate stays PENDING_ACTIVATION: the broker refuses it.
    const device = await connectWith(
      p,
      { cert: cert.certificatePem as string, key: keyPem },
      "store-sensor-seattle5",
    );
    assert.notEqual(await connectOutcome(device), "connect");
    device.end(true);
  });

  it("the claim certificate cannot publish telemetry: the broker disconnects it", async () => {
    const client = await connectWith(p, claim(), claimClientId("3"));
    assert.equal(await connectOutcome(client), "connect");
    assert.equal(
      await publishOnce(
        client,
        "SeattleStoreTemp/store-sensor-seattle3",
        reading("store-sensor-seattle3"),
      ),
      "closed",
    );
    client.end(true);
  });

  it("the claim cannot connect outside its client id namespace", async () => {
    const client = await connectWith(p, claim(), "store-sensor-seattle1");
    assert.notEqual(await connectOutcome(client), "connect");
    client.end(true);
  });

  it("rejects an empty and an unknown ownership token with 400 InvalidCertificateOwnershipToken", async () => {
    const client = await connectWith(p, claim(), claimClientId("4"));
    assert.equal(await connectOutcome(client), "connect");
    const regTopic = requestTopic("RegisterThing", "json", TEMPLATE);
    const rejections: Record<string, unknown>[] = [];
    client.on("message", (_t, m) =>
      rejections.push(JSON.parse(m.toString()) as Record<string, unknown>),
    );
    await client.subscribeAsync(`${regTopic}/rejected`, { qos: 1 });
    for (const token of ["", "not-a-token"]) {
      await client.publishAsync(
        regTopic,
        JSON.stringify({ certificateOwnershipToken: token, parameters: { SerialNumber: "4" } }),
        { qos: 1 },
      );
    }
    await until(() => rejections.length === 2, "two rejections");
    for (const r of rejections) {
      assert.equal(r.statusCode, 400);
      assert.equal(r.errorCode, "InvalidCertificateOwnershipToken");
    }
    client.end(true);
  });

  it("sends no response to a filter that ends in /# below the response topic (the Topics page: sensor/# does not match sensor)", async () => {
    // https://docs.aws.amazon.com/iot/latest/developerguide/topics.html: the multi-level wildcard
    // matches the levels below its own, so `.../rejected/#` is not a subscription to `.../rejected`.
    const client = await connectWith(p, claim(), claimClientId("6"));
    assert.equal(await connectOutcome(client), "connect");
    const regTopic = requestTopic("RegisterThing", "json", TEMPLATE);
    const seen: string[] = [];
    client.on("message", (t) => seen.push(t));
    await client.subscribeAsync(`${regTopic}/rejected/#`, { qos: 1 });
    const stats = p.provisioning?.stats;
    assert.ok(stats, "the fleet stack runs the provisioning service");
    const before = stats.responsesNotDelivered;
    await client.publishAsync(
      regTopic,
      JSON.stringify({ certificateOwnershipToken: "", parameters: { SerialNumber: "6" } }),
      { qos: 1 },
    );
    await until(() => stats.responsesNotDelivered > before, "the response to be dropped");
    assert.deepEqual(seen, []);
    client.end(true);
  });

  it("answers only the requesting connection: another claim subscribed to the same topic gets nothing", async () => {
    const watcher = await connectWith(p, claim(), claimClientId("watcher"));
    assert.equal(await connectOutcome(watcher), "connect");
    const seen: string[] = [];
    watcher.on("message", (t) => seen.push(t));
    await watcher.subscribeAsync("$aws/certificates/create-from-csr/json/accepted", { qos: 1 });
    await provisionDevice({ url: p.url, claim: claim(), templateName: TEMPLATE, serial: "3" });
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(seen, []);
    watcher.end(true);
  });

  it("keeps identities (key 0600) and the registry across a restart: the device reconnects", async () => {
    const id = await provisionDevice({
      url: p.url,
      claim: claim(),
      templateName: TEMPLATE,
      serial: "4",
    });
    const dir = path.join(stateDir, "identities");
    saveIdentity(dir, "4", id);
    assert.equal(fs.statSync(path.join(dir, "4", "device.key")).mode & 0o777, 0o600);
    await p.stop();
    p = await startLocalPipeline(config, { stateDir });
    const again = loadIdentity(dir, "4");
    assert.ok(again, "the stored identity is usable");
    const device = await connectWith(
      p,
      { cert: again.certificatePem, key: again.privateKeyPem },
      again.thingName,
    );
    assert.equal(await connectOutcome(device), "connect");
    assert.equal(
      await publishOnce(device, again.deviceConfiguration.telemetryTopic, reading(again.thingName)),
      "acked",
    );
    device.end(true);
  });

  it("a second claim holder cannot provision a serial that is already provisioned (the hook refuses it by default)", async () => {
    const first = await provisionDevice({
      url: p.url,
      claim: claim(),
      templateName: TEMPLATE,
      serial: "2",
    });
    await assert.rejects(
      provisionDevice({ url: p.url, claim: claim(), templateName: TEMPLATE, serial: "2" }),
      (e: unknown) =>
        e instanceof ProvisioningRejected &&
        e.api === "RegisterThing" &&
        e.error.statusCode === 403 &&
        e.error.errorCode === "ACCESS_DENIED" &&
        /already provisioned \(thing store-sensor-seattle2 exists\)/.test(e.error.errorMessage),
    );
    // The first device still connects; nobody else holds a certificate for its thing.
    const device = await connectWith(
      p,
      { cert: first.certificatePem, key: first.privateKeyPem },
      first.thingName,
    );
    assert.equal(await connectOutcome(device), "connect");
    device.end(true);
  });

  it("a ProvisioningRejected carries the documented error payload", async () => {
    await assert.rejects(
      provisionDevice({ url: p.url, claim: claim(), templateName: TEMPLATE, serial: "9" }),
      (e: unknown) =>
        e instanceof ProvisioningRejected &&
        e.api === "RegisterThing" &&
        e.error.statusCode === 403 &&
        e.error.errorCode === "ACCESS_DENIED",
    );
  });
});

describe("fleet provisioning by claim over MQTT 5 (the default) and MQTT 3.1.1", function () {
  this.timeout(60_000);
  let p: LocalPipeline;
  const versions = new Map<string, number | undefined>();
  before(async () => {
    p = await startLocalPipeline(loadStackConfig("fleet"), { stateDir: tempDir("prov-proto") });
    p.broker.aedes.on("client", (c) => versions.set(c.id, c.version));
  });
  after(async () => {
    await p?.stop();
  });
  const claim = () => ({ ...p.claimCredentials(), ca: p.ca });

  it("provisions over MQTT 5 by default and over MQTT 3.1.1 when asked; the claim connection speaks that version", async () => {
    const v5 = await provisionDevice({
      url: p.url,
      claim: claim(),
      templateName: TEMPLATE,
      serial: "1",
    });
    const v4 = await provisionDevice({
      url: p.url,
      claim: claim(),
      templateName: TEMPLATE,
      serial: "2",
      protocol: 4,
    });
    assert.equal(v5.thingName, "store-sensor-seattle1");
    assert.equal(v4.thingName, "store-sensor-seattle2");
    assert.equal(versions.get(claimClientId("1")), 5);
    assert.equal(versions.get(claimClientId("2")), 4);
  });

  it("a claim policy's refusal names MQTT 5's SUBACK code, 0x87 Not authorized", async () => {
    await assert.rejects(
      provisionDevice({
        url: p.url,
        claim: claim(),
        templateName: TEMPLATE,
        serial: "3",
        certificateRequest: "keys",
        timeoutMs: 3000,
      }),
      /the broker refused the subscription to \$aws\/certificates\/create\/json\/\+ \(SUBACK 0x87\)/,
    );
  });
});
