// The local CloudWatch the rules' actions write to: metric data (PutMetricData) aggregated per
// alarm period as CloudWatch does, the alarms the stack creates on them, and the alarm states a
// CloudWatch alarm action sets (SetAlarmState). The run's dashboard and alarm report read it.
import {
  evaluateMetricAlarm,
  type AlarmFinding,
  type MetricAlarmPlan,
  type MetricPeriod,
} from "../../core/monitoring";
import type { SummaryRow } from "../../core/display";
import { ActionFailure, type LocalCloudWatch, type MetricDatum } from "../rule/actions/action";

/** The most metric series (namespace + name) one run keeps; a bound on memory a template can fill. */
export const LOCAL_METRIC_SERIES_MAX = 1000;
/** The most periods one series keeps (the oldest go first). */
export const LOCAL_METRIC_PERIODS_MAX = 10_000;
/** The most alarm-state changes kept for the report (the count goes on). */
export const LOCAL_ALARM_STATES_MAX = 1000;

/** One SetAlarmState a rule made. */
export interface AlarmStateChange {
  readonly alarmName: string;
  readonly state: string;
  readonly reason: string;
  readonly at: number;
}

interface Series {
  readonly namespace: string;
  readonly metricName: string;
  readonly unit: string;
  readonly periods: Map<
    number,
    { sum: number; sampleCount: number; minimum: number; maximum: number }
  >;
  samples: number;
  sum: number;
}

export interface LocalCloudWatchOptions {
  readonly metricAlarms: readonly MetricAlarmPlan[];
  /** The stack's own alarm names' prefix: SetAlarmState on `<prefix>-...` is the stack's alarm. */
  readonly alarmPrefix: string;
  /** Local time runs this many times faster than the stack's (`--fast`). @default 1 */
  readonly timeScale?: number;
  readonly log?: (line: string) => void;
}

export class LocalCloudWatchStore implements LocalCloudWatch {
  private readonly series = new Map<string, Series>();
  private readonly states: AlarmStateChange[] = [];
  private stateChanges = 0;
  /** Data points refused because the series bound was reached. */
  dropped = 0;
  private readonly scale: number;
  private readonly log: (line: string) => void;

  constructor(private readonly opts: LocalCloudWatchOptions) {
    this.scale = opts.timeScale ?? 1;
    this.log = opts.log ?? (() => undefined);
  }

  /** Local ms of one period of `seconds` stack seconds. */
  private periodMs(seconds: number): number {
    return (seconds * 1000) / this.scale;
  }

  putMetric(d: MetricDatum): void {
    const key = `${d.namespace}\u0000${d.metricName}`;
    let s = this.series.get(key);
    if (s === undefined) {
      if (this.series.size >= LOCAL_METRIC_SERIES_MAX) {
        if (this.dropped++ === 0) {
          this.log(
            `cloudwatch: more than ${LOCAL_METRIC_SERIES_MAX} metrics in one run; ${d.namespace}/${d.metricName} and later new metrics are not kept`,
          );
        }
        return;
      }
      s = {
        namespace: d.namespace,
        metricName: d.metricName,
        unit: d.unit,
        periods: new Map(),
        samples: 0,
        sum: 0,
      };
      this.series.set(key, s);
    }
    // Periods of the shortest alarm on the metric, else one minute (CloudWatch's standard resolution).
    const seconds = Math.min(
      60,
      ...this.opts.metricAlarms
        .filter((a) => a.namespace === d.namespace && a.metricName === d.metricName)
        .map((a) => a.periodSeconds),
    );
    const ms = this.periodMs(seconds);
    const start = Math.floor(d.timestamp / ms) * ms;
    const p = s.periods.get(start);
    if (p === undefined) {
      if (s.periods.size >= LOCAL_METRIC_PERIODS_MAX) {
        const oldest = s.periods.keys().next().value as number;
        s.periods.delete(oldest);
      }
      s.periods.set(start, { sum: d.value, sampleCount: 1, minimum: d.value, maximum: d.value });
    } else {
      p.sum += d.value;
      p.sampleCount++;
      p.minimum = Math.min(p.minimum, d.value);
      p.maximum = Math.max(p.maximum, d.value);
    }
    s.samples++;
    s.sum += d.value;
  }

  setAlarmState(alarmName: string, state: string, reason: string, at: number): void {
    const known =
      this.opts.metricAlarms.some((a) => a.name === alarmName) ||
      alarmName.startsWith(`${this.opts.alarmPrefix}-`);
    if (!known) {
      // SetAlarmState on an alarm that does not exist: ResourceNotFound
      // (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_SetAlarmState.html).
      throw new ActionFailure(
        `Failed to set alarm state: ResourceNotFound: alarm ${alarmName} does not exist in this stack`,
        alarmName,
      );
    }
    this.stateChanges++;
    if (this.states.length < LOCAL_ALARM_STATES_MAX)
      this.states.push({ alarmName, state, reason, at });
  }

  /** The periods of one metric, in order (local time). */
  periodsOf(namespace: string, metricName: string, periodSeconds: number): MetricPeriod[] {
    const s = this.series.get(`${namespace}\u0000${metricName}`);
    if (s === undefined) return [];
    const ms = this.periodMs(periodSeconds);
    const merged = new Map<number, MetricPeriod>();
    for (const [start, p] of [...s.periods.entries()].sort((a, b) => a[0] - b[0])) {
      const key = Math.floor(start / ms) * ms;
      const m = merged.get(key);
      merged.set(
        key,
        m === undefined
          ? { start: key, ...p }
          : {
              start: key,
              sum: m.sum + p.sum,
              sampleCount: m.sampleCount + p.sampleCount,
              minimum: Math.min(m.minimum, p.minimum),
              maximum: Math.max(m.maximum, p.maximum),
            },
      );
    }
    return [...merged.values()];
  }

  /** What the rules' alarms would have flagged: metric alarms, and states set to ALARM. */
  findings(): AlarmFinding[] {
    const out: AlarmFinding[] = [];
    for (const a of this.opts.metricAlarms) {
      const periods = this.periodsOf(a.namespace, a.metricName, a.periodSeconds);
      const f = evaluateMetricAlarm(a, periods, this.periodMs(a.periodSeconds));
      if (f !== undefined) out.push(f);
    }
    for (const s of this.states.filter((x) => x.state === "ALARM")) {
      out.push({
        kind: "alarm-state",
        subject: s.alarmName,
        message: `alarm ${s.alarmName} set to ALARM by a rule at ${new Date(s.at).toISOString()}: ${s.reason}`,
      });
    }
    return out;
  }

  /** The dashboard's rows: each metric's samples and sum, the alarm states set. */
  rows(): SummaryRow[] {
    const rows: SummaryRow[] = [...this.series.values()].map((s) => ({
      label: `metric ${s.namespace}/${s.metricName} (samples / sum, ${s.unit})`,
      value: `${s.samples} / ${Number(s.sum.toFixed(6))}`,
    }));
    if (this.stateChanges > 0) {
      rows.push({ label: "alarm states set by rules (SetAlarmState)", value: this.stateChanges });
    }
    if (this.dropped > 0)
      rows.push({ label: "metric data not kept (over the series bound)", value: this.dropped });
    return rows;
  }
}
