// The pure definitions the program, the pack and the local pipeline share: the lake's key layout
// for each stack choice (a conformance table whose every case cites the page it comes from), its
// columns and projection, the lifecycle rules and the TLS check, the alarm evaluation, and the
// one-line errors of the new config keys.
import { strict as assert } from "node:assert";
import { planPipeline } from "../../core/plan";
import { evaluatePrefix } from "../../core/delivery";
import { ConfigError } from "../../core/errors";
import {
  lakeColumns,
  lakeLayout,
  partitionValues,
  projectionParameters,
  TELEMETRY_COLUMNS,
} from "../../core/lake";
import { evaluateAlarms } from "../../core/monitoring";
import { parseRuleSql } from "../../core/rule-sql";
import { loadStackConfig, parseStackConfig, readRawStackConfig } from "../../core/stack-config";
import {
  dataLifecycleRules,
  deniesInsecureTransport,
  denyInsecureTransport,
  outermostPrefixes,
  ruleExpiresData,
} from "../../core/storage";

const T = new Date(Date.UTC(2018, 7, 27, 10, 30, 0));
const random = () => "046b6c7f-0b";

/** Firehose's key layout per mode, each expected key from the page named. */
const LAYOUT_CASES: {
  readonly name: string;
  readonly page: string;
  readonly delivery: { prefix: string; errorOutputPrefix: string };
  readonly opts: { format: "json" | "parquet"; partitionByThing: boolean };
  readonly thing?: string;
  readonly key: string;
  readonly errorKey: string;
  readonly errorType: string;
}[] = [
  {
    name: "a static prefix gets Firehose's own hour folders; the error prefix the error type first",
    page: "https://docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html (semantic rules)",
    delivery: { prefix: "telemetry/", errorOutputPrefix: "errors/" },
    opts: { format: "json", partitionByThing: false },
    key: "telemetry/2018/08/27/10/",
    errorKey: "errors/processing-failed/2018/08/27/10/",
    errorType: "processing-failed",
  },
  {
    name: "Parquet conversion keeps the layout; its failures go under format-conversion-failed",
    page: "https://docs.aws.amazon.com/firehose/latest/dev/record-format-conversion-error-handling.html",
    delivery: { prefix: "telemetry/", errorOutputPrefix: "errors/" },
    opts: { format: "parquet", partitionByThing: false },
    key: "telemetry/2018/08/27/10/",
    errorKey: "errors/format-conversion-failed/2018/08/27/10/",
    errorType: "format-conversion-failed",
  },
  {
    name: "dynamic partitioning: the partition key's value in a hive-style folder, then the hour",
    page: "https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning-s3bucketprefix.html",
    delivery: { prefix: "telemetry/", errorOutputPrefix: "errors/" },
    opts: { format: "parquet", partitionByThing: true },
    thing: "store-sensor-seattle1",
    key: "telemetry/device=store-sensor-seattle1/2018/08/27/10/",
    errorKey: "errors/activePartitionExceeded/2018/08/27/10/",
    errorType: "activePartitionExceeded",
  },
];

describe("the lake's key layout per stack choice (conformance table)", () => {
  for (const c of LAYOUT_CASES) {
    it(`${c.name} (${c.page})`, () => {
      const layout = lakeLayout(c.delivery, c.opts);
      const prefix = layout.prefix.split("!{partitionKeyFromQuery:thing}").join(c.thing ?? "");
      assert.equal(evaluatePrefix(prefix, T, random), c.key);
      assert.equal(evaluatePrefix(layout.errorOutputPrefix, T, random, c.errorType), c.errorKey);
      // The table finds the object again under its partitions.
      const values = partitionValues(layout, `${c.key}weather-data-stream-1-2018-08-27-10-30-00-x`);
      assert.equal(values?.datehour, "2018/08/27/10");
      assert.equal(values?.device, c.thing);
    });
  }

  it("an error prefix may not use the partition key, so it never names one (s3-prefixes, semantic rules)", () => {
    const layout = lakeLayout(
      { prefix: "telemetry/", errorOutputPrefix: "errors/" },
      { format: "json", partitionByThing: true },
    );
    assert.doesNotMatch(layout.errorOutputPrefix, /partitionKeyFromQuery/);
    assert.match(layout.errorOutputPrefix, /!\{firehose:error-output-type\}/);
  });

  it("keys outside the table's folder or shape are not in the table", () => {
    const layout = lakeLayout(
      { prefix: "telemetry/", errorOutputPrefix: "errors/" },
      { format: "json", partitionByThing: true },
    );
    assert.equal(partitionValues(layout, "errors/processing-failed/2018/08/27/10/x"), undefined);
    assert.equal(partitionValues(layout, "telemetry/2018/08/27/10/x"), undefined);
  });

  it("a prefix with expressions leaves the table unpartitioned over its folder", () => {
    const layout = lakeLayout(
      { prefix: "t/!{timestamp:yyyy}/", errorOutputPrefix: "e/!{firehose:error-output-type}/" },
      { format: "json", partitionByThing: false },
    );
    assert.equal(layout.location, "t/");
    assert.deepEqual(layout.partitions, []);
    assert.deepEqual(projectionParameters(layout, "b", []), {});
  });

  it("projects datehour as Athena's Firehose example does, and the device as the fleet's enum", () => {
    const layout = lakeLayout(
      { prefix: "telemetry/", errorOutputPrefix: "errors/" },
      { format: "parquet", partitionByThing: true },
    );
    const p = projectionParameters(layout, "bkt", ["a", "b"]);
    assert.equal(p["projection.datehour.format"], "yyyy/MM/dd/HH");
    assert.equal(p["projection.datehour.interval.unit"], "HOURS");
    assert.equal(p["projection.device.type"], "enum");
    assert.equal(p["projection.device.values"], "a,b");
    assert.equal(
      p["storage.location.template"],
      "s3://bkt/telemetry/device=${device}/${datehour}/",
    );
  });
});

describe("the lake's columns", () => {
  it("SELECT * gives the telemetry schema's fields with Glue types", () => {
    const cols = lakeColumns(parseRuleSql("SELECT * FROM 'a/b'"));
    assert.deepEqual(cols, TELEMETRY_COLUMNS);
    assert.deepEqual(
      cols.find((c) => c.name === "timestamp"),
      { name: "timestamp", type: "bigint" },
    );
    assert.deepEqual(
      cols.find((c) => c.name === "temperature"),
      { name: "temperature", type: "double" },
    );
  });

  it("prod's SELECT adds topic_thing (string) and received_at (bigint)", () => {
    const prod = loadStackConfig("prod");
    const cols = lakeColumns(parseRuleSql(prod.rule.sql));
    assert.deepEqual(cols.slice(-2), [
      { name: "topic_thing", type: "string" },
      { name: "received_at", type: "bigint" },
    ]);
  });

  it("a field without alias keeps its name and schema type; a nested alias is left out", () => {
    const cols = lakeColumns(parseRuleSql("SELECT thing, temperature AS a.b FROM 'x'"));
    assert.deepEqual(cols, [{ name: "thing", type: "string" }]);
  });
});

describe("storage: lifecycle rules and the TLS-only bucket policy", () => {
  it("a rule per outermost data folder, never the bucket's root", () => {
    assert.deepEqual(
      outermostPrefixes(["telemetry/", "errors/", "errors/analytics/", "analytics/"]),
      ["analytics/", "errors/", "telemetry/"],
    );
    const rules = planPipeline(loadStackConfig("prod")).storage.lifecycleRules;
    assert.deepEqual(
      rules.map((r) => r.filter.prefix),
      ["analytics/", "errors/", "telemetry/", "athena-results/"],
    );
    const telemetry = rules[2];
    assert.deepEqual(telemetry.transitions, [{ days: 30, storageClass: "STANDARD_IA" }]);
    assert.deepEqual(telemetry.expiration, { days: 365 });
    assert.deepEqual(telemetry.noncurrentVersionExpiration, { noncurrentDays: 30 });
    assert.ok(rules.every(ruleExpiresData as (r: unknown) => boolean));
  });

  it("no transition and no expiry makes no data rule", () => {
    assert.deepEqual(
      dataLifecycleRules(
        ["telemetry/"],
        {
          transitionDays: 0,
          storageClass: "STANDARD_IA",
          expirationDays: 0,
          noncurrentVersionExpirationDays: 1,
        },
        true,
      ),
      [],
    );
  });

  it("the TLS statement is recognised; a changed condition, effect or resource is not", () => {
    const arn = "arn:aws:s3:::b";
    const doc = (s: object) => JSON.stringify({ Version: "2012-10-17", Statement: [s] });
    const ok = denyInsecureTransport(arn);
    assert.equal(deniesInsecureTransport(doc(ok), arn), true);
    assert.equal(deniesInsecureTransport(doc({ ...ok, Effect: "Allow" }), arn), false);
    assert.equal(
      deniesInsecureTransport(
        doc({ ...ok, Condition: { Bool: { "aws:SecureTransport": "true" } } }),
        arn,
      ),
      false,
    );
    assert.equal(deniesInsecureTransport(doc({ ...ok, Resource: [`${arn}/*`] }), arn), false);
    assert.equal(
      deniesInsecureTransport(doc({ ...ok, Principal: { AWS: "arn:aws:iam::1:root" } }), arn),
      false,
    );
    assert.equal(deniesInsecureTransport("not json", arn), false);
  });
});

describe("monitoring: what the alarms would flag on local figures", () => {
  const alarms = {
    enabled: true,
    periodSeconds: 300,
    ruleErrorRatePercent: 1,
    deliveryFreshnessSeconds: 900,
  };
  it("a period whose error rate passes the threshold is flagged; one at it or below is not", () => {
    const f = evaluateAlarms(
      {
        rulePeriods: [
          { start: 0, onTopic: 100, errors: 1 },
          { start: 300_000, onTopic: 100, errors: 2 },
          { start: 600_000, onTopic: 0, errors: 0 },
        ],
        deliveryFreshnessSeconds: {},
      },
      alarms,
      "sensor_rule",
    );
    assert.deepEqual(
      f.map((x) => x.message),
      [
        "rule sensor_rule: 2 error(s) in 100 message(s) = 2% in the period from 1970-01-01T00:05:00.000Z, above 1%",
      ],
    );
  });

  it("a stream whose record waited longer than the threshold is flagged, per stream", () => {
    const f = evaluateAlarms(
      { rulePeriods: [], deliveryFreshnessSeconds: { a: 900, b: 901 }, flinkDowntimeMs: 0 },
      alarms,
      "r",
    );
    assert.deepEqual(
      f.map((x) => `${x.kind} ${x.subject}`),
      ["delivery-freshness b"],
    );
  });
});

describe("config: the lake, monitoring and storage keys", () => {
  const prodWith = (over: Record<string, unknown>) => ({ ...readRawStackConfig("prod"), ...over });
  const rejects = (over: Record<string, unknown>, message: RegExp) =>
    assert.throws(
      // Syntax in parseStackConfig, cross-field rules where the plan derives their values.
      () => planPipeline(parseStackConfig(prodWith(over), "prod")),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.match(e.message, message);
        assert.ok(!e.message.includes("\n"));
        return true;
      },
    );

  it("reads dev short and cheap and prod as the auditor wants it", () => {
    const dev = loadStackConfig("dev");
    assert.deepEqual(dev.lake, { format: "json", partitionByThing: false });
    assert.equal(dev.monitoring.alarms.enabled, false);
    assert.equal(dev.monitoring.iotLogLevel, "unmanaged");
    assert.equal(dev.storage.lifecycle.expirationDays, 7);
    const prod = loadStackConfig("prod");
    assert.deepEqual(prod.lake, { format: "parquet", partitionByThing: true });
    assert.equal(prod.storage.kmsKey, true);
    assert.equal(prod.storage.accessLogging, true);
    assert.equal(prod.monitoring.iotLogLevel, "WARN");
  });

  it("takes numbers and booleans as the CLI's text", () => {
    const c = parseStackConfig(prodWith({ ruleErrorRatePercent: "5", kmsKey: "false" }), "prod");
    assert.equal(c.monitoring.alarms.ruleErrorRatePercent, 5);
    assert.equal(c.storage.kmsKey, false);
  });

  for (const [what, over, message] of [
    [
      "an unknown record format",
      { recordFormat: "orc" },
      /recordFormat = "orc" is invalid: must be one of json, parquet/,
    ],
    [
      "Parquet with Firehose's 5 MiB default buffer",
      { bufferSizeMiB: 5 },
      /bufferSizeMiB = 5 is invalid: must be at least 64 when recordFormat is parquet/,
    ],
    [
      "partitioning with a prefix that has expressions",
      { s3Prefix: "t/!{timestamp:yyyy}/", errorOutputPrefix: "e/!{firehose:error-output-type}/" },
      /partitionByThing = true is invalid: needs an s3Prefix without !\{\.\.\.\} that ends in \//,
    ],
    [
      "partitioning with zero buffering",
      { bufferIntervalSeconds: 0 },
      /bufferIntervalSeconds = 0 is invalid: must be above 0 when partitionByThing is true/,
    ],
    [
      "telemetry at the bucket's root",
      { s3Prefix: "data", partitionByThing: false },
      /s3Prefix = "data" is invalid: must begin with a folder such as telemetry\//,
    ],
    [
      "errors inside the table's folder",
      { errorOutputPrefix: "telemetry/errors/" },
      /s3Prefix = "telemetry\/" is invalid: the lake's table reads everything under telemetry\/, which holds the errorOutputPrefix/,
    ],
    [
      "an unknown IoT log level",
      { iotLogLevel: "TRACE" },
      /iotLogLevel = "TRACE" is invalid: must be one of ERROR, WARN/,
    ],
    [
      "an e-mail without @",
      { alarmEmail: "ops" },
      /alarmEmail = "ops" is invalid: set an e-mail address/,
    ],
    [
      "a period that is not whole minutes",
      { alarmPeriodSeconds: 90 },
      /alarmPeriodSeconds = 90 is invalid: must be a multiple of 60/,
    ],
    [
      "a rate above 100%",
      { ruleErrorRatePercent: 101 },
      /ruleErrorRatePercent = 101 is invalid: must be a whole number of percent from 0 to 100/,
    ],
    [
      "a freshness threshold a healthy partitioned stream passes",
      { deliveryFreshnessSeconds: 400 },
      /deliveryFreshnessSeconds = 400 is invalid: must be greater than 450 s/,
    ],
    [
      "Standard-IA before 30 days",
      { transitionDays: 7 },
      /transitionDays = 7 is invalid: must be 0 or at least 30 for STANDARD_IA/,
    ],
    [
      "expiry before the transition",
      { expirationDays: 30 },
      /expirationDays = 30 is invalid: must be greater than transitionDays \(30\)/,
    ],
    [
      "an unknown storage class",
      { transitionStorageClass: "COLD" },
      /transitionStorageClass = "COLD" is invalid: must be one of STANDARD_IA/,
    ],
    [
      "old versions kept 0 days",
      { noncurrentVersionExpirationDays: 0 },
      /noncurrentVersionExpirationDays = 0 is invalid/,
    ],
    ["kmsKey not a boolean", { kmsKey: "yes" }, /kmsKey = "yes" is invalid: must be true or false/],
  ] as const) {
    it(`refuses ${what} in one line`, () => rejects(over as Record<string, unknown>, message));
  }
});
