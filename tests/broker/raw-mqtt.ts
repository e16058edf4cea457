// MQTT 3.1.1 packets built byte by byte, and a client over real TLS that sends exactly those bytes:
// for tests that send what a well-behaved library refuses to (QoS 2, invalid UTF-8, a 200 MiB
// header) or that stop reading on purpose (a frozen subscriber).
import * as tls from "node:tls";
import type { Credentials } from "../../local/identity/ca";

function remainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

const str = (s: string | Buffer) => {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s, "utf8");
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
};

const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
};

/** A fixed header for a packet whose body is `bodyLength` bytes (the body may be sent later). */
export function fixedHeader(type: number, flags: number, bodyLength: number): Buffer {
  return Buffer.concat([Buffer.from([(type << 4) | flags]), remainingLength(bodyLength)]);
}

export function connectPacket(
  clientId: string,
  opts: {
    keepalive?: number;
    will?: { topic: string | Buffer; qos: number };
    clean?: boolean;
  } = {},
): Buffer {
  let flags = opts.clean === false ? 0 : 0x02; // clean session unless asked for a persistent one
  const payload = [str(clientId)];
  if (opts.will) {
    flags |= 0x04 | (opts.will.qos << 3);
    payload.push(str(opts.will.topic), str("gone"));
  }
  const body = Buffer.concat([
    str("MQTT"),
    Buffer.from([4, flags]),
    u16(opts.keepalive ?? 60),
    ...payload,
  ]);
  return Buffer.concat([fixedHeader(1, 0, body.length), body]);
}

export function publishPacket(
  topic: string | Buffer,
  payload: Buffer,
  qos: number,
  id = 1,
): Buffer {
  const body = Buffer.concat([str(topic), qos > 0 ? u16(id) : Buffer.alloc(0), payload]);
  return Buffer.concat([fixedHeader(3, qos << 1, body.length), body]);
}

export function subscribePacket(filters: Array<[string | Buffer, number]>, id = 1): Buffer {
  const body = Buffer.concat([
    u16(id),
    ...filters.flatMap(([f, qos]) => [str(f), Buffer.from([qos])]),
  ]);
  return Buffer.concat([fixedHeader(8, 2, body.length), body]);
}

export function pubackPacket(id: number): Buffer {
  return Buffer.from([0x40, 2, id >> 8, id & 0xff]);
}

/** One packet the broker sent: its type, flags and body. */
export interface Received {
  readonly type: number;
  readonly flags: number;
  readonly body: Buffer;
}

/** A TLS connection that writes raw bytes and splits what comes back into packets. */
export class RawClient {
  readonly socket: tls.TLSSocket;
  readonly received: Received[] = [];
  readonly closed: Promise<void>;
  private pending = Buffer.alloc(0);
  private waiters: Array<() => void> = [];

  constructor(port: number, creds: Credentials) {
    this.socket = tls.connect({
      host: "127.0.0.1",
      port,
      servername: "localhost",
      ca: creds.ca,
      key: creds.key,
      cert: creds.cert,
    });
    this.socket.on("error", () => undefined);
    this.socket.on("data", (d: Buffer) => this.onData(d));
    this.closed = new Promise((resolve) => this.socket.once("close", () => resolve()));
    this.closed.then(() => this.wake());
  }

  static async open(port: number, creds: Credentials): Promise<RawClient> {
    const c = new RawClient(port, creds);
    await new Promise<void>((resolve, reject) => {
      c.socket.once("secureConnect", () => resolve());
      c.socket.once("close", () => reject(new Error("closed before the TLS handshake finished")));
    });
    return c;
  }

  get isClosed(): boolean {
    return this.socket.destroyed;
  }

  write(b: Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.write(b, () => resolve());
    });
  }

  /** Waits for a packet of this type; undefined if the connection closes first. */
  async next(type: number): Promise<Received | undefined> {
    for (;;) {
      const i = this.received.findIndex((r) => r.type === type);
      if (i >= 0) return this.received.splice(i, 1)[0];
      if (this.socket.destroyed && this.pending.length === 0) return undefined;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** CONNECT as `clientId` and wait for CONNACK; resolves with its return code. */
  async connect(
    clientId: string,
    opts?: Parameters<typeof connectPacket>[1],
  ): Promise<number | undefined> {
    await this.write(connectPacket(clientId, opts));
    const ack = await this.next(2);
    return ack?.body[1];
  }

  end(): void {
    this.socket.destroy();
  }

  private onData(d: Buffer): void {
    this.pending = Buffer.concat([this.pending, d]);
    for (;;) {
      if (this.pending.length < 2) break;
      let length = 0;
      let mult = 1;
      let at = 1;
      let complete = false;
      while (at < this.pending.length && at <= 4) {
        const b = this.pending[at++];
        length += (b & 0x7f) * mult;
        mult *= 128;
        if (!(b & 0x80)) {
          complete = true;
          break;
        }
      }
      if (!complete || this.pending.length < at + length) break;
      const first = this.pending[0];
      this.received.push({
        type: first >> 4,
        flags: first & 0x0f,
        body: this.pending.subarray(at, at + length),
      });
      this.pending = this.pending.subarray(at + length);
    }
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
