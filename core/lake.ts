// The queryable lake: one definition of the table the telemetry lands in (Glue database and table
// name, columns from core/telemetry.schema.json and the rule's SELECT, partitions), of the key
// layout Firehose writes for each stack choice (JSON lines or Parquet, partitioned by thing or
// not), and of the saved queries. The program builds the Glue table, the Firehose stream and the
// Athena named queries from it; the local delivery stream writes the same layout and
// `npm run query` reads it with the same table name and columns.
import { bool, oneOf, type RawConfig } from "./config-values";
import { invalidConfig } from "./errors";
import { PROJECT } from "./project";
import type { Expr, RuleStatement } from "./rule-sql";
import schema from "./telemetry.schema.json";

export type RecordFormat = "json" | "parquet";
export const RECORD_FORMATS: readonly RecordFormat[] = ["json", "parquet"];

/** The Glue table (and the local view) every stack's telemetry is queried through. */
export const LAKE_TABLE = "telemetry";

/** Athena's query results, in the pipeline's bucket under a prefix of their own. */
export const ATHENA_RESULTS_PREFIX = "athena-results/";

/**
 * Firehose requires a buffer of at least 64 MiB once it converts records to Parquet
 * (https://docs.aws.amazon.com/firehose/latest/dev/enable-record-format-conversion.html).
 */
export const PARQUET_MIN_BUFFER_MIB = 64;

/**
 * With dynamic partitioning, Firehose buffers per partition in stages, so a record may wait up to
 * 1.5 times the buffer interval (https://docs.aws.amazon.com/firehose/latest/dev/buffering.html).
 */
export const PARTITIONED_DELAY_FACTOR = 1.5;

/** Active partitions per stream beyond which Firehose sends records to the error prefix (same page). */
export const MAX_ACTIVE_PARTITIONS = 500;

/** The error-output-type of records beyond the active partitions (same page). */
export const ACTIVE_PARTITION_EXCEEDED = "activePartitionExceeded";

/** The error-output-type of records Firehose could not convert to Parquet (s3-prefixes page). */
export const FORMAT_CONVERSION_FAILED = "format-conversion-failed";

/** The partition key the stream extracts from each record, and the jq query that extracts it. */
export const THING_PARTITION_KEY = "thing";
export const PARTITION_QUERY = `{${THING_PARTITION_KEY}:.${THING_PARTITION_KEY}}`;

/** The table's partition column for the thing (the data already has a `thing` column). */
export const DEVICE_PARTITION = "device";
/** The table's partition column for Firehose's hour folders, as Athena's Firehose example names it. */
export const DATEHOUR_PARTITION = "datehour";
/** How `datehour` is written in the key (Firehose's `YYYY/MM/dd/HH`) and read by partition projection. */
export const DATEHOUR_FORMAT = "yyyy/MM/dd/HH";

/** Glue column types the lake uses. */
export type LakeType = "string" | "bigint" | "double";

export interface LakeColumn {
  readonly name: string;
  readonly type: LakeType;
}

/** Each Glue type as the DuckDB type the local lake writes (Parquet) and reads (views) it as. */
export const SQL_TYPES: Readonly<Record<LakeType, string>> = {
  string: "VARCHAR",
  bigint: "BIGINT",
  double: "DOUBLE",
};

/** A column, schema or table name as a quoted SQL identifier. */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

const SCHEMA_TYPES: Record<string, LakeType> = {
  string: "string",
  integer: "bigint",
  number: "double",
};

/** The telemetry schema's fields as lake columns, in schema order. */
export const TELEMETRY_COLUMNS: readonly LakeColumn[] = Object.entries(
  schema.properties as Record<string, { type: string }>,
).map(([name, p]) => ({ name, type: SCHEMA_TYPES[p.type] }));

/** Glue and Athena column names: lower-case letters, digits and underscores. */
const COLUMN = /^[a-z_][a-z0-9_]{0,127}$/;

/** What the rule's functions return, as lake types (IoT SQL reference, functions page). */
const FUNCTION_TYPES: Readonly<Record<string, LakeType>> = {
  topic: "string",
  clientid: "string",
  principal: "string",
  newuuid: "string",
  traceid: "string",
  timestamp: "bigint",
  parse_time: "string",
  lower: "string",
  upper: "string",
  concat: "string",
  substring: "string",
  trim: "string",
  abs: "double",
  round: "bigint",
  floor: "bigint",
  ceil: "bigint",
};

function typeOf(expr: Expr): LakeType {
  switch (expr.kind) {
    case "field": {
      const name = expr.path.length === 1 ? expr.path[0] : undefined;
      return TELEMETRY_COLUMNS.find((c) => c.name === name)?.type ?? "string";
    }
    case "number":
      return /^-?\d+$/.test(expr.text) ? "bigint" : "double";
    case "call":
      return FUNCTION_TYPES[expr.name.toLowerCase()] ?? "string";
    case "cast":
      return expr.type === "int" ? "bigint" : expr.type === "decimal" ? "double" : "string";
    case "binary":
      return ["+", "-", "*", "/", "%"].includes(expr.op) ? "double" : "string";
    case "unary":
      return expr.op === "-" ? typeOf(expr.operand) : "string";
    default:
      return "string";
  }
}

/**
 * The lake's columns for a rule: the telemetry schema's fields where the rule selects `*`, then
 * each named output of its SELECT with the type its expression yields. Outputs the table cannot
 * hold as a column (nested aliases, names Glue would change) are left out; a `SELECT VALUE` rule
 * produces no object, so its table has the schema's columns.
 */
export function lakeColumns(rule: RuleStatement): LakeColumn[] {
  if (rule.select.kind === "value") return [...TELEMETRY_COLUMNS];
  const out: LakeColumn[] = [];
  const add = (c: LakeColumn) => {
    const at = out.findIndex((x) => x.name === c.name);
    // A later output of the same name replaces the earlier one, as it does in the record.
    if (at >= 0) out[at] = c;
    else out.push(c);
  };
  for (const item of rule.select.items) {
    if (item.kind === "star") {
      if (item.alias === undefined) for (const c of TELEMETRY_COLUMNS) add(c);
      continue;
    }
    const name =
      item.alias !== undefined
        ? item.alias.length === 1
          ? item.alias[0]
          : undefined
        : item.expr.kind === "field" && item.expr.path.length === 1
          ? String(item.expr.path[0])
          : undefined;
    if (name !== undefined && COLUMN.test(name)) add({ name, type: typeOf(item.expr) });
  }
  return out.length > 0 ? out : [...TELEMETRY_COLUMNS];
}

/** The Glue database of a stack: `iot_pipeline_<stack>` (Glue names take letters, digits and _). */
export function lakeDatabaseName(stack: string): string {
  return `${PROJECT}_${stack}`.toLowerCase().replace(/[^a-z0-9_]/g, "_");
}

/** The Athena workgroup of a stack. */
export function lakeWorkgroupName(stack: string): string {
  return `${PROJECT}-${stack}`;
}

/** The part of a Firehose prefix before its first `!{...}` expression. */
export function staticPart(prefix: string): string {
  const at = prefix.indexOf("!{");
  return at < 0 ? prefix : prefix.slice(0, at);
}

/** The folder a prefix's static part lies in ("" for the bucket's root). */
export function folderOf(prefix: string): string {
  const s = staticPart(prefix);
  return s.slice(0, s.lastIndexOf("/") + 1);
}

export interface LakeOptions {
  readonly format: RecordFormat;
  readonly partitionByThing: boolean;
}

/** Where and how the telemetry's stream writes, and how the table finds it again. */
export interface LakeLayout {
  readonly format: RecordFormat;
  readonly partitionByThing: boolean;
  /** Firehose's `prefix` for the stream. */
  readonly prefix: string;
  /** Firehose's `errorOutputPrefix` for the stream. */
  readonly errorOutputPrefix: string;
  /** The table's location: the folder every delivered object lies under, ending in `/`. */
  readonly location: string;
  /** `${name}` placeholders after the location, ending in `/`; undefined when the table is unpartitioned. */
  readonly locationTemplate?: string;
  /** The table's partition columns, in key order (all strings). */
  readonly partitions: readonly string[];
  /** The object name's extension Firehose is told to use (`.parquet`), if any. */
  readonly fileExtension?: string;
}

const TIME_FOLDERS = "!{timestamp:yyyy}/!{timestamp:MM}/!{timestamp:dd}/!{timestamp:HH}/";

/**
 * The key layout of the telemetry for a stack's delivery prefixes and lake choices.
 *
 * - Not partitioned: the configured prefixes unchanged. A static prefix gets Firehose's own
 *   `YYYY/MM/dd/HH/`, which the table reads as the `datehour` partition (Athena's Firehose example);
 *   a prefix with expressions leaves the table unpartitioned over the folder it starts with.
 * - Partitioned by thing (dynamic partitioning, a static prefix only): `<prefix>device=<thing>/`
 *   then the same hour folders, written out as `!{timestamp:...}` expressions since Firehose requires
 *   the prefix to say everything once partitioning is on; the error prefix then must name
 *   `!{firehose:error-output-type}` and cannot use the partition key (s3-prefixes page).
 * - Parquet: Firehose names objects with the extension it is given, here `.parquet`.
 */
export function lakeLayout(
  delivery: { readonly prefix: string; readonly errorOutputPrefix: string },
  opts: LakeOptions,
): LakeLayout {
  const location = folderOf(delivery.prefix);
  const fileExtension = opts.format === "parquet" ? ".parquet" : undefined;
  const isStatic = staticPart(delivery.prefix) === delivery.prefix;
  if (opts.partitionByThing) {
    const errorStatic = staticPart(delivery.errorOutputPrefix);
    const errorOutputPrefix =
      errorStatic === delivery.errorOutputPrefix
        ? `${delivery.errorOutputPrefix}!{firehose:error-output-type}/${TIME_FOLDERS}`
        : delivery.errorOutputPrefix;
    return {
      format: opts.format,
      partitionByThing: true,
      prefix: `${delivery.prefix}${DEVICE_PARTITION}=!{partitionKeyFromQuery:${THING_PARTITION_KEY}}/${TIME_FOLDERS}`,
      errorOutputPrefix,
      location: delivery.prefix,
      locationTemplate: `${DEVICE_PARTITION}=\${${DEVICE_PARTITION}}/\${${DATEHOUR_PARTITION}}/`,
      partitions: [DEVICE_PARTITION, DATEHOUR_PARTITION],
      fileExtension,
    };
  }
  const hourly = isStatic && delivery.prefix.endsWith("/");
  return {
    format: opts.format,
    partitionByThing: false,
    prefix: delivery.prefix,
    errorOutputPrefix: delivery.errorOutputPrefix,
    location,
    locationTemplate: hourly ? `\${${DATEHOUR_PARTITION}}/` : undefined,
    partitions: hourly ? [DATEHOUR_PARTITION] : [],
    fileExtension,
  };
}

/** The delivery settings the lake's layout is made from. */
export interface LakeDelivery {
  readonly prefix: string;
  readonly errorOutputPrefix: string;
  readonly bufferSizeMiB: number;
  readonly bufferIntervalSeconds: number;
}

/**
 * The lake's layout for a stack (lakeLayout), once the prefixes and buffer are checked against
 * the lake's choices: the telemetry in a folder of its own that holds nothing else the bucket
 * keeps (`analyticsPrefix`: the windows' folder, when analytics is on), a static prefix for
 * partitioning, and the buffers Firehose requires. Throws a ConfigError naming the key.
 */
export function planLakeLayout(
  d: LakeDelivery,
  opts: LakeOptions,
  analyticsPrefix: string | undefined,
): LakeLayout {
  const location = folderOf(d.prefix);
  if (location === "") {
    invalidConfig(
      "s3Prefix",
      d.prefix,
      "must begin with a folder such as telemetry/, so that the lake's table reads the telemetry and not the bucket's other objects",
    );
  }
  const others: [string, string][] = [
    ["errorOutputPrefix", staticPart(d.errorOutputPrefix)],
    ["athena results", ATHENA_RESULTS_PREFIX],
    ["flink code", "flink-code/"],
    ...(analyticsPrefix === undefined
      ? []
      : ([["analytics.prefix", analyticsPrefix]] as [string, string][])),
  ];
  for (const [what, p] of others) {
    if (p.startsWith(location)) {
      invalidConfig(
        "s3Prefix",
        d.prefix,
        `the lake's table reads everything under ${location}, which holds the ${what} (${p}); put the telemetry in a folder of its own`,
      );
    }
  }
  if (opts.partitionByThing && (staticPart(d.prefix) !== d.prefix || !d.prefix.endsWith("/"))) {
    invalidConfig(
      "partitionByThing",
      true,
      `needs an s3Prefix without !{...} that ends in / (got ${JSON.stringify(d.prefix)}): the stream adds the device= and hour folders itself`,
    );
  }
  if (opts.partitionByThing && d.bufferIntervalSeconds === 0) {
    invalidConfig(
      "bufferIntervalSeconds",
      0,
      "must be above 0 when partitionByThing is true: Firehose has no zero buffering with dynamic partitioning",
    );
  }
  if (opts.format === "parquet" && d.bufferSizeMiB < PARQUET_MIN_BUFFER_MIB) {
    invalidConfig(
      "bufferSizeMiB",
      d.bufferSizeMiB,
      `must be at least ${PARQUET_MIN_BUFFER_MIB} when recordFormat is parquet (Firehose's minimum buffer for format conversion)`,
    );
  }
  return lakeLayout(d, opts);
}

/**
 * Partition values of an object key under the layout, or undefined for a key outside the table
 * (another folder, or not in the layout's shape): what partition projection finds for it.
 */
export function partitionValues(
  layout: LakeLayout,
  key: string,
): Record<string, string> | undefined {
  if (!key.startsWith(layout.location)) return undefined;
  const rest = key.slice(layout.location.length);
  if (layout.locationTemplate === undefined) return {};
  const hour = "(\\d{4}/\\d{2}/\\d{2}/\\d{2})/";
  const re = layout.partitionByThing
    ? new RegExp(`^${DEVICE_PARTITION}=([^/]+)/${hour}[^/]+$`)
    : new RegExp(`^${hour}[^/]+$`);
  const m = re.exec(rest);
  if (m === null) return undefined;
  return layout.partitionByThing
    ? { [DEVICE_PARTITION]: m[1], [DATEHOUR_PARTITION]: m[2] }
    : { [DATEHOUR_PARTITION]: m[1] };
}

/**
 * The Glue table parameters that make Athena project the partitions instead of listing them:
 * `datehour` as a date in Firehose's hour folders, `device` as the fleet's thing names (an enum:
 * records of things outside the fleet stay in S3 but out of the table).
 */
export function projectionParameters(
  layout: LakeLayout,
  bucket: string,
  things: readonly string[],
  firstHour = "2020/01/01/00",
): Record<string, string> {
  if (layout.locationTemplate === undefined) return {};
  const p: Record<string, string> = {
    "projection.enabled": "true",
    [`projection.${DATEHOUR_PARTITION}.type`]: "date",
    [`projection.${DATEHOUR_PARTITION}.format`]: DATEHOUR_FORMAT,
    [`projection.${DATEHOUR_PARTITION}.range`]: `${firstHour},NOW`,
    [`projection.${DATEHOUR_PARTITION}.interval`]: "1",
    [`projection.${DATEHOUR_PARTITION}.interval.unit`]: "HOURS",
    "storage.location.template": `s3://${bucket}/${layout.location}${layout.locationTemplate}`,
  };
  if (layout.partitionByThing) {
    p[`projection.${DEVICE_PARTITION}.type`] = "enum";
    p[`projection.${DEVICE_PARTITION}.values`] = things.join(",");
  }
  return p;
}

/** Glue storage descriptor classes for each format (Athena's JSON SerDe and Parquet pages). */
export const SERDE: Readonly<
  Record<
    RecordFormat,
    {
      readonly serializationLibrary: string;
      readonly inputFormat: string;
      readonly outputFormat: string;
      readonly parameters: Readonly<Record<string, string>>;
    }
  >
> = {
  json: {
    serializationLibrary: "org.openx.data.jsonserde.JsonSerDe",
    inputFormat: "org.apache.hadoop.mapred.TextInputFormat",
    outputFormat: "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    // A line a device sent that is not JSON must not fail every query over its hour.
    parameters: { "ignore.malformed.json": "true" },
  },
  parquet: {
    serializationLibrary: "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
    inputFormat: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
    outputFormat: "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    parameters: { "serialization.format": "1" },
  },
};

/** One saved Athena query: its name, what it answers, and its SQL (Athena's Trino dialect). */
export interface SavedQuery {
  readonly name: string;
  readonly description: string;
  readonly sql: string;
}

/**
 * The saved queries, written in the part of Athena's SQL that DuckDB shares (the local lake runs
 * them unchanged, with `from_unixtime` as the one function the local engine adds; docs/lake.md).
 * `timestamp` is the reading's time in epoch ms; windows are aligned to the epoch like the
 * stream's TUMBLE windows, but on event time (the stored data has no arrival time).
 */
export function savedQueries(windowSeconds = 10): SavedQuery[] {
  const ms = windowSeconds * 1000;
  return [
    {
      name: "window-min-max",
      description: `The seed's analytics question over the lake: MAX(max_temperature) and MIN(min_temperature) per ${windowSeconds}-second window of the readings' time`,
      sql: [
        `SELECT from_unixtime(("timestamp" - "timestamp" % ${ms}) / 1000) AS window_start,`,
        `  MAX(max_temperature) AS max_temp,`,
        `  MIN(min_temperature) AS min_temp,`,
        `  COUNT(*) AS records`,
        `FROM ${LAKE_TABLE}`,
        `GROUP BY 1`,
        `ORDER BY 1`,
      ].join("\n"),
    },
    {
      name: "latest-reading-per-thing",
      description: "Each thing's most recent reading",
      sql: [
        `SELECT thing, "timestamp", temperature, max_temperature, min_temperature`,
        `FROM (`,
        `  SELECT *, ROW_NUMBER() OVER (PARTITION BY thing ORDER BY "timestamp" DESC, temperature DESC) AS rn`,
        `  FROM ${LAKE_TABLE}`,
        `) AS ranked`,
        `WHERE rn = 1`,
        `ORDER BY thing`,
      ].join("\n"),
    },
    {
      name: "readings-per-hour",
      description: "How many readings each thing sent per hour (UTC) of their time",
      sql: [
        `SELECT from_unixtime(("timestamp" - "timestamp" % 3600000) / 1000) AS hour,`,
        `  thing,`,
        `  COUNT(*) AS readings`,
        `FROM ${LAKE_TABLE}`,
        `GROUP BY 1, 2`,
        `ORDER BY 1, 2`,
      ].join("\n"),
    },
  ];
}

/**
 * Parquet's codec for the stack's `compression`: GZIP stays GZIP; UNCOMPRESSED JSON becomes
 * Firehose's default SNAPPY, since converted records are always compressed by their pages
 * (https://docs.aws.amazon.com/firehose/latest/dev/enable-record-format-conversion.html).
 */
export function parquetCompression(compression: "UNCOMPRESSED" | "GZIP"): "SNAPPY" | "GZIP" {
  return compression === "GZIP" ? "GZIP" : "SNAPPY";
}

/** The lake keys (docs/lake.md); the prefixes and buffer they need are checked where the lake's
 * layout is made (planLakeLayout). */
export function parseLakeOptions(raw: RawConfig): LakeOptions {
  return {
    format: oneOf(raw, "recordFormat", RECORD_FORMATS),
    partitionByThing: bool(raw, "partitionByThing"),
  };
}
