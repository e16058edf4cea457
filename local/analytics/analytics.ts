// The local stand-in for the Managed Flink job: a tumbling-window operator over accepted telemetry
// that follows Flink's window semantics, and a runner that writes each closed window to the local bucket.
import type { SummaryRow } from "../../core/display";
import { COUNT_COLUMN, type Aggregate, type WindowSpec } from "../../core/analytics/window";

/** One accepted telemetry message, as the rule passed it on (a JSON object). */
export type TelemetryRecord = Readonly<Record<string, unknown>>;

/** A window that has closed: what the Flink job writes as one row. */
export interface ClosedWindow {
  /** Epoch ms, inclusive. */
  readonly start: number;
  /** Epoch ms, exclusive. */
  readonly end: number;
  /** The grouping fields' values (empty without groupBy). */
  readonly group: Readonly<Record<string, unknown>>;
  /** Aggregate column → value; null when no record had the field (SQL's NULL). */
  readonly values: Readonly<Record<string, number | null>>;
  /** Records in the window (COUNT(*)). */
  readonly count: number;
}

export interface WindowStats {
  /** Records added to a window. */
  readonly records: number;
  /** Event time: records whose window had already closed, dropped as Flink drops them. */
  readonly late: number;
  /** Event time: records without a usable `timestamp`, which Flink could not place either. */
  readonly untimed: number;
  /** Windows closed (one per window and group). */
  readonly windows: number;
}

interface Accumulator {
  n: number;
  sum: number;
  min: number;
  max: number;
}

interface OpenWindow {
  readonly start: number;
  readonly end: number;
  readonly group: Record<string, unknown>;
  count: number;
  readonly acc: Accumulator[];
  /** Arrival order of the window's first record: closed windows come out in it within one end. */
  readonly seq: number;
}

function numeric(v: unknown): number | undefined {
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

function result(a: Aggregate, acc: Accumulator): number | null {
  if (a.fn === "COUNT") return acc.n;
  if (acc.n === 0) return null;
  switch (a.fn) {
    case "MAX":
      return acc.max;
    case "MIN":
      return acc.min;
    case "SUM":
      return acc.sum;
    case "AVG":
      return acc.sum / acc.n;
  }
}

/**
 * Tumbling windows over telemetry, as the generated Flink SQL computes them.
 *
 * - Windows are `[k·len, (k+1)·len)` in epoch ms, aligned to the epoch like Flink's TUMBLE.
 * - Processing time: a record belongs to the window of its arrival time; a window closes once the
 *   clock (the next arrival or `advance(now)`) reaches its end. Nothing is ever late.
 * - Event time: a record belongs to the window of its payload `timestamp`. The watermark is the
 *   largest timestamp seen minus `watermarkSeconds` (Flink's `WATERMARK FOR ts AS ts - INTERVAL`);
 *   a window closes when the watermark reaches its last millisecond (end - 1), and a record whose
 *   window has closed is late: counted and dropped. Flink emits watermarks every 200 ms rather than
 *   per record, so on Flink a window can close a little later than here, never earlier.
 */
export class WindowOperator {
  private readonly lengthMs: number;
  private readonly open = new Map<string, OpenWindow>();
  private maxEventTime = -Infinity;
  /** The earliest end among open windows: closing checks nothing until the clock reaches it. */
  private nextEnd = Infinity;
  private seq = 0;
  private counts = { records: 0, late: 0, untimed: 0, windows: 0 };

  constructor(readonly spec: WindowSpec) {
    this.lengthMs = spec.windowSeconds * 1000;
  }

  /** Event time: the current watermark in epoch ms (-Infinity before the first record). */
  get watermark(): number {
    return this.maxEventTime - this.spec.watermarkSeconds * 1000;
  }

  get stats(): WindowStats {
    return { ...this.counts };
  }

  /** Windows still open. */
  get openWindows(): number {
    return this.open.size;
  }

  /** Adds one record that arrived at `arrivalMs`; returns the windows that closed because of it. */
  add(record: TelemetryRecord, arrivalMs: number): ClosedWindow[] {
    if (this.spec.time === "processing") {
      const closed = this.closeUpTo(arrivalMs);
      this.place(record, arrivalMs);
      return closed;
    }
    const ts = numeric(record.timestamp);
    if (ts === undefined) {
      this.counts.untimed++;
      return [];
    }
    // The watermark so far decides lateness; the record moves it only afterwards, as in Flink,
    // where watermarks follow the records they were computed from.
    const end = this.windowStart(ts) + this.lengthMs;
    if (end - 1 <= this.watermark) {
      this.counts.late++;
      return [];
    }
    this.place(record, ts);
    this.maxEventTime = Math.max(this.maxEventTime, ts);
    return this.closeUpTo(this.watermark + 1);
  }

  /** Processing time: closes the windows that ended by `nowMs`. Event time ignores the clock. */
  advance(nowMs: number): ClosedWindow[] {
    return this.spec.time === "processing" ? this.closeUpTo(nowMs) : [];
  }

  /** Closes every open window (end of input: Flink's final watermark does the same). */
  flush(): ClosedWindow[] {
    return this.closeUpTo(Infinity);
  }

  private windowStart(t: number): number {
    return Math.floor(t / this.lengthMs) * this.lengthMs;
  }

  private place(record: TelemetryRecord, t: number): void {
    const start = this.windowStart(t);
    const group: Record<string, unknown> = {};
    for (const g of this.spec.groupBy) group[g] = record[g] ?? null;
    const key = JSON.stringify([start, ...this.spec.groupBy.map((g) => group[g])]);
    let w = this.open.get(key);
    if (w === undefined) {
      w = {
        start,
        end: start + this.lengthMs,
        group,
        count: 0,
        acc: this.spec.aggregates.map(() => ({ n: 0, sum: 0, min: Infinity, max: -Infinity })),
        seq: this.seq++,
      };
      this.open.set(key, w);
      this.nextEnd = Math.min(this.nextEnd, w.end);
    }
    w.count++;
    this.spec.aggregates.forEach((a, i) => {
      const acc = w.acc[i];
      if (a.field === "*") {
        acc.n++;
        return;
      }
      const raw = record[a.field];
      if (a.fn === "COUNT") {
        if (raw !== undefined && raw !== null) acc.n++;
        return;
      }
      const v = numeric(raw);
      if (v === undefined) return;
      acc.n++;
      acc.sum += v;
      acc.min = Math.min(acc.min, v);
      acc.max = Math.max(acc.max, v);
    });
    this.counts.records++;
  }

  /** Closes the windows whose end is at or before `t`, in order of end, then of first arrival. */
  private closeUpTo(t: number): ClosedWindow[] {
    if (t < this.nextEnd) return [];
    const due: Array<[string, OpenWindow]> = [];
    let nextEnd = Infinity;
    for (const entry of this.open) {
      if (entry[1].end <= t) due.push(entry);
      else nextEnd = Math.min(nextEnd, entry[1].end);
    }
    this.nextEnd = nextEnd;
    due.sort(([, a], [, b]) => a.end - b.end || a.seq - b.seq);
    return due.map(([key, w]) => {
      this.open.delete(key);
      this.counts.windows++;
      const values: Record<string, number | null> = {};
      this.spec.aggregates.forEach((a, i) => (values[a.as] = result(a, w.acc[i])));
      return { start: w.start, end: w.end, group: w.group, values, count: w.count };
    });
  }
}

/** One closed window as the JSON object the Flink sink writes (columns of core/analytics/window.ts). */
export function windowRow(w: ClosedWindow): Record<string, unknown> {
  return {
    window_start: new Date(w.start).toISOString(),
    window_end: new Date(w.end).toISOString(),
    ...w.group,
    ...w.values,
    [COUNT_COLUMN]: w.count,
  };
}

/** One line for the pipeline's log: `window 09:00:00–09:00:10Z thing=a max_temp=12.8 (3 records)`. */
export function describeWindow(w: ClosedWindow): string {
  const time = (ms: number) => new Date(ms).toISOString().slice(11, 19);
  const parts = [
    ...Object.entries(w.group).map(([k, v]) => `${k}=${String(v)}`),
    ...Object.entries(w.values).map(([k, v]) => `${k}=${v === null ? "null" : v}`),
  ];
  return `window ${time(w.start)}–${time(w.end)}Z ${parts.join(" ")} (${w.count} record${w.count === 1 ? "" : "s"})`;
}

/** One line describing a spec: `10 s tumbling windows on processing time: MAX(max_temperature) AS max_temp, ...`. */
export function describeSpec(spec: WindowSpec): string {
  const time =
    spec.time === "event" ? `event time (watermark ${spec.watermarkSeconds} s)` : "processing time";
  const aggregates = spec.aggregates.map((a) => `${a.fn}(${a.field}) AS ${a.as}`).join(", ");
  const group = spec.groupBy.length > 0 ? ` per ${spec.groupBy.join(", ")}` : "";
  return `${spec.windowSeconds} s tumbling windows on ${time}${group}: ${aggregates}`;
}

/**
 * Where closed windows go: the local stand-in for the windows' Firehose stream (a
 * LocalDeliveryStream with core/delivery.ts's windowsDeliveryConfig fits). `put` resolves once the
 * record is durable.
 */
export interface WindowSink {
  put(record: Buffer): Promise<void>;
}

export interface LocalAnalyticsOptions {
  readonly spec: WindowSpec;
  readonly sink: WindowSink;
  /** Receives one line per closed window and per write failure. */
  readonly log?: (line: string) => void;
  /** The clock, epoch ms; default Date.now. */
  readonly now?: () => number;
  /** Processing time: how often the clock closes windows when no record arrives; default 250 ms. */
  readonly tickMs?: number;
}

/**
 * The local analytics stage: feeds accepted telemetry to a WindowOperator and hands every closed
 * window, as one JSON record ending in a newline, to the windows' delivery stream. In the cloud
 * the Flink job writes the same JSON to a Kinesis stream and Firehose appends the newline
 * (AppendDelimiterToRecord); both deliver objects of JSON lines under the spec's prefix. A failed
 * put keeps its window and retries with the next one; `stop()` flushes the open windows and fails
 * if they still cannot be delivered.
 */
export class LocalAnalytics {
  readonly operator: WindowOperator;
  private readonly log: (line: string) => void;
  private readonly now: () => number;
  private pending: string[] = [];
  private writing: Promise<void> = Promise.resolve();
  private readonly timer: NodeJS.Timeout | undefined;
  private delivered = 0;
  private stopped = false;
  private readonly deliveredListeners: ((row: Record<string, unknown>) => void)[] = [];

  constructor(private readonly opts: LocalAnalyticsOptions) {
    this.operator = new WindowOperator(opts.spec);
    this.log = opts.log ?? (() => undefined);
    this.now = opts.now ?? Date.now;
    if (opts.spec.time === "processing") {
      this.timer = setInterval(
        () => this.emit(this.operator.advance(this.now())),
        opts.tickMs ?? 250,
      );
      this.timer.unref();
    }
  }

  /** Feeds one accepted message; `arrivalMs` defaults to the clock. */
  accept(record: TelemetryRecord, arrivalMs: number = this.now()): void {
    if (this.stopped) throw new Error("local analytics is stopped");
    this.emit(this.operator.add(record, arrivalMs));
  }

  /** Adds a consumer of every window row once its delivery stream took it (the local dashboard). */
  onDelivered(listener: (row: Record<string, unknown>) => void): void {
    this.deliveredListeners.push(listener);
  }

  /** Windows handed to the delivery stream so far. */
  get windowsDelivered(): number {
    return this.delivered;
  }

  /** Lines for the pipeline's end-of-run summary. */
  summary(): SummaryRow[] {
    const s = this.operator.stats;
    const rows: SummaryRow[] = [
      {
        label: `analytics windows delivered under ${this.opts.spec.prefix}`,
        value: this.delivered,
      },
    ];
    if (this.opts.spec.time === "event") {
      rows.push({ label: "analytics late records dropped", value: s.late });
    }
    return rows;
  }

  /** Waits until every closed window so far is delivered (or has failed and stays pending). */
  async drain(): Promise<void> {
    await this.writing;
  }

  /** Closes all open windows, delivers them, and stops the clock. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    if (!this.stopped) {
      this.stopped = true;
      this.emit(this.operator.flush());
    }
    await this.writing;
    if (this.pending.length > 0) {
      // One more try: an error now is the caller's to report, with the windows still in memory.
      this.writing = this.write();
      await this.writing;
      if (this.pending.length > 0) {
        throw new Error(
          `local analytics could not deliver ${this.pending.length} window(s) under ${this.opts.spec.prefix}; see the log`,
        );
      }
    }
  }

  private emit(closed: ClosedWindow[]): void {
    if (closed.length === 0) return;
    for (const w of closed) {
      this.log(`analytics: ${describeWindow(w)}`);
      this.pending.push(JSON.stringify(windowRow(w)));
    }
    this.writing = this.writing.then(() => this.write());
  }

  private async write(): Promise<void> {
    while (this.pending.length > 0) {
      const line = this.pending[0];
      try {
        await this.opts.sink.put(Buffer.from(`${line}\n`));
      } catch (e) {
        this.log(
          `analytics: could not deliver a window under ${this.opts.spec.prefix} (${(e as Error).message}); keeping ${this.pending.length} window(s) for the next try`,
        );
        return;
      }
      // Only what was delivered leaves the queue; windows closed meanwhile stay for the next try.
      this.pending.shift();
      this.delivered++;
      if (this.deliveredListeners.length > 0) {
        const row = JSON.parse(line) as Record<string, unknown>;
        for (const listen of this.deliveredListeners) listen(row);
      }
    }
  }
}
