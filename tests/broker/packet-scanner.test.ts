// The packet scanner reads a connection's bytes in whatever pieces TLS hands it: a topic cut across
// two reads, one byte at a time, several packets in one read. Each packet must get the same verdict
// however its bytes are cut, since the scanner now checks a packet's leading bytes in place and
// copies only those that span reads.
import { strict as assert } from "node:assert";
import { PacketScanner, type Violation } from "../../local/broker/broker-limits";
import { connectPacket, publishPacket, subscribePacket } from "./raw-mqtt";

/** The first violation when `bytes` arrive cut at the given offsets, or undefined. */
function scan(bytes: Buffer, cuts: readonly number[]): Violation["kind"] | undefined {
  const scanner = new PacketScanner();
  let from = 0;
  for (const at of [...cuts, bytes.length]) {
    const v = scanner.feed(bytes.subarray(from, at));
    if (v) return v.kind;
    from = at;
  }
  return undefined;
}

const CONNECT = connectPacket("store-sensor-seattle1");

const CASES: ReadonlyArray<[string, Buffer, Violation["kind"] | undefined]> = [
  [
    "a valid QoS 1 PUBLISH",
    publishPacket("SeattleStoreTemp/store-sensor-seattle1", Buffer.from("{}"), 1, 7),
    undefined,
  ],
  [
    "a topic holding U+0000",
    publishPacket(Buffer.from("t/a\u0000b"), Buffer.from("x"), 1, 8),
    "topic",
  ],
  ["a topic of 257 bytes", publishPacket(`t/${"x".repeat(255)}`, Buffer.from("x"), 1, 9), "topic"],
  [
    "a topic of ill-formed UTF-8",
    publishPacket(Buffer.from([0x74, 0x2f, 0xc3, 0x28]), Buffer.from("x"), 0),
    "topic",
  ],
  [
    "a SUBSCRIBE of 9 filters",
    subscribePacket(
      Array.from({ length: 9 }, (_, i): [string, number] => [`t/${i}`, 1]),
      3,
    ),
    "too-large",
  ],
  ["a SUBSCRIBE filter holding U+0000", subscribePacket([["t/\u0000/#", 1]], 4), "topic"],
  ["a CONNECT whose will has QoS 2", connectPacket("c", { will: { topic: "w", qos: 2 } }), "qos2"],
];

describe("packet scanner: the same verdict however the bytes are cut", () => {
  for (const [what, packet, expected] of CASES) {
    // After a CONNECT, as on a real connection (the protocol level comes from it).
    const bytes = Buffer.concat([CONNECT, packet]);
    it(`${what}: ${expected ?? "accepted"}, whole, cut at every offset, and byte by byte`, () => {
      assert.equal(scan(bytes, []), expected, "in one read");
      for (let at = 1; at < bytes.length; at++) {
        assert.equal(scan(bytes, [at]), expected, `cut at byte ${at} of ${bytes.length}`);
      }
      const everyByte = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
      assert.equal(scan(bytes, everyByte), expected, "one byte at a time");
    });
  }

  it("checks each of several packets in one read, the bad one among good ones", () => {
    const good = (id: number) => publishPacket("t/ok", Buffer.from("x"), 1, id);
    const bad = publishPacket(Buffer.from("t/\u0000"), Buffer.from("x"), 1, 3);
    assert.equal(scan(Buffer.concat([CONNECT, good(1), good(2), good(4)]), []), undefined);
    assert.equal(scan(Buffer.concat([CONNECT, good(1), good(2), bad, good(4)]), []), "topic");
  });
});
