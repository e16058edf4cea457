// The broker's PUBACK lane (local/broker/publish-acks.ts): each connection's publish callbacks, which
// aedes follows with the PUBACK, run in the order the publishes arrived, whatever order their
// records become durable in. The broker test "sends the PUBACKs in arrival order" drives the same
// over a real TLS connection.
import * as assert from "node:assert/strict";
import { PublishAcks } from "../../local/broker/publish-acks";

function deferred() {
  let settle: (e: Error | null) => void = () => undefined;
  const outcome = new Promise<Error | null>((r) => (settle = r));
  return { outcome, settle };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

describe("PUBACK lane: publish callbacks in arrival order per connection", () => {
  it("runs the callbacks in arrival order when the records become durable in reverse", async () => {
    const acks = new PublishAcks();
    const client = {};
    const log: string[] = [];
    const d = [deferred(), deferred(), deferred()];
    d.forEach((x, i) =>
      acks.wait(client, (e) => log.push(e ? `p${i}:${e.message}` : `p${i}`), x.outcome),
    );
    d[2].settle(null);
    d[1].settle(new Error("disk"));
    await tick();
    assert.deepEqual(log, [], "nothing may run before the first publish");
    d[0].settle(null);
    await tick();
    assert.deepEqual(log, ["p0", "p1:disk", "p2"]);
  });

  it("a publish decided at once runs at once behind nothing, and waits behind an earlier one", async () => {
    const acks = new PublishAcks();
    const client = {};
    const log: string[] = [];
    acks.now(client, () => log.push("first"), null);
    assert.deepEqual(log, ["first"], "an empty lane: the callback runs at once");
    const d = deferred();
    acks.wait(client, () => log.push("held"), d.outcome);
    acks.now(client, (e) => log.push(`denied:${e?.message}`), new Error("policy"));
    await tick();
    assert.deepEqual(log, ["first"]);
    d.settle(null);
    await tick();
    assert.deepEqual(log, ["first", "held", "denied:policy"]);
    acks.now(client, () => log.push("after"), null);
    assert.deepEqual(log.at(-1), "after", "the lane is empty again");
  });

  it("keeps connections apart, and lets the broker's own publishes (no client) just wait", async () => {
    const acks = new PublishAcks();
    const [a, b] = [{}, {}];
    const log: string[] = [];
    const held = deferred();
    acks.wait(a, () => log.push("a0"), held.outcome);
    acks.now(b, () => log.push("b0"), null);
    const own = deferred();
    acks.wait(null, () => log.push("own"), own.outcome);
    own.settle(null);
    await tick();
    assert.deepEqual(log, ["b0", "own"], "another connection's wait holds nobody else");
    held.settle(null);
    await tick();
    assert.deepEqual(log, ["b0", "own", "a0"]);
  });
});
