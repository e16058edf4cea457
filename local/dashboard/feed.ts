// What the local dashboard page shows, gathered from a running local pipeline: the stack's
// CloudWatch dashboard widgets (core/monitoring.ts's dashboardBody, the definition the program
// deploys) with the pipeline's figures under the same metric names and dimensions, the alarms and
// their thresholds, one row per device, each device's readings, the windows delivered, the last
// objects and rule errors. Every list is a ring of recent entries: memory stays bounded however
// long the run.
import * as path from "node:path";
import {
  ALARM_DESCRIPTIONS,
  alarmName,
  dashboardBody,
  METRICS,
  type AlarmKind,
  type DashboardWidget,
  type MetricRef,
} from "../../core/monitoring";
import type { SqlValue } from "../../core/rule-sql";
import type { LocalPipeline } from "../pipeline/pipeline";

/**
 * The Application dimension of the local window's downtime metric. In the cloud it is the Managed
 * Flink application's name, which Pulumi chooses at deploy time.
 */
export const LOCAL_FLINK_APPLICATION = "local-analytics";

/** The protocol dimension AWS IoT gives PublishIn.Success for MQTT publishes (metrics_dimensions.html). */
const MQTT_PROTOCOL = "MQTT";

/** Numbers this large are epoch milliseconds (after 2001-09-09), not readings to chart. */
const EPOCH_MS_FLOOR = 1e12;

/** A rule output's fields for the table (numbers, short strings) and the numbers to chart. */
function fields(output: SqlValue): {
  values: Record<string, number | string>;
  numbers: Record<string, number>;
} {
  const values: Record<string, number | string> = {};
  const numbers: Record<string, number> = {};
  if (output === null || typeof output !== "object" || Array.isArray(output)) {
    return { values, numbers };
  }
  if (Buffer.isBuffer(output)) return { values, numbers };
  for (const [k, v] of Object.entries(output)) {
    if (typeof v === "number" && Number.isFinite(v)) {
      values[k] = v;
      // Readings, not clocks: a timestamp (epoch ms) would flatten every other line.
      if (k !== "timestamp" && Math.abs(v) < EPOCH_MS_FLOOR) numbers[k] = v;
    } else if (typeof v === "string" && v.length <= 64) values[k] = v;
  }
  return { values, numbers };
}

/** A metric line's key: namespace, name, dimension name and value, as the page looks them up. */
export function metricKey(
  namespace: string,
  name: string,
  dimension: string,
  value: string,
): string {
  return [namespace, name, dimension, value].join("|");
}

/** Counts a device's own client kept (the simulator's publishers); absent outside `simulate`. */
export interface DeviceClientCounts {
  readonly sent: number;
  readonly acked: number;
  /** Refused by the broker, invalid, or dropped from a full queue. */
  readonly rejected: number;
}

export interface DashboardFeedOptions {
  readonly pipeline: LocalPipeline;
  /** The fleet's things, in the table's order. */
  readonly things: readonly string[];
  /** How often the metrics are sampled (one point per series), ms. @default 1000 */
  readonly sampleMs?: number;
  /** Points kept per series and per device's readings. @default 300 */
  readonly points?: number;
  /** Windows, objects and rule errors kept. @default 500 windows, 20 objects, 20 errors */
  readonly windows?: number;
  readonly recent?: number;
  /** A device's chart takes at most one reading this often, ms. @default sampleMs / 10 */
  readonly readingGapMs?: number;
  /** Devices whose readings are kept (the first ones of the fleet); the table lists all. @default 64 */
  readonly chartedDevices?: number;
  /** Things of the fleet listed in the table (the first ones). @default 1000 */
  readonly tableDevices?: number;
  /** Client ids outside the fleet tracked in the table (a console, a stranger). @default 64 */
  readonly strangers?: number;
  /** Local time runs this much faster than the stack's (`--fast`). @default 1 */
  readonly timeScale?: number;
  readonly now?: () => number;
  /** Receives one line when the page's figures fail (the pipeline is never affected). */
  readonly log?: (line: string) => void;
}

export interface SeriesState {
  readonly stat: MetricRef["statistic"];
  /** [epoch ms, value]: for Sum the count in the sample, otherwise the value at the sample. */
  readonly points: [number, number][];
  /** Sum: the run's total so far; otherwise the last value. */
  total: number;
}

export interface DeviceRow {
  readonly thing: string;
  connected: boolean;
  connects: number;
  /** Messages the rule matched from it (what reached the pipeline). */
  matched: number;
  /** Publishes, subscribes and connects the policy or broker refused. */
  denials: number;
  lastReading?: { readonly at: number; readonly values: Record<string, number | string> };
  client?: DeviceClientCounts;
}

export interface AlarmState {
  readonly name: string;
  readonly kind: AlarmKind;
  readonly subject: string;
  readonly description: string;
  /** Whether the stack deploys its alarms (config `alarms`). */
  readonly enabled: boolean;
  readonly threshold: number;
  readonly unit: string;
  /** The figure the alarm compares: the run's rule error rate, the worst freshness, the downtime. */
  readonly value: number | null;
  /** ALARM: would have fired during the run; OK: data below the threshold; INSUFFICIENT_DATA: none yet. */
  readonly state: "OK" | "ALARM" | "INSUFFICIENT_DATA";
}

export interface WindowPoint {
  readonly seq: number;
  readonly start: string;
  readonly end: string;
  readonly row: Record<string, unknown>;
}

export interface ObjectLink {
  /** Key in the bucket; the page links to `/bucket/<key>`. */
  readonly key: string;
  readonly stream: string;
  readonly error: boolean;
}

export interface RuleErrorEntry {
  readonly at: number;
  readonly clientId: string;
  readonly topic: string;
  readonly message: string;
}

/** Everything the page draws. */
export interface DashboardSnapshot {
  readonly stack: string;
  readonly region: string;
  readonly bucket: string;
  readonly startedAt: number;
  readonly sampleMs: number;
  readonly timeScale: number;
  readonly periodSeconds: number;
  readonly ended: boolean;
  readonly widgets: DashboardWidget[];
  readonly series: Record<string, SeriesState>;
  readonly alarms: AlarmState[];
  readonly devices: DeviceRow[];
  /** Things of the fleet beyond the table's bound (`tableDevices`). */
  readonly devicesNotShown: number;
  /** Events of client ids outside the fleet beyond their bound (`strangers`). */
  readonly strangerEventsNotShown: number;
  readonly readings: Record<string, [number, Record<string, number>][]>;
  /** Aggregate columns of the windows (MIN/MAX...), in the spec's order. */
  readonly windowColumns: string[];
  readonly windows: WindowPoint[];
  readonly windowsDelivered: number;
  readonly objects: ObjectLink[];
  readonly ruleErrors: RuleErrorEntry[];
  readonly ruleErrorsTotal: number;
}

/** What changed since the previous tick (the SSE `tick` event). */
export interface DashboardTick {
  readonly at: number;
  readonly ended: boolean;
  /** One new point per series, and its total. */
  readonly series: Record<string, { readonly point: [number, number]; readonly total: number }>;
  readonly alarms: AlarmState[];
  readonly devices: DeviceRow[];
  readonly devicesNotShown: number;
  readonly strangerEventsNotShown: number;
  readonly readings: Record<string, [number, Record<string, number>][]>;
  readonly windows: WindowPoint[];
  readonly windowsDelivered: number;
  readonly objects: ObjectLink[];
  readonly ruleErrors: RuleErrorEntry[];
  readonly ruleErrorsTotal: number;
}

/** A fixed-size ring: push drops the oldest beyond `size`. */
class Ring<T> {
  readonly items: T[] = [];
  /** When the last item was taken (the readings' thinning). */
  lastAt = -Infinity;
  constructor(private readonly size: number) {}
  push(item: T): void {
    this.items.push(item);
    if (this.items.length > this.size) this.items.splice(0, this.items.length - this.size);
  }
}

interface SeriesSource {
  readonly key: string;
  readonly stat: MetricRef["statistic"];
  /** The cumulative count (Sum) or the current value. */
  readonly read: () => number;
  last: number;
  readonly state: SeriesState;
}

export class DashboardFeed {
  private readonly pipeline: LocalPipeline;
  private readonly now: () => number;
  private readonly opts: Required<
    Omit<DashboardFeedOptions, "pipeline" | "things" | "now" | "readingGapMs" | "log">
  >;
  private readonly startedAt: number;
  private readonly widgets: DashboardWidget[];
  private readonly series: SeriesSource[] = [];
  private readonly devices = new Map<string, DeviceRow>();
  private readonly dirty = new Set<string>();
  private readonly fleetNotListed: number;
  private strangers = 0;
  private strangerEventsNotShown = 0;
  private readonly readings = new Map<string, Ring<[number, Record<string, number>]>>();
  private readonly newReadings = new Map<string, [number, Record<string, number>][]>();
  /** Each device's last rule output and when it came: read into its row once a tick. */
  private readonly lastOutput = new Map<string, [number, SqlValue]>();
  private readonly readingGapMs: number;
  private readonly windows: Ring<WindowPoint>;
  private newWindows: WindowPoint[] = [];
  private windowSeq = 0;
  private readonly ruleErrors: Ring<RuleErrorEntry>;
  private ruleErrorsTotal = 0;
  private readonly strangerCap: number;
  private readonly fleet: ReadonlySet<string>;
  private deviceCounts: (() => ReadonlyMap<string, DeviceClientCounts>) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ended = false;
  private readonly listeners: ((tick: DashboardTick) => void)[] = [];
  private readonly log: (line: string) => void;
  /** Listener or sample failures, caught so that the pipeline never sees them. */
  failures = 0;
  private readonly streamLabels: Record<string, string>;

  constructor(options: DashboardFeedOptions) {
    this.pipeline = options.pipeline;
    this.now = options.now ?? Date.now;
    this.log = options.log ?? (() => undefined);
    this.opts = {
      sampleMs: options.sampleMs ?? 1000,
      points: options.points ?? 300,
      windows: options.windows ?? 500,
      recent: options.recent ?? 20,
      chartedDevices: options.chartedDevices ?? 64,
      strangers: options.strangers ?? 64,
      tableDevices: options.tableDevices ?? 1000,
      timeScale: options.timeScale ?? 1,
    };
    this.startedAt = this.now();
    this.readingGapMs = options.readingGapMs ?? this.opts.sampleMs / 10;
    this.windows = new Ring(this.opts.windows);
    this.ruleErrors = new Ring(this.opts.recent);
    // The table's rows: the fleet's first `tableDevices` things; the rest are counted, not listed
    // (a 10,000-device fleet would otherwise send every row every second).
    const listed = options.things.slice(0, this.opts.tableDevices);
    this.fleet = new Set(options.things);
    this.fleetNotListed = options.things.length - listed.length;
    this.strangerCap = this.opts.strangers;
    for (const thing of listed) {
      this.devices.set(thing, { thing, connected: false, connects: 0, matched: 0, denials: 0 });
      this.dirty.add(thing);
    }
    for (const thing of options.things.slice(0, this.opts.chartedDevices)) {
      this.readings.set(thing, new Ring(this.opts.points));
    }

    const p = this.pipeline;
    const plan = p.plan;
    const rule = plan.config.rule.name;
    const telemetry = plan.config.delivery.streamName;
    const windowsStream = p.windowsDelivery === undefined ? undefined : plan.windowsStreamName;
    this.streamLabels = {
      telemetry,
      ...(windowsStream === undefined ? {} : { windows: windowsStream }),
    };
    const flinkApp = p.analytics === undefined ? undefined : LOCAL_FLINK_APPLICATION;
    this.widgets = dashboardBody(
      plan.region,
      rule,
      this.streamLabels,
      windowsStream,
      flinkApp,
      plan.monitoring.alarms,
    ).widgets;

    const m = METRICS;
    const add = (ref: MetricRef, dimensionValue: string, read: () => number) =>
      this.series.push({
        key: metricKey(ref.namespace, ref.name, ref.dimension as string, dimensionValue),
        stat: ref.statistic,
        read,
        last: 0,
        state: { stat: ref.statistic, points: [], total: 0 },
      });
    add(m.messagesIn, MQTT_PROTOCOL, () => p.broker.stats.publishes);
    add(m.topicMatch, rule, () => p.rules.stats.onTopic);
    add(m.ruleErrors, rule, () => p.rules.stats.evaluationErrors + p.rules.stats.actionFailures);
    add(m.incomingRecords, telemetry, () => p.delivery.stats.recordsIn);
    add(m.deliveredRecords, telemetry, () => p.delivery.stats.recordsDelivered);
    add(m.deliveryFreshness, telemetry, () => this.freshness(telemetry));
    const wd = p.windowsDelivery;
    if (wd !== undefined && windowsStream !== undefined) {
      add(m.incomingRecords, windowsStream, () => wd.stats.recordsIn);
      add(m.deliveredRecords, windowsStream, () => wd.stats.recordsDelivered);
      add(m.deliveryFreshness, windowsStream, () => this.freshness(windowsStream));
    }
    if (flinkApp !== undefined) {
      add(m.flinkDowntime, flinkApp, () => (p.figures().flinkDowntimeMs ?? 0) / 1000);
    }

    this.listen();
    this.timer = setInterval(
      this.guarded(() => this.tick()),
      this.opts.sampleMs,
    );
    this.timer.unref();
  }

  /** The simulator's client-side counts per device, read at every sample. */
  setDeviceCounts(read: () => ReadonlyMap<string, DeviceClientCounts>): void {
    this.deviceCounts = read;
  }

  /** Receives every tick (the server turns them into SSE events). */
  onTick(listener: (tick: DashboardTick) => void): void {
    this.listeners.push(listener);
  }

  /** The stack's worst freshness so far, seconds of the stack's time (what the alarm compares). */
  private freshness(stream: string): number {
    return this.pipeline.figures().deliveryFreshnessSeconds[stream] ?? 0;
  }

  private row(clientId: string): DeviceRow | undefined {
    const known = this.devices.get(clientId);
    if (known !== undefined) return known;
    if (this.fleet.has(clientId)) return undefined; // beyond the table's bound
    if (this.strangers >= this.strangerCap) {
      this.strangerEventsNotShown++;
      return undefined;
    }
    this.strangers++;
    const row: DeviceRow = {
      thing: clientId,
      connected: false,
      connects: 0,
      matched: 0,
      denials: 0,
    };
    this.devices.set(clientId, row);
    return row;
  }

  private touch(clientId: string, change: (row: DeviceRow) => void): void {
    const row = this.row(clientId);
    if (row === undefined) return;
    change(row);
    this.dirty.add(row.thing);
  }

  private listen(): void {
    const { broker, rules, analytics } = this.pipeline;
    // Every listener runs inside the pipeline's own calls (the broker's events, the rule's
    // publish): guarded, so that nothing of the page can ever fail them.
    const g = this.guarded;
    broker.on(
      "connect",
      g((id) =>
        this.touch(id.clientId, (r) => {
          r.connected = true;
          r.connects++;
        }),
      ),
    );
    broker.on(
      "disconnect",
      g((id) => this.touch(id.clientId, (r) => (r.connected = false))),
    );
    broker.on(
      "publishDenied",
      g((id) => this.touch(id.clientId, (r) => r.denials++)),
    );
    broker.on(
      "subscribeDenied",
      g((id) => this.touch(id.clientId, (r) => r.denials++)),
    );
    broker.on(
      "connectRefused",
      g((clientId) => this.touch(clientId, (r) => r.denials++)),
    );
    // Per message only counts and references: the fields are read once a tick for the table, and
    // a device's chart takes at most one reading per `readingGapMs`, so a fast fleet costs the
    // pipeline no more than a slow one.
    rules.onOutput(g((output, message) => this.onRuleOutput(output, message)));
    rules.onError(
      g((e) => {
        this.ruleErrorsTotal++;
        this.ruleErrors.push({
          at: this.now(),
          clientId: e.clientId,
          topic: e.topic,
          message: e.failures.map((f) => f.errorMessage).join("; "),
        });
      }),
    );
    analytics?.onDelivered(
      g((row) => {
        const w: WindowPoint = {
          seq: this.windowSeq++,
          start: String(row.window_start),
          end: String(row.window_end),
          row,
        };
        this.windows.push(w);
        this.newWindows.push(w);
        if (this.newWindows.length > this.opts.windows) this.newWindows.shift();
      }),
    );
  }

  /**
   * What the feed does per message the rule matched (the pipeline's hot path): count it, keep a
   * reference to the output, and take a chart point at most once per `readingGapMs` a device.
   */
  onRuleOutput(
    output: SqlValue,
    message: { readonly clientId: string; readonly receivedAt: number },
  ): void {
    const row = this.row(message.clientId);
    if (row === undefined) return;
    row.matched++;
    this.lastOutput.set(row.thing, [message.receivedAt, output]);
    this.dirty.add(row.thing);
    const ring = this.readings.get(row.thing);
    if (ring === undefined || message.receivedAt - ring.lastAt < this.readingGapMs) return;
    const numbers = fields(output).numbers;
    if (Object.keys(numbers).length === 0) return;
    ring.lastAt = message.receivedAt;
    const point: [number, Record<string, number>] = [message.receivedAt, numbers];
    ring.push(point);
    const fresh = this.newReadings.get(row.thing) ?? [];
    fresh.push(point);
    if (fresh.length > this.opts.points) fresh.shift();
    this.newReadings.set(row.thing, fresh);
  }

  /**
   * A listener that cannot throw into its caller: a failure of the page is one log line (the
   * first; the rest are counted in `failures`), never the pipeline's.
   */
  private readonly guarded = <A extends unknown[]>(fn: (...args: A) => void) => {
    return (...args: A): void => {
      try {
        fn(...args);
      } catch (e) {
        this.failed(e);
      }
    };
  };

  private failed(e: unknown): void {
    this.failures++;
    if (this.failures === 1) {
      this.log(
        `dashboard: the page's figures failed (${e instanceof Error ? e.message : String(e)}); the pipeline goes on`,
      );
    }
  }

  private alarms(): AlarmState[] {
    const p = this.pipeline;
    const plan = p.plan;
    const a = plan.monitoring.alarms;
    const prefix = plan.monitoring.namePrefix;
    const findings = p.alarmFindings();
    const figures = p.figures();
    const fired = (kind: AlarmKind, subject: string) =>
      findings.some((f) => f.kind === kind && f.subject === subject);
    const state = (kind: AlarmKind, subject: string, value: number | null): AlarmState["state"] =>
      fired(kind, subject) ? "ALARM" : value === null ? "INSUFFICIENT_DATA" : "OK";
    const rule = plan.config.rule.name;
    const onTopic = p.rules.stats.onTopic;
    const errors = p.rules.stats.evaluationErrors + p.rules.stats.actionFailures;
    const rate = onTopic === 0 ? null : (100 * errors) / onTopic;
    const out: AlarmState[] = [
      {
        name: alarmName(prefix, "rule-error-rate"),
        kind: "rule-error-rate",
        subject: rule,
        description: ALARM_DESCRIPTIONS["rule-error-rate"],
        enabled: a.enabled,
        threshold: a.ruleErrorRatePercent,
        unit: "%",
        value: rate,
        state: state("rule-error-rate", rule, rate),
      },
    ];
    for (const [label, stream] of Object.entries(this.streamLabels)) {
      const seconds = figures.deliveryFreshnessSeconds[stream];
      const value = seconds === undefined || seconds === 0 ? null : seconds;
      out.push({
        name: alarmName(prefix, "delivery-freshness", label),
        kind: "delivery-freshness",
        subject: stream,
        description: ALARM_DESCRIPTIONS["delivery-freshness"],
        enabled: a.enabled,
        threshold: a.deliveryFreshnessSeconds,
        unit: "s",
        value,
        state: state("delivery-freshness", stream, value),
      });
    }
    if (figures.flinkDowntimeMs !== undefined) {
      out.push({
        name: alarmName(prefix, "flink-downtime"),
        kind: "flink-downtime",
        subject: "analytics",
        description: ALARM_DESCRIPTIONS["flink-downtime"],
        enabled: a.enabled,
        threshold: 0,
        unit: "ms",
        value: figures.flinkDowntimeMs,
        state: state("flink-downtime", "analytics", figures.flinkDowntimeMs),
      });
    }
    return out;
  }

  private objects(): ObjectLink[] {
    const p = this.pipeline;
    const bucketDir = p.delivery.bucket.dir;
    const errorRoot = p.plan.config.delivery.errorOutputPrefix.split("!{")[0];
    const links: ObjectLink[] = [];
    const streams: [string, string[]][] = [
      [p.plan.config.delivery.streamName, p.delivery.objects],
      ...(p.windowsDelivery === undefined
        ? []
        : [[p.plan.windowsStreamName, p.windowsDelivery.objects] as [string, string[]]]),
    ];
    for (const [stream, files] of streams) {
      for (const file of files.slice(-this.opts.recent)) {
        const key = path.relative(bucketDir, file).split(path.sep).join("/");
        if (key.startsWith("..")) continue;
        links.push({ key, stream, error: errorRoot !== "" && key.startsWith(errorRoot) });
      }
    }
    return links;
  }

  private sampleDevices(): void {
    const counts = this.deviceCounts?.();
    if (counts === undefined) return;
    for (const [thing, c] of counts) {
      const row = this.devices.get(thing);
      if (row === undefined) continue;
      const before = row.client;
      if (
        before === undefined ||
        before.sent !== c.sent ||
        before.acked !== c.acked ||
        before.rejected !== c.rejected
      ) {
        row.client = { sent: c.sent, acked: c.acked, rejected: c.rejected };
        this.dirty.add(thing);
      }
    }
  }

  /** The devices' last readings, from the outputs that came since the last tick. */
  private readLastOutputs(): void {
    for (const [thing, [at, output]] of this.lastOutput) {
      const row = this.devices.get(thing);
      if (row !== undefined) row.lastReading = { at, values: fields(output).values };
    }
    this.lastOutput.clear();
  }

  /** Takes one sample and hands the tick to the listeners. */
  tick(): DashboardTick {
    const at = this.now();
    const series: DashboardTick["series"] = {};
    for (const s of this.series) {
      const v = s.read();
      const value = s.stat === "Sum" ? v - s.last : v;
      s.last = v;
      const point: [number, number] = [at, value];
      s.state.points.push(point);
      if (s.state.points.length > this.opts.points) s.state.points.shift();
      s.state.total = v;
      series[s.key] = { point, total: v };
    }
    this.sampleDevices();
    this.readLastOutputs();
    const devices = [...this.dirty].flatMap((t) => {
      const r = this.devices.get(t);
      return r === undefined ? [] : [{ ...r }];
    });
    this.dirty.clear();
    const tick: DashboardTick = {
      at,
      ended: this.ended,
      series,
      alarms: this.alarms(),
      devices,
      devicesNotShown: this.fleetNotListed,
      strangerEventsNotShown: this.strangerEventsNotShown,
      readings: Object.fromEntries(this.newReadings),
      windows: this.newWindows,
      windowsDelivered: this.windowSeq,
      objects: this.objects(),
      ruleErrors: [...this.ruleErrors.items],
      ruleErrorsTotal: this.ruleErrorsTotal,
    };
    this.newReadings.clear();
    this.newWindows = [];
    for (const listen of this.listeners) listen(tick);
    return tick;
  }

  /** Everything the page draws, for a page that just opened (or missed ticks). */
  snapshot(): DashboardSnapshot {
    const p = this.pipeline;
    this.readLastOutputs();
    return {
      stack: p.plan.stack,
      region: p.plan.region,
      bucket: p.delivery.bucket.name,
      startedAt: this.startedAt,
      sampleMs: this.opts.sampleMs,
      timeScale: this.opts.timeScale,
      periodSeconds: p.plan.monitoring.alarms.periodSeconds,
      ended: this.ended,
      widgets: this.widgets,
      series: Object.fromEntries(
        this.series.map((s) => [
          s.key,
          { stat: s.stat, points: [...s.state.points], total: s.state.total },
        ]),
      ),
      alarms: this.alarms(),
      devices: [...this.devices.values()].map((r) => ({ ...r })),
      devicesNotShown: this.fleetNotListed,
      strangerEventsNotShown: this.strangerEventsNotShown,
      readings: Object.fromEntries([...this.readings].map(([t, r]) => [t, [...r.items]])),
      windowColumns: p.analytics?.operator.spec.aggregates.map((a) => a.as) ?? [],
      windows: [...this.windows.items],
      windowsDelivered: this.windowSeq,
      objects: this.objects(),
      ruleErrors: [...this.ruleErrors.items],
      ruleErrorsTotal: this.ruleErrorsTotal,
    };
  }

  /** The run is over (the pipeline stopped): one last sample, marked ended. Idempotent. */
  finish(): DashboardTick | undefined {
    if (this.timer === undefined) return undefined;
    clearInterval(this.timer);
    this.timer = undefined;
    this.ended = true;
    return this.tick();
  }
}
