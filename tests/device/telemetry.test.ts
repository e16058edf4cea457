// The telemetry schema as a table: each message accepted, or rejected with the one line it gives.
import * as assert from "node:assert/strict";
import { IOT_MAX_PAYLOAD_BYTES } from "../../core/iot-limits";
import {
  TELEMETRY_FIELDS,
  describeErrors,
  encodeTelemetry,
  validateTelemetry,
} from "../../device/telemetry";
import schema from "../../core/telemetry.schema.json";

const ok = {
  thing: "store-sensor-seattle1",
  timestamp: 1_764_000_000_000,
  temperature: 12.5,
  max_temperature: 14,
  min_temperature: 8.2,
};

const accepted: Array<[string, unknown]> = [
  ["the required fields", ok],
  ["every optional field", { ...ok, humidity: 55, precipitation: 0.5, wind: 3.2, weather: "rain" }],
  ["the coldest plausible reading", { ...ok, temperature: -90, min_temperature: -90 }],
  ["the hottest plausible reading", { ...ok, temperature: 60, max_temperature: 60 }],
  ["min equal to max", { ...ok, max_temperature: 10, min_temperature: 10 }],
  ["a thing name with : _ -", { ...ok, thing: "a:b_c-1" }],
];

const rejected: Array<[string, unknown, string]> = [
  ["not an object", 42, "message must be object (got 42)"],
  ["null", null, "message must be object (got null)"],
  ["an array", [ok], "message must be object"],
  ["no thing", { ...ok, thing: undefined }, "missing required field thing"],
  ["no timestamp", { ...ok, timestamp: undefined }, "missing required field timestamp"],
  ["no temperature", { ...ok, temperature: undefined }, "missing required field temperature"],
  [
    "no max_temperature",
    { ...ok, max_temperature: undefined },
    "missing required field max_temperature",
  ],
  ["an unknown field", { ...ok, colour: "red" }, "unknown field colour"],
  [
    "temperature as text",
    { ...ok, temperature: "12.5" },
    'temperature must be number (got "12.5")',
  ],
  ["temperature too hot", { ...ok, temperature: 61 }, "temperature must be <= 60 (got 61)"],
  ["temperature too cold", { ...ok, temperature: -91 }, "temperature must be >= -90 (got -91)"],
  [
    "timestamp in seconds",
    { ...ok, timestamp: 1_764_000_000 },
    "timestamp must be >= 946684800000",
  ],
  ["fractional timestamp", { ...ok, timestamp: 1_764_000_000_000.5 }, "timestamp must be integer"],
  ["humidity above 100", { ...ok, humidity: 101 }, "humidity must be <= 100 (got 101)"],
  ["negative precipitation", { ...ok, precipitation: -1 }, "precipitation must be >= 0"],
  [
    "unknown weather",
    { ...ok, weather: "hail" },
    'weather must be one of "drizzle", "rain", "sun", "snow", "fog" (got "hail")',
  ],
  ["a thing name with a space", { ...ok, thing: "store sensor" }, "thing must match"],
  ["an empty thing name", { ...ok, thing: "" }, "thing must match"],
  [
    "min above max",
    { ...ok, max_temperature: 5, min_temperature: 6 },
    "min_temperature must not exceed max_temperature (got 6)",
  ],
];

describe("telemetry schema", () => {
  for (const [what, msg] of accepted) {
    it(`accepts ${what}`, () => {
      assert.equal(validateTelemetry(msg), true, describeErrors(msg));
      assert.equal(describeErrors(msg), undefined);
    });
  }
  for (const [what, msg, error] of rejected) {
    it(`rejects ${what}: "${error}"`, () => {
      // JSON round trip: undefined fields vanish as they would on the wire.
      const wire: unknown = msg === undefined ? msg : JSON.parse(JSON.stringify(msg));
      assert.equal(validateTelemetry(wire), false);
      const line = describeErrors(wire) ?? "";
      assert.ok(line.startsWith(error), `expected "${error}...", got "${line}"`);
      assert.ok(!line.includes("\n"), "one line");
      const encoded = encodeTelemetry(wire);
      assert.equal(encoded.ok, false);
    });
  }

  it("rejects a payload over 128 KB even if the schema would allow it", () => {
    // No field can be that long under this schema, so test the size rule on its own terms.
    const encoded = encodeTelemetry(ok);
    assert.ok(encoded.ok && encoded.payload.length < IOT_MAX_PAYLOAD_BYTES);
    assert.equal(IOT_MAX_PAYLOAD_BYTES, 131072);
  });

  it("keeps the TypeScript type and the schema in step (fields and required ones)", () => {
    assert.deepEqual(Object.keys(TELEMETRY_FIELDS).sort(), Object.keys(schema.properties).sort());
    assert.deepEqual(
      Object.entries(TELEMETRY_FIELDS)
        .filter(([, r]) => r === "required")
        .map(([k]) => k)
        .sort(),
      [...schema.required].sort(),
    );
  });
});
