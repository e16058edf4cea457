// The shape of a benchmark run (what bench/results/*.json holds) and its rendering as a table.
import * as os from "node:os";
import { execFileSync } from "node:child_process";
import { round } from "./stats";

export const FIGURE_IDS = [
  "publisher",
  "fleet",
  "pipeline",
  "program",
  "rule-sql",
  "policy",
  "provisioning",
  "query",
  "soak",
  "flood",
] as const;
export type FigureId = (typeof FIGURE_IDS)[number];

export const FIGURE_TITLES: Record<FigureId, string> = {
  publisher: "1. Publisher throughput on one connection",
  fleet: "2. Fleet of mutual-TLS devices",
  pipeline: "3. Local pipeline end to end",
  program: "4. The program at fleet scale",
  "rule-sql": "5. IoT SQL rule evaluation on the hot path",
  policy: "6. IoT policy decisions",
  provisioning: "7. Fleet provisioning by claim",
  query: "8. npm run query over a local lake",
  soak: "9. Soak: the prod fleet under attack, with a kill -9",
  flood: "10. Floods on prod's Parquet lake, with a canary and a kill -9",
};

/** One measured number. `key` is stable across runs (the JSON's contract); `label` is for people. */
export interface Metric {
  readonly key: string;
  readonly label: string;
  readonly value: number;
  readonly unit: string;
}

/** A target from the issue, checked against one metric of the same figure. */
export interface Target {
  readonly label: string;
  readonly metric: string;
  readonly op: ">=" | "<" | "<=" | "==";
  readonly threshold: number;
  /** The metric's value; null when the metric was not measured in this run. */
  readonly value: number | null;
  /** False when missed, and when not measured: a target can only be met by a measured value. */
  readonly met: boolean;
  /** Why the metric was not measured (the table then says "not measured", not "missed"). */
  readonly notMeasured?: string;
}

export interface FigureResult {
  readonly id: FigureId;
  readonly title: string;
  /** "not measured" carries the reason; its metrics are empty. */
  readonly status: "measured" | "not measured";
  readonly reason?: string;
  /** What was run: device counts, phase lengths, QoS, buffer sizes. */
  readonly params: Readonly<Record<string, string | number | boolean>>;
  readonly metrics: readonly Metric[];
  readonly targets: readonly Target[];
  /** Observations a reader needs to trust the numbers (what bounds memory, what the baseline did). */
  readonly notes: readonly string[];
  readonly seconds: number;
}

export interface MachineInfo {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly node: string;
  readonly platform: string;
  readonly totalMemoryGiB: number;
  /** The soft limit of open files of the benchmark's shell (a fleet needs a descriptor per socket). */
  readonly openFilesLimit: string;
  /** 1-minute load average when the run started: how busy the shared machine already was. */
  readonly loadAverage: number;
}

export interface BenchRun {
  readonly date: string;
  readonly mode: "full" | "quick";
  readonly machine: MachineInfo;
  readonly figures: readonly FigureResult[];
  readonly seconds: number;
}

export function machineInfo(): MachineInfo {
  let openFilesLimit = "unknown";
  try {
    openFilesLimit = execFileSync("sh", ["-c", "ulimit -n"], { encoding: "utf8" }).trim();
  } catch {
    // Not a POSIX shell: leave it unknown rather than fail the run.
  }
  const cpus = os.cpus();
  return {
    cpus: os.availableParallelism(),
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    totalMemoryGiB: round(os.totalmem() / 2 ** 30, 3),
    openFilesLimit,
    loadAverage: round(os.loadavg()[0], 3),
  };
}

/** Builds a target record, deciding whether the value meets it. */
export function target(
  label: string,
  metric: string,
  op: Target["op"],
  threshold: number,
  value: number,
): Target {
  const met =
    op === ">="
      ? value >= threshold
      : op === "<"
        ? value < threshold
        : op === "<="
          ? value <= threshold
          : value === threshold;
  return { label, metric, op, threshold, value, met };
}

/** A target whose metric this run could not measure (a baseline that is not installed). */
export function unmeasuredTarget(
  label: string,
  metric: string,
  op: Target["op"],
  threshold: number,
  reason: string,
): Target {
  return { label, metric, op, threshold, value: null, met: false, notMeasured: reason };
}

/** A target's value and result as the tables show them. */
function targetCells(t: Target, missed: string): [string, string] {
  if (t.value === null || t.notMeasured !== undefined) return ["-", "not measured"];
  return [String(round(t.value, 3)), t.met ? "met" : missed];
}

/** A figure that could not be run, with the one-line reason shown in the table and the docs. */
export function notMeasured(
  id: FigureId,
  title: string,
  reason: string,
  seconds = 0,
): FigureResult {
  return {
    id,
    title,
    status: "not measured",
    reason,
    params: {},
    metrics: [],
    targets: [],
    notes: [],
    seconds,
  };
}

function formatValue(value: number, unit: string): string {
  const v = round(value, 3);
  const text = Math.abs(v) >= 1000 ? Math.round(v).toLocaleString("en-US") : String(v);
  return unit === "" ? text : `${text} ${unit}`;
}

function pad(cells: string[][]): string {
  const widths = cells[0].map((_, i) => Math.max(...cells.map((row) => row[i].length)));
  return cells.map((row) => row.map((c, i) => c.padEnd(widths[i])).join("  ")).join("\n");
}

/** The run as a plain-text table: one row per metric, then the targets with met/missed. */
export function renderTable(run: BenchRun): string {
  const m = run.machine;
  const lines: string[] = [
    `iot-pipeline bench (${run.mode}) ${run.date}`,
    `${m.cpus} CPUs (${m.cpuModel}), Node ${m.node}, ${m.totalMemoryGiB} GiB, ulimit -n ${m.openFilesLimit}, load ${m.loadAverage} at start`,
    "",
  ];
  const rows: string[][] = [["figure", "metric", "value"]];
  for (const f of run.figures) {
    if (f.status !== "measured") {
      rows.push([f.id, "not measured", f.reason ?? ""]);
      continue;
    }
    for (const metric of f.metrics) {
      rows.push([f.id, metric.label, formatValue(metric.value, metric.unit)]);
    }
  }
  lines.push(pad(rows), "");
  const targets: string[][] = [["figure", "target", "value", "result"]];
  for (const f of run.figures) {
    for (const t of f.targets) {
      targets.push([f.id, `${t.label} ${t.op} ${t.threshold}`, ...targetCells(t, "MISSED")]);
    }
  }
  if (targets.length > 1) lines.push(pad(targets));
  return lines.join("\n");
}

/** The run as the Markdown table docs/benchmarks.md shows. */
export function renderMarkdown(run: BenchRun): string {
  const out: string[] = ["| figure | metric | value |", "|---|---|---|"];
  for (const f of run.figures) {
    if (f.status !== "measured") {
      out.push(`| ${f.id} | not measured | ${f.reason ?? ""} |`);
      continue;
    }
    for (const metric of f.metrics) {
      out.push(`| ${f.id} | ${metric.label} | ${formatValue(metric.value, metric.unit)} |`);
    }
  }
  out.push("", "| figure | target | value | result |", "|---|---|---|---|");
  for (const f of run.figures) {
    for (const t of f.targets) {
      const [value, result] = targetCells(t, "**missed**");
      out.push(`| ${f.id} | ${t.label} ${t.op} ${t.threshold} | ${value} | ${result} |`);
    }
  }
  return out.join("\n");
}
