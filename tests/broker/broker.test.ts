// The embedded broker over real TLS sockets: who gets in, what the hooks can refuse, and that
// the PUBACK waits for onPublish.
import * as assert from "node:assert/strict";
import { createHash, X509Certificate } from "node:crypto";
import * as tls from "node:tls";
import mqtt, { ErrorWithSubackPacket } from "mqtt";
import { createCertificateAuthority, issueCertificate, type Pki } from "../../local/identity/ca";
import type { LocalBroker, ClientIdentity } from "../../local/broker/broker";
import {
  connectAs,
  connectOutcome,
  expiredLeaf,
  startBroker,
  subscribed,
  testPki,
} from "../helpers/broker";
import { until } from "../helpers/wait";

describe("local broker (mutual TLS)", () => {
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

  /** Connects as sensor-a with these TLS options and expects the broker to refuse the handshake. */
  async function expectTlsRefusal(tlsOptions: { key?: string; cert?: string }) {
    const c = mqtt.connect(broker.url, {
      ...tlsOptions,
      ca: pki.caPem,
      clientId: "sensor-a",
      reconnectPeriod: 0,
    });
    c.on("error", () => undefined);
    assert.notEqual(await connectOutcome(c), "connect");
    await until(() => broker.stats.tlsRefusals === 1, "the TLS refusal");
    assert.equal(broker.stats.connects, 0);
    c.end(true);
  }

  it("accepts a thing whose client id is its certificate's CN", async () => {
    const c = connectAs(broker, pki, "sensor-a");
    assert.equal(await connectOutcome(c), "connect");
    await until(() => broker.stats.connects === 1, "the connect count");
    await c.endAsync();
  });

  it("accepts a client id other than its certificate's thing by default: the policy alone decides, as on AWS", async () => {
    // AWS IoT has no client-id rule of its own: iot:Connect in the policy decides (issue 24).
    const c = connectAs(broker, pki, "sensor-a", "not-a-thing");
    assert.equal(await connectOutcome(c), "connect");
    assert.equal(broker.stats.connectRefusals, 0);
    await c.endAsync();
  });

  it("with requireThingClientId, refuses a client id that is not its certificate's thing (CONNACK refused, logged)", async () => {
    // The stricter mode is off by default now (issue 24); this test turns it on to keep checking it.
    await broker.stop();
    broker = await startBroker(pki, undefined, 0, { requireThingClientId: true });
    const events: string[] = [];
    broker.on("connectRefused", (clientId, thing, reason) =>
      events.push(`${clientId}/${thing}: ${reason}`),
    );
    const c = connectAs(broker, pki, "sensor-a", "sensor-b");
    const outcome = await connectOutcome(c);
    assert.ok(outcome instanceof Error, `expected a refusal, got ${String(outcome)}`);
    assert.match(outcome.message, /Identifier rejected/);
    assert.equal(broker.stats.connectRefusals, 1);
    assert.match(events[0], /sensor-b\/sensor-a: client id "sensor-b" does not match/);
    c.end(true);
  });

  it("refuses a client without a certificate at the TLS handshake", async () => {
    await expectTlsRefusal({});
  });

  it("refuses a certificate from another CA", async () => {
    const otherCa = await createCertificateAuthority("someone else's CA");
    const foreign = await issueCertificate(otherCa, "sensor-a");
    await expectTlsRefusal(foreign);
  });

  it("refuses an expired certificate from its own CA", async () => {
    const expired = await expiredLeaf(pki);
    await expectTlsRefusal(expired);
  });

  it("refuses a client that does not trust the broker (server certificate checked)", async () => {
    const otherCa = await createCertificateAuthority("a CA the broker does not use");
    const c = mqtt.connect(broker.url, {
      ...pki.credentialsFor("sensor-a"),
      ca: otherCa.certPem,
      clientId: "sensor-a",
      rejectUnauthorized: true,
      reconnectPeriod: 0,
    });
    c.on("error", () => undefined);
    const outcome = await connectOutcome(c);
    assert.ok(outcome instanceof Error, "the client must reject the broker's certificate");
    c.end(true);
  });

  it("disconnects a client whose publish authorizePublish refuses, and keeps $SYS/ reserved", async () => {
    const denied: string[] = [];
    broker.setHooks({
      authorizePublish: (id, topic) =>
        topic === "forbidden" ? `${id.thingName} may not` : undefined,
    });
    broker.on("publishDenied", (id, topic, reason) =>
      denied.push(`${id.clientId} ${topic} ${reason}`),
    );
    const c = connectAs(broker, pki, "sensor-a");
    await connectOutcome(c);
    await c.publishAsync("allowed", "1", { qos: 1 });
    const closed = new Promise<void>((r) => c.once("close", () => r()));
    c.publish("forbidden", "2", { qos: 1 });
    await closed;
    assert.deepEqual(denied, ["sensor-a forbidden sensor-a may not"]);
    assert.equal(broker.stats.publishDenials, 1);
    c.end(true);

    const d = connectAs(broker, pki, "sensor-b");
    await connectOutcome(d);
    const closedToo = new Promise<void>((r) => d.once("close", () => r()));
    d.publish("$SYS/fake", "x", { qos: 1 });
    await closedToo;
    d.end(true);
  });

  it("sends the PUBACK only after onPublish's promise resolves", async () => {
    let release: () => void = () => undefined;
    const seen: Array<{ id: ClientIdentity; topic: string; payload: string; qos: number }> = [];
    broker.setHooks({
      onPublish: (id, topic, payload, qos) => {
        seen.push({ id, topic, payload: payload.toString(), qos });
        return new Promise<void>((r) => (release = r));
      },
    });
    const c = connectAs(broker, pki, "sensor-a");
    await connectOutcome(c);
    let acked = false;
    const ack = c.publishAsync("t/1", "payload", { qos: 1 }).then(() => (acked = true));
    await until(() => seen.length === 1, "onPublish");
    // Give the broker every chance to ack early: a round trip on the same connection.
    await c.subscribeAsync("nothing/here");
    assert.equal(acked, false, "PUBACK arrived before onPublish resolved");
    release();
    await ack;
    const { certificate, ...id } = seen[0].id;
    const der = new X509Certificate(pki.credentialsFor("sensor-a").cert).raw;
    assert.ok(certificate?.raw.equals(der), "the identity carries the client's certificate");
    assert.deepEqual(
      { ...seen[0], id },
      {
        id: {
          clientId: "sensor-a",
          thingName: "sensor-a",
          kind: "thing",
          certificateId: createHash("sha256").update(der).digest("hex"),
          remoteAddress: "127.0.0.1",
        },
        topic: "t/1",
        payload: "payload",
        qos: 1,
      },
    );
    await c.endAsync();
  });

  it("sends the PUBACKs in arrival order while later publishes reach onPublish before an earlier one is durable", async () => {
    // held/… wait for the test to release them, in reverse; free/… are acknowledged at once by the
    // hook, so only the order of the lane can hold their PUBACKs back.
    const release = new Map<string, () => void>();
    const seen: string[] = [];
    broker.setHooks({
      onPublish: (_id, topic) => {
        seen.push(topic);
        if (topic.startsWith("free/")) return;
        return new Promise<void>((r) => release.set(topic, r));
      },
    });
    const c = connectAs(broker, pki, "sensor-a");
    await connectOutcome(c);
    const sent: number[] = [];
    const acked: number[] = [];
    c.on("packetsend", (p) => {
      if (p.cmd === "publish" && p.messageId !== undefined) sent.push(p.messageId);
    });
    c.on("packetreceive", (p) => {
      if (p.cmd === "puback" && p.messageId !== undefined) acked.push(p.messageId);
    });
    const topics = ["held/1", "held/2", "free/3", "held/4", "free/5"];
    const acks: Array<Promise<unknown>> = [];
    for (const topic of topics) {
      // One publish at a time, each in a socket read of its own: the next is sent only once the
      // broker has handed the previous one to onPublish (which has not resolved).
      acks.push(c.publishAsync(topic, "x", { qos: 1 }));
      await until(() => seen.length === acks.length, `${topic} to reach onPublish`);
    }
    assert.deepEqual(seen, topics, "later publishes reached onPublish while held/1 waited");
    for (const topic of ["held/4", "held/2"]) release.get(topic)?.();
    await c.subscribeAsync("nothing/here"); // a round trip on the same connection
    assert.deepEqual(acked, [], "no PUBACK may overtake held/1's");
    release.get("held/1")?.();
    await Promise.all(acks);
    assert.equal(sent.length, topics.length);
    assert.deepEqual(acked, sent, "PUBACKs in the order the publishes were sent");
    assert.equal(broker.stats.publishes, topics.length);
    await c.endAsync();
  });

  it("withholds the PUBACK and disconnects when onPublish fails", async () => {
    broker.setHooks({ onPublish: () => Promise.reject(new Error("disk full")) });
    const failures: string[] = [];
    broker.on("publishFailed", (_id, _t, err) => failures.push(err.message));
    const c = connectAs(broker, pki, "sensor-a");
    await connectOutcome(c);
    const closed = new Promise<void>((r) => c.once("close", () => r()));
    let acked = false;
    c.publish("t/1", "x", { qos: 1 }, (err) => (acked = !err));
    await closed;
    assert.equal(acked, false);
    assert.deepEqual(failures, ["disk full"]);
    c.end(true);
  });

  it("applies authorizeSubscribe (SUBACK failure) and authorizeReceive (per delivery)", async () => {
    broker.setHooks({
      authorizeSubscribe: (_id, filter) => (filter === "secret/#" ? "not for you" : undefined),
      authorizeReceive: (id, topic) => !(id.kind === "console" && topic === "data/hidden"),
    });
    const sub = connectAs(broker, pki, "console");
    const refused: unknown = await subscribed(sub, "secret/#").then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(refused instanceof ErrorWithSubackPacket, "the SUBACK must carry a failure");
    assert.deepEqual(refused.packet.granted, [128]);
    await subscribed(sub, "data/#");
    const got: string[] = [];
    sub.on("message", (topic) => got.push(topic));
    const pub = connectAs(broker, pki, "sensor-a");
    await connectOutcome(pub);
    await pub.publishAsync("data/hidden", "1", { qos: 1 });
    await pub.publishAsync("data/shown", "2", { qos: 1 });
    await until(() => got.length >= 1, "a delivery");
    await pub.publishAsync("data/shown", "3", { qos: 1 });
    await until(() => got.length >= 2, "the second delivery");
    assert.deepEqual(got, ["data/shown", "data/shown"]);
    assert.equal(broker.stats.subscribeDenials, 1);
    await Promise.all([sub.endAsync(), pub.endAsync()]);
  });

  it("publishes as the service to every subscriber the policy lets receive, with no publisher", async () => {
    broker.setHooks({
      authorizeReceive: (id, topic) => !(id.thingName === "sensor-b" && topic.endsWith("/hidden")),
    });
    const a = connectAs(broker, pki, "sensor-a");
    const b = connectAs(broker, pki, "sensor-b");
    await Promise.all([subscribed(a, "$aws/events/#"), subscribed(b, "$aws/events/#")]);
    const got: string[] = [];
    a.on("message", (topic, payload) => got.push(`a ${topic} ${payload.toString()}`));
    b.on("message", (topic, payload) => got.push(`b ${topic} ${payload.toString()}`));
    await broker.publishAsService("$aws/events/x/hidden", Buffer.from("1"), { qos: 1 });
    await broker.publishAsService("$aws/events/x/shown", Buffer.from("2"), { qos: 1 });
    await until(() => got.length >= 3, "three deliveries");
    assert.deepEqual(got.sort(), [
      "a $aws/events/x/hidden 1",
      "a $aws/events/x/shown 2",
      "b $aws/events/x/shown 2",
    ]);
    // Nothing a client published: no publish counted, no policy asked.
    assert.equal(broker.stats.publishes, 0);
    await Promise.all([a.endAsync(), b.endAsync()]);
  });

  it("closes its listener on stop", async () => {
    const port = broker.port;
    await broker.stop();
    const err = await new Promise<Error | undefined>((resolve) => {
      const s = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false });
      s.once("secureConnect", () => {
        s.destroy();
        resolve(undefined);
      });
      s.once("error", resolve);
    });
    assert.ok(err, "the port still accepted connections after stop()");
    broker = await startBroker(pki); // for afterEach
  });
});
