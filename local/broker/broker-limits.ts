// What the broker refuses before it buffers a packet: a scanner that follows the MQTT byte stream of
// one connection (fixed headers, the first bytes of each body) without holding the bodies, so that
// a 200 MiB PUBLISH or a 256 MiB CONNECT is refused at its header, as are QoS 2, a topic (a will's
// included) that is not well-formed UTF-8 or breaks AWS IoT's topic limits, and packets a client
// never sends.
import {
  IOT_MAX_CONNECT_BYTES,
  IOT_MAX_PAYLOAD_BYTES,
  IOT_MAX_SUBSCRIPTIONS_PER_SUBSCRIBE,
  IOT_MAX_TOPIC_BYTES,
  IOT_MAX_TOPIC_WIRE_BYTES,
  topicNameProblem,
  topicFilterProblem,
} from "../../core/iot-limits";

export interface PacketLimits {
  /** Largest PUBLISH payload (AWS IoT: 128 KB). */
  readonly maxPayloadBytes: number;
  /** Largest CONNECT (AWS IoT rejects connect requests over 128 KB). */
  readonly maxConnectBytes: number;
  /** Largest packet of any other kind: SUBSCRIBE of eight filters, acknowledgements. */
  readonly maxControlBytes: number;
  /** Topic filters in one SUBSCRIBE (AWS IoT: 8). */
  readonly maxFiltersPerSubscribe: number;
}

/** AWS IoT Core's limits (core/iot-limits.ts), and room for MQTT 5 properties on control packets. */
export const AWS_PACKET_LIMITS: PacketLimits = {
  maxPayloadBytes: IOT_MAX_PAYLOAD_BYTES,
  maxConnectBytes: IOT_MAX_CONNECT_BYTES,
  maxControlBytes: 16 * 1024,
  maxFiltersPerSubscribe: IOT_MAX_SUBSCRIPTIONS_PER_SUBSCRIBE,
};

/** MQTT 5 properties a PUBLISH may carry besides its payload (user properties and the like). */
const MAX_PUBLISH_PROPERTIES = 8 * 1024;

/** The largest PUBLISH body: a full payload behind the longest topic, its id and properties. */
function maxPublishBodyBytes(limits: PacketLimits): number {
  return limits.maxPayloadBytes + 2 + IOT_MAX_TOPIC_WIRE_BYTES + 2 + 4 + MAX_PUBLISH_PROPERTIES;
}

/**
 * The largest packet the scanner lets through, fixed header included: the Maximum Packet Size an
 * MQTT 5 CONNACK advertises, so that a client never refuses a 128 KB payload itself.
 */
export function maxPublishPacketBytes(limits: PacketLimits = AWS_PACKET_LIMITS): number {
  return 5 + Math.max(maxPublishBodyBytes(limits), limits.maxConnectBytes, limits.maxControlBytes);
}

/** MQTT 5 property identifiers the scanner reads (OASIS MQTT 5.0 §2.2.2.2). */
const TOPIC_ALIAS = 0x23;
const SUBSCRIPTION_IDENTIFIER = 0x0b;

export type Refusal =
  /** A packet larger than its kind allows, refused at its fixed header. */
  | "too-large"
  /** QoS 2: AWS IoT supports QoS 0 and 1 only. */
  | "qos2"
  /** A topic or filter MQTT or AWS IoT does not allow. */
  | "topic"
  /** Not MQTT a client may send: bad remaining length, QoS 3, a server-to-client packet. */
  | "malformed"
  /** An MQTT 5 feature AWS IoT does not support (a SUBSCRIBE's Subscription Identifier). */
  | "unsupported"
  /** The broker already holds as many bytes of partly received packets as it allows. */
  | "busy";

export interface Violation {
  readonly kind: Refusal;
  /** One line for the log: what the client sent and what is allowed. */
  readonly reason: string;
  /**
   * The reason code of the DISCONNECT an MQTT 5 client gets (mqtt.html, "MQTT reason codes");
   * by default the one of its kind (DISCONNECT_REASON below).
   */
  readonly reasonCode?: number;
}

/**
 * The DISCONNECT reason code AWS IoT lists for each kind of refusal (mqtt.html, "MQTT reason
 * codes", DISCONNECT): 0x95 Packet too large, 0x9B QoS not supported, 0x90 Topic Name invalid
 * (0x8F for a filter, given per violation), 0x81 Malformed Packet, 0x97 Quota exceeded, 0xA1
 * Subscription Identifiers not supported.
 */
export const DISCONNECT_REASON: Record<Refusal, number> = {
  "too-large": 0x95,
  qos2: 0x9b,
  topic: 0x90,
  malformed: 0x81,
  unsupported: 0xa1,
  busy: 0x97,
};

/**
 * Bytes of packets announced but not yet received in full, over every connection. Small packets do
 * not count; a large one reserves its whole announced size at its header, so that many clients each
 * trickling a 128 KB publish cannot together take more than the budget.
 */
export class PacketBudget {
  used = 0;
  constructor(readonly limit: number) {}
  reserve(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }
  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}

/** Packets up to this size are not counted against the budget: they complete at once. */
const UNBUDGETED_BYTES = 4 * 1024;

const PUBLISH = 3;
const CONNECT = 1;
const SUBSCRIBE = 8;
const UNSUBSCRIBE = 10;
/** The empty prefix, shared: a packet that needs none allocates nothing. */
const NO_BYTES = Buffer.alloc(0);

/** Packet types a server sends and a client never does (CONNACK, SUBACK, UNSUBACK, PINGRESP, reserved 0). */
const SERVER_ONLY = new Set([0, 2, 9, 11, 13]);

const enum State {
  Header,
  Length,
  Body,
}

/** Follows one connection's incoming bytes; `feed` says what, if anything, must be refused. */
export class PacketScanner {
  /** The MQTT protocol level from CONNECT (4: 3.1.1, 5: MQTT 5), once seen. */
  protocolLevel = 4;
  /** The keep-alive (seconds) CONNECT asked for, once seen. */
  keepalive: number | undefined;

  private state = State.Header;
  private type = 0;
  private flags = 0;
  private remaining = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private seen = 0;
  /** How many leading body bytes the check of this packet needs, and those collected so far. */
  private wanted = 0;
  private prefix: Buffer = NO_BYTES;
  private checked = false;
  private reserved = 0;

  constructor(
    private readonly limits: PacketLimits = AWS_PACKET_LIMITS,
    private readonly budget?: PacketBudget,
  ) {}

  /** Scans the next bytes of the stream; a Violation means: close the connection, pass nothing on. */
  feed(chunk: Buffer): Violation | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === State.Header) {
        const b = chunk[i++];
        this.type = b >> 4;
        this.flags = b & 0x0f;
        this.remaining = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
        this.state = State.Length;
        continue;
      }
      if (this.state === State.Length) {
        const b = chunk[i++];
        this.remaining += (b & 0x7f) * this.multiplier;
        this.multiplier *= 128;
        this.lengthBytes++;
        if (b & 0x80) {
          if (this.lengthBytes === 4) return malformed("a remaining length longer than 4 bytes");
          continue;
        }
        const v = this.begin();
        if (v) return v;
        if (this.remaining === 0) {
          const w = this.end();
          if (w) return w;
        } else this.state = State.Body;
        continue;
      }
      const take = Math.min(this.remaining - this.seen, chunk.length - i);
      if (!this.checked) {
        const n = Math.min(take, this.wanted - this.prefix.length);
        const part = chunk.subarray(i, i + n);
        // Leading bytes inside one chunk are checked where they are; only those that span chunks
        // are copied, so that no chunk is held past its read.
        this.prefix = this.prefix.length === 0 ? part : Buffer.concat([this.prefix, part]);
        if (this.prefix === part && part.length < this.wanted) this.prefix = Buffer.from(part);
      }
      this.seen += take;
      i += take;
      if (!this.checked && this.prefix.length >= this.wanted) {
        this.checked = true;
        const v = this.check();
        // Nothing of a packet is kept once it is checked: 10,000 idle connections would otherwise
        // each hold their last packet's leading bytes, and with them a pooled 8 KiB slab.
        this.prefix = NO_BYTES;
        if (v) return v;
      }
      if (this.seen === this.remaining) {
        const w = this.end();
        if (w) return w;
      }
    }
    return undefined;
  }

  /** Gives the connection's reservation back (the connection closed mid-packet). */
  release(): void {
    this.budget?.release(this.reserved);
    this.reserved = 0;
  }

  /** The fixed header is complete: size and kind checks, before any body byte is kept. */
  private begin(): Violation | undefined {
    const { type, remaining } = this;
    if (SERVER_ONLY.has(type))
      return malformed(`a packet of type ${type}, which only a server sends`);
    let limit = this.limits.maxControlBytes;
    let what = "packet";
    this.wanted = 0;
    if (type === PUBLISH) {
      const qos = (this.flags >> 1) & 3;
      if (qos === 3) return malformed("a PUBLISH with QoS 3 [MQTT-3.3.1-4]");
      if (qos === 2) {
        return { kind: "qos2", reason: "PUBLISH with QoS 2: AWS IoT supports QoS 0 and 1 only" };
      }
      limit = maxPublishBodyBytes(this.limits);
      what = "PUBLISH";
      // Topic length, topic, packet identifier, MQTT 5 property length: all an exact check needs
      // (an empty topic's properties then fit in the same bytes: see checkPublish).
      this.wanted = Math.min(remaining, 2 + IOT_MAX_TOPIC_WIRE_BYTES + 2 + 4);
    } else if (type === CONNECT) {
      limit = this.limits.maxConnectBytes;
      what = "CONNECT";
      // The whole CONNECT (at most 128 KB, and counted against the budget beyond 4 KiB): its will
      // topic comes after the client id, whose length a client chooses.
      this.wanted = remaining;
    } else if (type === SUBSCRIBE || type === UNSUBSCRIBE) {
      what = type === SUBSCRIBE ? "SUBSCRIBE" : "UNSUBSCRIBE";
      this.wanted = remaining; // small by the limit below, and every filter must be read
    }
    if (remaining > limit) {
      return {
        kind: "too-large",
        reason: `${what} of ${remaining} bytes announced; AWS IoT allows ${what === "PUBLISH" ? `a payload of ${this.limits.maxPayloadBytes} bytes (128 KB)` : `${limit} bytes`}`,
      };
    }
    if (remaining > UNBUDGETED_BYTES && this.budget) {
      if (!this.budget.reserve(remaining)) {
        return {
          kind: "busy",
          reason: `the broker already holds ${Math.round(this.budget.used / 1024 / 1024)} MiB of partly received packets (its limit); a ${remaining}-byte ${what} has to wait for a reconnect`,
        };
      }
      this.reserved = remaining;
    }
    this.seen = 0;
    this.prefix = NO_BYTES;
    this.checked = this.wanted === 0;
    return undefined;
  }

  private end(): Violation | undefined {
    this.release();
    this.state = State.Header;
    return undefined;
  }

  /** The leading body bytes are in: topic, QoS and size checks that need them. */
  private check(): Violation | undefined {
    const b = this.prefix;
    if (this.type === PUBLISH) return this.checkPublish(b);
    if (this.type === CONNECT) return this.checkConnect(b);
    return this.checkFilters(b);
  }

  private checkPublish(b: Buffer): Violation | undefined {
    if (b.length < 2) return malformed("a PUBLISH too short for its topic");
    const topicLength = b.readUInt16BE(0);
    if (topicLength > IOT_MAX_TOPIC_WIRE_BYTES) {
      return {
        kind: "topic",
        reason: `PUBLISH topic of ${topicLength} bytes; AWS IoT allows ${IOT_MAX_TOPIC_BYTES} (beyond a Basic Ingest prefix)`,
      };
    }
    if (b.length < 2 + topicLength) return malformed("a PUBLISH shorter than its topic");
    let at = 2 + topicLength + (((this.flags >> 1) & 3) > 0 ? 2 : 0);
    // MQTT 5 topic aliases (mqtt.html, "MQTT 5 supported features": topic aliases, up to 8): a
    // PUBLISH with an empty topic and a Topic Alias stands for the topic the alias was set with,
    // which this scanner checked then; aedes resolves it (or refuses an unknown alias with
    // DISCONNECT 0x94) before authorizePublish, which checks the resolved topic again.
    const aliased =
      topicLength === 0 && this.protocolLevel === 5 && hasProperty(b, at, TOPIC_ALIAS);
    const problem = aliased ? undefined : topicNameProblem(b.subarray(2, 2 + topicLength));
    if (problem) return { kind: "topic", reason: `PUBLISH topic ${problem}` };
    if (this.protocolLevel === 5) {
      const props = varint(b, at);
      if (!props) return malformed("a PUBLISH whose property length is cut short");
      at += props.bytes + props.value;
    }
    const payload = this.remaining - at;
    if (payload < 0) return malformed("a PUBLISH shorter than its header");
    if (payload > this.limits.maxPayloadBytes) {
      return {
        kind: "too-large",
        reason: `PUBLISH payload of ${payload} bytes; AWS IoT allows ${this.limits.maxPayloadBytes} (128 KB)`,
      };
    }
    return undefined;
  }

  private checkConnect(b: Buffer): Violation | undefined {
    if (b.length < 2) return undefined; // the parser refuses it
    const nameLength = b.readUInt16BE(0);
    const level = b[2 + nameLength];
    const flags = b[3 + nameLength];
    if (level !== undefined) this.protocolLevel = level;
    if (b.length >= 6 + nameLength) this.keepalive = b.readUInt16BE(4 + nameLength);
    if (flags === undefined || !(flags & 0x04)) return undefined;
    const willQos = (flags >> 3) & 3;
    if (willQos === 3) return malformed("a CONNECT whose will has QoS 3 [MQTT-3.1.2-14]");
    if (willQos === 2) {
      return {
        kind: "qos2",
        reason: "CONNECT with a QoS 2 will: AWS IoT supports QoS 0 and 1 only",
      };
    }
    // The will is a publish the broker makes for the client later: its topic is held to the
    // PUBLISH topic's rules here, when the CONNECT can still be refused (MQTT 3.1.1 §3.1.3.2: a
    // UTF-8 string; §4.8: a protocol violation closes the connection). Anything cut short is left
    // to the parser, which refuses it.
    let at = 6 + nameLength;
    if (this.protocolLevel === 5) {
      const props = varint(b, at);
      if (!props) return undefined;
      at += props.bytes + props.value;
    }
    if (at + 2 > b.length) return undefined;
    at += 2 + b.readUInt16BE(at); // client id
    if (this.protocolLevel === 5) {
      const props = varint(b, at);
      if (!props) return undefined;
      at += props.bytes + props.value;
    }
    if (at + 2 > b.length) return undefined;
    const topicLength = b.readUInt16BE(at);
    if (at + 2 + topicLength > b.length) return undefined;
    const problem = topicNameProblem(b.subarray(at + 2, at + 2 + topicLength));
    return problem ? { kind: "topic", reason: `CONNECT will topic ${problem}` } : undefined;
  }

  /** SUBSCRIBE / UNSUBSCRIBE: every filter's bytes, its requested QoS, and how many there are. */
  private checkFilters(b: Buffer): Violation | undefined {
    const subscribe = this.type === SUBSCRIBE;
    const what = subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE";
    let at = 2; // packet identifier
    if (this.protocolLevel === 5) {
      // "Subscription Identifier Available: The default is 0" (mqtt.html, "MQTT 5 properties"),
      // and a SUBSCRIBE that carries one anyway gets DISCONNECT 0xA1 ("MQTT reason codes").
      if (subscribe && hasProperty(b, at, SUBSCRIPTION_IDENTIFIER)) {
        return {
          kind: "unsupported",
          reason: "SUBSCRIBE with a Subscription Identifier: AWS IoT does not support them",
        };
      }
      const props = varint(b, at);
      if (!props) return malformed(`a ${what} whose property length is cut short`);
      at += props.bytes + props.value;
    }
    let filters = 0;
    while (at < b.length) {
      if (at + 2 > b.length) return malformed(`a ${what} cut inside a topic filter`);
      const length = b.readUInt16BE(at);
      const end = at + 2 + length;
      if (end + (subscribe ? 1 : 0) > b.length)
        return malformed(`a ${what} cut inside a topic filter`);
      filters++;
      const problem = topicFilterProblem(b.subarray(at + 2, end));
      if (problem) {
        return { kind: "topic", reason: `${what} topic filter ${problem}`, reasonCode: 0x8f };
      }
      at = end;
      if (subscribe) {
        const qos = b[at] & 3;
        if (qos === 3) return malformed("a SUBSCRIBE requesting QoS 3 [MQTT-3-8.3-4]");
        if (qos === 2) {
          return {
            kind: "qos2",
            reason: "SUBSCRIBE with QoS 2: AWS IoT supports QoS 0 and 1 only",
          };
        }
        at++;
      }
    }
    if (filters > this.limits.maxFiltersPerSubscribe) {
      return {
        kind: "too-large",
        reason: `${what} of ${filters} topic filters; AWS IoT allows ${this.limits.maxFiltersPerSubscribe} per request`,
      };
    }
    return undefined;
  }
}

function malformed(what: string): Violation {
  return { kind: "malformed", reason: `malformed MQTT: ${what}` };
}

/**
 * Whether the MQTT 5 properties whose length starts at `at` hold property `id`, as far as `b`
 * holds them (a property past the bytes read counts as absent: the parser reads it later).
 */
function hasProperty(b: Buffer, at: number, id: number): boolean {
  const length = varint(b, at);
  if (!length) return false;
  let i = at + length.bytes;
  const end = Math.min(b.length, i + length.value);
  while (i < end) {
    const p = b[i++];
    if (p === id) return true;
    const size = PROPERTY_SIZE[p];
    if (size === undefined) return false; // not a PUBLISH or SUBSCRIBE property: the parser refuses it
    if (size === VARINT) {
      const v = varint(b, i);
      if (!v) return false;
      i += v.bytes;
    } else if (size === STRING) {
      if (i + 2 > end) return false;
      i += 2 + b.readUInt16BE(i);
    } else if (size === PAIR) {
      if (i + 2 > end) return false;
      i += 2 + b.readUInt16BE(i);
      if (i + 2 > end) return false;
      i += 2 + b.readUInt16BE(i);
    } else i += size;
  }
  return false;
}

const VARINT = -1;
const STRING = -2;
const PAIR = -3;
/** The size of each PUBLISH and SUBSCRIBE property's value (OASIS MQTT 5.0 §2.2.2.2). */
const PROPERTY_SIZE: Record<number, number> = {
  0x01: 1, // Payload Format Indicator
  0x02: 4, // Message Expiry Interval
  0x03: STRING, // Content Type
  0x08: STRING, // Response Topic
  0x09: STRING, // Correlation Data (binary: the same two-byte length)
  0x0b: VARINT, // Subscription Identifier
  0x23: 2, // Topic Alias
  0x26: PAIR, // User Property
};

/** An MQTT variable byte integer at `at`, or undefined when it is cut short or too long. */
function varint(b: Buffer, at: number): { value: number; bytes: number } | undefined {
  let value = 0;
  let multiplier = 1;
  for (let n = 0; n < 4; n++) {
    const byte = b[at + n];
    if (byte === undefined) return undefined;
    value += (byte & 0x7f) * multiplier;
    if (!(byte & 0x80)) return { value, bytes: n + 1 };
    multiplier *= 128;
  }
  return undefined;
}
