// The local delivery stream: PutRecord into a group-committed journal, Firehose's buffering, and a
// buffer's hand-over to the object writer, so that every acknowledged record survives a kill -9, a
// full disk or a damaged frame and is delivered, on this run or the next start. Each job is its
// own module: the lock (core/process-lock.ts), replay (replay.ts), the journal's segments
// (journal.ts, journal-format.ts), the buffer (record-buffer.ts), the objects (object-writer.ts)
// and a full disk's retries (disk-stall.ts); this class runs them in order.
import { randomUUID } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { FIREHOSE_MAX_RECORD_BYTES } from "../../core/delivery";
import { shownPath } from "../../core/display";
import { isOutOfSpace } from "../../core/errors";
import { releaseLock, tryLock } from "../../core/process-lock";
import type { DeliveryConfig } from "../../core/stack-config";
import { nodeFiles, type FileLayer } from "../private/file-layer";
import { LocalBucket } from "../storage/s3";
import { DiskStall } from "./disk-stall";
import {
  asError,
  DeliveryStreamBusyError,
  FirehoseRecordError,
  journalError,
  JournalUnavailableError,
} from "./errors";
import { JournalSegments, type ClosedSegment } from "./journal";
import {
  encodeFrameInto,
  FRAME_HEADER_BYTES,
  frameBytes,
  KIND_ERROR,
  KIND_RECORD,
  type JournalRecord,
} from "./journal-format";
import { ObjectWriter, type DeliveredObject, type ObjectLayout } from "./object-writer";
import { RecordBuffer } from "./record-buffer";
import { replayJournal } from "./replay";
import { emptyStats, type DeliveryStats } from "./stats";

/** Flushed buffers that may wait for their objects before puts wait too. */
export const DEFAULT_MAX_PENDING_OBJECTS = 2;

/** Bytes of records that may wait for the journal (and for a flushed buffer's objects). */
export const DEFAULT_MAX_QUEUED_BYTES = 64 * 1024 * 1024;

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
  /** Writes the delivered records in the lake's layout instead of one concatenated object per buffer. */
  readonly layout?: ObjectLayout;
}

/**
 * A record on its way into the journal, and the PUBACK that waits for it. Its frame is written
 * straight into its batch's block; `bytes` (the frame's) count against maxQueuedBytes until it is
 * settled.
 */
interface Pending {
  readonly record: JournalRecord;
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
}

/** One buffer's worth of records and the journal segment that holds them. */
interface Generation {
  readonly records: JournalRecord[];
  readonly segment: ClosedSegment;
  /** Record kinds whose object is already written, so that a retry does not write it again. */
  readonly written: Set<number>;
  /** Objects made but not yet written, per record kind: a retry writes these, not new copies. */
  readonly objects: Map<number, DeliveredObject[]>;
}

/** A batch's frames, one after another in one buffer. */
function frameBatch(batch: readonly Pending[]): Buffer {
  let total = 0;
  for (const p of batch) total += p.bytes;
  const block = Buffer.allocUnsafe(total);
  let at = 0;
  for (const p of batch) at = encodeFrameInto(block, at, p.record);
  return block;
}

const closedError = () => new JournalUnavailableError("the delivery stream is closed");

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class LocalDeliveryStream {
  readonly stats: DeliveryStats = emptyStats();
  readonly bucket: LocalBucket;

  private readonly journalDir: string;
  private readonly lockFile: string;
  private readonly maxPending: number;
  private readonly maxQueuedBytes: number;
  private readonly now: () => Date;
  /** The clock in epoch ms, without a Date per record when it is the real one. */
  private readonly nowMs: () => number;
  private readonly log: (line: string) => void;
  private readonly writer: ObjectWriter;
  private readonly buffer: RecordBuffer;
  private readonly stall: DiskStall;
  private readonly segments: JournalSegments;

  /** Records waiting for the journal writer, and their bytes (bounded by maxQueuedBytes). */
  private queue: Pending[] = [];
  private queuedBytes = 0;
  private pumping = false;
  private pumpWaiters: (() => void)[] = [];
  /** A hand-over is due and counted in pendingObjects; no record is journaled until it is done. */
  private rotating = false;
  /** Handed-over buffers whose objects are not yet written. */
  private pendingObjects = 0;
  private deliveries: Promise<void> = Promise.resolve();
  private drained: (() => void)[] = [];
  private closed = false;
  private closing: Promise<void> | undefined;

  private constructor(private readonly opts: DeliveryStreamOptions) {
    const files = opts.files ?? nodeFiles;
    this.bucket = new LocalBucket(opts.stateDir, opts.bucket, files);
    this.journalDir = path.join(opts.stateDir, "journal", opts.stack, opts.delivery.streamName);
    this.lockFile = path.join(this.journalDir, "owner.pid");
    this.maxPending = opts.maxPendingObjects ?? DEFAULT_MAX_PENDING_OBJECTS;
    this.maxQueuedBytes = opts.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.now = opts.now ?? (() => new Date());
    const now = opts.now;
    this.nowMs = now === undefined ? Date.now : () => now().getTime();
    this.log = opts.log ?? (() => undefined);
    this.writer = new ObjectWriter({
      delivery: opts.delivery,
      bucket: this.bucket,
      stats: this.stats,
      layout: opts.layout,
      now: this.now,
      uuid: opts.uuid ?? randomUUID,
      log: this.log,
    });
    this.buffer = new RecordBuffer(
      opts.delivery.bufferSizeMiB * 1024 * 1024,
      (opts.delivery.bufferIntervalSeconds * 1000) / (opts.timeScale ?? 1),
      () => void this.pump(),
      opts.scheduleFlush,
    );
    this.stall = new DiskStall(opts.retryMs ?? 1000, this.log, () => this.stats.journalStalls++);
    this.segments = new JournalSegments(this.journalDir, files);
  }

  /** Opens the stream: delivers whatever an earlier process journaled but never delivered. */
  static async open(opts: DeliveryStreamOptions): Promise<LocalDeliveryStream> {
    const s = new LocalDeliveryStream(opts);
    try {
      await fs.mkdir(s.journalDir, { recursive: true });
    } catch (e) {
      throw journalError(e, `cannot create the journal folder ${shownPath(s.journalDir)}`);
    }
    await s.claim();
    try {
      const last = await replayJournal({
        journalDir: s.journalDir,
        sizeLimit: s.buffer.sizeLimit,
        writer: s.writer,
        stats: s.stats,
        log: s.log,
      });
      await s.segments.start(last);
    } catch (e) {
      await releaseLock(s.lockFile).catch(() => undefined);
      throw journalError(e, `cannot start the journal in ${shownPath(s.journalDir)}`);
    }
    return s;
  }

  /** Paths of the objects this process wrote, in order. */
  get objects(): string[] {
    return this.writer.written;
  }

  /**
   * Makes this process the journal's only writer: a second process replaying (and deleting) the
   * segments of a running one would lose what the first still appends.
   */
  private async claim(): Promise<void> {
    let held;
    try {
      held = await tryLock(this.lockFile);
    } catch (e) {
      throw journalError(e, `cannot lock the journal ${shownPath(this.lockFile)}`);
    }
    if (held !== undefined) {
      throw new DeliveryStreamBusyError(
        `delivery stream ${this.opts.delivery.streamName} of stack ${this.opts.stack} is in use by process ${held.owner} (${shownPath(this.lockFile)}); stop that run first, or remove the file if no such process runs`,
      );
    }
  }

  /**
   * PutRecord: resolves once the record is in the journal on disk (fsync'd with whatever else
   * arrived meanwhile), so that the caller may acknowledge it. Throws FirehoseRecordError for a
   * record Firehose would refuse. While the disk is full it waits: nothing is acknowledged that is
   * not written whole and fsync'd.
   */
  put(data: Buffer): Promise<void> {
    if (data.length > FIREHOSE_MAX_RECORD_BYTES) {
      return Promise.reject(
        new FirehoseRecordError(
          `Record size ${data.length} bytes exceeds the Firehose limit of ${FIREHOSE_MAX_RECORD_BYTES} bytes (1,000 KiB)`,
        ),
      );
    }
    return this.append(KIND_RECORD, data);
  }

  /** A record that cannot be delivered: it goes under the error output prefix. */
  putError(data: Buffer): Promise<void> {
    return this.append(KIND_ERROR, data);
  }

  /**
   * Queues a record for the journal; a refusal is a rejected promise. Not an async function: on
   * the publish path a record normally goes straight into the queue, and each async layer costs
   * a promise per message (issue 28).
   */
  private append(kind: number, data: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(closedError());
    // A record counts against maxQueuedBytes from here, also while it waits for a flushed
    // buffer's objects: otherwise what waits there would be held without a bound.
    let bytes: number;
    try {
      bytes = frameBytes(data);
    } catch (e) {
      return Promise.reject(asError(e));
    }
    if (this.queuedBytes + bytes > this.maxQueuedBytes) {
      const why = this.stall.now
        ? " (the disk is full)"
        : this.pendingObjects >= this.maxPending
          ? ` (${this.pendingObjects} flushed buffer(s) wait for their objects)`
          : "";
      return Promise.reject(
        new JournalUnavailableError(
          `${this.queuedBytes} bytes already wait for the journal${why}; not acknowledged`,
        ),
      );
    }
    this.queuedBytes += bytes;
    if (this.pendingObjects >= this.maxPending) return this.appendLater(kind, data, bytes);
    return this.enqueue(kind, data, bytes);
  }

  /** A record that waits for flushed buffers' objects before it is queued. */
  private async appendLater(kind: number, data: Buffer, bytes: number): Promise<void> {
    try {
      while (this.pendingObjects >= this.maxPending) {
        await new Promise<void>((resolve) => this.drained.push(resolve));
        if (this.closed) throw closedError();
      }
    } catch (e) {
      this.queuedBytes -= bytes;
      throw e;
    }
    return this.enqueue(kind, data, bytes);
  }

  private enqueue(kind: number, data: Buffer, bytes: number): Promise<void> {
    const record: JournalRecord = { kind, arrival: this.nowMs(), data };
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ record, bytes, resolve, reject });
      if (!this.pumping) void this.pump();
    });
  }

  /** Acknowledges (no error) or refuses a record taken from the queue, and frees its bytes. */
  private finish(p: Pending, err?: Error): void {
    this.queuedBytes -= p.bytes;
    if (err === undefined) p.resolve();
    else p.reject(err);
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
          await this.stall.waitToRetry();
          continue;
        }
        if (this.queue.length === 0) break;
        const batch = this.queue.splice(0);
        // One allocation for the batch, the frames written straight into it: the buffer's
        // records become views of it, so that a buffered record holds its own bytes and not the
        // pool slabs the rule's output and everything allocated beside it came from (measured:
        // 3.4 times the records' bytes for 230-byte readings without this).
        const block = frameBatch(batch);
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
            for (const p of refused) this.finish(p, err);
            continue;
          }
          this.queue = batch.concat(this.queue);
          await this.stall.waitToRetry();
          continue;
        }
        if (outcome === "ok") this.accept(batch, block);
      }
    } catch (e) {
      // Not expected; but a pump that dies silently would leave PUBACKs waiting forever.
      const err = asError(e);
      this.log(`delivery: journal writer failed (${err.message}); records not acknowledged`);
      for (const p of this.queue.splice(0)) this.finish(p, err);
    } finally {
      this.pumping = false;
      for (const w of this.pumpWaiters.splice(0)) w();
    }
  }

  /** Writes a batch whole and fsyncs it; "retry" on a full disk, "failed" (batch refused) otherwise. */
  private async journal(batch: Pending[], block: Buffer): Promise<"ok" | "retry" | "failed"> {
    try {
      await this.segments.append(block);
      this.stats.fsyncs++;
      this.stall.recovered();
      return "ok";
    } catch (e) {
      const err = asError(e);
      if (isOutOfSpace(err)) {
        this.stalled(`the disk is full (${(err as NodeJS.ErrnoException).code})`);
        return "retry";
      }
      this.log(
        `delivery: journal write failed (${err.message}); ${batch.length} record(s) not acknowledged`,
      );
      const refused = new JournalUnavailableError(err.message);
      for (const p of batch) this.finish(p, refused);
      return "failed";
    }
  }

  /** Takes a journaled batch into the buffer and acknowledges it. */
  private accept(batch: Pending[], block: Buffer): void {
    let at = 0;
    for (const p of batch) {
      const data = block.subarray(at + FRAME_HEADER_BYTES, at + p.bytes);
      at += p.bytes;
      this.buffer.add({ kind: p.record.kind, arrival: p.record.arrival, data });
      this.stats.recordsIn++;
    }
    // Count a flush this batch causes before acknowledging it, so that the very next put already
    // sees the backlog (the memory bound holds exactly, not one round late).
    this.claimRotation();
    for (const p of batch) this.finish(p);
  }

  /**
   * Whether the buffer is to be handed over now; the first time it becomes due it is counted in
   * pendingObjects. While closing, the queue is journaled first and the last hand-over takes it all.
   */
  private claimRotation(): boolean {
    if (!this.rotating) {
      if (this.buffer.length === 0 && !this.segments.dirty) {
        this.buffer.clearRequest();
        return false;
      }
      const due = this.closed ? this.queue.length === 0 : this.segments.dirty || this.buffer.due;
      if (!due) return false;
      this.rotating = true;
      this.pendingObjects++;
    }
    return !(this.closed && this.queue.length > 0);
  }

  /**
   * Hands the buffer and its segment to the object writer and starts a fresh segment (none when
   * closing). False when the fresh segment cannot be created: the buffer stays, and so does the
   * hold on new records, until a retry succeeds.
   */
  private async rotate(): Promise<boolean> {
    const last = this.closed;
    let segment: ClosedSegment;
    try {
      segment = await this.segments.rotate(last);
    } catch (e) {
      const err = asError(e);
      this.stalled(
        `cannot start a new journal segment (${(err as NodeJS.ErrnoException).code ?? err.message})`,
      );
      return false;
    }
    const gen: Generation = {
      records: this.buffer.take(),
      segment,
      written: new Set(),
      objects: new Map(),
    };
    this.rotating = false;
    this.deliveries = this.deliveries.then(() => this.deliver(gen));
    if (!last) this.stall.recovered();
    return true;
  }

  private stalled(reason: string): void {
    this.stall.stalled(reason, shownPath(this.journalDir));
  }

  private async deliver(gen: Generation): Promise<void> {
    try {
      let waitingForSpace = false;
      for (let attempt = 1; ; attempt++) {
        try {
          await this.writer.write(gen.records, gen.written, gen.objects);
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
                `delivery: could not write objects (${err.message}); retrying every ${this.stall.retryMs} ms until there is space`,
              );
            }
            await this.stall.waitToRetry();
            continue;
          }
          if (attempt >= 3 || this.closed) {
            const left = gen.records.filter((r) => !gen.written.has(r.kind)).length;
            this.stats.recordsLeftInJournal += left;
            this.log(
              `delivery: could not write objects (${err.message}); ${left} record(s) stay in the journal ${shownPath(gen.segment.path)} for the next start`,
            );
            return;
          }
          await sleep(100 * attempt);
        }
      }
      // Only once the objects are durable does the journal let go of the records.
      await fs.rm(gen.segment.path, { force: true }).catch((e: unknown) => {
        this.log(
          `delivery: could not remove ${shownPath(gen.segment.path)} (${asError(e).message}); its records will be delivered again at the next start`,
        );
      });
    } finally {
      this.pendingObjects--;
      for (const wake of this.drained.splice(0)) wake();
    }
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
        this.segments.dirty ||
        (this.buffer.length > 0 && (this.buffer.requested || this.closed));
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
    return this.stall.now;
  }

  /** Resolves once the journal cannot be written (now, or when that next happens). */
  whenStalled(): Promise<void> {
    return this.stall.whenStalled();
  }

  /** Flushes the buffer now and waits until every flushed buffer is written. */
  async flush(): Promise<void> {
    this.buffer.requestFlush();
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
    this.stall.wakeAll();
    for (const wake of this.drained.splice(0)) wake();
    await this.settle();
    await this.deliveries;
    this.buffer.stopTimer();
    // The last segment holds no acknowledged record (the buffer was handed over or is empty);
    // removing it keeps the journal folder tidy.
    await this.segments.closeEmpty();
    await releaseLock(this.lockFile).catch(() => undefined);
  }
}
