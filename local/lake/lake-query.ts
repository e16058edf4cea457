// The local lake's query engine: DuckDB (from the npm registry, JSON and Parquet readers built in)
// over the local bucket, with a view of the same name and columns as the stack's Glue table. The
// view reads exactly the objects Athena's partition projection would find (core/lake.ts
// partitionValues: the table's folder, the hour folders, the fleet's devices), with the partition
// columns taken from each object's key. One function is added so the saved Athena queries run
// unchanged: `from_unixtime` (Trino's), as DuckDB's `to_timestamp`; the session runs in UTC as
// Athena's does.
import * as path from "node:path";
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { UserError } from "../../core/errors";
import {
  DATEHOUR_PARTITION,
  DEVICE_PARTITION,
  partitionValues,
  quoteIdentifier as quote,
  SQL_TYPES,
  type LakeColumn,
  type LakeLayout,
} from "../../core/lake";
import { planOf, type PipelinePlan } from "../../core/plan";
import type { StackConfig } from "../../core/stack-config";
import { LocalBucket, localBucketName } from "../storage/s3";

/** A query the engine refused or could not finish; the message is one line. */
export class LakeQueryError extends UserError {}

/** The most SQL text `npm run query` accepts. */
export const MAX_SQL_BYTES = 100_000;

/** Athena functions the saved queries use that DuckDB names otherwise (docs/lake.md). */
export const DIALECT_MACROS: readonly string[] = [
  "CREATE OR REPLACE MACRO from_unixtime(x) AS to_timestamp(x)",
];

const literal = (s: string) => `'${s.replace(/'/g, "''")}'`;

export interface QueryResult {
  readonly columns: readonly string[];
  /** Rows as JSON values (big integers and timestamps as text). */
  readonly rows: readonly (readonly unknown[])[];
  /** Objects the view read. */
  readonly objects: number;
}

export interface LocalLakeOptions {
  /** Where `npm run simulate` keeps the local bucket (`<stateDir>/s3/<bucket>`). */
  readonly stateDir: string;
  /** DuckDB's worker threads. @default DuckDB's own (the machine's cores) */
  readonly threads?: number;
}

/** The view's SELECT over a list of objects, with the table's columns and partitions. */
export function viewSql(
  layout: LakeLayout,
  columns: readonly LakeColumn[],
  files: readonly { readonly file: string; readonly key: string }[],
  bucketDir: string,
  /** Parquet: the columns the files have; a table column none of them has reads as NULL, as in Athena. */
  present?: ReadonlySet<string>,
): string {
  const cols = columns.map(
    (c) =>
      `CAST(${present === undefined || present.has(c.name) ? quote(c.name) : "NULL"} AS ${SQL_TYPES[c.type]}) AS ${quote(c.name)}`,
  );
  const parts = layout.partitions.map((p) => `CAST(NULL AS VARCHAR) AS ${quote(p)}`);
  if (files.length === 0) {
    return `SELECT ${[...cols, ...parts].join(", ")} WHERE false`;
  }
  const list = `[${files.map((f) => literal(f.file)).join(", ")}]`;
  const source =
    layout.format === "parquet"
      ? `read_parquet(${list}, filename = true, union_by_name = true)`
      : `read_json(${list}, format = 'newline_delimited', filename = true, ignore_errors = true, columns = {${columns.map((c) => `${literal(c.name)}: ${literal(SQL_TYPES[c.type])}`).join(", ")}})`;
  // Partition values from the key after the table's folder, as the projection template reads them.
  const rel = `substr(filename, ${bucketDir.length + 2 + layout.location.length})`;
  const partitionCols = layout.partitions.map((p) =>
    p === DEVICE_PARTITION
      ? `regexp_extract(${rel}, '^${DEVICE_PARTITION}=([^/]+)/', 1) AS ${quote(p)}`
      : `regexp_extract(${rel}, '(\\d{4}/\\d{2}/\\d{2}/\\d{2})/[^/]+$', 1) AS ${quote(DATEHOUR_PARTITION)}`,
  );
  return `SELECT ${[...cols, ...partitionCols].join(", ")} FROM ${source}`;
}

export class LocalLake {
  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
    /** Objects the view reads. */
    readonly objects: number,
    readonly database: string,
  ) {}

  /** Opens the stack's local lake (the plan's layout and columns): lists its objects, defines the view. */
  static async open(stack: StackConfig | PipelinePlan, opts: LocalLakeOptions): Promise<LocalLake> {
    const plan = planOf(stack);
    const config = plan.config;
    const { layout, columns } = plan.lake;
    const bucket = new LocalBucket(opts.stateDir, localBucketName(config));
    const fleet = new Set(config.things.map((t) => t.name));
    const files = (await bucket.listKeys())
      .filter((key) => {
        const values = partitionValues(layout, key);
        if (values === undefined) return false;
        // The device partition is projected as an enum of the fleet's things.
        const device = values[DEVICE_PARTITION];
        return device === undefined || fleet.has(device);
      })
      .map((key) => ({ key, file: path.join(bucket.dir, ...key.split("/")) }));

    const { DuckDBInstance } = await import("@duckdb/node-api");
    const instance = await DuckDBInstance.create(":memory:", {
      ...(opts.threads === undefined ? {} : { threads: String(opts.threads) }),
      // Nothing is fetched at query time: JSON and Parquet are built into the package.
      autoinstall_known_extensions: "false",
    });
    const connection = await instance.connect();
    const database = plan.lake.databaseName;
    try {
      await connection.run("SET TimeZone = 'UTC'");
      for (const macro of DIALECT_MACROS) await connection.run(macro);
      let present: Set<string> | undefined;
      if (layout.format === "parquet" && files.length > 0) {
        const list = `[${files.map((f) => literal(f.file)).join(", ")}]`;
        const described = await connection.runAndReadAll(
          `DESCRIBE SELECT * FROM read_parquet(${list}, union_by_name = true)`,
        );
        present = new Set(described.getRowObjectsJS().map((r) => String(r.column_name)));
      }
      const select = viewSql(layout, columns, files, bucket.dir, present);
      // Both `telemetry` and `<database>.telemetry` name the table, as in Athena's workgroup.
      await connection.run(`CREATE SCHEMA IF NOT EXISTS ${quote(database)}`);
      const table = plan.lake.tableName;
      await connection.run(`CREATE VIEW ${quote(database)}.${quote(table)} AS ${select}`);
      await connection.run(
        `CREATE VIEW ${quote(table)} AS SELECT * FROM ${quote(database)}.${quote(table)}`,
      );
    } catch (e) {
      connection.closeSync();
      instance.closeSync();
      throw e;
    }
    return new LocalLake(instance, connection, files.length, database);
  }

  /**
   * Runs one SQL statement; at most `maxRows` rows come back, and a query still running after
   * `timeoutMs` is interrupted.
   */
  async query(
    sql: string,
    opts: { maxRows?: number; timeoutMs?: number } = {},
  ): Promise<QueryResult> {
    if (Buffer.byteLength(sql) > MAX_SQL_BYTES) {
      throw new LakeQueryError(
        `the query is ${Buffer.byteLength(sql)} bytes; at most ${MAX_SQL_BYTES} are accepted`,
      );
    }
    const timer =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => this.connection.interrupt(), opts.timeoutMs);
    try {
      const reader = await this.connection.runAndReadUntil(
        sql,
        opts.maxRows ?? Number.MAX_SAFE_INTEGER,
      );
      const columns = reader.columnNames();
      const rows = reader.getRowsJson().slice(0, opts.maxRows ?? undefined);
      return { columns, rows, objects: this.objects };
    } catch (e) {
      const message = (e instanceof Error ? e.message : String(e)).split("\n")[0];
      if (/interrupt/i.test(message)) {
        throw new LakeQueryError(
          `the query ran longer than ${(opts.timeoutMs ?? 0) / 1000} s and was stopped`,
        );
      }
      throw new LakeQueryError(`the local engine (DuckDB) refused the query: ${message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.connection.closeSync();
    this.instance.closeSync();
  }
}
