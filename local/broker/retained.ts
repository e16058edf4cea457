// The broker's retained messages, as AWS IoT Core keeps them: one per topic, replaced by the next
// retained publish and deleted by an empty one, delivered to a later subscriber whose filter names
// the topic exactly, and bounded by AWS's limits plus a memory ceiling, every refusal counted.
import type { Client } from "aedes";
import { IOT_MAX_PAYLOAD_BYTES } from "../../core/iot-limits";

/**
 * The store's bounds. AWS IoT Core's are quotas of the account (the General Reference's "AWS IoT
 * Core endpoints and quotas" page, message broker section); the memory ceiling is this broker's
 * own, because AWS's count times AWS's payload size is tens of gigabytes.
 */
export interface RetainedLimits {
  /** Retained messages per account ("Maximum number of retained messages per account"). */
  readonly maxMessages: number;
  /** Largest retained payload: AWS IoT's message size, 128 KB. */
  readonly maxPayloadBytes: number;
  /** Payload and topic bytes the store may hold in memory, whatever the count. */
  readonly maxBytes: number;
  /** Retained publishes per second for the whole broker (AWS: per account). */
  readonly maxPublishesPerSecond: number;
  /** Retained publishes per second to one topic. */
  readonly maxPublishesPerSecondPerTopic: number;
}

/**
 * The defaults: AWS IoT Core's default quotas for retained messages (500,000 per account, 500
 * retained publishes per second per account, 1 per second per topic; 128 KB payloads) and a
 * 64 MiB memory ceiling. The quota values are the General Reference's defaults; several are
 * adjustable in AWS, so they are settings here too (BrokerOptions.retained).
 */
export const RETAINED_DEFAULTS: RetainedLimits = {
  maxMessages: 500_000,
  maxPayloadBytes: IOT_MAX_PAYLOAD_BYTES,
  maxBytes: 64 * 1024 * 1024,
  maxPublishesPerSecond: 500,
  maxPublishesPerSecondPerTopic: 1,
};

/**
 * How a refusal for the store's bounds (count, bytes, rate) begins: AWS "returns a throttled
 * response" then (mqtt.html, "Retained message limits"), unlike for a reserved topic.
 */
export const THROTTLED = "throttled: ";

/** Why retained publishes were refused, by reason, since the broker started. */
export interface RetainedRefusals {
  /** The store held maxMessages (AWS: "throttled"). */
  count: number;
  /** The store held maxBytes. */
  memory: number;
  /** The payload was over maxPayloadBytes. */
  size: number;
  /** Over maxPublishesPerSecond. */
  rate: number;
  /** Over maxPublishesPerSecondPerTopic. */
  topicRate: number;
  /** A reserved (`$`) topic: AWS refuses the RETAIN flag there. */
  reserved: number;
}

export interface RetainedStats {
  /** Messages held now. */
  messages: number;
  /** Topic, payload and MQTT 5 properties bytes held now. */
  bytes: number;
  /** Retained publishes stored (new or replacing). */
  stored: number;
  /** Retained messages deleted by an empty retained publish. */
  deleted: number;
  /** Retained messages sent to a new subscriber on SUBSCRIBE. */
  deliveredOnSubscribe: number;
  /** Retained messages dropped on SUBSCRIBE because their Message Expiry Interval had passed. */
  expired: number;
  readonly refused: RetainedRefusals;
}

/**
 * The MQTT 5 properties a retained message keeps and is delivered with on SUBSCRIBE (mqtt-packet's
 * names): those of the publish that stored it (mqtt.html, "MQTT 5 properties").
 */
export interface RetainedProperties {
  readonly payloadFormatIndicator?: boolean;
  readonly contentType?: string;
  readonly responseTopic?: string;
  readonly correlationData?: Buffer;
  readonly userProperties?: Readonly<Record<string, string | string[]>>;
  /** Seconds, as published (clamped to AWS's 1 to 604,800 s by the broker before it is stored). */
  readonly messageExpiryInterval?: number;
}

/** One retained message. */
export interface RetainedMessage {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: 0 | 1;
  /** Epoch ms of the publish that stored it. */
  readonly storedAt: number;
  /** What an MQTT 5 publish carried; undefined for MQTT 3.1.1. */
  readonly properties?: RetainedProperties;
  /** Epoch ms past which a new subscriber does not get it (its Message Expiry Interval). */
  readonly expiresAt?: number;
  /** Topic, payload and properties bytes, as counted against maxBytes. */
  readonly bytes: number;
}

/** A retained publish admitted and counted until it is stored or given up. */
export interface RetainedHold {
  /** Stores it (or deletes the topic's message, for an empty payload). */
  commit(qos: 0 | 1): void;
  /** The publish failed before it was acknowledged: nothing is stored. */
  release(): void;
}

/** Bytes a retained message is counted as: its topic, payload and properties. */
function entryBytes(topic: string, payload: Buffer, properties?: RetainedProperties): number {
  let n = Buffer.byteLength(topic) + payload.length;
  if (!properties) return n;
  for (const v of [properties.contentType, properties.responseTopic]) {
    if (v !== undefined) n += Buffer.byteLength(v);
  }
  n += properties.correlationData?.length ?? 0;
  for (const [k, v] of Object.entries(properties.userProperties ?? {})) {
    for (const one of Array.isArray(v) ? v : [v])
      n += Buffer.byteLength(k) + Buffer.byteLength(one);
  }
  return n;
}

/** The properties of a publish a retained message keeps (none for an MQTT 3.1.1 publish). */
export function retainedPropertiesOf(
  p: RetainedProperties | undefined,
): RetainedProperties | undefined {
  if (!p) return undefined;
  const kept: RetainedProperties = {
    payloadFormatIndicator: p.payloadFormatIndicator,
    contentType: p.contentType,
    responseTopic: p.responseTopic,
    correlationData: p.correlationData && Buffer.from(p.correlationData),
    userProperties: p.userProperties,
    messageExpiryInterval: p.messageExpiryInterval,
  };
  const defined = Object.entries(kept).filter(([, v]) => v !== undefined);
  return defined.length === 0 ? undefined : (Object.fromEntries(defined) as RetainedProperties);
}

/** The store behind the broker's RETAIN handling. Synchronous: the broker runs it on its loop. */
export class RetainedStore {
  readonly limits: RetainedLimits;
  readonly stats: RetainedStats = {
    messages: 0,
    bytes: 0,
    stored: 0,
    deleted: 0,
    deliveredOnSubscribe: 0,
    expired: 0,
    refused: { count: 0, memory: 0, size: 0, rate: 0, topicRate: 0, reserved: 0 },
  };
  private readonly byTopic = new Map<string, RetainedMessage>();
  /** Admitted, not yet stored: they count against the bounds so that none is overrun. */
  private pendingMessages = 0;
  private pendingBytes = 0;
  /** Times of this second's retained publishes, broker-wide and by topic (bounded by the rate). */
  private window = { second: -1, total: 0, byTopic: new Map<string, number>() };

  constructor(limits: Partial<RetainedLimits> = {}) {
    this.limits = { ...RETAINED_DEFAULTS, ...limits };
    for (const [k, v] of Object.entries(this.limits)) {
      if (!Number.isInteger(v) || v < 0) {
        throw new RangeError(`retained limit ${k} must be a whole number >= 0 (got ${v})`);
      }
    }
  }

  get(topic: string): RetainedMessage | undefined {
    return this.byTopic.get(topic);
  }

  /** The topics held, for tests and the summary. */
  topics(): string[] {
    return [...this.byTopic.keys()];
  }

  /**
   * Admits a retained publish, or says why not in one line (the broker then refuses the publish,
   * so that nothing is acknowledged that is not kept). An empty payload deletes and is admitted
   * whatever the count, as AWS throttles only payloads over 0 bytes when the store is full.
   */
  reserve(
    topic: string,
    payload: Buffer,
    now: number = Date.now(),
    properties?: RetainedProperties,
  ): RetainedHold | string {
    const l = this.limits;
    const refused = this.stats.refused;
    if (topic.startsWith("$")) {
      refused.reserved++;
      return `the RETAIN flag is not allowed on the reserved topic ${topic} (AWS IoT refuses it); publish without RETAIN`;
    }
    if (payload.length > l.maxPayloadBytes) {
      refused.size++;
      return `retained payload of ${payload.length} bytes is over ${l.maxPayloadBytes} bytes`;
    }
    const second = Math.floor(now / 1000);
    if (this.window.second !== second) this.window = { second, total: 0, byTopic: new Map() };
    if (this.window.total >= l.maxPublishesPerSecond) {
      refused.rate++;
      return `${THROTTLED}more than ${l.maxPublishesPerSecond} retained publishes per second`;
    }
    const onTopic = this.window.byTopic.get(topic) ?? 0;
    if (onTopic >= l.maxPublishesPerSecondPerTopic) {
      refused.topicRate++;
      return `${THROTTLED}more than ${l.maxPublishesPerSecondPerTopic} retained publish(es) per second to ${topic}`;
    }
    const old = this.byTopic.get(topic);
    const adds = payload.length === 0 ? 0 : old === undefined ? 1 : 0;
    const kept = retainedPropertiesOf(properties);
    const addsBytes =
      payload.length === 0 ? 0 : entryBytes(topic, payload, kept) - (old ? old.bytes : 0);
    if (adds > 0 && this.stats.messages + this.pendingMessages + adds > l.maxMessages) {
      refused.count++;
      return `${THROTTLED}the retained message store holds its limit of ${l.maxMessages} messages; delete some (publish an empty retained message to their topics)`;
    }
    if (addsBytes > 0 && this.stats.bytes + this.pendingBytes + addsBytes > l.maxBytes) {
      refused.memory++;
      return `${THROTTLED}the retained message store holds its ceiling of ${l.maxBytes} bytes; delete some retained messages`;
    }
    this.window.total++;
    this.window.byTopic.set(topic, onTopic + 1);
    this.pendingMessages += adds;
    this.pendingBytes += Math.max(0, addsBytes);
    let open = true;
    const close = () => {
      this.pendingMessages -= adds;
      this.pendingBytes -= Math.max(0, addsBytes);
      open = false;
    };
    return {
      commit: (qos) => {
        if (!open) return;
        close();
        this.write(topic, payload, qos, now, kept);
      },
      release: () => {
        if (open) close();
      },
    };
  }

  private write(
    topic: string,
    payload: Buffer,
    qos: 0 | 1,
    now: number,
    properties?: RetainedProperties,
  ): void {
    const old = this.remove(topic);
    if (payload.length === 0) {
      if (old) this.stats.deleted++;
      return;
    }
    const expiry = properties?.messageExpiryInterval;
    const bytes = entryBytes(topic, payload, properties);
    // A copy: the packet's buffer may be a slice of a larger socket read.
    this.byTopic.set(topic, {
      topic,
      payload: Buffer.from(payload),
      qos,
      storedAt: now,
      properties,
      expiresAt: expiry === undefined ? undefined : now + expiry * 1000,
      bytes,
    });
    this.stats.messages++;
    this.stats.bytes += bytes;
    this.stats.stored++;
  }

  private remove(topic: string): RetainedMessage | undefined {
    const old = this.byTopic.get(topic);
    if (old) {
      this.stats.messages--;
      this.stats.bytes -= old.bytes;
      this.byTopic.delete(topic);
    }
    return old;
  }

  /**
   * Sends the retained message of each newly granted subscription whose filter is a topic name:
   * AWS delivers a retained message on SUBSCRIBE only to a filter that names its topic exactly,
   * not to a wildcard filter (mqtt.html, "Subscribing to a retained message topic"). It goes
   * through the broker's forward authorisation, so iot:Receive is checked as for any delivery.
   */
  deliverOnSubscribe(
    client: Client,
    subscriptions: ReadonlyArray<{ topic: string; qos: number }>,
    now: number = Date.now(),
  ) {
    // aedes' own per-client delivery, which applies authorizeForward and the QoS downgrade.
    const deliver = (client as unknown as DeliveringClient).deliverQoS;
    for (const sub of subscriptions) {
      // Refused (SUBACK 0x80, or an MQTT 5 reason code such as 0x87), or a wildcard filter.
      if (sub.qos >= 0x80 || /[+#]/.test(sub.topic)) continue;
      const m = this.byTopic.get(sub.topic);
      if (m === undefined) continue;
      // "If a retained message expires and a new client subscribes to the topic, the client won't
      // receive the message upon subscription" (mqtt.html, "Message expiry").
      if (m.expiresAt !== undefined && m.expiresAt <= now) {
        this.remove(sub.topic);
        this.stats.expired++;
        continue;
      }
      this.stats.deliveredOnSubscribe++;
      // "the subscriber will receive a message with the remaining time left in the expiry
      // interval … as soon as the time remaining is 999 ms or less, it will be updated to 0".
      const properties =
        m.expiresAt === undefined
          ? m.properties
          : { ...m.properties, messageExpiryInterval: Math.floor((m.expiresAt - now) / 1000) };
      deliver.call(
        client,
        {
          cmd: "publish",
          topic: m.topic,
          payload: m.payload,
          qos: Math.min(m.qos, sub.qos),
          retain: true,
          ...(properties === undefined ? {} : { properties }),
        },
        () => undefined,
      );
    }
  }
}

/** The part of an aedes client that delivers one packet to it (not in aedes' typings). */
interface DeliveringClient {
  deliverQoS(packet: object, done: () => void): void;
}
