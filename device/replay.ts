// The replay source: the daily weather history of a CSV (vega-datasets' Seattle weather by default)
// replayed with time compression; rows that cannot become a valid message are reported and skipped.
import * as fs from "node:fs";
import * as path from "node:path";
import { DAY_MS, SimulatedClock, round2, type TelemetrySource } from "./source";
import { encodeTelemetry, type Telemetry, type Weather } from "./telemetry";
import { UserError } from "../core/errors";

/** The Seattle weather history (2012-2015) that the seed's bucket name refers to. */
export const SEATTLE_WEATHER_CSV = path.resolve(
  path.dirname(require.resolve("vega-datasets")), // <pkg>/build/index.js: the package exports no other path
  "..",
  "data",
  "seattle-weather.csv",
);

export const REPLAY_COLUMNS = [
  "date",
  "precipitation",
  "temp_max",
  "temp_min",
  "wind",
  "weather",
] as const;

/** One day of the history. */
export interface WeatherDay {
  /** 1-based line in the file. */
  readonly line: number;
  /** Midnight UTC of the day, epoch ms. */
  readonly dayStartMs: number;
  readonly precipitation: number;
  readonly tempMax: number;
  readonly tempMin: number;
  readonly wind: number;
  readonly weather: Weather;
}

export interface RowProblem {
  readonly line: number;
  readonly message: string;
}

/** A file that cannot be replayed at all (missing, no header); one line. */
export class ReplayError extends UserError {}

function num(raw: string, column: string): number {
  const v = raw.trim() === "" ? NaN : Number(raw);
  if (!Number.isFinite(v)) throw new Error(`${column} ${JSON.stringify(raw)} is not a number`);
  return v;
}

/**
 * Parses the CSV into days. A row is kept only if the message it yields passes the telemetry
 * schema; every other row is listed in `problems` with its line number.
 */
export function parseWeatherCsv(
  text: string,
  file = "CSV",
): { days: WeatherDay[]; problems: RowProblem[] } {
  const lines = text.split(/\r?\n/);
  const header = (lines[0] ?? "").split(",").map((h) => h.trim());
  const index = new Map(header.map((h, i) => [h, i]));
  const missing = REPLAY_COLUMNS.filter((c) => !index.has(c));
  if (missing.length > 0) {
    throw new ReplayError(
      `${file}: line 1 must be a header naming ${REPLAY_COLUMNS.join(", ")}; missing ${missing.join(", ")}`,
    );
  }
  const col = (fields: string[], c: (typeof REPLAY_COLUMNS)[number]) =>
    fields[index.get(c) as number] ?? "";
  const days: WeatherDay[] = [];
  const problems: RowProblem[] = [];
  const seen = new Set<number>();
  for (let i = 1; i < lines.length; i++) {
    const text = lines[i];
    if (text.trim() === "") continue;
    const line = i + 1;
    const fields = text.split(",");
    try {
      if (fields.length !== header.length) {
        throw new Error(`has ${fields.length} fields, the header has ${header.length}`);
      }
      const date = col(fields, "date").trim();
      const dayStartMs = /^\d{4}-\d{2}-\d{2}$/.test(date) ? Date.parse(`${date}T00:00:00Z`) : NaN;
      if (
        !Number.isFinite(dayStartMs) ||
        new Date(dayStartMs).toISOString().slice(0, 10) !== date
      ) {
        throw new Error(`date ${JSON.stringify(date)} is not a YYYY-MM-DD date`);
      }
      if (seen.has(dayStartMs)) throw new Error(`date ${date} appears twice`);
      const day: WeatherDay = {
        line,
        dayStartMs,
        precipitation: num(col(fields, "precipitation"), "precipitation"),
        tempMax: num(col(fields, "temp_max"), "temp_max"),
        tempMin: num(col(fields, "temp_min"), "temp_min"),
        wind: num(col(fields, "wind"), "wind"),
        weather: col(fields, "weather").trim() as Weather,
      };
      // The schema decides what is plausible: a row is fine if a reading of that day is a valid
      // message. At 09:00 the reading is the midpoint of the range, so an out-of-range extreme
      // is named as such rather than as the temperature between them.
      const check = encodeTelemetry(readingOf(day, "probe", dayStartMs + 9 * 3_600_000));
      if (!check.ok) throw new Error(check.error.message);
      seen.add(dayStartMs);
      days.push(day);
    } catch (e) {
      problems.push({ line, message: (e as Error).message });
    }
  }
  days.sort((a, b) => a.dayStartMs - b.dayStartMs);
  return { days, problems };
}

/** Reads and parses a CSV file; a missing or unreadable file is a ReplayError. */
export function loadWeatherCsv(file: string = SEATTLE_WEATHER_CSV) {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new ReplayError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const parsed = parseWeatherCsv(text, file);
  if (parsed.days.length === 0) {
    throw new ReplayError(`${file} has no usable rows (${parsed.problems.length} malformed)`);
  }
  return parsed;
}

/** The reading at simulated time `t` within `day`: the temperature follows the day's range. */
function readingOf(day: WeatherDay, thing: string, t: number): Telemetry {
  const hour = (t - day.dayStartMs) / 3_600_000;
  // Coolest at 03:00, warmest at 15:00, always within the recorded min and max.
  const shape = 0.5 + 0.5 * Math.sin((2 * Math.PI * (hour - 9)) / 24);
  return {
    thing,
    timestamp: Math.round(t),
    temperature: round2(day.tempMin + (day.tempMax - day.tempMin) * shape),
    max_temperature: day.tempMax,
    min_temperature: day.tempMin,
    precipitation: day.precipitation,
    wind: day.wind,
    weather: day.weather,
  };
}

export interface ReplayOptions {
  readonly thing: string;
  readonly days: readonly WeatherDay[];
  /** Simulated seconds per wall-clock second; default 3600 (an hour of history per second). */
  readonly speedup?: number;
  /** Wall-clock start; default the first next() call. */
  readonly startMs?: number;
}

export class ReplaySource implements TelemetrySource {
  private clock?: SimulatedClock;
  private cursor = 0;

  constructor(private readonly o: ReplayOptions) {
    if (o.days.length === 0) throw new ReplayError("nothing to replay: no days");
    if (o.startMs !== undefined) this.clock = this.clockFrom(o.startMs);
  }

  private clockFrom(startMs: number): SimulatedClock {
    return new SimulatedClock(startMs, this.o.days[0].dayStartMs, this.o.speedup ?? 3600);
  }

  next(nowMs: number): Telemetry | undefined {
    this.clock ??= this.clockFrom(nowMs);
    const t = this.clock.at(nowMs);
    const days = this.o.days;
    // Time only moves forward, so a cursor beats a search.
    while (this.cursor + 1 < days.length && days[this.cursor + 1].dayStartMs <= t) this.cursor++;
    const day = days[this.cursor];
    if (t >= day.dayStartMs + DAY_MS) {
      // Past the last day, or inside a gap left by skipped rows: the next day present resumes.
      if (this.cursor === days.length - 1) return undefined;
    }
    return readingOf(day, this.o.thing, Math.min(t, day.dayStartMs + DAY_MS - 1));
  }
}
