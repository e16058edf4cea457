// The delivery journal under faults, through a file layer that writes short and fills the disk (run
// on every test run, no privileges needed): nothing is acknowledged that is not written whole and
// fsync'd, a full disk stalls acknowledgements once and they resume, a stop on a full disk keeps
// what was acknowledged, and a start on a full disk is one line.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { UserError } from "../../core/errors";
import { FIREHOSE_RECORD_SEPARATOR } from "../../core/delivery";
import { loadStackConfig, type DeliveryConfig } from "../../core/stack-config";
import { JournalError, JournalUnavailableError, LocalDeliveryStream } from "../../local/delivery";
import type { FileLayer } from "../../local/private/file-layer";
import { FRAME_HEADER_BYTES, scanSegment } from "../../local/delivery/journal-format";
import { FaultyFiles } from "./fixtures/faulty-files";
import { deliveredNumbers } from "../helpers/delivered";
import { tmpFiles } from "../helpers/temp";
import { until } from "../helpers/wait";

/** Each wait spans several full-disk retries on a loaded machine: twice the helper's default. */
const FAULT_WAIT_MS = 20_000;

const base = loadStackConfig("dev").delivery;
/** Nothing is flushed on its own during a test: records stay in the journal until close. */
const HOLD: Partial<DeliveryConfig> = { bufferSizeMiB: 128, bufferIntervalSeconds: 900 };

function open(dir: string, files?: FileLayer, extra: Partial<DeliveryConfig> = {}, log?: string[]) {
  return LocalDeliveryStream.open({
    stack: "faults",
    delivery: { ...base, ...HOLD, ...extra },
    bucket: "faults",
    stateDir: dir,
    files,
    retryMs: 20,
    log: (l) => log?.push(l),
  });
}

const payload = (i: number) =>
  Buffer.from(JSON.stringify({ i, pad: "x".repeat(150) }) + FIREHOSE_RECORD_SEPARATOR);

/** Puts records 0..count-1 with up to `window` in flight; resolves with what each put did. */
function putAll(s: LocalDeliveryStream, count: number, window = 64) {
  const acked = new Set<number>();
  const refused = new Map<number, Error>();
  let next = 0;
  let inFlight = 0;
  const done = new Promise<void>((resolve) => {
    const pump = () => {
      while (inFlight < window && next < count) {
        const i = next++;
        inFlight++;
        s.put(payload(i))
          .then(
            () => acked.add(i),
            (e: Error) => refused.set(i, e),
          )
          .finally(() => {
            inFlight--;
            if (next >= count && inFlight === 0) resolve();
            else pump();
          });
      }
    };
    pump();
  });
  return { acked, refused, done };
}

function journalDir(dir: string) {
  return path.join(dir, "journal", "faults", base.streamName);
}

function segmentFiles(dir: string): string[] {
  return fs
    .readdirSync(journalDir(dir))
    .filter((n) => n.startsWith("segment-"))
    .map((n) => path.join(journalDir(dir), n));
}

describe("delivery journal under disk faults (injected: short writes, a full disk)", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "journal-faults-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("completes short writes before acknowledging: every acknowledged record is on disk whole", async () => {
    const faulty = new FaultyFiles();
    faulty.shortWrites = true;
    const first = await open(dir, faulty);
    const run = putAll(first, 400);
    await run.done;
    assert.ok(
      faulty.counts.short > 0,
      "the short-writing file layer was never used by the journal",
    );
    assert.equal(run.refused.size, 0, `refused: ${[...run.refused.values()][0]?.message}`);
    assert.equal(run.acked.size, 400);
    // Crash here (no close) and start again: the replay reads exactly what reached the file.
    const second = await open(dir);
    assert.equal(second.stats.recordsReplayed, 400);
    await second.close();
    assert.deepEqual(
      deliveredNumbers(second.objects).sort((a, b) => a - b),
      [...run.acked].sort((a, b) => a - b),
    );
  });

  it("on a full disk acknowledges only what is written, says so once, and resumes when space returns", async () => {
    const log: string[] = [];
    const faulty = new FaultyFiles((p) => p.includes(`${path.sep}journal${path.sep}`));
    faulty.space = 30_000; // about 150 records of ~200 bytes
    const s = await open(dir, faulty, {}, log);
    const run = putAll(s, 600);
    await until(
      () => faulty.counts.enospc >= 3,
      "the journal to hit the full disk and retry",
      FAULT_WAIT_MS,
    );
    const ackedWhileFull = run.acked.size;
    assert.ok(ackedWhileFull > 0 && ackedWhileFull < 600, `acked ${ackedWhileFull} while full`);
    assert.equal(run.refused.size, 0, "a full disk refuses nothing: the puts wait");
    assert.equal(s.stalledNow, true);
    // Every acknowledged record is in the segment, whole, at this moment.
    const [segment] = segmentFiles(dir);
    const onDisk = new Set(
      scanSegment(fs.readFileSync(segment)).records.map(
        (r) => (JSON.parse(r.data.toString()) as { i: number }).i,
      ),
    );
    const missing = [...run.acked].filter((i) => !onDisk.has(i));
    assert.deepEqual(missing, [], "acknowledged but not on disk");

    faulty.space = Infinity; // space returns
    await run.done;
    assert.equal(run.acked.size, 600);
    assert.equal(s.stalledNow, false);
    const full = log.filter((l) => /the disk is full \(ENOSPC\) writing the journal/.test(l));
    const back = log.filter((l) => /journal is writable again after [\d.]+ s/.test(l));
    assert.equal(full.length, 1, `one line when the disk fills:\n${log.join("\n")}`);
    assert.equal(back.length, 1, "one line when it is writable again");
    assert.equal(s.stats.journalStalls, 1);
    await s.close();
    const records = deliveredNumbers(s.objects);
    assert.equal(records.length, 600, "no record written twice, none lost");
    assert.equal(new Set(records).size, 600);
  });

  it("a stop while the disk stays full refuses what waits, keeps what was acknowledged, releases the journal", async () => {
    const log: string[] = [];
    const faulty = new FaultyFiles();
    faulty.space = 20_000;
    const s = await open(dir, faulty, {}, log);
    const run = putAll(s, 400);
    await until(() => faulty.counts.enospc >= 2, "the full disk", FAULT_WAIT_MS);
    await s.close(); // must return, although nothing more can be written
    await run.done;
    assert.ok(run.acked.size > 0);
    assert.equal(run.acked.size + run.refused.size, 400);
    for (const e of run.refused.values()) {
      assert.ok(e instanceof JournalUnavailableError, `refused with ${e.name}: ${e.message}`);
    }
    assert.equal(
      s.stats.recordsLeftInJournal,
      run.acked.size,
      "acknowledged records stay journaled",
    );
    assert.ok(log.some((l) => /stay in the journal .* for the next start/.test(l)));
    assert.deepEqual(tmpFiles(dir), [], "no temp file left behind");
    assert.equal(fs.existsSync(path.join(journalDir(dir), "owner.pid")), false, "released");

    const next = await open(dir);
    await next.close();
    assert.deepEqual(
      deliveredNumbers(next.objects).sort((a, b) => a - b),
      [...run.acked].sort((a, b) => a - b),
      "the next start delivers every acknowledged record",
    );
  });

  it("while the disk is full, holds at most maxQueuedBytes waiting and refuses the rest (not acknowledged)", async () => {
    const faulty = new FaultyFiles();
    faulty.space = 0;
    const s = await LocalDeliveryStream.open({
      stack: "faults",
      delivery: { ...base, ...HOLD },
      bucket: "faults",
      stateDir: dir,
      files: faulty,
      retryMs: 20,
      maxQueuedBytes: 20_000,
    });
    const run = putAll(s, 300, 300);
    await until(() => run.refused.size > 0 && faulty.counts.enospc > 0, "refusals", FAULT_WAIT_MS);
    const waiting = 300 - run.refused.size;
    const frame = payload(0).length + FRAME_HEADER_BYTES;
    assert.ok(waiting > 0 && waiting * frame <= 20_000, `${waiting} records held while full`);
    for (const e of run.refused.values()) {
      assert.ok(e instanceof JournalUnavailableError);
      assert.match(
        e.message,
        /bytes already wait for the journal( \(the disk is full\))?; not acknowledged$/,
      );
    }
    faulty.space = Infinity;
    await run.done;
    assert.equal(run.acked.size, waiting, "the held ones are acknowledged once there is space");
    await s.close();
    assert.equal(deliveredNumbers(s.objects).length, waiting);
  });

  it("a start on a full disk is one JournalError line (exit 2), keeps the journal and leaves no temp file", async () => {
    const first = await open(dir);
    const run = putAll(first, 50);
    await run.done; // acknowledged, then the process "dies" before delivering
    const full = new FaultyFiles();
    full.space = 0;
    for (let attempt = 0; attempt < 2; attempt++) {
      const err = await open(dir, full).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof JournalError, `expected a JournalError, got ${String(err)}`);
      assert.ok(err instanceof UserError && err.exitCode === 2);
      assert.equal(err.message.split("\n").length, 1, "one line");
      assert.match(
        err.message,
        /cannot deliver the 50 record\(s\) journaled in .*segment-.*ENOSPC: the disk is full/,
      );
      assert.ok(full.counts.enospc > attempt, "the full disk was in the way");
      assert.deepEqual(tmpFiles(dir), [], "no temp file left behind");
      assert.equal(segmentFiles(dir).length, 1, "the journal is kept");
      assert.equal(fs.existsSync(path.join(journalDir(dir), "owner.pid")), false, "lock released");
    }
    const next = await open(dir);
    await next.close();
    assert.equal(deliveredNumbers(next.objects).length, 50);
  });
});
