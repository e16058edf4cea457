// What the pipeline process can hold, part by part, computed from a stack's config and the bounds
// the broker and the delivery stream enforce: the one computation behind the memory ceiling that
// docs/reliability.md quotes per stack (tests/local/memory-budget.test.ts holds the table to it)
// and that tests/local/memory-ceiling.test.ts measures the attacks against.
import type { StackConfig } from "../../core/stack-config";
import { DEFAULT_CONNECTION_LIMITS, MAX_READ_BYTES } from "../broker/connection-guard";
import { DEFAULT_MAX_PENDING_OBJECTS, DEFAULT_MAX_QUEUED_BYTES } from "../delivery";
import { DEFAULT_SESSION_LIMITS } from "../broker/offline-sessions";
import { DEFAULT_UNACKNOWLEDGED_LIMITS } from "../broker/publish-acks";
import { RETAINED_DEFAULTS } from "../broker/retained";

const MiB = 1024 * 1024;

/** Node, aedes, the policy, the rule and the window at start (measured: 101 MiB). */
export const PROCESS_MIB = 100;

/**
 * One open connection: TLS, aedes' client and read buffers (65 KiB, measured over 1,000 idle TLS
 * connections), what a subscriber that keeps up may have waiting (128 KiB), and the publishes of
 * one read past its bound on waiting publishes (its MAX_READ_BYTES buffer, about four times that
 * in memory).
 */
export const CONNECTION_BYTES = 65 * 1024 + 128 * 1024 + 4 * MAX_READ_BYTES;

/**
 * Converting one buffer to Parquet (DuckDB, one thread) takes about this many times the buffer
 * (measured: see docs/reliability.md, Memory ceiling).
 */
export const PARQUET_CONVERSION_FACTOR = 2;

export interface BudgetPart {
  readonly part: string;
  readonly bytes: number;
}

export interface MemoryBudget {
  readonly stack: string;
  /** The open connections the budget allows for. */
  readonly connections: number;
  readonly parts: readonly BudgetPart[];
  readonly bytes: number;
}

/**
 * The connections a stack's ceiling is stated for: its fleet and 64 more (consoles, subscribers,
 * an attacker's connections), at least 256. The broker admits up to 4,096 (or twice the fleet):
 * each connection past the stated number adds CONNECTION_BYTES.
 */
export function budgetConnections(config: Pick<StackConfig, "things">): number {
  return Math.max(256, config.things.length + 64);
}

/** The memory ceiling of a stack's pipeline process, part by part. */
export function memoryBudget(
  config: Pick<StackConfig, "stack" | "things" | "delivery" | "lake">,
  connections = budgetConnections(config),
): MemoryBudget {
  const buffer = config.delivery.bufferSizeMiB * MiB;
  const converts = config.lake.format === "parquet" || config.lake.partitionByThing;
  const parts: BudgetPart[] = [
    { part: "the process itself (Node, aedes, policy, rule, window)", bytes: PROCESS_MIB * MiB },
    { part: `${connections} open connections`, bytes: connections * CONNECTION_BYTES },
    {
      part: "partly received large packets, all clients",
      bytes: DEFAULT_CONNECTION_LIMITS.maxBufferedPacketBytes,
    },
    {
      part: "messages waiting for subscribers, all of them",
      bytes: DEFAULT_CONNECTION_LIMITS.maxQueuedBytes,
    },
    {
      part: "publishes waiting for their PUBACK or the journal, all connections",
      bytes: DEFAULT_UNACKNOWLEDGED_LIMITS.totalBytes,
    },
    {
      part: "records waiting for the journal or a flushed buffer (a full disk, slow objects)",
      bytes: DEFAULT_MAX_QUEUED_BYTES,
    },
    {
      part: `delivery buffers: ${DEFAULT_MAX_PENDING_OBJECTS} flushed and 1 filling, of ${config.delivery.bufferSizeMiB} MiB`,
      bytes: (DEFAULT_MAX_PENDING_OBJECTS + 1) * buffer,
    },
    ...(converts
      ? [
          {
            part: "converting one buffer to the lake's layout (Parquet, partitions)",
            bytes: PARQUET_CONVERSION_FACTOR * buffer,
          },
        ]
      : []),
    {
      part: "messages queued for persistent sessions",
      bytes: DEFAULT_SESSION_LIMITS.maxQueuedBytes,
    },
    { part: "retained messages", bytes: RETAINED_DEFAULTS.maxBytes },
  ];
  return {
    stack: config.stack,
    connections,
    parts,
    bytes: parts.reduce((n, p) => n + p.bytes, 0),
  };
}

/** A budget's total in whole MiB, rounded up. */
export function ceilingMiB(budget: MemoryBudget): number {
  return Math.ceil(budget.bytes / MiB);
}

const mib = (bytes: number) => {
  const v = bytes / MiB;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
};

/**
 * The budgets of several stacks as the Markdown table docs/reliability.md shows: one row a part,
 * one column a stack, the ceiling last.
 */
export function budgetTable(budgets: readonly MemoryBudget[]): string {
  const names = new Set<string>();
  const longest = [...budgets].sort((a, b) => b.parts.length - a.parts.length);
  for (const b of longest) for (const p of b.parts) names.add(partName(p.part));
  const row = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const lines = [
    row(["part (MiB)", ...budgets.map((b) => b.stack)]),
    row(["---", ...budgets.map(() => "---:")]),
  ];
  for (const name of names) {
    lines.push(
      row([
        name,
        ...budgets.map((b) => {
          const p = b.parts.find((x) => partName(x.part) === name);
          return p === undefined ? "—" : mib(p.bytes);
        }),
      ]),
    );
  }
  lines.push(
    row([
      "**ceiling**",
      ...budgets.map((b) => `**${ceilingMiB(b)}** (${b.connections} connections)`),
    ]),
  );
  return lines.join("\n");
}

/** A part's name without the figures that differ by stack (connections, buffer size). */
function partName(part: string): string {
  return part
    .replace(/^\d+ open connections$/, `open connections (${CONNECTION_BYTES / 1024} KiB each)`)
    .replace(/, of \d+ MiB$/, "");
}
