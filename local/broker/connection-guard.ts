// Connection hygiene for the embedded broker: caps on connections (per address and in all), a
// deadline for the TLS handshake, the real reason and the peer's address when TLS refuses a client,
// the packet limits of broker-limits.ts applied to every byte before aedes parses it, and a bound
// on what a slow subscriber may have waiting, so that no client can hold the others back or take
// the broker's memory.
import type { Socket } from "node:net";
import type * as tls from "node:tls";
import type { Aedes, Client } from "aedes";
import { EnvironmentError } from "../../core/errors";
import {
  AWS_PACKET_LIMITS,
  DISCONNECT_REASON,
  PacketBudget,
  PacketScanner,
  type PacketLimits,
  type Refusal,
} from "./broker-limits";

export interface ConnectionLimits {
  /** Open connections in all; beyond it a new connection is closed at once. @default 4096 */
  readonly maxConnections: number;
  /** Open connections from one IP address. @default 2048 */
  readonly maxConnectionsPerAddress: number;
  /** Time to complete the TLS handshake. @default 10000 */
  readonly handshakeTimeoutMs: number;
  /** Time after the handshake to send CONNECT (aedes' connectTimeout). @default 10000 */
  readonly connectTimeoutMs: number;
  /** Bytes a subscriber may have waiting to be written before messages to it are dropped. @default 1 MiB */
  readonly maxQueuedBytesPerSubscriber: number;
  /** Messages a subscriber may have waiting likewise. @default 1000 */
  readonly maxQueuedMessagesPerSubscriber: number;
  /**
   * Bytes of messages waiting for all subscribers together. Beyond it, messages to a subscriber
   * that already has 128 KiB waiting are dropped too (one that keeps up is never held to it), so
   * that many slow subscribers cannot together take what one may not. @default 64 MiB
   */
  readonly maxQueuedBytes: number;
  /** A subscriber whose socket takes nothing for this long is disconnected (aedes' drainTimeout). @default 30000 */
  readonly slowConsumerTimeoutMs: number;
  /** Bytes of partly received large packets the broker holds for all clients together. @default 64 MiB */
  readonly maxBufferedPacketBytes: number;
  /**
   * AWS IoT's keep-alive for a client that asks for none (0) or for more: 1,200 s; the client is
   * disconnected after 1.5 times that without a packet. (aedes itself keeps such a client forever.)
   * @default 1200
   */
  readonly defaultKeepaliveSeconds: number;
  /**
   * AWS IoT's least keep-alive: a client asking for less is timed by this (quotas page; see
   * serverKeepAlive in local/broker/mqtt5.ts). Lower only in tests that time a keep-alive out.
   * @default 30
   */
  readonly minKeepaliveSeconds: number;
  readonly packets: PacketLimits;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = {
  maxConnections: 4096,
  maxConnectionsPerAddress: 2048,
  handshakeTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  maxQueuedBytesPerSubscriber: 1024 * 1024,
  maxQueuedMessagesPerSubscriber: 1000,
  maxQueuedBytes: 64 * 1024 * 1024,
  slowConsumerTimeoutMs: 30_000,
  maxBufferedPacketBytes: 64 * 1024 * 1024,
  defaultKeepaliveSeconds: 1200,
  minKeepaliveSeconds: 30,
  packets: AWS_PACKET_LIMITS,
};

/** An event that can be folded: one of a kind per address (and client id) per window. */
export interface FoldableEvent<K extends string = string> {
  readonly kind: K;
  /** `address:port` of the peer; the address alone on a folded event. */
  readonly remote: string;
  /** The MQTT client id, once CONNECT named one. */
  readonly clientId?: string;
  readonly reason: string;
  /** More events of this kind from this address in the last window, folded into this line. */
  readonly more?: number;
}

/** What the guard refused or noticed; the broker turns it into a log line. */
export type GuardEventKind =
  | Refusal
  | "connection-cap"
  | "handshake-timeout"
  | "connect-timeout"
  | "idle"
  | "slow-consumer"
  | "slow-consumer-recovered"
  | "slow-consumer-disconnected";

export type GuardEvent = FoldableEvent<GuardEventKind>;

export interface GuardStats {
  /** Connections closed at once for being over the total or per-address cap. */
  connectionsOverCap: number;
  handshakeTimeouts: number;
  connectTimeouts: number;
  /** Clients without a keep-alive of their own closed after 1.5 × defaultKeepaliveSeconds idle. */
  idleTimeouts: number;
  /** Connections closed for a packet they sent, by kind. */
  refusedPackets: Record<Refusal, number>;
  /** Messages not delivered to a subscriber that had too much waiting. */
  slowConsumerDrops: number;
  /** Subscribers disconnected after taking nothing for slowConsumerTimeoutMs. */
  slowConsumerDisconnects: number;
}

/** A delivery function of an aedes client: (packet, done); done must be called once. */
type Deliver = (packet: unknown, done: () => void) => void;
type DeliveringClient = Client & { deliver0: Deliver; deliverQoS: Deliver };

/** OpenSSL's reason ("peer did not return a certificate") without its source-file trail. */
export function tlsReason(err: Error): string {
  const m = /SSL routines:[^:]*:([^:]+):/.exec(err.message);
  return m ? m[1] : (err.message.split("\n")[0] ?? err.message);
}

/**
 * OpenSSL's words for the verification codes Node reports as `authorizationError`, for the ones a
 * device meets; anything else is shown as its code.
 */
const VERIFY_REASONS: Readonly<Record<string, string>> = {
  CERT_HAS_EXPIRED: "certificate has expired",
  CERT_NOT_YET_VALID: "certificate is not yet valid",
  DEPTH_ZERO_SELF_SIGNED_CERT: "self-signed certificate",
  SELF_SIGNED_CERT_IN_CHAIN: "self-signed certificate in certificate chain",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    "unable to verify the first certificate (not issued by this broker's CA)",
  UNABLE_TO_GET_ISSUER_CERT: "unable to get issuer certificate (not issued by this broker's CA)",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    "unable to get local issuer certificate (not issued by this broker's CA)",
  CERT_SIGNATURE_FAILURE: "certificate signature failure",
  CERT_REVOKED: "certificate revoked",
  INVALID_PURPOSE: "unsuitable certificate purpose (not a client certificate)",
  CERT_UNTRUSTED: "certificate not trusted",
  CERT_REJECTED: "certificate rejected",
};

/** A connection's read buffer (its highWaterMark): about what one read of it takes. */
export const MAX_READ_BYTES = 16 * 1024;

/** aedes' client as the read loop sees it (lib/client.js), not part of its typed API. */
interface AedesReader {
  readonly closed?: boolean;
  readonly _parser?: { parse(b: Buffer): void };
}

/** A subscriber with this much waiting is behind, and held to the shared budget. */
const BEHIND_BYTES = 128 * 1024;

/** Log lines of one kind from one address are folded into one per this window. */
const FOLD_MS = 10_000;

export class ConnectionGuard {
  readonly stats: GuardStats = {
    connectionsOverCap: 0,
    handshakeTimeouts: 0,
    connectTimeouts: 0,
    idleTimeouts: 0,
    refusedPackets: { "too-large": 0, qos2: 0, topic: 0, malformed: 0, unsupported: 0, busy: 0 },
    slowConsumerDrops: 0,
    slowConsumerDisconnects: 0,
  };
  readonly limits: ConnectionLimits;
  private readonly budget: PacketBudget;
  private open = 0;
  /** Bytes handed to subscribers' sockets and not yet written out, over all subscribers. */
  private queuedBytes = 0;
  private readonly perAddress = new Map<string, number>();
  /** Raw sockets this guard closed itself: TLS then reports them as "socket hang up". */
  private readonly closedByGuard = new WeakSet<Socket>();
  private readonly folds = new Map<string, { count: number; timer: NodeJS.Timeout }>();
  /** Connections not read for now (the broker's bound on unacknowledged publishes). */
  private readonly notRead = new WeakSet<Socket>();
  /** Connections with a read scheduled by readLater. */
  private readonly readsDue = new WeakSet<Socket>();

  constructor(
    limits: Partial<ConnectionLimits> = {},
    private readonly onEvent: (e: GuardEvent) => void = () => undefined,
  ) {
    this.limits = { ...DEFAULT_CONNECTION_LIMITS, ...limits };
    this.budget = new PacketBudget(this.limits.maxBufferedPacketBytes);
  }

  /** The aedes options this guard's limits set. */
  aedesOptions(): { connectTimeout: number; drainTimeout: number } {
    return {
      connectTimeout: this.limits.connectTimeoutMs,
      drainTimeout: this.limits.slowConsumerTimeoutMs,
    };
  }

  /** The tls.createServer option this guard's limits set. */
  tlsOptions(): { handshakeTimeout: number } {
    return { handshakeTimeout: this.limits.handshakeTimeoutMs };
  }

  /** Counts and caps connections as they arrive, before TLS. */
  attach(server: tls.Server, aedes: Aedes): void {
    // Prepended: the cap applies before the TLS layer spends anything on the socket.
    server.prependListener("connection", (raw: Socket) => this.admit(raw));
    aedes.on("connectionError", (client, err) => {
      if (err.message === "connect did not arrive in time") {
        this.stats.connectTimeouts++;
        this.report(
          "connect-timeout",
          this.remoteOf(client.conn as tls.TLSSocket),
          undefined,
          `no CONNECT within ${this.limits.connectTimeoutMs} ms of the TLS handshake; closed`,
        );
      }
    });
    // aedes reports a drain timeout once per write that was waiting: count the client once.
    const cutOff = new WeakSet<Client>();
    aedes.on("clientError", (client, err) => {
      if (err.message === "drain timeout" && !cutOff.has(client)) {
        cutOff.add(client);
        this.stats.slowConsumerDisconnects++;
        this.report(
          "slow-consumer-disconnected",
          this.remoteOf(client.conn as tls.TLSSocket),
          client.id,
          `took nothing from its socket for ${this.limits.slowConsumerTimeoutMs} ms; disconnected`,
        );
      }
    });
  }

  /**
   * The secure-connection handler: the packet scanner on every byte aedes reads, then aedes, then
   * the bound on the new client's deliveries.
   */
  handler(aedes: Aedes): (socket: tls.TLSSocket) => void {
    return (socket) => {
      this.scan(socket);
      const client = aedes.handle(socket) as DeliveringClient;
      this.boundDeliveries(client);
    };
  }

  /**
   * A TLS handshake that failed: the socket is destroyed (Node leaves that to a tlsClientError
   * listener, so an idle socket would otherwise stay open for good). Returns the peer and the
   * verification's own reason ("certificate has expired") rather than "socket hang up", or
   * undefined when the guard closed the socket itself or it timed out (counted and logged here).
   */
  tlsRefusal(err: Error, socket: tls.TLSSocket): { remote: string; reason: string } | undefined {
    const raw = (socket as unknown as { _parent?: Socket })._parent;
    socket.destroy();
    if (raw && this.closedByGuard.has(raw)) return undefined;
    const remote = this.remoteOf(socket);
    if ((err as NodeJS.ErrnoException).code === "ERR_TLS_HANDSHAKE_TIMEOUT") {
      this.stats.handshakeTimeouts++;
      this.report(
        "handshake-timeout",
        remote,
        undefined,
        `no TLS handshake within ${this.limits.handshakeTimeoutMs} ms; closed`,
      );
      return undefined;
    }
    const code = (socket as unknown as { authorizationError?: string }).authorizationError;
    const reason = code ? `${VERIFY_REASONS[code] ?? code} (${code})` : tlsReason(err);
    return { remote, reason };
  }

  /** `address:port`, from the TLS socket or, once that is gone, the TCP socket under it. */
  remoteOf(socket: tls.TLSSocket | undefined): string {
    const raw = (socket as unknown as { _parent?: Socket } | undefined)?._parent;
    const address = socket?.remoteAddress ?? raw?.remoteAddress ?? "?";
    const port = socket?.remotePort ?? raw?.remotePort ?? "?";
    return `${address}:${port}`;
  }

  /** Open connections now (for tests and the summary). */
  get openConnections(): number {
    return this.open;
  }

  private admit(raw: Socket): void {
    const address = raw.remoteAddress ?? "?";
    const fromAddress = this.perAddress.get(address) ?? 0;
    const over =
      this.open >= this.limits.maxConnections
        ? `${this.open} connections open (the broker's limit)`
        : fromAddress >= this.limits.maxConnectionsPerAddress
          ? `${fromAddress} connections open from ${address} (the limit per address)`
          : undefined;
    if (over) {
      this.stats.connectionsOverCap++;
      this.closedByGuard.add(raw);
      raw.destroy();
      this.report(
        "connection-cap",
        `${address}:${raw.remotePort ?? "?"}`,
        undefined,
        `refused: ${over}`,
      );
      return;
    }
    this.open++;
    this.perAddress.set(address, fromAddress + 1);
    raw.once("close", () => {
      this.open--;
      const n = (this.perAddress.get(address) ?? 1) - 1;
      if (n <= 0) this.perAddress.delete(address);
      else this.perAddress.set(address, n);
    });
  }

  /**
   * Every chunk aedes reads (it pulls with `read()`, never in flowing mode) passes the scanner
   * first; a violation closes the connection and hands aedes nothing of that chunk.
   */
  private scan(socket: tls.TLSSocket): void {
    const scanner = new PacketScanner(this.limits.packets, this.budget);
    // Reads of at most about MAX_READ_BYTES (Node's default is 64 KiB): a flooding connection
    // then overshoots the bound on its waiting publishes by at most one such read, and takes its
    // turn with the others sooner.
    (
      socket as unknown as { _readableState: { highWaterMark: number } }
    )._readableState.highWaterMark = MAX_READ_BYTES;
    const read = socket.read.bind(socket);
    let refused = false;
    let idle: NodeJS.Timeout | undefined;
    const idleMs = this.limits.defaultKeepaliveSeconds * 1500;
    socket.read = ((size?: number) => {
      // Not reading leaves the bytes in the socket: once its buffer is full, TCP's window closes
      // and the sender waits (backpressure) instead of the broker holding its publishes.
      if (refused || this.notRead.has(socket)) return null;
      const chunk: unknown = read(size);
      if (!Buffer.isBuffer(chunk)) return chunk;
      const v = scanner.feed(chunk);
      if (idle) idle.refresh();
      else if (scanner.keepalive !== undefined && !v) {
        const k = scanner.keepalive;
        if (k === 0 || k > this.limits.defaultKeepaliveSeconds) {
          idle = setTimeout(() => {
            this.stats.idleTimeouts++;
            const id = (socket as unknown as { client?: Client }).client?.id;
            this.report(
              "idle",
              this.remoteOf(socket),
              id || undefined,
              `keep-alive ${k} s asked for; nothing received for ${idleMs / 1000} s (1.5 × AWS IoT's ${this.limits.defaultKeepaliveSeconds} s); disconnected`,
            );
            socket.destroy();
          }, idleMs);
          idle.unref();
        } else scanner.keepalive = undefined; // aedes keeps its own timer for this client
      }
      if (!v) return chunk;
      refused = true;
      this.stats.refusedPackets[v.kind]++;
      const client = (socket as unknown as { client?: Client }).client;
      const reasonCode = v.reasonCode ?? DISCONNECT_REASON[v.kind];
      const v5 = scanner.protocolLevel === 5 && client?.connected === true;
      this.report(
        v.kind,
        this.remoteOf(socket),
        client?.id || undefined,
        `${v.reason}; disconnected${v5 ? ` (DISCONNECT 0x${reasonCode.toString(16)})` : ""}`,
      );
      if (v5) {
        // AWS tells an MQTT 5 client why with a DISCONNECT reason code (mqtt.html, "MQTT reason
        // codes"); the socket goes within a second whether or not the client reads it.
        const closing = setTimeout(() => socket.destroy(), 1000);
        closing.unref();
        socket.once("close", () => clearTimeout(closing));
        client.disconnect({ reasonCode }, () => socket.destroy());
      } else socket.destroy();
      return null;
    }) as typeof socket.read;
    // Read when data arrives, whatever aedes' own read loop counts (it reads only once the
    // publishes it handed out have called back).
    socket.on("readable", () => this.readLater(socket));
    socket.once("close", () => {
      clearTimeout(idle);
      scanner.release();
    });
  }

  /**
   * Stops reading a client's connection: what it sends waits in its socket and its TCP window
   * until {@link resumeReading}. aedes reads on every 'readable' event; the scanner's read
   * returns nothing meanwhile.
   */
  pauseReading(client: object): void {
    const socket = (client as Client).conn as Socket | undefined;
    if (socket) this.notRead.add(socket);
  }

  /** Reads a paused connection again, starting with what waited in its socket. */
  resumeReading(client: object): void {
    const socket = (client as Client).conn as Socket | undefined;
    if (socket && this.notRead.delete(socket)) this.readLater(socket);
  }

  /**
   * Reads what waits in a connection's socket on the next turn and hands it to aedes' parser:
   * what aedes' own read loop does on 'readable' (lib/client.js nextBatch), minus its count of
   * callbacks still to come, which would hold the read back until every one of them ran. Never
   * from inside a callback: aedes' parser must not be re-entered.
   */
  private readLater(socket: Socket): void {
    if (this.readsDue.has(socket)) return;
    this.readsDue.add(socket);
    setImmediate(() => {
      this.readsDue.delete(socket);
      const c = (socket as unknown as { client?: AedesReader }).client;
      if (this.notRead.has(socket) || socket.destroyed || !c || c.closed || !c._parser) return;
      const chunk: unknown = socket.read();
      if (Buffer.isBuffer(chunk)) c._parser.parse(chunk);
    });
  }

  /**
   * Deliveries to this client never wait for its socket: aedes' deliver functions call back only
   * once the write drained, and everything published (the publisher's PUBACK included) waits for
   * that. So the callback is called at once, and what the client has waiting is bounded: beyond
   * maxQueued* its messages are dropped and counted (AWS IoT discards publishes a connection cannot
   * take), and aedes' drainTimeout disconnects a client that takes nothing at all.
   */
  private boundDeliveries(client: DeliveringClient): void {
    const conn = client.conn as tls.TLSSocket;
    let waiting = 0;
    /** Bytes of this subscriber's messages not yet written out. */
    let mine = 0;
    let dropping = false;
    let dropped = 0;
    const bound =
      (deliver: Deliver): Deliver =>
      (packet, done) => {
        const size = packetBytes(packet);
        if (
          waiting >= this.limits.maxQueuedMessagesPerSubscriber ||
          conn.writableLength >= this.limits.maxQueuedBytesPerSubscriber ||
          (this.queuedBytes + size > this.limits.maxQueuedBytes && mine >= BEHIND_BYTES)
        ) {
          this.stats.slowConsumerDrops++;
          dropped++;
          if (!dropping) {
            dropping = true;
            this.report(
              "slow-consumer",
              this.remoteOf(conn),
              client.id,
              `${waiting} message(s) / ${conn.writableLength} bytes waiting: dropping its messages until it catches up`,
            );
          }
          setImmediate(done);
          return;
        }
        waiting++;
        mine += size;
        this.queuedBytes += size;
        deliver(packet, () => {
          waiting--;
          mine -= size;
          this.queuedBytes -= size;
          if (dropping && waiting === 0) {
            dropping = false;
            this.report(
              "slow-consumer-recovered",
              this.remoteOf(conn),
              client.id,
              `caught up; ${dropped} message(s) were dropped`,
            );
          }
        });
        setImmediate(done);
      };
    client.deliver0 = bound(client.deliver0);
    client.deliverQoS = bound(client.deliverQoS);
  }

  /**
   * Passes an event on, folding repeats of one kind from one address (an idle-socket flood would
   * otherwise write a line per socket): the first goes at once, the rest as one line per window.
   */
  private report(
    kind: GuardEventKind,
    remote: string,
    clientId: string | undefined,
    reason: string,
  ): void {
    this.fold({ kind, remote, clientId, reason }, this.onEvent);
  }

  /**
   * The folding of {@link report} for events the broker reports itself (TLS refusals): the first
   * of a kind from an address (and client id) goes to `emit` at once; the repeats within
   * {@link FOLD_MS} are counted, and their count goes to `emit` as one event at the window's end,
   * with `more` set and the address without its port as `remote`.
   */
  fold<K extends string>(event: FoldableEvent<K>, emit: (e: FoldableEvent<K>) => void): void {
    const { kind, remote, clientId } = event;
    const address = remote.replace(/:[^:]*$/, "");
    const key = `${kind} ${address} ${clientId ?? ""}`;
    const fold = this.folds.get(key);
    if (fold) {
      fold.count++;
      return;
    }
    emit(event);
    const entry = {
      count: 0,
      timer: setTimeout(() => {
        this.folds.delete(key);
        if (entry.count > 0) {
          emit({
            kind,
            remote: address,
            reason: `${entry.count} more like this in ${FOLD_MS / 1000} s`,
            more: entry.count,
          });
        }
      }, FOLD_MS),
    };
    entry.timer.unref();
    this.folds.set(key, entry);
  }

  /** Stops the fold timers (the broker is stopping). */
  stop(): void {
    for (const f of this.folds.values()) clearTimeout(f.timer);
    this.folds.clear();
  }
}

/** The broker cannot listen where it was asked to. */
export class BrokerListenError extends EnvironmentError {}

/** A listen() failure as one line: whose port, why, what to do. */
export function listenError(e: unknown, host: string, port: number): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === "EADDRINUSE") {
    return new BrokerListenError(
      `port ${port} on ${host} is in use (another program, or another simulate with --port ${port}); choose another --port, or leave --port out for a free one`,
    );
  }
  if (code === "EACCES" || code === "EPERM") {
    return new BrokerListenError(
      `port ${port} on ${host} needs privileges this user does not have (${code}); choose a port above 1023, or leave --port out`,
    );
  }
  if (code === "EADDRNOTAVAIL") {
    return new BrokerListenError(`address ${host} is not on this machine (${code})`);
  }
  return e;
}

/** What a message to deliver takes in memory, roughly: its payload and topic. */
function packetBytes(packet: unknown): number {
  const p = packet as { payload?: Buffer | string; topic?: string };
  return 16 + (p.topic?.length ?? 0) + (p.payload?.length ?? 0);
}
