// The local delivery stream: Firehose's buffering (size or interval, whichever first), object
// naming, GZIP and error output into the local S3 layout, made durable with a group-committed
// journal so that every acknowledged record survives a kill -9, a full disk or a damaged frame and
// is delivered, on this run or the next start.
import { randomBytes, randomUUID } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import { evaluatePrefix, FIREHOSE_MAX_RECORD_BYTES, objectName } from "../core/delivery";
import { environmentError, EnvironmentError, isOutOfSpace, UserError } from "../core/errors";
import type { DeliveryConfig } from "../core/stack-config";
import { nodeFiles, writeAll, type FileLayer, type WritableFile } from "./file-layer";
import {
  encodeFrame,
  FRAME_HEADER_BYTES,
  KIND_ERROR,
  KIND_RECORD,
  scanLegacySegment,
  scanSegment,
  type ByteRange,
  type JournalRecord,
} from "./journal-format";
import { isProcessRunning } from "./pid";
import { LocalBucket, syncDir } from "./storage/s3";

const gzip = promisify(zlib.gzip);

/**
 * What a buffered record holds in memory besides its bytes (its object and its Buffer view),
 * measured: 171 bytes a record over 290,000 records.
 */
export const RECORD_OVERHEAD_BYTES = 176;

/** Flushed buffers that may wait for their objects before puts wait too. */
export const DEFAULT_MAX_PENDING_OBJECTS = 2;

/** Bytes of records that may wait for the journal (and for a flushed buffer's objects). */
export const DEFAULT_MAX_QUEUED_BYTES = 64 * 1024 * 1024;

/** Firehose's error-output-type for a record it could not deliver. */
export const PROCESSING_FAILED = "processing-failed";

/** Another running process owns the stream's journal. */
export class DeliveryStreamBusyError extends UserError {}

/**
 * The journal cannot be opened or replayed: a full disk, a folder where a segment belongs, a file
 * that cannot be read. One line saying what and where; nothing journaled is touched.
 */
export class JournalError extends EnvironmentError {}

/** A record Firehose refuses at PutRecord (the caller's action fails). */
export class FirehoseRecordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FirehoseRecordError";
  }
}

/**
 * The record could not be journaled (the stream is closing while the disk is full, or a write
 * failed): it is not acknowledged, and the publisher sends it again. Deliberately not a
 * FirehoseRecordError, which would send the message to the rule's error action instead.
 */
export class JournalUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "JournalUnavailableError";
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
   * Arms the buffer-interval timer: calls `flush` after `ms` and returns how to cancel it. Tests
   * pass their own clock. @default an unref'd setTimeout
   */
  readonly scheduleFlush?: (flush: () => void, ms: number) => () => void;
  /**
   * How many flushed buffers may wait for their object write before `put` waits too. This is
   * what bounds memory when producers outrun the disk: at most (this + 1) buffers of
   * bufferSizeMiB, because a waiting `put` holds back the PUBACK and so the publishers'
   * in-flight windows. @default 2
   */
  readonly maxPendingObjects?: number;
  /** What the journal and the objects are written through; tests inject a full disk here. @default node:fs */
  readonly files?: FileLayer;
  /** How long to wait before trying again after the disk filled up. @default 1000 */
  readonly retryMs?: number;
  /**
   * Bytes of records waiting to be journaled, including those waiting for a flushed buffer's
   * objects (maxPendingObjects). Normally a queue lasts one fsync; while the disk is full or the
   * objects are slow it grows, and beyond this a record is refused (not acknowledged: its
   * publisher sends it again later) rather than held in memory. @default 64 MiB
   */
  readonly maxQueuedBytes?: number;
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
    ): Promise<DeliveredObject[]>;
    /**
     * The error output for records `objects` failed on for a reason a retry will not change: every
     * record as an error document under the error prefix, none dropped.
     */
    failedObjects?(
      records: readonly { readonly arrival: number; readonly data: Buffer }[],
      error: Error,
      uuid: () => string,
    ): DeliveredObject[];
  };
}

/** One object a buffer becomes: its key, its body, how many records it holds, and whether they failed. */
export interface DeliveredObject {
  readonly key: string;
  readonly body: Buffer;
  readonly records: number;
  readonly error: boolean;
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
  /** Times the journal could not be written (a full disk): records then waited, unacknowledged. */
  journalStalls: number;
  /** Acknowledged records whose objects could not be written by the end; the next start delivers them. */
  recordsLeftInJournal: number;
  /**
   * Records whose buffer could not be written for a reason a retry would not change (not an I/O
   * error): they went to the error output instead (also counted in errorRecordsDelivered).
   */
  recordsFailedDelivery: number;
  /** Damaged stretches of journal skipped at replay (their segments are kept under quarantine/). */
  damagedRegions: number;
  damagedBytes: number;
}

/** A record on its way into the journal, and the PUBACK that waits for it. */
interface Pending {
  readonly frame: Buffer;
  readonly record: JournalRecord;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

/** `segment-<n>.jnl` in the framing of journal-format.ts; `.log` is the earlier framing. */
const SEGMENT = /^segment-(\d{12})\.(jnl|log)$/;

/** One buffer's worth of records and the journal segment that holds them. */
interface Generation {
  readonly records: JournalRecord[];
  readonly segment: string;
  /** Record kinds whose object is already written, so that a retry does not write it again. */
  readonly written: Set<number>;
  /** Objects made but not yet written, per record kind: a retry writes these, not new copies. */
  readonly objects: Map<number, DeliveredObject[]>;
}

/** What link() says on a file system that has no hard links. */
const NO_LINKS = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS"]);

const asError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));

/**
 * Whether writing a buffer failed for a reason that a retry will not change: anything but an I/O
 * error (an errno code such as ENOSPC or EIO, or DuckDB's "IO Error" and out-of-memory). A refused
 * key, a record the converter cannot take or a bug fail the same way at every retry and start.
 */
export function isDeterministicFailure(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === "string" && /^E[A-Z0-9]+$/.test(code)) return false;
  const message = e instanceof Error ? e.message : String(e);
  return !/IO Error|No space left|out of memory/i.test(message);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A timer that does not keep the process alive: close() flushes what is left. */
function scheduleUnref(fn: () => void, ms: number): () => void {
  const timer = setTimeout(fn, ms);
  timer.unref();
  return () => clearTimeout(timer);
}

/** "1 damaged region of 37 bytes at offset 20,110" for a log line. */
function describeRanges(ranges: readonly ByteRange[]): string {
  const shown = ranges
    .slice(0, 3)
    .map((r) => `${r.length} bytes at offset ${r.offset.toLocaleString("en-US")}`);
  return shown.join(", ") + (ranges.length > 3 ? `, and ${ranges.length - 3} more` : "");
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
    journalStalls: 0,
    recordsLeftInJournal: 0,
    recordsFailedDelivery: 0,
    damagedRegions: 0,
    damagedBytes: 0,
  };
  /** Paths of the objects this process wrote, in order. */
  readonly objects: string[] = [];
  readonly bucket: LocalBucket;

  private readonly journalDir: string;
  private readonly sizeLimit: number;
  private readonly intervalMs: number;
  private readonly maxPending: number;
  private readonly files: FileLayer;
  private readonly retryMs: number;
  private readonly now: () => Date;
  private readonly uuid: () => string;
  private readonly log: (line: string) => void;

  private segmentNo = 0;
  private segmentPath = "";
  private segment: WritableFile | undefined;
  /** Bytes of whole, fsync'd frames in the current segment. */
  private segmentBytes = 0;
  /** A failed write could not be cut off: the segment must be handed over before the next write. */
  private segmentDirty = false;
  private buffer: JournalRecord[] = [];
  /**
   * What the buffer holds in memory: its records' bytes and {@link RECORD_OVERHEAD_BYTES} each. The
   * buffer is handed over when this reaches bufferSizeMiB, so that tiny records cannot make a
   * buffer hold several times its size (Firehose's buffering hints are hints).
   */
  private bufferBytes = 0;
  /** Cancels the armed buffer-interval timer, if any. */
  private cancelTimer: () => void = () => undefined;
  private queue: Pending[] = [];
  private queuedBytes = 0;
  private readonly maxQueuedBytes: number;
  private pumping = false;
  private pumpWaiters: (() => void)[] = [];
  private rotateRequested = false;
  /** A hand-over is due and counted in pendingObjects; no record is journaled until it is done. */
  private rotating = false;
  private pendingObjects = 0;
  private deliveries: Promise<void> = Promise.resolve();
  private drained: (() => void)[] = [];
  /** Sleepers waiting to retry after a full disk; close() wakes them. */
  private retryWakers = new Set<() => void>();
  private readonly stallWaiters: Array<() => void> = [];
  /** When the journal stopped being writable (undefined while it is). */
  private stalledSince: number | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;

  private constructor(private readonly opts: DeliveryStreamOptions) {
    this.files = opts.files ?? nodeFiles;
    this.bucket = new LocalBucket(opts.stateDir, opts.bucket, this.files);
    this.journalDir = path.join(opts.stateDir, "journal", opts.stack, opts.delivery.streamName);
    this.sizeLimit = opts.delivery.bufferSizeMiB * 1024 * 1024;
    this.intervalMs = (opts.delivery.bufferIntervalSeconds * 1000) / (opts.timeScale ?? 1);
    this.maxPending = opts.maxPendingObjects ?? DEFAULT_MAX_PENDING_OBJECTS;
    this.retryMs = opts.retryMs ?? 1000;
    this.maxQueuedBytes = opts.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.now = opts.now ?? (() => new Date());
    this.uuid = opts.uuid ?? randomUUID;
    this.log = opts.log ?? (() => undefined);
  }

  /** Opens the stream: delivers whatever an earlier process journaled but never delivered. */
  static async open(opts: DeliveryStreamOptions): Promise<LocalDeliveryStream> {
    const s = new LocalDeliveryStream(opts);
    try {
      await fs.mkdir(s.journalDir, { recursive: true });
    } catch (e) {
      throw s.environment(e, `cannot create the journal folder ${s.shown(s.journalDir)}`);
    }
    await s.claim();
    try {
      await s.replay();
      await s.startSegment();
    } catch (e) {
      await s.release().catch(() => undefined);
      throw s.environment(e, `cannot start the journal in ${s.shown(s.journalDir)}`);
    }
    return s;
  }

  /** A path as a person would type it: relative to the working folder when inside it. */
  private shown(p: string): string {
    const rel = path.relative(process.cwd(), p);
    return rel === "" || rel.startsWith("..") ? p : rel;
  }

  /** A system error (full disk, permissions) as one JournalError line; anything else unchanged. */
  private environment(e: unknown, doing: string): unknown {
    if (e instanceof UserError) return e;
    const env = environmentError(e, doing);
    return env ? new JournalError(env.message) : e;
  }

  /**
   * Makes this process the journal's only writer: a second process replaying (and deleting) the
   * segments of a running one would lose what the first still appends. The lock file appears with
   * its pid already in it (written aside, then hard-linked into place), so a reader never sees it
   * half-written; a lock left by a killed process (its pid no longer runs) is taken over.
   */
  private async claim(): Promise<void> {
    const lock = path.join(this.journalDir, "owner.pid");
    const mine = String(process.pid);
    for (let attempt = 0; ; attempt++) {
      const tmp = `${lock}.${mine}.${randomBytes(4).toString("hex")}.tmp`;
      try {
        await fs.writeFile(tmp, mine, { flag: "wx" });
        await fs.link(tmp, lock).catch(async (e: unknown) => {
          // A file system without hard links: create the lock in place (not atomic, but exclusive).
          if (!NO_LINKS.has((e as NodeJS.ErrnoException).code ?? "")) throw e;
          await fs.writeFile(lock, mine, { flag: "wx" });
        });
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
          throw this.environment(e, `cannot lock the journal ${this.shown(lock)}`);
        }
      } finally {
        await fs.rm(tmp, { force: true }).catch(() => undefined);
      }
      const text = await fs.readFile(lock, "utf8").catch(() => undefined);
      if (text === undefined) continue; // released meanwhile: try again
      const owner = /^\d+$/.test(text.trim()) ? Number(text) : undefined;
      if (owner === undefined && attempt < 20) {
        // Not a pid: a writer of the earlier, non-atomic lock may be between creating and
        // writing it. Give it a moment before calling the lock stale.
        await sleep(50);
        continue;
      }
      if (owner !== undefined && owner !== process.pid && isProcessRunning(owner)) {
        throw new DeliveryStreamBusyError(
          `delivery stream ${this.opts.delivery.streamName} of stack ${this.opts.stack} is in use by process ${owner} (${this.shown(lock)}); stop that run first, or remove the file if no such process runs`,
        );
      }
      // Stale. Another starting process may be taking it over at this very moment: only one
      // rename of the same file succeeds, and the loser finds the winner's live lock next time.
      const aside = `${lock}.${mine}.${randomBytes(4).toString("hex")}.stale`;
      try {
        await fs.rename(lock, aside);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") continue;
        throw this.environment(e, `cannot take over the journal lock ${this.shown(lock)}`);
      }
      const moved = await fs.readFile(aside, "utf8").catch(() => text);
      if (moved !== text) {
        // What we moved was a newer, live lock written after our read: put it back.
        await fs.link(aside, lock).catch(() => undefined);
      }
      await fs.rm(aside, { force: true }).catch(() => undefined);
    }
  }

  private async release(): Promise<void> {
    const lock = path.join(this.journalDir, "owner.pid");
    const owner = await fs.readFile(lock, "utf8").catch(() => "");
    if (owner === String(process.pid)) await fs.rm(lock, { force: true });
  }

  /**
   * Delivers every segment an earlier process left: intact frames become objects; a damaged stretch
   * is skipped (the frames after it are still delivered) and the segment is moved to quarantine/
   * instead of being deleted; an unfinished last write, which was never acknowledged, is dropped.
   */
  private async replay(): Promise<void> {
    const entries = await fs.readdir(this.journalDir, { withFileTypes: true });
    const segments = entries
      .filter((e) => SEGMENT.test(e.name))
      .map((e) => ({ entry: e, no: Number(SEGMENT.exec(e.name)?.[1] ?? 0) }))
      .sort((a, b) => a.no - b.no);
    for (const { entry, no } of segments) {
      this.segmentNo = Math.max(this.segmentNo, no);
      const file = path.join(this.journalDir, entry.name);
      if (!entry.isFile()) {
        throw new JournalError(
          `${this.shown(file)} is ${entry.isDirectory() ? "a folder" : "not a regular file"} where a journal segment belongs; move it out of ${this.shown(this.journalDir)} and start again`,
        );
      }
      let buf: Buffer;
      try {
        buf = await fs.readFile(file);
      } catch (e) {
        throw this.environment(e, `cannot read the journal segment ${this.shown(file)}`);
      }
      const scan = entry.name.endsWith(".log") ? scanLegacySegment(buf) : scanSegment(buf);
      const records = scan.records;
      if (records.length > 0) {
        this.stats.recordsReplayed += records.length;
        this.log(
          `delivery: replaying ${records.length} journaled record(s) from ${this.shown(file)}`,
        );
      }
      // Replayed records keep their arrival time, so they land in the folder of their hour.
      let kept = 0;
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
        try {
          await this.writeObjects(records.slice(i, j));
        } catch (e) {
          if (!isDeterministicFailure(e)) {
            throw this.environment(
              e,
              `cannot deliver the ${records.length} record(s) journaled in ${this.shown(file)} (they stay there for the next start)`,
            );
          }
          // Not even the error output can take them (a refused error prefix): they stay in the
          // journal, and the stream starts all the same.
          kept += j - i;
          this.stats.recordsLeftInJournal += j - i;
          this.log(
            `delivery: cannot deliver ${j - i} journaled record(s) of ${this.shown(file)}, not even to the error output (${asError(e).message}); they stay in the journal`,
          );
        }
        i = j;
      }
      if (scan.unfinished) {
        this.log(
          `delivery: ${this.shown(file)}: dropped an unfinished last write (${describeRanges([scan.unfinished])}); it was never acknowledged`,
        );
      }
      if (kept > 0) continue;
      if (scan.damaged.length > 0) {
        const bytes = scan.damaged.reduce((n, r) => n + r.length, 0);
        this.stats.damagedRegions += scan.damaged.length;
        this.stats.damagedBytes += bytes;
        const kept = await this.quarantine(file);
        this.log(
          `delivery: ${this.shown(file)}: skipped ${scan.damaged.length} damaged region(s) of the journal (${describeRanges(scan.damaged)}); ` +
            `${records.length} intact record(s) replayed; the segment is kept as ${this.shown(kept)}`,
        );
      } else {
        await fs.unlink(file);
      }
    }
    if (segments.length > 0) await syncDir(this.journalDir);
  }

  /** Moves a segment with damaged frames aside, keeping the evidence; returns its new path. */
  private async quarantine(file: string): Promise<string> {
    const dir = path.join(this.journalDir, "quarantine");
    await fs.mkdir(dir, { recursive: true });
    let target = path.join(dir, path.basename(file));
    for (
      let n = 1;
      await fs.stat(target).then(
        () => true,
        () => false,
      );
      n++
    ) {
      target = path.join(dir, `${path.basename(file)}.${n}`);
    }
    await fs.rename(file, target);
    await syncDir(dir);
    return target;
  }

  /** Creates the next segment and makes its name durable. */
  private async createSegment(): Promise<{ file: WritableFile; path: string }> {
    this.segmentNo++;
    const p = path.join(this.journalDir, `segment-${String(this.segmentNo).padStart(12, "0")}.jnl`);
    const file = await this.files.open(p, "a", 0o600);
    try {
      await syncDir(this.journalDir);
    } catch (e) {
      await file.close().catch(() => undefined);
      await fs.rm(p, { force: true }).catch(() => undefined);
      throw e;
    }
    return { file, path: p };
  }

  private async startSegment(): Promise<void> {
    const next = await this.createSegment();
    this.segment = next.file;
    this.segmentPath = next.path;
    this.segmentBytes = 0;
  }

  /**
   * PutRecord: resolves once the record is in the journal on disk (fsync'd with whatever else
   * arrived meanwhile), so that the caller may acknowledge it. Throws FirehoseRecordError for a
   * record Firehose would refuse. While the disk is full it waits: nothing is acknowledged that is
   * not written whole and fsync'd.
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
    const closedError = () => new JournalUnavailableError("the delivery stream is closed");
    if (this.closed) throw closedError();
    // A record counts against maxQueuedBytes from here, also while it waits for a flushed
    // buffer's objects: otherwise what waits there would be held without a bound.
    const bytes = FRAME_HEADER_BYTES + data.length;
    if (this.queuedBytes + bytes > this.maxQueuedBytes) {
      const why =
        this.stalledSince !== undefined
          ? " (the disk is full)"
          : this.pendingObjects >= this.maxPending
            ? ` (${this.pendingObjects} flushed buffer(s) wait for their objects)`
            : "";
      throw new JournalUnavailableError(
        `${this.queuedBytes} bytes already wait for the journal${why}; not acknowledged`,
      );
    }
    this.queuedBytes += bytes;
    try {
      while (this.pendingObjects >= this.maxPending) {
        await new Promise<void>((resolve) => this.drained.push(resolve));
        if (this.closed) throw closedError();
      }
    } catch (e) {
      this.queuedBytes -= bytes;
      throw e;
    }
    const record: JournalRecord = { kind, arrival: this.now().getTime(), data };
    const frame = encodeFrame(record);
    return new Promise<void>((resolve, reject) => {
      const done =
        <T extends unknown[]>(f: (...a: T) => void) =>
        (...a: T) => {
          this.queuedBytes -= bytes;
          f(...a);
        };
      this.queue.push({ frame, record, resolve: done(resolve), reject: done(reject) });
      void this.pump();
    });
  }

  /**
   * The single journal writer: one write + one fsync per batch of whatever is queued (group
   * commit), the hand-over of a full buffer to the object writer, and the waiting out of a full
   * disk. It never throws: every record it takes is acknowledged, refused or still queued.
   */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        if (this.claimRotation()) {
          if (await this.rotate()) continue;
          await this.waitToRetry();
          continue;
        }
        if (this.queue.length === 0) break;
        const batch = this.queue.splice(0);
        // One allocation for the batch: the buffer's records become views of it, so that a
        // buffered record holds its own bytes and not the pool slabs its frame, the rule's output
        // and everything allocated beside them came from (measured: 3.4 times the records' bytes
        // for 230-byte readings without this).
        const block = Buffer.concat(batch.map((p) => p.frame));
        const outcome = await this.journal(batch, block);
        if (outcome === "retry") {
          if (this.closed) {
            // Closing on a full disk: what is not written is not acknowledged, and the device
            // still holds it.
            const refused = batch.concat(this.queue.splice(0));
            this.log(
              `delivery: stopping while the journal cannot be written: ${refused.length} record(s) not acknowledged`,
            );
            const err = new JournalUnavailableError(
              "the journal cannot be written (the disk is full); not acknowledged",
            );
            for (const p of refused) p.reject(err);
            continue;
          }
          this.queue = batch.concat(this.queue);
          await this.waitToRetry();
          continue;
        }
        if (outcome === "ok") this.accept(batch, block);
      }
    } catch (e) {
      // Not expected; but a pump that dies silently would leave PUBACKs waiting forever.
      const err = asError(e);
      this.log(`delivery: journal writer failed (${err.message}); records not acknowledged`);
      for (const p of this.queue.splice(0)) p.reject(err);
    } finally {
      this.pumping = false;
      for (const w of this.pumpWaiters.splice(0)) w();
    }
  }

  /** Writes a batch whole and fsyncs it; "retry" on a full disk, "failed" (batch refused) otherwise. */
  private async journal(batch: Pending[], block: Buffer): Promise<"ok" | "retry" | "failed"> {
    const handle = this.segment;
    try {
      if (!handle) throw new Error("no journal segment is open");
      const written = await writeAll(handle, [block]);
      await handle.datasync();
      this.segmentBytes += written;
      this.stats.fsyncs++;
      this.recovered();
      return "ok";
    } catch (e) {
      const err = asError(e);
      // Part of the batch may have reached the file: cut it off, so that the next batch follows
      // the last acknowledged frame. If even that fails, the segment is handed over first.
      await handle?.truncate(this.segmentBytes).catch(() => {
        this.segmentDirty = true;
      });
      if (isOutOfSpace(err)) {
        this.stalled(`the disk is full (${(err as NodeJS.ErrnoException).code})`);
        return "retry";
      }
      this.log(
        `delivery: journal write failed (${err.message}); ${batch.length} record(s) not acknowledged`,
      );
      for (const p of batch) p.reject(new JournalUnavailableError(err.message));
      return "failed";
    }
  }

  /** Takes a journaled batch into the buffer and acknowledges it. */
  private accept(batch: Pending[], block: Buffer): void {
    let at = 0;
    for (const p of batch) {
      if (this.buffer.length === 0) this.startTimer();
      const data = block.subarray(at + FRAME_HEADER_BYTES, at + p.frame.length);
      at += p.frame.length;
      this.buffer.push({ kind: p.record.kind, arrival: p.record.arrival, data });
      this.bufferBytes += data.length + RECORD_OVERHEAD_BYTES;
      this.stats.recordsIn++;
    }
    // Count a flush this batch causes before acknowledging it, so that the very next put already
    // sees the backlog (the memory bound holds exactly, not one round late).
    this.claimRotation();
    for (const p of batch) p.resolve();
  }

  /**
   * Whether the buffer is to be handed over now; the first time it becomes due it is counted in
   * pendingObjects. While closing, the queue is journaled first and the last hand-over takes it all.
   */
  private claimRotation(): boolean {
    if (!this.rotating) {
      if (this.buffer.length === 0 && !this.segmentDirty) {
        this.rotateRequested = false;
        return false;
      }
      const due = this.closed
        ? this.queue.length === 0
        : this.segmentDirty ||
          this.rotateRequested ||
          this.bufferBytes >= this.sizeLimit ||
          this.intervalMs === 0;
      if (!due) return false;
      this.rotating = true;
      this.pendingObjects++;
    }
    return !(this.closed && this.queue.length > 0);
  }

  private startTimer(): void {
    this.cancelTimer();
    this.cancelTimer = (this.opts.scheduleFlush ?? scheduleUnref)(() => {
      this.rotateRequested = true;
      void this.pump();
    }, this.intervalMs);
  }

  /**
   * Hands the buffer and its segment to the object writer and starts a fresh segment (none when
   * closing). False when the fresh segment cannot be created: the buffer stays, and so does the
   * hold on new records, until a retry succeeds.
   */
  private async rotate(): Promise<boolean> {
    let next: { file: WritableFile; path: string } | undefined;
    if (!this.closed) {
      try {
        next = await this.createSegment();
      } catch (e) {
        const err = asError(e);
        this.stalled(
          `cannot start a new journal segment (${(err as NodeJS.ErrnoException).code ?? err.message})`,
        );
        return false;
      }
    }
    this.cancelTimer();
    const gen: Generation = {
      records: this.buffer,
      segment: this.segmentPath,
      written: new Set(),
      objects: new Map(),
    };
    const old = this.segment;
    this.buffer = [];
    this.bufferBytes = 0;
    this.segment = next?.file;
    this.segmentPath = next?.path ?? "";
    this.segmentBytes = 0;
    this.segmentDirty = false;
    this.rotateRequested = false;
    this.rotating = false;
    await old?.close().catch(() => undefined);
    this.deliveries = this.deliveries.then(() => this.deliver(gen));
    if (next) this.recovered();
    return true;
  }

  /** Notes (once per episode) that the journal cannot be written; records wait meanwhile. */
  private stalled(reason: string): void {
    if (this.stalledSince !== undefined) return;
    this.stalledSince = Date.now();
    for (const wake of this.stallWaiters.splice(0)) wake();
    this.stats.journalStalls++;
    this.log(
      `delivery: ${reason} writing the journal in ${this.shown(this.journalDir)}: publishes are not acknowledged until it can be written again (retrying every ${this.retryMs} ms)`,
    );
  }

  private recovered(): void {
    if (this.stalledSince === undefined) return;
    const seconds = (Date.now() - this.stalledSince) / 1000;
    this.stalledSince = undefined;
    this.log(
      `delivery: the journal is writable again after ${seconds.toFixed(1)} s; acknowledging resumes`,
    );
  }

  /** Sleeps retryMs, or until close() wakes every sleeper. */
  private waitToRetry(): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.retryWakers.delete(wake);
        resolve();
      };
      // Unlike the flush timer this one keeps the process alive: records wait on it.
      const timer = setTimeout(wake, this.retryMs);
      this.retryWakers.add(wake);
    });
  }

  private async deliver(gen: Generation): Promise<void> {
    try {
      let waitingForSpace = false;
      for (let attempt = 1; ; attempt++) {
        try {
          await this.writeObjects(gen.records, gen.written, gen.objects);
          if (waitingForSpace) this.log("delivery: objects are being written again");
          break;
        } catch (e) {
          const err = asError(e);
          // A full disk is waited out while the stream runs: the buffer stays counted as pending,
          // which holds back new PUBACKs. Any other error is retried twice, as Firehose retries S3.
          if (isOutOfSpace(err) && !this.closed) {
            if (!waitingForSpace) {
              waitingForSpace = true;
              this.log(
                `delivery: could not write objects (${err.message}); retrying every ${this.retryMs} ms until there is space`,
              );
            }
            await this.waitToRetry();
            continue;
          }
          if (attempt >= 3 || this.closed) {
            const left = gen.records.filter((r) => !gen.written.has(r.kind)).length;
            this.stats.recordsLeftInJournal += left;
            this.log(
              `delivery: could not write objects (${err.message}); ${left} record(s) stay in the journal ${this.shown(gen.segment)} for the next start`,
            );
            return;
          }
          await sleep(100 * attempt);
        }
      }
      // Only once the objects are durable does the journal let go of the records.
      await fs.rm(gen.segment, { force: true }).catch((e: unknown) => {
        this.log(
          `delivery: could not remove ${this.shown(gen.segment)} (${asError(e).message}); its records will be delivered again at the next start`,
        );
      });
    } finally {
      this.pendingObjects--;
      for (const wake of this.drained.splice(0)) wake();
    }
  }

  /**
   * Writes a buffer's objects, record kind by kind. `written` and `made` carry a retry's progress:
   * a kind already written is skipped, objects already made are written as they are (so an I/O
   * error halfway does not write the first partitions twice). Every key is checked before the
   * first object is written; a buffer that fails for a reason a retry will not change goes to the
   * error output whole (Firehose never drops a record: its unconvertible or unpartitionable records
   * go under the error prefix), logged and counted.
   */
  private async writeObjects(
    records: readonly JournalRecord[],
    written: Set<number> = new Set(),
    made: Map<number, DeliveredObject[]> = new Map(),
  ): Promise<void> {
    for (const kind of [KIND_RECORD, KIND_ERROR]) {
      if (written.has(kind)) continue;
      const part = records.filter((r) => r.kind === kind);
      if (part.length === 0) continue;
      // Firehose names an object after the arrival of its oldest record.
      const oldest = new Date(part.reduce((t, r) => Math.min(t, r.arrival), Infinity));
      if (kind === KIND_RECORD) {
        this.stats.maxFreshnessMs = Math.max(
          this.stats.maxFreshnessMs,
          this.now().getTime() - oldest.getTime(),
        );
      }
      let objects = made.get(kind);
      if (objects === undefined) {
        try {
          objects = await this.objectsOf(kind, part, oldest);
          for (const o of objects) this.bucket.pathOf(o.key);
        } catch (e) {
          if (!isDeterministicFailure(e)) throw e;
          const err = asError(e);
          objects = this.failedObjects(kind, part, oldest, err);
          for (const o of objects) this.bucket.pathOf(o.key);
          this.stats.recordsFailedDelivery += part.length;
          this.log(
            `delivery: ${part.length} record(s) cannot be delivered (${err.name}: ${err.message}); they go to the error output instead`,
          );
        }
        made.set(kind, objects);
      }
      while (objects.length > 0) {
        const o = objects[0];
        await this.putObject(o.key, o.body, o.records, o.error);
        objects.shift();
      }
      made.delete(kind);
      written.add(kind);
    }
  }

  /** The objects one kind of a buffer's records becomes. */
  private async objectsOf(
    kind: number,
    part: readonly JournalRecord[],
    oldest: Date,
  ): Promise<DeliveredObject[]> {
    if (kind === KIND_RECORD && this.opts.layout !== undefined) {
      return this.opts.layout.objects(part, this.uuid);
    }
    const d = this.opts.delivery;
    const raw = Buffer.concat(part.map((r) => r.data));
    const body = d.compression === "GZIP" ? await gzip(raw) : raw;
    const prefix =
      kind === KIND_RECORD
        ? evaluatePrefix(d.prefix, oldest, this.uuid)
        : evaluatePrefix(d.errorOutputPrefix, oldest, this.uuid, PROCESSING_FAILED);
    const key = `${prefix}${objectName(d.streamName, oldest, this.uuid(), d.compression)}`;
    return [{ key, body, records: part.length, error: kind === KIND_ERROR }];
  }

  /** The error output of records that cannot be delivered: the layout's, else processing-failed. */
  private failedObjects(
    kind: number,
    part: readonly JournalRecord[],
    oldest: Date,
    err: Error,
  ): DeliveredObject[] {
    if (kind === KIND_RECORD && this.opts.layout?.failedObjects !== undefined) {
      return this.opts.layout.failedObjects(part, err, this.uuid);
    }
    const d = this.opts.delivery;
    const prefix = evaluatePrefix(d.errorOutputPrefix, oldest, this.uuid, PROCESSING_FAILED);
    const key = `${prefix}${objectName(d.streamName, oldest, this.uuid(), "UNCOMPRESSED")}`;
    return [
      { key, body: Buffer.concat(part.map((r) => r.data)), records: part.length, error: true },
    ];
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

  /** Resolves once no pump is running. */
  private pumpStopped(): Promise<void> {
    return this.pumping ? new Promise((r) => this.pumpWaiters.push(r)) : Promise.resolve();
  }

  /** Runs the journal writer until nothing is queued and no hand-over is due. */
  private async settle(): Promise<void> {
    for (;;) {
      await this.pump();
      await this.pumpStopped();
      const due =
        this.rotating ||
        this.segmentDirty ||
        (this.buffer.length > 0 && (this.rotateRequested || this.closed));
      if (this.queue.length === 0 && !due) return;
    }
  }

  /** Waits until the buffers flushed so far are written, without forcing a flush. */
  async idle(): Promise<void> {
    await this.pumpStopped();
    await this.deliveries;
  }

  /** Records waiting in the buffer for the next flush. */
  get buffered(): number {
    return this.buffer.length;
  }

  /** Whether the journal cannot be written right now (a full disk): nothing is acknowledged. */
  get stalledNow(): boolean {
    return this.stalledSince !== undefined;
  }

  /** Resolves once the journal cannot be written (now, or when that next happens). */
  whenStalled(): Promise<void> {
    if (this.stalledSince !== undefined) return Promise.resolve();
    return new Promise((resolve) => this.stallWaiters.push(resolve));
  }

  /** Flushes the buffer now and waits until every flushed buffer is written. */
  async flush(): Promise<void> {
    this.rotateRequested = true;
    await this.settle();
    await this.deliveries;
  }

  /**
   * Clean stop: journal what is queued (refused if the disk is full), hand the last buffer over,
   * write its objects (left in the journal for the next start if that fails), release the journal.
   * Never throws for a full disk: the caller still prints its summary.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    // Refuse new records first, so that nothing lands in the segment removed below.
    this.closed = true;
    for (const wake of [...this.retryWakers]) wake();
    for (const wake of this.drained.splice(0)) wake();
    await this.settle();
    await this.deliveries;
    this.cancelTimer();
    if (this.segment) {
      await this.segment.close().catch(() => undefined);
      this.segment = undefined;
      // The last segment holds no acknowledged record (the buffer was handed over or is empty);
      // removing it keeps the journal folder tidy.
      await fs.rm(this.segmentPath, { force: true }).catch(() => undefined);
    }
    await this.release().catch(() => undefined);
  }
}
