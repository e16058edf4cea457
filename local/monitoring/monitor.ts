// The local pipeline's CloudWatch: the rule's figures cut into the alarm period (as CloudWatch sums
// TopicMatch and RuleErrors per period), each delivery stream's worst freshness, and the alarms
// the stack's thresholds would have fired on them (core/monitoring.ts evaluates, the same
// thresholds the program gives CloudWatch).
import {
  evaluateAlarms,
  type AlarmConfig,
  type AlarmFinding,
  type LocalFigures,
  type RulePeriod,
} from "../../core/monitoring";

export interface MonitorOptions {
  readonly alarms: AlarmConfig;
  readonly ruleName: string;
  /** The rule's counters now: messages on its topic, and messages its error action received. */
  readonly sample: () => { readonly onTopic: number; readonly errors: number };
  /** Each stream's worst freshness so far, ms of local time. */
  readonly freshness: () => Readonly<Record<string, number>>;
  /** Local time runs this many times faster than the stack's (`--fast`). @default 1 */
  readonly timeScale?: number;
  /**
   * The further rules whose error rate the stack alarms on (those logging errors to a group of
   * their own), their counters now, by rule name.
   */
  readonly rules?: () => Readonly<
    Record<string, { readonly onTopic: number; readonly errors: number }>
  >;
  /** Whether the stack runs the analytics job (its downtime is then a figure, always 0 locally). */
  readonly analytics?: boolean;
  /**
   * Unexpected device disconnections so far (what the presence rule counts into its metric), when
   * the stack has the presence alarm.
   */
  readonly disconnects?: () => number;
  readonly now?: () => number;
}

export class LocalMonitor {
  private readonly periods: RulePeriod[] = [];
  private readonly disconnectPeriods: { start: number; disconnects: number }[] = [];
  private lastDisconnects = 0;
  private readonly periodMs: number;
  private readonly scale: number;
  private readonly now: () => number;
  private start: number;
  private last = { onTopic: 0, errors: 0 };
  /** The further rules' periods and last counters, by rule name. */
  private readonly further = new Map<
    string,
    { periods: RulePeriod[]; last: { onTopic: number; errors: number } }
  >();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: MonitorOptions) {
    this.scale = opts.timeScale ?? 1;
    this.periodMs = (opts.alarms.periodSeconds * 1000) / this.scale;
    this.now = opts.now ?? Date.now;
    this.start = this.now();
    this.timer = setInterval(() => this.cut(), this.periodMs);
    // Sampling must not keep a process alive on its own.
    this.timer.unref();
  }

  /** Closes the current period (a partial one at the end of a run counts as a period). */
  private cut(): void {
    const s = this.opts.sample();
    const period = {
      start: this.start,
      onTopic: s.onTopic - this.last.onTopic,
      errors: s.errors - this.last.errors,
    };
    if (period.onTopic > 0 || period.errors > 0) this.periods.push(period);
    this.last = { onTopic: s.onTopic, errors: s.errors };
    if (this.opts.disconnects !== undefined) {
      const total = this.opts.disconnects();
      const disconnects = total - this.lastDisconnects;
      if (disconnects > 0) this.disconnectPeriods.push({ start: this.start, disconnects });
      this.lastDisconnects = total;
    }
    for (const [rule, now] of Object.entries(this.opts.rules?.() ?? {})) {
      let f = this.further.get(rule);
      if (f === undefined)
        this.further.set(rule, (f = { periods: [], last: { onTopic: 0, errors: 0 } }));
      const p = {
        start: this.start,
        onTopic: now.onTopic - f.last.onTopic,
        errors: now.errors - f.last.errors,
      };
      if (p.onTopic > 0 || p.errors > 0) f.periods.push(p);
      f.last = { onTopic: now.onTopic, errors: now.errors };
    }
    this.start = this.now();
  }

  /** Stops sampling; the figures are final. Idempotent. */
  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.cut();
  }

  /** The figures in the stack's time: freshness multiplied back by the speed-up. */
  figures(): LocalFigures {
    const freshness = Object.fromEntries(
      Object.entries(this.opts.freshness()).map(([k, ms]) => [k, (ms * this.scale) / 1000]),
    );
    return {
      rulePeriods: [...this.periods],
      deliveryFreshnessSeconds: freshness,
      // The local window runs in this process: it is down only when the process is.
      flinkDowntimeMs: this.opts.analytics === true ? 0 : undefined,
      ...(this.opts.disconnects === undefined
        ? {}
        : { disconnectPeriods: [...this.disconnectPeriods] }),
    };
  }

  /** The alarms that would have fired. */
  findings(): AlarmFinding[] {
    const further = [...this.further.entries()].flatMap(([rule, f]) =>
      evaluateAlarms(
        { rulePeriods: f.periods, deliveryFreshnessSeconds: {} },
        this.opts.alarms,
        rule,
      ),
    );
    return [...evaluateAlarms(this.figures(), this.opts.alarms, this.opts.ruleName), ...further];
  }
}
