// Telemetry readings for the load generators: valid against the schema, cheap to make, and
// stamped with the time of publishing so that a delivered record tells its own latency.
import type { Telemetry } from "../device/telemetry";

/** The i-th reading of a thing, timestamped now (epoch ms). Deterministic apart from the time. */
export function reading(thing: string, i: number, timestamp = Date.now()): Telemetry {
  const temperature = Math.round((12 + 8 * Math.sin(i / 50) + (i % 7) / 10) * 10) / 10;
  return {
    thing,
    timestamp,
    temperature,
    max_temperature: Math.max(temperature, 19.5),
    min_temperature: Math.min(temperature, 4.5),
    humidity: 40 + (i % 50),
  };
}
