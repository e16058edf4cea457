// Figure 1: the device publisher's throughput on one connection, QoS 0 and QoS 1, with schema
// validation on and the per-connection rate limit off, against a bare mqtt.js client.
//
// Why the baseline is fair: both clients publish the same telemetry objects, serialised the same
// way (JSON.stringify into a Buffer), to the same broker process (the project's mutual-TLS broker
// with no hooks, in a child process so that neither client shares its core with the broker), on
// one connection each, with the same number of unacknowledged messages on the wire (the
// publisher's in-flight window). The difference is what the publisher adds: validation, its
// queue, per-publish timers and bookkeeping. Rounds are paired (bare and publisher back to back,
// order swapped every other round) so drift on a shared machine hits both; the ratio is the median
// of the per-round ratios.
import * as path from "node:path";
import { Publisher, PUBLISHER_DEFAULTS } from "../device/publisher";
import type { Telemetry } from "../device/telemetry";
import { ensurePki, readCredentials } from "../local/identity/ca";
import { connectBare, publishWindowed } from "./bare-client";
import type { BrokerReply } from "./broker-server";
import type { FigureOptions, FigureOutcome } from "./figure";
import { forkTs, nextMessage, reap } from "./ipc";
import { reading } from "./payloads";
import { target, type Metric } from "./report";
import { nowMs, percentile, round } from "./stats";

const TOPIC = "SeattleStoreTemp/bench";
const BARE = "bench-bare-client";
const PUB = "bench-publisher";

/** Messages per second the project's Publisher sustains for `ms` milliseconds. */
async function publisherRate(
  pub: Publisher,
  messages: readonly Telemetry[],
  ms: number,
  window: number,
): Promise<number> {
  // Keep the publisher's in-flight window full and a little queued behind it, never its queue
  // limit: the offline queue drops the oldest beyond that, which would not be throughput.
  const outstandingLimit = window * 2;
  const started = nowMs();
  const deadline = started + ms;
  let acked = 0;
  let failure: string | undefined;
  await new Promise<void>((resolve) => {
    let outstanding = 0;
    let i = 0;
    const pump = (): void => {
      while (failure === undefined && outstanding < outstandingLimit && nowMs() < deadline) {
        const msg = messages[i++ % messages.length];
        outstanding++;
        void pub.send(TOPIC, msg).then((o) => {
          outstanding--;
          if (o.status === "acked") acked++;
          else failure ??= `${o.status}: ${"reason" in o ? o.reason : o.error.message}`;
          if (outstanding === 0 && (failure !== undefined || nowMs() >= deadline)) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  if (failure) throw new Error(`the publisher did not get a message acknowledged: ${failure}`);
  return acked / ((nowMs() - started) / 1000);
}

export async function run(opts: FigureOptions): Promise<FigureOutcome> {
  const rounds = opts.quick ? 2 : 9;
  const trialMs = opts.quick ? 300 : 1_500;
  const window = PUBLISHER_DEFAULTS.maxInFlight;
  const pkiDir = path.join(opts.stateDir, "pki");
  await ensurePki(pkiDir, [BARE, PUB]);
  // 1,000 distinct readings, cycled: realistic sizes, no cost of making them inside the loop.
  const messages = Array.from({ length: 1000 }, (_, i) =>
    reading("bench-publisher", i, 1_764_000_000_000 + i * 1000),
  );
  const payloadBytes = Buffer.byteLength(JSON.stringify(messages[0]));

  const broker = forkTs("broker-server.ts", [pkiDir]);
  try {
    const { url } = await nextMessage<Extract<BrokerReply, { type: "listening" }>>(
      broker,
      "listening",
    );
    const metrics: Metric[] = [];
    const ratios: Record<0 | 1, number> = { 0: 0, 1: 0 };
    for (const qos of [0, 1] as const) {
      const bare = await connectBare(url, BARE, readCredentials(pkiDir, BARE));
      const creds = readCredentials(pkiDir, PUB);
      const pub = new Publisher({ url, clientId: PUB, ...creds, qos, rateLimit: 0 });
      pub.start();
      await pub.waitConnected();
      const bareTrial = async (ms: number): Promise<number> => {
        const r = await publishWindowed(bare.client, TOPIC, {
          qos,
          window,
          durationMs: ms,
          payloadFor: (i) => Buffer.from(JSON.stringify(messages[i % messages.length])),
        });
        return r.acked / r.seconds;
      };
      // Warm-up of both, discarded: JIT, TLS buffers, the broker's own warm-up.
      await bareTrial(trialMs / 2);
      await publisherRate(pub, messages, trialMs / 2, window);
      const bareRates: number[] = [];
      const pubRates: number[] = [];
      const roundRatios: number[] = [];
      for (let r = 0; r < rounds; r++) {
        // Paired rounds, order swapped every other round, so drift and order cancel out.
        let b: number;
        let p: number;
        if (r % 2 === 0) {
          b = await bareTrial(trialMs);
          p = await publisherRate(pub, messages, trialMs, window);
        } else {
          p = await publisherRate(pub, messages, trialMs, window);
          b = await bareTrial(trialMs);
        }
        bareRates.push(b);
        pubRates.push(p);
        roundRatios.push(p / b);
        opts.log(
          `QoS ${qos} round ${r + 1}: bare ${Math.round(b)} msg/s, publisher ${Math.round(p)} msg/s`,
        );
      }
      await pub.stop();
      await bare.client.endAsync();
      if (pub.stats.invalid > 0)
        throw new Error(`${pub.stats.invalid} benchmark messages failed validation`);
      const bareRate = percentile(bareRates, 50);
      const pubRate = percentile(pubRates, 50);
      ratios[qos] = percentile(roundRatios, 50);
      metrics.push(
        {
          key: `qos${qos}.bareMsgPerSec`,
          label: `QoS ${qos} bare mqtt.js`,
          value: round(bareRate),
          unit: "msg/s",
        },
        {
          key: `qos${qos}.publisherMsgPerSec`,
          label: `QoS ${qos} publisher (validation on)`,
          value: round(pubRate),
          unit: "msg/s",
        },
        {
          key: `qos${qos}.ratio`,
          label: `QoS ${qos} ratio publisher / bare`,
          value: round(ratios[qos]),
          unit: "×",
        },
      );
    }
    broker.send("stop");
    await nextMessage(broker, "stopped");
    return {
      status: "measured",
      params: { rounds, trialSeconds: trialMs / 1000, window, payloadBytes, rateLimit: "off" },
      metrics,
      targets: [
        target("QoS 0 publisher / bare", "qos0.ratio", ">=", 0.95, ratios[0]),
        target("QoS 1 publisher / bare", "qos1.ratio", ">=", 0.95, ratios[1]),
      ],
      notes: [
        `${rounds} paired rounds of ${trialMs / 1000} s per client and QoS after a discarded warm-up; rates are the median round, the ratio is the median of the per-round ratios.`,
      ],
    };
  } finally {
    await reap(broker);
  }
}
