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
 * connections of 500 in flight each), so the lane holds back only callbacks.
 *
 * Because aedes reads on regardless, the lane is also where a connection's reading is bounded: a
 * connection with `perConnection` publishes whose callbacks have not run (QoS 1: no PUBACK yet;
 * QoS 0: not yet journaled) is not read until half of them have, and while the publishes of all
 * connections together hold `totalBytes`, a connection with any publish waiting is not read either.
 * A flood then waits in the flooder's own socket and TCP window (backpressure), not in the
 * broker's memory, and a device that keeps to its window is not held behind it. AWS IoT Core
 * does the same at 100 ("Maximum inbound unacknowledged QoS 1 publish requests": "When this quota
 * is reached, no new publish requests are accepted from this client until a PUBACK message is
 * returned by the server", https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits).
 */

export interface UnacknowledgedLimits {
  /**
   * Publishes of one connection waiting for their outcome before the broker stops reading it
   * (AWS IoT's "Maximum inbound unacknowledged QoS 1 publish requests"). @default 100
   */
  readonly perConnection: number;
  /**
   * Bytes ({@link PAYLOAD_COPIES} times payload and topic, plus {@link PUBLISH_OVERHEAD_BYTES}) of
   * the waiting publishes of all connections together; at or past it, no connection with a publish waiting is read.
   * @default 32 MiB
   */
  readonly totalBytes: number;
}

export const DEFAULT_UNACKNOWLEDGED_LIMITS: UnacknowledgedLimits = {
  perConnection: 100,
  totalBytes: 32 * 1024 * 1024,
};

/**
 * A waiting publish holds its payload about three times: aedes' packet, the rule's output record
 * and the journal frame; it is counted so.
 */
export const PAYLOAD_COPIES = 3;

/** What a waiting publish holds besides its payload: objects, closures and promises, about. */
export const PUBLISH_OVERHEAD_BYTES = 1024;

/** Stops and restarts reading a connection (ConnectionGuard.pauseReading / resumeReading). */
export interface ReadGate {
  pause(client: object): void;
  resume(client: object): void;
}

export type PublishCallback = (err?: Error | null) => void;

interface Slot {
  readonly done: PublishCallback;
  /** Bytes counted against the limits while it waits (0 for a publish decided at once). */
  readonly bytes: number;
  /** It was counted in the lane's `waiting`. */
  readonly counted: boolean;
  settled: boolean;
  error: Error | null;
}

/** One connection's publishes whose callbacks have not run yet, oldest first. */
interface Lane {
  readonly client: object;
  slots: Slot[];
  head: number;
  /** Publishes of this lane that wait for an outcome. */
  waiting: number;
  paused: boolean;
}

export class PublishAcks {
  private readonly lanes = new WeakMap<object, Lane>();
  /** Bytes of the waiting publishes of all connections. */
  private totalBytes = 0;
  /** Lanes not being read; each has publishes waiting, so each is drained again. */
  private readonly paused = new Set<Lane>();
  private readonly limits: UnacknowledgedLimits;
  /** Times a connection was not read because of the limits (a count for the summary). */
  pauses = 0;

  constructor(
    limits: Partial<UnacknowledgedLimits> = {},
    private readonly gate?: ReadGate,
  ) {
    this.limits = { ...DEFAULT_UNACKNOWLEDGED_LIMITS, ...limits };
  }

  /** Bytes the waiting publishes of all connections hold now. */
  get waitingBytes(): number {
    return this.totalBytes;
  }

  /** A publish decided at once (refused, or nothing to wait for): its callback runs after those before it. */
  now(client: object | null, done: PublishCallback, error: Error | null): void {
    const lane = client ? this.lanes.get(client) : undefined;
    if (!lane || lane.head === lane.slots.length) {
      done(error);
      return;
    }
    lane.slots.push({ done, bytes: 0, counted: false, settled: true, error });
  }

  /**
   * A publish whose callback waits for `outcome` (null: acknowledge; an Error: refuse). The
   * promise must not reject. `bytes`: its payload and topic. A publish of the broker's own (no
   * client) just waits.
   */
  wait(
    client: object | null,
    done: PublishCallback,
    outcome: Promise<Error | null>,
    bytes = 0,
  ): void {
    if (!client) {
      void outcome.then(done);
      return;
    }
    let lane = this.lanes.get(client);
    if (!lane) {
      lane = { client, slots: [], head: 0, waiting: 0, paused: false };
      this.lanes.set(client, lane);
    }
    const counted = PAYLOAD_COPIES * bytes + PUBLISH_OVERHEAD_BYTES;
    const slot: Slot = { done, bytes: counted, counted: true, settled: false, error: null };
    lane.slots.push(slot);
    lane.waiting++;
    this.totalBytes += counted;
    if (
      !lane.paused &&
      (lane.waiting >= this.limits.perConnection || this.totalBytes >= this.limits.totalBytes)
    ) {
      lane.paused = true;
      this.paused.add(lane);
      this.pauses++;
      this.gate?.pause(client);
    }
    const l = lane;
    void outcome.then((error) => {
      slot.settled = true;
      slot.error = error;
      this.drain(l);
    });
  }

  /** Runs the callbacks of the settled publishes at the head of the lane, in order. */
  private drain(lane: Lane): void {
    let freed = false;
    while (lane.head < lane.slots.length && lane.slots[lane.head].settled) {
      const slot = lane.slots[lane.head++];
      if (slot.counted) {
        lane.waiting--;
        this.totalBytes -= slot.bytes;
        freed = true;
      }
      slot.done(slot.error);
    }
    if (freed && this.paused.size > 0) this.resumeWhatMayRead();
    if (lane.head === lane.slots.length) {
      lane.slots = [];
      lane.head = 0;
    } else if (lane.head > 1024 && lane.head * 2 > lane.slots.length) {
      lane.slots = lane.slots.slice(lane.head);
      lane.head = 0;
    }
  }

  /**
   * Reads again each paused connection that is down to half its own limit, while the total is
   * under its limit (or the connection has nothing waiting at all).
   */
  private resumeWhatMayRead(): void {
    const underTotal = this.totalBytes < this.limits.totalBytes;
    for (const lane of this.paused) {
      if (lane.waiting * 2 > this.limits.perConnection) continue;
      if (!underTotal && lane.waiting > 0) continue;
      lane.paused = false;
      this.paused.delete(lane);
      this.gate?.resume(lane.client);
    }
  }
}
