// Figure 2: a fleet of simulated devices, each on its own mutual-TLS connection with its own
// certificate from the local CA — connect time per connection (p50, p99), failures, sustained
// acknowledged messages per second at 1 message per second per device, and the peak RSS of the
// simulator and of the broker, each in a process of its own so that the two are separable.
//
// No baseline: the targets are absolute (no failures; the acknowledged rate should equal the
// offered rate of one message per second per device). The broker runs without hooks, as in
// figure 1, so the figure measures connection handling, not the policy or the delivery.
import * as path from "node:path";
import { loadStackConfig } from "../core/stack-config";
import { ensurePki } from "../local/ca";
import type { BrokerReply } from "./broker-server";
import type { FigureOptions, FigureOutcome } from "./figure";
import type { SimRequest, SimResult } from "./fleet-sim";
import { forkTs, nextMessage, reap } from "./ipc";
import { target, type Metric } from "./report";
import { nowMs, percentile, round } from "./stats";

export async function run(opts: FigureOptions): Promise<FigureOutcome> {
  const devices = opts.quick ? 50 : 1000;
  const rate = 1;
  const concurrency = opts.quick ? 25 : 100;
  const warmupMs = opts.quick ? 1_000 : 5_000;
  const sustainMs = opts.quick ? 2_000 : 30_000;
  const things = Array.from(
    { length: devices },
    (_, i) => `bench-fleet-${String(i + 1).padStart(4, "0")}`,
  );
  const pkiDir = path.join(opts.stateDir, "pki");

  // Certificates are kept under .local/bench/pki and reused: only the first run pays for them.
  let t = nowMs();
  const pki = await ensurePki(pkiDir, things);
  const pkiSeconds = (nowMs() - t) / 1000;
  opts.log(`local CA: ${pki.issued} certificate(s) issued in ${round(pkiSeconds)} s`);

  const broker = forkTs("broker-server.ts", [pkiDir]);
  let sim: ReturnType<typeof forkTs> | undefined;
  try {
    const { url } = await nextMessage<Extract<BrokerReply, { type: "listening" }>>(
      broker,
      "listening",
    );
    const req: SimRequest = {
      url,
      pkiDir,
      things,
      topicTemplate: loadStackConfig("prod").telemetryTopic,
      concurrency,
      connectTimeoutMs: 30_000,
      rate,
      warmupMs,
      sustainMs,
    };
    opts.log(
      `${devices} devices, ${concurrency} connecting at once, then ${rate} msg/s each for ${(warmupMs + sustainMs) / 1000} s`,
    );
    t = nowMs();
    sim = forkTs("fleet-sim.ts", [JSON.stringify(req)]);
    const r = await nextMessage<SimResult>(sim, "result", 60_000 + warmupMs + sustainMs * 2);
    broker.send("stop");
    const b = await nextMessage<Extract<BrokerReply, { type: "stopped" }>>(broker, "stopped");

    const ackedPerSec = r.ackedInWindow / r.windowSeconds;
    const offered = devices * rate;
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
        key: "brokerPeakRssMiB",
        label: "broker peak RSS",
        value: round(b.peakRssMiB),
        unit: "MiB",
      },
    ];
    const notes = [
      `Certificates: ${pki.issued} issued this run in ${round(pkiSeconds)} s (0 when reused from ${path.relative(process.cwd(), pkiDir)}).`,
      `The broker counted ${b.connects} connections and ${b.refusals} refusals; ${r.acked} of ${r.submitted} messages were acknowledged.`,
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
      ],
      notes,
    };
  } finally {
    await Promise.all([reap(sim), reap(broker)]);
  }
}
