// Figure 2's floor: what Node's TLS alone holds per connection, measured the way the fleet is. The
// server role is a mutual-TLS server with the broker's TLS options and nothing else (it answers a
// CONNECT's bytes with a CONNACK's, no MQTT); the client role opens one TLS connection per device
// with that device's own key and certificate, as the simulator's mqtt.js does (the CA trusted once
// for the process, simulator/shared-trust.ts), sends the CONNECT bytes and holds
// the connection. Each role is a process of its own: (peak RSS − RSS before) ÷ connections is the
// floor under the simulator's and the broker's memory per device.
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import { ensurePki, readCredentials } from "../local/identity/ca";
import { trustOnce } from "../simulator/shared-trust";
import { mapLimit, peakRssMiB, rssMiB } from "./stats";

export interface FloorClientRequest {
  readonly port: number;
  readonly pkiDir: string;
  readonly things: readonly string[];
  readonly concurrency: number;
}

export type FloorReply =
  | { type: "listening"; port: number; rssBeforeMiB: number }
  | { type: "connected"; connected: number; failures: number; rssBeforeMiB: number }
  | { type: "stopped"; peakRssMiB: number; connections: number };

/** An MQTT 3.1.1 CONNECT's bytes (clean session, keep-alive 30 s) for `clientId`. */
export function connectBytes(clientId: string): Buffer {
  const id = Buffer.from(clientId);
  const body = Buffer.concat([
    Buffer.from([0, 4]),
    Buffer.from("MQTT"),
    Buffer.from([4, 0x02, 0, 30, id.length >> 8, id.length & 0xff]),
    id,
  ]);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}

const CONNACK = Buffer.from([0x20, 2, 0, 0]);

const rssBeforeMiB = rssMiB();
const send = (m: FloorReply): Promise<void> =>
  new Promise((resolve) => process.send?.(m, () => resolve()));
/** Everything this role holds open, so that nothing is collected before the peak is read. */
const held: tls.TLSSocket[] = [];

async function server(pkiDir: string): Promise<void> {
  const pki = await ensurePki(pkiDir, []);
  const srv = tls.createServer(
    {
      ca: pki.caPem,
      key: pki.server.key,
      cert: pki.server.cert,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: "TLSv1.2",
    },
    (socket) => {
      held.push(socket);
      socket.on("error", () => undefined);
      socket.once("data", () => socket.write(CONNACK));
    },
  );
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  process.on("message", (m: unknown) => {
    if (m !== "stop") return;
    void send({ type: "stopped", peakRssMiB: peakRssMiB(), connections: held.length }).then(() =>
      process.exit(0),
    );
  });
  await send({ type: "listening", port: (srv.address() as AddressInfo).port, rssBeforeMiB });
}

async function client(req: FloorClientRequest): Promise<void> {
  let failures = 0;
  // The CA trusted once for the process, as the simulator does (simulator/shared-trust.ts).
  const ca = readCredentials(req.pkiDir, req.things[0]).ca;
  const sharedCa = trustOnce([ca]) !== undefined;
  const results = await mapLimit(req.things, req.concurrency, (thing) => {
    const c = readCredentials(req.pkiDir, thing);
    return new Promise<boolean>((resolve) => {
      const socket = tls.connect({
        host: "127.0.0.1",
        port: req.port,
        key: c.key,
        cert: c.cert,
        ca: sharedCa ? undefined : ca,
      });
      const timer = setTimeout(() => socket.destroy(new Error("no CONNACK in 30 s")), 30_000);
      socket.once("secureConnect", () => socket.write(connectBytes(thing)));
      socket.once("data", () => {
        clearTimeout(timer);
        held.push(socket);
        resolve(true);
      });
      socket.once("error", () => {
        clearTimeout(timer);
        failures++;
        resolve(false);
      });
    });
  });
  process.on("message", (m: unknown) => {
    if (m !== "stop") return;
    void send({ type: "stopped", peakRssMiB: peakRssMiB(), connections: held.length }).then(() =>
      process.exit(0),
    );
  });
  await send({
    type: "connected",
    connected: results.filter(Boolean).length,
    failures,
    rssBeforeMiB,
  });
}

process.on("disconnect", () => process.exit(0));
if (process.argv[2] === "server") void server(process.argv[3]);
else process.once("message", (m: unknown) => void client(m as FloorClientRequest));
