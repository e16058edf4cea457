// The embedded MQTT broker: aedes behind a mutual-TLS server that admits only certificates from
// the local CA, binds each connection to its certificate's thing, and exposes authorisation and
// publish hooks that the local pipeline fills in (IoT policy, rule engine, Firehose delivery).
import { createHash, type X509Certificate } from "node:crypto";
import { EventEmitter } from "node:events";
import type { AddressInfo } from "node:net";
import * as tls from "node:tls";
import { Aedes, type AuthenticateError, type Client } from "aedes";
import { CONSOLE_IDENTITY } from "./ca";
import {
  ConnectionGuard,
  listenError,
  type ConnectionLimits,
  type GuardEvent,
} from "./connection-guard";

/** Who is connected: the MQTT client id and the thing its certificate names (CN). */
export interface DeviceIdentity {
  readonly clientId: string;
  readonly thingName: string;
  /**
   * `console` for the identity that plays the AWS console's MQTT test client (authorised by IAM
   * in AWS, not by an IoT policy); `thing` for every device.
   */
  readonly kind: "thing" | "console";
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

export interface BrokerHooks {
  /** A reason to refuse the connection, or undefined to accept it. */
  authorizeConnect?(id: DeviceIdentity): string | undefined;
  /** A reason to refuse the publish: the client is then DISCONNECTED, as AWS IoT does. */
  authorizePublish?(id: DeviceIdentity, topic: string): string | undefined;
  /** A reason to refuse the subscription: the SUBACK then carries the failure code 0x80. */
  authorizeSubscribe?(id: DeviceIdentity, filter: string): string | undefined;
  /** Whether this subscriber may receive a message on `topic`; checked per delivery. */
  authorizeReceive?(id: DeviceIdentity, topic: string): boolean;
  /** Runs for every accepted publish BEFORE the PUBACK; the PUBACK waits for the promise (durability). */
  onPublish?(id: DeviceIdentity, topic: string, payload: Buffer, qos: 0 | 1): void | Promise<void>;
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
}

/** Typed events for logging. */
export interface BrokerEvents {
  connect: [id: DeviceIdentity, remote: string];
  disconnect: [id: DeviceIdentity];
  tlsRefused: [remote: string, reason: string];
  connectRefused: [clientId: string, thingName: string | undefined, reason: string];
  publishDenied: [id: DeviceIdentity, topic: string, reason: string];
  publishFailed: [id: DeviceIdentity, topic: string, error: Error];
  subscribeDenied: [id: DeviceIdentity, filter: string, reason: string];
  clientError: [clientId: string, error: Error];
  /** A connection or packet the guard refused, or a slow subscriber (connection-guard.ts). */
  guard: [event: GuardEvent];
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
  /** Connection caps, timeouts, packet and slow-consumer limits; AWS IoT's by default. */
  readonly limits?: Partial<ConnectionLimits>;
}

/** MQTT client ids AWS accepts are at most 128 bytes. */
const MAX_CLIENT_ID_BYTES = 128;
const SYS_PREFIX = "$SYS/";

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
  };
  private hooks: BrokerHooks;
  private readonly identities = new WeakMap<Client, DeviceIdentity>();
  private stopped = false;

  private constructor(
    readonly aedes: Aedes,
    readonly server: tls.Server,
    hooks: BrokerHooks,
    readonly guard: ConnectionGuard,
  ) {
    super();
    this.hooks = hooks;
  }

  /** Starts aedes and the TLS listener; resolves once it listens. */
  static async start(opts: BrokerOptions): Promise<LocalBroker> {
    // Events come only once it listens, when `broker` below is set.
    const guard = new ConnectionGuard(opts.limits, (e) => broker.emit("guard", e));
    const aedes = await Aedes.createBroker({
      maxClientsIdLength: MAX_CLIENT_ID_BYTES,
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
    const broker = new LocalBroker(aedes, server, opts.hooks ?? {}, guard);
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
  identityOf(client: Client): DeviceIdentity | undefined {
    return this.identities.get(client);
  }

  private wire(): void {
    const a = this.aedes;
    this.server.on("tlsClientError", (err: Error, socket: tls.TLSSocket) => {
      // The guard destroys the socket and finds the real reason and the peer's address.
      const refused = this.guard.tlsRefusal(err, socket);
      if (!refused) return;
      this.stats.tlsRefusals++;
      this.emit("tlsRefused", refused.remote, refused.reason);
    });

    a.authenticate = (client, _username, _password, done) => {
      const clientId = client.id;
      const socket = client.conn as tls.TLSSocket;
      const cn = socket.getPeerCertificate?.()?.subject?.CN;
      const thingName = Array.isArray(cn) ? cn[0] : cn;
      const refuse = (reason: string, code: 2 | 5) => {
        this.stats.connectRefusals++;
        this.emit("connectRefused", clientId, thingName, reason);
        done(refusal(reason, code), false);
      };
      if (!socket.authorized || thingName === undefined) {
        return refuse("no verified client certificate", 5);
      }
      if (clientId !== thingName) {
        // AWS binds thing policy variables to the connection only when client id = thing name.
        return refuse(
          `client id ${JSON.stringify(clientId)} does not match its certificate's thing ${JSON.stringify(thingName)}`,
          2,
        );
      }
      const certificate = socket.getPeerX509Certificate?.();
      const id: DeviceIdentity = {
        clientId,
        thingName,
        kind: thingName === CONSOLE_IDENTITY ? "console" : "thing",
        certificate,
        certificateId: certificate && createHash("sha256").update(certificate.raw).digest("hex"),
        remoteAddress: socket.remoteAddress,
      };
      const reason = this.hooks.authorizeConnect?.(id);
      if (reason !== undefined) return refuse(reason, 5);
      this.identities.set(client, id);
      done(null, true);
    };

    a.authorizePublish = (client, packet, done) => {
      // Keep aedes' own guard: $SYS/ is the broker's.
      if (packet.topic.startsWith(SYS_PREFIX)) {
        return done(new Error(`${SYS_PREFIX} topics are reserved`));
      }
      const id = client ? this.identities.get(client) : undefined;
      if (!id) return done(new Error("publish from an unauthenticated client"));
      const reason = this.hooks.authorizePublish?.(id, packet.topic);
      if (reason !== undefined) {
        this.stats.publishDenials++;
        this.emit("publishDenied", id, packet.topic, reason);
        // An error here makes aedes close the connection: AWS IoT disconnects on a denied publish.
        return done(new Error(`publish to ${packet.topic} denied: ${reason}`));
      }
      const qos = packet.qos === 0 ? 0 : 1;
      const payload = Buffer.isBuffer(packet.payload)
        ? packet.payload
        : Buffer.from(packet.payload);
      // aedes writes the PUBACK after this callback, so waiting here makes the PUBACK durable.
      let pending: void | Promise<void>;
      try {
        pending = this.hooks.onPublish?.(id, packet.topic, payload, qos);
      } catch (e) {
        pending = Promise.reject(e);
      }
      Promise.resolve(pending).then(
        () => {
          this.stats.publishes++;
          done(null);
        },
        (e: unknown) => {
          const err = e instanceof Error ? e : new Error(String(e));
          this.stats.publishFailures++;
          this.emit("publishFailed", id, packet.topic, err);
          done(err); // no PUBACK: the device keeps the message and sends it again
        },
      );
    };

    a.authorizeSubscribe = (client, sub, done) => {
      const id = this.identities.get(client);
      if (!id) return done(new Error("subscribe from an unauthenticated client"));
      const reason = this.hooks.authorizeSubscribe?.(id, sub.topic);
      if (reason !== undefined) {
        this.stats.subscribeDenials++;
        this.emit("subscribeDenied", id, sub.topic, reason);
        return done(null, null); // SUBACK 0x80 for this filter
      }
      done(null, sub);
    };

    a.authorizeForward = (client, packet) => {
      const id = this.identities.get(client);
      if (!id || packet.topic.startsWith(SYS_PREFIX)) return packet;
      const hook = this.hooks.authorizeReceive;
      return hook === undefined || hook(id, packet.topic) ? packet : null;
    };

    a.on("client", (client) => {
      const id = this.identities.get(client);
      if (!id) return;
      this.stats.connects++;
      const s = client.conn as tls.TLSSocket;
      this.emit("connect", id, `${s.remoteAddress ?? "?"}:${s.remotePort ?? "?"}`);
    });
    a.on("clientDisconnect", (client) => {
      const id = this.identities.get(client);
      if (!id) return;
      this.stats.disconnects++;
      this.emit("disconnect", id);
    });
    a.on("clientError", (client, err) => this.emit("clientError", client.id, err));
  }

  /** Closes the listener, every connection and aedes itself. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.guard.stop();
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await new Promise<void>((resolve) => this.aedes.close(() => resolve()));
    await serverClosed;
  }
}
