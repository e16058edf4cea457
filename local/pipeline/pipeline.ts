// The embedded local pipeline for one stack: the local CA's certificates for its fleet, the
// mutual-TLS broker, and, through the broker's hooks, the stack's IoT policy, topic rule, durable
// Firehose delivery and analytics window.
import * as path from "node:path";
import {
  isUnexpectedDisconnect,
  type AlarmFinding,
  type LocalFigures,
} from "../../core/monitoring";
import { planOf, type PipelinePlan } from "../../core/plan";
import { DEFAULT_STATE_DIR } from "../../core/project";
import { type StackConfig } from "../../core/stack-config";
import type { SummaryRow } from "../../core/display";
import { describeSpec, LocalAnalytics, type TelemetryRecord } from "../analytics/analytics";
import {
  certificateProfileFor,
  CONSOLE_IDENTITY,
  ensurePki,
  type Credentials,
} from "../identity/ca";
import { LocalAuthorizer, type AuthorizerOptions } from "../broker/authorizer";
import { LocalBroker, type BrokerHooks, type BrokerOptions } from "../broker/broker";
import { LifecycleEvents } from "../broker/lifecycle-events";
import { LocalDeliveryStream } from "../delivery";
import { LakeObjectWriter } from "../lake/lake-writer";
import { applyLifecycle } from "../storage/lifecycle";
import { LocalCloudWatchStore } from "../monitoring/cloudwatch";
import { LocalMonitor } from "../monitoring/monitor";
import { LocalRuleEngine } from "../rule/rule-engine";
import { localBucketName } from "../storage/s3";
import { CLAIM_IDENTITY, LocalProvisioning } from "../provisioning/provisioning";
import { LocalShadowService } from "../shadow/service";
import { printable } from "./log-text";
import { dashboardRows, logBrokerEvents, shownObject, startLine, summaryRows } from "./report";

export interface LocalPipelineOptions {
  /** Broker port on 127.0.0.1; default 0 (any free port). */
  readonly port?: number;
  /** Where certificates and state live; default `.local` in the project. */
  readonly stateDir?: string;
  /** Speeds up time-based behaviour (the Firehose buffer interval) by this factor; default 1. */
  readonly timeScale?: number;
  /** Receives one line per notable event (connects, refusals, denials). */
  readonly log?: (line: string) => void;
  /** The broker's client-id check and retained-message bounds (docs/iot-policies.md). */
  readonly broker?: Pick<BrokerOptions, "requireThingClientId" | "retained">;
  /** How the fleet's certificates are attached to their things. */
  readonly association?: AuthorizerOptions["association"];
  /** The broker's connection, packet and slow-consumer limits; AWS IoT's by default. */
  readonly limits?: BrokerOptions["limits"];
}

export interface LocalPipeline {
  /** `mqtts://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  /** The local CA certificate (PEM) that devices trust. */
  readonly ca: string;
  readonly stateDir: string;
  readonly broker: LocalBroker;
  /** The stack's IoT policy at the broker. */
  readonly authorizer: LocalAuthorizer;
  /** The stack's topic rule; `rules.onOutput(...)` adds a consumer of matched messages. */
  readonly rules: LocalRuleEngine;
  /** The Firehose delivery stream into `<stateDir>/s3/<bucket>/`. */
  readonly delivery: LocalDeliveryStream;
  /** The analytics window (the local Managed Flink job), when the stack has one. */
  readonly analytics?: LocalAnalytics;
  /** The windows' own delivery stream, when the stack has analytics. */
  readonly windowsDelivery?: LocalDeliveryStream;
  /** The stack's plan the pipeline runs (names, monitoring, analytics spec). */
  readonly plan: PipelinePlan;
  /** AWS IoT's lifecycle events (`$aws/events/...`), published by the broker as AWS IoT does. */
  readonly lifecycle: LifecycleEvents;
  credentialsFor(thing: string): Credentials;
  consoleCredentials(): Credentials;
  /** Fleet provisioning by claim (certificateMode fleet-provisioning): the API, the registry. */
  readonly provisioning?: LocalProvisioning;
  /** The Device Shadow service (docs/shadows.md): classic and named shadows, on disk. */
  readonly shadows: LocalShadowService;
  /** The claim certificate devices boot with (certificateMode fleet-provisioning only). */
  claimCredentials(): Credentials;
  /** Counts to show at the end of a run, in display order. */
  summary(): SummaryRow[];
  /** Paths of the objects the telemetry's delivery stream wrote in this run. */
  objects(): string[];
  /** Paths of the objects the analytics windows' delivery stream wrote in this run. */
  analyticsObjects(): string[];
  /** The figures the stack's alarms watch, as measured in this run (final once stopped). */
  figures(): LocalFigures;
  /** What the stack's alarms would have flagged during the run (final once stopped). */
  alarmFindings(): AlarmFinding[];
  /** The figures of the stack's CloudWatch dashboard, as this run measured them. */
  dashboard(): SummaryRow[];
  stop(): Promise<void>;
}

/**
 * Starts the stack's local pipeline from its plan (core/plan.ts), the same plan the Pulumi
 * program builds from; given a config, plans it first.
 */
export async function startLocalPipeline(
  stack: StackConfig | PipelinePlan,
  opts: LocalPipelineOptions = {},
): Promise<LocalPipeline> {
  const plan = planOf(stack);
  const config = plan.config;
  const stateDir = opts.stateDir ?? DEFAULT_STATE_DIR;
  // Every line passes printable(): many carry what a client chose (client id, topic, certificate).
  const sink = opts.log;
  const log = sink === undefined ? () => undefined : (line: string) => sink(printable(line));
  const things = config.things.map((t) => t.name);
  // In fleet-provisioning mode no device certificate exists before a device provisions itself:
  // the PKI issues the claim certificate, and the provisioning API the devices' own.
  const fleetProvisioning = config.provisioning !== undefined;
  const pkiDir = path.join(stateDir, "pki");
  // Each thing's certificate carries the stack's localCertificates subject and alternative names.
  const profiles = fleetProvisioning
    ? {}
    : Object.fromEntries(
        config.things.map((t) => [
          t.name,
          certificateProfileFor(config.localCertificates, t, config),
        ]),
      );
  const pki = await ensurePki(
    pkiDir,
    fleetProvisioning ? [CLAIM_IDENTITY, CONSOLE_IDENTITY] : [...things, CONSOLE_IDENTITY],
    new Date(),
    profiles,
  );
  if (pki.issued > 0) {
    log(`local CA: issued ${pki.issued} certificate(s) under ${pki.dir} (keys mode 0600)`);
  }
  // The lake's layout: the prefixes Firehose is given, and, when the stack converts to Parquet or
  // partitions by thing, the writer that turns a buffer into those objects.
  const layout = plan.lake.layout;
  const lakeWriter =
    layout.format === "json" && !layout.partitionByThing
      ? undefined
      : new LakeObjectWriter({
          streamName: plan.delivery.streamName,
          layout,
          columns: plan.lake.columns,
          compression: plan.delivery.compression,
          parquetCodec: plan.lake.parquetCodec,
          // In the state folder, per stream: a killed run's scratch is found and removed here.
          scratchDir: path.join(stateDir, "tmp", plan.stack, plan.delivery.streamName),
          table: {
            databaseName: plan.lake.databaseName,
            tableName: plan.lake.tableName,
            region: plan.region,
          },
        });
  // Delivery first: it replays what an earlier run journaled but never delivered, before any
  // new message arrives.
  const delivery = await LocalDeliveryStream.open({
    stack: config.stack,
    delivery: {
      ...config.delivery,
      prefix: plan.delivery.prefix,
      errorOutputPrefix: plan.delivery.errorOutputPrefix,
    },
    bucket: localBucketName(config),
    stateDir,
    timeScale: opts.timeScale,
    log,
    layout: lakeWriter,
  });
  // The journal is ours now: Parquet scratch folders a killed run left behind belong to no one.
  const leftovers = (await lakeWriter?.clearLeftovers()) ?? 0;
  if (leftovers > 0)
    log(`delivery: removed ${leftovers} Parquet scratch folder(s) a stopped run left`);
  await applyLifecycle(delivery.bucket, plan.storage.lifecycleRules, Date.now(), log);
  const authorizer = new LocalAuthorizer(config, log, { association: opts.association });
  // The rules' CloudWatch actions write here; the dashboard and the alarm report read it.
  const cloudwatch = new LocalCloudWatchStore({
    metricAlarms: plan.monitoring.metricAlarms,
    alarmPrefix: plan.monitoring.namePrefix,
    timeScale: opts.timeScale,
    log,
  });
  // AWS IoT's own messages (shadow responses, lifecycle events, a rule's republish) go out
  // through the broker, which starts after the rules (its hooks run them).
  const started: { broker?: LocalBroker } = {};
  const publishAsAws = (
    topic: string,
    payload: Buffer,
    options: { readonly qos?: 0 | 1; readonly properties?: Record<string, unknown> } = {},
  ): Promise<void> =>
    started.broker === undefined
      ? Promise.reject(new Error("the broker is not started"))
      : started.broker.publishAsService(topic, payload, { qos: 1, ...options });
  // On AWS they reach the rules too (a rule may select from $aws/things/+/shadow/update/accepted
  // or $aws/events/presence/#): to every subscriber the policy lets receive them, then to the
  // rules, beside the request that caused them.
  const fromAws = async (topic: string, payload: Buffer): Promise<void> => {
    await publishAsAws(topic, payload);
    rules.fromAws(topic, payload);
  };
  const shadows: LocalShadowService = new LocalShadowService({
    stack: config.stack,
    stateDir,
    log,
    publish: fromAws,
  });
  const rules = new LocalRuleEngine(plan, {
    firehosePut: (record) => delivery.put(record),
    // Locally the rule's error action writes its message under the stream's error output prefix.
    errorAction: (message) => delivery.putError(message),
    log,
    // get_thing_shadow() reads the local shadows.
    shadow: (thing, name) => shadows.read(thing, name),
    services: {
      stateDir,
      cloudwatch,
      publish: (m) =>
        publishAsAws(m.topic, m.payload, {
          qos: m.qos,
          ...(m.properties === undefined ? {} : { properties: m.properties }),
        }),
    },
  });
  const provisioning = fleetProvisioning
    ? await LocalProvisioning.open({ config, pkiDir, stateDir, authorizer, log })
    : undefined;
  const hooks: BrokerHooks = {
    ...authorizer.hooks(),
    // The PUBACK waits for this: the rule ran and its record is in the journal on disk (or the
    // provisioning API answered and its registration is on disk, or the shadow change is).
    onPublish: (id, topic, payload, _qos, properties) =>
      provisioning?.handles(topic) === true
        ? provisioning.onPublish(id, topic, payload)
        : shadows.handles(topic)
          ? shadows.onPublish(id, topic, payload)
          : rules.onPublish(id, topic, payload, properties),
  };
  const broker: LocalBroker = await LocalBroker.start({
    ca: pki.caPem,
    key: pki.server.key,
    cert: pki.server.cert,
    port: opts.port ?? 0,
    ...opts.broker,
    // The caps leave room for the whole fleet (up to 10,000 things) on this one address.
    limits: {
      maxConnections: Math.max(4096, 2 * things.length + 64),
      maxConnectionsPerAddress: Math.max(2048, things.length + 64),
      ...opts.limits,
    },
    hooks: shadows.hooks(provisioning === undefined ? hooks : provisioning.hooks(hooks)),
  }).catch(async (e: unknown) => {
    // A busy port: give the journal back before saying so.
    await delivery.close();
    throw e;
  });
  started.broker = broker;
  provisioning?.attach(broker);
  log(startLine(config, delivery.bucket.dir, opts.timeScale));
  for (const r of plan.rules) {
    log(
      `pipeline: rule ${r.name}${r.enabled ? "" : " (disabled)"}: ${r.sql} → ${r.actions.map((a) => a.kind).join(", ")}; errors → ${r.errorAction?.kind ?? "none"}`,
    );
  }
  logBrokerEvents(broker, log);
  // "These events are available by default and they can't be disabled" (life-cycle-events.html):
  // to every subscriber whose policy allows iot:Subscribe and iot:Receive on the topic.
  const lifecycle = new LifecycleEvents({
    publish: fromAws,
    // "thingName will only be included if the client is connecting using the exclusive thing feature".
    thingNameOf:
      opts.association === "exclusive"
        ? (id) => (id.kind === "thing" ? id.thingName : undefined)
        : undefined,
    log,
  }).attach(broker);

  // analytics: the streaming window over what the rule matched (what the cloud rule's Kinesis
  // action sends to Flink), written to the delivery bucket under the spec's prefix.
  // Like the cloud's, the windows reach the bucket through a delivery stream of their own (the
  // Flink job's output stream read by a second Firehose stream): durable, Firehose's key layout.
  const spec = plan.analytics?.spec;
  const windowsConfig = plan.analytics?.windowsDelivery;
  const windowsDelivery =
    windowsConfig === undefined
      ? undefined
      : await LocalDeliveryStream.open({
          stack: config.stack,
          delivery: windowsConfig,
          bucket: localBucketName(config),
          stateDir,
          timeScale: opts.timeScale,
          log,
        });
  const analytics =
    spec === undefined || windowsDelivery === undefined
      ? undefined
      : new LocalAnalytics({ spec, sink: windowsDelivery, log });
  if (analytics !== undefined && spec !== undefined) {
    log(
      `pipeline: analytics ${describeSpec(spec)} → ${windowsConfig?.streamName} → ${delivery.bucket.dir}/${spec.prefix}`,
    );
    rules.onOutput((output, message) => {
      // A rule whose SELECT is not an object (SELECT VALUE ...) has no fields to aggregate.
      const isObject =
        output !== null &&
        typeof output === "object" &&
        !Array.isArray(output) &&
        !Buffer.isBuffer(output);
      if (isObject) analytics.accept(output as TelemetryRecord, message.receivedAt);
    });
  }
  const monitor = new LocalMonitor({
    alarms: config.monitoring.alarms,
    ruleName: config.rule.name,
    sample: () => ({
      onTopic: rules.stats.onTopic,
      errors: rules.stats.evaluationErrors + rules.stats.actionFailures,
    }),
    freshness: () => ({
      [config.delivery.streamName]: delivery.stats.maxFreshnessMs,
      ...(windowsDelivery === undefined || windowsConfig === undefined
        ? {}
        : { [windowsConfig.streamName]: windowsDelivery.stats.maxFreshnessMs }),
    }),
    // The further rules the cloud alarms on: those whose error action logs to their own group.
    rules: () =>
      Object.fromEntries(
        rules.rules
          .filter((r) =>
            plan.rules.some((p) => p.name === r.name && p.errorAction?.kind === "cloudwatchLogs"),
          )
          .map((r) => [
            r.name,
            { onTopic: r.stats.onTopic, errors: r.stats.evaluationErrors + r.stats.actionFailures },
          ]),
      ),
    timeScale: opts.timeScale,
    analytics: analytics !== undefined,
    // The presence rule's count (core/monitoring.ts PRESENCE), from the events it would read.
    ...(config.monitoring.alarms.presenceDisconnects === undefined
      ? {}
      : {
          disconnects: () =>
            Object.entries(lifecycle.stats.disconnections)
              .filter(([reason]) => isUnexpectedDisconnect(reason))
              .reduce((n, [, count]) => n + (count ?? 0), 0),
        }),
  });
  const services = {
    config,
    broker,
    lifecycle,
    authorizer,
    rules,
    delivery,
    provisioning,
    shadows,
    analytics,
    windowsDelivery,
  };
  let stopped: Promise<void> | undefined;
  let analyticsFailure: string | undefined;
  return {
    url: broker.url,
    port: broker.port,
    ca: pki.caPem,
    stateDir,
    broker,
    authorizer,
    rules,
    delivery,
    analytics,
    windowsDelivery,
    plan,
    lifecycle,
    provisioning,
    shadows,
    claimCredentials: () => {
      if (!fleetProvisioning) {
        throw new Error(`stack ${config.stack} is not in certificateMode fleet-provisioning`);
      }
      return pki.credentialsFor(CLAIM_IDENTITY);
    },
    credentialsFor: (thing) => {
      if (fleetProvisioning) {
        throw new Error(
          `stack ${config.stack} provisions its devices (fleet-provisioning): they have no pre-issued certificate; use npm run simulate -- --provision`,
        );
      }
      if (!things.includes(thing)) {
        throw new Error(
          `${thing} is not a thing of stack ${config.stack} (fleet: ${things.join(", ")})`,
        );
      }
      return pki.credentialsFor(thing);
    },
    consoleCredentials: () => pki.credentialsFor(CONSOLE_IDENTITY),
    summary: () => summaryRows(services, analyticsFailure),
    objects: () => delivery.objects.map(shownObject),
    analyticsObjects: () => (windowsDelivery?.objects ?? []).map(shownObject),
    figures: () => monitor.figures(),
    dashboard: () => [...dashboardRows(services, monitor.figures()), ...cloudwatch.rows()],
    alarmFindings: () => [...monitor.findings(), ...cloudwatch.findings()],
    // Idempotent: every call waits for the one shutdown.
    stop: () =>
      (stopped ??= stopInOrder({ ...services, monitor, lakeWriter }, log, (failure) => {
        analyticsFailure = failure;
      })),
  };
}

/**
 * The three-stage shutdown: the broker first (no new messages), then the telemetry's delivery
 * flushes what is buffered, then the analytics windows close and are delivered; last the monitor
 * and the lake writer, after the last flush. Why the windows could not be written, if they could
 * not, goes to `analyticsFailed` as soon as it is known, so that the summary has it even when a
 * later stage throws.
 */
async function stopInOrder(
  s: {
    readonly broker: LocalBroker;
    readonly lifecycle: LifecycleEvents;
    readonly rules: LocalRuleEngine;
    readonly delivery: LocalDeliveryStream;
    readonly analytics?: LocalAnalytics;
    readonly windowsDelivery?: LocalDeliveryStream;
    readonly monitor: LocalMonitor;
    readonly lakeWriter?: LakeObjectWriter;
  },
  log: (line: string) => void,
  analyticsFailed: (message: string) => void,
): Promise<void> {
  const { broker, lifecycle, rules, delivery, analytics, windowsDelivery, monitor, lakeWriter } = s;
  // The connections the stop closes are the run's end, not devices going away: no events.
  lifecycle.stop();
  await broker.stop();
  // The further rules' runs still under way finish (a republish now fails to its error action),
  // and the Lambda functions invoked for messages already acknowledged, before the summary.
  await rules.drain();
  try {
    // The telemetry's stream first: a publish still in flight when the broker stopped is
    // refused (its device still holds it), not journaled unacknowledged once a full disk
    // frees up; what was acknowledged is written, or stays journaled for the next start.
    await delivery.close();
  } finally {
    try {
      // Open windows close now and are delivered, like Flink's final watermark at end of input.
      const windowsStopped = analytics?.stop();
      if (windowsStopped !== undefined && windowsDelivery !== undefined) {
        // On a full disk their puts wait for space a stop will not bring: once the windows'
        // journal stalls, close it, which refuses what waits, so that the stop ends (and
        // says so).
        const outcome = await Promise.race([
          windowsStopped.then(
            () => "stopped" as const,
            () => "stopped" as const,
          ),
          windowsDelivery.whenStalled().then(() => "stalled" as const),
        ]);
        if (outcome === "stalled") await windowsDelivery.close();
      }
      await windowsStopped;
    } catch (e) {
      // A full disk: say so and go on, so that the run still ends with its summary.
      const message = (e as Error).message;
      analyticsFailed(message);
      log(`analytics: ${message}`);
    } finally {
      try {
        await windowsDelivery?.close();
      } finally {
        // After the last flush: its records are in the figures.
        monitor.stop();
        await lakeWriter?.close();
      }
    }
  }
}
