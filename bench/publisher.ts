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
import { Publisher, PUBLISHER_DEFAULTS, type PublishOutcome } from "../device/publisher";
import type { Telemetry } from "../device/telemetry";
import { ensurePki, readCredentials } from "../local/identity/ca";
import { connectBare, publishWindowed } from "./bare-client";
import type { BrokerReply } from "./broker-server";
import type { FigureOptions, FigureOutcome } from "./figure";
import { forkTs, nextMessage, reap } from "./ipc";
import { reading } from "./payloads";
import { target, type Metric } from "./report";
import { median, nowMs, percentile, round } from "./stats";

const TOPIC = "SeattleStoreTemp/bench";
const BARE = "bench-bare-client";
const PUB = "bench-publisher";

/** One timed trial: messages per second, and the client process's CPU per message. */
interface Trial {
  readonly msgPerSec: number;
  /** CPU time (user + system) of this process per acknowledged message, microseconds. */
  readonly cpuMicrosPerMsg: number;
}

function cpuMicros(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return used.user + used.system;
}

/**
 * Messages per second the project's Publisher sustains for `ms` milliseconds, through `post()`
 * with a callback (as the bare client's callback API: no promise per message) or `send()`.
 */
async function publisherTrial(
  pub: Publisher,
  messages: readonly Telemetry[],
  ms: number,
  window: number,
  via: "post" | "send" = "post",
): Promise<Trial> {
  // Keep the publisher's in-flight window full and a little queued behind it, never its queue
  // limit: the offline queue drops the oldest beyond that, which would not be throughput.
  const outstandingLimit = window * 2;
  const cpu = process.cpuUsage();
  const started = nowMs();
  const deadline = started + ms;
  let acked = 0;
  let failure: string | undefined;
  await new Promise<void>((resolve) => {
    let outstanding = 0;
    let i = 0;
    const onOutcome = (o: PublishOutcome): void => {
      outstanding--;
      if (o.status === "acked") acked++;
      else failure ??= `${o.status}: ${"reason" in o ? o.reason : o.error.message}`;
      if (outstanding === 0 && (failure !== undefined || nowMs() >= deadline)) resolve();
      else pump();
    };
    const pump = (): void => {
      while (failure === undefined && outstanding < outstandingLimit && nowMs() < deadline) {
        const msg = messages[i++ % messages.length];
        outstanding++;
        if (via === "post") pub.post(TOPIC, msg, onOutcome);
        else void pub.send(TOPIC, msg).then(onOutcome);
      }
    };
    pump();
  });
  const seconds = (nowMs() - started) / 1000;
  const cpuUsed = cpuMicros(cpu);
  if (failure) throw new Error(`the publisher did not get a message acknowledged: ${failure}`);
  return { msgPerSec: acked / seconds, cpuMicrosPerMsg: cpuUsed / acked };
}

/** The spread of per-round values: min, p25, p75, max (nearest rank). */
function spread(values: readonly number[]): { min: number; p25: number; p75: number; max: number } {
  return {
    min: Math.min(...values),
    p25: percentile(values, 25),
    p75: percentile(values, 75),
    max: Math.max(...values),
  };
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
    const spreads: Partial<Record<0 | 1, ReturnType<typeof spread>>> = {};
    const cpuPerMsg: Record<0 | 1, { bare: number; post: number; send: number }> = {
      0: { bare: 0, post: 0, send: 0 },
      1: { bare: 0, post: 0, send: 0 },
    };
    for (const qos of [0, 1] as const) {
      const bare = await connectBare(url, BARE, readCredentials(pkiDir, BARE));
      const creds = readCredentials(pkiDir, PUB);
      const pub = new Publisher({ url, clientId: PUB, ...creds, qos, rateLimit: 0 });
      pub.start();
      await pub.waitConnected();
      const bareTrial = async (ms: number): Promise<Trial> => {
        const cpu = process.cpuUsage();
        const r = await publishWindowed(bare.client, TOPIC, {
          qos,
          window,
          durationMs: ms,
          payloadFor: (i) => Buffer.from(JSON.stringify(messages[i % messages.length])),
        });
        return { msgPerSec: r.acked / r.seconds, cpuMicrosPerMsg: cpuMicros(cpu) / r.acked };
      };
      // Warm-up of both, discarded: JIT, TLS buffers, the broker's own warm-up.
      await bareTrial(trialMs / 2);
      await publisherTrial(pub, messages, trialMs / 2, window);
      await publisherTrial(pub, messages, trialMs / 2, window, "send");
      const bareRates: number[] = [];
      const pubRates: number[] = [];
      const roundRatios: number[] = [];
      const bareCpu: number[] = [];
      const pubCpu: number[] = [];
      const sendCpu: number[] = [];
      for (let r = 0; r < rounds; r++) {
        // Paired rounds, order swapped every other round, so drift and order cancel out.
        let b: Trial;
        let p: Trial;
        if (r % 2 === 0) {
          b = await bareTrial(trialMs);
          p = await publisherTrial(pub, messages, trialMs, window);
        } else {
          p = await publisherTrial(pub, messages, trialMs, window);
          b = await bareTrial(trialMs);
        }
        bareRates.push(b.msgPerSec);
        pubRates.push(p.msgPerSec);
        roundRatios.push(p.msgPerSec / b.msgPerSec);
        bareCpu.push(b.cpuMicrosPerMsg);
        pubCpu.push(p.cpuMicrosPerMsg);
        opts.log(
          `QoS ${qos} round ${r + 1}: bare ${Math.round(b.msgPerSec)} msg/s (${round(b.cpuMicrosPerMsg)} µs CPU/msg), publisher ${Math.round(p.msgPerSec)} msg/s (${round(p.cpuMicrosPerMsg)} µs CPU/msg)`,
        );
      }
      // send() (a promise per message) on a few shorter trials: CPU per message only, beside
      // post()'s, to show what the promise costs.
      for (let r = 0; r < Math.min(3, rounds); r++) {
        sendCpu.push(
          (await publisherTrial(pub, messages, trialMs / 2, window, "send")).cpuMicrosPerMsg,
        );
      }
      await pub.stop();
      await bare.client.endAsync();
      if (pub.stats.invalid > 0)
        throw new Error(`${pub.stats.invalid} benchmark messages failed validation`);
      const bareRate = percentile(bareRates, 50);
      const pubRate = percentile(pubRates, 50);
      ratios[qos] = percentile(roundRatios, 50);
      const s = spread(roundRatios);
      spreads[qos] = s;
      cpuPerMsg[qos] = { bare: median(bareCpu), post: median(pubCpu), send: median(sendCpu) };
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
        ...(["min", "p25", "p75", "max"] as const).map((k) => ({
          key: `qos${qos}.ratio.${k}`,
          label: `QoS ${qos} ratio, ${k === "min" || k === "max" ? `${k}imum` : k} of the rounds`,
          value: round(s[k]),
          unit: "×",
        })),
        {
          key: `qos${qos}.bareCpuMicrosPerMsg`,
          label: `QoS ${qos} bare mqtt.js CPU per message`,
          value: round(cpuPerMsg[qos].bare),
          unit: "µs",
        },
        {
          key: `qos${qos}.publisherCpuMicrosPerMsg`,
          label: `QoS ${qos} publisher CPU per message (post)`,
          value: round(cpuPerMsg[qos].post),
          unit: "µs",
        },
        {
          key: `qos${qos}.sendCpuMicrosPerMsg`,
          label: `QoS ${qos} publisher CPU per message (send, a promise each)`,
          value: round(cpuPerMsg[qos].send),
          unit: "µs",
        },
        {
          key: `qos${qos}.cpuRatio`,
          label: `QoS ${qos} CPU per message, publisher / bare`,
          value: round(cpuPerMsg[qos].post / cpuPerMsg[qos].bare),
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
        `${rounds} paired rounds of ${trialMs / 1000} s per client and QoS after a discarded warm-up; rates are the median round, the ratio is the median of the per-round ratios, shown with their minimum, p25, p75 and maximum.`,
        `The publisher is driven through post() with a callback per message, as the bare client through mqtt.js's callback API; send() returns a promise per message and is timed on ${Math.min(3, rounds)} shorter trials for its CPU per message only.`,
        `CPU per message is this process's CPU time (process.cpuUsage, user + system) over a trial ÷ the messages acknowledged, the median of the rounds: robust to neighbours on a shared machine, where the rates are not. QoS 0: bare ${round(cpuPerMsg[0].bare)} µs, publisher ${round(cpuPerMsg[0].post)} µs (send ${round(cpuPerMsg[0].send)} µs); QoS 1: bare ${round(cpuPerMsg[1].bare)} µs, publisher ${round(cpuPerMsg[1].post)} µs (send ${round(cpuPerMsg[1].send)} µs).`,
        ...([0, 1] as const).map(
          (q) =>
            `QoS ${q} per-round ratios ranged ${round(spreads[q]?.min ?? NaN)} to ${round(spreads[q]?.max ?? NaN)} (p25 ${round(spreads[q]?.p25 ?? NaN)}, p75 ${round(spreads[q]?.p75 ?? NaN)}).`,
        ),
      ],
    };
  } finally {
    await reap(broker);
  }
}
