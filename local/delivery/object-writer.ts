// Writing a buffer's objects into the local bucket as Firehose names them: `<prefix><stream>-1-
// <time>-<uuid>[.gz]`, the prefix evaluated for the oldest record's arrival, GZIP when the stream
// compresses, records Firehose cannot deliver under the error prefix. The lake writer
// (local/lake/lake-writer.ts) names and compresses its objects with the same functions.
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import {
  evaluatePrefix,
  objectName,
  PROCESSING_FAILED,
  type Compression,
  type DeliveryConfig,
} from "../../core/delivery";
import type { LocalBucket } from "../storage/s3";
import { asError, isDeterministicFailure } from "./errors";
import { KIND_ERROR, KIND_RECORD, type JournalRecord } from "./journal-format";
import type { DeliveryStats } from "./stats";

const gzip = promisify(zlib.gzip);

/** One record of a buffer: what the rule's action put, and when it arrived. */
export interface BufferedRecord {
  readonly arrival: number;
  readonly data: Buffer;
}

/** One object a buffer becomes: its key, its body, how many records it holds, and whether they failed. */
export interface DeliveredObject {
  readonly key: string;
  readonly body: Buffer;
  readonly records: number;
  readonly error: boolean;
}

/**
 * Writes the delivered records in another layout (the lake's Parquet and partitions:
 * local/lake/lake-writer.ts) instead of one concatenated object per buffer.
 */
export interface ObjectLayout {
  objects(records: readonly BufferedRecord[], uuid: () => string): Promise<DeliveredObject[]>;
  /**
   * The error output for records `objects` failed on for a reason a retry will not change: every
   * record as an error document under the error prefix, none dropped.
   */
  failedObjects?(
    records: readonly BufferedRecord[],
    error: Error,
    uuid: () => string,
  ): DeliveredObject[];
}

/**
 * The earliest arrival of a buffer's records, which names its object. A loop, not
 * Math.min(...arrivals): spreading a buffer's records as arguments overflows the call stack past
 * about 125,000 of them.
 */
export function oldestArrival(records: readonly BufferedRecord[]): number {
  let oldest = Infinity;
  for (const r of records) if (r.arrival < oldest) oldest = r.arrival;
  return oldest;
}

/** An object's body: the records concatenated, GZIP'd when the stream compresses. */
export async function objectBody(
  records: readonly BufferedRecord[],
  compression: Compression,
): Promise<Buffer> {
  const raw = Buffer.concat(records.map((r) => r.data));
  return compression === "GZIP" ? gzip(raw) : raw;
}

/** The key of an object: the evaluated prefix, Firehose's object name, and an extension (`.parquet`). */
export function objectKey(
  evaluatedPrefix: string,
  streamName: string,
  oldest: Date,
  uuid: string,
  compression: Compression,
  extension = "",
): string {
  return `${evaluatedPrefix}${objectName(streamName, oldest, uuid, compression)}${extension}`;
}

export interface ObjectWriterOptions {
  readonly delivery: DeliveryConfig;
  readonly bucket: LocalBucket;
  readonly stats: DeliveryStats;
  readonly layout?: ObjectLayout;
  readonly now: () => Date;
  readonly uuid: () => string;
  readonly log: (line: string) => void;
}

/** Turns buffers of journaled records into objects and writes them durably into the bucket. */
export class ObjectWriter {
  /** Paths of the objects this process wrote, in order. */
  readonly written: string[] = [];

  constructor(private readonly opts: ObjectWriterOptions) {}

  /**
   * Writes a buffer's objects, record kind by kind. `written` and `made` carry a retry's progress:
   * a kind already written is skipped, objects already made are written as they are (so an I/O
   * error halfway does not write the first partitions twice). Every key is checked before the
   * first object is written; a buffer that fails for a reason a retry will not change goes to the
   * error output whole (Firehose never drops a record: its unconvertible or unpartitionable records
   * go under the error prefix), logged and counted.
   */
  async write(
    records: readonly JournalRecord[],
    written: Set<number> = new Set(),
    made: Map<number, DeliveredObject[]> = new Map(),
  ): Promise<void> {
    const { stats, bucket } = this.opts;
    for (const kind of [KIND_RECORD, KIND_ERROR]) {
      if (written.has(kind)) continue;
      const part = records.filter((r) => r.kind === kind);
      if (part.length === 0) continue;
      // Firehose names an object after the arrival of its oldest record.
      const oldest = new Date(oldestArrival(part));
      if (kind === KIND_RECORD) {
        stats.maxFreshnessMs = Math.max(
          stats.maxFreshnessMs,
          this.opts.now().getTime() - oldest.getTime(),
        );
      }
      let objects = made.get(kind);
      if (objects === undefined) {
        try {
          objects = await this.objectsOf(kind, part, oldest);
          for (const o of objects) bucket.pathOf(o.key);
        } catch (e) {
          if (!isDeterministicFailure(e)) throw e;
          const err = asError(e);
          objects = this.failedObjects(kind, part, oldest, err);
          for (const o of objects) bucket.pathOf(o.key);
          stats.recordsFailedDelivery += part.length;
          this.opts.log(
            `delivery: ${part.length} record(s) cannot be delivered (${err.name}: ${err.message}); they go to the error output instead`,
          );
        }
        made.set(kind, objects);
      }
      while (objects.length > 0) {
        await this.put(objects[0]);
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
    const { delivery: d, layout, uuid } = this.opts;
    if (kind === KIND_RECORD && layout !== undefined) return layout.objects(part, uuid);
    const body = await objectBody(part, d.compression);
    const prefix =
      kind === KIND_RECORD
        ? evaluatePrefix(d.prefix, oldest, uuid)
        : evaluatePrefix(d.errorOutputPrefix, oldest, uuid, PROCESSING_FAILED);
    const key = objectKey(prefix, d.streamName, oldest, uuid(), d.compression);
    return [{ key, body, records: part.length, error: kind === KIND_ERROR }];
  }

  /** The error output of records that cannot be delivered: the layout's, else processing-failed. */
  private failedObjects(
    kind: number,
    part: readonly JournalRecord[],
    oldest: Date,
    err: Error,
  ): DeliveredObject[] {
    const { delivery: d, layout, uuid } = this.opts;
    if (kind === KIND_RECORD && layout?.failedObjects !== undefined) {
      return layout.failedObjects(part, err, uuid);
    }
    const prefix = evaluatePrefix(d.errorOutputPrefix, oldest, uuid, PROCESSING_FAILED);
    const key = objectKey(prefix, d.streamName, oldest, uuid(), "UNCOMPRESSED");
    return [
      { key, body: Buffer.concat(part.map((r) => r.data)), records: part.length, error: true },
    ];
  }

  private async put(o: DeliveredObject): Promise<void> {
    const { stats, bucket } = this.opts;
    const file = await bucket.putObject(o.key, o.body);
    this.written.push(file);
    stats.objectsWritten++;
    stats.bytesWritten += o.body.length;
    if (!o.error) stats.recordsDelivered += o.records;
    else stats.errorRecordsDelivered += o.records;
    this.opts.log(
      `delivery: wrote s3://${bucket.name}/${o.key} (${o.records} record(s), ${o.body.length} bytes)`,
    );
  }
}
