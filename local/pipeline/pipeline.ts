// The embedded local pipeline for one stack: the local CA's certificates for its fleet, the
// mutual-TLS broker, and, through the broker's hooks, the stack's IoT policy, topic rule, durable
// Firehose delivery and analytics window.
import * as path from "node:path";
import type { AlarmFinding, LocalFigures } from "../../core/monitoring";
import { planOf, type PipelinePlan } from "../../core/plan";
import { DEFAULT_STATE_DIR } from "../../core/project";
import { type StackConfig } from "../../core/stack-config";
import { describeSpec, LocalAnalytics, type TelemetryRecord } from "../analytics/analytics";
import {
  certificateProfileFor,
  CONSOLE_IDENTITY,
  ensurePki,
  type Credentials,
} from "../identity/ca";
import { LocalAuthorizer, type AuthorizerOptions } from "../broker/authorizer";
import { LocalBroker, type BrokerHooks, type BrokerOptions } from "../broker/broker";
import { LocalDeliveryStream } from "../firehose";
import { LakeObjectWriter } from "../lake-writer";
import { applyLifecycle } from "../storage/lifecycle";
import { LocalMonitor } from "../monitoring/monitor";
import { LocalRuleEngine } from "../rule/rule-engine";
import { localBucketName } from "../storage/s3";
import { CLAIM_IDENTITY, LocalProvisioning } from "../provisioning/provisioning";
import { printable } from "./log-text";

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
  credentialsFor(thing: string): Credentials;
  consoleCredentials(): Credentials;
  /** Fleet provisioning by claim (certificateMode fleet-provisioning): the API, the registry. */
  readonly provisioning?: LocalProvisioning;
  /** The claim certificate devices boot with (certificateMode fleet-provisioning only). */
  claimCredentials(): Credentials;
  /** Counts to show at the end of a run, in display order. */
  summary(): Array<{ label: string; value: string | number }>;
  /** Paths of the objects the telemetry's delivery stream wrote in this run. */
  objects(): string[];
  /** Paths of the objects the analytics windows' delivery stream wrote in this run. */
  analyticsObjects(): string[];
  /** The figures the stack's alarms watch, as measured in this run (final once stopped). */
  figures(): LocalFigures;
  /** What the stack's alarms would have flagged during the run (final once stopped). */
  alarmFindings(): AlarmFinding[];
  /** The figures of the stack's CloudWatch dashboard, as this run measured them. */
  dashboard(): Array<{ label: string; value: string | number }>;
  stop(): Promise<void>;
}

/** The retained store's lines of the summary, when anything was retained or refused. */
function retainedSummary(broker: LocalBroker): Array<{ label: string; value: string | number }> {
  const r = broker.retained.stats;
  const refused = Object.values(r.refused).reduce((a, b) => a + b, 0);
  if (r.stored + r.deleted + refused === 0) return [];
  return [
    {
      label: "retained messages held (stored / deleted)",
      value: `${r.messages} (${r.stored} / ${r.deleted})`,
    },
    {
      label: "retained publishes refused (count / memory / size / rate / topic rate / reserved)",
      value: `${refused} (${r.refused.count} / ${r.refused.memory} / ${r.refused.size} / ${r.refused.rate} / ${r.refused.topicRate} / ${r.refused.reserved})`,
    },
  ];
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
  const rules = new LocalRuleEngine(plan, {
    firehosePut: (record) => delivery.put(record),
    // Locally the rule's error action writes its message under the stream's error output prefix.
    errorAction: (message) => delivery.putError(message),
    log,
  });
  const provisioning = fleetProvisioning
    ? await LocalProvisioning.open({ config, pkiDir, stateDir, authorizer, log })
    : undefined;
  const hooks: BrokerHooks = {
    ...authorizer.hooks(),
    // The PUBACK waits for this: the rule ran and its record is in the journal on disk (or the
    // provisioning API answered and its registration is on disk).
    onPublish: (id, topic, payload) =>
      provisioning?.handles(topic) === true
        ? provisioning.onPublish(id, topic, payload)
        : rules.onPublish(id, topic, payload),
  };
  const broker = await LocalBroker.start({
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
    hooks: provisioning === undefined ? hooks : provisioning.hooks(hooks),
  }).catch(async (e: unknown) => {
    // A busy port: give the journal back before saying so.
    await delivery.close();
    throw e;
  });
  provisioning?.attach(broker);
  log(
    `pipeline: policy ${config.policy.name} (${config.policy.mode}), rule ${config.rule.name}: ${config.rule.sql}, ` +
      `delivery ${config.delivery.streamName} → ${path.join(delivery.bucket.dir)} ` +
      `(${config.delivery.bufferSizeMiB} MiB / ${config.delivery.bufferIntervalSeconds} s` +
      `${(opts.timeScale ?? 1) !== 1 ? ` at ${opts.timeScale}× speed` : ""}, ${config.delivery.compression})`,
  );
  broker.on("connect", (id, remote) => log(`broker: ${id.clientId} connected from ${remote}`));
  broker.on("tlsRefused", (remote, reason) => log(`broker: refused TLS from ${remote}: ${reason}`));
  broker.on("connectRefused", (clientId, thing, reason) =>
    log(`broker: refused CONNECT of ${clientId} (certificate ${thing ?? "none"}): ${reason}`),
  );
  broker.on("publishDenied", (id, topic, reason) =>
    log(`broker: denied ${id.clientId} publishing to ${topic}: ${reason}; disconnected`),
  );
  broker.on("publishFailed", (id, topic, err) =>
    log(`broker: could not store ${id.clientId}'s message on ${topic}: ${err.message}`),
  );
  broker.on("subscribeDenied", (id, filter, reason) =>
    log(`broker: denied ${id.clientId} subscribing to ${filter}: ${reason}`),
  );
  broker.on("session", (clientId, reason) => log(`broker: ${clientId}: ${reason}`));
  broker.on("takeover", (id) =>
    log(`broker: ${id.clientId} connected again; the older connection is closed, as AWS IoT does`),
  );
  broker.on("guard", (e) =>
    log(`broker: ${e.clientId ?? e.remote}${e.clientId ? ` (${e.remote})` : ""}: ${e.reason}`),
  );

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
    timeScale: opts.timeScale,
    analytics: analytics !== undefined,
  });
  const shown = (p: string) => {
    const rel = path.relative(process.cwd(), p);
    return rel.startsWith("..") ? p : rel;
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
    provisioning,
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
    summary: () => [
      { label: "broker connections", value: broker.stats.connects },
      {
        label: "broker refusals (TLS / CONNECT)",
        value: `${broker.stats.tlsRefusals} / ${broker.stats.connectRefusals}`,
      },
      { label: "broker publishes accepted", value: broker.stats.publishes },
      { label: "broker publishes denied", value: broker.stats.publishDenials },
      ...guardSummary(broker),
      {
        label: "denied by policy (connect / publish / subscribe / receive)",
        value: `${authorizer.totalDenials} (${authorizer.denials["iot:Connect"]} / ${authorizer.denials["iot:Publish"]} / ${authorizer.denials["iot:Subscribe"]} / ${authorizer.denials["iot:Receive"]})`,
      },
      ...(authorizer.denials["iot:RetainPublish"] > 0
        ? [{ label: "of them iot:RetainPublish", value: authorizer.denials["iot:RetainPublish"] }]
        : []),
      ...(broker.stats.takeovers > 0
        ? [{ label: "connections taken over by the same client id", value: broker.stats.takeovers }]
        : []),
      ...retainedSummary(broker),
      {
        label: `matched by rule ${config.rule.name}`,
        value:
          rules.stats.whereFalse > 0
            ? `${rules.stats.matched} (${rules.stats.whereFalse} filtered by WHERE)`
            : rules.stats.matched,
      },
      ...(rules.stats.evaluationErrors + rules.stats.actionFailures > 0
        ? [
            {
              label: "rule errors → error action (SQL not evaluated / action failed)",
              value: `${rules.stats.evaluationErrors} / ${rules.stats.actionFailures}`,
            },
          ]
        : []),
      ...(delivery.stats.recordsReplayed > 0
        ? [{ label: "records replayed from the journal", value: delivery.stats.recordsReplayed }]
        : []),
      { label: "records delivered", value: delivery.stats.recordsDelivered },
      ...journalSummary(delivery),
      ...(delivery.stats.errorRecordsDelivered > 0
        ? [{ label: "records under the error prefix", value: delivery.stats.errorRecordsDelivered }]
        : []),
      {
        label: `objects written to s3://${delivery.bucket.name}`,
        value: delivery.stats.objectsWritten,
      },
      ...(provisioning?.summary() ?? []),
      ...(analytics?.summary() ?? []),
      ...(windowsDelivery === undefined
        ? []
        : [{ label: "analytics objects written", value: windowsDelivery.stats.objectsWritten }]),
      ...(analyticsFailure ? [{ label: "analytics not written", value: analyticsFailure }] : []),
    ],
    objects: () => delivery.objects.map(shown),
    analyticsObjects: () => (windowsDelivery?.objects ?? []).map(shown),
    figures: () => monitor.figures(),
    dashboard: () => {
      const f = monitor.figures();
      const rows: Array<{ label: string; value: string | number }> = [
        { label: "messages in (PublishIn.Success)", value: broker.stats.publishes },
        { label: `rule matches (TopicMatch, ${config.rule.name})`, value: rules.stats.onTopic },
        {
          label: "rule errors (RuleErrors)",
          value: rules.stats.evaluationErrors + rules.stats.actionFailures,
        },
        {
          label: "records delivered (DeliveryToS3.Records)",
          value: delivery.stats.recordsDelivered,
        },
        ...Object.entries(f.deliveryFreshnessSeconds).map(([stream, seconds]) => ({
          label: `delivery freshness, worst (${stream})`,
          value: `${Math.round(seconds)} s`,
        })),
      ];
      if (windowsDelivery !== undefined) {
        rows.push({
          label: "window output (windows delivered)",
          value: windowsDelivery.stats.recordsDelivered,
        });
      }
      return rows;
    },
    alarmFindings: () => monitor.findings(),
    // Broker first (no new messages), then the delivery flushes what is buffered. Idempotent.
    stop: () =>
      (stopped ??= (async () => {
        await broker.stop();
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
            analyticsFailure = (e as Error).message;
            log(`analytics: ${analyticsFailure}`);
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
      })()),
  };
}

/** The broker guard's counts worth a line, only those that happened. */
function guardSummary(broker: LocalBroker): Array<{ label: string; value: string | number }> {
  const g = broker.guard.stats;
  const p = g.refusedPackets;
  const refused = p["too-large"] + p.qos2 + p.topic + p.malformed + p.busy;
  const rows: Array<{ label: string; value: string | number }> = [];
  if (refused > 0) {
    rows.push({
      label: "broker packets refused (too large / QoS 2 / topic / malformed / busy)",
      value: `${refused} (${p["too-large"]} / ${p.qos2} / ${p.topic} / ${p.malformed} / ${p.busy})`,
    });
  }
  const timeouts = g.handshakeTimeouts + g.connectTimeouts + g.idleTimeouts;
  if (g.connectionsOverCap + timeouts > 0) {
    rows.push({
      label: "broker connections closed (over cap / handshake / CONNECT / idle timeout)",
      value: `${g.connectionsOverCap + timeouts} (${g.connectionsOverCap} / ${g.handshakeTimeouts} / ${g.connectTimeouts} / ${g.idleTimeouts})`,
    });
  }
  if (broker.acks.pauses > 0) {
    rows.push({
      label: "connections not read for a while (100 publishes unacknowledged, or 32 MiB in all)",
      value: broker.acks.pauses,
    });
  }
  const sd = broker.sessions.stats.dropped;
  if (sd.session + sd.bytes + sd.rate + broker.sessions.stats.expired > 0) {
    rows.push({
      label: "persistent sessions: messages dropped (per session / memory / rate) / expired",
      value: `${sd.session + sd.bytes + sd.rate} (${sd.session} / ${sd.bytes} / ${sd.rate}) / ${broker.sessions.stats.expired}`,
    });
  }
  if (g.slowConsumerDrops + g.slowConsumerDisconnects > 0) {
    rows.push({
      label: "slow subscribers: messages dropped / disconnected",
      value: `${g.slowConsumerDrops} / ${g.slowConsumerDisconnects}`,
    });
  }
  return rows;
}

/** The journal's trouble, only when there was some. */
function journalSummary(
  delivery: LocalDeliveryStream,
): Array<{ label: string; value: string | number }> {
  const d = delivery.stats;
  return [
    ...(d.journalStalls > 0
      ? [{ label: "journal stalls (disk full)", value: d.journalStalls }]
      : []),
    ...(d.recordsLeftInJournal > 0
      ? [{ label: "records left in the journal for the next start", value: d.recordsLeftInJournal }]
      : []),
    ...(d.recordsFailedDelivery > 0
      ? [
          {
            label: "records of buffers that could not be written (→ error prefix)",
            value: d.recordsFailedDelivery,
          },
        ]
      : []),
    ...(d.damagedRegions > 0
      ? [
          {
            label: "journal damaged regions skipped (segments in quarantine/)",
            value: `${d.damagedRegions} (${d.damagedBytes} bytes)`,
          },
        ]
      : []),
  ];
}
