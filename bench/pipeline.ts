// Figure 3: the local pipeline end to end at QoS 1 — messages per second from publish to a record
// in a delivered object, and the latency from publish to flush under a small buffer (1 MiB, 1 s).
//
// Why the baseline is fair: the baseline is the very same mutual-TLS broker with no hooks (no IoT
// policy, no rule, no durable delivery), in a process of its own like the pipeline, loaded by the
// same bare mqtt.js producers with the same payloads, window and phase length. So the ratio is the
// cost of what the pipeline adds: the policy decision per publish, the rule, and the journal fsync
// that the PUBACK waits for, plus writing the objects.
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { telemetryTopicFor } from "../core/topics";
import { parseStackConfig, readRawStackConfig } from "../core/stack-config";
import type { RawConfig } from "../core/stack-config";
import { PUBLISHER_DEFAULTS } from "../device/publisher";
import { readCredentials } from "../local/ca";
import { connectBare, publishWindowed } from "./bare-client";
import type { FigureOptions, FigureOutcome } from "./figure";
import { forkTs, nextMessage, reap } from "./ipc";
import { reading } from "./payloads";
import type { ServerReply, ServerRequest } from "./pipeline-server";
import { target, type Metric } from "./report";
import { percentile, round, sleep } from "./stats";

type Stopped = Extract<ServerReply, { type: "stopped" }>;

interface Phase {
  readonly acked: number;
  readonly seconds: number;
  /** Epoch ms when publishing started. */
  readonly startedAt: number;
  readonly server: Stopped;
  /** Per delivered record: epoch ms of its object's flush minus its publish time. */
  readonly latenciesMs: number[];
  readonly delivered: number;
  /** Epoch ms of the last object written. */
  readonly lastFlushAt: number;
  /** Objects holding records of the measured phase. */
  readonly objects: number;
}

/** Records of one delivered object (GZIP or not), newline-separated JSON. */
function readRecords(file: string): Array<Record<string, unknown>> {
  let data = fs.readFileSync(file);
  if (data[0] === 0x1f && data[1] === 0x8b) data = zlib.gunzipSync(data);
  return data
    .toString("utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function runPhase(
  mode: ServerRequest["mode"],
  stack: string,
  raw: RawConfig,
  things: readonly string[],
  opts: {
    stateDir: string;
    durationMs: number;
    warmupMs: number;
    window: number;
    log: (l: string) => void;
  },
): Promise<Phase> {
  const config = parseStackConfig(raw, stack);
  fs.rmSync(opts.stateDir, { recursive: true, force: true });
  const req: ServerRequest = { mode, stack, raw, stateDir: opts.stateDir, things };
  const child = forkTs("pipeline-server.ts", [JSON.stringify(req)]);
  try {
    const { url, pkiDir } = await nextMessage<Extract<ServerReply, { type: "listening" }>>(
      child,
      "listening",
    );
    const conns = await Promise.all(
      things.map((t) => connectBare(url, t, readCredentials(pkiDir, t))),
    );
    const load = (durationMs: number) =>
      Promise.all(
        conns.map((c, k) =>
          publishWindowed(c.client, telemetryTopicFor(config.telemetryTopic, things[k]), {
            qos: 1,
            window: opts.window,
            durationMs,
            payloadFor: (i) => Buffer.from(JSON.stringify(reading(things[k], i))),
          }),
        ),
      );
    // A warm-up, discarded, so that neither side is measured while its JIT is cold.
    const warm = await load(opts.warmupMs);
    const warmAcked = warm.reduce((n, r) => n + r.acked, 0);
    const startedAt = Date.now();
    const runs = await load(opts.durationMs);
    const acked = runs.reduce((n, r) => n + r.acked, 0);
    const seconds = Math.max(...runs.map((r) => r.seconds));
    await Promise.all(conns.map((c) => c.client.endAsync()));

    // Wait for the last buffer to be flushed: every acknowledged record in an object.
    const latenciesMs: number[] = [];
    const seen = new Set<string>();
    let delivered = 0;
    let lastFlushAt = startedAt;
    let measuredObjects = 0;
    if (mode === "pipeline") {
      const deadline = Date.now() + 30_000;
      let total = 0;
      while (total < warmAcked + acked && Date.now() < deadline) {
        child.send("objects");
        const { objects } = await nextMessage<Extract<ServerReply, { type: "objects" }>>(
          child,
          "objects",
        );
        for (const file of objects.filter((f) => !seen.has(f))) {
          seen.add(file);
          const flushedAt = fs.statSync(file).mtimeMs;
          let measured = 0;
          for (const rec of readRecords(file)) {
            total++;
            // Warm-up records were published before the measured phase started.
            if (typeof rec.timestamp !== "number" || rec.timestamp < startedAt) continue;
            measured++;
            latenciesMs.push(flushedAt - rec.timestamp);
          }
          if (measured > 0) {
            delivered += measured;
            measuredObjects++;
            lastFlushAt = Math.max(lastFlushAt, flushedAt);
          }
        }
        if (total < warmAcked + acked) await sleep(100);
      }
      if (delivered < acked) {
        opts.log(`only ${delivered} of ${acked} acknowledged records were delivered within 30 s`);
      }
    }
    child.send("stop");
    const server = await nextMessage<Stopped>(child, "stopped");
    return {
      acked,
      seconds,
      startedAt,
      server,
      latenciesMs,
      delivered,
      lastFlushAt,
      objects: measuredObjects,
    };
  } finally {
    await reap(child);
  }
}

/** The samples at each tenth of the run, rounded: enough to see a plateau or a climb. */
function deciles(samples: readonly number[]): number[] {
  if (samples.length === 0) return [];
  return Array.from({ length: 10 }, (_, i) =>
    Math.round(
      samples[Math.min(samples.length - 1, Math.floor(((i + 1) * samples.length) / 10) - 1)],
    ),
  );
}

export async function run(opts: FigureOptions): Promise<FigureOutcome> {
  // A fleet's shape rather than a few fire hoses: many connections, each with the publisher's
  // default in-flight window. aedes reads a connection's next packets only once every publish of
  // the previous read has been handled, and here that includes the journal fsync, so a few deep
  // connections measure the fsync round trip per connection rather than the pipeline.
  const producers = opts.quick ? 4 : 16;
  const durationMs = opts.quick ? 1_500 : 20_000;
  const window = PUBLISHER_DEFAULTS.maxInFlight;
  const stack = "prod";
  const things = Array.from({ length: producers }, (_, i) => `bench-sensor-${i + 1}`);
  // prod's least-privilege policy, per-thing topics, rule and GZIP, with a fleet of the producers,
  // generated certificates (no CSR files for bench things) and the smallest buffer Firehose allows.
  const raw: RawConfig = {
    ...readRawStackConfig(stack),
    certificateMode: "generated",
    fleet: [
      {
        group: "Bench",
        description: "Benchmark producers",
        thingPrefix: "bench-sensor-",
        count: producers,
      },
    ],
    bufferSizeMiB: 1,
    bufferIntervalSeconds: 1,
    // The seed's JSON lines: this figure measures the journal and the broker, not Parquet.
    recordFormat: "json",
    partitionByThing: false,
  };
  const phaseOpts = { durationMs, warmupMs: opts.quick ? 500 : 3_000, window, log: opts.log };
  opts.log(
    `baseline: broker alone, ${producers} producers × window ${window}, ${durationMs / 1000} s`,
  );
  // State of this run only (two runs at once must not share a journal); removed afterwards.
  const runDir = path.join(opts.stateDir, `pipeline-${process.pid}`);
  let base: Phase;
  let pipe: Phase;
  try {
    base = await runPhase("broker", stack, raw, things, {
      ...phaseOpts,
      stateDir: path.join(runDir, "baseline"),
    });
    opts.log(`pipeline: policy + rule + durable delivery, same load`);
    pipe = await runPhase("pipeline", stack, raw, things, {
      ...phaseOpts,
      stateDir: path.join(runDir, "pipeline"),
    });
  } finally {
    fs.rmSync(runDir, { recursive: true, force: true });
  }

  const baseRate = base.acked / base.seconds;
  const ackRate = pipe.acked / pipe.seconds;
  // End to end: records in delivered objects per second, up to the flush of the last of them.
  const e2eSeconds = (pipe.lastFlushAt - pipe.startedAt) / 1000;
  const e2eRate = pipe.delivered / e2eSeconds;
  const ratio = e2eRate / baseRate;
  const samples = pipe.server.rssSamplesMiB;
  const third = Math.max(1, Math.floor(samples.length / 3));
  const firstThird = Math.max(...samples.slice(0, third));
  const lastThird = Math.max(...samples.slice(-third));
  const metrics: Metric[] = [
    {
      key: "baseline.msgPerSec",
      label: "baseline: broker alone, acked msg/s",
      value: round(baseRate),
      unit: "msg/s",
    },
    {
      key: "pipeline.ackedMsgPerSec",
      label: "pipeline: acked (journal fsync'd) msg/s",
      value: round(ackRate),
      unit: "msg/s",
    },
    {
      key: "pipeline.e2eMsgPerSec",
      label: "pipeline: publish → delivered record msg/s",
      value: round(e2eRate),
      unit: "msg/s",
    },
    { key: "pipeline.ratio", label: "ratio e2e / baseline", value: round(ratio), unit: "×" },
    {
      key: "pipeline.latencyP50Ms",
      label: "latency publish → flush p50",
      value: round(percentile(pipe.latenciesMs, 50)),
      unit: "ms",
    },
    {
      key: "pipeline.latencyP99Ms",
      label: "latency publish → flush p99",
      value: round(percentile(pipe.latenciesMs, 99)),
      unit: "ms",
    },
    {
      key: "pipeline.recordsDelivered",
      label: "records delivered / acked",
      value: round(pipe.delivered / Math.max(1, pipe.acked)),
      unit: "",
    },
    {
      key: "pipeline.objects",
      label: "objects written",
      value: pipe.objects,
      unit: "",
    },
    {
      key: "pipeline.peakRssMiB",
      label: "pipeline process peak RSS",
      value: round(pipe.server.peakRssMiB),
      unit: "MiB",
    },
    {
      key: "pipeline.rssLastThirdMiB",
      label: "pipeline RSS max, last third of run",
      value: round(lastThird),
      unit: "MiB",
    },
    {
      key: "baseline.peakRssMiB",
      label: "baseline broker peak RSS",
      value: round(base.server.peakRssMiB),
      unit: "MiB",
    },
  ];
  return {
    status: "measured",
    params: {
      stack,
      producers,
      window,
      qos: 1,
      phaseSeconds: durationMs / 1000,
      bufferSizeMiB: 1,
      bufferIntervalSeconds: 1,
    },
    metrics,
    targets: [target("e2e / baseline", "pipeline.ratio", ">=", 0.5, ratio)],
    notes: [
      "What bounds memory when producers outrun the disk: the PUBACK waits for the journal fsync, so each producer has at most its window of messages unacknowledged in the broker, and the delivery stream lets at most maxPendingObjects (2) flushed buffers wait for their object write before it holds back PUBACKs too: at most (2 + 1) × bufferSizeMiB of records plus producers × window messages, whatever the backlog.",
      `RSS of the pipeline process: max ${round(firstThird)} MiB in the first third of the run, ${round(lastThird)} MiB in the last third (sampled every 250 ms); at each tenth of the run: ${deciles(samples).join(", ")} MiB.`,
      `${pipe.acked} messages acknowledged, ${pipe.delivered} records delivered in ${pipe.objects} objects (warm-up excluded).`,
    ],
  };
}
