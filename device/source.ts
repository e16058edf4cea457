// What a data source is: something that gives a device's next reading at a wall-clock time.
import type { Telemetry } from "./telemetry";

export interface TelemetrySource {
  /** The reading at wall-clock `nowMs`, or undefined when the source has nothing more (replay end). */
  next(nowMs: number): Telemetry | undefined;
}

/** Maps wall-clock time onto simulated time running `speedup` times faster from `simStartMs`. */
export class SimulatedClock {
  constructor(
    private readonly wallStartMs: number,
    private readonly simStartMs: number,
    private readonly speedup: number,
  ) {}
  at(wallMs: number): number {
    return this.simStartMs + (wallMs - this.wallStartMs) * this.speedup;
  }
}

/** Rounds a measurement to hundredths, as a sensor would report it. */
export function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

export const DAY_MS = 24 * 3600 * 1000;
