// `npm run query -- "<SQL>"` / `npm run query -- --saved <name>`: SQL over the local lake that
// `npm run simulate` delivered, with the Glue table's name and columns (local/lake/lake-query.ts), or
// one of the saved Athena queries unchanged. Prints a table (or JSON lines); one-line errors, exit 2.
import * as path from "node:path";
import { parseArgs } from "node:util";
import { UsageError, UserError } from "../core/errors";
import { LAKE_TABLE } from "../core/lake";
import { loadPlan } from "../core/plan";
import { DEFAULT_STATE_DIR } from "../core/project";
import { runCommand } from "../core/command";

const USAGE = `Usage: npm run query -- [options] "<SQL>"
       npm run query -- [options] --saved NAME
       npm run query -- --list [--stack NAME]

Runs SQL over the local lake (what npm run simulate delivered to the stack's local bucket) with
an embedded DuckDB. The table is ${LAKE_TABLE} (also <database>.${LAKE_TABLE}), with the columns and
partitions of the stack's Glue table; the saved Athena queries run unchanged.

  --stack NAME        stack whose local bucket and table to read (default dev)
  --saved NAME        run a saved query (see --list)
  --list              list the saved queries and their SQL
  --format table|json output as an aligned table (default) or one JSON object per row
  --max-rows N        print at most N rows (default 1000)
  --timeout S         stop a query running longer than S seconds (default 300)
  --state-dir DIR     the state folder npm run simulate used (default .local)
  -h, --help          this text

Examples
  npm run query -- --saved window-min-max
  npm run query -- "SELECT thing, COUNT(*) AS readings FROM telemetry GROUP BY thing"
`;

export interface QueryOptions {
  readonly stack: string;
  readonly sql?: string;
  readonly saved?: string;
  readonly list: boolean;
  readonly format: "table" | "json";
  readonly maxRows: number;
  readonly timeoutS: number;
  readonly stateDir: string;
}

function whole(name: string, v: string | undefined, fallback: number, min: number, max: number) {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || n < min || n > max) {
    throw new UsageError(`--${name} ${v}: expected a whole number from ${min} to ${max}`);
  }
  return n;
}

export function parseQueryArgs(argv: readonly string[]): QueryOptions | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        stack: { type: "string" },
        saved: { type: "string" },
        list: { type: "boolean" },
        format: { type: "string" },
        "max-rows": { type: "string" },
        timeout: { type: "string" },
        "state-dir": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    const first = (e as Error).message.split(/\n|\. /)[0].replace(/\.$/, "");
    throw new UsageError(`${first}; see --help`);
  }
  const { values: v, positionals } = parsed;
  if (v.help === true) return "help";
  if (positionals.length > 1) {
    throw new UsageError(
      `expected one SQL statement, got ${positionals.length} arguments; quote the SQL: npm run query -- "SELECT ..."`,
    );
  }
  const sql = positionals[0];
  const list = v.list === true;
  if (!list && (sql === undefined) === (v.saved === undefined)) {
    throw new UsageError(
      sql === undefined
        ? "give a SQL statement or --saved NAME; e.g. npm run query -- --saved window-min-max (see --help)"
        : "give either a SQL statement or --saved NAME, not both",
    );
  }
  const format = v.format ?? "table";
  if (format !== "table" && format !== "json") {
    throw new UsageError(`--format ${format}: expected table or json`);
  }
  return {
    stack: v.stack ?? "dev",
    sql,
    saved: v.saved,
    list,
    format,
    maxRows: whole("max-rows", v["max-rows"], 1000, 1, 1_000_000),
    timeoutS: whole("timeout", v.timeout, 300, 1, 86_400),
    stateDir: path.resolve(v["state-dir"] ?? DEFAULT_STATE_DIR),
  };
}

/** An aligned text table. */
export function formatTable(
  columns: readonly string[],
  rows: readonly (readonly unknown[])[],
): string[] {
  const cell = (v: unknown) =>
    v === null || v === undefined ? "NULL" : typeof v === "string" ? v : JSON.stringify(v);
  const text = rows.map((r) => r.map(cell));
  // A reduce, not Math.max(...rows): --max-rows allows more rows than a call takes arguments.
  const widths = columns.map((c, i) => text.reduce((w, r) => Math.max(w, r[i].length), c.length));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join("  ")
      .trimEnd();
  return [line(columns), line(widths.map((w) => "-".repeat(w))), ...text.map(line)];
}

/** Runs the command; resolves with the exit code. */
export async function runQuery(
  opts: QueryOptions,
  out: (line: string) => void,
  err: (line: string) => void,
): Promise<number> {
  const plan = loadPlan(opts.stack);
  const config = plan.config;
  const saved = plan.lake.savedQueries;
  if (opts.list) {
    for (const q of saved) {
      out(`-- ${q.name}: ${q.description}`);
      out(`${q.sql};`);
      out("");
    }
    return 0;
  }
  let sql = opts.sql;
  if (opts.saved !== undefined) {
    const q = saved.find((s) => s.name === opts.saved);
    if (q === undefined) {
      throw new UsageError(
        `--saved ${opts.saved}: no such saved query; use one of ${saved.map((s) => s.name).join(", ")}`,
      );
    }
    sql = q.sql;
  }
  const { LocalLake } = await import("../local/lake/lake-query");
  const lake = await LocalLake.open(plan, { stateDir: opts.stateDir });
  try {
    if (lake.objects === 0) {
      err(
        `query: the local lake of stack ${config.stack} is empty (no objects under the table's folder in ${opts.stateDir}); run npm run simulate -- --stack ${config.stack} first`,
      );
    }
    const started = performance.now();
    const result = await lake.query(sql as string, {
      maxRows: opts.maxRows + 1,
      timeoutMs: opts.timeoutS * 1000,
    });
    const ms = performance.now() - started;
    const shown = result.rows.slice(0, opts.maxRows);
    if (opts.format === "json") {
      for (const r of shown)
        out(JSON.stringify(Object.fromEntries(result.columns.map((c, i) => [c, r[i]]))));
    } else {
      for (const l of formatTable(result.columns, shown)) out(l);
      out(
        `(${shown.length}${result.rows.length > opts.maxRows ? "+" : ""} row(s), ${result.objects} object(s) of ${plan.lake.databaseName}.${plan.lake.tableName}, ${ms.toFixed(0)} ms)`,
      );
    }
    return 0;
  } finally {
    lake.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const err = (l: string) => process.stderr.write(`${l}\n`);
  try {
    const opts = parseQueryArgs(argv);
    if (opts === "help") {
      process.stdout.write(USAGE);
      return 0;
    }
    return await runQuery(opts, (l) => process.stdout.write(`${l}\n`), err);
  } catch (e) {
    if (e instanceof UserError) {
      err(`query: ${e.message}`);
      return e.exitCode;
    }
    throw e;
  }
}

if (require.main === module) runCommand("query", () => main(process.argv.slice(2)));
