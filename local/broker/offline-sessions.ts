/**
 * Bounds on what persistent sessions (clean session 0) hold while their clients are away.
 *
 * aedes' in-memory persistence queues every QoS 1 message for every persistent session whose
 * subscription matches, online or not, and keeps a session until the client asks for a clean one:
 * without bounds, 1,500 offline sessions and one device at 20 messages a second grew the process by
 * about 3 MiB a second. AWS IoT Core bounds the same thing
 * (https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html#mqtt-persistent-sessions):
 * "When the client disconnects, the message broker stores unacknowledged QoS 1 messages and new QoS
 * 1 messages published to topics to which the client is subscribed. Messages are stored according
 * to account limit. Messages that exceed the limit will be dropped", and a session ends when "the
 * persistent session expiration time elapses", after which "its stored messages are discarded".
 * The limits are those of the AWS IoT Core quotas page
 * (https://docs.aws.amazon.com/general/latest/gr/iot-core.html#message-broker-limits): "Persistent
 * session expiry period", 1 hour by default ("After the expiry period has elapsed, the message
 * broker terminates the session and discards any associated queued messages"), and "Queued
 * messages per second per account", 500 by default. AWS's store is not this process's memory, so
 * two more bounds apply here: messages per session (Mosquitto's `max_queued_messages`, 1,000 by
 * default, which "also applies to offline persistent clients", mosquitto.conf(5)) and bytes over all
 * sessions. QoS 0 messages are never queued (aedes queues only QoS 1, as AWS stores only QoS 1).
 * At a limit the new message is dropped for that session and counted; what is queued stays, as
 * AWS keeps "the messages that were already queued before reaching the limit".
 */
import type { Aedes, Client } from "aedes";

export interface SessionLimits {
  /** How long a persistent session outlives its connection (AWS's "Persistent session expiry period"). @default 3,600,000 (1 hour) */
  readonly expiryMs: number;
  /** Messages queued for offline sessions per second, over all of them (AWS's "Queued messages per second per account"). @default 500 */
  readonly queuedPerSecond: number;
  /** Messages queued for one session. @default 1000 */
  readonly maxMessagesPerSession: number;
  /**
   * Bytes queued for all sessions together, each message counted with its payload, topic and
   * {@link QUEUED_OVERHEAD_BYTES} once per session it is queued for. @default 64 MiB
   */
  readonly maxQueuedBytes: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  expiryMs: 3_600_000,
  queuedPerSecond: 500,
  maxMessagesPerSession: 1000,
  maxQueuedBytes: 64 * 1024 * 1024,
};

/** aedes' queued packet object and its place in the session's array, about. */
export const QUEUED_OVERHEAD_BYTES = 256;

export interface SessionStats {
  /** Messages dropped for a session because a limit was reached, by limit. */
  dropped: { session: number; bytes: number; rate: number };
  /** Sessions ended because their client stayed away longer than expiryMs. */
  expired: number;
}

/** A message queued for a session, as aedes' persistence hands it over. */
interface QueuedPacket {
  readonly topic: string;
  readonly payload: Buffer | string;
  readonly messageId?: number;
}

/** The part of aedes' persistence (aedes-persistence 11, promise style) that is bounded here. */
interface OutgoingPersistence {
  outgoingEnqueue(sub: { clientId: string }, packet: QueuedPacket): Promise<void>;
  outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: QueuedPacket): Promise<void>;
  outgoingUpdate(client: { id: string }, packet: QueuedPacket): Promise<void>;
  outgoingClearMessageId(
    client: { id: string },
    packet: QueuedPacket,
  ): Promise<QueuedPacket | undefined>;
  outgoingStream(client: { id: string }): AsyncIterable<QueuedPacket>;
  cleanSubscriptions(client: { id: string }): Promise<void>;
}

const size = (p: QueuedPacket) => p.topic.length + p.payload.length + QUEUED_OVERHEAD_BYTES;

export class OfflineSessions {
  readonly stats: SessionStats = { dropped: { session: 0, bytes: 0, rate: 0 }, expired: 0 };
  readonly limits: SessionLimits;
  /** Messages and bytes queued per session (client id). */
  private readonly queued = new Map<string, { messages: number; bytes: number }>();
  private totalBytes = 0;
  private second = 0;
  private inSecond = 0;
  /** Sessions dropping messages, so that each says so once until it reconnects. */
  private readonly dropping = new Set<string>();
  private readonly expiries = new Map<string, NodeJS.Timeout>();
  private aedes: Aedes | undefined;

  constructor(
    limits: Partial<SessionLimits> = {},
    private readonly onEvent: (clientId: string, reason: string) => void = () => undefined,
    private readonly now: () => number = Date.now,
  ) {
    this.limits = { ...DEFAULT_SESSION_LIMITS, ...limits };
  }

  /** Bytes queued for all sessions now. */
  get queuedBytes(): number {
    return this.totalBytes;
  }

  /** Messages queued for one session now. */
  queuedFor(clientId: string): number {
    return this.queued.get(clientId)?.messages ?? 0;
  }

  /** Puts the bounds on aedes' persistence and follows connects and disconnects for the expiry. */
  attach(aedes: Aedes): void {
    this.aedes = aedes;
    const p = (aedes as unknown as { persistence: OutgoingPersistence }).persistence;
    const enqueue = p.outgoingEnqueueCombi.bind(p);
    const update = p.outgoingUpdate.bind(p);
    const clear = p.outgoingClearMessageId.bind(p);
    p.outgoingEnqueueCombi = (subs, packet) => enqueue(this.admit(subs, packet), packet);
    p.outgoingEnqueue = (sub, packet) => enqueue(this.admit([sub], packet), packet);
    // A message not queued for a connected persistent session is still delivered to it: aedes
    // then finds nothing to update, which must not cost the client its connection.
    p.outgoingUpdate = (client, packet) => update(client, packet).catch(() => undefined);
    p.outgoingClearMessageId = async (client, packet) => {
      const removed = await clear(client, packet);
      if (removed) this.release(client.id, removed);
      return removed;
    };
    aedes.on("client", (client: Client) => {
      const timer = this.expiries.get(client.id);
      if (timer) clearTimeout(timer);
      this.expiries.delete(client.id);
      this.dropping.delete(client.id);
    });
    aedes.on("clientDisconnect", (client: Client) => {
      if (client.clean !== false || !client.id) return;
      const id = client.id;
      const old = this.expiries.get(id);
      if (old) clearTimeout(old);
      const timer = setTimeout(() => void this.expire(id), this.limits.expiryMs);
      timer.unref();
      this.expiries.set(id, timer);
    });
  }

  /** Stops the expiry timers (the broker is stopping). */
  stop(): void {
    for (const t of this.expiries.values()) clearTimeout(t);
    this.expiries.clear();
  }

  /** The sessions this message may be queued for, counted; the others drop it. */
  private admit<T extends { clientId: string }>(subs: T[], packet: QueuedPacket): T[] {
    const bytes = size(packet);
    const clients = (this.aedes as unknown as { clients?: Record<string, unknown> } | undefined)
      ?.clients;
    const admitted: T[] = [];
    for (const sub of subs) {
      const id = sub.clientId;
      const offline = clients?.[id] === undefined;
      const q = this.queued.get(id) ?? { messages: 0, bytes: 0 };
      let limit: keyof SessionStats["dropped"] | undefined;
      if (q.messages >= this.limits.maxMessagesPerSession) limit = "session";
      else if (this.totalBytes + bytes > this.limits.maxQueuedBytes) limit = "bytes";
      else if (offline && !this.takeRate()) limit = "rate";
      if (limit !== undefined) {
        this.stats.dropped[limit]++;
        if (!this.dropping.has(id)) {
          this.dropping.add(id);
          this.onEvent(id, this.dropReason(limit, q.messages));
        }
        continue;
      }
      q.messages++;
      q.bytes += bytes;
      this.totalBytes += bytes;
      this.queued.set(id, q);
      admitted.push(sub);
    }
    return admitted;
  }

  private dropReason(limit: keyof SessionStats["dropped"], messages: number): string {
    const l = this.limits;
    const why =
      limit === "session"
        ? `${messages} messages queued for it (the limit per session)`
        : limit === "bytes"
          ? `${Math.round(this.totalBytes / 1024 / 1024)} MiB queued for all persistent sessions (the limit)`
          : `${l.queuedPerSecond} messages a second queued for offline sessions (AWS IoT's "Queued messages per second per account")`;
    return `persistent session: ${why}; new QoS 1 messages for it are dropped until it reconnects`;
  }

  /** One more queued message this second, if the rate allows it. */
  private takeRate(): boolean {
    const second = Math.floor(this.now() / 1000);
    if (second !== this.second) {
      this.second = second;
      this.inSecond = 0;
    }
    if (this.inSecond >= this.limits.queuedPerSecond) return false;
    this.inSecond++;
    return true;
  }

  private release(clientId: string, packet: QueuedPacket): void {
    const q = this.queued.get(clientId);
    if (!q) return;
    const bytes = size(packet);
    q.messages--;
    q.bytes -= bytes;
    this.totalBytes -= bytes;
    if (q.messages <= 0) {
      this.totalBytes -= q.bytes;
      this.queued.delete(clientId);
    }
  }

  /** Ends a session whose client stayed away: its subscriptions and queued messages go. */
  private async expire(clientId: string): Promise<void> {
    this.expiries.delete(clientId);
    const aedes = this.aedes;
    if (!aedes) return;
    const clients = (aedes as unknown as { clients: Record<string, unknown> }).clients;
    if (clients[clientId] !== undefined) return; // back meanwhile
    const p = (aedes as unknown as { persistence: OutgoingPersistence }).persistence;
    const client = { id: clientId };
    const messages = this.queuedFor(clientId);
    try {
      await p.cleanSubscriptions(client);
      for await (const packet of p.outgoingStream(client)) {
        await p.outgoingClearMessageId(client, packet);
      }
    } catch (e) {
      this.onEvent(clientId, `persistent session could not be ended: ${(e as Error).message}`);
      return;
    }
    this.stats.expired++;
    this.dropping.delete(clientId);
    this.onEvent(
      clientId,
      `persistent session expired after ${this.limits.expiryMs / 1000} s offline (AWS IoT's "Persistent session expiry period"); ${messages} queued message(s) discarded`,
    );
  }
}
