/**
 * PUBACKs in the order the publishes arrived, whatever order their records become durable in.
 *
 * aedes (1.2) writes a QoS 1 publish's PUBACK when the authorizePublish callback runs
 * (lib/handlers/publish.js), and it does not wait for one publish's callback before handling the
 * next: it hands every packet of a socket read to its handlers at once, and its read loop, which is
 * also its 'readable' listener, reads on whenever more data arrives (lib/client.js). The broker
 * holds the callback until the record is fsync'd, and a publish the rule does not journal needs no
 * wait at all, so without this lane its PUBACK could overtake an earlier one still waiting for the
 * group commit. MQTT 3.1.1 §4.6: "It MUST send PUBACK packets in the order in which the
 * corresponding PUBLISH packets were received (QoS 1 messages)". Here each connection's callbacks
 * run in arrival order; a publish decided at once runs at once only when nothing earlier waits.
 *
 * Measured (docs/benchmarks.md, figure 3): aedes' reading on already lets a connection's later
 * publishes join the group commit while earlier ones wait (256 records per fsync with 2
 * connections of 500 in flight each), so the lane holds back only callbacks, never reads.
 */

export type PublishCallback = (err?: Error | null) => void;

interface Slot {
  readonly done: PublishCallback;
  settled: boolean;
  error: Error | null;
}

/** One connection's publishes whose callbacks have not run yet, oldest first. */
interface Lane {
  slots: Slot[];
  head: number;
}

export class PublishAcks {
  private readonly lanes = new WeakMap<object, Lane>();

  /** A publish decided at once (refused, or nothing to wait for): its callback runs after those before it. */
  now(client: object | null, done: PublishCallback, error: Error | null): void {
    const lane = client ? this.lanes.get(client) : undefined;
    if (!lane || lane.head === lane.slots.length) {
      done(error);
      return;
    }
    lane.slots.push({ done, settled: true, error });
  }

  /**
   * A publish whose callback waits for `outcome` (null: acknowledge; an Error: refuse). The
   * promise must not reject. A publish of the broker's own (no client) just waits.
   */
  wait(client: object | null, done: PublishCallback, outcome: Promise<Error | null>): void {
    if (!client) {
      void outcome.then(done);
      return;
    }
    let lane = this.lanes.get(client);
    if (!lane) {
      lane = { slots: [], head: 0 };
      this.lanes.set(client, lane);
    }
    const slot: Slot = { done, settled: false, error: null };
    lane.slots.push(slot);
    const l = lane;
    void outcome.then((error) => {
      slot.settled = true;
      slot.error = error;
      this.drain(l);
    });
  }

  /** Runs the callbacks of the settled publishes at the head of the lane, in order. */
  private drain(lane: Lane): void {
    while (lane.head < lane.slots.length && lane.slots[lane.head].settled) {
      const slot = lane.slots[lane.head++];
      slot.done(slot.error);
    }
    if (lane.head === lane.slots.length) {
      lane.slots = [];
      lane.head = 0;
    } else if (lane.head > 1024 && lane.head * 2 > lane.slots.length) {
      lane.slots = lane.slots.slice(lane.head);
      lane.head = 0;
    }
  }
}
