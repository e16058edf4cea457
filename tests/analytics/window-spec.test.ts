import { strict as assert } from "node:assert";
import { ConfigError } from "../../core/errors";
import { loadStackConfig, parseStackConfig, readRawStackConfig } from "../../core/stack-config";
import { parseWindowSpec, TELEMETRY_FIELD_TYPES } from "../../core/analytics/window";
import schema from "../../core/telemetry.schema.json";

/** The seed's window as Pulumi.yaml declares it. */
const SEED = {
  enabled: true,
  windowSeconds: 10,
  time: "processing",
  watermarkSeconds: 5,
  groupBy: [],
  aggregates: [
    { fn: "MAX", field: "max_temperature", as: "max_temp" },
    { fn: "MIN", field: "min_temperature", as: "min_temp" },
  ],
  prefix: "analytics/",
};

function rejects(raw: unknown, message: RegExp) {
  assert.throws(
    () => parseWindowSpec(raw),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
      assert.match(e.message, message);
      assert.ok(!e.message.includes("\n"), `the message is one line: ${e.message}`);
      return true;
    },
  );
}

describe("analytics window spec", () => {
  it("reads the seed's 10-second MAX/MIN window from Pulumi.yaml into a typed spec", () => {
    assert.deepEqual(loadStackConfig("dev").analytics, {
      windowSeconds: 10,
      time: "processing",
      watermarkSeconds: 5,
      groupBy: [],
      aggregates: [
        { fn: "MAX", field: "max_temperature", as: "max_temp" },
        { fn: "MIN", field: "min_temperature", as: "min_temp" },
      ],
      prefix: "analytics/",
    });
  });

  it("takes its field names from the telemetry schema", () => {
    assert.deepEqual(Object.keys(TELEMETRY_FIELD_TYPES), Object.keys(schema.properties));
    assert.equal(TELEMETRY_FIELD_TYPES.timestamp, "integer");
    assert.equal(TELEMETRY_FIELD_TYPES.thing, "string");
  });

  it("is undefined when disabled or absent", () => {
    assert.equal(parseWindowSpec({ ...SEED, enabled: false }), undefined);
    assert.equal(parseWindowSpec(undefined), undefined);
    assert.equal(
      parseStackConfig({ ...readRawStackConfig("dev"), analytics: { enabled: false } }, "dev")
        .analytics,
      undefined,
    );
  });

  it("accepts the spec as JSON text, the way the Pulumi CLI hands objects over", () => {
    const c = parseStackConfig(
      { ...readRawStackConfig("dev"), analytics: JSON.stringify({ ...SEED, groupBy: ["thing"] }) },
      "dev",
    );
    assert.deepEqual(c.analytics?.groupBy, ["thing"]);
  });

  it("fills defaults: COUNT of * and a column name derived from fn and field", () => {
    const spec = parseWindowSpec({
      windowSeconds: "30",
      aggregates: [{ fn: "count" }, { fn: "avg", field: "temperature" }],
    });
    assert.deepEqual(spec, {
      windowSeconds: 30,
      time: "processing",
      watermarkSeconds: 0,
      groupBy: [],
      aggregates: [
        { fn: "COUNT", field: "*", as: "count_all" },
        { fn: "AVG", field: "temperature", as: "avg_temperature" },
      ],
      prefix: "analytics/",
    });
  });

  describe("bad specs fail with one line naming the problem", () => {
    for (const bad of [0, -10, 2.5, "10s", "ten", null, 86_401]) {
      it(`window length ${JSON.stringify(bad)}`, () =>
        rejects(
          { ...SEED, windowSeconds: bad },
          /analytics\.windowSeconds = .* is invalid: the window length must be a positive whole number of seconds/,
        ));
    }
    it("an unknown aggregate", () =>
      rejects(
        { ...SEED, aggregates: [{ fn: "MEDIAN", field: "temperature", as: "m" }] },
        /analytics\.aggregates\[0\]\.fn = "MEDIAN" is invalid: unknown aggregate; use one of MAX, MIN, AVG, SUM, COUNT/,
      ));
    it("a field the telemetry schema does not have", () =>
      rejects(
        { ...SEED, aggregates: [{ fn: "MAX", field: "max_temp", as: "m" }] },
        /analytics\.aggregates\[0\]\.field = "max_temp" is invalid: the telemetry schema has no such field; use one of thing, timestamp, temperature, max_temperature/,
      ));
    it("a grouping key that is not a field", () =>
      rejects(
        { ...SEED, groupBy: ["city"] },
        /analytics\.groupBy\[0\] = "city" is invalid: the grouping key is not a telemetry field/,
      ));
    it("MAX over a text field", () =>
      rejects(
        { ...SEED, aggregates: [{ fn: "MAX", field: "weather" }] },
        /analytics\.aggregates\[0\]\.field = "weather" is invalid: MAX needs a numeric field/,
      ));
    it("two columns with one name", () =>
      rejects(
        {
          ...SEED,
          aggregates: [
            { fn: "MAX", field: "temperature", as: "t" },
            { fn: "MIN", field: "temperature", as: "t" },
          ],
        },
        /analytics\.aggregates\[1\]\.as = "t" is invalid: the window already has a column t/,
      ));
    it("an aggregate named like the count column", () =>
      rejects(
        { ...SEED, aggregates: [{ fn: "COUNT", as: "records" }] },
        /aggregates\[0\]\.as = "records" is invalid/,
      ));
    it("no aggregates", () =>
      rejects({ ...SEED, aggregates: [] }, /analytics\.aggregates = \[\] is invalid/));
    it("an unknown time", () =>
      rejects(
        { ...SEED, time: "ingestion" },
        /analytics\.time = "ingestion" is invalid: must be one of processing, event/,
      ));
    it("a negative watermark", () =>
      rejects({ ...SEED, watermarkSeconds: -1 }, /analytics\.watermarkSeconds = -1 is invalid/));
    it("a prefix without the trailing slash", () =>
      rejects({ ...SEED, prefix: "analytics" }, /analytics\.prefix = "analytics" is invalid/));
    it("more SQL than a Managed Flink property value holds", () =>
      rejects(
        {
          ...SEED,
          groupBy: ["thing", "weather"],
          aggregates: Array.from({ length: 40 }, (_, i) => ({
            fn: "AVG",
            field: "temperature",
            as: `average_temperature_number_${i}`,
          })),
        },
        /analytics\.aggregates = .* is invalid: the generated Flink SQL \(\d+ characters\) exceeds Managed Flink's 2048-character property values/,
      ));
    it("a list instead of a map", () =>
      rejects([SEED], /iot-pipeline:analytics = .* is invalid: must be a map/));

    it("before any resource: parseStackConfig throws it", () => {
      assert.throws(
        () =>
          parseStackConfig(
            { ...readRawStackConfig("dev"), analytics: { ...SEED, groupBy: ["city"] } },
            "dev",
          ),
        ConfigError,
      );
    });
  });
});
