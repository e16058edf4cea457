// The broker of figures 1 and 2, in a process of its own so that its CPU and peak RSS are its own
// and not the load generator's: the project's mutual-TLS broker with no hooks, driven over IPC.
import { ensurePki } from "../local/identity/ca";
import { LocalBroker } from "../local/broker/broker";
import type { ConnectionLimits } from "../local/broker/connection-guard";
import { MemoryTracker, memorySample, type MemorySample } from "./memory";

/** What this process tells its parent. */
export type BrokerReply =
  | { type: "listening"; url: string; rssBeforeMiB: number }
  /** The answer to "settled": memory once the load is over, every device still connected. */
  | { type: "settled"; settled: MemorySample }
  | {
      type: "stopped";
      peakRssMiB: number;
      /** process.memoryUsage() at the sample of highest RSS while it ran. */
      atPeak: MemorySample;
      publishes: number;
      /** Memory when "publishing" came: every device connected, none publishing yet. */
      atConnected: MemorySample;
      /** CPU seconds (user + system) between "publishing" and "hold", and the publishes in them. */
      cpuSeconds: number;
      publishesSampled: number;
      connects: number;
      refusals: number;
    };

/**
 * What the parent may send: "sample" (devices are coming: sample memory), "publishing" (they are
 * all connected: count CPU time from here), "settled" (the load is over and acknowledged: take
 * the settled sample and answer with it), "hold" (they are leaving: keep the samples and the CPU
 * time so far) and "stop".
 */
export type BrokerCommand = "sample" | "publishing" | "settled" | "hold" | "stop";

async function main(): Promise<void> {
  const pkiDir = process.argv[2];
  // Connection caps for a fleet larger than the defaults allow from one address (figure 2).
  const limits = JSON.parse(process.argv[3] ?? "{}") as Partial<ConnectionLimits>;
  // Everything was issued by the parent already; this only reads the CA and the server key.
  const pki = await ensurePki(pkiDir, []);
  const broker = await LocalBroker.start({
    ca: pki.caPem,
    key: pki.server.key,
    cert: pki.server.cert,
    limits,
  });
  const memory = new MemoryTracker();
  const send = (m: BrokerReply): Promise<void> =>
    new Promise((resolve) => process.send?.(m, () => resolve()));
  let cpuFrom: NodeJS.CpuUsage | undefined;
  let atConnected = memorySample();
  let cpuSeconds = 0;
  let publishesFrom = 0;
  let publishesSampled = 0;
  process.on("message", (m: unknown) => {
    if (m === "sample") memory.start();
    if (m === "publishing") {
      atConnected = memorySample();
      cpuFrom = process.cpuUsage();
      publishesFrom = broker.stats.publishes;
    }
    if (m === "settled") void send({ type: "settled", settled: memorySample() });
    if (m === "hold") memory.stop();
    if (m === "hold" && cpuFrom) {
      const cpu = process.cpuUsage(cpuFrom);
      cpuSeconds = (cpu.user + cpu.system) / 1e6;
      publishesSampled = broker.stats.publishes - publishesFrom;
      cpuFrom = undefined;
    }
    if (m !== "stop") return;
    void (async () => {
      memory.stop();
      const reply: BrokerReply = {
        type: "stopped",
        peakRssMiB: memory.peakRssMiB(),
        atPeak: memory.atPeak(),
        publishes: broker.stats.publishes,
        atConnected,
        cpuSeconds,
        publishesSampled,
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
  await send({ type: "listening", url: broker.url, rssBeforeMiB: memory.rssMiB() });
}

void main();
