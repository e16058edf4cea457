// MQTT 5 as AWS IoT Core speaks it, where aedes 2.0.0-beta.1 differs: the values AWS advertises in
// its CONNACK, its clamps on session and message expiry, and the reason codes it answers with.
// Every value is from https://docs.aws.amazon.com/iot/latest/developerguide/mqtt.html ("MQTT 5
// supported features", "MQTT 5 properties", "MQTT reason codes"); docs/mqtt5.md lists each one
// with its test.
import { createRequire } from "node:module";
import type { MqttProperties } from "../../core/rule-sql";

/** AWS IoT Core's MQTT 5 values (mqtt.html), for aedes' options and the CONNACK. */
export const AWS_MQTT5 = {
  /** "Topic aliases": "AWS IoT Core has a default limit of 8 topic aliases". */
  topicAliasMaximum: 8,
  /**
   * "Session Expiry Interval": "a maximum of 7 days, with a default maximum of one hour. If the
   * value you set exceeds the maximum of your account, AWS IoT Core will return the adjusted value
   * in the CONNACK".
   */
  sessionExpiryLimitSeconds: 3600,
  /**
   * Receive Maximum, "the maximum number of PUBLISH QOS > 0 packets which can be sent without
   * receiving an PUBACK" ("MQTT 5 properties", CONNECT and CONNACK; no value given there): the
   * quota "Maximum inbound unacknowledged QoS 1 publish requests", 100, not adjustable ("AWS IoT
   * Core restricts the number of unacknowledged inbound publish requests per client. When this
   * quota is reached, no new publish requests are accepted from this client until a PUBACK message
   * is returned by the server", https://docs.aws.amazon.com/general/latest/gr/iot-core.html).
   */
  receiveMaximum: 100,
  /**
   * "Message expiry" (mqtt.html, "MQTT 5 supported features"): "In AWS IoT Core, the minimum MEI is
   * 1. If the interval is set to 0 from the client side, it will be adjusted to 1. The maximum
   * message expiry interval is 604800 (7 days). Any values higher than this will be adjusted to
   * the maximum value."
   */
  maxMessageExpirySeconds: 7 * 24 * 3600,
} as const;

/** MQTT 5 reason codes the broker sends itself (mqtt.html, "MQTT reason codes"). */
export const REASON = {
  /** PUBACK / SUBACK: "The PUBLISH is not authorized" / "not authorized to make this subscription". */
  notAuthorized: 0x87,
  /** DISCONNECT: "Malformed Packet". */
  malformed: 0x81,
  /** DISCONNECT: "Topic Filter invalid". */
  topicFilterInvalid: 0x8f,
  /** DISCONNECT: "Topic Name invalid". */
  topicNameInvalid: 0x90,
  /** DISCONNECT: "Packet too large". */
  packetTooLarge: 0x95,
  /** DISCONNECT: "Quota exceeded". */
  quotaExceeded: 0x97,
  /** DISCONNECT: "Receive Maximum exceeded". */
  receiveMaximumExceeded: 0x93,
  /** DISCONNECT: "QoS not supported". */
  qosNotSupported: 0x9b,
  /** DISCONNECT: "Subscription Identifiers not supported". */
  subscriptionIdentifiersNotSupported: 0xa1,
} as const;

/**
 * The capability properties of a successful MQTT 5 CONNACK as AWS IoT sends them ("MQTT 5
 * properties": Maximum QoS "Default is 1. AWS IoT Core doesn't support QoS 2"; Retain Available
 * "The default is 1"; Wildcard Subscription Available "The default is 1"; Subscription Identifier
 * Available "The default is 0"). aedes 2.0.0-beta.1 leaves them out, which tells a client that
 * QoS 2 and subscription identifiers are available, and has no option for them.
 */
export const AWS_CONNACK_CAPABILITIES = {
  maximumQoS: 1,
  retainAvailable: true,
  wildcardSubscriptionAvailable: true,
  subscriptionIdentifiersAvailable: false,
} as const;

interface Packet {
  cmd?: string;
  messageId?: number;
  reasonCode?: number;
  properties?: Record<string, unknown>;
}
type WriteToStream = (
  packet: Packet,
  stream: unknown,
  opts?: { protocolVersion?: number },
) => boolean;
const WRAPPED = Symbol.for("iot-pipeline.awsConnackCapabilities");

/**
 * PUBACK reason codes other than aedes' 0x87 for a refused publish, by connection and packet id:
 * aedes answers every refusal of an MQTT 5 publish with 0x87 and has no way to say another code.
 */
const otherPubackCodes = new WeakMap<object, Map<number, number>>();

/**
 * Makes the PUBACK aedes writes for this refused QoS 1 publish carry `reasonCode` instead of 0x87
 * (e.g. 0x97 Quota exceeded). Takes effect once {@link installAwsConnackCapabilities} ran.
 */
export function answerRefusalWith(stream: object, messageId: number, reasonCode: number): void {
  let codes = otherPubackCodes.get(stream);
  if (!codes) otherPubackCodes.set(stream, (codes = new Map()));
  codes.set(messageId, reasonCode);
}

/**
 * Adds {@link AWS_CONNACK_CAPABILITIES} to every successful MQTT 5 CONNACK aedes writes, and gives
 * a refused publish's PUBACK the code {@link answerRefusalWith} chose. aedes
 * writes its packets through the `writeToStream` of the mqtt-packet module it imports; that
 * function is wrapped once per process, and only a CONNACK with reason code 0 at protocol 5 is
 * touched (a client never writes a CONNACK). The smallest hook the beta allows: it has no option
 * for these properties (an upstream `connackProperties` option would replace this).
 */
export function installAwsConnackCapabilities(): void {
  const fromAedes = createRequire(createRequire(__filename).resolve("aedes"));
  const packets = fromAedes("mqtt-packet") as { writeToStream: WriteToStream };
  const write = packets.writeToStream as WriteToStream & { [WRAPPED]?: true };
  if (write[WRAPPED]) return;
  const wrapped: WriteToStream = (packet, stream, opts) => {
    if (packet.cmd === "puback" && packet.reasonCode === REASON.notAuthorized) {
      const codes = otherPubackCodes.get(stream as object);
      const code = packet.messageId === undefined ? undefined : codes?.get(packet.messageId);
      if (code !== undefined) {
        codes?.delete(packet.messageId as number);
        packet.reasonCode = code;
      }
    }
    if (packet.cmd === "connack" && opts?.protocolVersion === 5 && !packet.reasonCode) {
      const properties: Record<string, unknown> = {
        ...packet.properties,
        ...AWS_CONNACK_CAPABILITIES,
      };
      // aedes says Shared Subscription Available 0; AWS supports them ("Shared subscriptions")
      // and does not list the property among those it sends ("MQTT 5 properties"): absent means
      // available (MQTT 5 §3.2.2.3.15).
      delete properties.sharedSubscriptionAvailable;
      packet.properties = properties;
    }
    return write(packet, stream, opts);
  };
  packets.writeToStream = Object.assign(wrapped, { [WRAPPED]: true as const });
}

/**
 * The QoS 1 publishes each MQTT 5 connection has sent and not yet had a PUBACK for, against the
 * Receive Maximum the broker advertised. MQTT 5 §3.3.4: "If it receives more than Receive Maximum
 * QoS 1 and QoS 2 PUBLISH packets where it has not sent a PUBACK or PUBCOMP in response, the Server
 * uses a DISCONNECT packet with Reason Code 0x93 (Receive Maximum exceeded)", a code AWS lists
 * among its DISCONNECT reason codes (mqtt.html, "MQTT reason codes"). The broker's reading bound
 * (publish-acks.ts) already stops reading a connection at 100 waiting publishes, so only a burst
 * read at once can pass it; this names that client's fault instead of accepting the excess.
 */
export class ReceiveMaximum {
  private readonly inFlight = new WeakMap<object, number>();
  /** MQTT 5 connections closed with DISCONNECT 0x93. */
  exceeded = 0;

  constructor(readonly maximum: number = AWS_MQTT5.receiveMaximum) {}

  /** Counts a QoS 1 PUBLISH in; false when it is one more than the maximum (not counted then). */
  arrive(client: object): boolean {
    const n = (this.inFlight.get(client) ?? 0) + 1;
    if (n > this.maximum) {
      this.exceeded++;
      return false;
    }
    this.inFlight.set(client, n);
    return true;
  }

  /** Its PUBACK is about to be written (or it will never be: the connection is closing). */
  settle(client: object): void {
    const n = this.inFlight.get(client) ?? 0;
    if (n <= 1) this.inFlight.delete(client);
    else this.inFlight.set(client, n - 1);
  }
}

/** AWS IoT's keep-alive bounds, seconds ({@link serverKeepAlive}). */
export const AWS_KEEP_ALIVE = { min: 30, max: 1200 } as const;

/**
 * The keep-alive AWS IoT holds a connection to, for the one its CONNECT asked for: "If a client
 * requests a keep-alive interval of zero, the default keep-alive interval [1,200 s] will be used",
 * a value below 30 s is taken as 30 s and one above 1,200 s as 1,200 s, and the client is
 * disconnected after 1.5 times it without a packet (quotas page, "Message broker and protocol
 * limits and quotas", https://docs.aws.amazon.com/general/latest/gr/iot-core.html). An MQTT 5
 * client learns the value it gets from the CONNACK's Server Keep Alive, "the keep alive time
 * assigned by the server. The server will disconnect the client if the client is inactive for
 * more than the keep alive time" (mqtt.html, "MQTT 5 properties"), which it then MUST use
 * ([MQTT-3.2.2-21]). `max` is the broker's default keep-alive (AWS: 1,200 s).
 */
export function serverKeepAlive(
  requested: number,
  max: number = AWS_KEEP_ALIVE.max,
  min: number = AWS_KEEP_ALIVE.min,
): number {
  if (requested === 0 || requested > max) return max;
  return Math.max(requested, Math.min(min, max));
}

/**
 * aedes' preConnect hook: holds the CONNECT's keep-alive to {@link serverKeepAlive}. An MQTT 5
 * client is told the adjusted value (Server Keep Alive in the CONNACK, which aedes writes and times
 * the connection by); an MQTT 3.1.1 client below 30 s is timed by 30 s, as AWS does, and one
 * asking for 0 or more than the maximum is left to the connection guard's idle timer (3.1.1 has
 * no way to tell the client, and aedes would refuse the CONNECT).
 */
export function adjustKeepAlive(
  client: object,
  packet: { protocolVersion?: number; keepalive?: number },
  max: number,
  min: number = AWS_KEEP_ALIVE.min,
): void {
  const requested = packet.keepalive ?? 0;
  const assigned = serverKeepAlive(requested, max, min);
  if (assigned === requested) return;
  if (packet.protocolVersion === 5) {
    (client as { _serverKeepAlive?: number })._serverKeepAlive = assigned;
  } else if (requested > 0 && requested < assigned) {
    packet.keepalive = assigned;
  }
}

/**
 * AWS's clamp on a publish's Message Expiry Interval, in place, before aedes computes the expiry
 * from it ({@link AWS_MQTT5.maxMessageExpirySeconds}: 0 is taken as 1 second, more than 7 days as
 * 7 days).
 */
export function clampMessageExpiry(properties: { messageExpiryInterval?: number } | undefined) {
  const v = properties?.messageExpiryInterval;
  if (!properties || v === undefined) return;
  properties.messageExpiryInterval = Math.min(Math.max(v, 1), AWS_MQTT5.maxMessageExpirySeconds);
}

/** mqtt-packet's PUBLISH properties, as aedes hands them to the hooks. */
export interface PublishProperties {
  readonly payloadFormatIndicator?: boolean | number;
  readonly contentType?: string;
  readonly responseTopic?: string;
  readonly correlationData?: Buffer;
  readonly userProperties?: Readonly<Record<string, string | string[]>>;
}

/**
 * What IoT SQL's get_mqtt_property() and get_user_properties() read, from a PUBLISH's properties
 * (undefined for a 3.1.1 publish, which has none). mqtt-packet keeps user properties as an object,
 * so repeated keys come grouped in their first key's place, not interleaved as sent.
 */
export function mqttPropertiesOf(p: PublishProperties | undefined): MqttProperties | undefined {
  if (!p) return undefined;
  const userProperties = Object.entries(p.userProperties ?? {}).flatMap(([k, v]) =>
    (Array.isArray(v) ? v : [v]).map((value): [string, string] => [k, value]),
  );
  return {
    contentType: p.contentType,
    payloadFormatIndicator:
      p.payloadFormatIndicator === undefined ? undefined : p.payloadFormatIndicator ? 1 : 0,
    responseTopic: p.responseTopic,
    correlationData: p.correlationData,
    userProperties: userProperties.length > 0 ? userProperties : undefined,
  };
}
