// Figure 6: fleet provisioning by claim. The same fleet, in the same run, first connecting with
// pre-issued certificates (the baseline), then booting with the claim certificate only and
// provisioning itself through the embedded broker: devices provisioned per second, and per device
// the time from opening its first connection to its first acknowledged reading. Then the program:
// what a fleet-provisioning stack registers, and how long it takes to build, next to a stack that
// pre-registers a thousand things.
import * as fs from "node:fs";
import * as path from "node:path";
import mqtt from "mqtt";
import {
  parseStackConfig,
  readRawStackConfig,
  type RawConfig,
  type StackConfig,
} from "../core/stack-config";
import { telemetryTopicFor } from "../core/topics";
import { provisionDevice } from "../device/provisioner";
import { startLocalPipeline, type LocalPipeline } from "../local/pipeline/pipeline";
import type { FigureOptions, FigureOutcome } from "./figure";
import { target, type Metric } from "./report";
import { nowMs, peakRssMiB, percentile, round } from "./stats";

/** Devices in flight at once: the simulator's own provisioning concurrency. */
const CONCURRENCY = 32;

function fleetOf(count: number): RawConfig {
  return {
    fleet: [
      {
        group: "Seattle",
        description: "Things in Seattle",
        attributes: { city: "Seattle" },
        thingPrefix: "store-sensor-seattle",
        count,
      },
    ],
  };
}

function reading(thing: string) {
  return JSON.stringify({
    thing,
    timestamp: Date.now(),
    temperature: 20,
    max_temperature: 21,
    min_temperature: 19,
  });
}

/** Connects with a certificate, publishes one reading at QoS 1, resolves on its PUBACK. */
async function firstReading(
  p: LocalPipeline,
  config: StackConfig,
  thing: string,
  creds: { cert: string; key: string },
): Promise<void> {
  const client = await mqtt.connectAsync(p.url, {
    ...creds,
    ca: p.ca,
    clientId: thing,
    rejectUnauthorized: true,
    reconnectPeriod: 0,
    protocolVersion: 4,
    connectTimeout: 30_000,
  });
  client.on("error", () => undefined);
  try {
    await client.publishAsync(telemetryTopicFor(config.telemetryTopic, thing), reading(thing), {
      qos: 1,
    });
  } finally {
    await client.endAsync(true);
  }
}

interface Phase {
  readonly seconds: number;
  /** Per device: ms from opening its first connection to its first PUBACK. */
  readonly latencies: number[];
  readonly failures: string[];
}

async function phase(things: readonly string[], device: (thing: string) => Promise<void>) {
  const queue = [...things];
  const latencies: number[] = [];
  const failures: string[] = [];
  const started = nowMs();
  const worker = async () => {
    for (let t = queue.shift(); t !== undefined; t = queue.shift()) {
      const t0 = nowMs();
      try {
        await device(t);
        latencies.push(nowMs() - t0);
      } catch (e) {
        failures.push(`${t}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, things.length) }, worker));
  return { seconds: (nowMs() - started) / 1000, latencies, failures } satisfies Phase;
}

function latencyMetrics(prefix: string, label: string, p: Phase): Metric[] {
  return [
    {
      key: `${prefix}P50Ms`,
      label: `${label}: first connect → first PUBACK, p50`,
      value: round(percentile(p.latencies, 50)),
      unit: "ms",
    },
    {
      key: `${prefix}P99Ms`,
      label: `${label}: first connect → first PUBACK, p99`,
      value: round(percentile(p.latencies, 99)),
      unit: "ms",
    },
    {
      key: `${prefix}PerSecond`,
      label: `${label}: devices through per second`,
      value: round(p.latencies.length / p.seconds),
      unit: "/s",
    },
  ];
}

export async function run(opts: FigureOptions): Promise<FigureOutcome> {
  const n = opts.quick ? 50 : 1000;
  const dir = path.join(opts.stateDir, "provisioning");
  // A fresh registry and identities every run, so that every device really provisions.
  fs.rmSync(dir, { recursive: true, force: true });
  const base = { ...readRawStackConfig("fleet"), ...fleetOf(n) };
  const serials = Array.from({ length: n }, (_, i) => String(i + 1));

  // Baseline: the same fleet with certificates issued before the run (not timed).
  const preRegistered = parseStackConfig({ ...base, certificateMode: "generated" }, "bench-pre");
  const things = preRegistered.things.map((t) => t.name);
  let p = await startLocalPipeline(preRegistered, { stateDir: path.join(dir, "pre") });
  opts.log(`baseline: ${n} devices with pre-issued certificates`);
  const pipelineForBaseline = p;
  const baseline = await phase(things, (thing) =>
    firstReading(
      pipelineForBaseline,
      preRegistered,
      thing,
      pipelineForBaseline.credentialsFor(thing),
    ),
  );
  await p.stop();

  const fleet = parseStackConfig(
    {
      ...base,
      provisioning: { ...(base.provisioning as object), allowedSerials: serials },
    },
    "bench-fleet",
  );
  p = await startLocalPipeline(fleet, { stateDir: path.join(dir, "fleet") });
  const claim = { ...p.claimCredentials(), ca: p.ca };
  opts.log(`provisioning: ${n} devices with the claim certificate (CSR, hook on)`);
  const pipelineForFleet = p;
  const prefix = fleet.provisioning?.thingPrefix ?? "";
  const provisioned = await phase(things, async (thing) => {
    const id = await provisionDevice({
      url: pipelineForFleet.url,
      claim,
      templateName: fleet.provisioning?.templateName ?? "",
      serial: thing.slice(prefix.length),
      timeoutMs: 30_000,
    });
    await firstReading(pipelineForFleet, fleet, id.thingName, {
      cert: id.certificatePem,
      key: id.privateKeyPem,
    });
  });
  const registered = pipelineForFleet.provisioning?.stats.thingsRegistered ?? 0;
  await p.stop();
  for (const f of [...baseline.failures, ...provisioned.failures].slice(0, 5))
    opts.log(`failed ${f}`);
  if (registered !== provisioned.latencies.length) {
    throw new Error(
      `${provisioned.latencies.length} devices published but ${registered} registered`,
    );
  }

  // The program: a fleet-provisioning stack of any size next to a pre-registered 1,000-thing one.
  const { runProgram } = await import("../tools/mock-program");
  const build = async (overrides: RawConfig) => {
    const t = nowMs();
    const r = await runProgram("fleet", { overrides });
    return { seconds: (nowMs() - t) / 1000, resources: r.resources.length };
  };
  const stackThings = opts.quick ? 50 : 1000;
  const bigFleet = stackThings * 10;
  await build(fleetOf(5)); // warm: the first build also loads @pulumi/aws's modules
  const fleet1k = await build(fleetOf(stackThings));
  const fleet10k = await build(fleetOf(bigFleet));
  const pre1k = await build({ ...fleetOf(stackThings), certificateMode: "generated" });
  opts.log(
    `program: fleet-provisioning ${fleet1k.resources} resources (${round(fleet1k.seconds)} s), pre-registered ${stackThings} things ${pre1k.resources} (${round(pre1k.seconds)} s)`,
  );

  const failures = baseline.failures.length + provisioned.failures.length;
  const metrics: Metric[] = [
    ...latencyMetrics("preIssued", "pre-issued certificates (baseline)", baseline),
    ...latencyMetrics("provisioned", "provisioning by claim", provisioned),
    {
      key: "failures",
      label: "devices that failed (both phases)",
      value: failures,
      unit: "",
    },
    {
      key: "fleetStackResources",
      label: `fleet-provisioning stack, ${stackThings} devices: resources`,
      value: fleet1k.resources,
      unit: "",
    },
    {
      key: "fleetStack10kResources",
      label: `fleet-provisioning stack, ${bigFleet} devices: resources`,
      value: fleet10k.resources,
      unit: "",
    },
    {
      key: "preRegisteredResources",
      label: `pre-registered stack, ${stackThings} things: resources`,
      value: pre1k.resources,
      unit: "",
    },
    {
      key: "fleetStackBuildSeconds",
      label: `fleet-provisioning stack, ${stackThings} devices: build under mocks`,
      value: round(fleet1k.seconds),
      unit: "s",
    },
    {
      key: "preRegisteredBuildSeconds",
      label: `pre-registered stack, ${stackThings} things: build under mocks`,
      value: round(pre1k.seconds),
      unit: "s",
    },
    { key: "peakRssMiB", label: "peak RSS", value: round(peakRssMiB()), unit: "MiB" },
  ];
  return {
    status: "measured",
    params: {
      devices: n,
      concurrency: CONCURRENCY,
      certificateRequest: "CreateCertificateFromCsr (P-256)",
      hook: "on (every serial allowed)",
    },
    metrics,
    targets: [
      target("every device provisioned and published", "failures", "==", 0, failures),
      target(
        `stack size independent of the fleet (${bigFleet} devices vs ${stackThings})`,
        "fleetStack10kResources",
        "==",
        fleet1k.resources,
        fleet10k.resources,
      ),
      target(
        `fewer resources than pre-registering ${stackThings} things`,
        "fleetStackResources",
        "<",
        pre1k.resources,
        fleet1k.resources,
      ),
    ],
    notes: [
      "Broker, pipeline and devices share this process and its cores; both phases run the same way, one after the other.",
      "A provisioned device opens two mutual-TLS connections (the claim's, then its own), makes a P-256 key and CSR, and waits for the CA's signature and the registry's fsync; a pre-issued one opens one connection.",
      "The program builds are timed after one warm-up build (module loading is not counted); the fleet-provisioning stack registers the same resources whatever the fleet's size.",
    ],
  };
}
