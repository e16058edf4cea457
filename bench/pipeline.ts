// Figure 3: the local pipeline end to end at QoS 1 — messages per second from publish to a record
// in a delivered object, and the latency from publish to flush under a small buffer (1 MiB, 1 s) —
// beside two baselines: our broker alone and Mosquitto 2, each at QoS 0 and QoS 1.
//
// Why the baselines are fair: the first is the very same mutual-TLS broker with no hooks (no IoT
// policy, no rule, no durable delivery), in a process of its own like the pipeline; the second is
// Mosquitto 2 (the Debian package) over the same mutual TLS with certificates from the same local
// CA, with its persistence on. All are loaded by the same bare mqtt.js producers with the same
// payloads, window and phase length. So the ratio to the broker alone is the cost of what the
// pipeline adds (the policy decision per publish, the rule, the journal fsync that the PUBACK waits
// for, writing the objects), and Mosquitto is what a user would otherwise run locally.
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import * as zlib from "node:zlib";
import type { MqttClient } from "mqtt";
import { withTimeout } from "../core/timeout";
import { telemetryTopicFor } from "../core/topics";
import { parseStackConfig, readRawStackConfig } from "../core/stack-config";
import type { RawConfig } from "../core/stack-config";
import { PUBLISHER_DEFAULTS } from "../device/publisher";
import { readCredentials } from "../local/identity/ca";
import { DashboardFeed } from "../local/dashboard";
import { startLocalPipeline } from "../local/pipeline/pipeline";
import type { StackConfig } from "../core/stack-config";
import { findMosquittoBroker, REQUIRE_MOSQUITTO } from "../tools/mosquitto";
import { connectBare, publishWindowed } from "./bare-client";
import type { FigureOptions, FigureOutcome } from "./figure";
import { forkTs, nextMessage, reap } from "./ipc";
import type { MosquittoReply, MosquittoRequest } from "./mosquitto-server";
import { reading } from "./payloads";
import type { ServerReply, ServerRequest } from "./pipeline-server";
import { target, unmeasuredTarget, type Metric } from "./report";
import { cpuSeconds, nowMs, percentile, round, sleep } from "./stats";

type Stopped = Extract<ServerReply, { type: "stopped" }>;

/** Where Mosquitto's durability is documented (cited in the figure's notes and docs/benchmarks.md). */
const MOSQUITTO_CONF_MAN = "https://mosquitto.org/man/mosquitto-conf-5.html";
const MOSQUITTO_PUBACK_ISSUE = "https://github.com/eclipse-mosquitto/mosquitto/issues/1855";

/** How long a QoS 0 phase's closing QoS 1 publish may wait for its PUBACK. */
const BARRIER_TIMEOUT_MS = 30_000;

interface PhaseOptions {
  /** The producers' MQTT version; default 4 (3.1.1). */
  readonly protocol?: 4 | 5;
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly window: number;
  readonly log: (l: string) => void;
}

/** One measured load at one QoS on one server, after its own discarded warm-up. */
interface Measured {
  readonly qos: 0 | 1;
  /** Messages acknowledged (QoS 1) or read by the server (QoS 0: see produce()). */
  readonly acked: number;
  readonly seconds: number;
  /** Epoch ms when the measured load started. */
  readonly startedAt: number;
  /** Messages of the warm-up before it. */
  readonly warmAcked: number;
  /** CPU seconds the server process used during the measured load. */
  readonly serverCpuSeconds: number;
  /** CPU seconds this process (the producers) used during the measured load. */
  readonly clientCpuSeconds: number;
}

/** What the pipeline delivered of its measured phase. */
interface Delivery {
  /** Per delivered record: epoch ms of its object's flush minus its publish time. */
  readonly latenciesMs: number[];
  readonly delivered: number;
  /** Epoch ms of the last object written. */
  readonly lastFlushAt: number;
  /** Objects holding records of the measured phase. */
  readonly objects: number;
}

/** A server under load: the process the bench started, where to connect, whose CPU to count. */
interface Server {
  readonly child: ChildProcess;
  readonly url: string;
  readonly pkiDir: string;
  readonly pid: number;
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

/**
 * One producer's load for `durationMs`. At QoS 0 nothing is acknowledged and mqtt.js's callback
 * only says that a message reached the socket, in front of kernel buffers that hold many; so a
 * QoS 0 load ends with one QoS 1 publish, whose PUBACK the server sends only once it has read
 * everything before it on the connection, and the load's time runs to that PUBACK.
 */
async function produce(
  client: MqttClient,
  topic: string,
  thing: string,
  qos: 0 | 1,
  durationMs: number,
  window: number,
): Promise<{ acked: number; seconds: number }> {
  const payloadFor = (i: number) => Buffer.from(JSON.stringify(reading(thing, i)));
  const started = nowMs();
  const run = await publishWindowed(client, topic, { qos, window, durationMs, payloadFor });
  if (qos === 1) return { acked: run.acked, seconds: run.seconds };
  // mqtt.js's promise may never settle: the wait is bounded.
  await withTimeout(
    client.publishAsync(topic, payloadFor(run.sent), { qos: 1 }),
    BARRIER_TIMEOUT_MS,
    `${thing}: no PUBACK for the QoS 1 publish that closes the QoS 0 load within ${BARRIER_TIMEOUT_MS / 1000} s`,
  );
  return { acked: run.acked, seconds: (nowMs() - started) / 1000 };
}

/** Connects the producers to `server` and runs a warm-up and a measured load at each QoS in turn. */
async function drive(
  server: Server,
  things: readonly string[],
  topics: readonly string[],
  qosList: readonly (0 | 1)[],
  opts: PhaseOptions,
): Promise<Measured[]> {
  const conns = await Promise.all(
    things.map((t) =>
      connectBare(server.url, t, readCredentials(server.pkiDir, t), opts.protocol ?? 4),
    ),
  );
  const measured: Measured[] = [];
  try {
    for (const qos of qosList) {
      const load = (durationMs: number) =>
        Promise.all(
          conns.map((c, k) =>
            produce(c.client, topics[k], things[k], qos, durationMs, opts.window),
          ),
        );
      // A warm-up, discarded, so that neither side is measured while its JIT is cold.
      const warm = await load(opts.warmupMs);
      const serverCpu = cpuSeconds(server.pid);
      const clientCpu = process.cpuUsage();
      const startedAt = Date.now();
      const runs = await load(opts.durationMs);
      const client = process.cpuUsage(clientCpu);
      measured.push({
        qos,
        acked: runs.reduce((n, r) => n + r.acked, 0),
        seconds: Math.max(...runs.map((r) => r.seconds)),
        startedAt,
        warmAcked: warm.reduce((n, r) => n + r.acked, 0),
        serverCpuSeconds: cpuSeconds(server.pid) - serverCpu,
        clientCpuSeconds: (client.user + client.system) / 1e6,
      });
    }
  } catch (e) {
    for (const c of conns) c.client.end(true);
    throw e;
  }
  await Promise.all(conns.map((c) => c.client.endAsync()));
  return measured;
}

/** Waits for the last buffer to be flushed: every acknowledged record in an object. */
async function awaitDelivery(
  child: ChildProcess,
  phase: Measured,
  log: (l: string) => void,
): Promise<Delivery> {
  const latenciesMs: number[] = [];
  const seen = new Set<string>();
  let delivered = 0;
  let lastFlushAt = phase.startedAt;
  let objects = 0;
  const deadline = Date.now() + 30_000;
  const expected = phase.warmAcked + phase.acked;
  let total = 0;
  while (total < expected && Date.now() < deadline) {
    child.send("objects");
    const reply = await nextMessage<Extract<ServerReply, { type: "objects" }>>(child, "objects");
    for (const file of reply.objects.filter((f) => !seen.has(f))) {
      seen.add(file);
      const flushedAt = fs.statSync(file).mtimeMs;
      let measured = 0;
      for (const rec of readRecords(file)) {
        total++;
        // Warm-up records were published before the measured phase started.
        if (typeof rec.timestamp !== "number" || rec.timestamp < phase.startedAt) continue;
        measured++;
        latenciesMs.push(flushedAt - rec.timestamp);
      }
      if (measured > 0) {
        delivered += measured;
        objects++;
        lastFlushAt = Math.max(lastFlushAt, flushedAt);
      }
    }
    if (total < expected) await sleep(100);
  }
  if (delivered < phase.acked) {
    log(`only ${delivered} of ${phase.acked} acknowledged records were delivered within 30 s`);
  }
  return { latenciesMs, delivered, lastFlushAt, objects };
}

/** Our broker alone or the whole pipeline, in bench/pipeline-server.ts, under each QoS in turn. */
async function runOurs(
  mode: ServerRequest["mode"],
  stack: string,
  raw: RawConfig,
  things: readonly string[],
  topics: readonly string[],
  qosList: readonly (0 | 1)[],
  opts: PhaseOptions & { stateDir: string; dashboard?: boolean },
): Promise<{ phases: Measured[]; stopped: Stopped; delivery?: Delivery; page?: PageReader }> {
  fs.rmSync(opts.stateDir, { recursive: true, force: true });
  const req: ServerRequest = {
    mode,
    stack,
    raw,
    stateDir: opts.stateDir,
    things,
    dashboard: opts.dashboard,
  };
  const child = forkTs("pipeline-server.ts", [JSON.stringify(req)]);
  let page: PageReader | undefined;
  try {
    const { url, pkiDir, dashboardUrl } = await nextMessage<
      Extract<ServerReply, { type: "listening" }>
    >(child, "listening");
    // An open page: a client reading the dashboard's event stream for the whole load.
    if (dashboardUrl !== undefined) page = await readPage(dashboardUrl);
    const server = { child, url, pkiDir, pid: child.pid as number };
    const phases = await drive(server, things, topics, qosList, opts);
    const delivery =
      mode === "pipeline" ? await awaitDelivery(child, phases[0], opts.log) : undefined;
    child.send("stop");
    const stopped = await nextMessage<Stopped>(child, "stopped");
    return { phases, stopped, delivery, page };
  } finally {
    page?.close();
    await reap(child);
  }
}

/** A page open on the dashboard: the events and bytes its stream delivered. */
interface PageReader {
  events: number;
  bytes: number;
  close(): void;
}

/** Opens the dashboard's event stream as a browser tab would, and reads it as it comes. */
function readPage(url: string): Promise<PageReader> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}events`, { agent: false }, (res) => {
      if (res.statusCode !== 200) {
        reject(new Error(`the dashboard answered ${res.statusCode} to its event stream`));
        res.resume();
        return;
      }
      const reader: PageReader = { events: 0, bytes: 0, close: () => req.destroy() };
      res.on("data", (d: Buffer) => {
        reader.bytes += d.length;
        for (let i = d.indexOf("\n\n"); i >= 0; i = d.indexOf("\n\n", i + 2)) reader.events++;
      });
      res.on("error", () => undefined);
      resolve(reader);
    });
    req.on("error", (e) => reject(e));
  });
}

type MosquittoListening = Extract<MosquittoReply, { type: "listening" }>;
type MosquittoStopped = Extract<MosquittoReply, { type: "stopped" }>;

/** Mosquitto, in bench/mosquitto-server.ts, on the same topics under each QoS in turn. */
async function runMosquitto(
  bin: string,
  things: readonly string[],
  topics: readonly string[],
  qosList: readonly (0 | 1)[],
  opts: PhaseOptions & { stateDir: string },
): Promise<{ phases: Measured[]; listening: MosquittoListening; stopped: MosquittoStopped }> {
  fs.rmSync(opts.stateDir, { recursive: true, force: true });
  fs.mkdirSync(opts.stateDir, { recursive: true });
  const req: MosquittoRequest = { bin, stateDir: opts.stateDir, things };
  const child = forkTs("mosquitto-server.ts", [JSON.stringify(req)]);
  try {
    const listening = await nextMessage<MosquittoListening>(child, "listening");
    const server = { child, url: listening.url, pkiDir: listening.pkiDir, pid: listening.pid };
    const phases = await drive(server, things, topics, qosList, opts);
    child.send("stop");
    const stopped = await nextMessage<MosquittoStopped>(child, "stopped");
    return { phases, listening, stopped };
  } finally {
    await reap(child);
  }
}

/** The dashboard page's own CPU, measured in this process on a pipeline of the figure's stack. */
interface PageCost {
  /** CPU µs per message the rule matched (what the feed adds to the hot path). */
  readonly microsPerMessage: number;
  /** CPU ms of one sample with every device changed, and the size of its event. */
  readonly tickMs: number;
  readonly tickKiB: number;
  readonly devices: number;
}

/**
 * What the page costs the pipeline's process, apart from the machine's noise: the feed's work per
 * matched message (called as the rule calls it, on a fleet of `devices`), then a sample a second
 * with every device changed, serialised as the server sends it.
 */
async function measurePageCost(
  config: StackConfig,
  stateDir: string,
  quick: boolean,
): Promise<PageCost> {
  const devices = 1000;
  const messages = quick ? 100_000 : 1_000_000;
  const ticks = quick ? 10 : 50;
  fs.rmSync(stateDir, { recursive: true, force: true });
  const pipeline = await startLocalPipeline(config, { stateDir });
  try {
    const things = Array.from({ length: devices }, (_, i) => `page-sensor-${i + 1}`);
    const feed = new DashboardFeed({ pipeline, things, sampleMs: 3_600_000 });
    let bytes = 0;
    feed.onTick((t) => (bytes = Math.max(bytes, Buffer.byteLength(JSON.stringify(t)))));
    const output = (thing: string, i: number) => ({
      ...reading(thing, i),
      topic_thing: thing,
      received_at: Date.now(),
    });
    const outputs = things.map((t, i) => output(t, i));
    let at = Date.now();
    const cpu = process.cpuUsage();
    for (let i = 0; i < messages; i++) {
      feed.onRuleOutput(outputs[i % devices], { clientId: things[i % devices], receivedAt: at++ });
    }
    const perMessage = process.cpuUsage(cpu);
    const tickCpu = process.cpuUsage();
    for (let k = 0; k < ticks; k++) {
      for (let i = 0; i < devices; i++) {
        feed.onRuleOutput(outputs[i], { clientId: things[i], receivedAt: (at += 1000) });
      }
      feed.tick();
    }
    const perTick = process.cpuUsage(tickCpu);
    feed.finish();
    return {
      microsPerMessage: (perMessage.user + perMessage.system) / messages,
      tickMs: (perTick.user + perTick.system) / 1000 / ticks,
      tickKiB: bytes / 1024,
      devices,
    };
  } finally {
    await pipeline.stop();
    fs.rmSync(stateDir, { recursive: true, force: true });
  }
}

/** Messages per second of a measured load. */
function rate(m: Measured): number {
  return m.acked / m.seconds;
}

/**
 * The server process's CPU time (user + system) per message of a measured load, in µs: unlike a
 * rate, it does not depend on how much of the two cores the producers and neighbours took.
 */
function cpuMicrosPerMessage(m: Measured): number {
  return (1e6 * m.serverCpuSeconds) / Math.max(1, m.acked);
}

/** "server 51 % (20 µs a message) / producers 47 %": shares of one core during a measured load. */
function cpuShare(m: Measured): string {
  const pct = (s: number) => `${Math.round((100 * s) / m.seconds)} %`;
  const perMessage = round(cpuMicrosPerMessage(m), 2);
  return `server ${pct(m.serverCpuSeconds)} (${perMessage} µs a message) / producers ${pct(m.clientCpuSeconds)}`;
}

/** The samples at each tenth of the run, rounded: enough to see a plateau or a climb. */
function deciles(samples: readonly number[]): number[] {
  if (samples.length === 0) return [];
  return Array.from({ length: 10 }, (_, i) =>
    Math.round(
      // Fewer than ten samples (--quick) repeat some rather than read before the first.
      samples[
        Math.max(0, Math.min(samples.length - 1, Math.floor(((i + 1) * samples.length) / 10) - 1))
      ],
    ),
  );
}

export async function run(opts: FigureOptions): Promise<FigureOutcome> {
  // A fleet's shape rather than a few fire hoses: many connections, each with the publisher's
  // default in-flight window, which bounds what each has waiting for the journal.
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
  const warmupMs = opts.quick ? 500 : 3_000;
  const phaseOpts = { durationMs, warmupMs, window, log: opts.log };
  const config = parseStackConfig(raw, stack);
  const topics = things.map((t) => telemetryTopicFor(config.telemetryTopic, t));
  // Decided before anything is measured, so that a required Mosquitto that is missing fails fast.
  const mosquittoBin = findMosquittoBroker();
  let skipped: string | undefined;
  if ("reason" in mosquittoBin) {
    if (process.env[REQUIRE_MOSQUITTO] === "1") {
      throw new Error(`${mosquittoBin.reason}; ${REQUIRE_MOSQUITTO}=1 requires it`);
    }
    skipped = mosquittoBin.reason;
    opts.log(`Mosquitto baseline skipped: ${skipped}`);
  }
  opts.log(
    `baseline: broker alone, QoS 1 then QoS 0, ${producers} producers × window ${window}, ${durationMs / 1000} s each`,
  );
  // State of this run only (two runs at once must not share a journal); removed afterwards.
  const runDir = path.join(opts.stateDir, `pipeline-${process.pid}`);
  let base: Awaited<ReturnType<typeof runOurs>>;
  let pipe: Awaited<ReturnType<typeof runOurs>>;
  let pipe5: Awaited<ReturnType<typeof runOurs>>;
  let pipePage: Awaited<ReturnType<typeof runOurs>>;
  let pageCost: PageCost;
  let mosq: Awaited<ReturnType<typeof runMosquitto>> | undefined;
  try {
    base = await runOurs("broker", stack, raw, things, topics, [1, 0], {
      ...phaseOpts,
      stateDir: path.join(runDir, "baseline"),
    });
    opts.log(`pipeline: policy + rule + durable delivery, QoS 1, same load`);
    pipe = await runOurs("pipeline", stack, raw, things, topics, [1], {
      ...phaseOpts,
      stateDir: path.join(runDir, "pipeline"),
    });
    // The same load over MQTT 5 (issue 24): the row beside the 3.1.1 one.
    opts.log(`pipeline over MQTT 5: QoS 1, same load`);
    pipe5 = await runOurs("pipeline", stack, raw, things, topics, [1], {
      ...phaseOpts,
      protocol: 5,
      stateDir: path.join(runDir, "pipeline-mqtt5"),
    });
    // The same load with the dashboard page open (issue 27): its cost to the pipeline.
    opts.log(`pipeline with the dashboard page open (a client reading its event stream): QoS 1`);
    pipePage = await runOurs("pipeline", stack, raw, things, topics, [1], {
      ...phaseOpts,
      dashboard: true,
      stateDir: path.join(runDir, "pipeline-page"),
    });
    opts.log(`the dashboard page's own CPU, in this process: per matched message and per sample`);
    pageCost = await measurePageCost(config, path.join(runDir, "page-cost"), opts.quick);
    if ("bin" in mosquittoBin) {
      opts.log(`Mosquitto (${mosquittoBin.bin}, persistence on): QoS 1 then QoS 0, same load`);
      mosq = await runMosquitto(mosquittoBin.bin, things, topics, [1, 0], {
        ...phaseOpts,
        stateDir: path.join(runDir, "mosquitto"),
      });
    }
  } finally {
    fs.rmSync(runDir, { recursive: true, force: true });
  }

  const [baseQos1, baseQos0] = base.phases;
  const pipeQos1 = pipe.phases[0];
  const delivery = pipe.delivery as Delivery;
  const baseRate = rate(baseQos1);
  const ackRate = rate(pipeQos1);
  // End to end: records in delivered objects per second, up to the flush of the last of them.
  const e2eSeconds = (delivery.lastFlushAt - pipeQos1.startedAt) / 1000;
  const e2eRate = delivery.delivered / e2eSeconds;
  const ratio = e2eRate / baseRate;
  const journal = pipe.stopped.journal ?? { records: 0, fsyncs: 0 };
  const recordsPerFsync = journal.records / journal.fsyncs;
  const samples = pipe.stopped.rssSamplesMiB;
  const third = Math.max(1, Math.floor(samples.length / 3));
  const firstThird = Math.max(...samples.slice(0, third));
  const lastThird = Math.max(...samples.slice(-third));
  const msgPerSec = (key: string, label: string, value: number): Metric => ({
    key,
    label,
    value: round(value),
    unit: "msg/s",
  });
  const mosquittoVs = mosq === undefined ? undefined : ackRate / rate(mosq.phases[0]);
  const pageRate = rate(pipePage.phases[0]);
  const pageRead = pipePage.page ?? { events: 0, bytes: 0 };
  const pageStats = pipePage.stopped.dashboard;
  const cpuPerMessage = (key: string, label: string, m: Measured): Metric => ({
    key,
    label,
    value: round(cpuMicrosPerMessage(m), 2),
    unit: "µs",
  });
  // Issue 28's measure of what the pipeline adds: CPU per acknowledged durable message against the
  // broker alone's, each in a process of its own under the same load.
  const cpuRatio = cpuMicrosPerMessage(pipeQos1) / cpuMicrosPerMessage(baseQos1);
  const metrics: Metric[] = [
    msgPerSec("baseline.qos0.msgPerSec", "broker alone, QoS 0: msg/s read", rate(baseQos0)),
    msgPerSec("baseline.msgPerSec", "broker alone, QoS 1: acked msg/s", baseRate),
    msgPerSec("pipeline.ackedMsgPerSec", "pipeline, QoS 1: acked (journal fsync'd) msg/s", ackRate),
    msgPerSec(
      "pipeline.mqtt5.ackedMsgPerSec",
      "pipeline over MQTT 5, QoS 1: acked (journal fsync'd) msg/s",
      rate(pipe5.phases[0]),
    ),
    msgPerSec(
      "pipeline.dashboard.ackedMsgPerSec",
      "pipeline with the dashboard page open, QoS 1: acked msg/s",
      pageRate,
    ),
    {
      key: "pipeline.dashboard.ratio",
      label: "ratio pipeline with page / without",
      value: round(pageRate / ackRate),
      unit: "×",
    },
    {
      key: "pipeline.dashboard.microsPerMessage",
      label: "dashboard page: CPU per matched message",
      value: round(pageCost.microsPerMessage, 3),
      unit: "µs",
    },
    {
      key: "pipeline.dashboard.tickMs",
      label: `dashboard page: CPU per sample (1/s), ${pageCost.devices} devices changed`,
      value: round(pageCost.tickMs),
      unit: "ms",
    },
    msgPerSec("pipeline.e2eMsgPerSec", "pipeline: publish → delivered record msg/s", e2eRate),
    {
      key: "pipeline.ackedRatio",
      label: "ratio pipeline acked / broker alone QoS 1",
      value: round(ackRate / baseRate),
      unit: "×",
    },
    {
      key: "pipeline.ratio",
      label: "ratio e2e / broker alone QoS 1",
      value: round(ratio),
      unit: "×",
    },
    cpuPerMessage(
      "baseline.qos1.cpuMicrosPerMessage",
      "broker alone, QoS 1: server CPU per acked message",
      baseQos1,
    ),
    cpuPerMessage(
      "pipeline.qos1.cpuMicrosPerMessage",
      "pipeline, QoS 1: server CPU per acked (journal fsync'd) message",
      pipeQos1,
    ),
    cpuPerMessage(
      "pipeline.mqtt5.qos1.cpuMicrosPerMessage",
      "pipeline over MQTT 5, QoS 1: server CPU per acked message",
      pipe5.phases[0],
    ),
    {
      key: "pipeline.cpuRatio",
      label: "ratio pipeline CPU per acked message / broker alone's",
      value: round(cpuRatio),
      unit: "×",
    },
    ...(mosq === undefined || mosquittoVs === undefined
      ? []
      : [
          msgPerSec(
            "mosquitto.qos0.msgPerSec",
            "Mosquitto, QoS 0: msg/s read",
            rate(mosq.phases[1]),
          ),
          msgPerSec(
            "mosquitto.qos1.msgPerSec",
            "Mosquitto, QoS 1: acked msg/s (persistence on)",
            rate(mosq.phases[0]),
          ),
          cpuPerMessage(
            "mosquitto.qos1.cpuMicrosPerMessage",
            "Mosquitto, QoS 1: server CPU per acked message",
            mosq.phases[0],
          ),
          {
            key: "pipeline.vsMosquittoQos1",
            label: "ratio pipeline acked / Mosquitto QoS 1",
            value: round(mosquittoVs),
            unit: "×",
          },
        ]),
    {
      key: "pipeline.recordsPerFsync",
      label: "pipeline: records journaled per fsync",
      value: round(recordsPerFsync),
      unit: "",
    },
    {
      key: "pipeline.latencyP50Ms",
      label: "latency publish → flush p50",
      value: round(percentile(delivery.latenciesMs, 50)),
      unit: "ms",
    },
    {
      key: "pipeline.latencyP99Ms",
      label: "latency publish → flush p99",
      value: round(percentile(delivery.latenciesMs, 99)),
      unit: "ms",
    },
    {
      key: "pipeline.recordsDelivered",
      label: "records delivered / acked",
      value: round(delivery.delivered / Math.max(1, pipeQos1.acked)),
      unit: "",
    },
    {
      key: "pipeline.objects",
      label: "objects written",
      value: delivery.objects,
      unit: "",
    },
    {
      key: "pipeline.peakRssMiB",
      label: "pipeline process peak RSS",
      value: round(pipe.stopped.peakRssMiB),
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
      label: "broker alone peak RSS",
      value: round(base.stopped.peakRssMiB),
      unit: "MiB",
    },
    ...(mosq === undefined
      ? []
      : [
          {
            key: "mosquitto.peakRssMiB",
            label: "Mosquitto peak RSS",
            value: round(mosq.stopped.peakRssMiB),
            unit: "MiB",
          },
        ]),
  ];
  const vsLabel = "pipeline acked / Mosquitto QoS 1";
  return {
    status: "measured",
    params: {
      stack,
      producers,
      window,
      qos: "pipeline 1; broker alone and Mosquitto 1, then 0",
      phaseSeconds: durationMs / 1000,
      warmupSeconds: warmupMs / 1000,
      bufferSizeMiB: 1,
      bufferIntervalSeconds: 1,
      mosquitto: mosq === undefined ? "not measured" : mosq.listening.version,
    },
    metrics,
    targets: [
      target(
        "pipeline acked / broker alone QoS 1",
        "pipeline.ackedRatio",
        ">=",
        0.8,
        ackRate / baseRate,
      ),
      target(
        "pipeline CPU per acked message / broker alone's",
        "pipeline.cpuRatio",
        "<=",
        1.5,
        cpuRatio,
      ),
      target("e2e / baseline", "pipeline.ratio", ">=", 0.5, ratio),
      mosquittoVs === undefined
        ? unmeasuredTarget(vsLabel, "pipeline.vsMosquittoQos1", ">=", 1, skipped ?? "")
        : target(vsLabel, "pipeline.vsMosquittoQos1", ">=", 1, mosquittoVs),
    ],
    notes: [
      "What bounds memory when producers outrun the disk: the PUBACK waits for the journal fsync, so each producer has at most its window of messages unacknowledged in the broker, and the delivery stream lets at most maxPendingObjects (2) flushed buffers wait for their object write before it holds back PUBACKs too: at most (2 + 1) × bufferSizeMiB of records plus producers × window messages, whatever the backlog.",
      `RSS of the pipeline process: max ${round(firstThird)} MiB in the first third of the run, ${round(lastThird)} MiB in the last third (sampled every 250 ms); at each tenth of the run: ${deciles(samples).join(", ")} MiB.`,
      `${pipeQos1.acked} messages acknowledged, ${delivery.delivered} records delivered in ${delivery.objects} objects (warm-up excluded).`,
      `Dashboard page (issue 27): the same load with the page served and one client reading its event stream throughout: ${round(pageRate)} acked msg/s against ${round(ackRate)} without (${round(pageRate / ackRate)}×; the two loads run one after the other in processes of their own, and on a busy machine their rates differ by more than the page costs: its own CPU below is the figure to read). Server CPU with the page: ${cpuShare(pipePage.phases[0])}. The page's own CPU, measured apart from that noise in this process on a pipeline of the same stack: ${round(pageCost.microsPerMessage, 3)} µs per matched message (the feed's work, called as the rule calls it, over ${pageCost.devices} devices), and ${round(pageCost.tickMs)} ms per one-second sample with all ${pageCost.devices} devices changed (an event of ${Math.round(pageCost.tickKiB)} KiB). The page read ${pageRead.events} events (${Math.round(pageRead.bytes / 1024)} KiB); the server dropped ${pageStats?.dropped ?? 0} events for it and cut ${pageStats?.cut ?? 0} page(s).`,
      `Group commit: the pipeline journaled ${journal.records} records in ${journal.fsyncs} fsyncs, warm-up included (${round(recordsPerFsync)} per fsync); every PUBACK waits for the fsync of its record's batch.`,
      "QoS 0: nothing is acknowledged, and mqtt.js's callback only says that a message reached the socket, in front of kernel buffers that hold many; each producer ends a QoS 0 load with one QoS 1 publish, whose PUBACK the server sends only once it has read everything before it on the connection, and the load's time runs to that PUBACK: the rate is what the server read.",
      `CPU during each measured load, in % of one core, and the server's CPU time per message (${producers} producers share this figure's process; a server well under 100 % while the producers are near it was waiting on them, and its rate is then a floor of what it can do): broker alone QoS 1 ${cpuShare(baseQos1)}, QoS 0 ${cpuShare(baseQos0)}; pipeline ${cpuShare(pipeQos1)}` +
        (mosq === undefined
          ? "."
          : `; Mosquitto QoS 1 ${cpuShare(mosq.phases[0])}, QoS 0 ${cpuShare(mosq.phases[1])}.`),
      ...(mosq === undefined
        ? [
            `Mosquitto not measured: ${skipped ?? ""}. Its metrics are absent and the target against it reads "not measured".`,
          ]
        : [
            `Mosquitto ${mosq.listening.version} (${"bin" in mosquittoBin ? mosquittoBin.bin : ""}), started by the bench with a generated config: one TLS listener on 127.0.0.1, cafile/certfile/keyfile from the local CA, require_certificate true, use_identity_as_username true, persistence true with persistence_location in the run's state dir, the rest at Mosquitto's defaults (autosave_interval 1800 s, autosave_on_changes false, set_tcp_nodelay false like Node's sockets, log types error, warning, notice and information). On exit it saved a mosquitto.db of ${mosq.stopped.dbBytes} bytes.`,
            `What each PUBACK means. The pipeline sends it once the record is in its journal and fdatasync'd. Mosquitto with persistence true keeps messages in memory and writes its in-memory database "when mosquitto closes and also at periodic intervals as defined by autosave_interval" (mosquitto.conf(5), ${MOSQUITTO_CONF_MAN}); its maintainer: "there isn't a strict relationship [between] it being persisted to disk and the puback being sent" (${MOSQUITTO_PUBACK_ISSUE}). A message that no subscriber waits for, as here, is in no queue for that database to save: Mosquitto's PUBACK says the message was received, not that it is on disk; the same holds for our broker alone.`,
          ]),
    ],
  };
}
