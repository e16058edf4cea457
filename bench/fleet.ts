// Figure 2: a fleet of simulated devices, each on its own mutual-TLS connection with its own
// certificate from the local CA — connect time per connection (p50, p99), failures, sustained
// acknowledged messages per second at 1 message per second per device, and the memory per
// connected device of the simulator and of the broker, each in a process of its own so that the
// two are separable.
//
// Targets: no failures; the acknowledged rate equals the offered rate of one message per second
// per device; the memory per device on each side at most 1.25 × what Node's TLS alone holds per
// connection (the floor, bench/tls-floor.ts, measured in the same run), at the peak and once the
// load is over. The broker runs without hooks, as in figure 1, so the figure measures connection
// handling, not the policy or the delivery.
import * as os from "node:os";
import * as path from "node:path";
import { shownPath } from "../core/display";
import { loadStackConfig } from "../core/stack-config";
import { ensurePki } from "../local/identity/ca";
import {
  FD_MARGIN,
  descriptorsNeeded,
  openFilesShortfall,
  readOpenFilesLimit,
} from "../simulator/fd-limit";
import type { BrokerCommand, BrokerReply } from "./broker-server";
import type { FigureOptions, FigureOutcome } from "./figure";
import type { SimNotice, SimRequest, SimResult } from "./fleet-sim";
import type { MemorySample } from "./memory";
import { forkTs, nextMessage, reap } from "./ipc";
import type { FloorClientRequest, FloorReply } from "./tls-floor";
import { target, type Metric } from "./report";
import { nowMs, percentile, round } from "./stats";

/**
 * The most memory each side (simulator, broker) may hold per connected device, as a multiple of
 * the TLS floor on its side (issue 28): at the peak, and settled once the load is over.
 */
const MAX_VS_FLOOR = 1.25;

/** Thing names of the bench fleet: bench-fleet-00001 ... */
function fleetThings(devices: number): string[] {
  return Array.from({ length: devices }, (_, i) => `bench-fleet-${String(i + 1).padStart(5, "0")}`);
}

/**
 * Connections of the TLS floor (bench/tls-floor.ts): enough that fixed costs vanish in the
 * division, few enough to add seconds rather than the fleet's minute.
 */
const FLOOR_CONNECTIONS = 2_000;

interface Floor {
  readonly connections: number;
  readonly failures: number;
  readonly clientKiB: number;
  readonly serverKiB: number;
}

/** What Node's TLS alone holds per connection, client (own certificate) and server, measured alike. */
async function measureFloor(
  pkiDir: string,
  things: readonly string[],
  concurrency: number,
): Promise<Floor> {
  const server = forkTs("tls-floor.ts", ["server", pkiDir]);
  let client: ReturnType<typeof forkTs> | undefined;
  try {
    const listening = await nextMessage<Extract<FloorReply, { type: "listening" }>>(
      server,
      "listening",
    );
    client = forkTs("tls-floor.ts", ["client"]);
    const req: FloorClientRequest = { port: listening.port, pkiDir, things, concurrency };
    client.send(req);
    const connected = await nextMessage<Extract<FloorReply, { type: "connected" }>>(
      client,
      "connected",
      60_000 + things.length * 20,
    );
    const stopped = (child: NonNullable<typeof client>) => {
      const reply = nextMessage<Extract<FloorReply, { type: "stopped" }>>(child, "stopped");
      child.send("stop");
      return reply;
    };
    const c = await stopped(client);
    const s = await stopped(server);
    return {
      connections: connected.connected,
      failures: connected.failures,
      clientKiB: kibPerDevice(c.peakRssMiB, connected.rssBeforeMiB, connected.connected),
      serverKiB: kibPerDevice(s.peakRssMiB, listening.rssBeforeMiB, s.connections),
    };
  } finally {
    await Promise.all([reap(client), reap(server)]);
  }
}

/** KiB per device: what the process grew by from before its first device to its peak. */
function kibPerDevice(peakMiB: number, beforeMiB: number, devices: number): number {
  return devices > 0 ? ((peakMiB - beforeMiB) * 1024) / devices : Number.NaN;
}

/** One side's memory per device at its peak, once connected and settled, and against its floor. */
interface SideMemory {
  readonly peakKiB: number;
  readonly connectedKiB: number;
  readonly settledKiB: number;
  readonly peakVsFloor: number;
  readonly connectedVsFloor: number;
  readonly settledVsFloor: number;
}

function sideMemory(
  beforeMiB: number,
  devices: number,
  floorKiB: number,
  at: { peakMiB: number; connectedMiB: number; settledMiB: number },
): SideMemory {
  const peakKiB = kibPerDevice(at.peakMiB, beforeMiB, devices);
  const connectedKiB = kibPerDevice(at.connectedMiB, beforeMiB, devices);
  const settledKiB = kibPerDevice(at.settledMiB, beforeMiB, devices);
  return {
    peakKiB,
    connectedKiB,
    settledKiB,
    peakVsFloor: peakKiB / floorKiB,
    connectedVsFloor: connectedKiB / floorKiB,
    settledVsFloor: settledKiB / floorKiB,
  };
}

/** `<side>VsFloor`, `<side>ConnectedVsFloor`, `<side>SettledVsFloor`: KiB per device ÷ the floor. */
function vsFloorMetrics(
  side: "simulator" | "broker",
  floorSide: "client" | "server",
  m: SideMemory,
): Metric[] {
  const of = `÷ the TLS ${floorSide} floor`;
  return [
    {
      key: `${side}VsFloor`,
      label: `${side} KiB/device ${of}, peak`,
      value: round(m.peakVsFloor),
      unit: "×",
    },
    {
      key: `${side}ConnectedVsFloor`,
      label: `${side} KiB/device ${of}, once all connected`,
      value: round(m.connectedVsFloor),
      unit: "×",
    },
    {
      key: `${side}SettledVsFloor`,
      label: `${side} KiB/device ${of}, settled after the load`,
      value: round(m.settledVsFloor),
      unit: "×",
    },
  ];
}

function split(s: MemorySample): string {
  return `RSS ${round(s.rssMiB)} MiB: V8 heap ${round(s.heapTotalMiB)} MiB (${round(s.heapUsedMiB)} used) + outside the heap ${round(s.rssMiB - s.heapTotalMiB)} MiB, of which Node's external ${round(s.externalMiB)} MiB (Buffers ${round(s.arrayBuffersMiB)})`;
}

export async function run(opts: FigureOptions): Promise<FigureOutcome> {
  const devices = opts.quick ? 50 : 10_000;
  const rate = 1;
  const concurrency = opts.quick ? 25 : 100;
  const warmupMs = opts.quick ? 1_000 : 5_000;
  const sustainMs = opts.quick ? 2_000 : 30_000;
  // Long enough for the event loops to go quiet after the last acknowledgement; short enough that
  // the figure still shows what the load left (V8's memory reducer waits about 8 s).
  const settleMs = opts.quick ? 200 : 2_000;

  // Each process holds one descriptor per device: refuse here, not with EMFILE half-way.
  const limit = readOpenFilesLimit();
  const shortfall = limit && openFilesShortfall(devices, false, limit, false);
  if (shortfall) {
    return {
      status: "not measured",
      reason: `the simulator and the broker each hold a connection per device: ${shortfall}`,
      params: { devices },
      metrics: [],
      targets: [],
      notes: [],
    };
  }

  const things = fleetThings(devices);
  const pkiDir = path.join(opts.stateDir, "pki");

  // Certificates are kept under .local/bench/pki and reused: only the first run pays for them.
  const t = nowMs();
  const pki = await ensurePki(pkiDir, things);
  const pkiSeconds = (nowMs() - t) / 1000;
  opts.log(`local CA: ${pki.issued} certificate(s) issued in ${round(pkiSeconds)} s`);

  // The broker's connection caps default to 2,048 per address: the whole fleet comes from one.
  const limits = { maxConnections: devices + 64, maxConnectionsPerAddress: devices + 64 };
  const broker = forkTs("broker-server.ts", [pkiDir, JSON.stringify(limits)]);
  const command = (c: BrokerCommand) => broker.send(c);
  let sim: ReturnType<typeof forkTs> | undefined;
  try {
    const listening = await nextMessage<Extract<BrokerReply, { type: "listening" }>>(
      broker,
      "listening",
    );
    const req: SimRequest = {
      url: listening.url,
      pkiDir,
      things,
      topicTemplate: loadStackConfig("prod").telemetryTopic,
      concurrency,
      connectTimeoutMs: 30_000,
      rate,
      warmupMs,
      sustainMs,
      settleMs,
    };
    opts.log(
      `${devices} devices, ${concurrency} connecting at once, then ${rate} msg/s each for ${(warmupMs + sustainMs) / 1000} s`,
    );
    sim = forkTs("fleet-sim.ts", []);
    const simulator = sim;
    simulator.send(req);
    // The broker's memory is sampled while devices connect and publish, not once they leave.
    command("sample");
    let brokerSettled: MemorySample | undefined;
    simulator.on("message", (m: SimNotice) => {
      if (m.type === "publishing") command("publishing");
      if (m.type === "settled") {
        // The broker samples while every device is still connected; then the simulator goes on.
        void nextMessage<Extract<BrokerReply, { type: "settled" }>>(broker, "settled").then(
          (reply) => {
            brokerSettled = reply.settled;
            simulator.send("go");
          },
          () => simulator.send("go"),
        );
        command("settled");
      }
      if (m.type === "stopping") command("hold");
    });
    // Connecting takes a few milliseconds of CPU per device on each side.
    const connectBudgetMs = 60_000 + devices * 20;
    const r = await nextMessage<SimResult>(
      sim,
      "result",
      connectBudgetMs + warmupMs + sustainMs * 2 + settleMs,
    );
    command("stop");
    const b = await nextMessage<Extract<BrokerReply, { type: "stopped" }>>(broker, "stopped");
    await Promise.all([reap(sim), reap(broker)]);
    // The floor runs once the fleet's processes are gone, on the same certificates.
    opts.log(`TLS floor: ${Math.min(devices, FLOOR_CONNECTIONS)} bare TLS connections`);
    const floor = await measureFloor(
      pkiDir,
      things.slice(0, Math.min(devices, FLOOR_CONNECTIONS)),
      concurrency,
    );

    const ackedPerSec = r.ackedInWindow / r.windowSeconds;
    const offered = devices * rate;
    // Each side at three moments: its peak, once every device had connected (before the first
    // publish), and settled after the load; each also as a multiple of the floor on its side.
    const simMem = sideMemory(r.rssBeforeMiB, r.connected, floor.clientKiB, {
      peakMiB: r.peakRssMiB,
      connectedMiB: r.atConnected.rssMiB,
      settledMiB: r.settled.rssMiB,
    });
    const brokerMem = sideMemory(listening.rssBeforeMiB, r.connected, floor.serverKiB, {
      peakMiB: b.peakRssMiB,
      connectedMiB: b.atConnected.rssMiB,
      settledMiB: brokerSettled?.rssMiB ?? Number.NaN,
    });
    const metrics: Metric[] = [
      { key: "devices", label: "devices (one mTLS connection each)", value: devices, unit: "" },
      {
        key: "connectAllSeconds",
        label: "time to connect all",
        value: round(r.connectAllMs / 1000),
        unit: "s",
      },
      {
        key: "connectP50Ms",
        label: "connect per connection p50",
        value: round(percentile(r.connectMs, 50)),
        unit: "ms",
      },
      {
        key: "connectP99Ms",
        label: "connect per connection p99",
        value: round(percentile(r.connectMs, 99)),
        unit: "ms",
      },
      { key: "connectFailures", label: "connection failures", value: r.connectFailures, unit: "" },
      {
        key: "ackedMsgPerSec",
        label: `sustained acked msg/s (offered ${offered})`,
        value: round(ackedPerSec),
        unit: "msg/s",
      },
      {
        key: "ackedRatio",
        label: "acked / offered",
        value: round(ackedPerSec / offered),
        unit: "×",
      },
      { key: "notAcked", label: "messages not acknowledged", value: r.notAcked, unit: "" },
      {
        key: "simulatorPeakRssMiB",
        label: "simulator peak RSS",
        value: round(r.peakRssMiB),
        unit: "MiB",
      },
      {
        key: "simulatorKiBPerDevice",
        label: "simulator memory per connected device, peak",
        value: round(simMem.peakKiB),
        unit: "KiB",
      },
      {
        key: "simulatorConnectedKiBPerDevice",
        label: "simulator memory per device once all connected",
        value: round(simMem.connectedKiB),
        unit: "KiB",
      },
      {
        key: "simulatorSettledKiBPerDevice",
        label: "simulator memory per device settled after the load",
        value: round(simMem.settledKiB),
        unit: "KiB",
      },
      {
        key: "brokerPeakRssMiB",
        label: "broker peak RSS",
        value: round(b.peakRssMiB),
        unit: "MiB",
      },
      {
        key: "brokerKiBPerDevice",
        label: "broker memory per connected device, peak",
        value: round(brokerMem.peakKiB),
        unit: "KiB",
      },
      {
        key: "brokerConnectedKiBPerDevice",
        label: "broker memory per device once all connected",
        value: round(brokerMem.connectedKiB),
        unit: "KiB",
      },
      {
        key: "brokerSettledKiBPerDevice",
        label: "broker memory per device settled after the load",
        value: round(brokerMem.settledKiB),
        unit: "KiB",
      },
      {
        key: "floor.tlsClientKiBPerConnection",
        label: "floor: bare Node TLS client, own certificate, per connection",
        value: round(floor.clientKiB),
        unit: "KiB",
      },
      {
        key: "floor.tlsServerKiBPerConnection",
        label: "floor: bare Node mutual-TLS server, per connection",
        value: round(floor.serverKiB),
        unit: "KiB",
      },
      ...vsFloorMetrics("simulator", "client", simMem),
      ...vsFloorMetrics("broker", "server", brokerMem),
    ];
    const notes = [
      `Memory per connected device = (peak RSS − RSS before the first device) ÷ devices connected. The simulator's "before" is taken once its code is loaded, before it reads any device's credentials or makes any per-device object (${round(r.rssBeforeMiB)} MiB); the broker's once it listens (${round(listening.rssBeforeMiB)} MiB). Peak RSS is the kernel's high-water mark (VmHWM).`,
      `Once every device had connected, before the first publish: simulator ${round(simMem.connectedKiB)} KiB per device (${split(r.atConnected)}), broker ${round(brokerMem.connectedKiB)} KiB per device (${split(b.atConnected)}). Publishing adds the messages in flight and the garbage they leave until V8 collects it.`,
      `Settled, ${settleMs / 1000} s after the last acknowledgement with every device still connected: simulator ${round(simMem.settledKiB)} KiB per device (${split(r.settled)}), broker ${round(brokerMem.settledKiB)} KiB per device (${brokerSettled ? split(brokerSettled) : "not sampled"}).`,
      `Against the floor (KiB per device ÷ the floor's KiB per connection on the same side; the targets are at most ${MAX_VS_FLOOR}): simulator ${round(simMem.peakVsFloor)} at the peak, ${round(simMem.connectedVsFloor)} once connected, ${round(simMem.settledVsFloor)} settled; broker ${round(brokerMem.peakVsFloor)}, ${round(brokerMem.connectedVsFloor)} and ${round(brokerMem.settledVsFloor)}.`,
      `Simulator at its highest sampled RSS, all devices connected: ${split(r.atPeak)}.`,
      `Broker at its highest sampled RSS: ${split(b.atPeak)}.`,
      `CPU while publishing (${round(r.publishSeconds)} s, user + system, all threads): simulator ${round(r.publishCpuSeconds)} s (${round((r.publishCpuSeconds * 1e6) / Math.max(1, r.acked))} µs per acknowledged message), broker ${round(b.cpuSeconds)} s (${round((b.cpuSeconds * 1e6) / Math.max(1, b.publishesSampled))} µs per publish); the machine has ${os.availableParallelism()} cores, load average ${round(os.loadavg()[0])} at the end.`,
      `Floor: ${floor.connections} TLS connections${floor.failures > 0 ? ` (${floor.failures} failed)` : ""}, each with its device's own key and certificate, between two processes that do nothing else (bench/tls-floor.ts), measured the same way; what the simulator and the broker hold beyond it is MQTT (mqtt.js and the Publisher; aedes and the connection guard) and garbage not yet collected.`,
      `Certificates: ${pki.issued} issued this run in ${round(pkiSeconds)} s (0 when reused from ${shownPath(pkiDir)}).`,
      `The broker counted ${b.connects} connections and ${b.refusals} refusals; ${r.acked} of ${r.submitted} messages were acknowledged.`,
      limit
        ? `Open files: each of the two processes needs one per device plus ${FD_MARGIN} (${descriptorsNeeded(devices, false)}), and may open ${limit.soft} (Node raises its soft limit to the hard one, ${limit.hard}).`
        : "Open files: the limit could not be read on this platform; not checked.",
    ];
    if (r.firstFailure) notes.push(`First connection failure: ${r.firstFailure}`);
    return {
      status: "measured",
      params: {
        devices,
        concurrency,
        ratePerDevice: rate,
        qos: 1,
        warmupSeconds: warmupMs / 1000,
        sustainSeconds: sustainMs / 1000,
        certificate: "EC P-256",
      },
      metrics,
      targets: [
        target("connection failures", "connectFailures", "==", 0, r.connectFailures),
        target("acked / offered", "ackedRatio", ">=", 0.99, ackedPerSec / offered),
        target(
          "simulator KiB/device / floor, peak",
          "simulatorVsFloor",
          "<=",
          MAX_VS_FLOOR,
          simMem.peakVsFloor,
        ),
        target(
          "simulator KiB/device / floor, settled",
          "simulatorSettledVsFloor",
          "<=",
          MAX_VS_FLOOR,
          simMem.settledVsFloor,
        ),
        target(
          "broker KiB/device / floor, peak",
          "brokerVsFloor",
          "<=",
          MAX_VS_FLOOR,
          brokerMem.peakVsFloor,
        ),
        target(
          "broker KiB/device / floor, settled",
          "brokerSettledVsFloor",
          "<=",
          MAX_VS_FLOOR,
          brokerMem.settledVsFloor,
        ),
      ],
      notes,
    };
  } finally {
    await Promise.all([reap(sim), reap(broker)]);
  }
}
