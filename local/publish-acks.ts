/**
 * PUBACKs in the order the publishes arrived, while the broker reads on.
 *
 * aedes (1.2, lib/client.js) hands every packet of one socket read to its handlers at once and
 * reads the connection's next chunk only when all of them have called back; it writes a QoS 1
 * publish's PUBACK when the authorizePublish callback runs (lib/handlers/publish.js). The broker
 * holds that callback until the record is fsync'd, so a connection used to have one chunk of
 * publishes waiting for the disk at a time, and each group commit held that chunk alone.
 *
 * Here a publish that waits for durability gives its place in aedes' count back once the chunk is
 * parsed, so aedes reads the connection's next publishes into the same or the next group commit,
 * and takes the place back just before its callback runs. Callbacks run in arrival order per
 * connection, so the PUBACKs go out in order, as MQTT 3.1.1 §4.6 requires ("It MUST send PUBACK
 * packets in the order in which the corresponding PUBLISH packets were received"), whatever order
 * the records become durable in. Reading ahead is bounded: a number of publishes per connection and
 * a number of payload bytes over all connections; past either, aedes' own flow control holds the
 * connection as before, which is how a producer that outruns the disk is held back.
 */

/** aedes' per-connection read accounting (lib/client.js), not part of its typed API. */
interface AedesReadState {
  _parsingBatch: number;
  _paused?: boolean;
  _nextBatch: (err?: Error) => void;
}

export type PublishCallback = (err?: Error | null) => void;

export interface ReadAheadLimits {
  /** Publishes of one connection read on while earlier ones wait for the disk. @default 256 */
  readonly perConnection: number;
  /** Payload bytes read on that way over all connections. @default 16 MiB */
  readonly totalBytes: number;
}

export const DEFAULT_READ_AHEAD: ReadAheadLimits = {
  perConnection: 256,
  totalBytes: 16 * 1024 * 1024,
};

interface Slot {
  readonly done: PublishCallback;
  readonly bytes: number;
  settled: boolean;
  error: Error | null;
  /** Its place in aedes' count was given back; it must be taken again before `done`. */
  released: boolean;
}

/** One connection's publishes whose callbacks have not run yet, oldest first. */
interface Lane {
  readonly client: AedesReadState;
  slots: Slot[];
  head: number;
  /** Slots whose place was given back and whose callback has not run. */
  readAhead: number;
  releaseScheduled: boolean;
}

export class PublishAcks {
  private readonly lanes = new WeakMap<object, Lane>();
  private bytesReadAhead = 0;
  /** Publishes a connection read while an earlier one still waited for the disk. */
  readAheadPublishes = 0;

  constructor(private readonly limits: ReadAheadLimits = DEFAULT_READ_AHEAD) {}

  /** A publish decided at once (refused, or nothing to wait for): its callback runs after those before it. */
  now(client: object | null, done: PublishCallback, error: Error | null): void {
    const lane = client ? this.lanes.get(client) : undefined;
    if (!lane || lane.head === lane.slots.length) {
      done(error);
      return;
    }
    lane.slots.push({ done, bytes: 0, settled: true, error, released: false });
  }

  /**
   * A publish whose callback waits for `outcome` (null: acknowledge; an Error: refuse). The
   * promise must not reject. A publish of the broker's own (no client) just waits.
   */
  wait(
    client: object | null,
    done: PublishCallback,
    bytes: number,
    outcome: Promise<Error | null>,
  ): void {
    if (!client) {
      void outcome.then(done);
      return;
    }
    const lane = this.lane(client);
    const slot: Slot = { done, bytes, settled: false, error: null, released: false };
    lane.slots.push(slot);
    void outcome.then((error) => {
      slot.settled = true;
      slot.error = error;
      this.drain(lane);
    });
    if (!lane.releaseScheduled) {
      lane.releaseScheduled = true;
      // After the whole chunk is parsed: aedes' parser must not be re-entered from a handler.
      queueMicrotask(() => this.release(lane));
    }
  }

  private lane(client: object): Lane {
    let lane = this.lanes.get(client);
    if (!lane) {
      lane = {
        client: client as AedesReadState,
        slots: [],
        head: 0,
        readAhead: 0,
        releaseScheduled: false,
      };
      this.lanes.set(client, lane);
    }
    return lane;
  }

  /** Gives back the places of the lane's waiting publishes, within the limits. */
  private release(lane: Lane): void {
    lane.releaseScheduled = false;
    const c = lane.client;
    const give: Slot[] = [];
    for (let i = lane.head; i < lane.slots.length; i++) {
      const slot = lane.slots[i];
      if (slot.settled || slot.released) continue;
      if (lane.readAhead + give.length >= this.limits.perConnection) break;
      if (this.bytesReadAhead + slot.bytes > this.limits.totalBytes) break;
      this.bytesReadAhead += slot.bytes;
      give.push(slot);
    }
    for (const slot of give) {
      // A paused client (aedes pauses around takeovers) does not count a callback; nothing to give.
      if (c._paused) {
        this.bytesReadAhead -= slot.bytes;
        continue;
      }
      slot.released = true;
      lane.readAhead++;
      this.readAheadPublishes++;
      // What aedes does when a handler calls back: one less in flight, read on at none.
      c._nextBatch();
    }
  }

  /** Runs the callbacks of the settled publishes at the head of the lane, in order. */
  private drain(lane: Lane): void {
    while (lane.head < lane.slots.length && lane.slots[lane.head].settled) {
      const slot = lane.slots[lane.head++];
      if (slot.released) {
        this.bytesReadAhead -= slot.bytes;
        lane.readAhead--;
        // Its callback will count down once more when aedes finishes the PUBACK.
        lane.client._parsingBatch++;
      }
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
