// Replaying a damaged journal: a bad frame costs that frame only (the reader resynchronises on the
// next intact one), the damaged segment is moved to quarantine/ and reported in one line, an
// unfinished last write is dropped, and a folder where a segment belongs is one clear error.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { FIREHOSE_RECORD_SEPARATOR } from "../../core/delivery";
import { UserError } from "../../core/errors";
import { loadStackConfig } from "../../core/stack-config";
import { JournalError, LocalDeliveryStream } from "../../local/delivery";
import {
  encodeFrame,
  FRAME_HEADER_BYTES,
  scanSegment,
  type JournalRecord,
} from "../../local/delivery/journal-format";
import { deliveredNumbers } from "../helpers/delivered";

const base = loadStackConfig("dev").delivery;
const COUNT = 1200;

function open(dir: string, log: string[] = []) {
  return LocalDeliveryStream.open({
    stack: "replay",
    delivery: { ...base, bufferSizeMiB: 128, bufferIntervalSeconds: 900 },
    bucket: "replay",
    stateDir: dir,
    log: (l) => log.push(l),
  });
}

const payload = (i: number) =>
  Buffer.from(`${JSON.stringify({ i: String(i).padStart(5, "0") })}${FIREHOSE_RECORD_SEPARATOR}`);

function journalDir(dir: string) {
  return path.join(dir, "journal", "replay", base.streamName);
}

/** Journals COUNT records and "crashes" (no close); returns the one segment's path. */
async function journalWithoutDelivering(dir: string): Promise<string> {
  const s = await open(dir);
  for (let i = 0; i < COUNT; i += 100) {
    await Promise.all(Array.from({ length: 100 }, (_, k) => s.put(payload(i + k))));
  }
  const segments = fs.readdirSync(journalDir(dir)).filter((n) => n.startsWith("segment-"));
  assert.equal(segments.length, 1);
  return path.join(journalDir(dir), segments[0]);
}

/** Offset of frame n in a segment of equal-sized frames. */
function frameOffset(segment: string, n: number): number {
  const size = fs.statSync(segment).size / COUNT;
  assert.ok(Number.isInteger(size), "frames of one size");
  return n * size;
}

function flip(file: string, at: number): void {
  const fd = fs.openSync(file, "r+");
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, at);
  b[0] ^= 0x5a;
  fs.writeSync(fd, b, 0, 1, at);
  fs.closeSync(fd);
}

describe("journal replay after damage", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "journal-replay-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  for (const [where, frame, byte] of [
    ["its data, in frame 600 of 1,200", 600, FRAME_HEADER_BYTES + 3],
    ["its data, in frame 0", 0, FRAME_HEADER_BYTES + 3],
    ["its length field, in frame 600", 600, 5],
    ["its magic number, in frame 1,199 (the last)", 1199, 1],
  ] as const) {
    it(`a flipped byte in ${where} costs that frame only; the segment goes to quarantine/, reported in one line`, async () => {
      const segment = await journalWithoutDelivering(dir);
      const offset = frameOffset(segment, frame);
      flip(segment, offset + byte);
      const log: string[] = [];
      const s = await open(dir, log);
      await s.close();
      const got = deliveredNumbers(s.objects);
      const expected = Array.from({ length: COUNT }, (_, i) => i).filter((i) => i !== frame);
      assert.deepEqual(
        got.sort((a, b) => a - b),
        expected,
        "every intact frame is delivered",
      );
      assert.equal(s.stats.recordsReplayed, COUNT - 1);
      assert.equal(s.stats.damagedRegions, 1);
      const kept = path.join(journalDir(dir), "quarantine", path.basename(segment));
      assert.ok(fs.existsSync(kept), "the damaged segment is moved aside, not deleted");
      assert.equal(fs.existsSync(segment), false);
      const report = log.filter((l) => /damaged region/.test(l));
      assert.equal(report.length, 1, log.join("\n"));
      assert.match(
        report[0],
        new RegExp(
          `skipped 1 damaged region\\(s\\) of the journal \\(\\d+ bytes at offset ${offset.toLocaleString("en-US")}\\); ${COUNT - 1} intact record\\(s\\) replayed; the segment is kept as .*quarantine`,
        ),
      );
      // The next start finds nothing more to replay: the quarantine is not replayed again.
      const again = await open(dir);
      await again.close();
      assert.equal(again.stats.recordsReplayed, 0);
    });
  }

  it("drops an unfinished last write (never acknowledged) without quarantining anything", async () => {
    const segment = await journalWithoutDelivering(dir);
    fs.truncateSync(segment, fs.statSync(segment).size - 7);
    const log: string[] = [];
    const s = await open(dir, log);
    await s.close();
    assert.equal(s.stats.recordsReplayed, COUNT - 1);
    assert.equal(s.stats.damagedRegions, 0);
    assert.ok(log.some((l) => /dropped an unfinished last write/.test(l)));
    assert.equal(fs.existsSync(path.join(journalDir(dir), "quarantine")), false);
  });

  it("a folder where a segment belongs is one JournalError line, at every start, and nothing is deleted", async () => {
    await journalWithoutDelivering(dir);
    const bogus = path.join(journalDir(dir), "segment-000000000000.jnl");
    fs.mkdirSync(bogus);
    for (let attempt = 0; attempt < 2; attempt++) {
      const err = await open(dir).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof JournalError && err instanceof UserError, String(err));
      assert.equal(err.exitCode, 2);
      assert.equal(err.message.split("\n").length, 1);
      assert.match(
        err.message,
        /segment-000000000000\.jnl is a folder where a journal segment belongs; move it out of/,
      );
    }
    fs.rmdirSync(bogus);
    const s = await open(dir);
    await s.close();
    assert.equal(s.stats.recordsReplayed, COUNT, "the records were kept through the failed starts");
  });
});

describe("journal framing (local/journal-format)", () => {
  const records: JournalRecord[] = Array.from({ length: 50 }, (_, i) => ({
    kind: i % 7 === 0 ? 1 : 0,
    arrival: 1_700_000_000_000 + i,
    data: Buffer.from(`record ${i} ${"y".repeat(i * 3)}`),
  }));
  const segment = Buffer.concat(records.map(encodeFrame));

  it("reads back what it wrote", () => {
    const scan = scanSegment(segment);
    assert.deepEqual(scan.records, records);
    assert.deepEqual(scan.damaged, []);
    assert.equal(scan.unfinished, undefined);
  });

  it("never returns a record it was not given, and loses at most the frame a flipped byte hits", () => {
    // A deterministic walk over many single-byte corruptions, frame headers and data alike.
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const originals = new Set(records.map((r) => r.data.toString("hex")));
    for (let trial = 0; trial < 300; trial++) {
      const damaged = Buffer.from(segment);
      damaged[rand(damaged.length)] ^= 1 + rand(255);
      const scan = scanSegment(damaged);
      for (const r of scan.records)
        assert.ok(originals.has(r.data.toString("hex")), "a made-up record");
      assert.ok(
        scan.records.length >= records.length - 1,
        `trial ${trial}: ${scan.records.length}`,
      );
    }
  });

  it("skips garbage between frames, even garbage that contains the magic number", () => {
    const garbage = Buffer.concat([
      Buffer.from("IOTJ"),
      Buffer.alloc(40, 0xff),
      Buffer.from("IOTJxx"),
    ]);
    const mixed = Buffer.concat([
      encodeFrame(records[0]),
      garbage,
      encodeFrame(records[1]),
      encodeFrame(records[2]),
    ]);
    const scan = scanSegment(mixed);
    assert.deepEqual(scan.records, records.slice(0, 3));
    assert.deepEqual(scan.damaged, [
      { offset: encodeFrame(records[0]).length, length: garbage.length },
    ]);
  });

  it("tells an unfinished last frame (header or data cut short) from damage", () => {
    const head = Buffer.concat(records.slice(0, 5).map(encodeFrame));
    const last = encodeFrame(records[9]);
    for (const cut of [3, FRAME_HEADER_BYTES - 1, FRAME_HEADER_BYTES + 2, last.length - 1]) {
      const scan = scanSegment(Buffer.concat([head, last.subarray(0, cut)]));
      assert.deepEqual(scan.records, records.slice(0, 5));
      assert.deepEqual(scan.unfinished, { offset: head.length, length: cut }, `cut at ${cut}`);
      assert.deepEqual(scan.damaged, []);
    }
  });
});
