// The embedded MQTT broker: aedes behind a mutual-TLS server that admits only certificates from
// the local CA, binds each connection to its certificate's thing, and exposes authorisation and
// publish hooks that the local pipeline fills in (IoT policy, rule engine, Firehose delivery).
import { createHash, type X509Certificate } from "node:crypto";
import { EventEmitter } from "node:events";
import type { AddressInfo } from "node:net";
import * as tls from "node:tls";
import { Aedes, type AuthenticateError, type Client } from "aedes";
import { IOT_MAX_CLIENT_ID_BYTES, isBasicIngest, isServiceOnlyTopic } from "../../core/iot-limits";
import type { MqttProperties } from "../../core/rule-sql";
import { CONSOLE_IDENTITY } from "../identity/ca";
import { OfflineSessions, type SessionLimits } from "./offline-sessions";
import { PublishAcks, type UnacknowledgedLimits } from "./publish-acks";
import { RetainedStore, THROTTLED, type RetainedLimits } from "./retained";
import {
  adjustKeepAlive,
  answerRefusalWith,
  AWS_MQTT5,
  clampMessageExpiry,
  installAwsConnackCapabilities,
  mqttPropertiesOf,
  REASON,
  ReceiveMaximum,
} from "./mqtt5";
import { maxPublishPacketBytes } from "./broker-limits";
import { isShared, policyFilterOf, SharedSubscriptions } from "./shared-subscriptions";
import {
  ConnectionGuard,
  listenError,
  type ConnectionLimits,
  type GuardEvent,
} from "./connection-guard";

/** Who is connected: the MQTT client id and the thing its certificate names (CN). */
export interface ClientIdentity {
  readonly clientId: string;
  readonly thingName: string;
  /**
   * `console` for the identity that plays the AWS console's MQTT test client (authorised by IAM
   * in AWS, not by an IoT policy); `thing` for every device; `claim` for a fleet provisioning
   * claim certificate (local/provisioning/provisioning.ts), which no thing is attached to.
   */
  readonly kind: "thing" | "console" | "claim";
  /** The client certificate TLS verified (subject, issuer and validity feed policy variables). */
  readonly certificate?: X509Certificate;
  /**
   * The certificate's id (what `principal()` returns and `${iot:CertificateId}` stands for). AWS
   * documents it as 64 hex characters (API_CertificateDescription); locally it is the SHA-256 of
   * the certificate's DER, which has that form and names one certificate.
   */
  readonly certificateId?: string;
  /** The peer's IP address (`aws:SourceIp`). */
  readonly remoteAddress?: string;
}

/** What a CONNECT asks for beyond the identity: a persistent session, a will. */
export interface ConnectRequest {
  /** MQTT's clean session flag; false is AWS's `PersistentConnect` attribute. */
  readonly clean: boolean;
  /** The will message, AWS's `LastWill` attribute. */
  readonly will?: { readonly topic: string; readonly retain: boolean };
}

/** What TLS verified about a connecting client, for {@link BrokerHooks.bindIdentity}. */
export interface PresentedCertificate {
  readonly clientId: string;
  /** The certificate's subject CN. */
  readonly commonName: string;
  readonly certificate?: X509Certificate;
  readonly certificateId?: string;
  readonly remoteAddress?: string;
}

export interface BrokerHooks {
  /**
   * Binds a verified certificate to an identity when its CN does not name the thing (fleet
   * provisioning: claim certificates, and device certificates found in the registry by id). An
   * identity, a reason to refuse, or undefined for the default rule (client id = CN).
   */
  bindIdentity?(presented: PresentedCertificate): ClientIdentity | string | undefined;
  /** A reason to refuse the connection (will included), or undefined to accept it. */
  authorizeConnect?(id: ClientIdentity, connect?: ConnectRequest): string | undefined;
  /**
   * A reason to refuse the publish (`retain`: it carries the RETAIN flag). An MQTT 3.1.1 client is
   * then disconnected; an MQTT 5 client gets PUBACK 0x87 and stays connected (mqtt.html, "MQTT
   * reason codes": PUBACK 0x87 "The PUBLISH is not authorized").
   */
  authorizePublish?(id: ClientIdentity, topic: string, retain?: boolean): string | undefined;
  /**
   * A reason to refuse the subscription: the SUBACK then carries the failure code 0x80 (MQTT
   * 3.1.1), or 0x87 Not authorized for an MQTT 5 client (mqtt.html, "MQTT reason codes").
   */
  authorizeSubscribe?(id: ClientIdentity, filter: string): string | undefined;
  /** Whether this subscriber may receive a message on `topic`; checked per delivery. */
  authorizeReceive?(id: ClientIdentity, topic: string): boolean;
  /**
   * Runs for every accepted publish BEFORE the PUBACK; the PUBACK waits for the promise
   * (durability). `properties`: what an MQTT 5 publish carried (undefined for MQTT 3.1.1).
   */
  onPublish?(
    id: ClientIdentity,
    topic: string,
    payload: Buffer,
    qos: 0 | 1,
    properties?: MqttProperties,
  ): void | Promise<void>;
}

/** The broker's counts since it started. */
export interface BrokerStats {
  connects: number;
  /** TLS handshakes refused: no certificate, expired, not from the CA. */
  tlsRefusals: number;
  /** CONNECTs refused: client id not the certificate's thing, or authorizeConnect said no. */
  connectRefusals: number;
  publishes: number;
  publishDenials: number;
  /** Publishes the onPublish hook failed on (the client is disconnected, nothing acknowledged). */
  publishFailures: number;
  subscribeDenials: number;
  disconnects: number;
  /** Connections closed because a newer one took their client id, as AWS IoT does. */
  takeovers: number;
}

/**
 * life-cycle-events.html, "disconnectReason": the valid values. AUTH_ERROR, CLIENT_ERROR,
 * CONNECTION_LOST, DUPLICATE_CLIENTID, MQTT_KEEP_ALIVE_TIMEOUT, SERVER_ERROR,
 * SERVER_INITIATED_DISCONNECT and CLIENT_INITIATED_DISCONNECT happen at the embedded broker
 * (the broker decides which); the others need what it does not have (IP rules, the
 * DeleteConnection API, WebSockets, custom authorizers) and are listed for completeness.
 * local/broker/lifecycle-events.ts publishes them.
 */
export type DisconnectReason =
  | "AUTH_ERROR"
  | "CLIENT_INITIATED_DISCONNECT"
  | "CLIENT_ERROR"
  | "CONNECTION_LOST"
  | "DUPLICATE_CLIENTID"
  | "FORBIDDEN_ACCESS"
  | "MQTT_KEEP_ALIVE_TIMEOUT"
  | "SERVER_ERROR"
  | "SERVER_INITIATED_DISCONNECT"
  | "API_INITIATED_DISCONNECT"
  | "THROTTLED"
  | "WEBSOCKET_TTL_EXPIRATION"
  | "CUSTOMAUTH_TTL_EXPIRATION";

/** Typed events for logging. */
export interface BrokerEvents {
  /** `clean`: the CONNECT's clean-session flag (false: a persistent session). */
  connect: [id: ClientIdentity, remote: string, clean: boolean];
  /** `reason`: why, in the words of AWS's lifecycle events (life-cycle-events.html). */
  disconnect: [id: ClientIdentity, reason: DisconnectReason];
  /**
   * A TLS handshake refused. Repeats from one address are folded (connection-guard.ts): the first
   * comes at once, then one event per 10 s with `more` counting the rest and `remote` the address.
   */
  tlsRefused: [remote: string, reason: string, more?: number];
  /** `id`: set when the IoT policy refused it (connect, or the will's publish). */
  connectRefused: [
    clientId: string,
    thingName: string | undefined,
    reason: string,
    id?: ClientIdentity,
  ];
  /**
   * `answer`: what the client got: "disconnected" (MQTT 3.1.1), or for MQTT 5 "PUBACK 0x87" (QoS 1)
   * or "dropped" (QoS 0), the connection kept.
   */
  publishDenied: [id: ClientIdentity, topic: string, reason: string, answer: string];
  publishFailed: [id: ClientIdentity, topic: string, error: Error];
  subscribeDenied: [id: ClientIdentity, filter: string, reason: string];
  /** The filters of a SUBSCRIBE that were granted. */
  subscribed: [id: ClientIdentity, filters: string[]];
  /** The filters of an UNSUBSCRIBE (not the subscriptions a closing connection drops). */
  unsubscribed: [id: ClientIdentity, filters: string[]];
  /** A new connection took this client id; the older connection is being closed. */
  takeover: [id: ClientIdentity];
  clientError: [clientId: string, error: Error];
  /** A connection or packet the guard refused, or a slow subscriber (connection-guard.ts). */
  guard: [event: GuardEvent];
  /** A persistent session dropping messages or expiring (offline-sessions.ts). */
  session: [clientId: string, reason: string];
}

export interface BrokerOptions {
  readonly ca: string;
  readonly key: string;
  readonly cert: string;
  /** Default 127.0.0.1: the embedded broker is for this machine only. */
  readonly host?: string;
  /** Default 0: any free port. */
  readonly port?: number;
  readonly hooks?: BrokerHooks;
  /**
   * Refuse a client id other than the certificate's thing (CN), a stricter mode of the broker's
   * own. Off, the IoT policy alone decides which client id connects, as AWS IoT does: under
   * `iot:Connect` on `*` any client id gets in, and with non-exclusive association thing policy
   * variables resolve only when the client id is the thing's name (exclusive-thing.html).
   * @default false
   */
  readonly requireThingClientId?: boolean;
  /** Bounds of the retained-message store. @default RETAINED_DEFAULTS (local/broker/retained.ts) */
  readonly retained?: Partial<RetainedLimits>;
  /** Connection caps, timeouts, packet and slow-consumer limits; AWS IoT's by default. */
  readonly limits?: Partial<ConnectionLimits>;
  /**
   * Publishes a connection may have waiting for their PUBACK (or, at QoS 0, for the journal)
   * before it is not read. @default DEFAULT_UNACKNOWLEDGED_LIMITS (local/broker/publish-acks.ts)
   */
  readonly unacknowledged?: Partial<UnacknowledgedLimits>;
  /** Bounds of persistent sessions. @default DEFAULT_SESSION_LIMITS (local/broker/offline-sessions.ts) */
  readonly sessions?: Partial<SessionLimits>;
}

const SYS_PREFIX = "$SYS/";

/**
 * The lifecycle disconnect reason of each guard closure (life-cycle-events.html): a packet AWS
 * refuses is the client's error ("publish with a payload that exceeds the payload limit" is
 * CLIENT_ERROR), a client idle for 1.5 x its keep-alive is MQTT_KEEP_ALIVE_TIMEOUT; a subscriber
 * that takes nothing, and the broker out of packet memory, are the server's operational choice.
 */
const GUARD_ENDINGS: Partial<Record<GuardEvent["kind"], DisconnectReason>> = {
  "too-large": "CLIENT_ERROR",
  qos2: "CLIENT_ERROR",
  topic: "CLIENT_ERROR",
  malformed: "CLIENT_ERROR",
  unsupported: "CLIENT_ERROR",
  busy: "SERVER_INITIATED_DISCONNECT",
  idle: "MQTT_KEEP_ALIVE_TIMEOUT",
  "slow-consumer-disconnected": "SERVER_INITIATED_DISCONNECT",
};

/** A connection error aedes reports: the network's, a keep-alive, a slow subscriber, or the client's. */
function errorEnding(err: Error): DisconnectReason {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ECONNRESET" || code === "EPIPE" || code === "ETIMEDOUT") return "CONNECTION_LOST";
  if (err.message === "keep alive timeout") return "MQTT_KEEP_ALIVE_TIMEOUT";
  if (err.message === "drain timeout") return "SERVER_INITIATED_DISCONNECT";
  return "CLIENT_ERROR";
}

function refusal(message: string, returnCode: 2 | 5): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError;
}

/** A running mutual-TLS broker. */
export class LocalBroker extends EventEmitter<BrokerEvents> {
  readonly stats: BrokerStats = {
    connects: 0,
    tlsRefusals: 0,
    connectRefusals: 0,
    publishes: 0,
    publishDenials: 0,
    publishFailures: 0,
    subscribeDenials: 0,
    disconnects: 0,
    takeovers: 0,
  };
  /** Retained messages, stored per topic within AWS's limits. */
  readonly retained: RetainedStore;
  private hooks: BrokerHooks;
  private readonly identities = new WeakMap<Client, ClientIdentity>();
  /** Why the broker is closing a connection, when it is the one closing it (the first cause wins). */
  private readonly endings = new WeakMap<Client, DisconnectReason>();
  /**
   * PUBACKs in arrival order per connection, and the bound on what a connection may have waiting
   * (local/broker/publish-acks.ts): past it, the guard stops reading the connection.
   */
  readonly acks: PublishAcks;
  /** Persistent sessions' queues and expiry (local/broker/offline-sessions.ts). */
  readonly sessions: OfflineSessions;
  /** MQTT 5 QoS 1 publishes awaiting their PUBACK, against the Receive Maximum advertised. */
  readonly receiveMaximum = new ReceiveMaximum();
  /** `$share/{ShareName}/{TopicFilter}` groups (local/broker/shared-subscriptions.ts). */
  readonly shared: SharedSubscriptions;
  private stopped = false;

  private constructor(
    readonly aedes: Aedes,
    readonly server: tls.Server,
    hooks: BrokerHooks,
    readonly guard: ConnectionGuard,
    private readonly opts: Pick<
      BrokerOptions,
      "requireThingClientId" | "retained" | "unacknowledged" | "sessions"
    > = {},
  ) {
    super();
    this.hooks = hooks;
    this.retained = new RetainedStore(opts.retained);
    this.acks = new PublishAcks(opts.unacknowledged, {
      pause: (client) => guard.pauseReading(client),
      resume: (client) => guard.resumeReading(client),
    });
    this.sessions = new OfflineSessions(opts.sessions, (id, reason) =>
      this.emit("session", id, reason),
    );
    this.sessions.attach(aedes);
    this.shared = new SharedSubscriptions(aedes);
  }

  /** Starts aedes and the TLS listener; resolves once it listens. */
  static async start(opts: BrokerOptions): Promise<LocalBroker> {
    // Events come only once it listens, when `broker` below is set.
    const guard = new ConnectionGuard(opts.limits, (e) => {
      broker.endingFromGuard(e);
      broker.emit("guard", e);
    });
    installAwsConnackCapabilities();
    const aedes = await Aedes.createBroker({
      // aedes applies this to MQTT 3.1 only; authenticate() below holds every version to it.
      maxClientsIdLength: IOT_MAX_CLIENT_ID_BYTES,
      // MQTT 5, advertised in the CONNACK as AWS does (local/broker/mqtt5.ts cites each value).
      topicAliasMaximum: AWS_MQTT5.topicAliasMaximum,
      sessionExpiryIntervalLimit: AWS_MQTT5.sessionExpiryLimitSeconds,
      receiveMaximum: AWS_MQTT5.receiveMaximum,
      // AWS: "cannot exceed 128 KB". The payload is held to 128 KB by the packet scanner; the
      // packet size advertised is the largest PUBLISH holding such a payload, so that a client
      // does not refuse a 128 KB payload itself because of its topic and header.
      maximumPacketSize: maxPublishPacketBytes(guard.limits.packets),
      // AWS's keep-alive bounds; an MQTT 5 client is told its value in Server Keep Alive.
      preConnect: (client, packet, done) => {
        adjustKeepAlive(
          client,
          packet,
          Math.max(1, Math.round(guard.limits.defaultKeepaliveSeconds)),
          Math.max(1, Math.round(guard.limits.minKeepaliveSeconds)),
        );
        done(null, true);
      },
      ...guard.aedesOptions(),
    });
    const server = tls.createServer(
      {
        ca: opts.ca,
        key: opts.key,
        cert: opts.cert,
        requestCert: true,
        // TLS itself refuses a missing, expired or foreign client certificate.
        rejectUnauthorized: true,
        minVersion: "TLSv1.2",
        ...guard.tlsOptions(),
      },
      guard.handler(aedes),
    );
    guard.attach(server, aedes);
    const broker = new LocalBroker(aedes, server, opts.hooks ?? {}, guard, opts);
    broker.wire();
    const host = opts.host ?? "127.0.0.1";
    await new Promise<void>((resolve, reject) => {
      const failed = (e: Error) => {
        aedes.close();
        reject(listenError(e, host, opts.port ?? 0));
      };
      server.once("error", failed);
      server.listen(opts.port ?? 0, host, () => {
        server.off("error", failed);
        broker.listeningPort = (server.address() as AddressInfo).port;
        resolve();
      });
    });
    return broker;
  }

  /** Replaces the hooks; takes effect for the next packet. */
  setHooks(hooks: BrokerHooks): void {
    this.hooks = hooks;
  }

  private listeningPort = 0;

  /** The port it listens on (kept after stop(), so a restart can reuse it). */
  get port(): number {
    return this.listeningPort;
  }

  get url(): string {
    return `mqtts://127.0.0.1:${this.port}`;
  }

  /** The identity of a connected client, once its CONNECT was accepted. */
  identityOf(client: Client): ClientIdentity | undefined {
    return this.identities.get(client);
  }

  private wire(): void {
    const a = this.aedes;
    this.server.on("tlsClientError", (err: Error, socket: tls.TLSSocket) => {
      // The guard destroys the socket and finds the real reason and the peer's address.
      const refused = this.guard.tlsRefusal(err, socket);
      if (!refused) return;
      this.stats.tlsRefusals++;
      this.guard.fold({ kind: "tls", ...refused }, (e) =>
        this.emit("tlsRefused", e.remote, e.reason, e.more),
      );
    });

    a.authenticate = (client, _username, _password, done) => {
      const clientId = client.id;
      const socket = client.conn as tls.TLSSocket;
      const cn = socket.getPeerCertificate?.()?.subject?.CN;
      const thingName = Array.isArray(cn) ? cn[0] : cn;
      const refuse = (reason: string, code: 2 | 5, byPolicy?: ClientIdentity) => {
        this.stats.connectRefusals++;
        this.emit("connectRefused", clientId, thingName, reason, byPolicy);
        done(refusal(reason, code), false);
      };
      if (!socket.authorized || thingName === undefined) {
        return refuse("no verified client certificate", 5);
      }
      // AWS IoT: "Client ID size: 128 bytes of UTF-8 encoded characters" (quotas page,
      // https://docs.aws.amazon.com/general/latest/gr/iot-core.html); a client id the server
      // rejects gets CONNACK 0x02, identifier rejected (MQTT 3.1.1 [MQTT-3.1.3-9]).
      const idBytes = Buffer.byteLength(clientId);
      if (idBytes > IOT_MAX_CLIENT_ID_BYTES) {
        return refuse(
          `client id of ${idBytes} bytes; AWS IoT allows ${IOT_MAX_CLIENT_ID_BYTES}`,
          2,
        );
      }
      const certificate = socket.getPeerX509Certificate?.();
      const certificateId =
        certificate && createHash("sha256").update(certificate.raw).digest("hex");
      const bound = this.hooks.bindIdentity?.({
        clientId,
        commonName: thingName,
        certificate,
        certificateId,
        remoteAddress: socket.remoteAddress,
      });
      if (typeof bound === "string") return refuse(bound, 5);
      if (
        bound === undefined &&
        clientId !== thingName &&
        (this.opts.requireThingClientId ?? false)
      ) {
        // The stricter mode: AWS itself leaves the client id to the policy.
        return refuse(
          `client id ${JSON.stringify(clientId)} does not match its certificate's thing ${JSON.stringify(thingName)}`,
          2,
        );
      }
      const id: ClientIdentity = bound ?? {
        clientId,
        thingName,
        kind: thingName === CONSOLE_IDENTITY ? "console" : "thing",
        certificate,
        certificateId,
        remoteAddress: socket.remoteAddress,
      };
      // aedes keeps the CONNECT's will on the client before it authenticates.
      const will = (client as unknown as { _will?: { topic: string; retain?: boolean } })._will;
      const connect: ConnectRequest = {
        clean: client.clean !== false,
        will: will ? { topic: will.topic, retain: will.retain === true } : undefined,
      };
      // A will is the client's publish: not on AWS IoT's own event topics (reserved-topics.html).
      if (will && isServiceOnlyTopic(will.topic)) {
        return refuse(
          `the will's topic ${will.topic} is AWS IoT's own: clients may only subscribe`,
          5,
        );
      }
      const reason = this.hooks.authorizeConnect?.(id, connect);
      if (reason !== undefined) return refuse(reason, 5, id);
      this.identities.set(client, id);
      // aedes closes the older connection with this id when it registers the new one (AWS does
      // the same: mqtt.html, differences from the specification); say so and count it.
      const older = (a as unknown as { clients: Record<string, Client | undefined> }).clients[
        clientId
      ];
      const olderId = older ? this.identities.get(older) : undefined;
      if (olderId && older) {
        this.endWith(older, "DUPLICATE_CLIENTID");
        this.stats.takeovers++;
        this.emit("takeover", olderId);
      }
      done(null, true);
    };

    a.authorizePublish = (client, packet, publishDone) => {
      const v5 = client?.version === 5;
      let done = publishDone;
      if (v5 && client && packet.qos > 0) {
        if (!this.receiveMaximum.arrive(client)) {
          const id = this.identities.get(client);
          const reason = `more than ${this.receiveMaximum.maximum} QoS 1 publishes without their PUBACK (the Receive Maximum advertised)`;
          this.stats.publishDenials++;
          if (id) this.emit("publishDenied", id, packet.topic, reason, "DISCONNECT 0x93");
          const socket = client.conn as tls.TLSSocket;
          const closing = setTimeout(() => socket.destroy(), 1000);
          closing.unref();
          client.disconnect({ reasonCode: REASON.receiveMaximumExceeded }, () => {
            clearTimeout(closing);
            socket.destroy();
          });
          return;
        }
        done = (err) => {
          this.receiveMaximum.settle(client);
          publishDone(err);
        };
      }
      // An error from here: aedes closes an MQTT 3.1.1 connection, and answers an MQTT 5 one with
      // PUBACK 0x87 Not authorized, keeping it (mqtt.html, "MQTT reason codes"). So that a failure
      // to store (journal, provisioning) is never acknowledged, even with 0x87, an MQTT 5
      // connection is closed first: the device keeps the message and sends it again.
      const closeFirst: typeof done = (err) => {
        if (err && v5 && client) client.close(() => done(err));
        else done(err);
      };
      // Every outcome goes through the connection's lane, so PUBACKs keep the arrival order.
      const refuse = (message: string) => this.acks.now(client, done, new Error(message));
      const answer = !v5 ? "disconnected" : packet.qos > 0 ? "PUBACK 0x87" : "dropped";
      // Keep aedes' own guard: $SYS/ is the broker's.
      if (packet.topic.startsWith(SYS_PREFIX)) return refuse(`${SYS_PREFIX} topics are reserved`);
      const id = client ? this.identities.get(client) : undefined;
      if (!id) return refuse("publish from an unauthenticated client");
      // "Client operations allowed: Subscribe" on the event topics, whatever the policy says: no
      // client forges a lifecycle event (reserved-topics.html, "Event topics").
      if (isServiceOnlyTopic(packet.topic)) {
        const why = `${packet.topic} is AWS IoT's own event topic: clients may only subscribe`;
        this.stats.publishDenials++;
        this.emit("publishDenied", id, packet.topic, why, answer);
        if (!v5) this.endWith(client, "CLIENT_ERROR");
        return refuse(`publish to ${packet.topic} refused: ${why}`);
      }
      // The topic is the one a Topic Alias stands for: aedes resolves it before this hook.
      const reason = this.hooks.authorizePublish?.(id, packet.topic, packet.retain === true);
      if (reason !== undefined) {
        this.stats.publishDenials++;
        this.emit("publishDenied", id, packet.topic, reason, answer);
        if (!v5) this.endWith(client, "AUTH_ERROR");
        return refuse(`publish to ${packet.topic} denied: ${reason}`);
      }
      if (v5) clampMessageExpiry(packet.properties);
      const qos = packet.qos === 0 ? 0 : 1;
      const payload = Buffer.isBuffer(packet.payload)
        ? packet.payload
        : Buffer.from(packet.payload);
      // A retained publish counts against the store's bounds from here until stored or given up;
      // past them it is refused like a denied publish (AWS: "throttled"), before any PUBACK.
      const hold = packet.retain
        ? this.retained.reserve(
            packet.topic,
            payload,
            Date.now(),
            v5 ? packet.properties : undefined,
          )
        : undefined;
      if (typeof hold === "string") {
        // "AWS IoT Core returns a throttled response to messages published with RETAIN set" once
        // the retained store is full (mqtt.html, "Retained message limits"): for MQTT 5, PUBACK
        // 0x97 Quota exceeded ("MQTT reason codes"), not 0x87.
        const throttled =
          hold.startsWith(THROTTLED) && v5 && packet.qos > 0 && packet.messageId !== undefined;
        if (throttled && client)
          answerRefusalWith(client.conn, packet.messageId as number, REASON.quotaExceeded);
        this.stats.publishDenials++;
        this.emit("publishDenied", id, packet.topic, hold, throttled ? "PUBACK 0x97" : answer);
        return refuse(`retained publish to ${packet.topic} refused: ${hold}`);
      }
      const accepted = (): null => {
        if (typeof hold === "object") {
          hold.commit(qos);
          // Stored here, before the PUBACK; aedes must not keep a second, unbounded copy.
          packet.retain = false;
        }
        this.stats.publishes++;
        return null;
      };
      const failed = (e: unknown): Error => {
        if (typeof hold === "object") hold.release();
        const err = e instanceof Error ? e : new Error(String(e));
        this.stats.publishFailures++;
        this.endWith(client, "SERVER_ERROR");
        this.emit("publishFailed", id, packet.topic, err);
        return err; // no PUBACK: the device keeps the message and sends it again
      };
      // aedes writes the PUBACK after the callback, so waiting for the hook makes it durable.
      let pending: void | Promise<void>;
      try {
        const properties = v5 ? mqttPropertiesOf(packet.properties) : undefined;
        pending = this.hooks.onPublish?.(id, packet.topic, payload, qos, properties);
      } catch (e) {
        return this.acks.now(client, closeFirst, failed(e));
      }
      if (pending === undefined) return this.acks.now(client, closeFirst, accepted());
      this.acks.wait(
        client,
        closeFirst,
        pending.then(accepted, failed),
        payload.length + packet.topic.length,
      );
    };

    a.authorizeSubscribe = (client, sub, done) => {
      const id = this.identities.get(client);
      if (!id) return done(new Error("subscribe from an unauthenticated client"));
      // A shared subscription's iot:Subscribe is on its whole filter, `$share/{ShareName}/...`
      // (AWS's SDK samples allow `topicfilter/$share/*/test/topic`); iot:Receive is checked per
      // message on its topic, as for any subscriber (authorizeForward).
      const filter = policyFilterOf(sub.topic);
      // "Your devices and rules can't subscribe to Basic Ingest reserved topics" (iot-basic-ingest.html).
      const reason = isBasicIngest(filter.replace(/^\$share\/[^/]+\//, ""))
        ? "Basic Ingest topics ($aws/rules/...) go to their rule only; no client can subscribe to them"
        : this.hooks.authorizeSubscribe?.(id, filter);
      if (reason !== undefined) {
        this.stats.subscribeDenials++;
        this.emit("subscribeDenied", id, filter, reason);
        return done(null, null); // SUBACK 0x80 for this filter
      }
      done(null, sub);
    };

    a.authorizeForward = (client, packet) => {
      // Basic Ingest "removes the publish/subscribe message broker from the ingestion path"
      // (iot-basic-ingest.html): its messages reach the rule they name and no subscriber, whatever
      // its filter ($aws/#, or one from before this check).
      if (isBasicIngest(packet.topic)) return null;
      // aedes 2.0.0-beta.1 forwards a will's Will Delay Interval inside the PUBLISH (moscajs/aedes
      // #1098), a property a PUBLISH may not carry: the AWS SDK's MQTT 5 client then drops the
      // connection with a protocol error. Will Delay Interval belongs to the CONNECT only.
      const props = packet.properties as { willDelayInterval?: number } | undefined;
      if (props?.willDelayInterval !== undefined) delete props.willDelayInterval;
      const id = this.identities.get(client);
      if (!id || packet.topic.startsWith(SYS_PREFIX)) return packet;
      const hook = this.hooks.authorizeReceive;
      return hook === undefined || hook(id, packet.topic) ? packet : null;
    };

    a.on("subscribe", (subs, client) => {
      // "Shared subscriptions don't receive retained messages when subscribing" (mqtt.html).
      this.retained.deliverOnSubscribe(
        client,
        subs.filter((s) => !isShared(s.topic)),
      );
      const id = this.identities.get(client);
      // aedes lists the refused filters too, with a failure code (0x80 and up) as their QoS.
      // Events name a shared subscription as the client sent it ($share/...).
      const granted = subs.filter((sub) => sub.qos < 0x80).map((sub) => policyFilterOf(sub.topic));
      if (id && granted.length > 0) this.emit("subscribed", id, granted);
    });
    a.on("unsubscribe", (filters, client) => {
      const id = this.identities.get(client);
      // aedes also reports the subscriptions a closing clean session drops: no UNSUBSCRIBE.
      if (id && !client.closed) this.emit("unsubscribed", id, filters.map(policyFilterOf));
    });
    a.on("client", (client) => {
      const id = this.identities.get(client);
      if (!id) return;
      this.stats.connects++;
      const s = client.conn as tls.TLSSocket;
      this.emit("connect", id, `${s.remoteAddress ?? "?"}:${s.remotePort ?? "?"}`, client.clean);
      // A DISCONNECT of any reason code is the client's own: aedes marks only those that drop the
      // will, so an MQTT 5 "Disconnect with Will Message" (0x04) is seen here.
      const parser = (client as unknown as { _parser?: EventEmitter })._parser;
      parser?.prependListener("packet", (packet: { cmd?: string }) => {
        if (packet.cmd === "disconnect") this.endWith(client, "CLIENT_INITIATED_DISCONNECT");
      });
    });
    a.on("keepaliveTimeout", (client) => this.endWith(client, "MQTT_KEEP_ALIVE_TIMEOUT"));
    a.on("clientDisconnect", (client) => {
      const id = this.identities.get(client);
      if (!id) return;
      this.stats.disconnects++;
      // Closed without a cause the broker knows: the network's (socket closed, no DISCONNECT).
      const reason = this.endings.get(client) ?? "CONNECTION_LOST";
      this.emit("disconnect", id, reason);
    });
    a.on("clientError", (client, err) => {
      this.endWith(client, errorEnding(err));
      this.emit("clientError", client.id, err);
    });
  }

  /** Records why the broker ends this connection, unless a cause is already known. */
  private endWith(client: Client | null | undefined, reason: DisconnectReason): void {
    if (client && !this.endings.has(client)) this.endings.set(client, reason);
  }

  /** The guard closes connections for what they sent or did not take (connection-guard.ts). */
  private endingFromGuard(e: GuardEvent): void {
    if (e.clientId === undefined) return;
    const reason = GUARD_ENDINGS[e.kind];
    if (reason === undefined) return;
    const clients = (this.aedes as unknown as { clients: Record<string, Client | undefined> })
      .clients;
    const client = clients[e.clientId];
    // The connection the event is about, not an older one with the same client id: the guard
    // names its peer by address:port (connection-guard.ts remoteOf).
    if (client && this.guard.remoteOf(client.conn as tls.TLSSocket) === e.remote) {
      this.endWith(client, reason);
    }
  }

  /**
   * Publishes a message as AWS IoT itself does on its reserved topics (shadow responses, lifecycle
   * events, a rule's republish): to every subscriber whose filter matches and whose policy lets it
   * receive the topic (authorizeForward), with no publisher's policy to check. Resolves once the
   * message has been handed to the subscribers' connections and persistent sessions.
   */
  publishAsService(
    topic: string,
    payload: Buffer,
    opts: { readonly qos?: 0 | 1; readonly properties?: Record<string, unknown> } = {},
  ): Promise<void> {
    if (this.stopped) return Promise.reject(new Error("the broker is stopped"));
    return new Promise<void>((resolve, reject) =>
      this.aedes.publish(
        {
          cmd: "publish",
          topic,
          payload,
          qos: opts.qos ?? 0,
          retain: false,
          dup: false,
          ...(opts.properties === undefined ? {} : { properties: opts.properties }),
        } as Parameters<Aedes["publish"]>[0],
        (err) => (err ? reject(err) : resolve()),
      ),
    );
  }

  /** Closes the listener, every connection and aedes itself. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const clients = (this.aedes as unknown as { clients: Record<string, Client | undefined> })
      .clients;
    for (const c of Object.values(clients)) this.endWith(c, "SERVER_INITIATED_DISCONNECT");
    this.guard.stop();
    this.sessions.stop();
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
    await serverClosed;
  }
}
