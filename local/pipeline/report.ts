// What the local pipeline tells a person: its log lines for the broker's events, the summary at the
// end of a run and the dashboard's figures. Only reads the services' counts; local/pipeline/
// pipeline.ts wires the services and owns their lifecycle.
import * as path from "node:path";
import { shownPath, type SummaryRow } from "../../core/display";
import type { LocalFigures } from "../../core/monitoring";
import type { StackConfig } from "../../core/stack-config";
import type { LocalAnalytics } from "../analytics/analytics";
import type { LocalAuthorizer } from "../broker/authorizer";
import type { LocalBroker } from "../broker/broker";
import type { LifecycleEvents } from "../broker/lifecycle-events";
import type { LocalDeliveryStream } from "../delivery";
import type { LocalProvisioning } from "../provisioning/provisioning";
import type { LocalShadowService } from "../shadow/service";
import type { LocalRuleEngine } from "../rule/rule-engine";

/** The running services whose counts the summary and the dashboard show. */
export interface ReportedServices {
  readonly config: StackConfig;
  readonly broker: LocalBroker;
  readonly authorizer: LocalAuthorizer;
  readonly rules: LocalRuleEngine;
  readonly delivery: LocalDeliveryStream;
  readonly provisioning?: LocalProvisioning;
  readonly shadows?: LocalShadowService;
  readonly analytics?: LocalAnalytics;
  readonly windowsDelivery?: LocalDeliveryStream;
  /** AWS IoT's lifecycle events; a row when some were dropped or could not be published. */
  readonly lifecycle?: LifecycleEvents;
}

/**
 * An object's path as the run lists it: `shownPath`, except that the working folder itself is ""
 * (relative to itself), as these lists have always shown it.
 */
export function shownObject(p: string): string {
  return path.relative(process.cwd(), p) === "" ? "" : shownPath(p);
}

/** The line that says what the pipeline runs: policy, rule, delivery and its buffer. */
export function startLine(
  config: StackConfig,
  bucketDir: string,
  timeScale: number | undefined,
): string {
  return (
    `pipeline: policy ${config.policy.name} (${config.policy.mode}), rule ${config.rule.name}: ${config.rule.sql}, ` +
    `delivery ${config.delivery.streamName} → ${path.join(bucketDir)} ` +
    `(${config.delivery.bufferSizeMiB} MiB / ${config.delivery.bufferIntervalSeconds} s` +
    `${(timeScale ?? 1) !== 1 ? ` at ${timeScale}× speed` : ""}, ${config.delivery.compression})`
  );
}

/** One log line per notable broker event: connects, refusals, denials, takeovers, guard closes. */
export function logBrokerEvents(broker: LocalBroker, log: (line: string) => void): void {
  broker.on("connect", (id, remote) => log(`broker: ${id.clientId} connected from ${remote}`));
  broker.on("tlsRefused", (remote, reason) => log(`broker: refused TLS from ${remote}: ${reason}`));
  broker.on("connectRefused", (clientId, thing, reason) =>
    log(`broker: refused CONNECT of ${clientId} (certificate ${thing ?? "none"}): ${reason}`),
  );
  broker.on("publishDenied", (id, topic, reason, answer) =>
    log(`broker: denied ${id.clientId} publishing to ${topic}: ${reason}; ${answer}`),
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
}

/** Counts to show at the end of a run, in display order; `analyticsFailure` when windows were lost. */
export function summaryRows(s: ReportedServices, analyticsFailure?: string): SummaryRow[] {
  const { broker, authorizer, rules, delivery, windowsDelivery } = s;
  return [
    { label: "broker connections", value: broker.stats.connects },
    {
      label: "broker refusals (TLS / CONNECT)",
      value: `${broker.stats.tlsRefusals} / ${broker.stats.connectRefusals}`,
    },
    { label: "broker publishes accepted", value: broker.stats.publishes },
    { label: "broker publishes denied", value: broker.stats.publishDenials },
    ...guardSummary(broker),
    ...lifecycleSummary(s.lifecycle),
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
      label: `matched by rule ${s.config.rule.name}`,
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
    ...furtherRulesSummary(rules),
    ...recordedRequestsSummary(rules),
    ...actionFiguresSummary(rules),
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
    ...(s.provisioning?.summary() ?? []),
    ...(s.shadows?.summary() ?? []),
    ...(s.analytics?.summary() ?? []),
    ...(windowsDelivery === undefined
      ? []
      : [{ label: "analytics objects written", value: windowsDelivery.stats.objectsWritten }]),
    ...(analyticsFailure ? [{ label: "analytics not written", value: analyticsFailure }] : []),
  ];
}

/** The figures of the stack's CloudWatch dashboard, as the run measured them. */
export function dashboardRows(s: ReportedServices, figures: LocalFigures): SummaryRow[] {
  const { broker, rules, delivery, windowsDelivery } = s;
  const rows: SummaryRow[] = [
    { label: "messages in (PublishIn.Success)", value: broker.stats.publishes },
    { label: `rule matches (TopicMatch, ${s.config.rule.name})`, value: rules.stats.onTopic },
    {
      label: "rule errors (RuleErrors)",
      value: rules.stats.evaluationErrors + rules.stats.actionFailures,
    },
    {
      label: "records delivered (DeliveryToS3.Records)",
      value: delivery.stats.recordsDelivered,
    },
    ...Object.entries(figures.deliveryFreshnessSeconds).map(([stream, seconds]) => ({
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
}

/** One line per further rule (`rules`): matched, filtered, failed actions, errors dropped. */
function furtherRulesSummary(rules: LocalRuleEngine): SummaryRow[] {
  const failed =
    rules.furtherRuleFailures > 0
      ? [{ label: "further rules' runs failed (see the log)", value: rules.furtherRuleFailures }]
      : [];
  return [
    ...rules.rules.slice(1).map((r) => {
      const s = r.stats;
      const failed = s.evaluationErrors + s.actionFailures;
      return {
        label: `matched by rule ${r.name}`,
        value: `${s.matched} of ${s.onTopic} on its topic${failed > 0 ? `; ${s.evaluationErrors} not evaluated / ${s.actionFailures} action(s) failed` : ""}${r.errorsDropped > 0 ? `; ${r.errorsDropped} error message(s) dropped` : ""}`,
      };
    }),
    ...failed,
  ];
}

/**
 * The requests the SNS, SQS and DynamoDBv2 actions recorded for AWS (one JSON line each under
 * `<stateDir>/aws-requests/<stack>/`), per API, when any action recorded one.
 */
function recordedRequestsSummary(rules: LocalRuleEngine): SummaryRow[] {
  const counts = (rules.requests?.counts() ?? []).filter((c) => c.recorded > 0);
  if (counts.length === 0) return [];
  return [
    {
      label: `requests recorded for AWS (${counts.map((c) => c.api).join(" / ")})`,
      value: `${counts.reduce((n, c) => n + c.recorded, 0)} (${counts.map((c) => c.recorded).join(" / ")}) in ${shownPath(path.dirname(counts[0].file))}`,
    },
  ];
}

/** The further rules' Lambda functions and HTTP requests, when a rule has such an action. */
function actionFiguresSummary(rules: LocalRuleEngine): SummaryRow[] {
  const { lambda, http } = rules.actionFigures();
  return [
    ...(lambda === undefined
      ? []
      : [
          {
            label: "Lambda functions invoked (succeeded / failed every try)",
            value: `${lambda.invoked} (${lambda.succeeded} / ${lambda.functionErrors})`,
          },
        ]),
    ...(http === undefined
      ? []
      : [
          {
            label: "HTTP requests answered 2xx / failed / not sent (destination not confirmed)",
            value: `${http.sent} / ${http.failed} / ${http.refusedUnconfirmed}`,
          },
        ]),
  ];
}

/** The retained store's lines of the summary, when anything was retained or refused. */
function retainedSummary(broker: LocalBroker): SummaryRow[] {
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
/** The broker guard's counts worth a line, only those that happened. */
/** A row when lifecycle events were dropped or could not be published; none otherwise. */
export function lifecycleSummary(lifecycle: LifecycleEvents | undefined): SummaryRow[] {
  const st = lifecycle?.stats;
  if (st === undefined || st.dropped + st.failed === 0) return [];
  return [
    {
      label: "lifecycle events published / dropped (too many waiting) / failed",
      value: `${st.published} / ${st.dropped} / ${st.failed}`,
    },
  ];
}

function guardSummary(broker: LocalBroker): SummaryRow[] {
  const g = broker.guard.stats;
  const p = g.refusedPackets;
  const refused = p["too-large"] + p.qos2 + p.topic + p.malformed + p.unsupported + p.busy;
  const rows: SummaryRow[] = [];
  if (refused > 0) {
    rows.push({
      label: "broker packets refused (too large / QoS 2 / topic / malformed / unsupported / busy)",
      value: `${refused} (${p["too-large"]} / ${p.qos2} / ${p.topic} / ${p.malformed} / ${p.unsupported} / ${p.busy})`,
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
function journalSummary(delivery: LocalDeliveryStream): SummaryRow[] {
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
