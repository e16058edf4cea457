// The local delivery stream's lake output: records grouped into their thing's partition, Parquet
// written with the table's columns (read back with DuckDB), and the records Firehose would refuse
// under the error prefix as its error documents, each with its error-output-type.
import { strict as assert } from "node:assert";
import { DuckDBInstance } from "@duckdb/node-api";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { lakeLayout, TELEMETRY_COLUMNS, type LakeLayout } from "../../core/lake";
import { LakeObjectWriter, type LakeObject } from "../../local/lake-writer";

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

function writer(layout: LakeLayout) {
  return new LakeObjectWriter({
    streamName: "weather-data-stream",
    layout,
    columns: TELEMETRY_COLUMNS,
    compression: "UNCOMPRESSED",
    parquetCodec: "SNAPPY",
    table: { databaseName: "iot_pipeline_prod", tableName: "telemetry", region: "us-east-1" },
  });
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
});
