// Connection hygiene over real sockets: idle TCP and TLS connections are closed on a deadline,
// connections are capped per address and in all (refusals counted), TLS refusals are logged with
// the verification's real reason and the peer's address, a busy port is one line, and a frozen
// subscriber holds back neither the publishers nor the broker.
import "reflect-metadata"; // @peculiar/x509 needs it before it loads
import * as assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { webcrypto } from "node:crypto";
import * as net from "node:net";
import * as path from "node:path";
import * as tls from "node:tls";
import * as x509 from "@peculiar/x509";
import mqtt from "mqtt";
import { UserError } from "../../core/errors";
import { toPem } from "../../core/pem";
import { LocalBroker } from "../../local/broker/broker";
import type { Pki } from "../../local/identity/ca";
import type { ConnectionLimits, GuardEvent } from "../../local/broker/connection-guard";
import { expiredLeaf, testPki } from "../helpers/broker";
import { until } from "../helpers/wait";
import { publishPacket, RawClient, subscribePacket } from "./raw-mqtt";
import { TS_NODE_FLAGS } from "../../core/project";

async function start(pki: Pki, limits: Partial<ConnectionLimits> = {}, port = 0) {
  return LocalBroker.start({
    ca: pki.caPem,
    key: pki.server.key,
    cert: pki.server.cert,
    limits,
    port,
  });
}

/** Opens `n` TCP connections to the port and sends nothing. */
function idleSockets(port: number, n: number): net.Socket[] {
  return Array.from({ length: n }, () => {
    const s = net.connect(port, "127.0.0.1");
    s.on("error", () => undefined);
    return s;
  });
}

const closed = (s: net.Socket) =>
  new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once("close", () => resolve())));

/** A client certificate for sensor-a signed by its own key: nobody vouches for it. */
async function selfSignedLeaf(): Promise<{ key: string; cert: string }> {
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  const keys = await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: "CN=sensor-a",
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    keys,
    signingAlgorithm: alg,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
    ],
  });
  return {
    key: toPem(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey), "PRIVATE KEY"),
    cert: cert.toString("pem"),
  };
}

describe("broker connection hygiene", function () {
  this.timeout(60_000);
  let pki: Pki;
  let broker: LocalBroker | undefined;
  before(async () => {
    pki = await testPki();
  });
  afterEach(async () => {
    await broker?.stop();
    broker = undefined;
  });

  it("closes TCP connections that never complete the TLS handshake, and logs the flood in one line", async () => {
    broker = await start(pki, { handshakeTimeoutMs: 300 });
    const events: GuardEvent[] = [];
    broker.on("guard", (e) => events.push(e));
    const sockets = idleSockets(broker.port, 60);
    await Promise.all(sockets.map(closed));
    assert.equal(broker.guard.stats.handshakeTimeouts, 60);
    assert.equal(broker.stats.tlsRefusals, 0, "an idle socket is not a refused identity");
    const timeouts = events.filter((e) => e.kind === "handshake-timeout");
    assert.equal(timeouts.length, 1, "the rest are folded into one line per 10 s");
    assert.match(timeouts[0].reason, /no TLS handshake within 300 ms; closed/);
    assert.match(timeouts[0].remote, /^127\.0\.0\.1:\d+$/);
    await until(() => broker?.guard.openConnections === 0, "every descriptor released");
  });

  it("closes a TLS connection that sends no CONNECT in time", async () => {
    broker = await start(pki, { connectTimeoutMs: 300 });
    const c = await RawClient.open(broker.port, pki.credentialsFor("sensor-a"));
    await c.closed;
    assert.equal(broker.guard.stats.connectTimeouts, 1);
  });

  it("caps connections per address, counting the refusals, and admits again once some close", async () => {
    broker = await start(pki, { maxConnectionsPerAddress: 5, handshakeTimeoutMs: 60_000 });
    const first = idleSockets(broker.port, 5);
    await until(() => broker?.guard.openConnections === 5, "five admitted");
    const extra = idleSockets(broker.port, 3);
    await Promise.all(extra.map(closed));
    assert.equal(broker.guard.stats.connectionsOverCap, 3);
    assert.equal(broker.stats.tlsRefusals, 0, "the cap's own closes are not TLS refusals");
    for (const s of first) s.destroy();
    await until(() => broker?.guard.openConnections === 0, "the first five gone");
    const c = mqtt.connect(broker.url, {
      ...pki.credentialsFor("sensor-a"),
      clientId: "sensor-a",
      reconnectPeriod: 0,
    });
    c.on("error", () => undefined);
    await new Promise<void>((resolve) => c.once("connect", () => resolve()));
    await c.endAsync();
  });

  it("caps connections in all", async () => {
    broker = await start(pki, { maxConnections: 4, handshakeTimeoutMs: 60_000 });
    const sockets = idleSockets(broker.port, 6);
    await until(() => broker?.guard.stats.connectionsOverCap === 2, "two over the cap");
    assert.equal(broker.guard.openConnections, 4);
    for (const s of sockets) s.destroy();
  });

  for (const [what, creds, reason] of [
    ["an expired certificate", expiredLeaf, /^certificate has expired \(CERT_HAS_EXPIRED\)$/],
    [
      "a self-signed certificate",
      selfSignedLeaf,
      /^self-signed certificate \(DEPTH_ZERO_SELF_SIGNED_CERT\)$/,
    ],
  ] as const) {
    it(`logs the refusal of ${what} with the real reason and the peer's address`, async () => {
      broker = await start(pki);
      const refusals: string[] = [];
      broker.on("tlsRefused", (remote, r) => refusals.push(`${remote} ${r}`));
      const c = mqtt.connect(broker.url, {
        ...(await creds(pki)),
        ca: pki.caPem,
        clientId: "sensor-a",
        reconnectPeriod: 0,
      });
      c.on("error", () => undefined);
      await until(() => refusals.length === 1, "the refusal");
      const [remote, ...rest] = refusals[0].split(" ");
      assert.match(remote, /^127\.0\.0\.1:\d+$/, `peer address: ${remote}`);
      assert.match(rest.join(" "), reason);
      c.end(true);
    });
  }

  it("folds a flood of TLS refusals into one line per address per 10 s, and counts each", async () => {
    broker = await start(pki);
    const port = broker.port;
    const refusals: Array<{ remote: string; reason: string; more?: number }> = [];
    broker.on("tlsRefused", (remote, reason, more) => refusals.push({ remote, reason, more }));
    const creds = await expiredLeaf(pki);
    const sockets = Array.from({ length: 40 }, () => {
      const s = tls.connect({
        host: "127.0.0.1",
        port,
        servername: "localhost",
        ca: pki.caPem,
        ...creds,
      });
      s.on("error", () => undefined);
      return s;
    });
    await Promise.all(sockets.map(closed));
    await until(() => broker?.stats.tlsRefusals === 40, "40 refusals counted");
    assert.equal(refusals.length, 1, `one line, not ${refusals.length}`);
    assert.match(refusals[0].reason, /CERT_HAS_EXPIRED/);
    assert.equal(refusals[0].more, undefined);
  });

  it("refuses a busy port with one line (EnvironmentError, exit 2)", async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const err = await start(pki, {}, port).then(
        (b) => b.stop().then(() => undefined),
        (e: unknown) => e,
      );
      assert.ok(err instanceof UserError, `got ${String(err)}`);
      assert.equal(err.exitCode, 2);
      assert.equal(
        err.message,
        `port ${port} on 127.0.0.1 is in use (another program, or another simulate with --port ${port}); choose another --port, or leave --port out for a free one`,
      );
    } finally {
      blocker.close();
    }
  });

  /** A `#` subscriber in a child process, frozen with SIGSTOP as Ctrl-Z does. */
  async function frozenSubscriber(port: number, qos: 0 | 1): Promise<ChildProcess> {
    const child = spawn(
      process.execPath,
      [
        ...TS_NODE_FLAGS,
        path.join(__dirname, "fixtures", "subscriber-child.ts"),
        String(port),
        pki.dir,
        "#",
        String(qos),
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on("data", (d: Buffer) => d.toString().includes("subscribed") && resolve());
      child.once("exit", (code) => reject(new Error(`subscriber exited ${code}`)));
    });
    child.kill("SIGSTOP");
    return child;
  }

  function thaw(child: ChildProcess): Promise<void> {
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill("SIGKILL");
    child.kill("SIGCONT");
    return exited;
  }

  for (const qos of [0, 1] as const) {
    it(`a frozen subscriber (#, Ctrl-Z) holds back neither QoS ${qos} publishers nor the other subscribers; its messages are dropped and counted`, async () => {
      broker = await start(pki);
      const events: GuardEvent[] = [];
      broker.on("guard", (e) => events.push(e));
      const frozen = await frozenSubscriber(broker.port, 1);
      // A healthy subscriber beside it, as the delivery side would be: it must miss nothing.
      const healthy = await RawClient.open(broker.port, pki.credentialsFor("sensor-c"));
      assert.equal(await healthy.connect("sensor-c"), 0);
      await healthy.write(subscribePacket([["t/#", 0]]));
      assert.ok(await healthy.next(9));
      let healthyGot = 0;
      healthy.socket.on("data", () => {
        healthyGot += healthy.received.filter((r) => r.type === 3).length;
        healthy.received.length = 0;
      });
      try {
        // Two devices publish 50 MiB between them, far beyond every socket buffer on the way.
        const payload = Buffer.alloc(64 * 1024, 0x61);
        const publish = async (thing: string) => {
          const c = await RawClient.open(broker!.port, pki.credentialsFor(thing));
          assert.equal(await c.connect(thing), 0);
          for (let i = 1; i <= 400; i++) {
            await c.write(publishPacket(`t/${thing}`, payload, qos, i));
            if (qos === 1 && i % 20 === 0) {
              // A window of 20 in flight, as the device publisher keeps.
              for (let k = 0; k < 20; k++) assert.ok(await c.next(4), `PUBACK ${i}`);
            }
          }
          // Whatever the QoS, a last QoS 1 publish must be acknowledged: the broker still reads.
          await c.write(publishPacket(`t/${thing}`, Buffer.from("last"), 1, 999));
          for (;;) {
            const ack = await c.next(4);
            assert.ok(ack, `${thing} was disconnected`);
            if (ack.body.readUInt16BE(0) === 999) break;
          }
          c.end();
        };
        await Promise.all([publish("sensor-a"), publish("sensor-b")]);
        await until(() => healthyGot === 2 * 401, "all 802 messages at the healthy subscriber");
        assert.ok(
          broker.guard.stats.slowConsumerDrops > 0,
          "the frozen subscriber's messages were dropped",
        );
        const slow = events.find((e) => e.kind === "slow-consumer");
        assert.ok(slow, "the drop is logged");
        assert.equal(slow.clientId, "console");
        assert.match(slow.reason, /dropping its messages until it catches up/);
        assert.equal(
          broker.guard.stats.slowConsumerDisconnects,
          0,
          "within the timeout it is bounded, not cut off",
        );
      } finally {
        healthy.end();
        await thaw(frozen);
      }
    });
  }

  it("holds all slow subscribers together to maxQueuedBytes, and never a subscriber that keeps up", async () => {
    broker = await start(pki, {
      maxQueuedBytesPerSubscriber: 64 * 1024 * 1024,
      maxQueuedBytes: 2 * 1024 * 1024,
    });
    const frozen = [await frozenSubscriber(broker.port, 0), await frozenSubscriber(broker.port, 1)];
    const healthy = await RawClient.open(broker.port, pki.credentialsFor("sensor-c"));
    assert.equal(await healthy.connect("sensor-c"), 0);
    await healthy.write(subscribePacket([["t/#", 0]]));
    assert.ok(await healthy.next(9));
    let healthyGot = 0;
    healthy.socket.on("data", () => {
      healthyGot += healthy.received.filter((r) => r.type === 3).length;
      healthy.received.length = 0;
    });
    try {
      const c = await RawClient.open(broker.port, pki.credentialsFor("sensor-a"));
      assert.equal(await c.connect("sensor-a"), 0);
      const payload = Buffer.alloc(64 * 1024, 0x63);
      for (let i = 1; i <= 400; i++) await c.write(publishPacket("t/x", payload, 0));
      await until(() => healthyGot === 400, "all 400 messages at the healthy subscriber");
      assert.ok(broker.guard.stats.slowConsumerDrops > 0, "the shared budget dropped messages");
      c.end();
    } finally {
      healthy.end();
      for (const f of frozen) await thaw(f);
    }
  });

  it("disconnects a subscriber that takes nothing for slowConsumerTimeoutMs", async () => {
    broker = await start(pki, { slowConsumerTimeoutMs: 500 });
    const frozen = await frozenSubscriber(broker.port, 0);
    try {
      const c = await RawClient.open(broker.port, pki.credentialsFor("sensor-a"));
      assert.equal(await c.connect("sensor-a"), 0);
      const payload = Buffer.alloc(64 * 1024, 0x62);
      // Enough to fill every buffer between them (bounded: 64 MiB at most), then some time.
      for (let i = 1; i <= 1000 && broker.guard.stats.slowConsumerDisconnects === 0; i++) {
        await c.write(publishPacket("t/x", payload, 0));
        if (i % 100 === 0) await new Promise((r) => setTimeout(r, 50));
      }
      await until(() => broker?.guard.stats.slowConsumerDisconnects === 1, "the disconnect");
      c.end();
    } finally {
      await thaw(frozen);
    }
    assert.equal(broker.guard.stats.slowConsumerDisconnects, 1, "counted once");
  });
});
