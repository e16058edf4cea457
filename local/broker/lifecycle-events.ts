// Lifecycle events as AWS IoT publishes them on its reserved topics: a client connected,
// disconnected (with the reason), failed to connect, subscribed or unsubscribed, written from
// https://docs.aws.amazon.com/iot/latest/developerguide/life-cycle-events.html. The broker says
// what happened; this module builds the documented messages and hands them to an injected
// publish (the pipeline's: to every subscriber whose policy allows it, and to the rules).
import { randomUUID } from "node:crypto";
import { LIFECYCLE_TOPIC } from "../../core/topics";
import type { ClientIdentity, DisconnectReason, LocalBroker } from "./broker";

export type { DisconnectReason };

export interface LifecycleLimits {
  /**
   * Events waiting to be published; past it new events are dropped, counted and logged, so that a
   * connect storm cannot grow memory (a 10,000-thing fleet connecting at once fits). @default 10000
   */
  readonly maxPending: number;
  /**
   * Client ids whose version number is remembered; past it the oldest disconnected one is
   * forgotten (its next connect starts again at 0, as after AWS's hour). @default 100000
   */
  readonly maxTrackedClients: number;
  /**
   * "If a client is not connected for approximately one hour, the version number is reset to 0"
   * (life-cycle-events.html, versionNumber). @default 3600000
   */
  readonly versionResetMs: number;
}

export const DEFAULT_LIFECYCLE_LIMITS: LifecycleLimits = {
  maxPending: 10_000,
  maxTrackedClients: 100_000,
  versionResetMs: 60 * 60 * 1000,
};

export interface LifecycleStats {
  /** Events the publisher took (resolved). */
  published: number;
  /** Events dropped because maxPending were waiting. */
  dropped: number;
  /** Events the publisher failed on (logged). */
  failed: number;
  /** Disconnections by reason, as queued for `$aws/events/presence/disconnected/+`. */
  disconnections: Partial<Record<DisconnectReason, number>>;
}

export interface LifecycleOptions {
  /** Publishes one event; the pipeline's publishes as AWS IoT itself (broker.publishAsService). */
  readonly publish: (topic: string, payload: Buffer) => Promise<void>;
  /**
   * The thing name to put in the events, or undefined to leave it out: "thingName will only be
   * included if the client is connecting using the exclusive thing feature".
   */
  readonly thingNameOf?: (id: ClientIdentity) => string | undefined;
  readonly limits?: Partial<LifecycleLimits>;
  readonly log?: (line: string) => void;
  /** @default Date.now */
  readonly now?: () => number;
}

/**
 * What one connection's events share: "The connect and disconnect messages for a client
 * connection have the same version number".
 */
interface ConnectionState {
  readonly sessionIdentifier: string;
  readonly versionNumber: number;
}

interface ClientHistory {
  version: number;
  live: number;
  lastDisconnectAt: number;
  /** The persistent session's identifier while the session lives (clean = false). */
  session?: string;
}

/** Turns broker events into AWS IoT's lifecycle messages and publishes them, in order, bounded. */
export class LifecycleEvents {
  readonly stats: LifecycleStats = { published: 0, dropped: 0, failed: 0, disconnections: {} };
  readonly limits: LifecycleLimits;
  private readonly connections = new WeakMap<ClientIdentity, ConnectionState>();
  private readonly clients = new Map<string, ClientHistory>();
  private readonly queue: { topic: string; payload: Buffer }[] = [];
  private draining = false;
  private stopped = false;
  private droppingSince = 0;
  private readonly now: () => number;
  private readonly log: (line: string) => void;

  constructor(private readonly opts: LifecycleOptions) {
    this.limits = { ...DEFAULT_LIFECYCLE_LIMITS, ...opts.limits };
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? (() => undefined);
  }

  /** Listens to the broker's connect, disconnect, refusal and subscription events. */
  attach(broker: LocalBroker): this {
    broker.on("connect", (id, _remote, clean) => this.connected(id, clean));
    broker.on("disconnect", (id, reason) => this.disconnected(id, reason));
    broker.on("connectRefused", (_clientId, _thing, _reason, id) => {
      if (id !== undefined) this.connectFailed(id);
    });
    broker.on("subscribed", (id, filters) => this.subscriptions(id, "subscribed", filters));
    broker.on("unsubscribed", (id, filters) => this.subscriptions(id, "unsubscribed", filters));
    return this;
  }

  /** A client connected: `$aws/events/presence/connected/<clientId>`. */
  connected(id: ClientIdentity, clean = true): void {
    const now = this.now();
    let h = this.clients.get(id.clientId);
    // versionNumber: "monotonically increasing ... for each client ID connection"; reset to 0
    // after about an hour not connected.
    const keep =
      h !== undefined && (h.live > 0 || now - h.lastDisconnectAt < this.limits.versionResetMs);
    if (h === undefined || !keep) {
      h = { version: 0, live: 0, lastDisconnectAt: now };
    } else {
      h.version++;
      this.clients.delete(id.clientId); // re-inserted below: the map is oldest first
    }
    h.live++;
    // sessionIdentifier "exists for the life of the session": a persistent session keeps it.
    if (clean) h.session = undefined;
    const sessionIdentifier = (!clean && (keep ? h.session : undefined)) || randomUUID();
    if (!clean) h.session = sessionIdentifier;
    this.clients.set(id.clientId, h);
    this.forgetOldest();
    this.connections.set(id, { sessionIdentifier, versionNumber: h.version });
    this.send(LIFECYCLE_TOPIC.connected, id, {
      ...this.common(id, "connected", sessionIdentifier, now),
      // "ipAddress ... Found in connection messages only."
      ...(id.remoteAddress === undefined ? {} : { ipAddress: ipOf(id.remoteAddress) }),
      versionNumber: h.version,
    });
  }

  /** A client disconnected: `$aws/events/presence/disconnected/<clientId>`. */
  disconnected(id: ClientIdentity, reason: DisconnectReason): void {
    if (this.stopped) return;
    const now = this.now();
    const state = this.connections.get(id);
    const h = this.clients.get(id.clientId);
    if (h !== undefined && h.live > 0) {
      h.live--;
      h.lastDisconnectAt = now;
    }
    const sent = this.send(LIFECYCLE_TOPIC.disconnected, id, {
      ...this.common(id, "disconnected", state?.sessionIdentifier ?? randomUUID(), now),
      clientInitiatedDisconnect: reason === "CLIENT_INITIATED_DISCONNECT",
      disconnectReason: reason,
      versionNumber: state?.versionNumber ?? 0,
    });
    if (sent) this.stats.disconnections[reason] = (this.stats.disconnections[reason] ?? 0) + 1;
  }

  /**
   * "when a client is not authorized to connect or when a last will and testament is configured
   * and the client is not authorized to publish to that last will topic":
   * `$aws/events/presence/connect_failed/<clientId>`.
   */
  connectFailed(id: ClientIdentity): void {
    const now = this.now();
    const { clientId, thingName, timestamp } = this.common(id, "connect_failed", "", now);
    this.send(LIFECYCLE_TOPIC.connectFailed, id, {
      clientId,
      ...(thingName === undefined ? {} : { thingName }),
      timestamp,
      eventType: "connect_failed",
      connectFailureReason: "AUTHORIZATION_FAILED",
      principalIdentifier: id.certificateId ?? "",
      sessionIdentifier: randomUUID(),
      ...(id.remoteAddress === undefined ? {} : { ipAddress: ipOf(id.remoteAddress) }),
    });
  }

  /** `$aws/events/subscriptions/subscribed|unsubscribed/<clientId>` with the filters as `topics`. */
  subscriptions(id: ClientIdentity, kind: "subscribed" | "unsubscribed", filters: string[]): void {
    if (filters.length === 0) return;
    const state = this.connections.get(id);
    this.send(LIFECYCLE_TOPIC[kind], id, {
      ...this.common(id, kind, state?.sessionIdentifier ?? randomUUID(), this.now()),
      topics: filters,
    });
  }

  /** No event is published after this; what waits is dropped (the broker is going away). */
  stop(): void {
    this.stopped = true;
    this.queue.length = 0;
  }

  private common(id: ClientIdentity, eventType: string, sessionIdentifier: string, now: number) {
    const thingName = this.opts.thingNameOf?.(id);
    return {
      clientId: id.clientId,
      ...(thingName === undefined ? {} : { thingName }),
      timestamp: now,
      eventType,
      sessionIdentifier,
      // "For TLS mutual authentication certificates, this is the certificate ID."
      principalIdentifier: id.certificateId ?? "",
    };
  }

  /** Queues an event; false when none is published (stopped, such a client id, too many waiting). */
  private send(prefix: string, id: ClientIdentity, message: Record<string, unknown>): boolean {
    // "Client IDs that contain # or + do not receive lifecycle events."
    if (this.stopped || /[#+]/.test(id.clientId)) return false;
    if (this.queue.length >= this.limits.maxPending) {
      this.stats.dropped++;
      if (this.droppingSince === 0) {
        this.droppingSince = this.stats.dropped;
        this.log(
          `lifecycle: ${this.limits.maxPending} events waiting to be published; dropping new ones until they go`,
        );
      }
      return false;
    }
    this.queue.push({ topic: prefix + id.clientId, payload: Buffer.from(JSON.stringify(message)) });
    void this.drain();
    return true;
  }

  /** One at a time, in the order the broker saw them. */
  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      let next;
      while ((next = this.queue.shift()) !== undefined) {
        try {
          await this.opts.publish(next.topic, next.payload);
          this.stats.published++;
        } catch (e) {
          if (this.stopped) continue;
          this.stats.failed++;
          this.log(`lifecycle: could not publish on ${next.topic}: ${(e as Error).message}`);
        }
      }
      if (this.droppingSince > 0) {
        this.log(
          `lifecycle: caught up; ${this.stats.dropped - this.droppingSince + 1} event(s) were dropped`,
        );
        this.droppingSince = 0;
      }
    } finally {
      this.draining = false;
    }
  }

  /** Bounded: the oldest client ids not connected go first (their next version starts at 0). */
  private forgetOldest(): void {
    if (this.clients.size <= this.limits.maxTrackedClients) return;
    for (const [clientId, h] of this.clients) {
      if (h.live === 0) {
        this.clients.delete(clientId);
        if (this.clients.size <= this.limits.maxTrackedClients) return;
      }
    }
  }
}

/** "This can be in IPv4 or IPv6 format": an IPv4 peer seen through a dual-stack socket as IPv4. */
function ipOf(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}
