// The publisher against the embedded broker over real TLS: exactly-once arrival at QoS 1, invalid
// messages never on the wire, the offline queue's drops counted, a broker restart survived.
import * as assert from "node:assert/strict";
import type { Pki } from "../../local/identity/ca";
import type { LocalBroker } from "../../local/broker/broker";
import { Publisher, PublisherError, type PublishOutcome } from "../../device/publisher";
import { connectAs, startBroker, subscribed, testPki } from "../helpers/broker";
import { reading } from "../helpers/telemetry";
import { until } from "../helpers/wait";

function publisherFor(broker: LocalBroker, pki: Pki, thing: string, extra = {}) {
  const reports: string[] = [];
  const p = new Publisher({
    url: broker.url,
    clientId: thing,
    ...pki.credentialsFor(thing),
    reconnectMinMs: 20,
    reconnectMaxMs: 200,
    rateLimit: 0,
    report: (l) => reports.push(l),
    ...extra,
  });
  return { p, reports };
}

describe("device publisher (embedded broker, mutual TLS)", () => {
  let pki: Pki;
  let broker: LocalBroker;
  before(async () => {
    pki = await testPki();
  });
  beforeEach(async () => {
    broker = await startBroker(pki);
  });
  afterEach(async () => {
    await broker.stop();
  });

  it("delivers N messages at QoS 1 to a subscriber exactly once", async () => {
    const N = 200;
    const sub = connectAs(broker, pki, "console");
    await subscribed(sub, "SeattleStoreTemp/#", 1);
    const got = new Map<number, number>();
    sub.on("message", (_t, payload) => {
      const ts = (JSON.parse(payload.toString()) as { timestamp: number }).timestamp;
      got.set(ts, (got.get(ts) ?? 0) + 1);
    });
    const { p } = publisherFor(broker, pki, "sensor-a");
    p.start();
    const outcomes = await Promise.all(
      Array.from({ length: N }, (_, i) => p.send("SeattleStoreTemp/1", reading("sensor-a", i))),
    );
    assert.deepEqual(new Set(outcomes.map((o) => o.status)), new Set(["acked"]));
    await until(() => got.size === N, `${N} distinct messages at the subscriber`);
    await p.stop();
    await sub.endAsync();
    const dupes = [...got.values()].filter((n) => n !== 1).length;
    assert.equal(dupes, 0, "a message arrived more than once");
    assert.equal(p.stats.acked, N);
    assert.equal(p.stats.sent, N);
  });

  it("over MQTT 5 keeps to the broker's Receive Maximum (100) even with a larger window: no DISCONNECT 0x93 (MQTT 5 [MQTT-3.3.4-7])", async () => {
    await broker.stop();
    let held = 0;
    let most = 0;
    // Reading is not paused at 100 here: only the publisher keeps to the Receive Maximum.
    broker = await startBroker(
      pki,
      {
        onPublish: () => {
          most = Math.max(most, ++held);
          return new Promise<void>((r) => setTimeout(r, 200)).then(() => void held--);
        },
      },
      0,
      { unacknowledged: { perConnection: 1000 } },
    );
    const { p } = publisherFor(broker, pki, "sensor-a", { protocol: 5, maxInFlight: 150 });
    p.start();
    const outcomes = await Promise.all(
      Array.from({ length: 150 }, (_, i) => p.send("SeattleStoreTemp/1", reading("sensor-a", i))),
    );
    await p.stop();
    assert.deepEqual(new Set(outcomes.map((o) => o.status)), new Set(["acked"]));
    assert.equal(broker.receiveMaximum.exceeded, 0);
    assert.ok(most <= 100, `${most} publishes awaiting their PUBACK at once`);
  });

  it("never sends an invalid message; counts it and reports its first failure of each kind once", async () => {
    const onBroker: string[] = [];
    broker.setHooks({
      onPublish: (_id, _topic, payload) => void onBroker.push(payload.toString()),
    });
    const { p, reports } = publisherFor(broker, pki, "sensor-a");
    p.start();
    const results: PublishOutcome[] = [];
    results.push(await p.send("t", reading("sensor-a", 1, 99))); // temperature > 60
    results.push(await p.send("t", reading("sensor-a", 2, 120))); // same kind again
    results.push(await p.send("t", { ...reading("sensor-a", 3), colour: "red" }));
    results.push(await p.send("t", reading("sensor-a", 4))); // valid
    assert.deepEqual(
      results.map((r) => r.status),
      ["invalid", "invalid", "invalid", "acked"],
    );
    assert.equal(onBroker.length, 1, "only the valid message may reach the broker");
    assert.equal(JSON.parse(onBroker[0]).timestamp, 1_700_000_000_004);
    assert.equal(p.stats.invalid, 3);
    assert.deepEqual(Object.fromEntries(p.stats.invalidByKind), {
      "temperature:maximum": 2,
      "colour:unknown": 1,
    });
    assert.equal(reports.length, 2, reports.join("\n"));
    assert.match(
      reports[0],
      /^sensor-a: invalid message not sent: temperature must be <= 60 \(got 99\)/,
    );
    assert.match(reports[1], /unknown field colour/);
    await p.stop();
  });

  it("post() without a promise: the same validation, delivery, counts and outcomes as send(), told to a callback", async () => {
    const onBroker: string[] = [];
    broker.setHooks({
      onPublish: (_id, _topic, payload) => void onBroker.push(payload.toString()),
    });
    const { p, reports } = publisherFor(broker, pki, "sensor-a");
    p.start();
    const outcomes: PublishOutcome[] = [];
    // An invalid message is settled before post() returns: nothing was queued for it.
    assert.equal(
      p.post("t", reading("sensor-a", 1, 99), (o) => outcomes.push(o)),
      undefined,
    );
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ["invalid"],
    );
    const N = 50;
    for (let i = 0; i < N; i++) p.post("t", reading("sensor-a", 100 + i), (o) => outcomes.push(o));
    // Without a callback only the counts say what became of it.
    p.post("t", reading("sensor-a", 500));
    await p.drained();
    assert.equal(outcomes.length, 1 + N, "one outcome per message that asked for one");
    assert.deepEqual(new Set(outcomes.slice(1).map((o) => o.status)), new Set(["acked"]));
    assert.equal(onBroker.length, N + 1, "every valid message reached the broker, once");
    assert.deepEqual(
      {
        submitted: p.stats.submitted,
        invalid: p.stats.invalid,
        sent: p.stats.sent,
        acked: p.stats.acked,
      },
      { submitted: N + 2, invalid: 1, sent: N + 1, acked: N + 1 },
    );
    assert.match(reports[0], /invalid message not sent: temperature must be <= 60 \(got 99\)/);
    await p.stop();
    // A stopping publisher takes nothing more: the outcome says so at once, and it is counted.
    const late: PublishOutcome[] = [];
    p.post("t", reading("sensor-a", 999), (o) => late.push(o));
    assert.deepEqual(late, [{ status: "unsent", reason: "the publisher is stopping" }]);
    assert.equal(p.stats.unsent, 1);
  });

  it("refuses QoS 2 with a clear error", () => {
    assert.throws(
      () => new Publisher({ url: broker.url, clientId: "sensor-a", key: "", cert: "", qos: 2 }),
      (e: unknown) =>
        e instanceof PublisherError && /QoS 2 is not supported by AWS IoT Core/.test(e.message),
    );
  });

  it("gives mqtt.js no debug logger of its own unless DEBUG is set (a logger per client, and an argument array per call even when off)", async () => {
    const namespaceOf = (p: Publisher): unknown =>
      (p as unknown as { client?: { log?: { namespace?: unknown } } }).client?.log?.namespace;
    const saved = process.env.DEBUG;
    const started: Publisher[] = [];
    try {
      delete process.env.DEBUG;
      const quiet = publisherFor(broker, pki, "sensor-a").p;
      started.push(quiet);
      quiet.start();
      assert.equal(namespaceOf(quiet), undefined, "no mqtt.js debug logger without DEBUG");
      process.env.DEBUG = "nothing-of-ours";
      const debugging = publisherFor(broker, pki, "sensor-b").p;
      started.push(debugging);
      debugging.start();
      assert.equal(namespaceOf(debugging), "mqttjs:client", "mqtt.js's own logger with DEBUG");
    } finally {
      if (saved === undefined) delete process.env.DEBUG;
      else process.env.DEBUG = saved;
      await Promise.all(started.map((p) => p.stop(100)));
    }
  });

  it("publishes at QoS 0 when asked", async () => {
    const sub = connectAs(broker, pki, "console");
    await subscribed(sub, "q0", 0);
    let got = 0;
    sub.on("message", () => got++);
    const { p } = publisherFor(broker, pki, "sensor-a", { qos: 0 });
    p.start();
    await p.waitConnected();
    for (let i = 0; i < 5; i++) await p.send("q0", reading("sensor-a", i));
    await until(() => got === 5, "5 QoS 0 messages");
    await p.stop();
    await sub.endAsync();
  });

  it("bounds the offline queue: drops the oldest, counts and reports it", async () => {
    await broker.stop(); // nobody listens: everything waits in the queue
    const { p, reports } = publisherFor(broker, pki, "sensor-a", { maxQueue: 5 });
    p.start();
    const outcomes = Array.from({ length: 8 }, (_, i) => p.send("t", reading("sensor-a", i)));
    const first3 = await Promise.all(outcomes.slice(0, 3));
    assert.deepEqual(
      first3.map((o) => o.status),
      ["dropped", "dropped", "dropped"],
    );
    assert.equal(p.stats.dropped, 3);
    assert.equal(p.pending, 5);
    assert.equal(reports.filter((r) => /offline queue full/.test(r)).length, 1);
    await p.stop(0);
    const rest = await Promise.all(outcomes.slice(3));
    assert.deepEqual(new Set(rest.map((o) => o.status)), new Set(["unsent"]));
    assert.equal(p.stats.unsent, 5);
    broker = await startBroker(pki); // for afterEach
  });

  it("reports a refused connection and stops instead of reconnecting", async () => {
    // sensor-b's certificate with client id sensor-a: a broker in the stricter client-id mode
    // (off by default since issue 24, as AWS leaves the client id to the policy) refuses it.
    await broker.stop();
    broker = await startBroker(pki, undefined, 0, { requireThingClientId: true });
    const p = new Publisher({
      url: broker.url,
      clientId: "sensor-a",
      ...pki.credentialsFor("sensor-b"),
      reconnectMinMs: 20,
    });
    p.start();
    await assert.rejects(
      p.waitConnected(),
      /the broker refused the connection: Identifier rejected/,
    );
    const outcome = await p.send("t", reading("sensor-a", 1));
    assert.equal(outcome.status, "unsent");
    await p.stop(0);
  });

  it("survives a broker restart mid-run: reconnects and loses no acknowledged message", async () => {
    const port = broker.port;
    const received = new Set<number>();
    const record = (_id: unknown, _t: string, payload: Buffer) =>
      void received.add((JSON.parse(payload.toString()) as { timestamp: number }).timestamp);
    broker.setHooks({ onPublish: record });
    const { p } = publisherFor(broker, pki, "sensor-a", { maxInFlight: 5, publishTimeoutMs: 2000 });
    p.start();
    const acked = new Set<number>();
    const N = 300;
    const all: Array<Promise<void>> = [];
    for (let i = 0; i < N; i++) {
      const msg = reading("sensor-a", i);
      all.push(
        p.send("SeattleStoreTemp/1", msg).then((o) => {
          if (o.status === "acked") acked.add(msg.timestamp);
        }),
      );
    }
    await until(() => acked.size >= 50, "the first acknowledgements");
    await broker.stop(); // mid-run: messages are in flight and queued
    broker = await startBroker(pki, { onPublish: record }, port);
    await Promise.all(all);
    assert.equal(
      acked.size,
      N,
      `all ${N} acknowledged in the end (stats ${JSON.stringify({ ...p.stats, invalidByKind: undefined })})`,
    );
    for (const ts of acked)
      assert.ok(received.has(ts), `acknowledged message ${ts} never reached a broker`);
    assert.ok(p.stats.reconnects >= 1, "the publisher must have reconnected");
    await p.stop();
  });

  it("gives up on a message when the broker disconnects it on every attempt (policy denial)", async () => {
    broker.setHooks({
      authorizePublish: (_id, topic) => (topic === "denied" ? "policy" : undefined),
    });
    const { p, reports } = publisherFor(broker, pki, "sensor-a", { maxAttempts: 2 });
    p.start();
    const outcome = await p.send("denied", reading("sensor-a", 1));
    assert.equal(outcome.status, "rejected");
    assert.equal(p.stats.rejected, 1);
    assert.equal(broker.stats.publishDenials, 2);
    assert.match(
      reports.join("\n"),
      /message to denied rejected: the broker closed the connection/,
    );
    const ok = await p.send("allowed", reading("sensor-a", 2));
    assert.equal(ok.status, "acked", "the device goes on after the rejection");
    await p.stop();
  });

  /** A hook that withholds the PUBACK of every publish to `topic` while `holding()` is true. */
  function withholding(topic: string, holding: () => boolean) {
    const held: Array<() => void> = [];
    let seen = 0;
    broker.setHooks({
      onPublish: (_id, t) => {
        if (t !== topic) return;
        seen++;
        if (!holding()) return;
        return new Promise<void>((resolve) => held.push(resolve));
      },
    });
    return {
      release: () => held.splice(0).forEach((r) => r()),
      seen: () => seen,
    };
  }

  it("times out a publish that is never acknowledged, sends it again, then gives up", async () => {
    const hold = withholding("held", () => true);
    const { p, reports } = publisherFor(broker, pki, "sensor-a", {
      publishTimeoutMs: 100,
      maxAttempts: 2,
    });
    try {
      p.start();
      const outcome = await p.send("held", reading("sensor-a", 1));
      assert.deepEqual(outcome, {
        status: "rejected",
        reason: "no acknowledgement after 2 attempt(s) of 100 ms",
      });
      const { sent, acked, timeouts, retries, rejected, unsent } = p.stats;
      assert.deepEqual(
        { sent, acked, timeouts, retries, rejected, unsent },
        { sent: 1, acked: 0, timeouts: 2, retries: 1, rejected: 1, unsent: 0 },
      );
      assert.match(reports.join("\n"), /message to held rejected: no acknowledgement after 2/);
      assert.equal(p.pending, 0);
    } finally {
      hold.release();
      await p.stop();
    }
  });

  it("acknowledges on the next attempt every publish of a window that timed out", async () => {
    let holding = true;
    const hold = withholding("slow", () => holding);
    const { p } = publisherFor(broker, pki, "sensor-a", { maxInFlight: 5, publishTimeoutMs: 500 });
    try {
      p.start();
      const outcomes = Array.from({ length: 5 }, (_, i) => p.send("slow", reading("sensor-a", i)));
      await until(() => p.stats.timeouts >= 5, "the five publishes to time out");
      holding = false;
      hold.release();
      assert.deepEqual(
        (await Promise.all(outcomes)).map((o) => o.status),
        ["acked", "acked", "acked", "acked", "acked"],
      );
      const { sent, acked, timeouts, retries, rejected } = p.stats;
      assert.deepEqual(
        { sent, acked, timeouts, retries, rejected },
        { sent: 5, acked: 5, timeouts: 5, retries: 5, rejected: 0 },
      );
      assert.ok(hold.seen() >= 5, "the broker saw the first attempts");
    } finally {
      hold.release();
      await p.stop();
    }
  });
});
