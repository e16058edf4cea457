// The local delivery stream's output side when the stack converts records to Parquet or
// partitions them by thing: one buffer's records become the objects Firehose would write, in the
// layout of core/lake.ts. Records are grouped by their `device=<thing>/` partition (dynamic
// partitioning's jq `{thing:.thing}`), converted to Parquet with the Glue table's columns through
// DuckDB's writer, and those Firehose would refuse go under the error prefix as its error
// documents (docs/lake.md lists each case with its page).
import { randomUUID } from "node:crypto";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { evaluatePrefix, objectName, type Compression } from "../core/delivery";
import {
  ACTIVE_PARTITION_EXCEEDED,
  FORMAT_CONVERSION_FAILED,
  MAX_ACTIVE_PARTITIONS,
  THING_PARTITION_KEY,
  type LakeColumn,
  type LakeLayout,
} from "../core/lake";

const gzip = promisify(zlib.gzip);

/**
 * The error-output-type of a record whose partition key could not be extracted. The s3-prefixes
 * page lists no value for it; dynamic partitioning's inline parsing is a processor of the stream's
 * processing configuration, and processing failures are `processing-failed`.
 */
export const PARTITIONING_FAILED = "processing-failed";

/** One record of a buffer: what the rule's action put, and when it arrived. */
export interface BufferedRecord {
  readonly arrival: number;
  readonly data: Buffer;
}

/** One object to write: its key, its body, how many records it holds, and whether they failed. */
export interface LakeObject {
  readonly key: string;
  readonly body: Buffer;
  readonly records: number;
  readonly error: boolean;
}

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
}

/** A record's failure: Firehose's error document, written under the error prefix. */
interface Failure {
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

const SQL_TYPES = { string: "VARCHAR", bigint: "BIGINT", double: "DOUBLE" } as const;

function quote(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export class LakeObjectWriter {
  private instance: DuckDBInstance | undefined;
  private connection: DuckDBConnection | undefined;
  private scratch: string | undefined;
  private readonly now: () => Date;

  constructor(private readonly opts: LakeWriterOptions) {
    this.now = opts.now ?? (() => new Date());
  }

  /** The objects one buffer of records becomes. */
  async objects(records: readonly BufferedRecord[], uuid: () => string): Promise<LakeObject[]> {
    const { layout } = this.opts;
    const failures: Failure[] = [];
    // Partition first (what dynamic partitioning does to each record), in arrival order.
    const groups = new Map<
      string,
      { record: BufferedRecord; row: Record<string, unknown> | undefined }[]
    >();
    for (const record of records) {
      const row = parseObject(record.data);
      let partition = "";
      if (layout.partitionByThing) {
        const key = row?.[THING_PARTITION_KEY];
        if (typeof key !== "string" && typeof key !== "number") {
          failures.push({
            record,
            type: PARTITIONING_FAILED,
            code: "DynamicPartitioning.MetadataExtractionFailed",
            message: `the record has no ${THING_PARTITION_KEY} for the partition key (jq {${THING_PARTITION_KEY}:.${THING_PARTITION_KEY}})`,
          });
          continue;
        }
        partition = String(key);
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
      const group = groups.get(partition) ?? [];
      group.push({ record, row });
      groups.set(partition, group);
    }

    const out: LakeObject[] = [];
    for (const [partition, group] of groups) {
      const prefix = layout.prefix
        .split(`!{partitionKeyFromQuery:${THING_PARTITION_KEY}}`)
        .join(partition);
      if (layout.format === "parquet") {
        const rows: { record: BufferedRecord; values: (string | bigint | number | null)[] }[] = [];
        for (const { record, row } of group) {
          if (row === undefined) {
            failures.push({
              record,
              type: FORMAT_CONVERSION_FAILED,
              code: "DataFormatConversion.MalformedData",
              message: "the record is not a JSON object",
            });
            continue;
          }
          const values: (string | bigint | number | null)[] = [];
          let problem: string | undefined;
          for (const c of this.opts.columns) {
            const v = coerce(row[c.name], c);
            if (!v.ok) {
              problem = v.reason;
              break;
            }
            values.push(v.value);
          }
          if (problem !== undefined) {
            failures.push({
              record,
              type: FORMAT_CONVERSION_FAILED,
              code: "DataFormatConversion.InvalidSchema",
              message: `the record does not match the table's schema: ${problem}`,
            });
            continue;
          }
          rows.push({ record, values });
        }
        if (rows.length === 0) continue;
        const oldest = new Date(Math.min(...rows.map((r) => r.record.arrival)));
        const key = `${evaluatePrefix(prefix, oldest, randomString)}${objectName(this.opts.streamName, oldest, uuid(), "UNCOMPRESSED")}${layout.fileExtension ?? ""}`;
        out.push({
          key,
          body: await this.parquet(rows.map((r) => r.values)),
          records: rows.length,
          error: false,
        });
      } else {
        const oldest = new Date(Math.min(...group.map((g) => g.record.arrival)));
        const raw = Buffer.concat(group.map((g) => g.record.data));
        const body = this.opts.compression === "GZIP" ? await gzip(raw) : raw;
        const key = `${evaluatePrefix(prefix, oldest, randomString)}${objectName(this.opts.streamName, oldest, uuid(), this.opts.compression)}${layout.fileExtension ?? ""}`;
        out.push({ key, body, records: group.length, error: false });
      }
    }
    out.push(...this.errorObjects(failures, uuid));
    return out;
  }

  /** Failed records, one error document per line, one object per error type. */
  private errorObjects(failures: readonly Failure[], uuid: () => string): LakeObject[] {
    const byType = new Map<string, Failure[]>();
    for (const f of failures) byType.set(f.type, [...(byType.get(f.type) ?? []), f]);
    const t = this.opts.table;
    const out: LakeObject[] = [];
    for (const [type, list] of byType) {
      const oldest = new Date(Math.min(...list.map((f) => f.record.arrival)));
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
      const key = `${evaluatePrefix(this.opts.layout.errorOutputPrefix, oldest, randomString, type)}${objectName(this.opts.streamName, oldest, uuid(), "UNCOMPRESSED")}`;
      out.push({
        key,
        body: Buffer.from(`${lines.join("\n")}\n`),
        records: list.length,
        error: true,
      });
    }
    return out;
  }

  /** One Parquet file of the table's columns, written by DuckDB's Parquet writer. */
  private async parquet(rows: readonly (string | bigint | number | null)[][]): Promise<Buffer> {
    const c = await this.connect();
    const cols = this.opts.columns;
    await c.run(
      `CREATE OR REPLACE TEMP TABLE batch (${cols.map((x) => `${quote(x.name)} ${SQL_TYPES[x.type]}`).join(", ")})`,
    );
    const appender = await c.createAppender("batch");
    for (const row of rows) {
      row.forEach((v, i) => {
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
      this.scratch = await fs.mkdtemp(path.join(os.tmpdir(), "iot-pipeline-parquet-"));
      this.instance = await DuckDBInstance.create(":memory:", { threads: "1" });
      this.connection = await this.instance.connect();
    }
    return this.connection;
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
