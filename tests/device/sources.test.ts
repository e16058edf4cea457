// The data sources: the synthetic generator's reproducibility and plausibility, and the CSV
// replay's parsing, malformed-row reports and time compression. Every message must pass the schema.
import * as assert from "node:assert/strict";
import { SyntheticSource } from "../../device/generator";
import { loadWeatherCsv, parseWeatherCsv, ReplayError, ReplaySource } from "../../device/replay";
import { DAY_MS } from "../../device/source";
import { describeErrors, validateTelemetry, type Telemetry } from "../../device/telemetry";

const T0 = Date.UTC(2026, 0, 1);

function run(source: { next(t: number): Telemetry | undefined }, times: number[]) {
  return times.map((t) => source.next(t));
}

describe("synthetic generator", () => {
  const hourly = Array.from({ length: 72 }, (_, i) => T0 + i * 3_600_000);

  it("repeats exactly for the same seed and thing, and differs for another seed or thing", () => {
    const a = run(new SyntheticSource({ thing: "s1", seed: 7, startMs: T0 }), hourly);
    const b = run(new SyntheticSource({ thing: "s1", seed: 7, startMs: T0 }), hourly);
    const c = run(new SyntheticSource({ thing: "s1", seed: 8, startMs: T0 }), hourly);
    const d = run(new SyntheticSource({ thing: "s2", seed: 7, startMs: T0 }), hourly);
    assert.deepEqual(a, b);
    assert.notDeepEqual(
      a.map((m) => m?.temperature),
      c.map((m) => m?.temperature),
    );
    assert.notDeepEqual(
      a.map((m) => m?.temperature),
      d.map((m) => m?.temperature),
    );
  });

  it("produces valid messages with a daily cycle and the day's running max/min", () => {
    const msgs = run(
      new SyntheticSource({ thing: "s1", seed: 1, startMs: T0 }),
      hourly,
    ) as Telemetry[];
    for (const m of msgs) assert.ok(validateTelemetry(m), describeErrors(m));
    const day1 = msgs.slice(0, 24);
    // Warmer in the afternoon than before dawn (amplitude 5 °C dwarfs 0.3 °C noise).
    assert.ok(day1[15].temperature > day1[3].temperature + 5);
    // Running extremes: never narrower than any reading so far that day, reset at midnight.
    for (let i = 0; i < 24; i++) {
      const seen = day1.slice(0, i + 1).map((m) => m.temperature);
      assert.equal(day1[i].max_temperature, Math.max(...seen));
      assert.equal(day1[i].min_temperature, Math.min(...seen));
    }
    assert.equal(msgs[24].max_temperature, msgs[24].temperature, "a new day starts afresh");
  });

  it("runs simulated time faster with a speedup", () => {
    const s = new SyntheticSource({ thing: "s1", seed: 1, startMs: T0, speedup: 3600 });
    const [a, b] = run(s, [T0, T0 + 1000]) as Telemetry[];
    assert.equal(b.timestamp - a.timestamp, 3_600_000);
  });
});

describe("weather replay", () => {
  it("loads the shipped Seattle history: every day usable", () => {
    const { days, problems } = loadWeatherCsv();
    assert.equal(days.length, 1461);
    assert.deepEqual(problems, []);
    assert.equal(new Date(days[0].dayStartMs).toISOString().slice(0, 10), "2012-01-01");
  });

  it("reports malformed rows with their line numbers and skips them", () => {
    const csv = [
      "date,precipitation,temp_max,temp_min,wind,weather",
      "2012-01-01,0.0,12.8,5.0,4.7,drizzle",
      "2012-01-02,abc,10.6,2.8,4.5,rain",
      "2012-01-03,0.8,11.7,7.2,2.3",
      "2012-02-30,0.0,10,5,1,sun",
      "2012-01-05,0.0,99,5,1,sun",
      "2012-01-06,0.0,10,5,1,hail",
      "2012-01-07,0.0,4,5,1,sun",
      "2012-01-08,1.3,8.9,2.8,6.1,rain",
      "",
    ].join("\n");
    const { days, problems } = parseWeatherCsv(csv, "t.csv");
    assert.deepEqual(
      days.map((d) => d.line),
      [2, 9],
    );
    assert.deepEqual(problems, [
      { line: 3, message: 'precipitation "abc" is not a number' },
      { line: 4, message: "has 5 fields, the header has 6" },
      { line: 5, message: 'date "2012-02-30" is not a YYYY-MM-DD date' },
      { line: 6, message: "max_temperature must be <= 60 (got 99)" },
      {
        line: 7,
        message: 'weather must be one of "drizzle", "rain", "sun", "snow", "fog" (got "hail")',
      },
      { line: 8, message: "min_temperature must not exceed max_temperature (got 5)" },
    ]);
  });

  it("refuses a file without the expected header in one line", () => {
    assert.throws(
      () => parseWeatherCsv("day,temp\n2012-01-01,3\n", "x.csv"),
      (e: unknown) =>
        e instanceof ReplayError &&
        /x.csv: line 1 must be a header .* missing date/.test(e.message),
    );
    assert.throws(
      () => loadWeatherCsv("/nonexistent.csv"),
      /cannot read \/nonexistent.csv: ENOENT/,
    );
  });

  it("compresses time, stays within each day's range, and ends after the last day", () => {
    const { days } = parseWeatherCsv(
      "date,precipitation,temp_max,temp_min,wind,weather\n2012-01-01,0,12.8,5,4.7,drizzle\n2012-01-02,10.9,10.6,2.8,4.5,rain\n",
    );
    const r = new ReplaySource({ thing: "s1", days, speedup: 3600, startMs: 0 });
    const msgs: Telemetry[] = [];
    for (let s = 0; s < 48; s++) msgs.push(r.next(s * 1000) as Telemetry);
    for (const m of msgs) assert.ok(validateTelemetry(m), describeErrors(m));
    assert.equal(msgs[1].timestamp - msgs[0].timestamp, 3_600_000, "an hour per second");
    assert.deepEqual(
      [msgs[0].max_temperature, msgs[0].min_temperature, msgs[0].weather],
      [12.8, 5, "drizzle"],
    );
    assert.deepEqual(
      [msgs[30].max_temperature, msgs[30].weather, msgs[30].precipitation],
      [10.6, "rain", 10.9],
    );
    for (const m of msgs)
      assert.ok(m.temperature >= m.min_temperature && m.temperature <= m.max_temperature);
    assert.equal(r.next(48_000), undefined, "the history is over");
    assert.equal(msgs[47].timestamp, days[0].dayStartMs + 47 * 3_600_000);
    assert.ok(msgs[47].timestamp < days[1].dayStartMs + DAY_MS);
  });
});
