// The local delivery stream: size and interval flushes, key layout, separator, GZIP, error
// prefix, and durability across a SIGKILL between acknowledgement and flush.
import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { FIREHOSE_RECORD_SEPARATOR } from "../../core/delivery";
import { until } from "../helpers/wait";
import { loadStackConfig, type DeliveryConfig } from "../../core/stack-config";
import {
  DeliveryStreamBusyError,
  FirehoseRecordError,
  LocalDeliveryStream,
  RECORD_OVERHEAD_BYTES,
} from "../../local/delivery";
import { deliveredLines, readObject } from "../helpers/delivered";
import { TS_NODE_FLAGS } from "../../core/project";

const base = loadStackConfig("dev").delivery;
const fixedNow = new Date(Date.UTC(2026, 10, 26, 9, 5, 7));

async function open(dir: string, delivery: Partial<DeliveryConfig>, extra = {}) {
  let n = 0;
  return LocalDeliveryStream.open({
    stack: "test",
    delivery: { ...base, ...delivery },
    bucket: "bucket",
    stateDir: dir,
    now: () => fixedNow,
    uuid: () => `00000000-0000-4000-8000-${String(++n).padStart(12, "0")}`,
    ...extra,
  });
}

const record = (i: number) => Buffer.from(JSON.stringify({ i }) + FIREHOSE_RECORD_SEPARATOR);

describe("local delivery stream (local/delivery)", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "firehose-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("names objects <prefix>YYYY/MM/dd/HH/<stream>-1-<yyyy-MM-dd-HH-mm-ss>-<uuid> in UTC", async () => {
    const s = await open(dir, { prefix: "telemetry/" });
    await s.put(record(1));
    await s.close();
    const keys = await s.bucket.listKeys();
    assert.deepEqual(keys, [
      "telemetry/2026/11/26/09/weather-data-stream-1-2026-11-26-09-05-07-00000000-0000-4000-8000-000000000001",
    ]);
    assert.equal(s.objects[0], path.join(dir, "s3", "bucket", ...keys[0].split("/")));
  });

  it("concatenates records, each ending with the rule action's separator", async () => {
    const s = await open(dir, {});
    for (let i = 0; i < 5; i++) await s.put(record(i));
    await s.close();
    assert.equal(s.objects.length, 1);
    assert.equal(readObject(s.objects[0]), '{"i":0}\n{"i":1}\n{"i":2}\n{"i":3}\n{"i":4}\n');
  });

  it("flushes when the buffer reaches its size, before the interval", async () => {
    const s = await open(dir, { bufferSizeMiB: 1, bufferIntervalSeconds: 900 });
    const big = Buffer.alloc(300 * 1024, "x");
    for (let i = 0; i < 4; i++) await s.put(big); // 1.2 MiB: the fourth crosses 1 MiB
    await s.put(record(99));
    await s.idle();
    assert.equal(s.stats.objectsWritten, 1, "one object for the full buffer");
    assert.equal(fs.statSync(s.objects[0]).size, 4 * 300 * 1024);
    assert.equal(s.buffered, 1, "the record after the flush waits for the next one");
    await s.close();
    assert.equal(s.stats.objectsWritten, 2);
  });

  it("flushes when the buffer interval passes (scaled by timeScale), without a close", async () => {
    // The interval runs on a clock the test holds: 60 s at timeScale 600 is armed as 100 ms.
    const armed: Array<{ flush: () => void; ms: number }> = [];
    const s = await open(
      dir,
      { bufferIntervalSeconds: 60 },
      {
        timeScale: 600,
        scheduleFlush: (flush: () => void, ms: number) => {
          armed.push({ flush, ms });
          return () => undefined;
        },
      },
    );
    await s.put(record(1));
    await s.put(record(2));
    assert.equal(s.stats.objectsWritten, 0, "nothing is written before the interval passes");
    const timer = armed.at(-1);
    assert.equal(timer?.ms, 100);
    timer?.flush();
    await until(() => s.stats.objectsWritten === 1, "the interval's flush");
    assert.deepEqual(deliveredLines(s.objects), ['{"i":1}', '{"i":2}']);
    await s.close();
  });

  it("compresses with GZIP and names the object .gz when the stack asks for it", async () => {
    const s = await open(dir, { compression: "GZIP" });
    await s.put(record(1));
    await s.close();
    assert.match(s.objects[0], /weather-data-stream-1-2026-11-26-09-05-07-[0-9a-f-]+\.gz$/);
    const body = fs.readFileSync(s.objects[0]);
    assert.deepEqual([...body.subarray(0, 2)], [0x1f, 0x8b], "gzip magic");
    assert.equal(zlib.gunzipSync(body).toString(), '{"i":1}\n');
  });

  it("puts records that cannot be delivered under the error output prefix", async () => {
    const s = await open(dir, { errorOutputPrefix: "errors/" });
    await s.put(record(1));
    await s.putError(Buffer.from('{"failures":[]}\n'));
    await s.close();
    const keys = await s.bucket.listKeys();
    assert.equal(keys.length, 2);
    assert.match(keys[0], /^errors\/processing-failed\/2026\/11\/26\/09\/weather-data-stream-1-/);
    assert.match(keys[1], /^telemetry\/2026\/11\/26\/09\//);
    assert.equal(s.stats.errorRecordsDelivered, 1);
  });

  it("evaluates !{timestamp:...} and !{firehose:error-output-type} in custom prefixes", async () => {
    const s = await open(dir, {
      prefix: "data/year=!{timestamp:yyyy}/month=!{timestamp:MM}/",
      errorOutputPrefix: "failed/!{firehose:error-output-type}/!{timestamp:yyyy}/",
    });
    await s.put(record(1));
    await s.putError(record(2));
    await s.close();
    const keys = await s.bucket.listKeys();
    assert.match(keys[0], /^data\/year=2026\/month=11\/weather-data-stream-1-/);
    assert.match(keys[1], /^failed\/processing-failed\/2026\/weather-data-stream-1-/);
  });

  it("refuses a record over 1,000 KiB as PutRecord does", async () => {
    const s = await open(dir, {});
    await assert.rejects(s.put(Buffer.alloc(1000 * 1024 + 1)), FirehoseRecordError);
    await s.close();
    assert.equal(s.stats.objectsWritten, 0);
  });

  it("bounds memory when the disk is slower than producers: put waits while two buffers are unwritten", async () => {
    const s = await open(dir, { bufferIntervalSeconds: 0 });
    // Hold every object write until released: the disk "stalls", the objects stay real.
    const release: (() => void)[] = [];
    const write = s.bucket.putObject.bind(s.bucket);
    s.bucket.putObject = async (key, body) => {
      await new Promise<void>((r) => release.push(r));
      return write(key, body);
    };
    await s.put(record(1)); // buffer 1 flushed, its write stalls
    await s.put(record(2)); // buffer 2 flushed, queued behind it
    let third = false;
    const p3 = s.put(record(3)).then(() => (third = true));
    // Give the third record time for several journal round trips (fsync'd writes elsewhere).
    const probe = await fs.promises.open(path.join(dir, "probe"), "w");
    for (let i = 0; i < 5; i++) {
      await probe.write("x");
      await probe.datasync();
    }
    await probe.close();
    assert.equal(third, false, "the third put waits: its PUBACK would be held back");
    assert.equal(s.stats.recordsIn, 2, "and it is not even journaled yet");
    // A deadline rather than a number of turns: each release is followed by real fsyncs.
    const deadline = Date.now() + 10_000;
    while (!third) {
      assert.ok(Date.now() < deadline, "the third put never got through");
      release.splice(0).forEach((r) => r());
      await new Promise((r) => setImmediate(r));
    }
    await p3;
    const closing = s.close();
    while (s.stats.objectsWritten < 3) {
      assert.ok(Date.now() < deadline + 10_000, "the three objects were never written");
      release.splice(0).forEach((r) => r());
      await new Promise((r) => setImmediate(r));
    }
    await closing;
    assert.deepEqual(deliveredLines(s.objects).sort(), ['{"i":1}', '{"i":2}', '{"i":3}']);
  });

  it("hands a buffer of tiny records over once their memory, not only their bytes, reaches the size hint", async () => {
    const s = await open(dir, { bufferSizeMiB: 1, bufferIntervalSeconds: 900 });
    // 6,000 records of 3 bytes are 18 KB, far under 1 MiB, but each costs RECORD_OVERHEAD_BYTES
    // in memory as well: 1 MiB / (3 + 176) = 5,858 records fill the buffer.
    const tiny = Buffer.from("{}\n");
    for (let i = 0; i < 60; i++) await Promise.all(Array.from({ length: 100 }, () => s.put(tiny)));
    await s.idle();
    assert.equal(s.stats.objectsWritten, 1, "one buffer handed over before the interval");
    // Handed over after the group commit that reached it: at most one batch (100) later.
    const full = Math.ceil((1024 * 1024) / (tiny.length + RECORD_OVERHEAD_BYTES));
    const delivered = s.stats.recordsDelivered;
    assert.ok(
      delivered >= full && delivered < full + 100,
      `${delivered} records in the first object`,
    );
    await s.close();
    assert.equal(s.stats.recordsDelivered, 6000);
  });

  it("counts records waiting for a flushed buffer's objects against maxQueuedBytes, and refuses past it", async () => {
    const s = await open(dir, { bufferIntervalSeconds: 0 }, { maxQueuedBytes: 64 * 1024 });
    const release: (() => void)[] = [];
    const write = s.bucket.putObject.bind(s.bucket);
    s.bucket.putObject = async (key, body) => {
      await new Promise<void>((r) => release.push(r));
      return write(key, body);
    };
    await s.put(record(1));
    await s.put(record(2)); // two buffers wait for their objects: the next puts wait too
    const big = Buffer.alloc(20 * 1024, 0x61);
    const waiting = [0, 1, 2].map(() =>
      s.put(big).then(
        () => "acknowledged",
        () => "refused",
      ),
    );
    // 3 × 20 KiB fit in 64 KiB; a fourth does not, and is refused at once instead of held.
    await assert.rejects(
      s.put(big),
      (e: unknown) =>
        e instanceof Error &&
        e.name === "JournalUnavailableError" &&
        /bytes already wait for the journal \(2 flushed buffer\(s\) wait for their objects\)/.test(
          e.message,
        ),
    );
    const releasing = setInterval(() => release.splice(0).forEach((r) => r()), 5);
    await s.close();
    clearInterval(releasing);
    assert.equal(s.stats.objectsWritten, 2);
    assert.deepEqual(await Promise.all(waiting), ["refused", "refused", "refused"]);
  });

  it("refuses a journal another running process owns, and takes over one a dead process left", async () => {
    const journal = path.join(dir, "journal", "test", base.streamName);
    fs.mkdirSync(journal, { recursive: true });
    fs.writeFileSync(path.join(journal, "owner.pid"), String(process.ppid));
    await assert.rejects(
      open(dir, {}),
      (e: unknown) =>
        e instanceof DeliveryStreamBusyError &&
        new RegExp(`in use by process ${process.ppid} .* stop that run first`).test(e.message),
    );
    const exited = spawn(process.execPath, ["-e", ""]);
    await new Promise((r) => exited.once("exit", r));
    fs.writeFileSync(path.join(journal, "owner.pid"), String(exited.pid));
    const s = await open(dir, {});
    await s.close();
    assert.equal(fs.existsSync(path.join(journal, "owner.pid")), false, "released on close");
  });

  it("delivers every acknowledged record after the process is killed with SIGKILL", async function () {
    this.timeout(60000);
    const child = spawn(
      process.execPath,
      [...TS_NODE_FLAGS, path.join(__dirname, "fixtures", "firehose-child.ts"), dir, "3000"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const acked = new Set<number>();
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve, reject) => {
      let pending = "";
      child.stdout.on("data", (d: Buffer) => {
        pending += d.toString();
        const lines = pending.split("\n");
        pending = lines.pop() ?? "";
        for (const line of lines) {
          const m = /^ack (\d+)$/.exec(line);
          if (m) acked.add(Number(m[1]));
        }
        // Kill mid-stream: records are still arriving and none has been flushed.
        if (acked.size >= 1000 && child.exitCode === null) {
          child.kill("SIGKILL");
          resolve();
        }
      });
      child.on("exit", (code, signal) => {
        if (signal !== "SIGKILL") reject(new Error(`child exited ${code}: ${stderr}`));
      });
    });
    await new Promise((r) => child.once("close", r));
    assert.equal(
      fs.existsSync(path.join(dir, "s3")),
      false,
      "nothing was delivered before the kill",
    );

    const s = await LocalDeliveryStream.open({
      stack: "killtest",
      delivery: { ...base, bufferIntervalSeconds: 900, bufferSizeMiB: 128 },
      bucket: "kill-test",
      stateDir: dir,
    });
    assert.ok(s.stats.recordsReplayed >= acked.size, `replayed ${s.stats.recordsReplayed}`);
    await s.close();
    const delivered = deliveredLines(s.objects).map((l) => (JSON.parse(l) as { i: number }).i);
    const unique = new Set(delivered);
    const lost = [...acked].filter((i) => !unique.has(i));
    assert.deepEqual(lost, [], `${lost.length} acknowledged record(s) lost`);
    assert.equal(delivered.length, unique.size, "no duplicates without a crash during delivery");
    assert.deepEqual(
      fs.readdirSync(path.join(dir, "journal", "killtest", base.streamName)),
      [],
      "the journal is released once the objects are written",
    );
  });
});
