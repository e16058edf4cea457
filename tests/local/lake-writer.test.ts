// The local delivery stream's lake output: records grouped into their thing's partition, Parquet
// written with the table's columns (read back with DuckDB), and the records Firehose would refuse
// under the error prefix as its error documents, each with its error-output-type.
import { strict as assert } from "node:assert";
import { DuckDBInstance } from "@duckdb/node-api";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { lakeLayout, TELEMETRY_COLUMNS, type LakeLayout } from "../../core/lake";
import { LakeObjectWriter, type LakeObject } from "../../local/lake/lake-writer";

const ARRIVAL = Date.UTC(2026, 10, 26, 9, 15, 0);
const reading = (thing: string, i: number) => ({
  thing,
  timestamp: ARRIVAL + i,
  temperature: 10 + i,
  max_temperature: 20,
  min_temperature: 1,
});
const rec = (v: unknown) => ({ arrival: ARRIVAL, data: Buffer.from(`${JSON.stringify(v)}\n`) });

let n = 0;
const uuid = () => `uuid-${n++}`;

function writer(layout: LakeLayout, scratchDir = fs.mkdtempSync(path.join(os.tmpdir(), "lw-"))) {
  return new LakeObjectWriter({
    streamName: "weather-data-stream",
    layout,
    columns: TELEMETRY_COLUMNS,
    compression: "UNCOMPRESSED",
    parquetCodec: "SNAPPY",
    table: { databaseName: "iot_pipeline_prod", tableName: "telemetry", region: "us-east-1" },
    scratchDir,
  });
}

/**
 * `count` readings of one thing as buffered records, built from one template (JSON.stringify per
 * record would dominate the test's time).
 */
function manyReadings(thing: string, count: number, arrival = ARRIVAL) {
  const out: { arrival: number; data: Buffer }[] = new Array(count);
  for (let i = 0; i < count; i++) {
    out[i] = {
      arrival: arrival + (count - i), // the oldest record last: the object's name needs the minimum
      data: Buffer.from(
        `{"thing":"${thing}","timestamp":${ARRIVAL + i},"temperature":${i % 50},"max_temperature":60,"min_temperature":0}\n`,
      ),
    };
  }
  return out;
}

async function parquetQuery(body: Buffer, sql: string): Promise<Record<string, unknown>[]> {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pq-")), "x.parquet");
  fs.writeFileSync(file, body);
  const db = await DuckDBInstance.create(":memory:");
  const c = await db.connect();
  try {
    return (
      await c.runAndReadAll(sql.replace("$FILE", `read_parquet('${file}')`))
    ).getRowObjectsJS();
  } finally {
    c.closeSync();
    db.closeSync();
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
}

async function parquetRows(body: Buffer): Promise<Record<string, unknown>[]> {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "pq-")), "x.parquet");
  fs.writeFileSync(file, body);
  const db = await DuckDBInstance.create(":memory:");
  const c = await db.connect();
  try {
    return (await c.runAndReadAll(`SELECT * FROM read_parquet('${file}')`)).getRowObjectsJS();
  } finally {
    c.closeSync();
    db.closeSync();
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  }
}

const errorDocs = (o: LakeObject) =>
  o.body
    .toString("utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe("local lake writer: Parquet, partitions and Firehose's error output", function () {
  this.timeout(30000);
  const partitioned = lakeLayout(
    { prefix: "telemetry/", errorOutputPrefix: "errors/" },
    { format: "parquet", partitionByThing: true },
  );

  it("writes one Parquet object per thing under device=<thing>/ with the table's typed columns", async () => {
    const w = writer(partitioned);
    try {
      const out = await w.objects(
        [rec(reading("s1", 0)), rec(reading("s2", 1)), rec(reading("s1", 2))],
        uuid,
      );
      assert.deepEqual(
        out.map((o) => [o.key.replace(/-uuid-\d+/, ""), o.records, o.error]),
        [
          [
            "telemetry/device=s1/2026/11/26/09/weather-data-stream-1-2026-11-26-09-15-00.parquet",
            2,
            false,
          ],
          [
            "telemetry/device=s2/2026/11/26/09/weather-data-stream-1-2026-11-26-09-15-00.parquet",
            1,
            false,
          ],
        ],
      );
      const rows = await parquetRows(out[0].body);
      assert.deepEqual(
        rows.map((r) => [r.thing, Number(r.timestamp), r.temperature, r.humidity]),
        [
          ["s1", ARRIVAL, 10, null],
          ["s1", ARRIVAL + 2, 12, null],
        ],
      );
      assert.equal(typeof rows[0].timestamp, "bigint", "timestamp is a BIGINT column");
    } finally {
      await w.close();
    }
  });

  it("a record without a thing goes to processing-failed, one that does not fit the schema to format-conversion-failed", async () => {
    const w = writer(partitioned);
    try {
      const bad = { ...reading("s1", 0), temperature: "hot" };
      const out = await w.objects(
        [rec(reading("s1", 0)), rec({ temperature: 1 }), rec(bad), rec("not an object")],
        uuid,
      );
      const errors = out.filter((o) => o.error);
      assert.deepEqual(
        errors.map((o) => [o.key.split("/")[1], o.records]),
        [
          ["processing-failed", 2],
          ["format-conversion-failed", 1],
        ],
      );
      const conversion = errorDocs(errors[1])[0];
      assert.equal(conversion.ErrorCode, "DataFormatConversion.InvalidSchema");
      assert.equal(
        Buffer.from(conversion.rawData as string, "base64").toString(),
        `${JSON.stringify(bad)}\n`,
      );
      assert.deepEqual(conversion.dataCatalogTable, {
        databaseName: "iot_pipeline_prod",
        tableName: "telemetry",
        region: "us-east-1",
        versionId: "LATEST",
      });
      assert.equal(conversion.arrivalTimestamp, ARRIVAL);
      assert.equal(
        out.filter((o) => !o.error).reduce((s, o) => s + o.records, 0),
        1,
      );
    } finally {
      await w.close();
    }
  });

  it("records of partitions beyond the 500 active ones go to activePartitionExceeded", async () => {
    const w = writer(
      lakeLayout(
        { prefix: "telemetry/", errorOutputPrefix: "errors/" },
        { format: "json", partitionByThing: true },
      ),
    );
    const out = await w.objects(
      Array.from({ length: 502 }, (_, i) => rec(reading(`t${i}`, i))),
      uuid,
    );
    const errors = out.filter((o) => o.error);
    assert.equal(out.filter((o) => !o.error).length, 500);
    assert.deepEqual(
      errors.map((o) => [o.key.split("/")[1], o.records]),
      [["activePartitionExceeded", 2]],
    );
    await w.close();
  });

  it("writes a buffer of 130,000 records of one thing as one Parquet object (no spread of the buffer into a call)", async () => {
    // Past about 125,000 records, Math.min(...rows) overflowed the call stack (issue 21, finding 1).
    const w = writer(partitioned);
    try {
      const records = manyReadings("s1", 130_000);
      const out = await w.objects(records, uuid);
      assert.deepEqual(
        out.map((o) => [o.key.replace(/-uuid-\d+/, ""), o.records, o.error]),
        [
          [
            // Named after the oldest arrival, which is the last record's.
            "telemetry/device=s1/2026/11/26/09/weather-data-stream-1-2026-11-26-09-15-00.parquet",
            130_000,
            false,
          ],
        ],
      );
      const [summary] = await parquetQuery(
        out[0].body,
        "SELECT count(*) AS n, min(timestamp) AS lo, max(timestamp) AS hi FROM $FILE",
      );
      assert.deepEqual(
        [Number(summary.n), Number(summary.lo), Number(summary.hi)],
        [130_000, ARRIVAL, ARRIVAL + 129_999],
      );
    } finally {
      await w.close();
    }
  });

  it("a buffer of 130,000 records that all fail goes to the error output whole (no spread either)", async () => {
    const w = writer(partitioned);
    try {
      const records = manyReadings("s1", 130_000).map((r) => ({
        arrival: r.arrival,
        data: Buffer.from(r.data.toString().replace('"temperature":', '"temperature":"hot","x":')),
      }));
      const out = await w.objects(records, uuid);
      assert.deepEqual(
        out.map((o) => [o.key.split("/")[1], o.records, o.error]),
        [["format-conversion-failed", 130_000, true]],
      );
    } finally {
      await w.close();
    }
  });

  /**
   * Partition key values, per record: Firehose sends a record whose key cannot be extracted or
   * whose prefix cannot be evaluated to the error output
   * (https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning-error-handling.html); an
   * evaluated prefix may be at most 512 characters (semantic rules of
   * https://docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html), an object key at most 1,024
   * bytes (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html). The local
   * bucket also refuses what a path cannot hold (`..` segments, NUL, a segment over 255 bytes).
   */
  const KEY_TABLE: readonly [string, unknown, string][] = [
    ["a thing name", "s1", "telemetry/device=s1/2026/11/26/09/"],
    ["a number (jq turns it into text)", 42, "telemetry/device=42/2026/11/26/09/"],
    ["slashes: more folders, as in S3", "a/b", "telemetry/device=a/b/2026/11/26/09/"],
    [
      "text that looks like an expression stays text",
      "!{timestamp:yyyy}",
      "telemetry/device=!{timestamp:yyyy}/2026/11/26/09/",
    ],
    ["missing", undefined, "DynamicPartitioning.MetadataExtractionFailed"],
    ["null", null, "DynamicPartitioning.MetadataExtractionFailed"],
    ["an object", { a: 1 }, "DynamicPartitioning.MetadataExtractionFailed"],
    [
      "../ x12 + tmp/...",
      `${"../".repeat(12)}tmp/lake-escape`,
      "DynamicPartitioning.InvalidPartitionKey",
    ],
    ["a .. segment", "x/../../y", "DynamicPartitioning.InvalidPartitionKey"],
    ["a NUL", "s\u0000x", "DynamicPartitioning.InvalidPartitionKey"],
    ["a newline", "s\nx", "DynamicPartitioning.InvalidPartitionKey"],
    [
      "300 characters (over a file name's 255 bytes)",
      "x".repeat(300),
      "DynamicPartitioning.InvalidPartitionKey",
    ],
    ["600 characters (prefix over 512)", "x".repeat(600), "DynamicPartitioning.PrefixTooLong"],
    [
      "472 characters of up to 3 bytes (prefix under 512, key over 1,024 bytes)",
      "日日日/".repeat(118),
      "DynamicPartitioning.InvalidPartitionKey",
    ],
  ];

  for (const [what, thing, expected] of KEY_TABLE) {
    it(`partition key value: ${what} -> ${expected.startsWith("telemetry/") ? "delivered" : expected}`, async () => {
      const w = writer(
        lakeLayout(
          { prefix: "telemetry/", errorOutputPrefix: "errors/" },
          { format: "json", partitionByThing: true },
        ),
      );
      try {
        const odd = rec({ ...reading("s1", 1), thing });
        const out = await w.objects([rec(reading("good", 0)), odd, rec(reading("good", 2))], uuid);
        const good = out.filter((o) => !o.error && o.key.startsWith("telemetry/device=good/"));
        assert.deepEqual(
          good.map((o) => o.records),
          [2],
          "the other records of the buffer are delivered, once",
        );
        const rest = out.filter((o) => !good.includes(o));
        assert.equal(rest.length, 1);
        if (expected.startsWith("telemetry/")) {
          assert.equal(rest[0].error, false);
          assert.equal(rest[0].key.slice(0, expected.length), expected);
          assert.deepEqual(rest[0].body, odd.data);
        } else {
          assert.equal(rest[0].error, true);
          assert.equal(rest[0].key.split("/")[1], "processing-failed");
          const [doc] = errorDocs(rest[0]);
          assert.equal(doc.ErrorCode, expected);
          assert.deepEqual(Buffer.from(doc.rawData as string, "base64"), odd.data);
        }
      } finally {
        await w.close();
      }
    });
  }

  it("writes DuckDB's scratch files under scratchDir, removing what a killed run left there", async () => {
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "lw-scratch-"));
    const leftover = path.join(scratch, "iot-pipeline-parquet-killed");
    fs.mkdirSync(leftover);
    fs.writeFileSync(path.join(leftover, "half.parquet"), "x");
    const w = writer(partitioned, scratch);
    try {
      await w.objects([rec(reading("s1", 0))], uuid);
      const during = fs.readdirSync(scratch);
      assert.equal(during.length, 1, `one scratch folder of this writer: ${during.join(", ")}`);
      assert.match(during[0], /^iot-pipeline-parquet-/);
      assert.notEqual(during[0], "iot-pipeline-parquet-killed");
    } finally {
      await w.close();
    }
    assert.deepEqual(fs.readdirSync(scratch), [], "close removes its own scratch folder");
  });

  it("clearLeftovers removes other runs' scratch folders and nothing else", async () => {
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "lw-scratch-"));
    fs.mkdirSync(path.join(scratch, "iot-pipeline-parquet-a"));
    fs.mkdirSync(path.join(scratch, "iot-pipeline-parquet-b"));
    fs.writeFileSync(path.join(scratch, "keep.txt"), "x");
    const w = writer(partitioned, scratch);
    assert.equal(await w.clearLeftovers(), 2);
    assert.deepEqual(fs.readdirSync(scratch), ["keep.txt"]);
    await w.close();
  });
});
