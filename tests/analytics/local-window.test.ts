import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadStackConfig } from "../../core/stack-config";
import { parseWindowSpec, type WindowSpec } from "../../core/analytics/window";
import {
  LocalAnalytics,
  WindowOperator,
  windowRow,
  type ClosedWindow,
  type TelemetryRecord,
} from "../../local/analytics/analytics";
import { windowsDeliveryConfig } from "../../core/delivery";
import { until } from "../helpers/wait";
import { LocalDeliveryStream } from "../../local/delivery";
import type { LocalBucket } from "../../local/storage/s3";

const THINGS = ["store-sensor-seattle1", "store-sensor-seattle2", "store-sensor-seattle3"];
/** Not aligned to a window, so the first and last windows are partial. */
const BASE = Date.UTC(2026, 10, 26, 9, 0, 3) + 300;

/** The vega-datasets Seattle weather history, one reading per day, replayed one per second. */
function seattle(): TelemetryRecord[] {
  // The package exports only its JS entry (build/index.js); the CSVs sit in data/ beside build/.
  const file = path.join(
    path.dirname(require.resolve("vega-datasets")),
    "..",
    "data",
    "seattle-weather.csv",
  );
  const csv = fs.readFileSync(file, "utf8");
  const [header, ...rows] = csv.trim().split("\n");
  assert.equal(header, "date,precipitation,temp_max,temp_min,wind,weather");
  return rows.map((row, i) => {
    const [, precipitation, tempMax, tempMin, wind, weather] = row.split(",");
    const max = Number(tempMax);
    const min = Number(tempMin);
    return {
      thing: THINGS[i % THINGS.length],
      // One a second, with a sub-second wobble so windows do not all hold exactly ten.
      timestamp: BASE + i * 1000 + ((i * 389) % 1000),
      temperature: Math.round(((max + min) / 2) * 10) / 10,
      max_temperature: max,
      min_temperature: min,
      precipitation: Number(precipitation),
      wind: Number(wind),
      weather,
    };
  });
}

function seedSpec(): WindowSpec {
  const spec = loadStackConfig("dev").analytics;
  assert.ok(spec);
  return spec;
}

/** A deterministic pseudo-random generator (mulberry32), so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The expected windows, computed directly: bucket every record by floor(t / len) and its group,
 * then MAX/MIN/COUNT by plain reduction. Sorted by start and group.
 */
function reference(
  records: readonly TelemetryRecord[],
  lengthMs: number,
  timeOf: (r: TelemetryRecord) => number,
  groupBy: readonly string[],
) {
  const buckets = new Map<string, TelemetryRecord[]>();
  for (const r of records) {
    const start = Math.floor(timeOf(r) / lengthMs) * lengthMs;
    const key = JSON.stringify([start, ...groupBy.map((g) => r[g])]);
    buckets.set(key, [...(buckets.get(key) ?? []), r]);
  }
  return [...buckets.entries()]
    .map(([key, rs]) => {
      const [start, ...groupValues] = JSON.parse(key) as [number, ...unknown[]];
      return {
        start,
        end: start + lengthMs,
        group: Object.fromEntries(groupBy.map((g, i) => [g, groupValues[i]])),
        values: {
          max_temp: Math.max(...rs.map((r) => r.max_temperature as number)),
          min_temp: Math.min(...rs.map((r) => r.min_temperature as number)),
        },
        count: rs.length,
      };
    })
    .sort(byStartAndGroup);
}

function byStartAndGroup(a: ClosedWindow, b: ClosedWindow): number {
  return a.start - b.start || JSON.stringify(a.group).localeCompare(JSON.stringify(b.group));
}

/** Feeds records in order with their arrival times; returns every window, in emission order. */
function runAll(op: WindowOperator, feed: ReadonlyArray<[TelemetryRecord, number]>) {
  const out: ClosedWindow[] = [];
  for (const [r, at] of feed) out.push(...op.add(r, at));
  out.push(...op.flush());
  return out;
}

describe("local window operator on the replayed Seattle history", () => {
  const records = seattle();

  it("replays 1461 days", () => assert.equal(records.length, 1461));

  it("processing time: the seed's MAX/MIN every 10 s matches a direct computation", () => {
    const op = new WindowOperator(seedSpec());
    // Arrival a little after the reading was taken, in order.
    const feed = records.map((r): [TelemetryRecord, number] => [r, (r.timestamp as number) + 40]);
    const windows = runAll(op, feed);
    assert.deepEqual(
      [...windows].sort(byStartAndGroup),
      reference(records, 10_000, (r) => (r.timestamp as number) + 40, []),
    );
    assert.equal(op.stats.records, records.length);
    assert.equal(op.stats.late, 0);
    // Windows come out in time order, each once the clock passed its end.
    for (let i = 1; i < windows.length; i++) assert.ok(windows[i].start > windows[i - 1].start);
  });

  it("processing time: a window closes when the clock passes its end, without a new record", () => {
    const op = new WindowOperator(seedSpec());
    const t0 = Date.UTC(2026, 10, 26, 9, 0, 0);
    assert.deepEqual(op.add(records[0], t0 + 1_000), []);
    assert.deepEqual(op.add(records[1], t0 + 9_999), []);
    assert.deepEqual(op.advance(t0 + 9_999), []);
    const [w] = op.advance(t0 + 10_000);
    assert.deepEqual(
      { start: w.start, end: w.end, count: w.count },
      { start: t0, end: t0 + 10_000, count: 2 },
    );
    assert.equal(op.openWindows, 0);
  });

  it("event time grouped by thing: out-of-order records within the watermark all count", () => {
    const spec: WindowSpec = { ...seedSpec(), time: "event", groupBy: ["thing"] };
    const random = rng(7);
    // Each record is delayed by up to 3 s, less than the 5 s watermark: arrival order shuffles.
    const feed = records
      .map((r): [TelemetryRecord, number] => [r, (r.timestamp as number) + random() * 3_000])
      .sort((a, b) => a[1] - b[1]);
    const outOfOrder = feed.filter(
      ([r], i) => i > 0 && (r.timestamp as number) < (feed[i - 1][0].timestamp as number),
    ).length;
    assert.ok(outOfOrder > 300, `the replay is out of order (${outOfOrder} records)`);

    const op = new WindowOperator(spec);
    const windows = runAll(op, feed);
    assert.equal(op.stats.late, 0);
    assert.deepEqual(
      [...windows].sort(byStartAndGroup),
      reference(records, 10_000, (r) => r.timestamp as number, ["thing"]),
    );
  });

  it("event time: records later than the watermark are counted and dropped, as Flink does", () => {
    const spec: WindowSpec = { ...seedSpec(), time: "event" };
    const random = rng(11);
    const stragglers = new Set<number>();
    while (stragglers.size < 25) stragglers.add(10 + Math.floor(random() * (records.length - 60)));
    // Stragglers arrive 30 s of event time late: their window (10 s) plus the watermark (5 s) is long gone.
    const feed = records
      .map((r, i): [TelemetryRecord, number] => [
        r,
        (r.timestamp as number) + (stragglers.has(i) ? 30_000 : random() * 3_000),
      ])
      .sort((a, b) => a[1] - b[1]);

    const op = new WindowOperator(spec);
    const windows = runAll(op, feed);
    assert.equal(op.stats.late, stragglers.size);
    assert.equal(op.stats.records, records.length - stragglers.size);
    const onTime = records.filter((_, i) => !stragglers.has(i));
    assert.deepEqual(
      [...windows].sort(byStartAndGroup),
      reference(onTime, 10_000, (r) => r.timestamp as number, []),
    );
  });
});

describe("local window operator semantics", () => {
  const t0 = Date.UTC(2026, 10, 26, 9, 0, 0);
  const reading = (timestamp: number, extra: Record<string, unknown> = {}): TelemetryRecord => ({
    thing: "store-sensor-seattle1",
    timestamp,
    temperature: 10,
    max_temperature: 12,
    min_temperature: 8,
    ...extra,
  });

  it("event time closes [s, e) once the watermark reaches e - 1 and drops later records for it", () => {
    const op = new WindowOperator({ ...seedSpec(), time: "event", watermarkSeconds: 5 });
    assert.deepEqual(op.add(reading(t0 + 2_000), 0), []);
    // Watermark t0 + 9_998: the window's last millisecond (t0 + 9_999) is not yet passed.
    assert.deepEqual(op.add(reading(t0 + 14_998), 0), []);
    assert.deepEqual(op.add(reading(t0 + 9_999), 0), [], "still on time: its window is open");
    const closed = op.add(reading(t0 + 14_999), 0);
    assert.deepEqual(
      closed.map((w) => [w.start - t0, w.count]),
      [[0, 2]],
    );
    assert.deepEqual(op.add(reading(t0 + 9_999), 0), []);
    assert.equal(op.stats.late, 1, "a record for the closed window is late");
    op.add(reading(t0 + 10_000), 0);
    assert.equal(op.stats.late, 1, "the next window is still open");
    assert.deepEqual(
      op.advance(t0 + 3_600_000),
      [],
      "the wall clock does not close event-time windows",
    );
  });

  it("event time counts records without a timestamp apart and drops them", () => {
    const op = new WindowOperator({ ...seedSpec(), time: "event" });
    op.add({ thing: "x", max_temperature: 1, min_temperature: 0 }, 0);
    assert.deepEqual(op.stats, { records: 0, late: 0, untimed: 1, windows: 0 });
  });

  it("AVG, SUM and COUNT(field) skip missing fields; an aggregate over nothing is null", () => {
    const spec = parseWindowSpec({
      windowSeconds: 60,
      aggregates: [
        { fn: "AVG", field: "temperature", as: "avg_t" },
        { fn: "SUM", field: "precipitation", as: "rain" },
        { fn: "COUNT", field: "precipitation", as: "rain_readings" },
        { fn: "MAX", field: "wind", as: "gust" },
        { fn: "COUNT", as: "n" },
      ],
    });
    assert.ok(spec);
    const op = new WindowOperator(spec);
    op.add(reading(t0, { temperature: 9, precipitation: 1.5 }), t0);
    op.add(reading(t0 + 1, { temperature: 12 }), t0 + 1);
    op.add(reading(t0 + 2, { temperature: 12, precipitation: 2 }), t0 + 2);
    const [w] = op.flush();
    assert.deepEqual(w.values, { avg_t: 11, rain: 3.5, rain_readings: 2, gust: null, n: 3 });
    assert.equal(w.count, 3);
  });
});

describe("local analytics delivers closed windows through the windows' delivery stream", () => {
  let stateDir: string;
  beforeEach(() => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "iot-analytics-"));
  });
  afterEach(() => fs.rmSync(stateDir, { recursive: true, force: true }));

  /** The windows' local Firehose stream, as the pipeline opens it for the dev stack. */
  function windowsStream(spec: WindowSpec) {
    return LocalDeliveryStream.open({
      stack: "dev",
      delivery: windowsDeliveryConfig(loadStackConfig("dev").delivery, spec.prefix),
      bucket: "iot-pipeline-dev-local",
      stateDir,
    });
  }

  /** Every JSON line of every object under the prefix (Firehose's YYYY/MM/dd/HH/ folders below it). */
  function linesUnder(bucket: LocalBucket, prefix: string): unknown[] {
    const dir = path.join(bucket.dir, ...prefix.split("/").filter(Boolean));
    return (fs.readdirSync(dir, { recursive: true }) as string[])
      .filter((f) => fs.statSync(path.join(dir, f)).isFile() && !f.endsWith(".tmp"))
      .sort()
      .flatMap((f) =>
        fs
          .readFileSync(path.join(dir, f), "utf8")
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l) as unknown),
      );
  }

  it("one JSON line per window under the analytics prefix in Firehose's layout, printed as they close, flushed on stop", async () => {
    const records = seattle().slice(0, 200);
    const spec: WindowSpec = { ...seedSpec(), time: "event", groupBy: ["thing"] };
    const sink = await windowsStream(spec);
    const log: string[] = [];
    const analytics = new LocalAnalytics({ spec, sink, log: (l) => log.push(l) });
    for (const r of records) analytics.accept(r, 0);
    await analytics.drain();
    assert.ok(analytics.windowsDelivered > 0, "windows are delivered as they close, not at stop");
    await analytics.stop();
    await sink.close();

    const expected = reference(records, 10_000, (r) => r.timestamp as number, ["thing"]);
    const rows = linesUnder(sink.bucket, spec.prefix);
    assert.deepEqual(
      [...rows].sort((a, b) =>
        JSON.stringify([
          (a as { window_start: string }).window_start,
          (a as { thing: string }).thing,
        ]).localeCompare(
          JSON.stringify([
            (b as { window_start: string }).window_start,
            (b as { thing: string }).thing,
          ]),
        ),
      ),
      expected.map(windowRow),
    );
    assert.deepEqual(Object.keys(rows[0] as object), [
      "window_start",
      "window_end",
      "thing",
      "max_temp",
      "min_temp",
      "records",
    ]);
    assert.equal(log.length, expected.length);
    assert.match(
      log[0],
      /^analytics: window \d\d:\d\d:\d\d–\d\d:\d\d:\d\dZ thing=store-sensor-seattle\d max_temp=[\d.-]+ min_temp=[\d.-]+ \(\d+ records?\)$/,
    );
    // Firehose's key: <prefix>YYYY/MM/dd/HH/<stream>-1-<yyyy-MM-dd-HH-mm-ss>-<uuid>, no extension.
    assert.ok(sink.objects.length > 0);
    for (const o of sink.objects) {
      assert.match(
        path.relative(sink.bucket.dir, o),
        /^analytics\/\d{4}\/\d\d\/\d\d\/\d\d\/weather-data-stream-windows-1-\d{4}(-\d\d){5}-[0-9a-f-]{36}$/,
      );
    }
  });

  it("keeps windows whose delivery failed and delivers them with the next one", async () => {
    const delivered: string[] = [];
    let failures = 1;
    const flaky = {
      put: (record: Buffer) => {
        if (failures-- > 0) return Promise.reject(new Error("disk full"));
        delivered.push(record.toString());
        return Promise.resolve();
      },
    };
    const log: string[] = [];
    const spec: WindowSpec = { ...seedSpec(), time: "event", watermarkSeconds: 0 };
    const analytics = new LocalAnalytics({ spec, sink: flaky, log: (l) => log.push(l) });
    analytics.accept({ timestamp: BASE, max_temperature: 3, min_temperature: 1 });
    analytics.accept({ timestamp: BASE + 10_000, max_temperature: 4, min_temperature: 2 });
    await analytics.drain();
    assert.ok(
      log.some((l) =>
        /could not deliver a window under analytics\/ \(disk full\); keeping 1 window/.test(l),
      ),
      log.join("\n"),
    );
    await analytics.stop();
    assert.equal(delivered.length, 2, "no window lost");
    assert.ok(
      delivered.every((r) => r.endsWith("}\n")),
      "each record is one JSON line",
    );
  });

  it("stop fails, naming the count, when windows still cannot be delivered", async () => {
    const broken = { put: () => Promise.reject(new Error("read-only")) };
    const analytics = new LocalAnalytics({
      spec: { ...seedSpec(), time: "event" },
      sink: broken,
    });
    analytics.accept({ timestamp: BASE, max_temperature: 3, min_temperature: 1 });
    await assert.rejects(analytics.stop(), /could not deliver 1 window\(s\) under analytics\//);
  });

  it("processing time: the clock closes windows while no record arrives", async () => {
    let now = Date.UTC(2026, 10, 26, 9, 0, 1);
    const sink = await windowsStream(seedSpec());
    const log: string[] = [];
    const analytics = new LocalAnalytics({
      spec: seedSpec(),
      sink,
      log: (l) => log.push(l),
      now: () => now,
      tickMs: 5,
    });
    analytics.accept({ max_temperature: 3, min_temperature: 1 });
    now += 10_000;
    // Wait for the timer (not a timed assertion: polled, and bounded so that a broken timer fails).
    await until(() => log.length > 0, "the clock to close the window");
    assert.match(
      log[0],
      /^analytics: window 09:00:00–09:00:10Z max_temp=3 min_temp=1 \(1 record\)$/,
    );
    await analytics.stop();
    await sink.close();
    assert.equal(linesUnder(sink.bucket, "analytics/").length, 1);
  });
});
