// Figure 10: floods on prod's Parquet lake. The prod stack as shipped (least privilege, Parquet
// partitioned by thing, 64 MiB buffers) takes a QoS 1 flood from one device, a kill -9 of the
// pipeline in the middle of it with a restart on the same port (the journal is replayed, its
// buffers hold well over 125,000 records of that one thing), then a QoS 0 flood, while a canary
// device publishes at 20 msg/s the whole time. It reports every acknowledged record against what
// the lake holds (read back through `npm run query`'s own engine), the most records of one thing in
// one object, the pipeline process's RSS in each phase against the documented ceiling, and the
// canary's PUBACK p99 in each phase against its own baseline.
//
// Why this figure exists: the soak's three devices never put more than ~50,000 records of one thing
// in a buffer, and the lake writer once failed past ~125,000 (a spread over the buffer's rows), which
// left every acknowledged record undelivered and every later start failing.
import * as fs from "node:fs";
import * as path from "node:path";
import { DEVICE_PARTITION } from "../core/lake";
import { planPipeline } from "../core/plan";
import { parseStackConfig, readRawStackConfig, type RawConfig } from "../core/stack-config";
import { telemetryTopicFor } from "../core/topics";
import { Publisher } from "../device/publisher";
import { readCredentials } from "../local/identity/ca";
import { LocalLake } from "../local/lake/lake-query";
import { ceilingMiB, memoryBudget } from "../local/pipeline/memory-budget";
import { localBucketName } from "../local/storage/s3";
import type { FigureOptions, FigureOutcome } from "./figure";
import { forkTs, nextMessage, reap } from "./ipc";
import { reading } from "./payloads";
import type { ServerReply, ServerRequest } from "./pipeline-server";
import { target, type Metric } from "./report";
import { nowMs, percentile, round, rssMiB, sleep } from "./stats";

type Listening = Extract<ServerReply, { type: "listening" }>;
type Stopped = Extract<ServerReply, { type: "stopped" }>;

const CANARY = "bench-canary";
const FLOOD_QOS1 = "bench-flood-qos1";
const FLOOD_QOS0 = "bench-flood-qos0";
/** The canary's rate: a device well inside AWS IoT's 100 publishes per second per connection. */
const CANARY_RATE = 20;
/** What a flooder keeps queued in its publisher: enough that the broker, not the client, bounds it. */
const FLOOD_BACKLOG = 4_000;

type Phase = "baseline" | "qos1" | "restart" | "qos0";
const PHASES: readonly Phase[] = ["baseline", "qos1", "restart", "qos0"];

interface Server {
  readonly child: import("node:child_process").ChildProcess;
  readonly url: string;
  readonly pkiDir: string;
  readonly port: number;
}

async function startServer(req: ServerRequest): Promise<Server> {
  const child = forkTs("pipeline-server.ts", [JSON.stringify(req)]);
  // A start replays what the journal holds before it listens: give a big journal its time.
  const { url, pkiDir } = await nextMessage<Listening>(child, "listening", 300_000);
  return { child, url, pkiDir, port: Number(new URL(url).port) };
}

/** The server process's RSS every 100 ms, each sample filed under the phase it was taken in. */
class RssSampler {
  readonly peak: Record<Phase, number> = { baseline: 0, qos1: 0, restart: 0, qos0: 0 };
  phase: Phase = "baseline";
  private pid: number | undefined;
  private readonly timer = setInterval(() => this.sample(), 100);

  watch(pid: number | undefined): void {
    this.pid = pid;
  }

  private sample(): void {
    if (this.pid === undefined) return;
    try {
      this.peak[this.phase] = Math.max(this.peak[this.phase], rssMiB(this.pid));
    } catch {
      // The process is gone (the kill -9): nothing to sample until the restart.
    }
  }

  stop(): void {
    this.sample();
    clearInterval(this.timer);
  }
}

/** A publisher of one thing; counts what the broker acknowledged, keyed as the lake holds it. */
class Device {
  readonly acked = new Set<string>();
  readonly ackMs: Record<Phase, number[]> = { baseline: [], qos1: [], restart: [], qos0: [] };
  phase: Phase = "baseline";
  private readonly pub: Publisher;
  private seq = 0;
  private running = false;
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();

  constructor(
    url: string,
    pkiDir: string,
    readonly thing: string,
    private readonly topic: string,
    qos: 0 | 1,
    flood: boolean,
  ) {
    this.pub = new Publisher({
      url,
      clientId: thing,
      ...readCredentials(pkiDir, thing),
      qos,
      // A flooder is as fast as the broker lets it be; the canary keeps to its rate below.
      ...(flood
        ? { rateLimit: 0, maxInFlight: 1_000, maxQueue: FLOOD_BACKLOG * 2, maxAttempts: 100 }
        : { maxAttempts: 100 }),
      publishTimeoutMs: 60_000,
    });
    this.pub.start();
  }

  connected(): Promise<void> {
    return this.pub.waitConnected();
  }

  get isConnected(): boolean {
    return this.pub.connected;
  }

  private send(): void {
    const seq = this.seq++;
    // Unique per thing: the key the lake's rows are matched on.
    const msg = reading(this.thing, seq, 1_700_000_000_000 + seq);
    const key = `${this.thing}@${msg.timestamp}`;
    const sentAt = nowMs();
    const sentIn = this.phase;
    void this.pub.send(this.topic, msg).then((outcome) => {
      if (outcome.status !== "acked") return;
      this.acked.add(key);
      // A message sent before the kill -9 and acknowledged after it belongs to the restart.
      const phase = this.phase === "restart" ? "restart" : sentIn;
      this.ackMs[phase].push(nowMs() - sentAt);
    });
  }

  /** Publishes at `rate` per second, or as fast as the publisher's queue allows when 0. */
  run(rate: number): void {
    this.running = true;
    this.loop = (async () => {
      const started = nowMs();
      let sent = 0;
      while (this.running) {
        if (rate > 0) {
          const owed = Math.floor(((nowMs() - started) * rate) / 1000);
          for (; sent < owed; sent++) this.send();
          await sleep(10);
        } else {
          while (this.pub.pending < FLOOD_BACKLOG) this.send();
          await sleep(1);
        }
      }
    })();
  }

  async pause(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** Waits for what was sent to be acknowledged (or given up on), then closes. */
  async stop(graceMs: number): Promise<void> {
    await this.pause();
    if (this.stopped) return;
    this.stopped = true;
    await this.pub.stop(graceMs);
  }
}

/** Every (thing, timestamp) the lake's telemetry table holds, and the most rows of one object. */
async function readLake(
  config: ReturnType<typeof parseStackConfig>,
  stateDir: string,
): Promise<{ delivered: Map<string, number>; maxRowsOfOneObject: number; objects: number }> {
  const lake = await LocalLake.open(config, { stateDir });
  try {
    const rows = await lake.query(`SELECT thing, "timestamp" FROM telemetry`);
    const delivered = new Map<string, number>();
    for (const [thing, ts] of rows.rows) {
      const key = `${String(thing)}@${Number(ts)}`;
      delivered.set(key, (delivered.get(key) ?? 0) + 1);
    }
    const layout = planPipeline(config).lake.layout;
    const dir = path.join(
      stateDir,
      "s3",
      localBucketName(config),
      ...layout.location.split("/").filter(Boolean),
      `${DEVICE_PARTITION}=${FLOOD_QOS1}`,
    );
    let maxRowsOfOneObject = 0;
    if (fs.existsSync(dir)) {
      const glob = `${dir.replace(/'/g, "''")}/**/*.parquet`;
      const per = await lake.query(
        `SELECT max(n) FROM (SELECT filename, count(*) AS n FROM read_parquet('${glob}', filename = true) GROUP BY filename)`,
      );
      maxRowsOfOneObject = Number(per.rows[0]?.[0] ?? 0);
    }
    return { delivered, maxRowsOfOneObject, objects: lake.objects };
  } finally {
    lake.close();
  }
}

export async function run(opts: FigureOptions): Promise<FigureOutcome> {
  const seconds = opts.quick
    ? { baseline: 2, qos1: 4, afterRestart: 2, qos0: 3 }
    : { baseline: 10, qos1: 25, afterRestart: 10, qos0: 20 };
  const stack = "prod";
  const base = readRawStackConfig(stack);
  // prod as shipped (Parquet partitioned by thing, its 64 MiB buffers, least privilege), with
  // generated certificates (no CSR keys exist here) and the figure's three devices in the fleet, so
  // that the lake's partition projection lists them.
  const raw: RawConfig = {
    ...base,
    certificateMode: "generated",
    fleet: [
      ...(base.fleet as unknown[]),
      {
        group: "Bench",
        description: "The flood figure's devices",
        things: [CANARY, FLOOD_QOS1, FLOOD_QOS0],
      },
    ],
  };
  const config = parseStackConfig(raw, stack);
  // The ceiling docs/reliability.md documents for this stack's pipeline process (MiB).
  const rssCeilingMiB = ceilingMiB(memoryBudget(config));
  const topic = (thing: string) => telemetryTopicFor(config.telemetryTopic, thing);
  const runDir = path.join(opts.stateDir, `flood-${process.pid}`);
  const stateDir = path.join(runDir, "state");
  fs.rmSync(runDir, { recursive: true, force: true });
  const things = config.things.map((t) => t.name);
  const req: ServerRequest = { mode: "pipeline", stack, raw, stateDir, things };

  const rss = new RssSampler();
  const servers: Server[] = [];
  const devices: Device[] = [];
  try {
    const a = await startServer(req);
    servers.push(a);
    rss.watch(a.child.pid);
    const canary = new Device(a.url, a.pkiDir, CANARY, topic(CANARY), 1, false);
    const q1 = new Device(a.url, a.pkiDir, FLOOD_QOS1, topic(FLOOD_QOS1), 1, true);
    devices.push(canary, q1);
    await Promise.all([canary.connected(), q1.connected()]);
    const setPhase = (p: Phase) => {
      rss.phase = p;
      for (const d of devices) d.phase = p;
    };

    opts.log(`baseline: the canary alone at ${CANARY_RATE} msg/s, QoS 1, ${seconds.baseline} s`);
    canary.run(CANARY_RATE);
    await sleep(seconds.baseline * 1000);

    opts.log(`QoS 1 flood from ${FLOOD_QOS1} for ${seconds.qos1} s, then kill -9 and a restart`);
    setPhase("qos1");
    q1.run(0);
    await sleep(seconds.qos1 * 1000);
    const killedRecords = q1.acked.size;
    const exited = new Promise<void>((r) => a.child.once("exit", () => r()));
    a.child.kill("SIGKILL");
    await exited;
    setPhase("restart");
    const killedAt = nowMs();
    const b = await startServer({ ...req, port: a.port });
    servers.push(b);
    rss.watch(b.child.pid);
    while (!canary.isConnected || !q1.isConnected) await sleep(20);
    const restartSeconds = (nowMs() - killedAt) / 1000;
    opts.log(
      `restarted in ${round(restartSeconds)} s after kill -9 (${killedRecords} of the flood acknowledged before it)`,
    );
    // The flood goes on after the restart; its first seconds are the restart's own backlog.
    await sleep(seconds.afterRestart * 1000);
    await q1.pause();

    opts.log(`QoS 0 flood from ${FLOOD_QOS0} for ${seconds.qos0} s`);
    setPhase("qos0");
    const q0 = new Device(b.url, b.pkiDir, FLOOD_QOS0, topic(FLOOD_QOS0), 0, true);
    devices.push(q0);
    await q0.connected();
    q0.run(0);
    await sleep(seconds.qos0 * 1000);
    await Promise.all(devices.map((d) => d.stop(30_000)));
    b.child.send("stop");
    const stopped = await nextMessage<Stopped>(b.child, "stopped", 300_000);
    await reap(b.child);
    rss.stop();

    const lake = await readLake(config, stateDir);
    let lost = 0;
    const ackedOwed = canary.acked.size + q1.acked.size;
    for (const d of [canary, q1]) for (const key of d.acked) if (!lake.delivered.has(key)) lost++;
    let duplicates = 0;
    for (const n of lake.delivered.values()) duplicates += n - 1;
    const qos0Delivered = [...lake.delivered.keys()].filter((k) =>
      k.startsWith(`${FLOOD_QOS0}@`),
    ).length;
    const canaryP99 = (p: Phase) => percentile(canary.ackMs[p], 99);
    const baseP99 = canaryP99("baseline");
    const ratio = (p: Phase) => canaryP99(p) / baseP99;
    const peakFlood = Math.max(rss.peak.qos1, rss.peak.restart, rss.peak.qos0);
    const metrics: Metric[] = [
      {
        key: "flood.acked",
        label: "records acknowledged (canary and QoS 1 flood)",
        value: ackedOwed,
        unit: "",
      },
      { key: "flood.lost", label: "acknowledged and not in the lake", value: lost, unit: "" },
      {
        key: "flood.duplicates",
        label: "duplicate rows (at-least-once)",
        value: duplicates,
        unit: "",
      },
      {
        key: "flood.qos1AckedBeforeKill",
        label: "QoS 1 flood records acknowledged before the kill -9",
        value: killedRecords,
        unit: "",
      },
      {
        key: "flood.maxRowsOfOneThingInOneObject",
        label: "most records of the flooding thing in one Parquet object",
        value: lake.maxRowsOfOneObject,
        unit: "",
      },
      { key: "flood.objects", label: "objects in the lake's table", value: lake.objects, unit: "" },
      {
        key: "flood.qos0Delivered",
        label: "QoS 0 flood records in the lake (not owed)",
        value: qos0Delivered,
        unit: "",
      },
      {
        key: "flood.restartSeconds",
        label: "kill -9 to both devices reconnected (the journal replayed)",
        value: round(restartSeconds),
        unit: "s",
      },
      {
        key: "flood.peakRssMiB",
        label: "pipeline process peak RSS under the floods and the restart",
        value: round(peakFlood),
        unit: "MiB",
      },
      ...PHASES.map((p) => ({
        key: `flood.${p}.peakRssMiB`,
        label: `pipeline process peak RSS, ${p}`,
        value: round(rss.peak[p]),
        unit: "MiB",
      })),
      ...PHASES.map((p) => ({
        key: `flood.${p}.canaryP99Ms`,
        label: `canary PUBACK p99, ${p}`,
        value: round(canaryP99(p)),
        unit: "ms",
      })),
      ...(["qos1", "qos0"] as const).map((p) => ({
        key: `flood.${p}.canaryP99Ratio`,
        label: `canary PUBACK p99, ${p} flood / baseline`,
        value: round(ratio(p)),
        unit: "×",
      })),
    ];
    return {
      status: "measured",
      params: {
        stack,
        recordFormat: config.lake.format,
        partitionByThing: config.lake.partitionByThing,
        bufferSizeMiB: config.delivery.bufferSizeMiB,
        canaryRate: CANARY_RATE,
        ...Object.fromEntries(Object.entries(seconds).map(([k, v]) => [`${k}Seconds`, v])),
      },
      metrics,
      targets: [
        target("acknowledged records lost", "flood.lost", "==", 0, lost),
        target(
          "peak RSS under the floods (MiB)",
          "flood.peakRssMiB",
          "<",
          rssCeilingMiB,
          peakFlood,
        ),
        target(
          "canary p99 under the QoS 1 flood / baseline",
          "flood.qos1.canaryP99Ratio",
          "<",
          3,
          ratio("qos1"),
        ),
        target(
          "canary p99 under the QoS 0 flood / baseline",
          "flood.qos0.canaryP99Ratio",
          "<",
          3,
          ratio("qos0"),
        ),
        ...(opts.quick
          ? []
          : [
              target(
                "records of one thing in one object (past the old 125,000 failure)",
                "flood.maxRowsOfOneThingInOneObject",
                ">=",
                125_000,
                lake.maxRowsOfOneObject,
              ),
            ]),
      ],
      notes: [
        `${ackedOwed} acknowledged (canary ${canary.acked.size}, QoS 1 flood ${q1.acked.size}), ${ackedOwed - lost} of them in the lake; ${duplicates} duplicate rows; the QoS 0 flood put ${qos0Delivered} records in the lake (QoS 0 is never acknowledged, so none is owed).`,
        `Peak RSS by phase: ${PHASES.map((p) => `${p} ${round(rss.peak[p])} MiB`).join(", ")} (documented ceiling ${rssCeilingMiB} MiB; the restarted process's own high-water mark ${round(stopped.peakRssMiB)} MiB).`,
        `Canary PUBACK p99: ${PHASES.map((p) => `${p} ${round(canaryP99(p))} ms`).join(", ")}; the restart phase includes the kill -9 and is not a target.`,
      ],
    };
  } finally {
    rss.stop();
    await Promise.all(devices.map((d) => d.stop(1_000).catch(() => undefined)));
    for (const s of servers) await reap(s.child, 1_000);
    fs.rmSync(runDir, { recursive: true, force: true });
  }
}
