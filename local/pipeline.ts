// The embedded local pipeline for one stack: the local CA's certificates for its fleet, the
// mutual-TLS broker, and, through the broker's hooks, the stack's IoT policy, topic rule, durable
// Firehose delivery and analytics window.
import * as path from "node:path";
import { PROJECT_DIR } from "../core/project";
import { type StackConfig } from "../core/stack-config";
import { describeSpec, LocalAnalytics, type TelemetryRecord } from "./analytics";
import { CONSOLE_IDENTITY, ensurePki, type Credentials } from "./ca";
import { LocalAuthorizer } from "./authorizer";
import { LocalBroker, type BrokerOptions } from "./broker";
import { LocalDeliveryStream } from "./firehose";
import { LocalRuleEngine } from "./rule-engine";
import { localBucketName } from "./s3";

export interface LocalPipelineOptions {
  /** Broker port on 127.0.0.1; default 0 (any free port). */
  readonly port?: number;
  /** Where certificates and state live; default `.local` in the project. */
  readonly stateDir?: string;
  /** Speeds up time-based behaviour (the Firehose buffer interval) by this factor; default 1. */
  readonly timeScale?: number;
  /** Receives one line per notable event (connects, refusals, denials). */
  readonly log?: (line: string) => void;
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
  /** Counts to show at the end of a run, in display order. */
  summary(): Array<{ label: string; value: string | number }>;
  /** Paths of the objects the delivery stream wrote in this run. */
  objects(): string[];
  stop(): Promise<void>;
}

/** The default state folder: git-ignored `.local/` in the project. */
export const DEFAULT_STATE_DIR = path.join(PROJECT_DIR, ".local");

export async function startLocalPipeline(
  config: StackConfig,
  opts: LocalPipelineOptions = {},
): Promise<LocalPipeline> {
  const stateDir = opts.stateDir ?? DEFAULT_STATE_DIR;
  const log = opts.log ?? (() => undefined);
  const things = config.things.map((t) => t.name);
  const pki = await ensurePki(path.join(stateDir, "pki"), [...things, CONSOLE_IDENTITY]);
  if (pki.issued > 0) {
    log(`local CA: issued ${pki.issued} certificate(s) under ${pki.dir} (keys mode 0600)`);
  }
  // Delivery first: it replays what an earlier run journaled but never delivered, before any
  // new message arrives.
  const delivery = await LocalDeliveryStream.open({
    stack: config.stack,
    delivery: config.delivery,
    bucket: localBucketName(config),
    stateDir,
    timeScale: opts.timeScale,
    log,
  });
  const authorizer = new LocalAuthorizer(config, log);
  const rules = new LocalRuleEngine(config, {
    firehosePut: (record) => delivery.put(record),
    // Locally the rule's error action writes its message under the stream's error output prefix.
    errorAction: (message) => delivery.putError(message),
    log,
  });
  const broker = await LocalBroker.start({
    ca: pki.caPem,
    key: pki.server.key,
    cert: pki.server.cert,
    port: opts.port ?? 0,
    // The caps leave room for the whole fleet (up to 10,000 things) on this one address.
    limits: {
      maxConnections: Math.max(4096, 2 * things.length + 64),
      maxConnectionsPerAddress: Math.max(2048, things.length + 64),
      ...opts.limits,
    },
    hooks: {
      ...authorizer.hooks(),
      // The PUBACK waits for this: the rule ran and its record is in the journal on disk.
      onPublish: (id, topic, payload) => rules.onPublish(id.clientId, topic, payload),
    },
  }).catch(async (e: unknown) => {
    // A busy port: give the journal back before saying so.
    await delivery.close();
    throw e;
  });
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
  broker.on("guard", (e) =>
    log(`broker: ${e.clientId ?? e.remote}${e.clientId ? ` (${e.remote})` : ""}: ${e.reason}`),
  );

  // analytics: the streaming window over what the rule matched (what the cloud rule's Kinesis
  // action sends to Flink), written to the delivery bucket under the spec's prefix.
  const spec = config.analytics;
  const analytics =
    spec === undefined ? undefined : new LocalAnalytics({ spec, bucket: delivery.bucket, log });
  if (analytics !== undefined && spec !== undefined) {
    log(`pipeline: analytics ${describeSpec(spec)} → ${delivery.bucket.dir}/${spec.prefix}`);
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
    credentialsFor: (thing) => {
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
      {
        label: `matched by rule ${config.rule.name}`,
        value:
          rules.stats.whereFalse > 0
            ? `${rules.stats.matched} (${rules.stats.whereFalse} filtered by WHERE)`
            : rules.stats.matched,
      },
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
      ...(analytics?.summary() ?? []),
      ...(analyticsFailure ? [{ label: "analytics not written", value: analyticsFailure }] : []),
    ],
    objects: () => delivery.objects.map(shown),
    // Broker first (no new messages), then the delivery flushes what is buffered. Idempotent.
    stop: () =>
      (stopped ??= (async () => {
        await broker.stop();
        try {
          // Open windows close now and are written, like Flink's final watermark at end of input.
          await analytics?.stop();
        } catch (e) {
          // A full disk: say so and go on, so that the run still ends with its summary.
          analyticsFailure = (e as Error).message;
          log(`analytics: ${analyticsFailure}`);
        } finally {
          await delivery.close();
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
