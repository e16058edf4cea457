// What AWS IoT refuses, the embedded broker refuses, before it buffers the packet: payloads over
// 128 KB, a 200 MiB PUBLISH or a 256 MiB CONNECT announced in a header, QoS 2 (publish, subscribe,
// will), topics that are not well-formed UTF-8, hold U+0000 or break the 256-byte / 7-slash limits,
// more than 8 filters per SUBSCRIBE, malformed packets, and a will whose topic a PUBLISH could not
// have. Each closes the connection (MQTT 3.1.1 has no other way to refuse), nothing is acknowledged
// or forwarded, and each is counted and logged. A client id over 128 bytes gets CONNACK 0x02. Basic
// Ingest topics reach their rule and no subscriber, and their prefix is not counted.
//
// AWS: https://docs.aws.amazon.com/general/latest/gr/iot-core.html#iot-protocol-limits,
// https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html#mqtt-differences and
// https://docs.aws.amazon.com/iot/latest/developerguide/iot-basic-ingest.html;
// MQTT 3.1.1 sections 1.5.3 (UTF-8), 3.1.3 (client id, will topic), 3.3.1 (QoS), 4.7.1 (wildcards).
import * as assert from "node:assert/strict";
import { LocalBroker } from "../../local/broker/broker";
import type { Pki } from "../../local/identity/ca";
import type { GuardEvent } from "../../local/broker/connection-guard";
import { IOT_MAX_PAYLOAD_BYTES } from "../../core/iot-limits";
import { testPki } from "../helpers/broker";
import { until } from "../helpers/wait";
import { connectPacket, fixedHeader, publishPacket, RawClient, subscribePacket } from "./raw-mqtt";

const PUBACK = 4;
const PUBREC = 5;
const SUBACK = 9;
const PUBLISH = 3;

describe("broker limits (AWS IoT's, refused at the header)", function () {
  this.timeout(60_000);
  let pki: Pki;
  let broker: LocalBroker;
  let published: string[];
  let events: GuardEvent[];
  let watcher: RawClient;

  before(async () => {
    pki = await testPki();
  });
  beforeEach(async () => {
    published = [];
    events = [];
    broker = await LocalBroker.start({
      ca: pki.caPem,
      key: pki.server.key,
      cert: pki.server.cert,
      hooks: { onPublish: (_id, topic) => void published.push(topic) },
    });
    broker.on("guard", (e) => events.push(e));
    // The console watches everything: nothing refused may be forwarded to it.
    watcher = await RawClient.open(broker.port, pki.credentialsFor("console"));
    assert.equal(await watcher.connect("console"), 0);
    await watcher.write(subscribePacket([["#", 1]]));
    assert.ok(await watcher.next(SUBACK));
  });
  afterEach(async () => {
    watcher.end();
    await broker.stop();
  });

  async function device(): Promise<RawClient> {
    const c = await RawClient.open(broker.port, pki.credentialsFor("sensor-a"));
    assert.equal(await c.connect("sensor-a"), 0);
    return c;
  }

  /** Sends `bytes`, expects the broker to close the connection and to have counted `kind`. */
  async function refused(c: RawClient, bytes: Buffer, kind: GuardEvent["kind"], reason: RegExp) {
    await c.write(bytes);
    await c.closed;
    await until(() => events.some((e) => e.kind === kind), `a ${kind} event`);
    const e = events.find((x) => x.kind === kind);
    assert.match(e?.reason ?? "", reason);
    assert.match(e?.reason ?? "", /disconnected$/);
    assert.equal(broker.guard.stats.refusedPackets[kind as "qos2"], 1);
    assert.equal(c.received.filter((r) => r.type === PUBACK || r.type === PUBREC).length, 0);
    // A publish after the refusal, from someone else, still flows: the broker is fine.
    const other = await RawClient.open(broker.port, pki.credentialsFor("sensor-b"));
    assert.equal(await other.connect("sensor-b"), 0);
    await other.write(publishPacket("after/refusal", Buffer.from("ok"), 1, 9));
    assert.ok(await other.next(PUBACK), "a normal publish is acknowledged afterwards");
    const got = await watcher.next(PUBLISH);
    assert.ok(got && got.body.includes(Buffer.from("after/refusal")));
    assert.deepEqual(published, ["after/refusal"], "only the normal publish reached the rule");
    other.end();
  }

  it("accepts a payload of exactly 128 KB (131,072 bytes)", async () => {
    const c = await device();
    await c.write(publishPacket("t/max", Buffer.alloc(IOT_MAX_PAYLOAD_BYTES, 1), 1, 3));
    assert.ok(await c.next(PUBACK));
    assert.deepEqual(published, ["t/max"]);
    c.end();
  });

  it("refuses a payload of 128 KB + 1 byte", async () => {
    const c = await device();
    await refused(
      c,
      publishPacket("t/over", Buffer.alloc(IOT_MAX_PAYLOAD_BYTES + 1, 1), 1, 3),
      "too-large",
      /PUBLISH payload of 131073 bytes; AWS IoT allows 131072/,
    );
  });

  it("refuses a 200 MiB PUBLISH at its header, before the body is buffered", async () => {
    const c = await device();
    const size = 200 * 1024 * 1024;
    await c.write(fixedHeader(3, 2, size));
    // Keep sending the body until the broker hangs up; count what it let through.
    const chunk = Buffer.alloc(1024 * 1024, 7);
    let sent = 0;
    while (!c.isClosed && sent < size) {
      await c.write(chunk);
      sent += chunk.length;
    }
    await c.closed;
    assert.ok(sent < 64 * 1024 * 1024, `the broker read ${sent} bytes of a refused packet`);
    await until(() => broker.guard.stats.refusedPackets["too-large"] === 1, "the refusal");
    assert.match(events[0].reason, /PUBLISH of 209715200 bytes announced/);
  });

  it("refuses a CONNECT announcing 256 MiB at its header", async () => {
    const c = await RawClient.open(broker.port, pki.credentialsFor("sensor-a"));
    await c.write(fixedHeader(1, 0, 256 * 1024 * 1024 - 1));
    await c.write(Buffer.alloc(64 * 1024));
    await c.closed;
    await until(() => broker.guard.stats.refusedPackets["too-large"] === 1, "the refusal");
    assert.match(
      events[0].reason,
      /CONNECT of 268435455 bytes announced; AWS IoT allows 131072 bytes/,
    );
    assert.equal(broker.stats.connects, 1, "only the watcher is connected");
  });

  it("refuses a QoS 2 PUBLISH: no PUBREC, nothing forwarded (AWS IoT supports QoS 0 and 1)", async () => {
    const c = await device();
    await refused(c, publishPacket("t/qos2", Buffer.from("x"), 2, 5), "qos2", /QoS 2/);
  });

  it("refuses a QoS 2 SUBSCRIBE", async () => {
    const c = await device();
    await c.write(subscribePacket([["t/#", 2]], 4));
    await c.closed;
    assert.equal(c.received.filter((r) => r.type === SUBACK).length, 0, "no SUBACK, as AWS IoT");
    assert.equal(broker.guard.stats.refusedPackets.qos2, 1);
  });

  it("refuses a CONNECT whose will has QoS 2", async () => {
    const c = await RawClient.open(broker.port, pki.credentialsFor("sensor-a"));
    await c.write(connectPacket("sensor-a", { will: { topic: "t/will", qos: 2 } }));
    await c.closed;
    assert.equal(c.received.length, 0, "no CONNACK");
    assert.equal(broker.guard.stats.refusedPackets.qos2, 1);
  });

  for (const [what, topic, reason] of [
    ["ill-formed UTF-8", Buffer.from([0x74, 0x2f, 0xc3, 0x28]), /not well-formed UTF-8/],
    ["a UTF-16 surrogate", Buffer.from([0x74, 0x2f, 0xed, 0xa0, 0x80]), /not well-formed UTF-8/],
    ["U+0000", Buffer.from("t/a\u0000b"), /contains U\+0000/],
    ["257 bytes", Buffer.from(`t/${"x".repeat(255)}`), /257 bytes; AWS IoT allows 256/],
    ["8 slashes", Buffer.from("a/b/c/d/e/f/g/h/i"), /has 8 slashes; AWS IoT allows 7/],
  ] as const) {
    it(`refuses a PUBLISH topic with ${what}, and forwards nothing`, async () => {
      const c = await device();
      await refused(c, publishPacket(topic, Buffer.from("x"), 1, 6), "topic", reason);
    });
  }

  it("accepts 7 slashes and 256 bytes, and leaves Basic Ingest's $aws/rules/<rule>/ prefix out of the count", async () => {
    const c = await device();
    const topics = [
      "a/b/c/d/e/f/g/h",
      `t/${"x".repeat(254)}`,
      `$aws/rules/sensor_rule/a/b/c/d/e/f/g/${"y".repeat(200)}`,
    ];
    for (const [i, t] of topics.entries()) {
      await c.write(publishPacket(t, Buffer.from("x"), 1, 20 + i));
      assert.ok(await c.next(PUBACK), t);
    }
    c.end();
  });

  // A will is a PUBLISH the broker makes later for the client: its topic is held to the same rules,
  // and the CONNECT is refused (closed without CONNACK) rather than the will published.
  for (const [what, topic, reason] of [
    ["9 levels (8 slashes)", Buffer.from("a/b/c/d/e/f/g/h/i"), /has 8 slashes; AWS IoT allows 7/],
    ["300 bytes", Buffer.from(`t/${"x".repeat(298)}`), /300 bytes; AWS IoT allows 256/],
    ["ill-formed UTF-8", Buffer.from([0x74, 0x2f, 0xc3, 0x28]), /not well-formed UTF-8/],
    ["U+0000", Buffer.from("t/a\u0000b"), /contains U\+0000/],
    ["#", Buffer.from("#"), /contains a wildcard \(\+ or #\)/],
    ["+", Buffer.from("t/+/x"), /contains a wildcard \(\+ or #\)/],
  ] as const) {
    it(`refuses a CONNECT whose will topic has ${what}, and publishes no will`, async () => {
      const c = await RawClient.open(broker.port, pki.credentialsFor("sensor-a"));
      await c.write(connectPacket("sensor-a", { will: { topic, qos: 1 } }));
      await until(() => c.isClosed || c.received.length > 0, "the broker's answer", 5000);
      assert.deepEqual(c.received, [], "no CONNACK");
      await c.closed;
      await until(() => broker.guard.stats.refusedPackets.topic === 1, "the refusal counted");
      const e = events.find((x) => x.kind === "topic");
      assert.match(e?.reason ?? "", /^CONNECT will topic /);
      assert.match(e?.reason ?? "", reason);
      assert.equal(broker.stats.connects, 1, "only the watcher is connected");
      // The will would be published when the connection ends: nothing reached the rule.
      const other = await device();
      await other.write(publishPacket("after/will", Buffer.from("ok"), 1, 9));
      assert.ok(await other.next(PUBACK));
      assert.deepEqual(published, ["after/will"], "no will reached the rule");
      other.end();
    });
  }

  it("accepts a will on a valid topic and publishes it when the connection drops", async () => {
    const c = await RawClient.open(broker.port, pki.credentialsFor("sensor-a"));
    assert.equal(await c.connect("sensor-a", { will: { topic: "t/will", qos: 1 } }), 0);
    c.end();
    await until(() => published.includes("t/will"), "the will");
  });

  it("refuses a client id of 129 bytes with CONNACK 0x02 (AWS IoT: 128 bytes), accepts 128", async () => {
    await broker.stop();
    const refusals: string[] = [];
    // Client ids other than the thing's name allowed: only the length can refuse these.
    broker = await LocalBroker.start({
      ca: pki.caPem,
      key: pki.server.key,
      cert: pki.server.cert,
      requireThingClientId: false,
    });
    broker.on("connectRefused", (_id, _thing, reason) => refusals.push(reason));
    const long = await RawClient.open(broker.port, pki.credentialsFor("sensor-a"));
    assert.equal(await long.connect("é".repeat(64) + "x"), 2, "identifier rejected");
    await long.closed;
    assert.deepEqual(refusals, ["client id of 129 bytes; AWS IoT allows 128"]);
    assert.equal(broker.stats.connectRefusals, 1);
    const max = await RawClient.open(broker.port, pki.credentialsFor("sensor-a"));
    assert.equal(await max.connect("x".repeat(128)), 0);
    max.end();
  });

  it("does not count Basic Ingest's $aws/rules/<rule>/ prefix: 256 bytes after it pass, 257 do not", async () => {
    const c = await device();
    const rule = "r".repeat(128); // the longest rule name (CreateTopicRule: 1-128)
    for (const [i, t] of [
      `$aws/rules/sensor_rule/t/${"x".repeat(254)}`,
      `$aws/rules/${rule}/t/${"x".repeat(254)}`,
    ].entries()) {
      await c.write(publishPacket(t, Buffer.from("x"), 1, 30 + i));
      assert.ok(await c.next(PUBACK), `${t.length} bytes on the wire`);
    }
    assert.equal(published.length, 2, "both reached the rule");
    published.length = 0;
    await refused(
      c,
      publishPacket(`$aws/rules/sensor_rule/t/${"x".repeat(255)}`, Buffer.from("x"), 1, 32),
      "topic",
      /is 257 bytes; AWS IoT allows 256/,
    );
  });

  it("delivers Basic Ingest messages to no subscriber, and refuses subscriptions to $aws/rules/ (SUBACK 0x80)", async () => {
    // The watcher (the console, subscribed to #) subscribes to what could match Basic Ingest too.
    await watcher.write(
      subscribePacket(
        [
          ["$aws/#", 1],
          ["$aws/rules/#", 1],
          ["$aws/rules/sensor_rule/t", 1],
          ["t/#", 1],
        ],
        3,
      ),
    );
    const suback = await watcher.next(SUBACK);
    assert.deepEqual([...(suback?.body.subarray(2) ?? [])], [1, 0x80, 0x80, 1]);
    const c = await device();
    await c.write(publishPacket("$aws/rules/sensor_rule/t", Buffer.from("x"), 1, 40));
    assert.ok(await c.next(PUBACK));
    await c.write(publishPacket("t/after", Buffer.from("y"), 1, 41));
    assert.ok(await c.next(PUBACK));
    // Deliveries to one client keep their order: the first to arrive must be t/after.
    const got = await watcher.next(PUBLISH);
    assert.equal(got?.body.subarray(2, 2 + got.body.readUInt16BE(0)).toString(), "t/after");
    assert.deepEqual(published, ["$aws/rules/sensor_rule/t", "t/after"], "the rule had both");
    c.end();
  });

  it("refuses a SUBSCRIBE with 9 filters (AWS IoT: 8 per request) or a filter holding U+0000", async () => {
    const c = await device();
    const nine = Array.from({ length: 9 }, (_, i): [string, number] => [`t/${i}`, 1]);
    await c.write(subscribePacket(nine, 7));
    await c.closed;
    assert.equal(broker.guard.stats.refusedPackets["too-large"], 1);
    const d = await device();
    await d.write(subscribePacket([["t/\u0000/#", 1]], 8));
    await d.closed;
    assert.equal(broker.guard.stats.refusedPackets.topic, 1);
  });

  it("refuses malformed MQTT: a remaining length of 5 bytes, a packet only servers send", async () => {
    const a = await device();
    await a.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]));
    await a.closed;
    const b = await device();
    await b.write(Buffer.from([0x20, 0x02, 0x00, 0x00])); // CONNACK
    await b.closed;
    assert.equal(broker.guard.stats.refusedPackets.malformed, 2);
  });

  it("holds at most maxBufferedPacketBytes of partly received packets over all clients", async () => {
    await broker.stop();
    broker = await LocalBroker.start({
      ca: pki.caPem,
      key: pki.server.key,
      cert: pki.server.cert,
      limits: { maxBufferedPacketBytes: 300 * 1024 },
    });
    broker.on("guard", (e) => events.push(e));
    const clients: RawClient[] = [];
    for (const thing of ["sensor-a", "sensor-b", "sensor-c"]) {
      const c = await RawClient.open(broker.port, pki.credentialsFor(thing));
      assert.equal(await c.connect(thing), 0);
      // A 128 KB publish whose body trickles in: only its first bytes are sent.
      const whole = publishPacket("t/slow", Buffer.alloc(IOT_MAX_PAYLOAD_BYTES, 2), 1, 1);
      await c.write(whole.subarray(0, 400));
      clients.push(c);
    }
    await clients[2].closed;
    assert.equal(broker.guard.stats.refusedPackets.busy, 1);
    assert.equal(clients[0].isClosed || clients[1].isClosed, false, "the first two are held");
    assert.match(events.find((e) => e.kind === "busy")?.reason ?? "", /partly received packets/);
    for (const c of clients) c.end();
  });

  it("closes a client without a keep-alive of its own after 1.5 × the default keep-alive (AWS: 1,200 s)", async () => {
    await broker.stop();
    broker = await LocalBroker.start({
      ca: pki.caPem,
      key: pki.server.key,
      cert: pki.server.cert,
      limits: { defaultKeepaliveSeconds: 0.2 },
    });
    const c = await RawClient.open(broker.port, pki.credentialsFor("sensor-a"));
    assert.equal(await c.connect("sensor-a", { keepalive: 0 }), 0);
    await c.closed;
    assert.equal(broker.guard.stats.idleTimeouts, 1);
  });
});
