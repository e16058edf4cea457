// AWS's own device SDK (aws-iot-device-sdk-v2 1.28 on aws-crt, its native binaries shipped in the
// npm package) as the test client over real mutual TLS against the embedded pipeline: its MQTT 5
// client (Mqtt5Client, the client AWS's current samples use) and its MQTT 3.1.1 client, under dev,
// prod (least privilege) and fleet (provisioning by claim through IotIdentityClientv2). What AWS
// IoT does is from https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html (docs/mqtt5.md).
// Every client is stopped and closed and every pipeline stopped, so mocha exits by itself.
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { iot, iotidentity, mqtt as mqtt3, mqtt5 } from "aws-iot-device-sdk-v2";
import { loadStackConfig, type StackConfig } from "../../core/stack-config";
import { startLocalPipeline, type LocalPipeline } from "../../local/pipeline/pipeline";
import { claimClientId, makeCsr } from "../../device/provisioner";
import { tempDir } from "../helpers/temp";
import { until, within } from "../helpers/wait";

/** The name on the local CA's server certificate (local/identity/ca.ts: DNS localhost). */
const SERVER_NAME = "localhost";

type Sdk5 = mqtt5.Mqtt5Client & { received: mqtt5.PublishPacket[] };

describe("AWS IoT Device SDK v2 against the embedded pipeline (MQTT 5 and 3.1.1)", function () {
  this.timeout(60_000);
  const open5: mqtt5.Mqtt5Client[] = [];
  const open3: mqtt3.MqttClientConnection[] = [];

  async function closeClients(): Promise<void> {
    for (const c of open5.splice(0)) {
      const stopped = new Promise<void>((resolve) => c.once("stopped", () => resolve()));
      c.stop();
      await within(stopped, 5000, "the SDK client's stop").catch(() => undefined);
      c.close();
    }
    for (const c of open3.splice(0))
      await within(c.disconnect(), 5000, "disconnect").catch(() => undefined);
  }

  /** An SDK MQTT 5 client built as AWS's samples build it; resolves once connected. */
  async function connect5(
    build: iot.AwsIotMqtt5ClientConfigBuilder,
    port: number,
    connect: Omit<mqtt5.ConnectPacket, "keepAliveIntervalSeconds">,
  ): Promise<Sdk5> {
    build.withPort(port);
    build.withConnectProperties({ ...connect, keepAliveIntervalSeconds: 30 });
    const client = Object.assign(new mqtt5.Mqtt5Client(build.build()), {
      received: [] as mqtt5.PublishPacket[],
    });
    open5.push(client);
    client.on("messageReceived", (e) => client.received.push(e.message));
    const connected = new Promise<void>((resolve, reject) => {
      client.once("connectionSuccess", () => resolve());
      client.once("connectionFailure", (e) => reject(e.error));
    });
    client.start();
    await within(connected, 10_000, `${connect.clientId} connecting`);
    return client;
  }

  /** From the pipeline's PKI folder, with the local CA and its server name, as the samples do. */
  function fromPath(p: LocalPipeline, identity: string) {
    const dir = path.join(p.stateDir, "pki");
    const b = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromPath(
      SERVER_NAME,
      path.join(dir, "identities", `${identity}.crt`),
      path.join(dir, "identities", `${identity}.key`),
    );
    b.withCertificateAuthorityFromPath(undefined, path.join(dir, "ca.crt"));
    return b;
  }

  function fromMemory(ca: string, cert: string, key: string) {
    const b = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromMemory(
      SERVER_NAME,
      cert,
      key,
    );
    b.withCertificateAuthority(ca);
    return b;
  }

  async function connect3(p: LocalPipeline, cert: string, key: string, clientId: string) {
    const b = iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder(cert, key);
    b.with_certificate_authority(p.ca);
    b.with_endpoint(SERVER_NAME);
    b.with_port(p.port);
    b.with_client_id(clientId);
    b.with_clean_session(true);
    const c = new mqtt3.MqttClient().new_connection(b.build());
    c.on("error", () => undefined);
    open3.push(c);
    await within(c.connect(), 10_000, `${clientId} connecting over MQTT 3.1.1`);
    return c;
  }

  const topicOf = (config: StackConfig, thing: string) =>
    config.telemetryTopic.split("{thing}").join(thing);
  const reading = (thing: string) =>
    JSON.stringify({
      thing,
      timestamp: Date.now(),
      temperature: 12.5,
      max_temperature: 20,
      min_temperature: 5,
      humidity: 40,
    });

  describe("dev (tutorial policy)", () => {
    let p: LocalPipeline;
    let config: StackConfig;
    before(async () => {
      config = loadStackConfig("dev");
      p = await startLocalPipeline(config, { stateDir: tempDir("sdk-dev") });
    });
    afterEach(closeClients);
    after(async () => {
      await closeClients();
      await p?.stop();
    });

    it("Mqtt5Client connects, subscribes, publishes QoS 1 (PUBACK 0) and receives its message with its MQTT 5 properties", async () => {
      const thing = config.things[0].name;
      const topic = topicOf(config, thing);
      const c = await connect5(fromPath(p, thing), p.port, { clientId: thing });
      const suback = await c.subscribe({ subscriptions: [{ topicFilter: topic, qos: 1 }] });
      assert.deepEqual(suback.reasonCodes, [mqtt5.SubackReasonCode.GrantedQoS1]);
      const puback = await c.publish({
        topicName: topic,
        qos: 1,
        payload: reading(thing),
        contentType: "application/json",
        userProperties: [{ name: "k", value: "v" }],
      });
      assert.equal(puback?.type, mqtt5.PacketType.Puback);
      assert.equal((puback as mqtt5.PubackPacket).reasonCode, mqtt5.PubackReasonCode.Success);
      await until(() => c.received.length === 1, "the message back");
      assert.equal(c.received[0].topicName, topic);
      assert.equal(c.received[0].contentType, "application/json");
      assert.deepEqual(c.received[0].userProperties, [{ name: "k", value: "v" }]);
    });

    it("the MQTT 3.1.1 client still works, and its publish reaches an MQTT 5 subscriber", async () => {
      const thing = config.things[0].name;
      const topic = topicOf(config, thing);
      const sub = await connect5(fromPath(p, "console"), p.port, { clientId: "console" });
      await sub.subscribe({ subscriptions: [{ topicFilter: topic, qos: 1 }] });
      const creds = p.credentialsFor(thing);
      const c3 = await connect3(p, creds.cert, creds.key, thing);
      await c3.publish(topic, reading(thing), mqtt3.QoS.AtLeastOnce);
      await until(() => sub.received.length === 1, "the 3.1.1 message at the MQTT 5 subscriber");
    });

    it("a retained message reaches a later MQTT 5 subscriber with RETAIN; a will is published when its client goes", async () => {
      const thing = config.things[0].name;
      const c = await connect5(fromPath(p, thing), p.port, {
        clientId: thing,
        willDelayIntervalSeconds: 0,
        will: {
          topicName: `status/${thing}`,
          qos: 1,
          payload: "gone",
          userProperties: [{ name: "why", value: "lost" }],
        },
      });
      await c.publish({ topicName: `state/${thing}`, qos: 1, payload: "on", retain: true });
      const sub = await connect5(fromPath(p, "console"), p.port, { clientId: "console" });
      await sub.subscribe({
        subscriptions: [
          { topicFilter: `state/${thing}`, qos: 1 },
          { topicFilter: `status/${thing}`, qos: 1 },
        ],
      });
      await until(() => sub.received.length === 1, "the retained message");
      assert.equal(sub.received[0].retain, true);
      // "Disconnect with Will Message" (0x04): the broker publishes the will.
      c.stop({ reasonCode: mqtt5.DisconnectReasonCode.DisconnectWithWillMessage });
      await until(() => sub.received.length === 2, "the will");
      assert.equal(sub.received[1].topicName, `status/${thing}`);
      assert.deepEqual(sub.received[1].userProperties, [{ name: "why", value: "lost" }]);
      assert.equal(sub.received.length, 2);
    });
    it('shared subscriptions: two Mqtt5Client members of $share/workers/... each get part of the messages, none twice; a non-shared subscriber gets all (mqtt.html, "Shared subscriptions")', async () => {
      const thing = config.things[0].name;
      const topic = topicOf(config, thing);
      // The tutorial policy allows any client id: two workers under the thing's certificate.
      const w1 = await connect5(fromPath(p, thing), p.port, { clientId: `${thing}-w1` });
      const w2 = await connect5(fromPath(p, thing), p.port, { clientId: `${thing}-w2` });
      for (const w of [w1, w2]) {
        const suback = await w.subscribe({
          subscriptions: [{ topicFilter: `$share/workers/${topic}`, qos: 1 }],
        });
        assert.deepEqual(suback.reasonCodes, [mqtt5.SubackReasonCode.GrantedQoS1]);
      }
      const all = await connect5(fromPath(p, "console"), p.port, { clientId: "console" });
      await all.subscribe({ subscriptions: [{ topicFilter: topic, qos: 1 }] });
      const c = await connect5(fromPath(p, thing), p.port, { clientId: thing });
      const n = 30;
      for (let i = 0; i < n; i++) {
        await c.publish({ topicName: topic, qos: 1, payload: reading(thing) });
      }
      await until(
        () => w1.received.length + w2.received.length === n && all.received.length === n,
        "every message once in the group and once at the non-shared subscriber",
      );
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(w1.received.length + w2.received.length, n);
      assert.ok(w1.received.length > 0 && w2.received.length > 0);
      assert.equal(all.received.length, n);
    });
  });

  describe("prod (least privilege)", () => {
    let p: LocalPipeline;
    let config: StackConfig;
    before(async () => {
      config = loadStackConfig("prod");
      p = await startLocalPipeline(config, { stateDir: tempDir("sdk-prod") });
    });
    afterEach(closeClients);
    after(async () => {
      await closeClients();
      await p?.stop();
    });

    it("publishes to its own topic (PUBACK 0); outside it gets PUBACK 0x87 Not authorized and stays connected", async () => {
      const thing = config.things[0].name;
      const topic = topicOf(config, thing);
      const c = await connect5(fromPath(p, thing), p.port, { clientId: thing });
      let disconnected = false;
      c.on("disconnection", () => (disconnected = true));
      const ok = (await c.publish({
        topicName: topic,
        qos: 1,
        payload: reading(thing),
      })) as mqtt5.PubackPacket;
      assert.equal(ok.reasonCode, mqtt5.PubackReasonCode.Success);
      const denied = (await c.publish({
        topicName: `${topic}/probe`,
        qos: 1,
        payload: "{}",
      })) as mqtt5.PubackPacket;
      assert.equal(denied.reasonCode, mqtt5.PubackReasonCode.NotAuthorized);
      const again = (await c.publish({
        topicName: topic,
        qos: 1,
        payload: reading(thing),
      })) as mqtt5.PubackPacket;
      assert.equal(again.reasonCode, mqtt5.PubackReasonCode.Success);
      assert.equal(disconnected, false);
      const suback = await c.subscribe({ subscriptions: [{ topicFilter: "other/#", qos: 1 }] });
      assert.deepEqual(suback.reasonCodes, [mqtt5.SubackReasonCode.NotAuthorized]);
    });
  });

  describe("fleet (provisioning by claim through IotIdentityClientv2)", () => {
    let p: LocalPipeline;
    before(async () => {
      p = await startLocalPipeline(loadStackConfig("fleet"), { stateDir: tempDir("sdk-fleet") });
    });
    afterEach(closeClients);
    after(async () => {
      await closeClients();
      await p?.stop();
    });

    const options = {
      maxRequestResponseSubscriptions: 2,
      maxStreamingSubscriptions: 1,
      operationTimeoutInSeconds: 10,
    };

    async function provision(identity: iotidentity.IotIdentityClientv2, serial: string) {
      const { csrPem, keyPem } = await makeCsr(`serial-${serial}`);
      const cert = await identity.createCertificateFromCsr({ certificateSigningRequest: csrPem });
      const reg = await identity.registerThing({
        templateName: "sensor-fleet",
        certificateOwnershipToken: cert.certificateOwnershipToken,
        parameters: { SerialNumber: serial },
      });
      return { cert, reg, keyPem };
    }

    for (const protocol of ["5", "3.1.1"] as const) {
      it(`over MQTT ${protocol}: an allowed serial provisions and then publishes; a refused serial gets ACCESS_DENIED`, async () => {
        const claim = p.claimCredentials();
        const allowed = protocol === "5" ? "1" : "2";
        let identity: iotidentity.IotIdentityClientv2;
        if (protocol === "5") {
          const c = await connect5(fromMemory(p.ca, claim.cert, claim.key), p.port, {
            clientId: claimClientId(allowed),
          });
          identity = iotidentity.IotIdentityClientv2.newFromMqtt5(c, options);
        } else {
          const c = await connect3(p, claim.cert, claim.key, claimClientId(allowed));
          identity = iotidentity.IotIdentityClientv2.newFromMqtt311(c, options);
        }
        try {
          const { cert, reg, keyPem } = await provision(identity, allowed);
          assert.equal(reg.thingName, `store-sensor-seattle${allowed}`);
          const device = await connect5(fromMemory(p.ca, cert.certificatePem!, keyPem), p.port, {
            clientId: reg.thingName!,
          });
          const puback = (await device.publish({
            topicName: `SeattleStoreTemp/${reg.thingName}`,
            qos: 1,
            payload: reading(reg.thingName!),
          })) as mqtt5.PubackPacket;
          assert.equal(puback.reasonCode, mqtt5.PubackReasonCode.Success);
          await assert.rejects(provision(identity, "9"), (e: unknown) => {
            assert.match(JSON.stringify(e) + String(e), /ACCESS_DENIED/);
            return true;
          });
        } finally {
          identity.close();
        }
      });
    }
  });
});
