// Persistent sessions (clean session 0) are bounded as AWS IoT bounds them
// (https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html#mqtt-persistent-sessions: "Messages
// are stored according to account limit. Messages that exceed the limit will be dropped"; a session
// ends when "the persistent session expiration time elapses" and "its stored messages are
// discarded"; https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits:
// "Persistent session expiry period", 1 hour by default), with the limits made small here.
import { strict as assert } from "node:assert";
import type { Aedes } from "aedes";
import memory from "aedes-persistence";
import mqtt, { type MqttClient } from "mqtt";
import { LocalBroker } from "../../local/broker/broker";
import { OfflineSessions, type SessionLimits } from "../../local/broker/offline-sessions";
import type { Pki } from "../../local/identity/ca";
import { connectAs, testPki } from "../helpers/broker";
import { until } from "../helpers/wait";

function persistent(broker: LocalBroker, pki: Pki, thing: string): MqttClient {
  const client = mqtt.connect(broker.url, {
    ...pki.credentialsFor(thing),
    clientId: thing,
    clean: false,
    rejectUnauthorized: true,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  client.on("error", () => undefined);
  return client;
}

describe("persistent sessions: bounded queues and expiry (local/broker/offline-sessions.ts)", function () {
  this.timeout(20_000);
  let pki: Pki;
  let broker: LocalBroker | undefined;
  const clients: MqttClient[] = [];
  const start = async (sessions: Partial<SessionLimits>) => {
    broker = await LocalBroker.start({
      ca: pki.caPem,
      key: pki.server.key,
      cert: pki.server.cert,
      sessions,
    });
    return broker;
  };
  const track = (c: MqttClient) => (clients.push(c), c);
  /** Connects sensor-a persistently, subscribes to t/# at QoS 1 and goes away. */
  const leaveSession = async (b: LocalBroker) => {
    const sub = track(persistent(b, pki, "sensor-a"));
    await new Promise((r) => sub.once("connect", r));
    await sub.subscribeAsync("t/#", { qos: 1 });
    await sub.endAsync();
  };
  const publish = async (b: LocalBroker, n: number) => {
    const pub = track(connectAs(b, pki, "console"));
    await new Promise((r) => pub.once("connect", r));
    for (let i = 0; i < n; i++) await pub.publishAsync("t/x", String(i), { qos: 1 });
    await pub.endAsync();
  };

  before(async () => {
    pki = await testPki();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.end(true);
    await broker?.stop();
    broker = undefined;
  });

  it("queues at most maxMessagesPerSession for an offline session, drops the newer ones, and delivers the kept ones on return", async () => {
    const b = await start({ maxMessagesPerSession: 5 });
    const events: string[] = [];
    b.on("session", (id, reason) => events.push(`${id}: ${reason}`));
    await leaveSession(b);
    await publish(b, 10);
    assert.equal(b.sessions.queuedFor("sensor-a"), 5);
    assert.equal(b.sessions.stats.dropped.session, 5);
    assert.equal(events.length, 1, "one line per session, not one per message");
    assert.match(events[0], /sensor-a: persistent session: 5 messages queued for it/);
    const back = track(persistent(b, pki, "sensor-a"));
    const got: string[] = [];
    back.on("message", (_t, payload) => got.push(payload.toString()));
    await until(() => got.length >= 5, "the 5 queued messages");
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(got, ["0", "1", "2", "3", "4"], "what was queued first is kept");
    await until(() => b.sessions.queuedBytes === 0, "the queue emptied by the PUBACKs");
  });

  it("ends a session whose client stays away past expiryMs: subscriptions and queued messages go", async () => {
    const b = await start({ expiryMs: 300 });
    await leaveSession(b);
    await publish(b, 3);
    assert.equal(b.sessions.queuedFor("sensor-a"), 3);
    await until(() => b.sessions.stats.expired === 1, "the session's expiry");
    assert.equal(b.sessions.queuedBytes, 0);
    const back = track(persistent(b, pki, "sensor-a"));
    const connack = await new Promise<{ sessionPresent: boolean }>((r) =>
      back.once("connect", (p) => r(p)),
    );
    assert.equal(connack.sessionPresent, false, "no session left to resume");
    const got: string[] = [];
    back.on("message", (_t, payload) => got.push(payload.toString()));
    await publish(b, 1);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(got, [], "its subscription ended with it");
  });

  it("a connected persistent subscriber still receives a message not queued for it, and keeps its connection", async () => {
    const b = await start({ maxMessagesPerSession: 0 });
    const sub = track(persistent(b, pki, "sensor-a"));
    await new Promise((r) => sub.once("connect", r));
    await sub.subscribeAsync("t/#", { qos: 1 });
    const got: string[] = [];
    sub.on("message", (_t, payload) => got.push(payload.toString()));
    await publish(b, 3);
    await until(() => got.length === 3, "three deliveries");
    assert.equal(sub.connected, true);
  });
});

describe("persistent sessions: AWS IoT's queued-messages rate (local/broker/offline-sessions.ts)", () => {
  it("queues at most queuedPerSecond messages a second for offline sessions, over all of them", async () => {
    // aedes' own in-memory persistence, and a broker with no client connected: both sessions are offline.
    const persistence = memory();
    const aedes = { persistence, clients: {}, on: () => undefined };
    const enqueue = (subs: unknown[], p: unknown) =>
      (
        persistence as unknown as {
          outgoingEnqueueCombi(s: unknown[], p: unknown): Promise<void>;
        }
      ).outgoingEnqueueCombi(subs, p);
    let now = 10_000;
    const sessions = new OfflineSessions({ queuedPerSecond: 3 }, undefined, () => now);
    sessions.attach(aedes as unknown as Aedes);
    const subs = [{ clientId: "a" }, { clientId: "b" }];
    const packet = (i: number) => ({ topic: "t/x", payload: Buffer.from(String(i)), qos: 1 });
    await enqueue(subs, packet(1)); // a, b
    await enqueue(subs, packet(2)); // a; b dropped
    assert.equal(sessions.queuedFor("a") + sessions.queuedFor("b"), 3);
    assert.equal(sessions.stats.dropped.rate, 1);
    now += 1000; // the next second
    await enqueue(subs, packet(3));
    assert.equal(sessions.queuedFor("a"), 3);
    assert.equal(sessions.queuedFor("b"), 2);
  });
});
