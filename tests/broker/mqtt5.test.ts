// MQTT 5 at the embedded broker as AWS IoT Core speaks it, with mqtt.js as an MQTT 5 client. Every
// expected value is from https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html ("MQTT 5
// supported features", "MQTT 5 properties", "MQTT reason codes"); docs/mqtt5.md names each test.
import * as assert from "node:assert/strict";
import type * as tls from "node:tls";
import mqtt, { type ErrorWithSubackPacket, type IClientOptions, type MqttClient } from "mqtt";
import type { Pki } from "../../local/identity/ca";
import type { BrokerHooks, LocalBroker } from "../../local/broker/broker";
import type { MqttProperties } from "../../core/rule-sql";
import { maxPublishPacketBytes } from "../../local/broker/broker-limits";
import { adjustKeepAlive } from "../../local/broker/mqtt5";
import { startBroker, testPki } from "../helpers/broker";
import { until } from "../helpers/wait";

describe("MQTT 5 as AWS IoT Core speaks it (local/broker/mqtt5.ts)", function () {
  this.timeout(20_000);
  let pki: Pki;
  let broker: LocalBroker;
  const clients: MqttClient[] = [];

  before(async () => {
    pki = await testPki();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.end(true);
    await broker?.stop();
  });

  /** An MQTT 5 mqtt.js client as `identity`, no reconnects; resolves once connected. */
  async function v5(identity: string, extra: Partial<IClientOptions> = {}): Promise<MqttClient> {
    const c = mqtt.connect(broker.url, {
      ...pki.credentialsFor(identity),
      clientId: identity,
      protocolVersion: 5,
      reconnectPeriod: 0,
      ...extra,
    });
    c.on("error", () => undefined);
    clients.push(c);
    await new Promise<void>((resolve, reject) => {
      c.once("connect", () => resolve());
      c.once("close", () => reject(new Error(`${identity}: closed before CONNACK`)));
    });
    return c;
  }

  /** The PUBACK reason code of a QoS 1 publish (0 when accepted). */
  function pubackCode(c: MqttClient, topic: string, opts: mqtt.IClientPublishOptions = {}) {
    return c.publishAsync(topic, "x", { qos: 1, ...opts }).then(
      () => 0,
      (e: { code?: number }) => e.code ?? -1,
    );
  }

  it("CONNACK: Maximum QoS 1, Retain/Wildcard available, no Subscription Identifiers, 8 topic aliases, Receive Maximum 100, session expiry clamped to 3600 s", async () => {
    broker = await startBroker(pki);
    const seen = await connackOf(broker, pki);
    assert.equal(seen.maximumQoS, 1, "Maximum QoS: AWS IoT Core doesn't support QoS 2");
    assert.equal(seen.retainAvailable, true);
    assert.equal(seen.wildcardSubscriptionAvailable, true);
    assert.equal(seen.subscriptionIdentifiersAvailable, false);
    assert.equal(seen.topicAliasMaximum, 8);
    assert.equal(seen.receiveMaximum, 100);
    assert.equal(seen.maximumPacketSize, maxPublishPacketBytes());
    assert.equal(seen.sessionExpiryInterval, 3600, "the adjusted value returned in the CONNACK");
  });

  it('Server Keep Alive: a keep-alive of 0 or above 1,200 s gets 1,200 s, below 30 s gets 30 s, 30-1,200 s is kept (none sent) (quotas page, keep-alive; mqtt.html "MQTT 5 properties")', async () => {
    broker = await startBroker(pki);
    const assigned: Record<number, unknown> = {};
    for (const keepalive of [0, 5, 60, 1200, 3600]) {
      const c = mqtt.connect(broker.url, {
        ...pki.credentialsFor("sensor-c"),
        clientId: "sensor-c",
        protocolVersion: 5,
        reconnectPeriod: 0,
        keepalive,
      });
      c.on("error", () => undefined);
      const connack = await new Promise<mqtt.IConnackPacket>((resolve) =>
        c.once("connect", (p) => resolve(p)),
      );
      assigned[keepalive] = connack.properties?.serverKeepAlive;
      await c.endAsync();
    }
    assert.deepEqual(assigned, { 0: 1200, 5: 30, 60: undefined, 1200: undefined, 3600: 1200 });
    // MQTT 3.1.1 has no Server Keep Alive: below 30 s the connection is timed by 30 s.
    const packet = { protocolVersion: 4, keepalive: 5 };
    adjustKeepAlive({}, packet, 1200);
    assert.equal(packet.keepalive, 30);
  });

  it("a denied publish gets PUBACK 0x87 and the connection stays; a denied subscribe gets SUBACK 0x87", async () => {
    const hooks: BrokerHooks = {
      authorizePublish: (_id, topic) =>
        topic.startsWith("denied/") ? "policy says no" : undefined,
      authorizeSubscribe: (_id, filter) => (filter.startsWith("denied/") ? "no" : undefined),
    };
    broker = await startBroker(pki, hooks);
    const answers: string[] = [];
    broker.on("publishDenied", (_id, _t, _r, answer) => answers.push(answer));
    const c = await v5("sensor-a");
    assert.equal(await pubackCode(c, "denied/x"), 0x87);
    assert.equal(c.connected, true);
    assert.equal(await pubackCode(c, "allowed/x"), 0);
    const suback = await c.subscribeAsync("denied/#", { qos: 1 }).then(
      () => undefined,
      (e: ErrorWithSubackPacket) => e.packet.granted,
    );
    assert.deepEqual(suback, [0x87]);
    assert.deepEqual(answers, ["PUBACK 0x87"]);
  });

  it("a retained publish past the retained store's bounds gets PUBACK 0x97 Quota exceeded (AWS: \"a throttled response\"), a reserved topic's still 0x87; the connection stays", async () => {
    broker = await startBroker(pki, {}, 0, { retained: { maxMessages: 1 } });
    const answers: string[] = [];
    broker.on("publishDenied", (_id, _t, _r, answer) => answers.push(answer));
    const c = await v5("sensor-a");
    assert.equal(await pubackCode(c, "r/1", { retain: true }), 0);
    assert.equal(await pubackCode(c, "r/2", { retain: true }), 0x97);
    assert.equal(await pubackCode(c, "$aws/things/x/shadow/update", { retain: true }), 0x87);
    assert.equal(c.connected, true);
    assert.deepEqual(answers, ["PUBACK 0x97", "PUBACK 0x87"]);
  });

  it('a subscription refused with SUBACK 0x87 gets no retained message (mqtt.html: retained messages go to a subscription; "MQTT reason codes": 0x87 the subscription is not accepted)', async () => {
    broker = await startBroker(pki, {
      authorizeSubscribe: (_id, filter) => (filter === "state/1" ? "no" : undefined),
      authorizeReceive: () => true,
    });
    const p = await v5("sensor-a");
    await p.publishAsync("state/1", "kept", { qos: 1, retain: true });
    const got: string[] = [];
    const c = await v5("sensor-b");
    c.on("message", (t) => got.push(t));
    const granted = await c.subscribeAsync("state/1", { qos: 1 }).then(
      () => [] as number[],
      (e: ErrorWithSubackPacket) => e.packet.granted as number[],
    );
    assert.deepEqual(granted, [0x87]);
    await c.subscribeAsync("other/1", { qos: 1 }); // a round trip after the SUBACK
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(got, []);
    assert.equal(broker.retained.stats.deliveredOnSubscribe, 0);
  });

  it("a publish the pipeline could not store closes an MQTT 5 connection without any PUBACK (the device sends it again)", async () => {
    broker = await startBroker(pki, {
      onPublish: () => Promise.reject(new Error("journal full")),
    });
    const c = await v5("sensor-a");
    const closed = new Promise<void>((resolve) => c.once("close", () => resolve()));
    let acked: unknown = "none";
    c.publish("t/1", "x", { qos: 1 }, (e) => (acked = e ?? "PUBACK 0"));
    await closed;
    await new Promise((r) => setImmediate(r));
    assert.equal(acked, "none");
    assert.equal(broker.stats.publishFailures, 1);
  });

  it('Receive Maximum 100: 100 QoS 1 publishes awaiting their PUBACK are taken, the 101st gets DISCONNECT 0x93 (MQTT 5 §3.3.4; mqtt.html "MQTT reason codes"; quotas page: 100 unacknowledged inbound)', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    // Reading is not paused at 100 here, so that the 101st is read at all (a burst read at once).
    let seen = 0;
    broker = await startBroker(pki, { onPublish: () => (seen++, held) }, 0, {
      unacknowledged: { perConnection: 1000 },
    });
    const answers: string[] = [];
    broker.on("publishDenied", (_id, _t, _r, answer) => answers.push(answer));
    const c = await v5("sensor-a");
    const acks = Array.from({ length: 100 }, (_, i) => pubackCode(c, `t/${i}`));
    await until(() => seen === 100, "100 publishes in flight");
    assert.equal(c.connected, true, "100 in flight: still connected");
    const disconnect = new Promise<number | undefined>((resolve) =>
      c.once("disconnect", (p) => resolve(p.reasonCode)),
    );
    c.publish("t/100", "x", { qos: 1 });
    assert.equal(await disconnect, 0x93);
    assert.deepEqual(answers, ["DISCONNECT 0x93"]);
    assert.equal(seen, 100, "the 101st never reached the pipeline");
    release();
    void Promise.all(acks);
  });

  it("topic aliases: the scanner lets an aliased PUBLISH through, the policy sees the resolved topic, subscribers get the topic", async () => {
    const topics: string[] = [];
    broker = await startBroker(pki, {
      authorizePublish: (_id, topic) => {
        topics.push(topic);
        return topic === "aliased/denied" ? "no" : undefined;
      },
    });
    const sub = await v5("sensor-b");
    const got: string[] = [];
    sub.on("message", (t) => got.push(t));
    await sub.subscribeAsync("aliased/#", { qos: 1 });
    const c = await v5("sensor-a");
    assert.equal(await pubackCode(c, "aliased/1", { properties: { topicAlias: 1 } }), 0);
    assert.equal(await pubackCode(c, "", { properties: { topicAlias: 1 } }), 0);
    assert.equal(await pubackCode(c, "aliased/denied", { properties: { topicAlias: 2 } }), 0x87);
    assert.equal(await pubackCode(c, "", { properties: { topicAlias: 2 } }), 0x87);
    assert.equal(c.connected, true);
    await until(() => got.length === 2, "both aliased messages");
    assert.deepEqual(got, ["aliased/1", "aliased/1"]);
    assert.deepEqual(topics, ["aliased/1", "aliased/1", "aliased/denied", "aliased/denied"]);
    assert.equal(broker.guard.stats.refusedPackets.topic, 0);
  });

  it("a SUBSCRIBE carrying a Subscription Identifier gets DISCONNECT 0xA1", async () => {
    broker = await startBroker(pki);
    const c = await v5("sensor-a");
    const disconnect = new Promise<number | undefined>((resolve) =>
      c.once("disconnect", (p) => resolve(p.reasonCode)),
    );
    c.subscribe("t/#", { qos: 1, properties: { subscriptionIdentifier: 7 } });
    assert.equal(await disconnect, 0xa1);
    assert.equal(broker.guard.stats.refusedPackets.unsupported, 1);
  });

  it("message expiry: more than 7 days is clamped to 7 days (604,800 s), 0 to 1 s", async () => {
    const seen: (number | undefined)[] = [];
    broker = await startBroker(pki);
    const sub = await v5("sensor-b");
    sub.on("message", (_t, _m, p) => seen.push(p.properties?.messageExpiryInterval));
    await sub.subscribeAsync("exp/#", { qos: 1 });
    const c = await v5("sensor-a");
    await c.publishAsync("exp/1", "x", {
      qos: 1,
      properties: { messageExpiryInterval: 10_000_000 },
    });
    await c.publishAsync("exp/2", "x", { qos: 1, properties: { messageExpiryInterval: 0 } });
    await until(() => seen.length === 2, "the messages");
    assert.ok(seen[0] !== undefined && seen[0] <= 604_800 && seen[0] > 604_700, String(seen[0]));
    assert.equal(seen[1], 1);
  });

  it('a retained message keeps its MQTT 5 properties for a later subscriber, with the time left of its expiry; once expired a new subscriber does not get it (mqtt.html, "Message expiry": Retain)', async () => {
    broker = await startBroker(pki);
    const p = await v5("sensor-a");
    await p.publishAsync("cfg/1", "{}", {
      qos: 1,
      retain: true,
      properties: {
        contentType: "application/json",
        userProperties: { v: "2" },
        messageExpiryInterval: 100,
      },
    });
    await p.publishAsync("cfg/2", "x", {
      qos: 1,
      retain: true,
      properties: { messageExpiryInterval: 1 },
    });
    await new Promise((r) => setTimeout(r, 1100)); // cfg/2 expires
    const got: mqtt.IPublishPacket[] = [];
    const c = await v5("sensor-b");
    c.on("message", (_t, _m, packet) => got.push(packet));
    await c.subscribeAsync(["cfg/1", "cfg/2"], { qos: 1 });
    await until(() => got.length === 1, "cfg/1's retained message");
    await c.subscribeAsync("other/1", { qos: 1 }); // a round trip: cfg/2 would have come by now
    assert.deepEqual(
      got.map((g) => g.topic),
      ["cfg/1"],
    );
    const props = got[0].properties ?? {};
    assert.equal(props.contentType, "application/json");
    assert.deepEqual({ ...(props.userProperties as object) }, { v: "2" });
    const left = props.messageExpiryInterval ?? -1;
    assert.ok(left >= 98 && left <= 99, `time left ${left} s`);
    assert.equal(broker.retained.stats.expired, 1);
    assert.equal(broker.retained.get("cfg/2"), undefined);
  });

  it("a will's Will Delay Interval is not forwarded inside the PUBLISH (aedes #1098), its user properties are", async () => {
    broker = await startBroker(pki);
    const sub = await v5("sensor-b");
    const wills: mqtt.IPublishPacket[] = [];
    sub.on("message", (_t, _m, p) => wills.push(p));
    await sub.subscribeAsync("status/#", { qos: 1 });
    const w = await v5("sensor-a", {
      will: {
        topic: "status/gone",
        payload: Buffer.from("gone"),
        qos: 1,
        retain: false,
        properties: { willDelayInterval: 0, userProperties: { why: "lost" } },
      },
    });
    (w.stream as tls.TLSSocket).destroy();
    await until(() => wills.length === 1, "the will");
    const props = wills[0].properties as Record<string, unknown>;
    assert.equal(props.willDelayInterval, undefined);
    assert.deepEqual({ ...(props.userProperties as object) }, { why: "lost" });
  });

  describe('shared subscriptions (mqtt.html, "Shared subscriptions")', () => {
    /** `n` QoS 1 messages on `topic` from sensor-a; resolves once all are acknowledged. */
    async function publishMany(topic: string, n: number) {
      const c = await v5("sensor-a");
      for (let i = 0; i < n; i++) await c.publishAsync(topic, String(i), { qos: 1 });
    }

    it("each message goes to one member of the group, none twice; a non-shared subscriber gets all; MQTT 3.1.1 and 5 members alike", async () => {
      const filters: string[] = [];
      broker = await startBroker(pki, {
        authorizeSubscribe: (_id, filter) => void filters.push(filter),
      });
      const got = new Map<string, string[]>();
      const member = async (id: string, c: MqttClient, filter: string) => {
        got.set(id, []);
        c.on("message", (_t, m) => got.get(id)?.push(m.toString()));
        const granted = await c.subscribeAsync(filter, { qos: 1 });
        assert.equal(granted[0].qos, 1, `${id}: SUBACK granted QoS 1`);
      };
      await member("m5", await v5("sensor-b"), "$share/workers/jobs/#");
      const v4 = mqtt.connect(broker.url, {
        ...pki.credentialsFor("sensor-c"),
        clientId: "sensor-c",
        protocolVersion: 4,
        reconnectPeriod: 0,
      });
      clients.push(v4);
      await new Promise<void>((resolve) => v4.once("connect", () => resolve()));
      await member("m3", v4, "$share/workers/jobs/#");
      await member("all", await v5("console"), "jobs/#");
      const n = 40;
      await publishMany("jobs/1", n);
      const m5 = got.get("m5") ?? [];
      const m3 = got.get("m3") ?? [];
      await until(() => m5.length + m3.length === n && got.get("all")?.length === n, "deliveries");
      await new Promise((r) => setTimeout(r, 100)); // nothing more arrives
      assert.equal(m5.length + m3.length, n, "each message to one member");
      assert.deepEqual([...m5, ...m3].sort(), [...Array(n).keys()].map(String).sort());
      assert.ok(m5.length > 0 && m3.length > 0, `random distribution: ${m5.length} / ${m3.length}`);
      assert.equal(got.get("all")?.length, n);
      assert.deepEqual(filters, ["$share/workers/jobs/#", "$share/workers/jobs/#", "jobs/#"]);
      assert.equal(broker.shared.stats.groups, 1);
    });

    it("members that leave (UNSUBSCRIBE or disconnect) get nothing more; the rest get every message", async () => {
      broker = await startBroker(pki);
      const a: string[] = [];
      const b: string[] = [];
      const ca = await v5("sensor-b");
      ca.on("message", (_t, m) => a.push(m.toString()));
      await ca.subscribeAsync("$share/g/t/1", { qos: 1 });
      const cb = await v5("sensor-c");
      cb.on("message", (_t, m) => b.push(m.toString()));
      await cb.subscribeAsync("$share/g/t/1", { qos: 1 });
      await cb.unsubscribeAsync("$share/g/t/1");
      await publishMany("t/1", 10);
      await until(() => a.length === 10, "all to the remaining member");
      ca.end(true);
      await until(() => broker.shared.stats.groups === 0, "the group gone with its last member");
      assert.equal(b.length, 0);
    });

    it('a persistent session\'s shared subscription is restored when it resumes ("When it reconnects, it becomes an online member again")', async () => {
      broker = await startBroker(pki);
      const opts = { clean: false, properties: { sessionExpiryInterval: 300 } };
      const first = await v5("sensor-b", opts);
      await first.subscribeAsync("$share/g/p/1", { qos: 1 });
      await first.endAsync();
      await until(() => broker.shared.stats.groups === 0, "offline: no online member");
      const again = await v5("sensor-b", opts);
      const got: string[] = [];
      again.on("message", (t) => got.push(t));
      await until(() => broker.shared.stats.groups === 1, "online member again");
      await publishMany("p/1", 3);
      await until(() => got.length === 3, "the group's messages at the resumed session");
    });

    it("a shared subscription gets no retained message on SUBSCRIBE; a non-shared one does", async () => {
      broker = await startBroker(pki);
      const p = await v5("sensor-a");
      await p.publishAsync("state/1", "kept", { qos: 1, retain: true });
      const shared: string[] = [];
      const s = await v5("sensor-b");
      s.on("message", (t) => shared.push(t));
      await s.subscribeAsync("$share/g/state/1", { qos: 1 });
      const plain: string[] = [];
      const n = await v5("sensor-c");
      n.on("message", (t) => plain.push(t));
      await n.subscribeAsync("state/1", { qos: 1 });
      await until(() => plain.length === 1, "the retained message to the non-shared subscriber");
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(shared, []);
    });

    it("a message matching several groups goes to one member of each; a ShareName of 129 characters is refused (DISCONNECT 0x8F); the CONNACK does not say shared subscriptions are unavailable", async () => {
      broker = await startBroker(pki);
      const seen = await connackOf(broker, pki);
      assert.equal(seen.sharedSubscriptionAvailable, undefined, "absent: available");
      const g1: string[] = [];
      const g2: string[] = [];
      const c1 = await v5("sensor-b");
      c1.on("message", (t) => g1.push(t));
      await c1.subscribeAsync("$share/one/sports/tennis", { qos: 1 });
      const c2 = await v5("sensor-c");
      c2.on("message", (t) => g2.push(t));
      await c2.subscribeAsync("$share/two/sports/#", { qos: 1 });
      await publishMany("sports/tennis", 1);
      await until(() => g1.length === 1 && g2.length === 1, "one copy per group");
      const bad = await v5("console");
      const disconnect = new Promise<number | undefined>((resolve) =>
        bad.once("disconnect", (p) => resolve(p.reasonCode)),
      );
      bad.subscribe(`$share/${"n".repeat(129)}/x`, { qos: 1 });
      assert.equal(await disconnect, 0x8f);
    });

    it("the share's two slashes do not count against AWS's 7 (a filter of 7 slashes after $share/g/ is taken)", async () => {
      broker = await startBroker(pki);
      const c = await v5("sensor-b");
      const granted = await c.subscribeAsync("$share/g/a/b/c/d/e/f/g/h", { qos: 1 });
      assert.equal(granted[0].qos, 1);
      assert.equal(c.connected, true);
    });
  });

  it("onPublish receives the MQTT 5 properties get_mqtt_property() reads (none for MQTT 3.1.1)", async () => {
    const seen: (MqttProperties | undefined)[] = [];
    broker = await startBroker(pki, {
      onPublish: (_id, _t, _p, _q, properties) => void seen.push(properties),
    });
    const c = await v5("sensor-a");
    await c.publishAsync("p/1", "{}", {
      qos: 1,
      properties: {
        payloadFormatIndicator: true,
        contentType: "application/json",
        responseTopic: "p/reply",
        correlationData: Buffer.from("abc"),
        userProperties: { k: ["1", "2"], z: "3" },
      },
    });
    const v4 = mqtt.connect(broker.url, {
      ...pki.credentialsFor("sensor-b"),
      clientId: "sensor-b",
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    clients.push(v4);
    await v4.publishAsync("p/1", "{}", { qos: 1 });
    assert.deepEqual(seen, [
      {
        payloadFormatIndicator: 1,
        contentType: "application/json",
        responseTopic: "p/reply",
        correlationData: Buffer.from("abc"),
        userProperties: [
          ["k", "1"],
          ["k", "2"],
          ["z", "3"],
        ],
      },
      undefined,
    ]);
  });
});

/** The properties of the CONNACK the broker sends an MQTT 5 client, read from the wire. */
async function connackOf(broker: LocalBroker, pki: Pki): Promise<Record<string, unknown>> {
  const c = mqtt.connect(broker.url, {
    ...pki.credentialsFor("sensor-c"),
    clientId: "sensor-c",
    protocolVersion: 5,
    reconnectPeriod: 0,
    properties: { sessionExpiryInterval: 86_400 },
  });
  c.on("error", () => undefined);
  try {
    const packet = await new Promise<mqtt.IConnackPacket>((resolve) =>
      c.once("connect", (p) => resolve(p)),
    );
    return (packet.properties ?? {}) as Record<string, unknown>;
  } finally {
    c.end(true);
  }
}
