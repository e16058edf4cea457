import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadStackConfig } from "../../core/stack-config";
import {
  flinkSqlStatements,
  MAX_PROPERTY_VALUE,
  parseWindowSpec,
  sqlPropertyMap,
  type FlinkTargets,
  type WindowSpec,
} from "../../core/analytics/window";

const GOLDEN = path.join(__dirname, "golden");
const TARGETS: FlinkTargets = {
  sourceStreamArn: "arn:aws:kinesis:us-east-1:123456789012:stream/telemetry-stream",
  sinkStreamArn: "arn:aws:kinesis:us-east-1:123456789012:stream/telemetry-windows",
  region: "us-east-1",
};

/** The seed's spec, from the dev stack's own config. */
function seed(): WindowSpec {
  const spec = loadStackConfig("dev").analytics;
  assert.ok(spec, "dev has analytics enabled");
  return spec;
}

/** The statements as one file: each ends in `;`, separated by a blank line. */
function script(statements: string[]): string {
  return statements.map((s) => `${s};\n`).join("\n");
}

/** Compares with tests/analytics/golden/<name>.sql; UPDATE_GOLDEN=1 rewrites the file instead. */
function golden(name: string, statements: string[]) {
  const file = path.join(GOLDEN, `${name}.sql`);
  const actual = script(statements);
  if (process.env.UPDATE_GOLDEN === "1") fs.writeFileSync(file, actual);
  assert.equal(actual, fs.readFileSync(file, "utf8"), `generated SQL differs from ${file}`);
}

describe("Flink SQL generated from the window spec (golden)", () => {
  it("the seed's MIN/MAX every 10 seconds on processing time", () => {
    golden("seed-processing", flinkSqlStatements(seed(), TARGETS));
  });

  it("the seed's window on event time with a 5-second watermark", () => {
    golden("seed-event", flinkSqlStatements({ ...seed(), time: "event" }, TARGETS));
  });

  it("grouped by thing on event time", () => {
    golden(
      "by-thing-event",
      flinkSqlStatements({ ...seed(), time: "event", groupBy: ["thing"] }, TARGETS),
    );
  });

  it("every aggregate kind over a one-minute window grouped by thing and weather", () => {
    const spec = parseWindowSpec({
      windowSeconds: 60,
      time: "processing",
      groupBy: ["thing", "weather"],
      aggregates: [
        { fn: "AVG", field: "temperature", as: "avg_temp" },
        { fn: "SUM", field: "precipitation", as: "rain_mm" },
        { fn: "COUNT", field: "humidity", as: "humidity_readings" },
        { fn: "MAX", field: "timestamp", as: "last_reading" },
      ],
      prefix: "windows/minute/",
    });
    assert.ok(spec);
    golden("all-aggregates", flinkSqlStatements(spec, TARGETS));
  });

  it("processing time uses PROCTIME() and no watermark; event time the payload's timestamp", () => {
    const [proc] = flinkSqlStatements(seed(), TARGETS);
    assert.match(proc, /`ts` AS PROCTIME\(\)/);
    assert.doesNotMatch(proc, /WATERMARK/);
    const [event] = flinkSqlStatements({ ...seed(), time: "event", watermarkSeconds: 7 }, TARGETS);
    assert.match(event, /`ts` AS TO_TIMESTAMP_LTZ\(`timestamp`, 3\)/);
    assert.match(event, /WATERMARK FOR `ts` AS `ts` - INTERVAL '7' SECOND/);
  });

  it("quotes a value holding a quote instead of breaking out of the literal", () => {
    const [source] = flinkSqlStatements(seed(), { ...TARGETS, region: "us-east-1'x" });
    assert.match(source, /'aws\.region' = 'us-east-1''x'/);
  });

  it("docs/analytics.md shows the generated seed SQL, every statement", () => {
    const page = fs.readFileSync(path.join(__dirname, "../../docs/analytics.md"), "utf8");
    for (const statement of flinkSqlStatements(seed(), TARGETS)) {
      assert.ok(
        page.includes(statement),
        `docs/analytics.md should show the generated statement:\n${statement}`,
      );
    }
  });
});

describe("the sql.statements property group", () => {
  it("holds statement.0, statement.1, ... in run order", () => {
    const statements = flinkSqlStatements(seed(), TARGETS);
    const map = sqlPropertyMap(statements);
    assert.deepEqual(Object.keys(map), ["statement.0", "statement.1", "statement.2"]);
    assert.deepEqual(Object.values(map), statements);
  });

  it("refuses a statement longer than a Managed Flink property value", () => {
    assert.throws(
      () => sqlPropertyMap(["x".repeat(MAX_PROPERTY_VALUE + 1)]),
      /SQL statement 0 is 2049 characters; Managed Flink property values hold at most 2048/,
    );
  });

  it("refuses an empty list", () => {
    assert.throws(() => sqlPropertyMap([]), /got 0 SQL statements/);
  });
});
