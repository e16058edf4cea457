// Lifecycle events at the embedded pipeline over real mutual TLS, with mqtt.js and AWS's own
// device SDK (aws-iot-device-sdk-v2) as the clients. Every expected field and value is from
// https://docs.aws.amazon.com/iot/latest/developerguide/life-cycle-events.html (quoted at each
// assertion); docs/lifecycle-events.md lists them as a conformance table.
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { iot, mqtt5 } from "aws-iot-device-sdk-v2";
import {
  loadStackConfig,
  parseStackConfig,
  readRawStackConfig,
  type StackConfig,
} from "../../core/stack-config";
import { startLocalPipeline, type LocalPipeline } from "../../local/pipeline/pipeline";
import { LifecycleEvents } from "../../local/broker/lifecycle-events";
import { lifecycleSummary } from "../../local/pipeline/report";
import type { ClientIdentity } from "../../local/broker/broker";
import { connectOutcome, testClient } from "../helpers/broker";
import { tempDir } from "../helpers/temp";
import { until, within } from "../helpers/wait";
import { connectPacket, publishPacket, RawClient } from "./raw-mqtt";
import { TS_NODE_FLAGS } from "../../core/project";

const PAGE = "https://docs.aws.amazon.com/iot/latest/developerguide/life-cycle-events.html";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CERTIFICATE_ID = /^[0-9a-f]{64}$/;

interface Event {
  readonly topic: string;
  readonly body: Record<string, unknown>;
}

/** The local CA's server certificate names localhost (local/identity/ca.ts). */
const SERVER_NAME = "localhost";

describe(`lifecycle events (${PAGE})`, function () {
  this.timeout(60_000);
  const open: MqttClient[] = [];
  const sdk: mqtt5.Mqtt5Client[] = [];

  async function closeAll(): Promise<void> {
    for (const c of sdk.splice(0)) {
      const stopped = new Promise<void>((resolve) => c.once("stopped", () => resolve()));
      c.stop();
      await within(stopped, 5000, "the SDK client's stop").catch(() => undefined);
      c.close();
    }
    for (const c of open.splice(0)) await c.endAsync(true).catch(() => undefined);
  }

  /** An mqtt.js client (MQTT 3.1.1) as `identity`, connected. */
  async function mqttjs(p: LocalPipeline, identity: string, clientId = identity) {
    const creds = identity === "console" ? p.consoleCredentials() : p.credentialsFor(identity);
    const c = testClient(p.url, creds, clientId);
    open.push(c);
    const outcome = await connectOutcome(c);
    return { client: c, outcome };
  }

  /** A watcher under the console identity, subscribed to every lifecycle topic. */
  async function watcher(p: LocalPipeline): Promise<Event[]> {
    const { client } = await mqttjs(p, "console", "console-watcher");
    const events: Event[] = [];
    client.on("message", (topic, payload) =>
      events.push({ topic, body: JSON.parse(payload.toString()) as Record<string, unknown> }),
    );
    await client.subscribeAsync(["$aws/events/presence/+/+", "$aws/events/subscriptions/+/+"], {
      qos: 1,
    });
    return events;
  }

  /** AWS's SDK MQTT 5 client from the pipeline's PKI folder, as AWS's samples build it. */
  async function sdkClient(p: LocalPipeline, identity: string, clientId = identity) {
    const dir = path.join(p.stateDir, "pki", "identities");
    const b = iot.AwsIotMqtt5ClientConfigBuilder.newDirectMqttBuilderWithMtlsFromPath(
      SERVER_NAME,
      path.join(dir, `${identity}.crt`),
      path.join(dir, `${identity}.key`),
    );
    b.withCertificateAuthorityFromPath(undefined, path.join(p.stateDir, "pki", "ca.crt"));
    b.withPort(p.port);
    b.withConnectProperties({ clientId, keepAliveIntervalSeconds: 30 });
    const c = new mqtt5.Mqtt5Client(b.build());
    sdk.push(c);
    const connected = new Promise<void>((resolve, reject) => {
      c.once("connectionSuccess", () => resolve());
      c.once("connectionFailure", (e) => reject(e.error));
    });
    c.start();
    await within(connected, 10_000, `${clientId} connecting`);
    return c;
  }

  const of = (events: Event[], topic: string) => events.filter((e) => e.topic === topic);

  describe("dev stack (tutorial policy: the console and every device may subscribe)", () => {
    let p: LocalPipeline;
    let config: StackConfig;
    let thing: string;
    before(async () => {
      config = loadStackConfig("dev");
      thing = config.things[0].name;
      p = await startLocalPipeline(config, { stateDir: tempDir("lifecycle-dev") });
    });
    afterEach(closeAll);
    after(async () => {
      await closeAll();
      await p?.stop();
    });

    it("SDK client connects and disconnects cleanly: connected then disconnected with CLIENT_INITIATED_DISCONNECT, the documented fields, one session and version", async () => {
      const events = await watcher(p);
      const before = Date.now();
      const c = await sdkClient(p, thing);
      const connectedTopic = `$aws/events/presence/connected/${thing}`;
      await until(() => of(events, connectedTopic).length === 1, "the connected event");
      const connected = of(events, connectedTopic)[0].body;
      // "A connect message has the following structure": these keys and no others (thingName
      // "will only be included if the client is connecting using the exclusive thing feature").
      assert.deepEqual(Object.keys(connected).sort(), [
        "clientId",
        "eventType",
        "ipAddress",
        "principalIdentifier",
        "sessionIdentifier",
        "timestamp",
        "versionNumber",
      ]);
      assert.equal(connected.clientId, thing);
      assert.equal(connected.eventType, "connected");
      assert.equal(connected.ipAddress, "127.0.0.1", "IPv4 format");
      assert.match(String(connected.principalIdentifier), CERTIFICATE_ID, "the certificate ID");
      assert.match(String(connected.sessionIdentifier), UUID);
      assert.ok(typeof connected.timestamp === "number" && connected.timestamp >= before);
      assert.equal(typeof connected.versionNumber, "number");

      const stopped = new Promise<void>((resolve) => c.once("stopped", () => resolve()));
      // The SDK sends a DISCONNECT only when stop() is given one.
      c.stop({ reasonCode: mqtt5.DisconnectReasonCode.NormalDisconnection });
      await within(stopped, 5000, "stop");
      const disconnectedTopic = `$aws/events/presence/disconnected/${thing}`;
      await until(() => of(events, disconnectedTopic).length === 1, "the disconnected event");
      const gone = of(events, disconnectedTopic)[0].body;
      assert.deepEqual(Object.keys(gone).sort(), [
        "clientId",
        "clientInitiatedDisconnect",
        "disconnectReason",
        "eventType",
        "principalIdentifier",
        "sessionIdentifier",
        "timestamp",
        "versionNumber",
      ]);
      assert.equal(gone.eventType, "disconnected");
      assert.equal(gone.clientInitiatedDisconnect, true, JSON.stringify(gone));
      assert.equal(gone.disconnectReason, "CLIENT_INITIATED_DISCONNECT");
      // "The connect and disconnect messages for a client connection have the same version number."
      assert.equal(gone.versionNumber, connected.versionNumber);
      assert.equal(gone.sessionIdentifier, connected.sessionIdentifier);
      assert.equal(gone.principalIdentifier, connected.principalIdentifier);
    });

    it("SDK client killed (SIGKILL, as a device loses power) gives CONNECTION_LOST, clientInitiatedDisconnect false", async () => {
      const events = await watcher(p);
      const child = spawn(
        process.execPath,
        [
          ...[...TS_NODE_FLAGS, path.join(__dirname, "fixtures", "sdk-device-child.ts")],
          ...[String(p.port), path.join(p.stateDir, "pki"), thing, thing],
        ],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      await within(
        new Promise<void>((resolve, reject) => {
          child.stdout.on("data", (d: Buffer) => d.toString().includes("connected") && resolve());
          child.once("exit", (code) => reject(new Error(`the SDK device exited ${code}`)));
        }),
        20_000,
        "the SDK device connecting",
      );
      child.kill("SIGKILL");
      await exited;
      const topic = `$aws/events/presence/disconnected/${thing}`;
      await until(() => of(events, topic).length === 1, "the disconnected event");
      const gone = of(events, topic)[0].body;
      // "CONNECTION_LOST: The client-server connection is cut off."
      assert.equal(gone.disconnectReason, "CONNECTION_LOST");
      assert.equal(gone.clientInitiatedDisconnect, false);
      const connected = of(events, `$aws/events/presence/connected/${thing}`);
      assert.equal(connected.length, 1);
      assert.equal(gone.versionNumber, connected[0].body.versionNumber);
    });

    it("a subscriber that takes nothing (frozen, Ctrl-Z) holds back neither the events nor the other subscribers: its events are dropped by the slow-consumer guard", async () => {
      const events = await watcher(p);
      const frozen = spawn(
        process.execPath,
        [
          ...[...TS_NODE_FLAGS, path.join(__dirname, "fixtures", "subscriber-child.ts")],
          ...[String(p.port), path.join(p.stateDir, "pki"), "$aws/events/presence/+/+", "1"],
        ],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      const exited = new Promise<void>((resolve) => frozen.once("exit", () => resolve()));
      try {
        await within(
          new Promise<void>((resolve, reject) => {
            frozen.stdout.on(
              "data",
              (d: Buffer) => d.toString().includes("subscribed") && resolve(),
            );
            frozen.once("exit", (code) => reject(new Error(`the subscriber exited ${code}`)));
          }),
          20_000,
          "the frozen subscriber subscribing",
        );
        frozen.kill("SIGSTOP");
        const dropsBefore = p.broker.guard.stats.slowConsumerDrops;
        const publishedBefore = p.lifecycle.stats.published;
        // Events are small: the kernel's socket buffers take megabytes before the broker holds
        // any; send until the guard drops (at most 60,000), a batch within the lifecycle bound.
        let n = 0;
        while (p.broker.guard.stats.slowConsumerDrops === dropsBefore && n < 60_000) {
          for (let i = 0; i < 5000; i++, n++) {
            p.lifecycle.connected({
              clientId: `storm-${n}`,
              thingName: thing,
              kind: "thing",
              certificateId: "a".repeat(64),
            });
          }
          await until(
            () => p.lifecycle.stats.published - publishedBefore >= n,
            "the batch published",
            60_000,
          );
        }
        await until(
          () => events.filter((e) => String(e.body.clientId).startsWith("storm-")).length === n,
          "every event at the healthy subscriber",
          60_000,
        );
        assert.equal(p.lifecycle.stats.dropped, 0);
        assert.ok(
          p.broker.guard.stats.slowConsumerDrops - dropsBefore > 0,
          "dropped for the frozen one",
        );
      } finally {
        frozen.kill("SIGKILL");
        frozen.kill("SIGCONT");
        await exited;
      }
    });

    it("SDK client leaving with DISCONNECT 0x04 (Disconnect with Will Message) is still CLIENT_INITIATED_DISCONNECT", async () => {
      const events = await watcher(p);
      const c = await sdkClient(p, thing);
      const stopped = new Promise<void>((resolve) => c.once("stopped", () => resolve()));
      c.stop({ reasonCode: mqtt5.DisconnectReasonCode.DisconnectWithWillMessage });
      await within(stopped, 5000, "stop");
      const topic = `$aws/events/presence/disconnected/${thing}`;
      await until(() => of(events, topic).length === 1, "the disconnected event");
      // "The client indicates that it will disconnect ... by sending ... a MQTT DISCONNECT".
      assert.equal(of(events, topic)[0].body.disconnectReason, "CLIENT_INITIATED_DISCONNECT");
      assert.equal(of(events, topic)[0].body.clientInitiatedDisconnect, true);
    });

    it("a connection cut without DISCONNECT gives CONNECTION_LOST, clientInitiatedDisconnect false; reconnecting raises versionNumber", async () => {
      const events = await watcher(p);
      const first = await mqttjs(p, thing);
      assert.equal(first.outcome, "connect");
      first.client.stream.destroy(); // the network goes: no DISCONNECT packet
      const topic = `$aws/events/presence/disconnected/${thing}`;
      await until(() => of(events, topic).length === 1, "the disconnected event");
      const gone = of(events, topic)[0].body;
      assert.equal(gone.disconnectReason, "CONNECTION_LOST");
      assert.equal(gone.clientInitiatedDisconnect, false);
      const again = await mqttjs(p, thing);
      assert.equal(again.outcome, "connect");
      const connects = `$aws/events/presence/connected/${thing}`;
      await until(() => of(events, connects).length === 2, "the second connected event");
      const [v1, v2] = of(events, connects).map((e) => e.body.versionNumber as number);
      // "a monotonically increasing long integer value for each client ID connection"
      assert.ok(v2 > v1, `versionNumber ${v2} after ${v1}`);
      assert.notEqual(
        of(events, connects)[1].body.sessionIdentifier,
        of(events, connects)[0].body.sessionIdentifier,
      );
    });

    it("a second connection with the same client id disconnects the first with DUPLICATE_CLIENTID (SDK client taken over)", async () => {
      const events = await watcher(p);
      const older = await sdkClient(p, thing);
      const connects = `$aws/events/presence/connected/${thing}`;
      await until(() => of(events, connects).length === 1, "the first connected event");
      const olderVersion = of(events, connects)[0].body.versionNumber;
      // The SDK would reconnect and take the id back; stop it once it has been taken over.
      older.once("disconnection", () => older.stop());
      const newer = await mqttjs(p, thing);
      assert.equal(newer.outcome, "connect");
      const topic = `$aws/events/presence/disconnected/${thing}`;
      await until(() => of(events, topic).length >= 1, "the disconnected event");
      const gone = of(events, topic)[0].body;
      // "the client that is already connected will be disconnected with this disconnect reason"
      assert.equal(gone.disconnectReason, "DUPLICATE_CLIENTID");
      assert.equal(gone.clientInitiatedDisconnect, false);
      assert.equal(gone.versionNumber, olderVersion);
      await until(() => of(events, connects).length >= 2, "the newer connection's event");
      assert.ok((of(events, connects)[1].body.versionNumber as number) > (olderVersion as number));
    });

    it("SUBSCRIBE and UNSUBSCRIBE publish subscribed and unsubscribed with the filters as topics", async () => {
      const events = await watcher(p);
      const { client } = await mqttjs(p, thing);
      await client.subscribeAsync(["foo/bar", "device/data"], { qos: 1 });
      await client.unsubscribeAsync("foo/bar");
      const subscribed = `$aws/events/subscriptions/subscribed/${thing}`;
      const unsubscribed = `$aws/events/subscriptions/unsubscribed/${thing}`;
      await until(() => of(events, unsubscribed).length === 1, "the unsubscribed event");
      const sub = of(events, subscribed)[0].body;
      assert.deepEqual(Object.keys(sub).sort(), [
        "clientId",
        "eventType",
        "principalIdentifier",
        "sessionIdentifier",
        "timestamp",
        "topics",
      ]);
      assert.equal(sub.eventType, "subscribed");
      assert.deepEqual(sub.topics, ["foo/bar", "device/data"]);
      const unsub = of(events, unsubscribed)[0].body;
      assert.equal(unsub.eventType, "unsubscribed");
      assert.deepEqual(unsub.topics, ["foo/bar"]);
      const connected = of(events, `$aws/events/presence/connected/${thing}`).at(-1)?.body;
      assert.equal(sub.sessionIdentifier, connected?.sessionIdentifier);
    });

    it("a client that stops answering is disconnected with MQTT_KEEP_ALIVE_TIMEOUT after 1.5 x its keep-alive", async () => {
      // AWS holds a keep-alive to at least 30 s; a pipeline of its own lowers that bound to time
      // a 1 s keep-alive out within the test.
      const quick = await startLocalPipeline(config, {
        stateDir: tempDir("lifecycle-keepalive"),
        limits: { minKeepaliveSeconds: 1 },
      });
      try {
        const events = await watcher(quick);
        const raw = await RawClient.open(quick.port, quick.credentialsFor(thing));
        await raw.write(connectPacket(thing, { keepalive: 1 }));
        await raw.next(2); // CONNACK; then nothing, not even PINGREQ
        const topic = `$aws/events/presence/disconnected/${thing}`;
        await until(() => of(events, topic).length === 1, "the disconnected event", 5000);
        assert.equal(of(events, topic)[0].body.disconnectReason, "MQTT_KEEP_ALIVE_TIMEOUT");
        raw.end();
      } finally {
        await closeAll();
        await quick.stop();
      }
    });

    it("no client can publish on a lifecycle topic, even under iot:* (reserved-topics.html: Subscribe only)", async () => {
      const events = await watcher(p);
      const { client } = await mqttjs(p, thing, "forger");
      const forged = `$aws/events/presence/disconnected/${thing}`;
      const closed = new Promise<void>((resolve) => client.once("close", () => resolve()));
      client.publish(forged, JSON.stringify({ clientId: thing, eventType: "disconnected" }), {
        qos: 1,
      });
      // "Unsupported publish ... operations to reserved topics can result in a terminated connection."
      await within(closed, 5000, "the forger's connection closing");
      await until(
        () => of(events, "$aws/events/presence/disconnected/forger").length === 1,
        "the forger's own disconnected event",
      );
      assert.equal(
        of(events, "$aws/events/presence/disconnected/forger")[0].body.disconnectReason,
        "CLIENT_ERROR",
      );
      // MQTT 5 (the SDK): PUBACK 0x87 Not authorized, the connection kept (mqtt.html reason codes).
      const sdk5 = await sdkClient(p, thing, "forger5");
      const puback = await sdk5.publish({ topicName: forged, qos: 1, payload: "{}" });
      assert.equal((puback as mqtt5.PubackPacket).reasonCode, mqtt5.PubackReasonCode.NotAuthorized);
      assert.deepEqual(of(events, forged), [], "the forged event reached no subscriber");
    });

    it("a CONNECT whose will is on a lifecycle topic is refused", async () => {
      const c = mqtt.connect(p.url, {
        ...p.credentialsFor(thing),
        ca: p.ca,
        clientId: "will-forger",
        rejectUnauthorized: true,
        reconnectPeriod: 0,
        protocolVersion: 4,
        will: {
          topic: `$aws/events/presence/disconnected/${thing}`,
          payload: Buffer.from("{}"),
          qos: 1,
          retain: false,
        },
      });
      c.on("error", () => undefined);
      open.push(c);
      assert.notEqual(await connectOutcome(c), "connect");
    });

    it("a client id with + or # gets no lifecycle events", async () => {
      const events = await watcher(p);
      const odd = await mqttjs(p, thing, "odd+id");
      assert.equal(odd.outcome, "connect");
      const plain = await mqttjs(p, thing, "plain-id");
      assert.equal(plain.outcome, "connect");
      await until(
        () => of(events, "$aws/events/presence/connected/plain-id").length === 1,
        "the plain id's event",
      );
      // "Client IDs that contain # or + do not receive lifecycle events."
      assert.deepEqual(
        events.filter((e) => e.body.clientId === "odd+id"),
        [],
      );
    });
  });

  describe("prod stack (least privilege: devices may not read $aws/events)", () => {
    let p: LocalPipeline;
    let config: StackConfig;
    before(async () => {
      config = loadStackConfig("prod");
      p = await startLocalPipeline(config, { stateDir: tempDir("lifecycle-prod") });
    });
    afterEach(closeAll);
    after(async () => {
      await closeAll();
      await p?.stop();
    });

    it("a device without iot:Subscribe on the lifecycle topics is refused and sees nothing, while the console sees the events", async () => {
      const [a, b] = config.things.map((t) => t.name);
      const events = await watcher(p);
      const { client: device } = await mqttjs(p, a);
      const seen: string[] = [];
      device.on("message", (topic) => seen.push(topic));
      // SUBACK 0x80: the policy does not allow the filter (mqtt.js rejects on it).
      await assert.rejects(
        device.subscribeAsync("$aws/events/presence/connected/+", { qos: 1 }),
        /Subscribe error/,
      );
      const other = await sdkClient(p, b);
      await until(
        () => of(events, `$aws/events/presence/connected/${b}`).length === 1,
        "the console's event",
      );
      other.stop();
      await until(
        () => of(events, `$aws/events/presence/disconnected/${b}`).length === 1,
        "the console's disconnected event",
      );
      assert.deepEqual(seen, []);
    });

    it("an MQTT 3.1.1 publish the policy denies ends the connection with AUTH_ERROR", async () => {
      const [a, b] = config.things.map((t) => t.name);
      const events = await watcher(p);
      const { client } = await mqttjs(p, a);
      // "AUTH_ERROR: The client failed to authenticate or authorization failed."
      client.publish(`SeattleStoreTemp/${b}`, "{}", { qos: 1 });
      const topic = `$aws/events/presence/disconnected/${a}`;
      await until(() => of(events, topic).length === 1, "the disconnected event");
      assert.equal(of(events, topic)[0].body.disconnectReason, "AUTH_ERROR");
      assert.equal(of(events, topic)[0].body.clientInitiatedDisconnect, false);
    });

    it("a publish over the payload limit ends the connection with CLIENT_ERROR", async () => {
      const thing = config.things[0].name;
      const events = await watcher(p);
      const raw = await RawClient.open(p.port, p.credentialsFor(thing));
      await raw.write(connectPacket(thing));
      await raw.next(2);
      // "a client will be disconnected ... if the client attempts to publish with a payload that
      // exceeds the payload limit" (128 KB: AWS IoT Core quotas).
      await raw
        .write(publishPacket(`SeattleStoreTemp/${thing}`, Buffer.alloc(128 * 1024 + 1), 1, 7))
        .catch(() => undefined);
      const topic = `$aws/events/presence/disconnected/${thing}`;
      await until(() => of(events, topic).length === 1, "the disconnected event");
      assert.equal(of(events, topic)[0].body.disconnectReason, "CLIENT_ERROR");
      raw.end();
    });

    it("a client the policy refuses publishes connect_failed with AUTHORIZATION_FAILED", async () => {
      const thing = config.things[0].name;
      const events = await watcher(p);
      const refused = await mqttjs(p, thing, "not-a-thing");
      assert.notEqual(refused.outcome, "connect");
      const topic = "$aws/events/presence/connect_failed/not-a-thing";
      await until(() => of(events, topic).length === 1, "the connect_failed event");
      const failed = of(events, topic)[0].body;
      assert.equal(failed.eventType, "connect_failed");
      assert.equal(failed.connectFailureReason, "AUTHORIZATION_FAILED");
      assert.equal(failed.clientId, "not-a-thing");
      assert.match(String(failed.principalIdentifier), CERTIFICATE_ID);
      assert.equal(failed.ipAddress, "127.0.0.1");
    });
  });

  describe("presence alarm in the local run (presenceAlarm, core/monitoring.ts PRESENCE)", () => {
    let p: LocalPipeline;
    let config: StackConfig;
    before(async () => {
      const raw = { ...readRawStackConfig("prod"), presenceAlarm: true };
      config = parseStackConfig(raw, "prod");
      p = await startLocalPipeline(config, { stateDir: tempDir("lifecycle-presence") });
    });
    afterEach(closeAll);
    after(async () => {
      await closeAll();
      await p?.stop();
    });

    it("counts a lost connection and a takeover, not a clean DISCONNECT, and reports the alarm", async () => {
      const [a, b, c] = config.things.map((t) => t.name);
      const events = await watcher(p);
      const lost = await mqttjs(p, a);
      lost.client.stream.destroy();
      const clean = await mqttjs(p, b);
      await clean.client.endAsync();
      const older = await mqttjs(p, c);
      const newer = await mqttjs(p, c);
      assert.equal(older.outcome, "connect");
      assert.equal(newer.outcome, "connect");
      await until(
        () => events.filter((e) => e.body.eventType === "disconnected").length === 3,
        "three disconnected events",
      );
      assert.deepEqual(
        events
          .filter((e) => e.body.eventType === "disconnected")
          .map((e) => `${String(e.body.clientId)} ${String(e.body.disconnectReason)}`)
          .sort(),
        [`${a} CONNECTION_LOST`, `${b} CLIENT_INITIATED_DISCONNECT`, `${c} DUPLICATE_CLIENTID`],
      );
      // The others leave with DISCONNECT, which the presence rule does not count.
      for (const client of open.splice(0)) await client.endAsync().catch(() => undefined);
      await p.stop();
      const findings = p.alarmFindings().filter((f) => f.kind === "device-disconnects");
      assert.equal(findings.length, 1, JSON.stringify(p.alarmFindings()));
      assert.match(
        findings[0].message,
        /^2 device disconnection\(s\) other than CLIENT_INITIATED_DISCONNECT/,
      );
      // The stack's presence rule ran on the broker's own disconnected events (AWS IoT feeds its
      // lifecycle events to rules) and put one DeviceDisconnects count for each unexpected one.
      const metric = p
        .dashboard()
        .find((r) => r.label.startsWith("metric iot-pipeline/prod/DeviceDisconnects "));
      assert.equal(metric?.value, "2 / 2", JSON.stringify(p.dashboard()));
    });
  });

  describe("LifecycleEvents bounds", () => {
    const id = (clientId: string): ClientIdentity => ({
      clientId,
      thingName: clientId,
      kind: "thing",
      certificateId: "a".repeat(64),
      remoteAddress: "::ffff:10.0.0.7",
    });

    it("holds at most maxPending events; the rest are dropped, counted and logged", async () => {
      const lines: string[] = [];
      let release: () => void = () => undefined;
      const gate = new Promise<void>((r) => (release = r));
      const published: string[] = [];
      const events = new LifecycleEvents({
        publish: async (topic) => {
          await gate;
          published.push(topic);
        },
        limits: { maxPending: 3 },
        log: (l) => lines.push(l),
      });
      for (let i = 0; i < 10; i++) events.connected(id(`c${i}`));
      // The first is being published, three wait, six are dropped.
      assert.equal(events.stats.dropped, 6);
      release();
      await until(() => published.length === 4, "the four kept events");
      assert.equal(events.stats.published, 4);
      assert.ok(
        lines.some((l) => /dropping/.test(l)) && lines.some((l) => /6 event/.test(l)),
        lines.join("\n"),
      );
      // The run's summary says so.
      assert.deepEqual(lifecycleSummary(events), [
        {
          label: "lifecycle events published / dropped (too many waiting) / failed",
          value: "4 / 6 / 0",
        },
      ]);
      assert.deepEqual(lifecycleSummary(new LifecycleEvents({ publish: async () => {} })), []);
    });

    it("a persistent session keeps its sessionIdentifier across reconnects; a clean one gets a new one", async () => {
      const bodies: Record<string, unknown>[] = [];
      const events = new LifecycleEvents({
        publish: async (_t, payload) => void bodies.push(JSON.parse(payload.toString())),
      });
      const first = id("p");
      events.connected(first, false);
      events.disconnected(first, "CONNECTION_LOST");
      events.connected(id("p"), false);
      events.connected(id("p"), true);
      await until(() => bodies.length === 4, "four events");
      // "sessionIdentifier: A globally unique identifier in AWS IoT that exists for the life of the session"
      assert.equal(bodies[2].sessionIdentifier, bodies[0].sessionIdentifier);
      assert.notEqual(bodies[3].sessionIdentifier, bodies[0].sessionIdentifier);
    });

    it("versionNumber goes back to 0 after about an hour not connected; the IPv4 address without its ::ffff: prefix", async () => {
      let now = 1_000_000;
      const bodies: Record<string, unknown>[] = [];
      const events = new LifecycleEvents({
        publish: async (_t, payload) => void bodies.push(JSON.parse(payload.toString())),
        now: () => now,
      });
      const conn1 = id("c");
      events.connected(conn1);
      events.disconnected(conn1, "CONNECTION_LOST");
      now += 10 * 60 * 1000;
      const conn2 = id("c");
      events.connected(conn2);
      events.disconnected(conn2, "CONNECTION_LOST");
      // "If a client is not connected for approximately one hour, the version number is reset to 0."
      now += 61 * 60 * 1000;
      events.connected(id("c"));
      await until(() => bodies.length === 5, "five events");
      assert.deepEqual(
        bodies.map((b) => b.versionNumber),
        [0, 0, 1, 1, 0],
      );
      assert.equal(bodies[0].ipAddress, "10.0.0.7");
    });
  });
});
