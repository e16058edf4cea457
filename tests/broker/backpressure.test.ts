// A connection that floods publishes without waiting for PUBACKs is not read past its bound on
// unacknowledged publishes (local/broker/publish-acks.ts, AWS IoT's "Maximum inbound unacknowledged QoS 1
// publish requests": 100, "no new publish requests are accepted from this client until a PUBACK
// message is returned by the server",
// https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits): the rest
// waits in its socket, and another device is served meanwhile. Deterministic: the hook holds every
// publish of the flooder until the test lets go.
import { strict as assert } from "node:assert";
import { LocalBroker } from "../../local/broker/broker";
import type { ClientIdentity } from "../../local/broker/broker";
import { MAX_READ_BYTES } from "../../local/broker/connection-guard";
import type { Pki } from "../../local/identity/ca";
import { DEFAULT_UNACKNOWLEDGED_LIMITS } from "../../local/broker/publish-acks";
import { testPki } from "../helpers/broker";
import { until } from "../helpers/wait";
import { publishPacket, RawClient } from "./raw-mqtt";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe("broker backpressure: a flooder is not read past 100 unacknowledged publishes", function () {
  this.timeout(30_000);
  let pki: Pki;
  let broker: LocalBroker | undefined;
  const clients: RawClient[] = [];
  before(async () => {
    pki = await testPki();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.end();
    await broker?.stop();
    broker = undefined;
  });

  for (const qos of [1, 0] as const) {
    it(`QoS ${qos}: reads at most the bound and one read more, serves another device meanwhile, and reads on once PUBACKs go out`, async () => {
      const held: Array<() => void> = [];
      const calls: Record<string, number> = {};
      broker = await LocalBroker.start({
        ca: pki.caPem,
        key: pki.server.key,
        cert: pki.server.cert,
        hooks: {
          onPublish: (id: ClientIdentity) => {
            calls[id.clientId] = (calls[id.clientId] ?? 0) + 1;
            if (id.clientId !== "sensor-a") return Promise.resolve();
            return new Promise<void>((r) => held.push(r));
          },
        },
      });
      const flooder = await RawClient.open(broker.port, pki.credentialsFor("sensor-a"));
      clients.push(flooder);
      assert.equal(await flooder.connect("sensor-a"), 0);
      const payload = Buffer.alloc(1000, 0x61);
      const total = 1000;
      const packets = Array.from({ length: total }, (_, i) =>
        publishPacket("t/flood", payload, qos, i + 1),
      );
      void flooder.write(Buffer.concat(packets));
      const bound = DEFAULT_UNACKNOWLEDGED_LIMITS.perConnection;
      await until(() => (calls["sensor-a"] ?? 0) >= bound, `${bound} publishes handed over`);
      await sleep(500);
      // One read past the bound: the socket's buffer and a TLS record (16 KiB each), ~1 KB a publish.
      const onePastBound = bound + Math.ceil((2 * MAX_READ_BYTES) / 1000) + 1;
      const read = calls["sensor-a"];
      assert.ok(
        read <= onePastBound,
        `${read} publishes read while ${bound} wait (at most ${onePastBound})`,
      );

      // Another device is read and answered while the flooder waits in its socket.
      const other = await RawClient.open(broker.port, pki.credentialsFor("sensor-b"));
      clients.push(other);
      assert.equal(await other.connect("sensor-b"), 0);
      await other.write(publishPacket("t/other", Buffer.from("hi"), 1, 7));
      assert.ok(await other.next(4), "the other device's PUBACK");
      assert.equal(calls["sensor-a"], read, "the flooder was not read meanwhile");

      // Let go: the broker reads the flooder on until every publish was handed over.
      const releasing = setInterval(() => held.splice(0).forEach((r) => r()), 5);
      await until(() => calls["sensor-a"] === total, `all ${total} publishes read`);
      clearInterval(releasing);
      held.splice(0).forEach((r) => r());
      assert.ok(broker.acks.pauses >= 1, "the pause is counted");
    });
  }
});
