// The broker's PUBACK lane (local/publish-acks.ts) against aedes' read accounting: how many of a
// connection's places it gives back while publishes wait for the disk, within which bounds, and
// that every place is taken again before the callback that aedes counts down.
import * as assert from "node:assert/strict";
import { PublishAcks } from "../../local/publish-acks";

/** aedes' per-connection read state (lib/client.js): what nextBatch does, counted. */
function aedesClient() {
  const c = {
    _parsingBatch: 0,
    _paused: false,
    reads: 0,
    _nextBatch(): void {
      c._parsingBatch--;
      if (c._parsingBatch <= 0) {
        c._parsingBatch = 0;
        c.reads++;
      }
    },
  };
  return c;
}

/** A publish as aedes starts it: one more in flight, its callback counts down. */
function arrive(c: ReturnType<typeof aedesClient>, log: string[], name: string) {
  c._parsingBatch++;
  return (err?: Error | null) => {
    log.push(err ? `${name}:${err.message}` : name);
    c._nextBatch();
  };
}

function deferred() {
  let settle: (e: Error | null) => void = () => undefined;
  const outcome = new Promise<Error | null>((r) => (settle = r));
  return { outcome, settle };
}

const tick = () => new Promise<void>((r) => setImmediate(r));

describe("PUBACK lane (read on while publishes wait for the disk)", () => {
  it("gives back the places of waiting publishes up to the per-connection bound, and runs callbacks in order", async () => {
    const acks = new PublishAcks({ perConnection: 2, totalBytes: 1 << 20 });
    const c = aedesClient();
    const log: string[] = [];
    const d = [deferred(), deferred(), deferred()];
    // One socket read holding three publishes.
    for (let i = 0; i < 3; i++) acks.wait(c, arrive(c, log, `p${i}`), 10, d[i].outcome);
    assert.equal(c._parsingBatch, 3, "nothing is given back while the chunk is parsed");
    await tick();
    assert.equal(c._parsingBatch, 1, "two places given back, the third publish holds the read");
    assert.equal(acks.readAheadPublishes, 2);
    d[2].settle(null);
    d[1].settle(null);
    await tick();
    assert.deepEqual(log, [], "nothing runs before the first publish");
    d[0].settle(null);
    await tick();
    assert.deepEqual(log, ["p0", "p1", "p2"]);
    assert.equal(c._parsingBatch, 0, "every place counted once");
    assert.equal(c.reads, 1, "the third publish held the read until it called back");
  });

  it("stops reading on past the bytes bound over all connections", async () => {
    const acks = new PublishAcks({ perConnection: 100, totalBytes: 250 });
    const a = aedesClient();
    const b = aedesClient();
    const log: string[] = [];
    const da = deferred();
    const db = [deferred(), deferred()];
    acks.wait(a, arrive(a, log, "a0"), 200, da.outcome);
    acks.wait(b, arrive(b, log, "b0"), 100, db[0].outcome);
    acks.wait(b, arrive(b, log, "b1"), 10, db[1].outcome);
    await tick();
    assert.equal(a._parsingBatch, 0, "a's 200 bytes fit");
    assert.equal(b._parsingBatch, 2, "b's 100 bytes would pass 250 in all: b waits as before");
    da.settle(null);
    await tick();
    assert.deepEqual(log, ["a0"]);
    db[0].settle(null);
    db[1].settle(new Error("disk"));
    await tick();
    assert.deepEqual(log, ["a0", "b0", "b1:disk"]);
  });

  it("a publish decided at once waits behind the ones before it, and runs at once behind none", async () => {
    const acks = new PublishAcks();
    const c = aedesClient();
    const log: string[] = [];
    acks.now(c, arrive(c, log, "first"), null);
    assert.deepEqual(log, ["first"], "no lane: the callback runs at once");
    const d = deferred();
    acks.wait(c, arrive(c, log, "held"), 1, d.outcome);
    acks.now(c, arrive(c, log, "denied"), new Error("denied"));
    await tick();
    assert.deepEqual(log, ["first"]);
    d.settle(null);
    await tick();
    assert.deepEqual(log, ["first", "held", "denied:denied"]);
  });

  it("gives nothing back for a paused connection", async () => {
    const acks = new PublishAcks();
    const c = aedesClient();
    c._paused = true;
    const d = deferred();
    acks.wait(c, arrive(c, [], "p"), 1, d.outcome);
    await tick();
    assert.equal(c._parsingBatch, 1);
    assert.equal(acks.readAheadPublishes, 0);
    d.settle(null);
    await tick();
    assert.equal(c._parsingBatch, 0);
  });
});
