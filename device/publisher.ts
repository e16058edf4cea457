// One device's MQTT connection: validates each telemetry message, then publishes it over mutual TLS
// with a bounded in-flight window, a bounded offline queue, a rate limit, per-publish timeouts and
// reconnection with backoff, counting every message that is not acknowledged.
import mqtt, { ErrorWithReasonCode, type MqttClient } from "mqtt";
import { encodeTelemetry, type TelemetryError } from "./telemetry";
import { UserError } from "../core/errors";
import {
  IOT_MAX_CLIENT_ID_BYTES,
  IOT_PUBLISHES_PER_SECOND_PER_CONNECTION,
} from "../core/iot-limits";

/** Every default in one place. */
export const PUBLISHER_DEFAULTS = {
  qos: 1 as 0 | 1,
  /** QoS 1 messages sent and not yet acknowledged. */
  maxInFlight: 20,
  /** Messages waiting while offline or behind the window; the oldest are dropped beyond this. */
  maxQueue: 1000,
  publishTimeoutMs: 10_000,
  /** Publishes per second on this connection; 0 = unlimited. */
  rateLimit: IOT_PUBLISHES_PER_SECOND_PER_CONNECTION,
  /** Transmissions of one message before it counts as rejected. */
  maxAttempts: 3,
  reconnectMinMs: 500,
  reconnectMaxMs: 30_000,
  connectTimeoutMs: 10_000,
  keepaliveSeconds: 30,
};

export interface PublisherOptions {
  /** `mqtts://host:port` */
  readonly url: string;
  /** The MQTT client id: the thing name, as AWS IoT policies expect. */
  readonly clientId: string;
  readonly key: string;
  readonly cert: string;
  /** CA to trust; undefined uses Node's default store (Amazon Root CA 1 for AWS IoT). */
  readonly ca?: string;
  readonly qos?: number;
  /**
   * MQTT version: 4 (3.1.1) or 5. Under MQTT 5 a publish the broker refuses comes back as a
   * PUBACK reason code of 0x80 or more (AWS: 0x87 Not authorized) and is not sent again.
   * @default 4
   */
  readonly protocol?: 4 | 5;
  readonly maxInFlight?: number;
  readonly maxQueue?: number;
  readonly publishTimeoutMs?: number;
  readonly rateLimit?: number;
  readonly maxAttempts?: number;
  readonly reconnectMinMs?: number;
  readonly reconnectMaxMs?: number;
  readonly connectTimeoutMs?: number;
  /** Receives one line per first occurrence of each kind of problem. */
  readonly report?: (line: string) => void;
}

/** A setting that cannot work; the message is one line. */
export class PublisherError extends UserError {}

export type PublishOutcome =
  | { readonly status: "acked" }
  | { readonly status: "invalid"; readonly error: TelemetryError }
  | { readonly status: "dropped"; readonly reason: string }
  | { readonly status: "rejected"; readonly reason: string }
  | { readonly status: "unsent"; readonly reason: string };

export interface PublisherStats {
  /** Messages handed to send(). */
  submitted: number;
  /** Failed validation; never sent. */
  invalid: number;
  /** Distinct messages written to the connection at least once. */
  sent: number;
  /** Acknowledged by the broker (PUBACK at QoS 1; written to the socket at QoS 0). */
  acked: number;
  /** Pushed out of the full offline queue. */
  dropped: number;
  /** Given up after maxAttempts transmissions (the broker kept disconnecting or never acked). */
  rejected: number;
  /** Still queued or in flight when stop() gave up waiting. */
  unsent: number;
  /** Transmissions beyond the first. */
  retries: number;
  timeouts: number;
  /** Successful connections after the first. */
  reconnects: number;
  disconnects: number;
  /** Invalid messages by kind (field:rule). */
  invalidByKind: Map<string, number>;
}

interface Item {
  readonly topic: string;
  readonly payload: Buffer;
  readonly maxAttempts: number;
  attempts: number;
  /** Set once the outcome is decided; late callbacks for the item are then ignored. */
  settled: boolean;
  /** Told the outcome, if the caller asked for it (send()'s promise, or post()'s callback). */
  readonly done: ((outcome: PublishOutcome) => void) | undefined;
  /** The current transmission's mqtt.js callback; a callback of an earlier one is ignored. */
  cb?: (err?: Error) => void;
  /** When the current transmission times out (performance.now() ms). */
  deadline: number;
  /** Whether the current transmission ended by timing out. */
  timedOut: boolean;
}

/** mqtt.js's logger when DEBUG is not set: nothing, and no arguments gathered for it. */
const NO_LOG = (): void => undefined;

/** The outcome of every acknowledged message: one frozen object, not one per message. */
const ACKED: PublishOutcome = Object.freeze({ status: "acked" });

function settle(item: Item, outcome: PublishOutcome): void {
  item.settled = true;
  item.done?.(outcome);
}

/**
 * Token bucket: `rate` publishes per second with a burst of rate/20 (5 at 100/s), so no second
 * holds more than `rate` plus that burst. Rate 0 means unlimited.
 */
export class RateLimiter {
  private tokens: number;
  private last: number;
  readonly capacity: number;
  constructor(
    private readonly rate: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.capacity = Math.max(1, Math.ceil(rate / 20));
    this.tokens = this.capacity;
    this.last = now();
  }
  /** 0 if a publish may go now (and takes its token), else milliseconds to wait. */
  take(): number {
    if (this.rate <= 0) return 0;
    const now = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) * 1000) / this.rate);
  }
}

function positiveInt(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) {
    throw new PublisherError(`${name} must be a whole number >= ${min} (got ${v})`);
  }
  return v;
}

/** One device connection. Create, start(), send() messages, stop(). */
export class Publisher {
  readonly stats: PublisherStats = {
    submitted: 0,
    invalid: 0,
    sent: 0,
    acked: 0,
    dropped: 0,
    rejected: 0,
    unsent: 0,
    retries: 0,
    timeouts: 0,
    reconnects: 0,
    disconnects: 0,
    invalidByKind: new Map(),
  };
  readonly qos: 0 | 1;
  private readonly o: Required<Omit<PublisherOptions, "ca" | "report" | "qos" | "protocol">>;
  private readonly report: (line: string) => void;
  private readonly reported = new Set<string>();
  private readonly queue: Item[] = [];
  private readonly inflight = new Set<Item>();
  /**
   * The Receive Maximum of the broker's MQTT 5 CONNACK: "The Client MUST NOT send more than Receive
   * Maximum QoS 1 and QoS 2 PUBLISH packets for which it has not received PUBACK" (MQTT 5 §3.3.4,
   * [MQTT-3.3.4-7]); AWS IoT disconnects past it (0x93). None for MQTT 3.1.1.
   */
  private serverReceiveMaximum = Infinity;
  private readonly limiter: RateLimiter;
  private client?: MqttClient;
  private pumpTimer?: NodeJS.Timeout;
  /** One timer for every publish timeout, armed for the earliest deadline in flight. */
  private timeoutTimer?: NodeJS.Timeout;
  private sweeping = false;
  private connects = 0;
  private backoffStep = 0;
  private stopping = false;
  private closed = false;
  private up = false;
  private fatal?: string;
  private idleWaiters: Array<() => void> = [];
  private connectWaiters: Array<(err?: Error) => void> = [];

  constructor(private readonly options: PublisherOptions) {
    const qos = options.qos ?? PUBLISHER_DEFAULTS.qos;
    if (qos === 2) {
      throw new PublisherError(
        "QoS 2 is not supported by AWS IoT Core (it accepts QoS 0 and 1); use qos 0 or 1",
      );
    }
    if (qos !== 0 && qos !== 1) throw new PublisherError(`qos must be 0 or 1 (got ${qos})`);
    this.qos = qos;
    if (Buffer.byteLength(options.clientId) > IOT_MAX_CLIENT_ID_BYTES || options.clientId === "") {
      throw new PublisherError(
        `client id ${JSON.stringify(options.clientId)} must be 1-${IOT_MAX_CLIENT_ID_BYTES} bytes (AWS IoT limit)`,
      );
    }
    const d = PUBLISHER_DEFAULTS;
    this.o = {
      url: options.url,
      clientId: options.clientId,
      key: options.key,
      cert: options.cert,
      maxInFlight: positiveInt("maxInFlight", options.maxInFlight ?? d.maxInFlight, 1),
      maxQueue: positiveInt("maxQueue", options.maxQueue ?? d.maxQueue, 1),
      publishTimeoutMs: positiveInt(
        "publishTimeoutMs",
        options.publishTimeoutMs ?? d.publishTimeoutMs,
        1,
      ),
      rateLimit: positiveInt("rateLimit", options.rateLimit ?? d.rateLimit, 0),
      maxAttempts: positiveInt("maxAttempts", options.maxAttempts ?? d.maxAttempts, 1),
      reconnectMinMs: positiveInt("reconnectMinMs", options.reconnectMinMs ?? d.reconnectMinMs, 1),
      reconnectMaxMs: positiveInt("reconnectMaxMs", options.reconnectMaxMs ?? d.reconnectMaxMs, 1),
      connectTimeoutMs: positiveInt(
        "connectTimeoutMs",
        options.connectTimeoutMs ?? d.connectTimeoutMs,
        1,
      ),
    };
    this.report = options.report ?? (() => undefined);
    this.limiter = new RateLimiter(this.o.rateLimit);
  }

  get clientId(): string {
    return this.o.clientId;
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** Messages queued or in flight. */
  get pending(): number {
    return this.queue.length + this.inflight.size;
  }

  /** Why the publisher gave up for good (the broker refused the connection), if it did. */
  get failure(): string | undefined {
    return this.fatal;
  }

  private once(kind: string, line: string): void {
    if (this.reported.has(kind)) return;
    this.reported.add(kind);
    this.report(`${this.o.clientId}: ${line}`);
  }

  /** Opens the connection; messages sent before it is up wait in the queue. */
  start(): void {
    if (this.client) return;
    const client = mqtt.connect(this.o.url, {
      clientId: this.o.clientId,
      key: this.o.key,
      cert: this.o.cert,
      ca: this.options.ca,
      rejectUnauthorized: true,
      protocolVersion: this.options.protocol ?? 4,
      clean: true,
      keepalive: PUBLISHER_DEFAULTS.keepaliveSeconds,
      connectTimeout: this.o.connectTimeoutMs,
      reconnectPeriod: this.o.reconnectMinMs,
      // Our own queue holds messages while offline: nothing waits inside mqtt.js.
      queueQoSZero: false,
      // mqtt.js's debug logger builds an argument array for each of its calls even when off,
      // a dozen per message (docs/benchmarks.md, figure 2); with DEBUG set it logs as before.
      ...(process.env.DEBUG ? {} : { log: NO_LOG }),
    });
    this.client = client;
    client.on("error", (err) => this.onError(err));
    client.on("connect", (connack) => {
      this.serverReceiveMaximum = connack.properties?.receiveMaximum ?? Infinity;
      this.connects++;
      this.up = true;
      if (this.connects > 1) this.stats.reconnects++;
      this.backoffStep = 0;
      client.options.reconnectPeriod = this.o.reconnectMinMs;
      for (const w of this.connectWaiters.splice(0)) w();
      this.pump();
    });
    client.on("reconnect", () => {
      // Exponential backoff with jitter: mqtt.js reads reconnectPeriod afresh at each close.
      this.backoffStep++;
      const base = Math.min(this.o.reconnectMaxMs, this.o.reconnectMinMs * 2 ** this.backoffStep);
      client.options.reconnectPeriod = Math.round(base * (0.5 + Math.random() / 2));
    });
    client.on("close", () => this.onClose());
  }

  /** Resolves on the next successful connection; rejects if the broker refuses it for good. */
  waitConnected(): Promise<void> {
    if (this.connected) return Promise.resolve();
    if (this.fatal) return Promise.reject(new PublisherError(this.fatal));
    return new Promise((resolve, reject) =>
      this.connectWaiters.push((err) => (err ? reject(err) : resolve())),
    );
  }

  private onError(err: Error): void {
    if (err instanceof ErrorWithReasonCode || /^Connection refused/.test(err.message)) {
      // A refused CONNECT (wrong client id, not authorised): mqtt.js stops reconnecting.
      this.fatal = `the broker refused the connection: ${err.message.replace(/^Connection refused: /, "")}`;
      this.report(`${this.o.clientId}: ${this.fatal}`);
      for (const w of this.connectWaiters.splice(0)) w(new PublisherError(this.fatal));
      this.abandon("unsent", this.fatal);
      return;
    }
    const code = (err as NodeJS.ErrnoException).code;
    this.once(
      `error:${code ?? err.message}`,
      `connection error: ${err.message.split("\n")[0]} (retrying with backoff; reported once)`,
    );
  }

  private onClose(): void {
    if (this.up) this.stats.disconnects++;
    this.up = false;
    clearTimeout(this.pumpTimer);
    this.pumpTimer = undefined;
    // Take back every unacknowledged message from mqtt.js, so that exactly one copy is resent
    // (by us, after the reconnect) and each counts its attempts.
    const client = this.client;
    if (client) {
      for (const id of Object.keys(client.outgoing)) client.removeOutgoingMessage(Number(id));
    }
  }

  /**
   * Validates and queues one message. The promise settles with what became of it and never
   * rejects. `maxAttempts` 1 makes a disconnection while in flight final (the probe uses it).
   */
  send(
    topic: string,
    message: unknown,
    opts: { maxAttempts?: number } = {},
  ): Promise<PublishOutcome> {
    return new Promise((resolve) => this.post(topic, message, resolve, opts));
  }

  /**
   * send() without the promise, for callers that only need the counts (`stats`) or a callback:
   * the same validation, queue, window, timeouts and counters. `done`, if given, is called once
   * with the outcome; for an invalid message or a stopping publisher, before post() returns.
   * A promise per message was a measurable part of what the publisher adds to a bare client
   * (docs/benchmarks.md, figure 1).
   */
  post(
    topic: string,
    message: unknown,
    done?: (outcome: PublishOutcome) => void,
    opts?: { maxAttempts?: number },
  ): void {
    this.stats.submitted++;
    const encoded = encodeTelemetry(message);
    if (!encoded.ok) {
      this.stats.invalid++;
      const k = encoded.error.kind;
      this.stats.invalidByKind.set(k, (this.stats.invalidByKind.get(k) ?? 0) + 1);
      this.once(
        `invalid:${k}`,
        `invalid message not sent: ${encoded.error.message} (later ones of this kind are only counted)`,
      );
      done?.({ status: "invalid", error: encoded.error });
      return;
    }
    if (this.fatal || this.stopping) {
      const reason = this.fatal ?? "the publisher is stopping";
      this.stats.unsent++;
      done?.({ status: "unsent", reason });
      return;
    }
    if (this.queue.length >= this.o.maxQueue) {
      // Keep the freshest readings: drop the oldest, count it, say so once.
      const old = this.queue.shift();
      this.stats.dropped++;
      this.once(
        "queue-full",
        `offline queue full (${this.o.maxQueue} messages): dropping the oldest; the summary counts every drop`,
      );
      if (old) settle(old, { status: "dropped", reason: "offline queue full" });
    }
    this.queue.push({
      topic,
      payload: encoded.payload,
      maxAttempts: opts?.maxAttempts ?? this.o.maxAttempts,
      attempts: 0,
      settled: false,
      done,
      deadline: 0,
      timedOut: false,
    });
    this.pump();
  }

  private pump(): void {
    const client = this.client;
    while (
      !this.closed &&
      client?.connected &&
      !this.fatal &&
      this.queue.length > 0 &&
      this.inflight.size < Math.min(this.o.maxInFlight, this.serverReceiveMaximum)
    ) {
      const wait = this.limiter.take();
      if (wait > 0) {
        this.pumpTimer ??= setTimeout(() => {
          this.pumpTimer = undefined;
          this.pump();
        }, wait);
        return;
      }
      this.transmit(client, this.queue.shift() as Item);
    }
    this.checkIdle();
  }

  private transmit(client: MqttClient, item: Item): void {
    item.attempts++;
    if (item.attempts === 1) this.stats.sent++;
    else this.stats.retries++;
    item.timedOut = false;
    // publishAsync never settles while offline, so every publish has its own deadline. The
    // timeout is the same for all, so the in-flight set (in transmission order) is in deadline
    // order too, and one timer for the earliest deadline serves them all.
    item.deadline = performance.now() + this.o.publishTimeoutMs;
    this.inflight.add(item);
    const cb = (err?: Error): void => this.finish(item, cb, err);
    item.cb = cb;
    this.armTimeouts();
    client.publish(item.topic, item.payload, { qos: this.qos }, cb);
  }

  /** Ends a transmission: acknowledged, or failed (given up on or queued again). */
  private finish(item: Item, cb: (err?: Error) => void, err?: Error): void {
    if (item.cb !== cb || item.settled) return;
    item.cb = undefined;
    this.inflight.delete(item);
    // Nothing left to time out: the timer must not keep the process alive. It stays armed (unref'd)
    // rather than cleared, so that a window that keeps emptying and refilling (QoS 0) does not arm
    // a timer per message; when it fires with nothing expired it simply is not re-armed.
    if (this.inflight.size === 0) this.timeoutTimer?.unref();
    const reasonCode = (err as { code?: unknown } | undefined)?.code;
    if (!err) {
      this.stats.acked++;
      settle(item, ACKED);
    } else if (typeof reasonCode === "number" && reasonCode >= 0x80) {
      // MQTT 5: the broker answered, refusing this message; sending it again cannot help.
      this.stats.rejected++;
      const reason = `PUBACK 0x${reasonCode.toString(16)} (${err.message}); the connection stays up`;
      this.once(`rejected:${item.topic}`, `message to ${item.topic} rejected: ${reason}`);
      settle(item, { status: "rejected", reason });
    } else if (this.fatal) {
      this.stats.unsent++;
      settle(item, { status: "unsent", reason: this.fatal });
    } else if (item.attempts >= item.maxAttempts) {
      this.stats.rejected++;
      const reason = item.timedOut
        ? `no acknowledgement after ${item.attempts} attempt(s) of ${this.o.publishTimeoutMs} ms`
        : `the broker closed the connection while the message was in flight (${item.attempts} attempt(s)); an IoT policy denying ${item.topic} does this`;
      this.once(`rejected:${item.topic}`, `message to ${item.topic} rejected: ${reason}`);
      settle(item, { status: "rejected", reason });
    } else {
      this.queue.unshift(item); // first in line after the reconnect
    }
    this.pump();
  }

  private armTimeouts(): void {
    if (this.sweeping || this.inflight.size === 0) return;
    if (this.timeoutTimer) {
      if (!this.timeoutTimer.hasRef()) this.timeoutTimer.ref();
      return;
    }
    const first = this.inflight.values().next().value as Item;
    this.timeoutTimer = setTimeout(
      () => this.sweepTimeouts(),
      Math.max(1, first.deadline - performance.now()),
    );
  }

  /** Times out every transmission whose deadline has passed, then waits for the next one. */
  private sweepTimeouts(): void {
    this.timeoutTimer = undefined;
    const now = performance.now();
    const expired: Array<[Item, Item["cb"]]> = [];
    for (const item of this.inflight) {
      if (item.deadline > now) break;
      expired.push([item, item.cb]);
    }
    // Retransmissions during the sweep arm nothing: the timer is armed once, after it.
    this.sweeping = true;
    try {
      for (const [item, cb] of expired) this.timeOut(item, cb);
    } finally {
      this.sweeping = false;
    }
    this.armTimeouts();
  }

  private timeOut(item: Item, cb: Item["cb"]): void {
    if (!cb || item.cb !== cb || item.settled) return;
    item.timedOut = true;
    this.stats.timeouts++;
    const client = this.client;
    if (client) {
      for (const [id, entry] of Object.entries(client.outgoing)) {
        if (entry.cb === cb) client.removeOutgoingMessage(Number(id));
      }
    }
    this.finish(item, cb, new Error("publish timed out"));
  }

  private abandon(status: "unsent", reason: string): void {
    for (const item of this.queue.splice(0)) {
      this.stats.unsent++;
      settle(item, { status, reason });
    }
    this.checkIdle();
  }

  private checkIdle(): void {
    if (this.idleWaiters.length === 0) return; // the common case: nobody waits, nothing to copy
    if (this.pending === 0 || this.fatal) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolves when nothing is queued or in flight (or the publisher failed for good). */
  drained(): Promise<void> {
    if (this.pending === 0 || this.fatal) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops taking messages, waits up to `graceMs` for the queue and the in-flight window to
   * empty, counts whatever is left as unsent, and closes the connection.
   */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.drained(),
      new Promise<void>((r) => {
        timer = setTimeout(r, graceMs);
      }),
    ]);
    clearTimeout(timer);
    this.closed = true;
    clearTimeout(this.pumpTimer);
    clearTimeout(this.timeoutTimer);
    this.timeoutTimer = undefined;
    const left = [...this.inflight, ...this.queue.splice(0)];
    this.inflight.clear();
    for (const item of left) {
      this.stats.unsent++;
      settle(item, {
        status: "unsent",
        reason: `not acknowledged within ${graceMs} ms of stopping`,
      });
    }
    const client = this.client;
    if (client) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        client.end(left.length > 0 || !client.connected, {}, () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}
