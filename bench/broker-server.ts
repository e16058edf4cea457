// The broker of figures 1 and 2, in a process of its own so that its CPU and peak RSS are its own
// and not the load generator's: the project's mutual-TLS broker with no hooks, driven over IPC.
import { ensurePki } from "../local/ca";
import { LocalBroker } from "../local/broker";
import { peakRssMiB } from "./stats";

/** What this process tells its parent. */
export type BrokerReply =
  | { type: "listening"; url: string }
  | { type: "stopped"; peakRssMiB: number; publishes: number; connects: number; refusals: number };

async function main(): Promise<void> {
  const pkiDir = process.argv[2];
  // Everything was issued by the parent already; this only reads the CA and the server key.
  const pki = await ensurePki(pkiDir, []);
  const broker = await LocalBroker.start({
    ca: pki.caPem,
    key: pki.server.key,
    cert: pki.server.cert,
  });
  const send = (m: BrokerReply): Promise<void> =>
    new Promise((resolve) => process.send?.(m, () => resolve()));
  process.on("message", (m: unknown) => {
    if (m !== "stop") return;
    void (async () => {
      const reply: BrokerReply = {
        type: "stopped",
        peakRssMiB: peakRssMiB(),
        publishes: broker.stats.publishes,
        connects: broker.stats.connects,
        refusals: broker.stats.tlsRefusals + broker.stats.connectRefusals,
      };
      await broker.stop();
      await send(reply);
      process.exit(0);
    })();
  });
  // The parent going away must not leave a broker behind.
  process.on("disconnect", () => process.exit(0));
  await send({ type: "listening", url: broker.url });
}

void main();
