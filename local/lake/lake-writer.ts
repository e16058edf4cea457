// The local delivery stream's output side when the stack converts records to Parquet or
// partitions them by thing: one buffer's records become the objects Firehose would write, in the
// layout of core/lake.ts. Records are grouped by their `device=<thing>/` partition (dynamic
// partitioning's jq `{thing:.thing}`), converted to Parquet with the Glue table's columns through
// DuckDB's writer, and those Firehose would refuse go under the error prefix as its error
// documents (docs/lake.md lists each case with its page).
import { randomUUID } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { evaluatePrefix, PROCESSING_FAILED, type Compression } from "../../core/delivery";
import {
  ACTIVE_PARTITION_EXCEEDED,
  FORMAT_CONVERSION_FAILED,
  MAX_ACTIVE_PARTITIONS,
  quoteIdentifier,
  SQL_TYPES,
  THING_PARTITION_KEY,
  type LakeColumn,
  type LakeLayout,
} from "../../core/lake";
import {
  objectBody,
  objectKey,
  oldestArrival,
  type BufferedRecord,
  type DeliveredObject,
} from "../delivery/object-writer";
import { localKeyProblem } from "../storage/s3";

/** Records converted between two turns of the event loop (a few milliseconds of work). */
const RECORDS_PER_TURN = 2_000;

/**
 * Firehose's limit on an evaluated prefix: "Neither Prefix nor ErrorOutputPrefix can be greater
 * than 512 characters after they're evaluated" (semantic rules of
 * https://docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html).
 */
export const MAX_EVALUATED_PREFIX_CHARS = 512;

/** The scratch folders DuckDB's Parquet files are written in, under the writer's scratchDir. */
export const SCRATCH_PREFIX = "iot-pipeline-parquet-";

/**
 * Why a record's partition key value cannot be used, or undefined when it can. Firehose sends a
 * record whose key "fails to extract" or whose prefix expressions cannot be evaluated to the error
 * output (https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning-error-handling.html);
 * an evaluated prefix over 512 characters is one it cannot use (s3-prefixes page), and an object
 * key over 1,024 bytes one S3 refuses (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html).
 * Locally the key is also a path: a value that would make the key leave the bucket's folder or
 * that no file name can hold (`..`, NUL, a segment over 255 bytes; local/storage/s3.ts localKeyProblem) is
 * refused the same way, so one device's payload never blocks the buffer of every other.
 */
export function partitionKeyProblem(
  evaluatedPrefix: string,
  sampleObjectName: string,
): { code: string; reason: string } | undefined {
  if (evaluatedPrefix.length > MAX_EVALUATED_PREFIX_CHARS) {
    return {
      code: "DynamicPartitioning.PrefixTooLong",
      reason: `the evaluated prefix is ${evaluatedPrefix.length} characters, over Firehose's ${MAX_EVALUATED_PREFIX_CHARS}`,
    };
  }
  const problem = localKeyProblem(`${evaluatedPrefix}${sampleObjectName}`);
  return problem === undefined
    ? undefined
    : {
        code: "DynamicPartitioning.InvalidPartitionKey",
        reason: `the object key is unusable: ${problem}`,
      };
}

/** One object to write: the delivery stream's object. */
export type LakeObject = DeliveredObject;

export interface LakeWriterOptions {
  readonly streamName: string;
  readonly layout: LakeLayout;
  /** The Glue table's columns: what each Parquet row holds. */
  readonly columns: readonly LakeColumn[];
  /** The stream's compression (JSON objects) or Parquet's codec (core/lake.ts parquetCompression). */
  readonly compression: Compression;
  readonly parquetCodec: "SNAPPY" | "GZIP";
  /** The table, as the error documents name it. */
  readonly table: {
    readonly databaseName: string;
    readonly tableName: string;
    readonly region: string;
  };
  readonly now?: () => Date;
  /**
   * Where DuckDB's Parquet files are written before they are read back (a folder of the state
   * folder, so that a killed run leaves nothing in /tmp). Leftovers of earlier runs in it are
   * removed by clearLeftovers() and before the first Parquet write.
   */
  readonly scratchDir: string;
}

/** A record's failure: Firehose's error document, written under the error prefix. */
export interface Failure {
  readonly record: BufferedRecord;
  readonly type: string;
  readonly code: string;
  readonly message: string;
}

function parseObject(data: Buffer): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(data.toString("utf8"));
    return typeof v === "object" && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** A JSON value as the column's type, or an error: the OpenX JSON SerDe reads numbers in strings too. */
function coerce(
  value: unknown,
  column: LakeColumn,
): { ok: true; value: string | bigint | number | null } | { ok: false; reason: string } {
  if (value === undefined || value === null) return { ok: true, value: null };
  if (column.type === "string") {
    if (typeof value === "string") return { ok: true, value };
    if (typeof value === "number" || typeof value === "boolean")
      return { ok: true, value: String(value) };
    return {
      ok: false,
      reason: `${column.name} is ${Array.isArray(value) ? "an array" : "an object"}, not a string`,
    };
  }
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isFinite(n)) {
    return { ok: false, reason: `${column.name} is ${JSON.stringify(value)}, not a number` };
  }
  if (column.type === "bigint") {
    if (!Number.isInteger(n))
      return { ok: false, reason: `${column.name} is ${n}, not a whole number` };
    return { ok: true, value: BigInt(n) };
  }
  return { ok: true, value: n };
}

/** One Parquet row: the table's columns in order. */
type Values = (string | bigint | number | null)[];

export class LakeObjectWriter {
  private instance: DuckDBInstance | undefined;
  private connection: DuckDBConnection | undefined;
  private scratch: string | undefined;
  private readonly now: () => Date;
  /** Partition key values already checked, with their refusal (undefined: usable). */
  private readonly checked = new Map<string, { code: string; reason: string } | undefined>();

  constructor(private readonly opts: LakeWriterOptions) {
    this.now = opts.now ?? (() => new Date());
  }

  /** The objects one buffer of records becomes. */
  async objects(records: readonly BufferedRecord[], uuid: () => string): Promise<LakeObject[]> {
    const { layout } = this.opts;
    const failures: Failure[] = [];
    // Partition first (what dynamic partitioning does to each record), in arrival order, and check
    // each record's conversion at once. Only references to the records are kept: the Parquet
    // writer parses each record again as it appends it, so a buffer of half a million records
    // never holds half a million parsed objects or rows at once.
    const parquet = layout.format === "parquet";
    const groups = new Map<string, BufferedRecord[]>();
    let seen = 0;
    for (const record of records) {
      // The broker shares this event loop: a buffer of 180,000 records parsed in one go held every
      // PUBACK for about a second (the flood figure's canary), so the loop lets it turn.
      if (++seen % RECORDS_PER_TURN === 0) await nextTurn();
      const row = parseObject(record.data);
      let partition = "";
      if (layout.partitionByThing) {
        const key = row?.[THING_PARTITION_KEY];
        if (typeof key !== "string" && typeof key !== "number") {
          failures.push({
            record,
            type: PROCESSING_FAILED,
            code: "DynamicPartitioning.MetadataExtractionFailed",
            message: `the record has no ${THING_PARTITION_KEY} for the partition key (jq {${THING_PARTITION_KEY}:.${THING_PARTITION_KEY}})`,
          });
          continue;
        }
        partition = String(key);
        const refused = this.partitionRefusal(partition);
        if (refused !== undefined) {
          failures.push({
            record,
            type: PROCESSING_FAILED,
            code: refused.code,
            message: `the partition key ${THING_PARTITION_KEY} cannot be used: ${refused.reason}`,
          });
          continue;
        }
        if (!groups.has(partition) && groups.size >= MAX_ACTIVE_PARTITIONS) {
          failures.push({
            record,
            type: ACTIVE_PARTITION_EXCEEDED,
            code: "DynamicPartitioning.ActivePartitionsLimitExceeded",
            message: `more than ${MAX_ACTIVE_PARTITIONS} active partitions in one buffer`,
          });
          continue;
        }
      }
      let group = groups.get(partition);
      if (group === undefined) {
        group = [];
        groups.set(partition, group);
      }
      if (parquet) {
        const converted = this.convert(row);
        if (!converted.ok) {
          failures.push({ record, type: FORMAT_CONVERSION_FAILED, ...converted.failure });
          continue;
        }
      }
      group.push(record);
    }

    const out: LakeObject[] = [];
    for (const [partition, group] of groups) {
      if (group.length === 0) continue;
      const oldest = new Date(oldestArrival(group));
      const key = objectKey(
        this.keyPrefix(partition, oldest),
        this.opts.streamName,
        oldest,
        uuid(),
        parquet ? "UNCOMPRESSED" : this.opts.compression,
        layout.fileExtension,
      );
      const body = parquet
        ? await this.parquet(group)
        : await objectBody(group, this.opts.compression);
      out.push({ key, body, records: group.length, error: false });
    }
    for (const o of this.errorObjects(failures, uuid)) out.push(o);
    return out;
  }

  /** A parsed record as the table's row, or why Firehose's conversion would refuse it. */
  private convert(
    row: Record<string, unknown> | undefined,
  ): { ok: true; values: Values } | { ok: false; failure: { code: string; message: string } } {
    if (row === undefined) {
      return {
        ok: false,
        failure: {
          code: "DataFormatConversion.MalformedData",
          message: "the record is not a JSON object",
        },
      };
    }
    const values: Values = [];
    for (const c of this.opts.columns) {
      const v = coerce(row[c.name], c);
      if (!v.ok) {
        return {
          ok: false,
          failure: {
            code: "DataFormatConversion.InvalidSchema",
            message: `the record does not match the table's schema: ${v.reason}`,
          },
        };
      }
      values.push(v.value);
    }
    return { ok: true, values };
  }

  /**
   * The error output for a whole buffer that could not be turned into objects for a reason a retry
   * will not change (not an I/O error): every record as an error document, under
   * format-conversion-failed when the stream converts to Parquet (Firehose's error output for
   * records it cannot convert: https://docs.aws.amazon.com/firehose/latest/dev/record-format-conversion.html),
   * else processing-failed. Records are never dropped.
   */
  failedObjects(
    records: readonly BufferedRecord[],
    error: Error,
    uuid: () => string,
  ): LakeObject[] {
    const parquet = this.opts.layout.format === "parquet";
    const type = parquet ? FORMAT_CONVERSION_FAILED : PROCESSING_FAILED;
    const code = parquet ? "DataFormatConversion.ConversionFailed" : "DeliveryFailed";
    return this.errorObjects(
      records.map((record) => ({ record, type, code, message: error.message })),
      uuid,
    );
  }

  /**
   * The stream's prefix evaluated for an object's oldest arrival, then the thing's partition key
   * value put in place of its expression: in that order, so that a value which looks like an
   * expression (`!{timestamp:yyyy}`) stays the text it is.
   */
  private keyPrefix(partition: string, t: Date): string {
    return evaluatePrefix(this.opts.layout.prefix, t, randomString)
      .split(`!{partitionKeyFromQuery:${THING_PARTITION_KEY}}`)
      .join(partition);
  }

  /** partitionKeyProblem for a value, checked once per value and buffer's writer. */
  private partitionRefusal(partition: string): { code: string; reason: string } | undefined {
    if (this.checked.has(partition)) return this.checked.get(partition);
    const sample = new Date(0);
    const prefix = this.keyPrefix(partition, sample);
    const name = objectKey(
      "",
      this.opts.streamName,
      sample,
      randomUUID(),
      "UNCOMPRESSED",
      this.opts.layout.fileExtension,
    );
    const problem = partitionKeyProblem(prefix, name);
    // Bounded: a buffer has at most MAX_ACTIVE_PARTITIONS good values, and refusals are few.
    if (this.checked.size >= 4 * MAX_ACTIVE_PARTITIONS) this.checked.clear();
    this.checked.set(partition, problem);
    return problem;
  }

  /** Failed records, one error document per line, one object per error type. */
  private errorObjects(failures: readonly Failure[], uuid: () => string): LakeObject[] {
    const byType = new Map<string, Failure[]>();
    for (const f of failures) {
      const list = byType.get(f.type);
      if (list === undefined) byType.set(f.type, [f]);
      else list.push(f);
    }
    const t = this.opts.table;
    const out: LakeObject[] = [];
    for (const [type, list] of byType) {
      const oldest = new Date(oldestArrival(list.map((f) => f.record)));
      const ended = this.now().getTime();
      const lines = list.map((f) =>
        JSON.stringify({
          attemptsMade: 1,
          arrivalTimestamp: f.record.arrival,
          ErrorCode: f.code,
          ErrorMessage: f.message,
          attemptEndingTimestamp: ended,
          rawData: f.record.data.toString("base64"),
          ...(type === FORMAT_CONVERSION_FAILED
            ? {
                dataCatalogTable: {
                  databaseName: t.databaseName,
                  tableName: t.tableName,
                  region: t.region,
                  versionId: "LATEST",
                },
              }
            : {}),
        }),
      );
      const key = objectKey(
        evaluatePrefix(this.opts.layout.errorOutputPrefix, oldest, randomString, type),
        this.opts.streamName,
        oldest,
        uuid(),
        "UNCOMPRESSED",
      );
      out.push({
        key,
        body: Buffer.from(`${lines.join("\n")}\n`),
        records: list.length,
        error: true,
      });
    }
    return out;
  }

  /**
   * One Parquet file of the table's columns, written by DuckDB's Parquet writer, from records
   * objects() has already found convertible.
   */
  private async parquet(records: readonly BufferedRecord[]): Promise<Buffer> {
    const c = await this.connect();
    const cols = this.opts.columns;
    await c.run(
      `CREATE OR REPLACE TEMP TABLE batch (${cols.map((x) => `${quoteIdentifier(x.name)} ${SQL_TYPES[x.type]}`).join(", ")})`,
    );
    const appender = await c.createAppender("batch");
    let appended = 0;
    for (const record of records) {
      if (++appended % RECORDS_PER_TURN === 0) await nextTurn();
      const converted = this.convert(parseObject(record.data));
      if (!converted.ok)
        throw new Error(`a record changed while it was converted: ${converted.failure.message}`);
      converted.values.forEach((v, i) => {
        if (v === null) appender.appendNull();
        else if (cols[i].type === "string") appender.appendVarchar(v as string);
        else if (cols[i].type === "bigint") appender.appendBigInt(v as bigint);
        else appender.appendDouble(v as number);
      });
      appender.endRow();
    }
    appender.closeSync();
    const file = path.join(this.scratch as string, `${randomUUID()}.parquet`);
    try {
      await c.run(
        `COPY batch TO '${file.replace(/'/g, "''")}' (FORMAT parquet, COMPRESSION ${this.opts.parquetCodec === "GZIP" ? "gzip" : "snappy"})`,
      );
      return await fs.readFile(file);
    } finally {
      await fs.rm(file, { force: true });
    }
  }

  private async connect(): Promise<DuckDBConnection> {
    if (this.connection === undefined) {
      // Loaded only when a stack writes Parquet: JSON stacks never start the engine.
      const { DuckDBInstance } = await import("@duckdb/node-api");
      await this.clearLeftovers();
      await fs.mkdir(this.opts.scratchDir, { recursive: true });
      this.scratch = await fs.mkdtemp(path.join(this.opts.scratchDir, SCRATCH_PREFIX));
      this.instance = await DuckDBInstance.create(":memory:", { threads: "1" });
      this.connection = await this.instance.connect();
    }
    return this.connection;
  }

  /**
   * Removes the scratch folders a killed run left in scratchDir (every one but this writer's own).
   * Called once the stream's journal is locked, so no running process owns them. Returns how many.
   */
  async clearLeftovers(): Promise<number> {
    const entries = await fs.readdir(this.opts.scratchDir).catch(() => [] as string[]);
    let removed = 0;
    for (const name of entries) {
      const p = path.join(this.opts.scratchDir, name);
      if (!name.startsWith(SCRATCH_PREFIX) || p === this.scratch) continue;
      await fs.rm(p, { recursive: true, force: true });
      removed++;
    }
    return removed;
  }

  async close(): Promise<void> {
    this.connection?.closeSync();
    this.instance?.closeSync();
    this.connection = undefined;
    this.instance = undefined;
    if (this.scratch !== undefined) await fs.rm(this.scratch, { recursive: true, force: true });
    this.scratch = undefined;
  }
}

/** Firehose's `!{firehose:random-string}`: 11 characters. */
function randomString(): string {
  return randomUUID().replace(/-/g, "").slice(0, 11);
}
