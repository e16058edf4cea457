// `npm run simulate`: runs a fleet of devices, each a Publisher fed by a data source, against the
// embedded local pipeline, an MQTT endpoint or a deployed AWS stack, then prints what happened.
// It sits above device/ (the client side) and local/ (the embedded pipeline), which know nothing
// of each other.
import * as path from "node:path";
import { EnvironmentError, UsageError } from "../core/errors";
import { BASIC_INGEST_PREFIX } from "../core/iot-limits";
import { PROJECT_DIR } from "../core/project";
import { telemetryTopicFor } from "../core/topics";
import { loadPlan } from "../core/plan";
import type { StackConfig } from "../core/stack-config";
import type { LocalPipeline } from "../local/pipeline/pipeline";
import type { DashboardServer, LocalDashboard } from "../local/dashboard";
import { SyntheticSource } from "../device/generator";
import { Publisher, type PublisherStats, type PublishOutcome } from "../device/publisher";
import { loadWeatherCsv, ReplaySource, SEATTLE_WEATHER_CSV } from "../device/replay";
import type { TelemetrySource } from "../device/source";
import { printMonitoring } from "./monitoring-summary";
import { checkOpenFilesLimit } from "./fd-limit";
import { trustOnce } from "./shared-trust";
import { DEFAULT_DURATION_S, type Output, type SimulateOptions } from "./options";
import { identityDirFor, provisionFleet, provisioningLines } from "./provision";
import {
  fileCredentials,
  readAwsOutputs,
  readAwsProvisioningOutputs,
  readRunFile,
  removeRunFile,
  runFilePath,
  writeRunFile,
  type DeviceCredentials,
  type RunFile,
} from "./targets";

interface Device {
  readonly thing: string;
  readonly topic: string;
  readonly source: TelemetrySource;
  readonly publisher: Publisher;
  generated: number;
  exhausted: boolean;
}

function total(devices: readonly Device[], key: keyof Omit<PublisherStats, "invalidByKind">) {
  return devices.reduce((n, d) => n + d.publisher.stats[key], 0);
}

function fmtRate(n: number, ms: number): string {
  return ms <= 0 ? "0.0" : ((n * 1000) / ms).toFixed(1);
}

function runningSimulate(stateDir: string, stack: string): RunFile | undefined {
  try {
    return readRunFile(stateDir, stack);
  } catch {
    return undefined; // none, or its process is gone
  }
}

/** The probe's topic: another thing's telemetry topic, or a sub-topic when there is no {thing}. */
export function probeTopic(template: string): string {
  return template.includes("{thing}")
    ? telemetryTopicFor(template, "probe-outside")
    : `${template}/probe`;
}

function pickThings(config: StackConfig, devices: number | undefined): string[] {
  const all = config.things.map((t) => t.name);
  const n = devices ?? all.length;
  if (n > all.length) {
    throw new UsageError(
      `--devices ${n}: stack ${config.stack}'s fleet has ${all.length} thing(s) (${all.slice(0, 3).join(", ")}${all.length > 3 ? ", ..." : ""}); use at most ${all.length} or a stack with a larger fleet`,
    );
  }
  return all.slice(0, n);
}

function makeSources(
  opts: SimulateOptions,
  things: readonly string[],
  out: Output,
): Map<string, TelemetrySource> {
  const sources = new Map<string, TelemetrySource>();
  if (opts.source === "synthetic") {
    for (const thing of things) {
      sources.set(
        thing,
        new SyntheticSource({ thing, seed: opts.seed, speedup: opts.speedup ?? 1 }),
      );
    }
    return sources;
  }
  const file = opts.csv ?? SEATTLE_WEATHER_CSV;
  const { days, problems } = loadWeatherCsv(file);
  for (const p of problems.slice(0, 10)) {
    out.line(`replay: ${path.basename(file)} line ${p.line} skipped: ${p.message}`);
  }
  if (problems.length > 10) out.line(`replay: ... and ${problems.length - 10} more rows skipped`);
  out.line(
    `replay: ${days.length} day(s) from ${path.basename(file)}, ${problems.length} malformed row(s) skipped, ${opts.speedup ?? 3600}x time compression`,
  );
  for (const thing of things) {
    sources.set(thing, new ReplaySource({ thing, days, speedup: opts.speedup ?? 3600 }));
  }
  return sources;
}

/** Runs the simulation; resolves with the process exit code. Aborting `signal` stops it early. */
export async function simulate(
  opts: SimulateOptions,
  out: Output,
  signal?: AbortSignal,
): Promise<number> {
  const plan = loadPlan(opts.stack);
  const config = plan.config;
  checkProvisioning(opts, config);
  let things = pickThings(config, opts.devices);
  const t = opts.target;
  // A descriptor per device, two with the embedded broker in this process: a fleet too large for
  // `ulimit -n` is refused here, before anything starts, not with EMFILE half-way through.
  checkOpenFilesLimit(things.length, t.kind === "embedded");
  // Basic Ingest: the same topic behind $aws/rules/<rule>/, which reaches that rule and no
  // subscriber (iot-basic-ingest.html); the rule sees the topic without the prefix.
  const basicIngest = opts.basicIngest === true || config.basicIngest;
  const template =
    (basicIngest ? `${BASIC_INGEST_PREFIX}${config.rule.name}/` : "") +
    (opts.topic ?? config.telemetryTopic);
  if (
    basicIngest &&
    !config.basicIngest &&
    t.kind !== "embedded" &&
    config.policy.mode === "least-privilege"
  ) {
    out.line(
      `note: stack ${config.stack} does not set basicIngest, so its deployed least-privilege policy grants the plain topic only; set ${"iot-pipeline:basicIngest"} true and pulumi up first`,
    );
  }
  const sources = makeSources(opts, things, out);

  let pipeline: LocalPipeline | undefined;
  let dashboard: LocalDashboard | undefined;
  let url: string;
  let credentials: Map<string, DeviceCredentials>;
  let runFile: string | undefined;
  if (t.kind === "embedded") {
    // Two pipelines of one stack would share its delivery journal and buckets: refuse the second.
    const other = runningSimulate(opts.stateDir, config.stack);
    if (other) {
      throw new UsageError(
        `the embedded pipeline of stack ${config.stack} is already running (pid ${other.pid}, ${other.url}); stop it first, or use another --state-dir`,
      );
    }
    // The page's port first: a busy one is refused before the pipeline opens its journal.
    let page: DashboardServer | undefined;
    if (opts.dashboard !== undefined) {
      const { DashboardServer } = await import("../local/dashboard");
      page = await DashboardServer.start({ port: opts.dashboard.port, log: (l) => out.line(l) });
    }
    // Loaded only for the embedded target: --endpoint and --aws runs need no broker or local CA.
    const { startLocalPipeline } = await import("../local/pipeline/pipeline");
    // --basic-ingest on a stack that does not set it: the local policy grants it for this run.
    const runPlan =
      basicIngest && !config.basicIngest
        ? { ...plan, config: { ...config, basicIngest: true } }
        : plan;
    pipeline = await startLocalPipeline(runPlan, {
      port: t.port,
      stateDir: opts.stateDir,
      timeScale: opts.fast ? 60 : 1,
      log: (l) => out.line(l),
    }).catch(async (e: unknown) => {
      await page?.close();
      throw e;
    });
    if (page !== undefined) {
      const { attachDashboard } = await import("../local/dashboard");
      dashboard = attachDashboard(page, pipeline, {
        things,
        timeScale: opts.fast ? 60 : 1,
        log: (l) => out.line(l),
      });
    }
    url = pipeline.url;
    const p = pipeline;
    credentials =
      opts.provision === undefined
        ? new Map(things.map((th) => [th, p.credentialsFor(th)]))
        : new Map();
    runFile = runFilePath(opts.stateDir, config.stack);
    writeRunFile(runFile, {
      pid: process.pid,
      stack: config.stack,
      url,
      port: pipeline.port,
      stateDir: opts.stateDir,
      startedAt: new Date().toISOString(),
    });
    out.line(
      `embedded pipeline of stack ${config.stack} (policy ${config.policy.mode}) on ${url}; watch it with: npm run subscribe -- --stack ${config.stack}`,
    );
    if (dashboard !== undefined) {
      out.line(`dashboard: ${dashboard.url} (live; --no-dashboard turns it off)`);
    }
  } else if (t.kind === "endpoint") {
    url = `mqtts://${t.host}:${t.port}`;
    credentials = fileCredentials(things, t.cert, t.key, t.ca);
  } else if (opts.provision === undefined) {
    const aws = readAwsOutputs(config.stack, things, t.keyDir, PROJECT_DIR);
    url = `mqtts://${aws.endpoint}:8883`;
    credentials = aws.credentials;
  } else {
    url = "";
    credentials = new Map();
  }

  let stopped = false;
  const stopPipeline = async () => {
    if (stopped || !pipeline) return;
    stopped = true;
    await pipeline.stop();
    // The page's last sample: the figures once everything is delivered.
    dashboard?.feed.finish();
    if (runFile) removeRunFile(runFile);
  };
  let provisioning: string[] | undefined;
  let provisioningFailed = false;
  try {
    if (opts.provision !== undefined) {
      // Each device boots with the claim certificate only and provisions itself (or reuses the
      // identity an earlier run stored); only the provisioned ones publish.
      const aws =
        t.kind === "aws" ? readAwsProvisioningOutputs(config.stack, PROJECT_DIR) : undefined;
      if (aws !== undefined) url = `mqtts://${aws.endpoint}:8883`;
      const claim = aws?.claim ?? {
        ...(pipeline as LocalPipeline).claimCredentials(),
        ca: (pipeline as LocalPipeline).ca,
      };
      out.line(
        `provisioning: ${things.length} device(s) with the claim certificate, template ${aws?.templateName ?? config.provisioning?.templateName}, ${opts.provision === "csr" ? "CreateCertificateFromCsr (keys stay on the devices)" : "CreateKeysAndCertificate"}`,
      );
      const result = await provisionFleet({
        config,
        things,
        url,
        claim,
        identityDir: identityDirFor(
          opts.stateDir,
          t.kind === "aws" ? "aws" : "local",
          config.stack,
        ),
        certificateRequest: opts.provision,
        protocol: opts.protocol,
        out,
        signal,
      });
      provisioning = provisioningLines(result);
      for (const l of provisioning) out.line(l);
      provisioningFailed = result.failed.length > 0;
      credentials = result.credentials;
      things = [...result.credentials.keys()];
      if (things.length === 0) {
        out.line("provisioning: no device has an identity; nothing publishes");
        return 1;
      }
    }
    const code = await runDevices({
      opts,
      out,
      signal,
      config,
      things,
      template,
      sources,
      url,
      credentials,
      pipeline,
      dashboard,
      stopPipeline,
      provisioning,
    });
    return provisioningFailed ? 1 : code;
  } finally {
    try {
      await stopPipeline(); // on an error too: the pipeline's state is flushed and the run file goes
    } finally {
      await dashboard?.close();
    }
  }
}

/** Everything the device phase needs, once the target is up. */
interface RunContext {
  readonly opts: SimulateOptions;
  readonly out: Output;
  readonly signal?: AbortSignal;
  readonly config: StackConfig;
  readonly things: readonly string[];
  readonly template: string;
  readonly sources: Map<string, TelemetrySource>;
  readonly url: string;
  readonly credentials: Map<string, DeviceCredentials>;
  readonly pipeline?: LocalPipeline;
  /** The live page, fed the devices' own counts. */
  readonly dashboard?: LocalDashboard;
  readonly stopPipeline: () => Promise<void>;
  /** What provisioning did, for the summary (with --provision). */
  readonly provisioning?: readonly string[];
}

/** --provision needs a fleet-provisioning stack, and such a stack's devices need --provision. */
function checkProvisioning(opts: SimulateOptions, config: StackConfig): void {
  if (opts.provision !== undefined && config.provisioning === undefined) {
    throw new UsageError(
      `--provision: stack ${config.stack} is in certificateMode ${config.certificates.mode}, which registers its devices itself; use a stack in certificateMode fleet-provisioning (e.g. --stack fleet)`,
    );
  }
  if (
    opts.provision === undefined &&
    config.provisioning !== undefined &&
    opts.target.kind !== "endpoint"
  ) {
    throw new UsageError(
      `stack ${config.stack} is in certificateMode fleet-provisioning: its devices have no certificate until they provision themselves; add --provision`,
    );
  }
}

async function runDevices(ctx: RunContext): Promise<number> {
  // The fleet's one CA is trusted once for the process rather than once per device's connection,
  // while the devices run (reconnections included); the process's own default comes back after.
  const restoreTrust = trustOnce(ctx.things.map((thing) => ctx.credentials.get(thing)?.ca));
  try {
    return await publishFleet(ctx, restoreTrust !== undefined);
  } finally {
    restoreTrust?.();
  }
}

async function publishFleet(ctx: RunContext, sharedCa: boolean): Promise<number> {
  const { opts, out, signal, config, things, template, sources, url, credentials, pipeline } = ctx;
  const report = (l: string) => out.line(l);
  const devices: Device[] = things.map((thing) => {
    const c = credentials.get(thing) as DeviceCredentials;
    return {
      thing,
      topic: telemetryTopicFor(template, thing),
      source: sources.get(thing) as TelemetrySource,
      publisher: new Publisher({
        url,
        clientId: thing,
        key: c.key,
        cert: c.cert,
        ca: sharedCa ? undefined : c.ca,
        qos: opts.qos,
        protocol: opts.protocol,
        rateLimit: opts.rateLimit,
        maxInFlight: opts.maxInFlight,
        maxQueue: opts.maxQueue,
        report,
      }),
      generated: 0,
      exhausted: false,
    };
  });
  const what =
    opts.count !== undefined && opts.durationS === undefined
      ? `${opts.count} message(s) each`
      : `${opts.durationS ?? DEFAULT_DURATION_S} s`;
  out.line(
    `publishing: ${devices.length} device(s) × ${opts.rate} msg/s, ${what}, QoS ${opts.qos}, ${opts.source} data, to ${devices.length === 1 ? devices[0].topic : template}`,
  );

  ctx.dashboard?.feed.setDeviceCounts(
    () =>
      new Map(
        devices.map((d) => {
          const s = d.publisher.stats;
          return [
            d.thing,
            { sent: s.sent, acked: s.acked, rejected: s.rejected + s.invalid + s.dropped },
          ];
        }),
      ),
  );
  const started = performance.now();
  for (const d of devices) d.publisher.start();

  // Generate on a short tick: each device is owed floor(elapsed × rate) + 1 messages so far.
  const durationMs =
    opts.count !== undefined && opts.durationS === undefined
      ? Infinity
      : (opts.durationS ?? DEFAULT_DURATION_S) * 1000;
  const tickMs = Math.max(1, Math.min(50, Math.floor(1000 / opts.rate)));
  const progress = () => {
    const ms = performance.now() - started;
    const acked = total(devices, "acked");
    out.progress(
      `${(ms / 1000).toFixed(0)} s · sent ${total(devices, "sent")} · acked ${acked} · rejected ${total(devices, "rejected") + total(devices, "invalid") + total(devices, "dropped")} · ${fmtRate(acked, ms)} msg/s`,
    );
  };
  await new Promise<void>((resolve) => {
    const finish = () => {
      clearInterval(ticker);
      clearInterval(progressTimer);
      signal?.removeEventListener("abort", finish);
      resolve();
    };
    const ticker = setInterval(() => {
      const elapsed = performance.now() - started;
      const now = Date.now();
      let active = 0;
      for (const d of devices) {
        if (d.exhausted || d.publisher.failure) continue;
        // A message at t = 0, 1/rate, 2/rate, ... up to (not including) the end of the run.
        const owed = Math.min(
          opts.count ?? Infinity,
          elapsed >= durationMs
            ? Math.ceil((durationMs * opts.rate) / 1000)
            : Math.floor((elapsed * opts.rate) / 1000) + 1,
        );
        while (d.generated < owed) {
          const msg = d.source.next(now);
          if (msg === undefined) {
            d.exhausted = true;
            out.line(`${d.thing}: the replay reached the end of its history`);
            break;
          }
          d.generated++;
          d.publisher.post(d.topic, msg);
        }
        if (!d.exhausted && d.generated < (opts.count ?? Infinity) && elapsed < durationMs) {
          active++;
        }
      }
      if (active === 0) finish();
    }, tickMs);
    const progressTimer = setInterval(progress, process.stdout.isTTY ? 1000 : 5000);
    if (signal?.aborted) finish();
    signal?.addEventListener("abort", finish);
  });
  if (signal?.aborted)
    out.line("stopping: no new messages; waiting for acknowledgements (up to 5 s)");
  await Promise.all(devices.map((d) => d.publisher.stop(5000)));
  const elapsedMs = performance.now() - started;
  progress();
  out.endProgress?.();

  let probe: string | undefined;
  if (pipeline && opts.probe && !signal?.aborted && devices.length > 0) {
    probe = await runProbe(devices[0], probeTopic(template), url, credentials, config, opts);
  }
  await ctx.stopPipeline(); // before the summary: stopping flushes the delivery buffers

  printSummary(out, devices, opts, config, elapsedMs, pipeline, probe);
  for (const l of ctx.provisioning ?? []) out.line(l);
  const left = pipeline?.delivery.stats.recordsLeftInJournal ?? 0;
  if (left > 0) {
    // Nothing is lost, but the run did not finish its job: say what to do, exit 2.
    throw new EnvironmentError(
      `${left} acknowledged record(s) could not be written to the local bucket (see the "delivery:" lines above) and stay in the journal under ${path.join(opts.stateDir, "journal")}; fix that (a full disk: free some space) and run simulate again to deliver them`,
    );
  }
  // Exit 1 when a device was refused for good, or when readings were made and none got through
  // (a broker that never answered): a run that shows only zeros must not look like success.
  const failed = devices.filter((d) => d.publisher.failure !== undefined);
  const generated = devices.reduce((n, d) => n + d.generated, 0);
  return failed.length > 0 || (generated > 0 && total(devices, "acked") === 0) ? 1 : 0;
}

/** One valid message to a topic outside the device's own, on a connection of its own. */
async function runProbe(
  first: Device,
  topic: string,
  url: string,
  credentials: Map<string, DeviceCredentials>,
  config: StackConfig,
  opts: SimulateOptions,
): Promise<string> {
  const c = credentials.get(first.thing) as DeviceCredentials;
  const probe = new Publisher({
    url,
    clientId: first.thing,
    key: c.key,
    cert: c.cert,
    ca: c.ca,
    qos: 1,
    protocol: opts.protocol,
    reconnectMinMs: 60_000, // a denied probe must not reconnect in a loop
    publishTimeoutMs: 5000,
  });
  probe.start();
  const msg = first.source.next(Date.now()) ?? {
    thing: first.thing,
    timestamp: Date.now(),
    temperature: 20,
    max_temperature: 20,
    min_temperature: 20,
  };
  const outcome: PublishOutcome = await probe.send(topic, msg, { maxAttempts: 1 });
  await probe.stop(1000);
  const head = `probe: ${first.thing} published one valid message outside its own topic, to ${topic}:`;
  switch (outcome.status) {
    case "acked":
      return `${head} ACCEPTED (PUBACK) under the ${config.policy.mode} policy${config.policy.mode === "tutorial" ? " (iot:* on *: any device may publish anywhere)" : ""}`;
    case "rejected":
      // mqtt.html, "MQTT reason codes": an MQTT 5 client gets PUBACK 0x87 and keeps its connection.
      return opts.protocol === 5
        ? `${head} DENIED with PUBACK 0x87 Not authorized, the device stays connected (what AWS IoT answers an MQTT 5 client when the ${config.policy.mode} policy does not allow the publish)`
        : `${head} DENIED, the broker disconnected the device (what AWS IoT does when the ${config.policy.mode} policy does not allow the publish)`;
    default:
      return `${head} not delivered (${outcome.status}: ${"reason" in outcome ? outcome.reason : outcome.error.message})`;
  }
}

function printSummary(
  out: Output,
  devices: readonly Device[],
  opts: SimulateOptions,
  config: StackConfig,
  elapsedMs: number,
  pipeline: LocalPipeline | undefined,
  probe: string | undefined,
): void {
  const rows: Array<[string, string | number]> = [
    ["generated", devices.reduce((n, d) => n + d.generated, 0)],
    ["sent", total(devices, "sent")],
    [opts.qos === 1 ? "acknowledged (PUBACK)" : "written (QoS 0, no ack)", total(devices, "acked")],
    ["invalid, not sent", total(devices, "invalid")],
    ["dropped (queue full)", total(devices, "dropped")],
    ["rejected by the broker", total(devices, "rejected")],
    ["unacknowledged at stop", total(devices, "unsent")],
    ["retries / timeouts", `${total(devices, "retries")} / ${total(devices, "timeouts")}`],
    ["reconnects", total(devices, "reconnects")],
    ["acknowledged rate", `${fmtRate(total(devices, "acked"), elapsedMs)} msg/s`],
  ];
  const kinds = new Map<string, number>();
  for (const d of devices) {
    for (const [k, n] of d.publisher.stats.invalidByKind) kinds.set(k, (kinds.get(k) ?? 0) + n);
  }
  for (const [k, n] of kinds) rows.push([`  invalid ${k}`, n]);
  const pad = (rs: Array<[string, string | number]>) => {
    const w = Math.max(...rs.map(([l]) => l.length));
    for (const [l, v] of rs) out.line(`  ${l.padEnd(w)}  ${v}`);
  };
  out.line("");
  out.line(
    `summary: stack ${config.stack}, ${devices.length} device(s), ${(elapsedMs / 1000).toFixed(1)} s, QoS ${opts.qos}, ${opts.source}`,
  );
  pad(rows);
  for (const d of devices) {
    if (d.publisher.failure) out.line(`  ${d.thing}: ${d.publisher.failure}`);
  }
  if (probe) out.line(probe);
  if (pipeline) {
    out.line("local pipeline:");
    pad(pipeline.summary().map((s) => [s.label, s.value]));
    for (const [what, objects] of [
      ["objects delivered", pipeline.objects()],
      ["analytics objects delivered", pipeline.analyticsObjects()],
    ] as const) {
      if (what !== "objects delivered" && objects.length === 0) continue;
      out.line(`${what}: ${objects.length}`);
      for (const o of objects.slice(0, 20)) out.line(`  ${o}`);
      if (objects.length > 20) out.line(`  ... and ${objects.length - 20} more`);
    }
    printMonitoring(out, pipeline, config);
  }
}
