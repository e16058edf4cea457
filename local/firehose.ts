// The local delivery stream: Firehose's buffering (size or interval, whichever first), object
// naming, GZIP and error output into the local S3 layout, made durable with a group-committed
// journal so that every acknowledged record survives a kill -9 and is delivered on the next start.
import { randomUUID } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import { evaluatePrefix, FIREHOSE_MAX_RECORD_BYTES, objectName } from "../core/delivery";
import type { DeliveryConfig } from "../core/stack-config";
import { isProcessRunning } from "./pid";
import { LocalBucket, syncDir } from "./s3";
import { UserError } from "../core/errors";

const gzip = promisify(zlib.gzip);

/** Firehose's error-output-type for a record it could not deliver. */
export const PROCESSING_FAILED = "processing-failed";

/** Another running process owns the stream's journal. */
export class DeliveryStreamBusyError extends UserError {}

/** A record Firehose refuses at PutRecord (the caller's action fails). */
export class FirehoseRecordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FirehoseRecordError";
  }
}

export interface DeliveryStreamOptions {
  readonly stack: string;
  readonly delivery: DeliveryConfig;
  readonly bucket: string;
  /** Root of the local state: objects go to `<stateDir>/s3/<bucket>/`, the journal to `<stateDir>/journal/<stack>/<stream>/`. */
  readonly stateDir: string;
  /** The buffer interval runs this many times faster (`--fast` is 60). @default 1 */
  readonly timeScale?: number;
  /**
   * How many flushed buffers may wait for their object write before `put` waits too. This is
   * what bounds memory when producers outrun the disk: at most (this + 1) buffers of
   * bufferSizeMiB, because a waiting `put` holds back the PUBACK and so the publishers'
   * in-flight windows. @default 2
   */
  readonly maxPendingObjects?: number;
  readonly now?: () => Date;
  readonly uuid?: () => string;
  readonly log?: (line: string) => void;
  /**
   * Writes the delivered records in the lake's layout (Parquet, partitions; local/lake-writer.ts)
   * instead of one concatenated object per buffer.
   */
  readonly layout?: {
    objects(
      records: readonly { readonly arrival: number; readonly data: Buffer }[],
      uuid: () => string,
    ): Promise<{ key: string; body: Buffer; records: number; error: boolean }[]>;
  };
}

export interface DeliveryStats {
  /** Records acknowledged (journaled) since this process opened the stream. */
  recordsIn: number;
  /** Records found in the journal at open, left by a process that did not finish delivering. */
  recordsReplayed: number;
  recordsDelivered: number;
  errorRecordsDelivered: number;
  objectsWritten: number;
  bytesWritten: number;
  /** Journal fsyncs; recordsIn / fsyncs is the group-commit batch size. */
  fsyncs: number;
  /** Largest wait of a buffer's oldest record before its object was written, ms (DataFreshness). */
  maxFreshnessMs: number;
}

const KIND_RECORD = 0;
const KIND_ERROR = 1;
/** length u32, crc32 u32, kind u8, arrival time f64 (epoch ms). */
const HEADER = 17;

interface JournalRecord {
  readonly kind: number;
  readonly arrival: number;
  readonly data: Buffer;
}

interface Pending {
  readonly frame: Buffer;
  readonly record: JournalRecord;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

function frame(r: JournalRecord): Buffer {
  const out = Buffer.alloc(HEADER + r.data.length);
  out.writeUInt32LE(r.data.length, 0);
  out.writeUInt8(r.kind, 8);
  out.writeDoubleLE(r.arrival, 9);
  r.data.copy(out, HEADER);
  out.writeUInt32LE(zlib.crc32(out.subarray(8)), 4);
  return out;
}

/** Reads a segment's records; a torn or corrupt tail (a write never acknowledged) ends it. */
export function readSegment(buf: Buffer): JournalRecord[] {
  const out: JournalRecord[] = [];
  let at = 0;
  while (at + HEADER <= buf.length) {
    const len = buf.readUInt32LE(at);
    const end = at + HEADER + len;
    if (end > buf.length) break;
    if (zlib.crc32(buf.subarray(at + 8, end)) !== buf.readUInt32LE(at + 4)) break;
    out.push({
      kind: buf.readUInt8(at + 8),
      arrival: buf.readDoubleLE(at + 9),
      data: buf.subarray(at + HEADER, end),
    });
    at = end;
  }
  return out;
}

const SEGMENT = /^segment-(\d{12})\.log$/;

/** One buffer's worth of records and the journal segment that holds them. */
interface Generation {
  readonly records: JournalRecord[];
  readonly segment: string;
}

export class LocalDeliveryStream {
  readonly stats: DeliveryStats = {
    recordsIn: 0,
    recordsReplayed: 0,
    recordsDelivered: 0,
    errorRecordsDelivered: 0,
    objectsWritten: 0,
    bytesWritten: 0,
    fsyncs: 0,
    maxFreshnessMs: 0,
  };
  /** Paths of the objects this process wrote, in order. */
  readonly objects: string[] = [];
  readonly bucket: LocalBucket;

  private readonly journalDir: string;
  private readonly sizeLimit: number;
  private readonly intervalMs: number;
  private readonly maxPending: number;
  private readonly now: () => Date;
  private readonly uuid: () => string;
  private readonly log: (line: string) => void;

  private segmentNo = 0;
  private segmentPath = "";
  private segment: fs.FileHandle | undefined;
  /** Bytes of whole, fsync'd frames in the current segment. */
  private segmentBytes = 0;
  /** Set when the journal cannot be repaired after a failed write: no record is accepted. */
  private broken: Error | undefined;
  private buffer: JournalRecord[] = [];
  private bufferBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private queue: Pending[] = [];
  private pumping = false;
  private rotateRequested = false;
  private pendingObjects = 0;
  private deliveries: Promise<void> = Promise.resolve();
  private drained: (() => void)[] = [];
  private closed = false;

  private constructor(private readonly opts: DeliveryStreamOptions) {
    this.bucket = new LocalBucket(opts.stateDir, opts.bucket);
    this.journalDir = path.join(opts.stateDir, "journal", opts.stack, opts.delivery.streamName);
    this.sizeLimit = opts.delivery.bufferSizeMiB * 1024 * 1024;
    this.intervalMs = (opts.delivery.bufferIntervalSeconds * 1000) / (opts.timeScale ?? 1);
    this.maxPending = opts.maxPendingObjects ?? 2;
    this.now = opts.now ?? (() => new Date());
    this.uuid = opts.uuid ?? randomUUID;
    this.log = opts.log ?? (() => undefined);
  }

  /** Opens the stream: delivers whatever an earlier process journaled but never delivered. */
  static async open(opts: DeliveryStreamOptions): Promise<LocalDeliveryStream> {
    const s = new LocalDeliveryStream(opts);
    await fs.mkdir(s.journalDir, { recursive: true });
    await s.claim();
    await s.replay();
    await s.openSegment();
    return s;
  }

  /**
   * Makes this process the journal's only writer: a second process replaying (and deleting) the
   * segments of a running one would lose what the first still appends. A lock left by a killed
   * process (its pid no longer runs) is taken over.
   */
  private async claim(): Promise<void> {
    const lock = path.join(this.journalDir, "owner.pid");
    for (;;) {
      try {
        await fs.writeFile(lock, String(process.pid), { flag: "wx" });
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      }
      const owner = Number(await fs.readFile(lock, "utf8").catch(() => ""));
      if (
        Number.isInteger(owner) &&
        owner > 0 &&
        owner !== process.pid &&
        isProcessRunning(owner)
      ) {
        throw new DeliveryStreamBusyError(
          `delivery stream ${this.opts.delivery.streamName} of stack ${this.opts.stack} is in use by process ${owner} (${lock}); stop that run first, or remove the file if no such process runs`,
        );
      }
      await fs.rm(lock, { force: true });
    }
  }

  private async release(): Promise<void> {
    const lock = path.join(this.journalDir, "owner.pid");
    const owner = await fs.readFile(lock, "utf8").catch(() => "");
    if (owner === String(process.pid)) await fs.rm(lock, { force: true });
  }

  private async replay(): Promise<void> {
    const names = (await fs.readdir(this.journalDir)).filter((n) => SEGMENT.test(n)).sort();
    for (const name of names) {
      this.segmentNo = Math.max(this.segmentNo, Number(SEGMENT.exec(name)?.[1] ?? 0));
      const file = path.join(this.journalDir, name);
      const records = readSegment(await fs.readFile(file));
      if (records.length > 0) {
        this.stats.recordsReplayed += records.length;
        this.log(
          `delivery: replaying ${records.length} journaled record(s) from ${path.relative(process.cwd(), file)}`,
        );
      }
      // Replayed records keep their arrival time, so they land in the folder of their hour.
      for (let i = 0; i < records.length;) {
        let bytes = 0;
        let j = i;
        while (
          j < records.length &&
          (j === i || bytes + records[j].data.length <= this.sizeLimit)
        ) {
          bytes += records[j].data.length;
          j++;
        }
        await this.writeObjects(records.slice(i, j));
        i = j;
      }
      await fs.unlink(file);
    }
    if (names.length > 0) await syncDir(this.journalDir);
  }

  private async openSegment(): Promise<void> {
    this.segmentNo++;
    this.segmentPath = path.join(
      this.journalDir,
      `segment-${String(this.segmentNo).padStart(12, "0")}.log`,
    );
    this.segment = await fs.open(this.segmentPath, "a", 0o600);
    this.segmentBytes = 0;
    await syncDir(this.journalDir);
  }

  /**
   * PutRecord: resolves once the record is in the journal on disk (fsync'd with whatever else
   * arrived meanwhile), so that the caller may acknowledge it. Throws FirehoseRecordError for a
   * record Firehose would refuse.
   */
  async put(data: Buffer): Promise<void> {
    if (data.length > FIREHOSE_MAX_RECORD_BYTES) {
      throw new FirehoseRecordError(
        `Record size ${data.length} bytes exceeds the Firehose limit of ${FIREHOSE_MAX_RECORD_BYTES} bytes (1,000 KiB)`,
      );
    }
    return this.append(KIND_RECORD, data);
  }

  /** A record that cannot be delivered: it goes under the error output prefix. */
  async putError(data: Buffer): Promise<void> {
    return this.append(KIND_ERROR, data);
  }

  private async append(kind: number, data: Buffer): Promise<void> {
    if (this.closed) throw new FirehoseRecordError("the delivery stream is closed");
    while (this.pendingObjects >= this.maxPending) {
      await new Promise<void>((resolve) => this.drained.push(resolve));
      if (this.closed) throw new FirehoseRecordError("the delivery stream is closed");
    }
    const record: JournalRecord = { kind, arrival: this.now().getTime(), data };
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ frame: frame(record), record, resolve, reject });
      void this.pump();
    });
  }

  /** The single journal writer: one write + one fsync per batch (group commit), then rotation. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        if (this.queue.length > 0) {
          const batch = this.queue.splice(0);
          try {
            if (this.broken) throw this.broken;
            const handle = this.segment;
            if (!handle) throw new Error("journal segment is not open");
            const frames = batch.map((p) => p.frame);
            await handle.writev(frames);
            await handle.datasync();
            this.segmentBytes += frames.reduce((n, f) => n + f.length, 0);
            this.stats.fsyncs++;
          } catch (e) {
            const err = e instanceof Error ? e : new Error(String(e));
            this.log(`delivery: journal write failed (${err.message}); records not acknowledged`);
            for (const p of batch) p.reject(err);
            // A torn frame would hide every later record from the replay: cut it off, or stop
            // accepting records at all if even that fails.
            await this.segment?.truncate(this.segmentBytes).catch((t: unknown) => {
              this.broken ??= t instanceof Error ? t : new Error(String(t));
            });
            continue;
          }
          for (const p of batch) {
            if (this.buffer.length === 0) this.startTimer();
            this.buffer.push(p.record);
            this.bufferBytes += p.record.data.length;
            this.stats.recordsIn++;
          }
          // Count a flush this batch causes before acknowledging it, so that the very next put
          // already sees the backlog (the memory bound holds exactly, not one round late).
          const flushing = this.shouldFlush();
          if (flushing) this.pendingObjects++;
          for (const p of batch) p.resolve();
          if (flushing) {
            await this.rotate();
            continue;
          }
        }
        if (this.shouldFlush()) {
          this.pendingObjects++;
          await this.rotate();
          continue;
        }
        this.rotateRequested = false;
        if (this.queue.length === 0) break;
      }
    } finally {
      this.pumping = false;
    }
  }

  private shouldFlush(): boolean {
    const due =
      this.buffer.length > 0 &&
      (this.rotateRequested || this.bufferBytes >= this.sizeLimit || this.intervalMs === 0);
    if (due) this.rotateRequested = false;
    return due;
  }

  private startTimer(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.rotateRequested = true;
      void this.pump();
    }, this.intervalMs);
    // The stream must not keep a process alive on its own; close() flushes what is left.
    this.timer.unref();
  }

  /**
   * Hands the buffer and its segment to the object writer and starts a fresh segment. The caller
   * has counted it in pendingObjects.
   */
  private async rotate(): Promise<void> {
    clearTimeout(this.timer);
    const gen: Generation = { records: this.buffer, segment: this.segmentPath };
    const old = this.segment;
    this.buffer = [];
    this.bufferBytes = 0;
    await this.openSegment();
    await old?.close();
    this.deliveries = this.deliveries.then(() => this.deliver(gen));
  }

  private async deliver(gen: Generation): Promise<void> {
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.writeObjects(gen.records);
          break;
        } catch (e) {
          // Firehose retries S3 delivery; so do we, then leave the journal for the next start.
          if (attempt >= 3) {
            this.log(
              `delivery: could not write objects (${(e as Error).message}); the records stay in the journal for the next start`,
            );
            return;
          }
          await new Promise((r) => setTimeout(r, 100 * attempt));
        }
      }
      // Only once the objects are durable does the journal let go of the records.
      await fs.rm(gen.segment, { force: true });
    } finally {
      this.pendingObjects--;
      for (const wake of this.drained.splice(0)) wake();
    }
  }

  private async writeObjects(records: readonly JournalRecord[]): Promise<void> {
    const d = this.opts.delivery;
    for (const kind of [KIND_RECORD, KIND_ERROR]) {
      const part = records.filter((r) => r.kind === kind);
      if (part.length === 0) continue;
      // Firehose names an object after the arrival of its oldest record.
      const oldest = new Date(Math.min(...part.map((r) => r.arrival)));
      if (kind === KIND_RECORD) {
        this.stats.maxFreshnessMs = Math.max(
          this.stats.maxFreshnessMs,
          this.now().getTime() - oldest.getTime(),
        );
      }
      if (kind === KIND_RECORD && this.opts.layout !== undefined) {
        for (const o of await this.opts.layout.objects(part, this.uuid)) {
          await this.putObject(o.key, o.body, o.records, o.error);
        }
        continue;
      }
      const raw = Buffer.concat(part.map((r) => r.data));
      const body = d.compression === "GZIP" ? await gzip(raw) : raw;
      const prefix =
        kind === KIND_RECORD
          ? evaluatePrefix(d.prefix, oldest, this.uuid)
          : evaluatePrefix(d.errorOutputPrefix, oldest, this.uuid, PROCESSING_FAILED);
      const key = `${prefix}${objectName(d.streamName, oldest, this.uuid(), d.compression)}`;
      await this.putObject(key, body, part.length, kind === KIND_ERROR);
    }
  }

  private async putObject(key: string, body: Buffer, records: number, error: boolean) {
    const file = await this.bucket.putObject(key, body);
    this.objects.push(file);
    this.stats.objectsWritten++;
    this.stats.bytesWritten += body.length;
    if (!error) this.stats.recordsDelivered += records;
    else this.stats.errorRecordsDelivered += records;
    this.log(
      `delivery: wrote s3://${this.bucket.name}/${key} (${records} record(s), ${body.length} bytes)`,
    );
  }

  /** Waits until the buffers flushed so far are written, without forcing a flush. */
  async idle(): Promise<void> {
    while (this.pumping) await new Promise((r) => setImmediate(r));
    await this.deliveries;
  }

  /** Records waiting in the buffer for the next flush. */
  get buffered(): number {
    return this.buffer.length;
  }

  /** Flushes the buffer now and waits until every flushed buffer is written. */
  async flush(): Promise<void> {
    this.rotateRequested = true;
    await this.pump();
    // A pump already running picks the request up; wait for the chain it extends.
    while (this.pumping || this.queue.length > 0) await new Promise((r) => setImmediate(r));
    if (this.buffer.length > 0) {
      this.rotateRequested = true;
      await this.pump();
    }
    await this.deliveries;
  }

  /** Clean stop: flush the buffers, write their objects, release the journal. */
  async close(): Promise<void> {
    if (this.closed) return;
    // Refuse new records first, so that nothing lands in the segment removed below.
    this.closed = true;
    await this.flush();
    clearTimeout(this.timer);
    await this.segment?.close();
    this.segment = undefined;
    // The empty last segment holds nothing; removing it keeps the journal folder tidy.
    await fs.rm(this.segmentPath, { force: true });
    await this.release();
  }
}
