// The streaming window: one validated spec (stack config key `analytics`) and the Flink SQL that
// Managed Service for Apache Flink runs for it; the local pipeline's window operator reads the same spec.
import { invalidConfig } from "../errors";
import schema from "../telemetry.schema.json";

export type WindowTime = "processing" | "event";
export const WINDOW_TIMES: readonly WindowTime[] = ["processing", "event"];

export type AggregateFn = "MAX" | "MIN" | "AVG" | "SUM" | "COUNT";
export const AGGREGATE_FNS: readonly AggregateFn[] = ["MAX", "MIN", "AVG", "SUM", "COUNT"];

/** One aggregate column of a window: `fn(field) AS as`; COUNT also takes `*`. */
export interface Aggregate {
  readonly fn: AggregateFn;
  /** A telemetry field, or `*` for COUNT. */
  readonly field: string;
  /** The output column. */
  readonly as: string;
}

/** A tumbling window over the accepted telemetry, as the stack config declares it. */
export interface WindowSpec {
  readonly windowSeconds: number;
  /** Processing time (arrival) or event time (the payload's `timestamp`, epoch ms). */
  readonly time: WindowTime;
  /** Event time only: how far the watermark trails the largest timestamp seen. */
  readonly watermarkSeconds: number;
  /** Telemetry fields the windows are grouped by (for example `thing`); empty for one window per interval. */
  readonly groupBy: readonly string[];
  readonly aggregates: readonly Aggregate[];
  /**
   * Key prefix of the window objects in the pipeline's bucket, ending in `/`; the windows'
   * Firehose stream appends `YYYY/MM/dd/HH/` as it does for telemetry.
   */
  readonly prefix: string;
}

/** The output column holding each window's record count (Flink's COUNT(*)). */
export const COUNT_COLUMN = "records";
/** Output columns every window has, which aggregates and group keys may not reuse. */
const RESERVED_COLUMNS = ["window_start", "window_end", "window_time", COUNT_COLUMN];

/** The largest window we accept: a day. Longer windows belong in a batch query over the bucket. */
export const MAX_WINDOW_SECONDS = 86_400;

type SchemaType = "string" | "integer" | "number";

/** Field name → JSON type, read from core/telemetry.schema.json (the one definition). */
export const TELEMETRY_FIELD_TYPES: Readonly<Record<string, SchemaType>> = Object.fromEntries(
  Object.entries(schema.properties as Record<string, { type: SchemaType }>).map(([k, v]) => [
    k,
    v.type,
  ]),
);
const FIELDS = Object.keys(TELEMETRY_FIELD_TYPES);

function isNumericField(field: string): boolean {
  const t = TELEMETRY_FIELD_TYPES[field];
  return t === "integer" || t === "number";
}

function fail(key: string, value: unknown, allowed: string): never {
  return invalidConfig(key === "" ? "analytics" : `analytics.${key}`, value, allowed);
}

/** Whole numbers may arrive as numbers (YAML, JSON) or as text. */
function wholeNumber(v: unknown): number | undefined {
  const n = typeof v === "string" && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v;
  return typeof n === "number" && Number.isInteger(n) ? n : undefined;
}

const COLUMN_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

function parseAggregate(a: unknown, i: number, taken: Set<string>): Aggregate {
  const key = `aggregates[${i}]`;
  if (typeof a !== "object" || a === null || Array.isArray(a)) {
    fail(key, a, "must be a map {fn, field, as}");
  }
  const e = a as Record<string, unknown>;
  const fn = typeof e.fn === "string" ? e.fn.toUpperCase() : e.fn;
  if (typeof fn !== "string" || !(AGGREGATE_FNS as readonly string[]).includes(fn)) {
    fail(`${key}.fn`, e.fn, `unknown aggregate; use one of ${AGGREGATE_FNS.join(", ")}`);
  }
  const field = e.field ?? (fn === "COUNT" ? "*" : undefined);
  if (typeof field !== "string" || (field !== "*" && !FIELDS.includes(field))) {
    fail(
      `${key}.field`,
      e.field,
      `the telemetry schema has no such field; use one of ${FIELDS.join(", ")}${fn === "COUNT" ? " or *" : ""}`,
    );
  }
  if (field === "*" && fn !== "COUNT") {
    fail(`${key}.field`, field, `${fn} needs a numeric telemetry field; only COUNT takes *`);
  }
  if (fn !== "COUNT" && !isNumericField(field)) {
    const numeric = FIELDS.filter(isNumericField);
    fail(`${key}.field`, field, `${fn} needs a numeric field; use one of ${numeric.join(", ")}`);
  }
  const as = e.as ?? `${fn.toLowerCase()}_${field === "*" ? "all" : field}`;
  if (typeof as !== "string" || !COLUMN_NAME.test(as)) {
    fail(`${key}.as`, e.as, "must be a column name: a letter or _ then letters, digits or _");
  }
  if (RESERVED_COLUMNS.includes(as) || taken.has(as)) {
    fail(
      `${key}.as`,
      as,
      `the window already has a column ${as}; pick another name (taken: ${[...RESERVED_COLUMNS, ...taken].join(", ")})`,
    );
  }
  taken.add(as);
  return { fn: fn as AggregateFn, field, as };
}

/**
 * Validates the stack config's `analytics` value into a WindowSpec, or undefined when it is absent
 * or `enabled: false`. Throws a ConfigError whose one line names the bad key and what is allowed.
 */
export function parseWindowSpec(raw: unknown): WindowSpec | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== "object" || Array.isArray(raw)) {
    fail(
      "",
      raw,
      "must be a map {enabled, windowSeconds, time, watermarkSeconds, groupBy, aggregates, prefix}",
    );
  }
  const e = raw as Record<string, unknown>;
  const enabled = e.enabled ?? true;
  if (enabled !== true && enabled !== false && enabled !== "true" && enabled !== "false") {
    fail("enabled", e.enabled, "must be true or false");
  }
  if (enabled === false || enabled === "false") return undefined;

  const windowSeconds = wholeNumber(e.windowSeconds);
  if (windowSeconds === undefined || windowSeconds < 1 || windowSeconds > MAX_WINDOW_SECONDS) {
    fail(
      "windowSeconds",
      e.windowSeconds,
      `the window length must be a positive whole number of seconds (1 to ${MAX_WINDOW_SECONDS})`,
    );
  }

  const time = e.time ?? "processing";
  if (typeof time !== "string" || !(WINDOW_TIMES as readonly string[]).includes(time)) {
    fail("time", e.time, `must be one of ${WINDOW_TIMES.join(", ")}`);
  }

  const watermarkSeconds = wholeNumber(e.watermarkSeconds ?? 0);
  if (
    watermarkSeconds === undefined ||
    watermarkSeconds < 0 ||
    watermarkSeconds > MAX_WINDOW_SECONDS
  ) {
    fail(
      "watermarkSeconds",
      e.watermarkSeconds,
      `must be a whole number of seconds from 0 to ${MAX_WINDOW_SECONDS}`,
    );
  }

  const groupByRaw = e.groupBy ?? [];
  const groupList = typeof groupByRaw === "string" ? [groupByRaw] : groupByRaw;
  if (!Array.isArray(groupList)) {
    fail("groupBy", groupByRaw, `must be a list of telemetry fields, e.g. [thing]`);
  }
  const groupBy = groupList.map((g: unknown, i: number): string => {
    if (typeof g !== "string" || !FIELDS.includes(g)) {
      fail(
        `groupBy[${i}]`,
        g,
        `the grouping key is not a telemetry field; use one of ${FIELDS.join(", ")}`,
      );
    }
    if (groupList.indexOf(g) !== i) fail(`groupBy[${i}]`, g, "each grouping key may appear once");
    return g;
  });

  const aggregatesRaw = e.aggregates;
  if (!Array.isArray(aggregatesRaw) || aggregatesRaw.length === 0) {
    fail("aggregates", aggregatesRaw, "must be a non-empty list of {fn, field, as}");
  }
  const taken = new Set<string>(groupBy);
  const aggregates = aggregatesRaw.map((a: unknown, i: number) => parseAggregate(a, i, taken));

  const prefix = e.prefix ?? "analytics/";
  if (
    typeof prefix !== "string" ||
    !/^[A-Za-z0-9!_.*'()=-]+(\/[A-Za-z0-9!_.*'()=-]+)*\/$/.test(prefix) ||
    prefix.split("/").some((s) => s === "." || s === "..")
  ) {
    fail(
      "prefix",
      e.prefix,
      "must be an S3 key prefix ending in / without a leading /, . or .. segments, e.g. analytics/",
    );
  }

  const spec: WindowSpec = {
    windowSeconds,
    time: time as WindowTime,
    watermarkSeconds,
    groupBy,
    aggregates,
    prefix,
  };
  // Managed Flink refuses property values over 2048 characters; find out now, not at deploy time.
  const longest = Math.max(...flinkSqlStatements(spec, LONGEST_TARGETS).map((st) => st.length));
  if (longest > MAX_PROPERTY_VALUE) {
    fail(
      "aggregates",
      aggregates.map((a) => a.as),
      `the generated Flink SQL (${longest} characters) exceeds Managed Flink's ${MAX_PROPERTY_VALUE}-character property values; use fewer aggregates or shorter names`,
    );
  }
  return spec;
}

/** The longest stream ARNs (128-character names) and region a stack can have. */
const LONGEST_TARGETS: FlinkTargets = {
  sourceStreamArn: `arn:aws-us-gov:kinesis:us-gov-west-1:123456789012:stream/${"s".repeat(128)}`,
  sinkStreamArn: `arn:aws-us-gov:kinesis:us-gov-west-1:123456789012:stream/${"w".repeat(128)}`,
  region: "us-gov-west-1",
};

// ---------------------------------------------------------------------------------------------
// Flink SQL

/**
 * Where the generated statements read from and write to (known once the stack is deployed). The
 * windows go out through the same Kinesis connector the source uses (Managed Flink takes one
 * jarfile, and that jar has no S3 file system); a Firehose stream delivers them to the bucket
 * under the spec's prefix (components/analytics/stream-analytics.ts).
 */
export interface FlinkTargets {
  /** The Kinesis Data Stream the topic rule puts telemetry on. */
  readonly sourceStreamArn: string;
  /** The Kinesis Data Stream the windows go to. */
  readonly sinkStreamArn: string;
  readonly region: string;
}

export const SOURCE_TABLE = "telemetry";
export const SINK_TABLE = "telemetry_windows";

const SQL_TYPES: Record<SchemaType, string> = {
  string: "STRING",
  integer: "BIGINT",
  number: "DOUBLE",
};

/** Backquoted identifier: `timestamp` is a reserved word in Flink SQL, so quote every column. */
function ident(name: string): string {
  return `\`${name.replace(/`/g, "``")}\``;
}

/** A SQL string literal. */
function lit(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

function options(entries: readonly (readonly [string, string])[]): string {
  return entries.map(([k, v]) => `  ${lit(k)} = ${lit(v)}`).join(",\n");
}

/** The telemetry fields the statements read: group keys, aggregated fields, and event time's `timestamp`. */
export function sourceFields(spec: WindowSpec): string[] {
  const used = new Set<string>([
    ...spec.groupBy,
    ...spec.aggregates.map((a) => a.field).filter((f) => f !== "*"),
  ]);
  if (spec.time === "event") used.add("timestamp");
  // Schema order keeps the DDL stable whatever order the spec lists things in.
  return FIELDS.filter((f) => used.has(f));
}

function aggregateSql(a: Aggregate): string {
  const arg = a.field === "*" ? "*" : ident(a.field);
  // Flink's AVG over BIGINT is integer division; average in DOUBLE as the local window does.
  const expr = a.fn === "AVG" ? `AVG(CAST(${arg} AS DOUBLE))` : `${a.fn}(${arg})`;
  return `${expr} AS ${ident(a.as)}`;
}

function aggregateType(a: Aggregate): string {
  if (a.fn === "COUNT") return "BIGINT";
  if (a.fn === "AVG") return "DOUBLE";
  return SQL_TYPES[TELEMETRY_FIELD_TYPES[a.field]];
}

/**
 * The Flink SQL statements, in the order they must run: the source table over the telemetry
 * stream, the sink table over the windows stream, and the INSERT that starts the job (the last
 * statement keeps it running).
 */
export function flinkSqlStatements(spec: WindowSpec, targets: FlinkTargets): string[] {
  const columns = sourceFields(spec).map(
    (f) => `  ${ident(f)} ${SQL_TYPES[TELEMETRY_FIELD_TYPES[f]]}`,
  );
  if (spec.time === "event") {
    columns.push(
      "  `ts` AS TO_TIMESTAMP_LTZ(`timestamp`, 3)",
      `  WATERMARK FOR \`ts\` AS \`ts\` - INTERVAL '${spec.watermarkSeconds}' SECOND`,
    );
  } else {
    columns.push("  `ts` AS PROCTIME()");
  }
  const source = [
    `CREATE TABLE ${SOURCE_TABLE} (`,
    columns.join(",\n"),
    ") WITH (",
    options([
      ["connector", "kinesis"],
      ["stream.arn", targets.sourceStreamArn],
      ["aws.region", targets.region],
      ["source.init.position", "LATEST"],
      ["format", "json"],
      // The rule forwards whatever a device published; one malformed record must not stop the job.
      ["json.ignore-parse-errors", "true"],
    ]),
    ")",
  ].join("\n");

  const sinkColumns = [
    "  `window_start` TIMESTAMP_LTZ(3)",
    "  `window_end` TIMESTAMP_LTZ(3)",
    ...spec.groupBy.map((g) => `  ${ident(g)} ${SQL_TYPES[TELEMETRY_FIELD_TYPES[g]]}`),
    ...spec.aggregates.map((a) => `  ${ident(a.as)} ${aggregateType(a)}`),
    `  ${ident(COUNT_COLUMN)} BIGINT`,
  ];
  const sink = [
    `CREATE TABLE ${SINK_TABLE} (`,
    sinkColumns.join(",\n"),
    ") WITH (",
    options([
      // One JSON record per window; the windows' Firehose stream appends the newline.
      ["connector", "kinesis"],
      ["stream.arn", targets.sinkStreamArn],
      ["aws.region", targets.region],
      ["format", "json"],
      ["json.timestamp-format.standard", "ISO-8601"],
    ]),
    ")",
  ].join("\n");

  const select = [
    // main.py sets the session time zone to UTC, so these casts keep the instants unchanged.
    "  CAST(window_start AS TIMESTAMP_LTZ(3)) AS `window_start`",
    "  CAST(window_end AS TIMESTAMP_LTZ(3)) AS `window_end`",
    ...spec.groupBy.map((g) => `  ${ident(g)}`),
    ...spec.aggregates.map((a) => `  ${aggregateSql(a)}`),
    `  COUNT(*) AS ${ident(COUNT_COLUMN)}`,
  ];
  const insert = [
    `INSERT INTO ${SINK_TABLE}`,
    "SELECT",
    select.join(",\n"),
    `FROM TABLE(TUMBLE(TABLE ${SOURCE_TABLE}, DESCRIPTOR(\`ts\`), INTERVAL '${spec.windowSeconds}' SECONDS))`,
    `GROUP BY ${["window_start", "window_end", ...spec.groupBy.map(ident)].join(", ")}`,
  ].join("\n");

  return [source, sink, insert];
}

// ---------------------------------------------------------------------------------------------
// Application properties (what main.py reads)

/** The property group holding the statements, one per key `statement.<n>` from 0, run in key order. */
export const SQL_PROPERTY_GROUP = "sql.statements";
/** Managed Flink's limits on one property group: 50 keys, values of at most 2048 characters. */
export const MAX_PROPERTY_VALUE = 2048;
export const MAX_PROPERTIES_PER_GROUP = 50;

/** The `sql.statements` property map for a list of statements; fails when Managed Flink would refuse it. */
export function sqlPropertyMap(statements: readonly string[]): Record<string, string> {
  if (statements.length === 0 || statements.length > MAX_PROPERTIES_PER_GROUP) {
    throw new Error(
      `Managed Flink takes 1 to ${MAX_PROPERTIES_PER_GROUP} properties per group; got ${statements.length} SQL statements`,
    );
  }
  const map: Record<string, string> = {};
  statements.forEach((s, i) => {
    if (s.length > MAX_PROPERTY_VALUE) {
      throw new Error(
        `SQL statement ${i} is ${s.length} characters; Managed Flink property values hold at most ${MAX_PROPERTY_VALUE}: use fewer aggregates or shorter column names`,
      );
    }
    map[`statement.${i}`] = s;
  });
  return map;
}
