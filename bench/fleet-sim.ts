// Figure 2's device simulator, in a process of its own so that its peak RSS is the fleet's: one
// project Publisher per thing, each on its own mutual-TLS connection with its own certificate.
import { Publisher } from "../device/publisher";
import { readCredentials } from "../local/ca";
import { telemetryTopicFor } from "../core/topics";
import { reading } from "./payloads";
import { mapLimit, nowMs, peakRssMiB, sleep } from "./stats";

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
}

export interface SimResult {
  readonly type: "result";
  /** Milliseconds from start() to CONNACK, per connected device. */
  readonly connectMs: number[];
  /** Wall time from the first handshake to the last CONNACK. */
  readonly connectAllMs: number;
  readonly connectFailures: number;
  readonly firstFailure?: string;
  /** Acknowledgements inside the measured window, and its length. */
  readonly ackedInWindow: number;
  readonly windowSeconds: number;
  readonly submitted: number;
  readonly acked: number;
  /** Messages that ended other than acknowledged (dropped, rejected, unsent, invalid). */
  readonly notAcked: number;
  readonly peakRssMiB: number;
}

async function main(): Promise<void> {
  const req = JSON.parse(process.argv[2]) as SimRequest;
  const pubs = req.things.map(
    (thing) =>
      new Publisher({
        url: req.url,
        clientId: thing,
        ...readCredentials(req.pkiDir, thing),
        qos: 1,
        connectTimeoutMs: req.connectTimeoutMs,
      }),
  );
  let failures = 0;
  let firstFailure: string | undefined;
  const connectMs: number[] = [];
  const connectStarted = nowMs();
  const connected = await mapLimit(pubs, req.concurrency, async (pub) => {
    const t = nowMs();
    pub.start();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        pub.waitConnected(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`not connected within ${req.connectTimeoutMs} ms`)),
            req.connectTimeoutMs,
          );
        }),
      ]);
      connectMs.push(nowMs() - t);
      return true;
    } catch (e) {
      failures++;
      firstFailure ??= `${pub.clientId}: ${e instanceof Error ? e.message : String(e)}`;
      return false;
    } finally {
      clearTimeout(timer);
    }
  });
  const connectAllMs = nowMs() - connectStarted;

  // Each device publishes `rate` messages a second, devices spread evenly over the second so that
  // the broker sees a steady load rather than a thousand-message burst on every tick.
  const periodMs = 1000 / req.rate;
  const phaseStart = nowMs();
  const windowStart = phaseStart + req.warmupMs;
  const windowEnd = windowStart + req.sustainMs;
  let ackedInWindow = 0;
  let acked = 0;
  let notAcked = 0;
  const timers: NodeJS.Timeout[] = [];
  const sends: Array<Promise<void>> = [];
  pubs.forEach((pub, k) => {
    if (!connected[k]) return;
    const topic = telemetryTopicFor(req.topicTemplate, pub.clientId);
    let i = 0;
    const tick = (): void => {
      sends.push(
        pub.send(topic, reading(pub.clientId, i++)).then((o) => {
          if (o.status !== "acked") {
            notAcked++;
            return;
          }
          acked++;
          const at = nowMs();
          if (at >= windowStart && at < windowEnd) ackedInWindow++;
        }),
      );
    };
    const offset = (k / pubs.length) * periodMs;
    timers.push(
      setTimeout(() => {
        tick();
        timers.push(setInterval(tick, periodMs));
      }, offset),
    );
  });
  await sleep(windowEnd - nowMs());
  for (const t of timers) clearTimeout(t);
  await Promise.all(pubs.map((p) => p.stop(5000)));
  await Promise.all(sends);
  const submitted = pubs.reduce((n, p) => n + p.stats.submitted, 0);
  const result: SimResult = {
    type: "result",
    connectMs,
    connectAllMs,
    connectFailures: failures,
    firstFailure,
    ackedInWindow,
    windowSeconds: req.sustainMs / 1000,
    submitted,
    acked,
    notAcked,
    peakRssMiB: peakRssMiB(),
  };
  await new Promise<void>((resolve) => process.send?.(result, () => resolve()));
  process.exit(0);
}

process.on("disconnect", () => process.exit(0));
void main();
