// Telemetry messages for tests: valid against core/telemetry.schema.json.

/** A valid telemetry message from `thing`, numbered by `seq` in its timestamp. */
export function reading(thing: string, seq: number, temperature = 20) {
  return {
    thing,
    timestamp: 1_700_000_000_000 + seq,
    temperature,
    max_temperature: Math.max(temperature, 25),
    min_temperature: Math.min(temperature, 10),
  };
}
