// The retained-message store's behaviour and bounds (local/broker/retained.ts): AWS's documented
// behaviour (mqtt.html, "Using MQTT retained messages") and every limit refusing, counted.
import { strict as assert } from "node:assert";
import { RETAINED_DEFAULTS, RetainedStore, type RetainedHold } from "../../local/broker/retained";

const T0 = 1_800_000_000_000;
const hold = (r: RetainedHold | string): RetainedHold => {
  assert.equal(typeof r, "object", `refused: ${String(r)}`);
  return r as RetainedHold;
};

describe("retained message store (local/broker/retained)", () => {
  it("keeps one message per topic: the next retained publish replaces it", () => {
    const s = new RetainedStore();
    hold(s.reserve("a", Buffer.from("1"), T0)).commit(1);
    hold(s.reserve("a", Buffer.from("22"), T0 + 2000)).commit(0);
    assert.equal(s.get("a")?.payload.toString(), "22");
    assert.equal(s.get("a")?.qos, 0);
    assert.deepEqual([s.stats.messages, s.stats.bytes, s.stats.stored], [1, 3, 2]);
  });

  it("deletes with an empty payload, and an empty payload is admitted even when the store is full", () => {
    const s = new RetainedStore({ maxMessages: 1 });
    hold(s.reserve("a", Buffer.from("x"), T0)).commit(1);
    assert.match(String(s.reserve("b", Buffer.from("y"), T0)), /holds its limit of 1 messages/);
    hold(s.reserve("a", Buffer.alloc(0), T0 + 1000)).commit(1);
    assert.equal(s.get("a"), undefined);
    assert.deepEqual([s.stats.messages, s.stats.bytes, s.stats.deleted], [0, 0, 1]);
    hold(s.reserve("b", Buffer.from("y"), T0 + 2000)).commit(1);
    assert.equal(s.stats.refused.count, 1);
  });

  it("counts admitted but unstored publishes against the bound, and gives them back on release", () => {
    const s = new RetainedStore({ maxMessages: 1 });
    const first = hold(s.reserve("a", Buffer.from("x"), T0));
    assert.equal(typeof s.reserve("b", Buffer.from("y"), T0), "string", "the pending one counts");
    first.release();
    hold(s.reserve("b", Buffer.from("y"), T0)).commit(1);
    first.commit(1); // a released hold stores nothing
    assert.deepEqual(s.topics(), ["b"]);
  });

  it("bounds the memory it holds", () => {
    const s = new RetainedStore({ maxBytes: 10 });
    hold(s.reserve("t", Buffer.alloc(8), T0)).commit(0); // 1 + 8 bytes
    assert.match(String(s.reserve("u", Buffer.alloc(1), T0)), /ceiling of 10 bytes/);
    hold(s.reserve("t", Buffer.alloc(9), T0 + 2000)).commit(0); // a replacement may grow to the ceiling
    assert.equal(s.stats.bytes, 10);
    assert.equal(s.stats.refused.memory, 1);
  });

  it("refuses a payload over the size limit (128 KB by default)", () => {
    const s = new RetainedStore();
    assert.equal(RETAINED_DEFAULTS.maxPayloadBytes, 128 * 1024);
    assert.match(
      String(s.reserve("t", Buffer.alloc(128 * 1024 + 1), T0)),
      /131073 bytes is over 131072/,
    );
    hold(s.reserve("t", Buffer.alloc(128 * 1024), T0)).commit(0);
    assert.equal(s.stats.refused.size, 1);
  });

  it("refuses the RETAIN flag on reserved $ topics", () => {
    const s = new RetainedStore();
    assert.match(
      String(s.reserve("$aws/things/x/shadow/update", Buffer.from("{}"), T0)),
      /reserved topic/,
    );
    assert.equal(s.stats.refused.reserved, 1);
  });

  it("throttles retained publishes per topic and per broker, per second", () => {
    const s = new RetainedStore({ maxPublishesPerSecond: 3, maxPublishesPerSecondPerTopic: 1 });
    hold(s.reserve("a", Buffer.from("1"), T0)).commit(1);
    assert.match(
      String(s.reserve("a", Buffer.from("2"), T0 + 999)),
      /more than 1 retained publish\(es\) per second to a/,
    );
    hold(s.reserve("b", Buffer.from("1"), T0 + 10)).commit(1);
    hold(s.reserve("c", Buffer.from("1"), T0 + 20)).commit(1);
    assert.match(
      String(s.reserve("d", Buffer.from("1"), T0 + 30)),
      /more than 3 retained publishes per second/,
    );
    // The next second starts afresh.
    hold(s.reserve("a", Buffer.from("2"), T0 + 1000)).commit(1);
    assert.deepEqual([s.stats.refused.topicRate, s.stats.refused.rate], [1, 1]);
  });

  it("copies the payload: the packet's buffer may be reused", () => {
    const s = new RetainedStore();
    const b = Buffer.from("abc");
    hold(s.reserve("t", b, T0)).commit(0);
    b.write("xyz");
    assert.equal(s.get("t")?.payload.toString(), "abc");
  });

  it("refuses nonsense limits", () => {
    assert.throws(
      () => new RetainedStore({ maxMessages: -1 }),
      /maxMessages must be a whole number/,
    );
  });
});
