// Figure 5: the soak. The prod stack's fleet publishes at 80 msg/s per device (AWS IoT allows 100
// per connection) through the local pipeline, first with nobody else about (the baseline), then for ten
// minutes (--quick: seconds) beside a frozen `#` subscriber, an oversize publisher (200 KB payloads
// and 100 MiB announced packets), an idle-socket flood, and a kill -9 of the pipeline with a restart
// on the same port halfway through. It reports acknowledged against delivered records (which must
// be equal; duplicates are counted apart, as at-least-once allows them), the pipeline process's peak
// RSS in each phase, and the devices' PUBACK latency p99 under attack against the baseline's.
//
// Why the baseline is fair: the same devices, rate, stack, machine and run; only the attackers and
// the kill differ. The restart's own delay is reported apart and left out of one of the p99s.
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import * as zlib from "node:zlib";
import mqtt, { type MqttClient } from "mqtt";
import { parseStackConfig, readRawStackConfig, type RawConfig } from "../core/stack-config";
import { telemetryTopicFor } from "../core/topics";
import { Publisher } from "../device/publisher";
import { readCredentials } from "../local/identity/ca";
import type { GuardStats } from "../local/broker/connection-guard";
import { localBucketName } from "../local/storage/s3";
import type { FigureOptions, FigureOutcome } from "./figure";
import { forkTs, nextMessage, reap, tsExecArgv } from "./ipc";
import { reading } from "./payloads";
import type { ServerReply, ServerRequest } from "./pipeline-server";
import { target, type Metric } from "./report";
import { nowMs, peakRssMiB, percentile, round, sleep } from "./stats";
import { ceilingMiB, memoryBudget } from "../local/pipeline/memory-budget";

type Listening = Extract<ServerReply, { type: "listening" }>;
type Stopped = Extract<ServerReply, { type: "stopped" }>;

/** The identity of the oversize publisher: a thing of the soak's extra fleet group. */
const ATTACKER = "bench-oversize";

interface Server {
  readonly child: ChildProcess;
  readonly url: string;
  readonly pkiDir: string;
  readonly port: number;
}

async function startServer(req: ServerRequest): Promise<Server> {
  const child = forkTs("pipeline-server.ts", [JSON.stringify(req)]);
  const { url, pkiDir } = await nextMessage<Listening>(child, "listening");
  return { child, url, pkiDir, port: Number(new URL(url).port) };
}

async function stopServer(s: Server): Promise<Stopped> {
  s.child.send("stop");
  const stopped = await nextMessage<Stopped>(s.child, "stopped");
  await reap(s.child);
  return stopped;
}

/** kill -9; returns the process's peak RSS, read from the kernel just before. */
async function killServer(s: Server): Promise<number> {
  const peak = peakRssMiB(s.child.pid as number);
  const exited = new Promise<void>((r) => s.child.once("exit", () => r()));
  s.child.kill("SIGKILL");
  await exited;
  return peak;
}

type Phase = "baseline" | "attack";

/** One acknowledged message: when it was sent and acknowledged (ms, monotonic clock). */
interface Ack {
  readonly sentAt: number;
  readonly ackedAt: number;
}

/** The prod fleet: one project Publisher per thing, at a fixed rate, for the whole run. */
class Fleet {
  readonly acked = new Set<string>();
  readonly acks: Record<Phase, Ack[]> = { baseline: [], attack: [] };
  notAcked = 0;
  private phase: Phase = "baseline";
  private readonly pubs: Publisher[];
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;

  constructor(
    url: string,
    pkiDir: string,
    private readonly things: readonly string[],
    private readonly topicTemplate: string,
    private readonly rate: number,
  ) {
    this.pubs = things.map(
      (thing) => new Publisher({ url, clientId: thing, ...readCredentials(pkiDir, thing), qos: 1 }),
    );
    for (const p of this.pubs) p.start();
  }

  async connected(): Promise<void> {
    await Promise.all(this.pubs.map((p) => p.waitConnected()));
  }

  /** Publishes at `rate` per device until pause(); each message's timestamp is unique per device. */
  run(phase: Phase): void {
    this.phase = phase;
    const started = nowMs();
    const base = Date.now();
    let sent = 0;
    this.timer = setInterval(() => {
      const owed = Math.floor(((nowMs() - started) * this.rate) / 1000);
      for (; sent < owed; sent++) {
        const seq = this.seq++;
        for (const [k, pub] of this.pubs.entries()) {
          const thing = this.things[k];
          const msg = reading(thing, seq, base + seq);
          const key = `${thing}@${msg.timestamp}`;
          const sentAt = nowMs();
          const ph = this.phase;
          void pub.send(telemetryTopicFor(this.topicTemplate, thing), msg).then((outcome) => {
            if (outcome.status !== "acked") {
              this.notAcked++;
              return;
            }
            this.acked.add(key);
            this.acks[ph].push({ sentAt, ackedAt: nowMs() });
          });
        }
      }
    }, 10);
  }

  /** Stops generating and waits until what was sent is acknowledged (or given up on). */
  async pause(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.pubs.map((p) => p.drained()));
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.pubs.map((p) => p.stop(15_000)));
  }

  /** Whether every publisher is connected right now. */
  get allConnected(): boolean {
    return this.pubs.every((p) => p.connected);
  }

  /** Messages queued or in flight over the fleet (a backlog after a restart drains from here). */
  get pending(): number {
    return this.pubs.reduce((n, p) => n + p.pending, 0);
  }
}

/** The attackers of the attack phase; each counts what it saw. */
class Attackers {
  readonly counts = {
    oversizeAttempts: 0,
    oversizeClosedByBroker: 0,
    oversizeAcked: 0,
    idleOpened: 0,
    idleClosedByBroker: 0,
    frozenSubscribers: 0,
  };
  private running = true;
  private turn: Promise<void> = Promise.resolve();
  /** Set around the kill -9: what closes then was closed by the kill, not refused by the broker. */
  serverDown = false;
  private frozen: ChildProcess | undefined;
  private readonly idle = new Set<net.Socket>();
  private readonly loops: Promise<void>[] = [];

  constructor(
    private port: number,
    private readonly pkiDir: string,
    private readonly idleSockets: number,
    private readonly log: (line: string) => void,
  ) {}

  async start(): Promise<void> {
    await this.freeze();
    for (let i = 0; i < this.idleSockets; i++) this.openIdle();
    this.loops.push(this.oversizeLoop(), this.refreezeLoop());
  }

  /**
   * A frozen subscriber fills the kernel's socket buffers in about a minute, then its messages are
   * dropped, and 30 s after its socket stopped taking anything it is cut off; a fresh one every two
   * minutes keeps the broker facing one for the whole phase.
   */
  private async refreezeLoop(): Promise<void> {
    while (this.running) {
      for (let s = 0; s < 120 && this.running; s++) await sleep(1_000);
      if (this.running && !this.serverDown) await this.replaceFrozen();
    }
  }

  /** Thaws (kills) the frozen subscriber and freezes a fresh one, one replacement at a time. */
  private replaceFrozen(): Promise<void> {
    this.turn = this.turn.then(async () => {
      await this.thaw();
      if (this.running) {
        await this.freeze().catch((e: Error) => this.log(`frozen subscriber: ${e.message}`));
      }
    });
    return this.turn;
  }

  /** After the pipeline's restart: the frozen subscriber's connection died with it; freeze another. */
  async restarted(): Promise<void> {
    await this.replaceFrozen();
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const s of this.idle) s.destroy();
    await Promise.all(this.loops);
    await this.turn;
    await this.thaw();
  }

  /** A `#` subscriber in a process of its own, stopped with SIGSTOP (Ctrl-Z). */
  private async freeze(): Promise<void> {
    const url = `mqtts://127.0.0.1:${this.port}`;
    const child = spawn(
      process.execPath,
      [...tsExecArgv(), path.join(__dirname, "frozen-subscriber.ts"), url, this.pkiDir],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on("data", (d: Buffer) => d.toString().includes("subscribed") && resolve());
      child.once("exit", (code) => reject(new Error(`frozen subscriber exited ${code}`)));
    });
    child.kill("SIGSTOP");
    this.frozen = child;
    this.counts.frozenSubscribers++;
  }

  private async thaw(): Promise<void> {
    const child = this.frozen;
    this.frozen = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    child.kill("SIGKILL");
    child.kill("SIGCONT");
    await exited;
  }

  /** One TCP connection that never starts TLS; replaced when the broker closes it. */
  private openIdle(): void {
    if (!this.running) return;
    const s = net.connect(this.port, "127.0.0.1");
    this.idle.add(s);
    let connected = false;
    s.on("connect", () => {
      connected = true;
      this.counts.idleOpened++;
    });
    s.on("error", () => undefined);
    s.on("close", () => {
      this.idle.delete(s);
      if (connected && this.running && !this.serverDown) this.counts.idleClosedByBroker++;
      // While the pipeline restarts the port refuses; do not spin.
      if (this.running) setTimeout(() => this.openIdle(), connected ? 0 : 200).unref();
    });
  }

  /** Every second: a 200 KB publish (AWS IoT allows 128 KB), every third time a 100 MiB header. */
  private async oversizeLoop(): Promise<void> {
    for (let i = 0; this.running; i++) {
      this.counts.oversizeAttempts++;
      let client: MqttClient | undefined;
      try {
        client = await mqtt.connectAsync(`mqtts://127.0.0.1:${this.port}`, {
          ...readCredentials(this.pkiDir, ATTACKER),
          clientId: ATTACKER,
          reconnectPeriod: 0,
          connectTimeout: 5_000,
          protocolVersion: 4,
        });
        client.on("error", () => undefined);
        const c = client;
        const closed = new Promise<void>((r) => c.once("close", () => r()));
        if (i % 3 === 2) {
          // A PUBLISH announcing 100 MiB, its body streamed until the broker hangs up.
          const size = 100 * 1024 * 1024;
          const header = Buffer.from([0x32, 0x80, 0x80, 0x80, 0x32]); // QoS 1, 100 MiB
          c.stream.write(header);
          const chunk = Buffer.alloc(1024 * 1024, 0x41);
          for (let sent = 0; sent < size && !c.stream.destroyed; sent += chunk.length) {
            if (!c.stream.write(chunk)) {
              await Promise.race([new Promise((r) => c.stream.once("drain", r)), closed]);
            }
          }
        } else {
          c.publish(
            `SeattleStoreTemp/${ATTACKER}`,
            Buffer.alloc(200 * 1024, 0x42),
            { qos: 1 },
            (err) => {
              if (!err) this.counts.oversizeAcked++;
            },
          );
        }
        await Promise.race([closed, sleep(10_000)]);
        if ((c.stream.destroyed || !c.connected) && !this.serverDown) {
          this.counts.oversizeClosedByBroker++;
        }
      } catch (e) {
        // The pipeline is restarting: the attack waits for it like everyone else.
        if (i === 0) this.log(`oversize publisher: ${(e as Error).message}`);
      } finally {
        client?.end(true);
      }
      await sleep(1_000);
    }
  }
}

/** Every (thing, timestamp) in the delivered telemetry objects, with its count. */
function deliveredRecords(bucketDir: string): Map<string, number> {
  const seen = new Map<string, number>();
  const walk = (dir: string) => {
    if (!fs.existsSync(dir)) return;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (!e.name.endsWith(".tmp")) {
        let body = fs.readFileSync(p);
        if (body[0] === 0x1f && body[1] === 0x8b) body = zlib.gunzipSync(body);
        for (const line of body.toString("utf8").split("\n")) {
          if (!line.startsWith("{")) continue;
          const r = JSON.parse(line) as {
            thing?: unknown;
            timestamp?: unknown;
            topic_thing?: unknown;
          };
          // Telemetry records only: not the analytics windows nor error-action messages.
          if (typeof r.thing !== "string" || typeof r.timestamp !== "number") continue;
          const key = `${r.thing}@${r.timestamp}`;
          seen.set(key, (seen.get(key) ?? 0) + 1);
        }
      }
    }
  };
  walk(bucketDir);
  return seen;
}

function p99(acks: readonly Ack[]): number {
  return percentile(
    acks.map((a) => a.ackedAt - a.sentAt),
    99,
  );
}

export async function run(opts: FigureOptions): Promise<FigureOutcome> {
  const attackMs = opts.quick ? 6_000 : (opts.soakSeconds ?? 600) * 1000;
  const baselineMs = opts.quick ? 3_000 : Math.min(120_000, Math.max(10_000, attackMs / 5));
  // 80 msg/s per device: high, and under AWS IoT's 100/s per connection, which the publishers keep
  // to, so that the backlog of the restart can drain (at exactly 100/s it never would).
  const rate = opts.quick ? 20 : 80;
  const idleSockets = opts.quick ? 50 : 500;
  const stack = "prod";
  const base = readRawStackConfig(stack);
  // prod as it is (least privilege, per-thing topics, its rule, GZIP), with generated certificates
  // (no CSR files are needed locally), one more thing for the oversize publisher, and the seed's
  // JSON lines rather than prod's Parquet, so that every delivered record can be read back.
  const raw: RawConfig = {
    ...base,
    certificateMode: "generated",
    recordFormat: "json",
    partitionByThing: false,
    fleet: [
      ...(base.fleet as unknown[]),
      { group: "Attackers", description: "The soak's oversize publisher", things: [ATTACKER] },
    ],
  };
  const config = parseStackConfig(raw, stack);
  // The ceiling docs/reliability.md documents for this stack's pipeline process (MiB).
  const rssCeilingMiB = ceilingMiB(memoryBudget(config));
  const fleetThings = config.things.map((t) => t.name).filter((t) => t !== ATTACKER);
  const things = config.things.map((t) => t.name);
  const runDir = path.join(opts.stateDir, `soak-${process.pid}`);
  const stateDir = path.join(runDir, "state");
  fs.rmSync(runDir, { recursive: true, force: true });
  const req: ServerRequest = { mode: "pipeline", stack, raw, stateDir, things };

  let fleet: Fleet | undefined;
  let attackers: Attackers | undefined;
  const servers: Server[] = [];
  try {
    // Phase 1, the baseline: the fleet alone.
    opts.log(
      `baseline: ${fleetThings.length} devices × ${rate} msg/s, QoS 1, ${baselineMs / 1000} s, no attackers`,
    );
    const a = await startServer(req);
    servers.push(a);
    fleet = new Fleet(a.url, a.pkiDir, fleetThings, config.telemetryTopic, rate);
    await fleet.connected();
    fleet.run("baseline");
    await sleep(baselineMs);
    await fleet.pause();
    const baselineStop = await stopServer(a);

    // Phase 2: the same fleet, and the attackers; kill -9 halfway, restart on the same port.
    opts.log(
      `attack: ${attackMs / 1000} s with a frozen # subscriber, an oversize publisher, ${idleSockets} idle sockets, kill -9 at ${attackMs / 2000} s`,
    );
    const b = await startServer({ ...req, port: a.port });
    servers.push(b);
    await fleet.connected();
    attackers = new Attackers(b.port, b.pkiDir, idleSockets, opts.log);
    await attackers.start();
    fleet.run("attack");
    await sleep(attackMs / 2);
    const killedAt = nowMs();
    attackers.serverDown = true;
    const killedPeak = await killServer(b);
    const c = await startServer({ ...req, port: b.port });
    servers.push(c);
    while (!fleet.allConnected) await sleep(20);
    const reconnectedAt = nowMs();
    attackers.serverDown = false;
    // The restart is over once the devices' backlog from it has drained to a normal window (and
    // the figure goes on regardless after a quarter of the phase).
    while (fleet.pending > fleetThings.length * 5 && nowMs() - reconnectedAt < attackMs / 4) {
      await sleep(20);
    }
    const caughtUpAt = nowMs();
    opts.log(
      `restarted after kill -9: every device back in ${round((reconnectedAt - killedAt) / 1000)} s, backlog drained after ${round((caughtUpAt - killedAt) / 1000)} s`,
    );
    await attackers.restarted();
    await sleep(attackMs / 2);
    await attackers.stop();
    await fleet.stop();
    const attackStop = await stopServer(c);

    // Acknowledged against delivered, over both phases.
    const delivered = deliveredRecords(path.join(stateDir, "s3", localBucketName(config)));
    let lost = 0;
    for (const key of fleet.acked) if (!delivered.has(key)) lost++;
    let duplicates = 0;
    let notAcked = 0;
    for (const [key, n] of delivered) {
      duplicates += n - 1;
      if (!fleet.acked.has(key)) notAcked++;
    }
    const acked = fleet.acked.size;
    const outside = fleet.acks.attack.filter((x) => x.ackedAt < killedAt || x.sentAt > caughtUpAt);
    const baseP99 = p99(fleet.acks.baseline);
    const attackP99 = p99(fleet.acks.attack);
    const outsideP99 = p99(outside);
    const ratio = outsideP99 / baseP99;
    const attackPeak = Math.max(killedPeak, attackStop.peakRssMiB);
    const guard: GuardStats | undefined = attackStop.guard;
    const a2 = attackers.counts;
    const metrics: Metric[] = [
      { key: "soak.acked", label: "records acknowledged (PUBACK)", value: acked, unit: "" },
      { key: "soak.delivered", label: "of those, delivered to S3", value: acked - lost, unit: "" },
      { key: "soak.lost", label: "acknowledged and not delivered", value: lost, unit: "" },
      {
        key: "soak.duplicates",
        label: "duplicate deliveries (at-least-once)",
        value: duplicates,
        unit: "",
      },
      {
        key: "soak.deliveredNotAcked",
        label: "delivered but never acknowledged (ack lost in the kill)",
        value: notAcked,
        unit: "",
      },
      {
        key: "soak.baseline.ackP99Ms",
        label: "PUBACK latency p99, baseline",
        value: round(baseP99),
        unit: "ms",
      },
      {
        key: "soak.attack.ackP99Ms",
        label: "PUBACK latency p99, under attack (kill -9 included)",
        value: round(attackP99),
        unit: "ms",
      },
      {
        key: "soak.attack.ackP99OutsideRestartMs",
        label: "PUBACK latency p99, under attack, outside the restart",
        value: round(outsideP99),
        unit: "ms",
      },
      {
        key: "soak.attack.p99Ratio",
        label: "p99 under attack / baseline",
        value: round(ratio),
        unit: "×",
      },
      {
        key: "soak.restartSeconds",
        label: "kill -9 to every device reconnected",
        value: round((reconnectedAt - killedAt) / 1000),
        unit: "s",
      },
      {
        key: "soak.restartCaughtUpSeconds",
        label: "kill -9 to the devices' backlog drained",
        value: round((caughtUpAt - killedAt) / 1000),
        unit: "s",
      },
      {
        key: "soak.baseline.peakRssMiB",
        label: "pipeline process peak RSS, baseline",
        value: round(baselineStop.peakRssMiB),
        unit: "MiB",
      },
      {
        key: "soak.attack.peakRssMiB",
        label: "pipeline process peak RSS, under attack",
        value: round(attackPeak),
        unit: "MiB",
      },
      {
        key: "soak.frozenSubscriberDrops",
        label: "messages dropped for frozen subscribers (after the restart)",
        value: guard?.slowConsumerDrops ?? 0,
        unit: "",
      },
      {
        key: "soak.frozenSubscriberDisconnects",
        label: "frozen subscribers cut off after 30 s (after the restart)",
        value: guard?.slowConsumerDisconnects ?? 0,
        unit: "",
      },
      {
        key: "soak.oversizeRefused",
        label: "oversize publishes refused (broker closed the connection)",
        value: a2.oversizeClosedByBroker,
        unit: "",
      },
      {
        key: "soak.idleSocketsClosed",
        label: "idle sockets closed by the broker",
        value: a2.idleClosedByBroker,
        unit: "",
      },
    ];
    return {
      status: "measured",
      params: {
        stack,
        devices: fleetThings.length,
        ratePerDevice: rate,
        qos: 1,
        baselineSeconds: baselineMs / 1000,
        attackSeconds: attackMs / 1000,
        idleSockets,
      },
      metrics,
      targets: [
        target("acknowledged records lost", "soak.lost", "==", 0, lost),
        target(
          "peak RSS under attack (MiB)",
          "soak.attack.peakRssMiB",
          "<",
          rssCeilingMiB,
          attackPeak,
        ),
        target("PUBACK p99 outside the restart / baseline", "soak.attack.p99Ratio", "<", 3, ratio),
      ],
      notes: [
        `${acked} acknowledged, ${acked - lost} of them delivered, ${duplicates} duplicate deliveries, ${notAcked} delivered without an acknowledgement; ${fleet.notAcked} message(s) the devices gave up on or still held at stop (never acknowledged, so not owed).`,
        `Attackers: ${a2.frozenSubscribers} frozen # subscriber(s) (SIGSTOP), ${a2.oversizeAttempts} oversize attempts (${a2.oversizeClosedByBroker} closed by the broker, ${a2.oversizeAcked} acknowledged), ${a2.idleOpened} idle sockets opened (${a2.idleClosedByBroker} closed by the broker).`,
        guard
          ? `The restarted pipeline's guard: ${JSON.stringify(guard)}.`
          : "The restarted pipeline reported no guard counts.",
        `Peak RSS: baseline ${round(baselineStop.peakRssMiB)} MiB; under attack ${round(killedPeak)} MiB before the kill, ${round(attackStop.peakRssMiB)} MiB after the restart (documented ceiling ${rssCeilingMiB} MiB).`,
      ],
    };
  } finally {
    await attackers?.stop().catch(() => undefined);
    await fleet?.stop().catch(() => undefined);
    for (const s of servers) await reap(s.child, 1_000);
    fs.rmSync(runDir, { recursive: true, force: true });
  }
}
