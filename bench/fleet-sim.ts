// Figure 2's device simulator, in a process of its own so that its peak RSS is the fleet's: one
// project Publisher per thing, each on its own mutual-TLS connection with its own certificate.
import { Publisher, type PublishOutcome } from "../device/publisher";
import { readCredentials } from "../local/identity/ca";
import { withTimeout } from "../core/timeout";
import { telemetryTopicFor } from "../core/topics";
import { trustOnce } from "../simulator/shared-trust";
import { reading } from "./payloads";
import { MemoryTracker, memorySample, type MemorySample } from "./memory";
import { mapLimit, nowMs, sleep } from "./stats";

export interface SimRequest {
  readonly url: string;
  readonly pkiDir: string;
  readonly things: readonly string[];
  readonly topicTemplate: string;
  /** TLS handshakes + CONNECTs in progress at once. */
  readonly concurrency: number;
  readonly connectTimeoutMs: number;
  /** Messages per second per device. */
  readonly rate: number;
  readonly warmupMs: number;
  readonly sustainMs: number;
  /**
   * After the last acknowledgement, how long the fleet stays connected and idle before the settled
   * sample: what a connected device costs once the load is over.
   */
  readonly settleMs: number;
}

/**
 * What this process tells its parent besides the result: "publishing" (every device connected),
 * "settled" (the load is over and acknowledged, the settled sample taken: the parent samples the
 * broker and answers "go") and "stopping" (the devices are leaving).
 */
export type SimNotice = { type: "publishing" } | { type: "settled" } | { type: "stopping" };

export interface SimResult {
  readonly type: "result";
  /** Milliseconds from start() to CONNACK, per connected device. */
  readonly connectMs: number[];
  /** Wall time from the first handshake to the last CONNACK. */
  readonly connectAllMs: number;
  readonly connected: number;
  readonly connectFailures: number;
  readonly firstFailure?: string;
  /** Acknowledgements inside the measured window, and its length. */
  readonly ackedInWindow: number;
  readonly windowSeconds: number;
  readonly submitted: number;
  readonly acked: number;
  /** Messages that ended other than acknowledged (dropped, rejected, unsent, invalid). */
  readonly notAcked: number;
  /** Length of the publishing phase (warm-up and window), and the process's CPU time in it. */
  readonly publishSeconds: number;
  readonly publishCpuSeconds: number;
  /** RSS once the code was loaded, before any device's credentials or objects (MiB). */
  readonly rssBeforeMiB: number;
  /** Memory once every device had connected, before the first publish. */
  readonly atConnected: MemorySample;
  readonly peakRssMiB: number;
  /** process.memoryUsage() at the sample with the highest RSS while every device was connected. */
  readonly atPeak: MemorySample;
  /**
   * Memory after the load: every message acknowledged (or its wait given up), then `settleMs`
   * with every device still connected and idle.
   */
  readonly settled: MemorySample;
}

/** How often the scheduler sends what has come due. */
const TICK_MS = 10;

/** The longest wait for the last acknowledgements before the settled sample (the publish timeout). */
const LAST_ACKS_MS = 10_000;

const memory = new MemoryTracker();
/** Taken once the code is loaded, before the request with the fleet's names arrives. */
const rssBeforeMiB = memory.rssMiB();

function notify(n: SimNotice): void {
  process.send?.(n);
}

async function main(req: SimRequest): Promise<void> {
  const credentials = req.things.map((thing) => readCredentials(req.pkiDir, thing));
  // As npm run simulate does: the fleet's one CA trusted once for the process, not per device.
  const sharedCa = trustOnce(credentials.map((c) => c.ca)) !== undefined;
  const pubs = req.things.map(
    (thing, k) =>
      new Publisher({
        url: req.url,
        clientId: thing,
        key: credentials[k].key,
        cert: credentials[k].cert,
        ca: sharedCa ? undefined : credentials[k].ca,
        qos: 1,
        connectTimeoutMs: req.connectTimeoutMs,
      }),
  );
  credentials.length = 0;
  let failures = 0;
  let firstFailure: string | undefined;
  const connectMs: number[] = [];
  const connectStarted = nowMs();
  const connected = await mapLimit(pubs, req.concurrency, async (pub) => {
    const t = nowMs();
    pub.start();
    try {
      await withTimeout(
        pub.waitConnected(),
        req.connectTimeoutMs,
        `not connected within ${req.connectTimeoutMs} ms`,
      );
      connectMs.push(nowMs() - t);
      return true;
    } catch (e) {
      failures++;
      firstFailure ??= `${pub.clientId}: ${e instanceof Error ? e.message : String(e)}`;
      return false;
    }
  });
  const connectAllMs = nowMs() - connectStarted;
  const atConnected = memorySample();
  memory.start();
  notify({ type: "publishing" });

  // Each device publishes `rate` messages a second, the devices spread evenly over the period so
  // that the broker sees a steady load rather than a burst on every tick. One scheduler for the
  // fleet: slot s is device s mod n's message, due `s × period / n` after the start, and every
  // tick sends each slot that has come due. A timer per device would drift later by every late
  // turn of the event loop (setInterval counts from when its callback ran), offering less than the
  // rate; this offers the rate however late a tick comes, and what the fleet cannot take shows as
  // unacknowledged messages, not as a lower offer.
  const live = pubs.filter((_, k) => connected[k]);
  const topics = live.map((pub) => telemetryTopicFor(req.topicTemplate, pub.clientId));
  const periodMs = 1000 / req.rate;
  const phaseStart = nowMs();
  const windowStart = phaseStart + req.warmupMs;
  const windowEnd = windowStart + req.sustainMs;
  const slots = Math.floor(((windowEnd - phaseStart) / periodMs) * live.length);
  let ackedInWindow = 0;
  let acked = 0;
  let notAcked = 0;
  // Outstanding sends are counted, not kept: 10,000 devices × 35 s would hold 350,000 promises.
  let outstanding = 0;
  let allSettled: (() => void) | undefined;
  const settled = (o: PublishOutcome): void => {
    outstanding--;
    if (o.status !== "acked") notAcked++;
    else {
      acked++;
      const at = nowMs();
      if (at >= windowStart && at < windowEnd) ackedInWindow++;
    }
    if (outstanding === 0) allSettled?.();
  };
  let slot = 0;
  const cpuStart = process.cpuUsage();
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(
        slots,
        Math.floor(((nowMs() - phaseStart) / periodMs) * live.length) + 1,
      );
      for (; slot < due; slot++) {
        const k = slot % live.length;
        const pub = live[k];
        outstanding++;
        void pub
          .send(topics[k], reading(pub.clientId, Math.floor(slot / live.length)))
          .then(settled);
      }
      if (slot >= slots) {
        clearInterval(ticker);
        resolve();
      }
    };
    const ticker = setInterval(tick, TICK_MS);
    tick();
  });
  await sleep(windowEnd - nowMs());
  const cpu = process.cpuUsage(cpuStart);
  // Settled: the last acknowledgements in, then a pause with every device still connected.
  if (outstanding > 0) {
    await Promise.race([
      new Promise<void>((resolve) => (allSettled = resolve)),
      sleep(LAST_ACKS_MS),
    ]);
  }
  await sleep(req.settleMs);
  memory.stop();
  const settledSample = memorySample();
  // The broker samples too, before any device leaves; the parent answers "go" once it has.
  const go = new Promise<void>((resolve) => {
    const onGo = (m: unknown): void => {
      if (m !== "go") return;
      process.off("message", onGo);
      resolve();
    };
    process.on("message", onGo);
  });
  notify({ type: "settled" });
  await go;
  // The devices are about to leave: the broker keeps the memory samples taken while they were on.
  notify({ type: "stopping" });
  await Promise.all(pubs.map((p) => p.stop(5000)));
  if (outstanding > 0) await new Promise<void>((resolve) => (allSettled = resolve));
  const submitted = pubs.reduce((n, p) => n + p.stats.submitted, 0);
  const result: SimResult = {
    type: "result",
    connectMs,
    connectAllMs,
    connected: connected.filter(Boolean).length,
    connectFailures: failures,
    firstFailure,
    ackedInWindow,
    windowSeconds: req.sustainMs / 1000,
    submitted,
    acked,
    notAcked,
    publishSeconds: (windowEnd - phaseStart) / 1000,
    publishCpuSeconds: (cpu.user + cpu.system) / 1e6,
    rssBeforeMiB,
    atConnected,
    peakRssMiB: memory.peakRssMiB(),
    atPeak: memory.atPeak(),
    settled: settledSample,
  };
  await new Promise<void>((resolve) => process.send?.(result, () => resolve()));
  process.exit(0);
}

process.on("disconnect", () => process.exit(0));
// The request comes over IPC: 10,000 thing names do not fit in a command line (E2BIG).
process.once("message", (m: unknown) => void main(m as SimRequest));
