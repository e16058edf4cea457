// The delivery stream with prod's lake layout (Parquet, partitioned by thing): a buffer of more
// than 125,000 records of one thing, delivered live and replayed at start; a buffer that fails for
// a reason a retry will not change goes to the error output instead of blocking every start; a
// device's `thing` never chooses a path outside the state folder; and the local bucket refuses
// any key that would leave it.
import { strict as assert } from "node:assert";
import { DuckDBInstance } from "@duckdb/node-api";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { lakeLayout, TELEMETRY_COLUMNS } from "../../core/lake";
import { loadStackConfig } from "../../core/stack-config";
import { nodeFiles, type FileLayer } from "../../local/private/file-layer";
import { LocalDeliveryStream, type DeliveryStreamOptions } from "../../local/delivery";
import { encodeFrame, KIND_RECORD } from "../../local/delivery/journal-format";
import mqtt from "mqtt";
import { telemetryTopicFor } from "../../core/topics";
import { LakeObjectWriter } from "../../local/lake/lake-writer";
import { startLocalPipeline } from "../../local/pipeline/pipeline";
import { LocalBucket, ObjectKeyError } from "../../local/storage/s3";

const ARRIVAL = Date.UTC(2026, 10, 26, 9, 15, 0);
const layout = lakeLayout(
  { prefix: "telemetry/", errorOutputPrefix: "errors/" },
  { format: "parquet", partitionByThing: true },
);
const base = loadStackConfig("prod").delivery;
const delivery = {
  ...base,
  prefix: layout.prefix,
  errorOutputPrefix: layout.errorOutputPrefix,
  bufferSizeMiB: 128,
  bufferIntervalSeconds: 900,
};

function writerOptions(stateDir: string) {
  return {
    streamName: base.streamName,
    layout,
    columns: TELEMETRY_COLUMNS,
    compression: "UNCOMPRESSED" as const,
    parquetCodec: "SNAPPY" as const,
    table: { databaseName: "iot_pipeline_prod", tableName: "telemetry", region: "us-east-1" },
    scratchDir: path.join(stateDir, "tmp"),
  };
}

async function open(
  stateDir: string,
  writer: LakeObjectWriter,
  log: string[] = [],
  extra: Partial<DeliveryStreamOptions> = {},
) {
  return LocalDeliveryStream.open({
    stack: "lake",
    delivery,
    bucket: "lake",
    stateDir,
    layout: writer,
    log: (l) => log.push(l),
    ...extra,
  });
}

const reading = (thing: string, i: number) =>
  Buffer.from(
    `{"thing":${JSON.stringify(thing)},"timestamp":${ARRIVAL + i},"temperature":${i % 50},"max_temperature":60,"min_temperature":0}\n`,
  );

function journalDir(stateDir: string) {
  return path.join(stateDir, "journal", "lake", base.streamName);
}

/** A journal segment as a killed run leaves it: `count` acknowledged records of one thing. */
function writeJournal(stateDir: string, thing: string, count: number): string {
  fs.mkdirSync(journalDir(stateDir), { recursive: true });
  const frames: Buffer[] = new Array(count);
  for (let i = 0; i < count; i++) {
    frames[i] = encodeFrame({ kind: KIND_RECORD, arrival: ARRIVAL + i, data: reading(thing, i) });
  }
  const file = path.join(journalDir(stateDir), "segment-000000000001.jnl");
  fs.writeFileSync(file, Buffer.concat(frames));
  return file;
}

/** Rows in the Parquet objects under `prefix`, counted by DuckDB. */
async function parquetCount(bucketDir: string, prefix: string): Promise<number> {
  const db = await DuckDBInstance.create(":memory:");
  const c = await db.connect();
  try {
    const glob = path.join(bucketDir, prefix, "**", "*.parquet");
    const r = await c.runAndReadAll(`SELECT count(*) AS n FROM read_parquet('${glob}')`);
    return Number(r.getRowObjectsJS()[0].n);
  } finally {
    c.closeSync();
    db.closeSync();
  }
}

/** Error documents under `errors/<type>/`. */
function errorDocs(bucketDir: string, type: string): Record<string, unknown>[] {
  const dir = path.join(bucketDir, "errors", type);
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .map((f) => path.join(dir, f))
    .filter((f) => fs.statSync(f).isFile())
    .flatMap((f) => fs.readFileSync(f, "utf8").trim().split("\n"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function segments(stateDir: string): string[] {
  return fs.readdirSync(journalDir(stateDir)).filter((n) => n.startsWith("segment-"));
}

describe("delivery into prod's Parquet lake (local/delivery + local/lake/lake-writer)", function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lake-delivery-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("replays at start a journal of 130,000 records of one thing: one Parquet object, nothing left", async () => {
    writeJournal(dir, "s1", 130_000);
    const writer = new LakeObjectWriter(writerOptions(dir));
    const s = await open(dir, writer);
    try {
      assert.equal(s.stats.recordsReplayed, 130_000);
      assert.equal(s.stats.recordsDelivered, 130_000);
      assert.equal(s.stats.recordsFailedDelivery, 0);
      assert.equal(await parquetCount(s.bucket.dir, "telemetry/device=s1"), 130_000);
      assert.deepEqual(segments(dir).length, 1, "only the new run's segment is left");
    } finally {
      await s.close();
      await writer.close();
    }
  });

  it("delivers 130,000 records of one thing put in one buffer, and stops with nothing in the journal", async () => {
    const writer = new LakeObjectWriter(writerOptions(dir));
    const s = await open(dir, writer);
    for (let i = 0; i < 130_000; i += 5000) {
      await Promise.all(Array.from({ length: 5000 }, (_, k) => s.put(reading("s1", i + k))));
    }
    await s.close();
    await writer.close();
    assert.equal(s.stats.recordsLeftInJournal, 0);
    assert.equal(s.stats.recordsDelivered, 130_000);
    assert.equal(await parquetCount(s.bucket.dir, "telemetry/device=s1"), 130_000);
  });

  it("a full disk halfway through a buffer's partitions: the retry writes the rest, not the first ones again", async () => {
    let failures = 1;
    const files: FileLayer = {
      open(file, flags, mode) {
        if (flags === "w" && file.includes("device=s2") && failures-- > 0) {
          return Promise.reject(Object.assign(new Error("no space left"), { code: "ENOSPC" }));
        }
        return nodeFiles.open(file, flags, mode);
      },
    };
    const writer = new LakeObjectWriter(writerOptions(dir));
    const s = await open(dir, writer, [], { files, retryMs: 10 });
    for (let i = 0; i < 20; i++) await s.put(reading(i % 2 === 0 ? "s1" : "s2", i));
    await s.flush(); // while running, a full disk is waited out and retried
    await s.close();
    await writer.close();
    const keys = await s.bucket.listKeys();
    assert.equal(keys.filter((k) => k.includes("device=s1/")).length, 1, keys.join("\n"));
    assert.equal(keys.filter((k) => k.includes("device=s2/")).length, 1, keys.join("\n"));
    assert.equal(s.stats.recordsDelivered, 20);
  });

  /** A writer that fails the same way at every attempt, as the spread over 125,000 records did. */
  class BrokenWriter extends LakeObjectWriter {
    override objects(): Promise<never> {
      return Promise.reject(new RangeError("Maximum call stack size exceeded"));
    }
  }

  it("a journaled buffer that can never be written goes to the error output at start; the start succeeds", async () => {
    writeJournal(dir, "s1", 1000);
    const log: string[] = [];
    const writer = new BrokenWriter(writerOptions(dir));
    const s = await open(dir, writer, log);
    try {
      assert.equal(s.stats.recordsFailedDelivery, 1000);
      assert.equal(s.stats.errorRecordsDelivered, 1000);
      const docs = errorDocs(s.bucket.dir, "format-conversion-failed");
      assert.equal(docs.length, 1000, "every record, none dropped");
      assert.equal(docs[0].ErrorCode, "DataFormatConversion.ConversionFailed");
      assert.match(String(docs[0].ErrorMessage), /Maximum call stack size exceeded/);
      assert.deepEqual(Buffer.from(docs[7].rawData as string, "base64"), reading("s1", 7));
      assert.ok(
        log.some((l) => /1000 record\(s\) cannot be delivered \(RangeError/.test(l)),
        log.join("\n"),
      );
      assert.equal(segments(dir).length, 1, "the replayed segment is gone");
    } finally {
      await s.close();
      await writer.close();
    }
    // And the next start has nothing to replay.
    const again = await open(dir, new LakeObjectWriter(writerOptions(dir)));
    assert.equal(again.stats.recordsReplayed, 0);
    await again.close();
  });

  it("a live buffer that can never be written goes to the error output once, not back to the journal", async () => {
    const writer = new BrokenWriter(writerOptions(dir));
    const s = await open(dir, writer);
    for (let i = 0; i < 50; i++) await s.put(reading("s1", i));
    await s.close();
    await writer.close();
    assert.equal(s.stats.recordsLeftInJournal, 0);
    assert.equal(s.stats.recordsFailedDelivery, 50);
    assert.equal(errorDocs(s.bucket.dir, "format-conversion-failed").length, 50);
  });

  it("a device's thing never chooses a path outside the state folder; the buffer's good records are delivered once; stop and restart succeed", async () => {
    const escape = `lake-escape-${path.basename(dir)}`;
    const bad = [`${"../".repeat(12)}tmp/${escape}`, "s\u0000x", "x".repeat(300)];
    const writer = new LakeObjectWriter(writerOptions(dir));
    const s = await open(dir, writer);
    for (let i = 0; i < 30; i++) {
      await s.put(reading(i % 2 === 0 ? "s1" : "s2", i));
      if (i % 10 === 0) await s.put(reading(bad[i / 10], i));
    }
    await s.close(); // the stop: it must not throw
    await writer.close();
    assert.equal(s.stats.recordsLeftInJournal, 0, "nothing stuck in the journal");
    // Where a plain join of the bucket's folder and the key would write the escaping one.
    const naive = path.join(s.bucket.dir, "telemetry", `device=${bad[0]}`);
    assert.ok(!fs.existsSync(naive), `nothing at ${naive}`);
    assert.ok(!fs.existsSync(path.join(os.tmpdir(), escape)));
    assert.equal(await parquetCount(s.bucket.dir, "telemetry/device=s1"), 15);
    assert.equal(await parquetCount(s.bucket.dir, "telemetry/device=s2"), 15);
    assert.equal(s.stats.recordsDelivered, 30, "the good records, exactly once");
    const failed = errorDocs(s.bucket.dir, "processing-failed");
    assert.deepEqual(
      failed.map((d) => d.ErrorCode),
      Array(3).fill("DynamicPartitioning.InvalidPartitionKey"),
    );
    // The restart: nothing to replay, nothing written twice.
    const w2 = new LakeObjectWriter(writerOptions(dir));
    const again = await open(dir, w2);
    assert.equal(again.stats.recordsReplayed, 0);
    await again.close();
    await w2.close();
    assert.equal(await parquetCount(s.bucket.dir, "telemetry"), 30);
  });
});

describe("prod's pipeline: a device's thing over MQTT, stop and restart (local/pipeline)", function () {
  this.timeout(120_000);
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lake-pipeline-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("a malicious thing on a device's own topic: good records delivered once, nothing outside the state folder, stop leaves nothing (exit 0), restart starts; a killed run's scratch is cleared", async () => {
    const config = loadStackConfig("prod");
    assert.equal(config.lake.format, "parquet");
    const scratch = path.join(dir, "tmp", config.stack, config.delivery.streamName);
    fs.mkdirSync(path.join(scratch, "iot-pipeline-parquet-killed"), { recursive: true });
    const lines: string[] = [];
    const p = await startLocalPipeline(config, { stateDir: dir, log: (l) => lines.push(l) });
    const thing = config.things[0].name;
    const escape = `lake-escape-${path.basename(dir)}`;
    const bad = [`${"../".repeat(12)}tmp/${escape}`, "s\u0000x", "x".repeat(300)];
    try {
      const client = await mqtt.connectAsync(p.url, {
        ...p.credentialsFor(thing),
        clientId: thing,
        rejectUnauthorized: true,
        reconnectPeriod: 0,
      });
      client.on("error", () => undefined);
      const topic = telemetryTopicFor(config.telemetryTopic, thing);
      const reading = (t: string, i: number) =>
        JSON.stringify({
          thing: t,
          timestamp: ARRIVAL + i,
          temperature: 20,
          max_temperature: 30,
          min_temperature: 10,
        });
      for (let i = 0; i < 20; i++) await client.publishAsync(topic, reading(thing, i), { qos: 1 });
      for (const b of bad) await client.publishAsync(topic, reading(b, 0), { qos: 1 });
      await client.endAsync();
    } finally {
      await p.stop();
    }
    // simulate exits 2 when records stay in the journal at stop: none do.
    assert.equal(p.delivery.stats.recordsLeftInJournal, 0, lines.join("\n"));
    assert.equal(p.delivery.stats.recordsDelivered, 20);
    assert.equal(p.delivery.stats.errorRecordsDelivered, 3);
    assert.ok(!fs.existsSync(path.join(os.tmpdir(), escape)), "nothing written outside");
    const bucket = p.delivery.bucket.dir;
    assert.equal(await parquetCount(bucket, `telemetry/device=${thing}`), 20);
    // Restart: simulate exited 1 when the replay threw; now it starts, with nothing to replay.
    const again = await startLocalPipeline(config, { stateDir: dir });
    assert.equal(again.delivery.stats.recordsReplayed, 0);
    await again.stop();
    assert.equal(await parquetCount(bucket, "telemetry"), 20, "nothing delivered twice");
    assert.deepEqual(
      fs.readdirSync(scratch).filter((n) => n.startsWith("iot-pipeline-parquet-")),
      [],
      "the killed run's scratch folder was cleared at start, and a stop leaves none",
    );
  });
});

describe("local bucket: keys that would leave its folder (local/storage/s3)", () => {
  // S3 keys are UTF-8 up to 1,024 bytes
  // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html); the local bucket maps
  // them to paths and refuses what would not stay a path inside its folder.
  const REFUSED: readonly [string, string][] = [
    ["absolute", "/etc/passwd"],
    [".. segments", "telemetry/../../../outside"],
    ["a . segment", "telemetry/./x"],
    ["NUL", "telemetry/a\u0000b"],
    ["over 1,024 bytes", `t/${"x/".repeat(520)}o`],
    ["a segment over 255 bytes", `telemetry/${"x".repeat(256)}/o`],
    ["empty", ""],
    ["a folder", "telemetry/"],
  ];
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "bucket-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const [what, key] of REFUSED) {
    it(`refuses a key: ${what}`, async () => {
      const b = new LocalBucket(path.join(dir, "state"), "b");
      await assert.rejects(b.putObject(key, Buffer.from("x")), (e: unknown) => {
        assert.ok(e instanceof ObjectKeyError, String(e));
        assert.match(e.message, /^the local bucket b refuses the object key /);
        assert.equal(e.message.split("\n").length, 1);
        return true;
      });
      assert.deepEqual(fs.readdirSync(dir), [], "nothing was created");
    });
  }

  it("stores a key of exactly 1,024 bytes", async () => {
    const b = new LocalBucket(path.join(dir, "state"), "b");
    const key = `t/${"x".repeat(200)}/`.repeat(5) + "o".repeat(1024 - 5 * 203);
    assert.equal(Buffer.byteLength(key), 1024);
    const file = await b.putObject(key, Buffer.from("x"));
    assert.ok(file.startsWith(b.dir + path.sep));
  });
});
