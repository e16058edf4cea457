// The synthetic source: plausible store temperatures (a daily cycle, noise, a per-device offset)
// with the day's running maximum and minimum, reproducible from a seed.
import { DAY_MS, SimulatedClock, round2, type TelemetrySource } from "./source";
import type { Telemetry } from "./telemetry";

/** mulberry32: a small, fast, well-distributed 32-bit PRNG; the same seed gives the same stream. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a: folds the seed and the thing name into one PRNG seed, so devices differ but repeat. */
export function hashSeed(...parts: Array<string | number>): number {
  let h = 0x811c9dc5;
  for (const ch of parts.join("\u0000")) {
    h ^= ch.codePointAt(0) ?? 0;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export interface SyntheticOptions {
  readonly thing: string;
  readonly seed: number;
  /** Daily mean, °C; default 12 (a Seattle store's outside sensor). */
  readonly baseTemperature?: number;
  /** Half the day's swing, °C; default 5. */
  readonly amplitude?: number;
  /** Standard deviation of the noise, °C; default 0.3. */
  readonly noise?: number;
  /** Simulated time runs this many times faster than the wall clock; default 1. */
  readonly speedup?: number;
  /** Wall-clock start; default the first next() call. */
  readonly startMs?: number;
}

export class SyntheticSource implements TelemetrySource {
  private readonly random: () => number;
  private readonly offset: number;
  private clock?: SimulatedClock;
  private day = -1;
  private max = -Infinity;
  private min = Infinity;

  constructor(private readonly o: SyntheticOptions) {
    this.random = mulberry32(hashSeed(o.seed, o.thing));
    // Each device sits somewhere a little warmer or cooler: ±2 °C, fixed per (seed, thing).
    this.offset = (this.random() - 0.5) * 4;
    if (o.startMs !== undefined) this.clock = this.clockFrom(o.startMs);
  }

  private clockFrom(startMs: number): SimulatedClock {
    return new SimulatedClock(startMs, startMs, this.o.speedup ?? 1);
  }

  /** Standard normal by Box-Muller. */
  private gaussian(): number {
    const u = 1 - this.random();
    const v = this.random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  next(nowMs: number): Telemetry {
    this.clock ??= this.clockFrom(nowMs);
    const t = Math.round(this.clock.at(nowMs));
    const base = (this.o.baseTemperature ?? 12) + this.offset;
    const hour = (t % DAY_MS) / 3_600_000;
    // Coolest before dawn, warmest mid-afternoon (15:00 UTC-agnostic: a plausible shape).
    const cycle = Math.sin((2 * Math.PI * (hour - 9)) / 24);
    const temperature = round2(
      base + (this.o.amplitude ?? 5) * cycle + (this.o.noise ?? 0.3) * this.gaussian(),
    );
    const day = Math.floor(t / DAY_MS);
    if (day !== this.day) {
      this.day = day;
      this.max = -Infinity;
      this.min = Infinity;
    }
    this.max = Math.max(this.max, temperature);
    this.min = Math.min(this.min, temperature);
    const humidity = round2(
      Math.min(100, Math.max(5, 70 - 2.5 * (temperature - base) + 2 * this.gaussian())),
    );
    return {
      thing: this.o.thing,
      timestamp: t,
      temperature,
      max_temperature: this.max,
      min_temperature: this.min,
      humidity,
    };
  }
}
