// Measurement helpers shared by the benchmark figures: percentiles, rates and peak memory.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";

/** The p-th percentile (0-100) of the samples by nearest rank; NaN when there are none. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** The middle sample (the upper of the two middle ones for an even count); the rounds are odd. */
export function median(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Milliseconds since an arbitrary origin, monotonic and sub-millisecond. */
export function nowMs(): number {
  return performance.now();
}

/**
 * Peak resident set size of a process in MiB, from the kernel's high-water mark (VmHWM), so a
 * short spike between two samples is not missed. `pid` defaults to this process.
 */
export function peakRssMiB(pid: number | "self" = "self"): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
  if (!m) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}

/** Current resident set size of a process in MiB (VmRSS). */
export function rssMiB(pid: number | "self" = "self"): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) / 1024;
}

let clockTicks: number | undefined;

/** The kernel's clock ticks per second, the unit of /proc/<pid>/stat's CPU times. */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    } catch {
      clockTicks = Number.NaN;
    }
    // USER_HZ is 100 on every Linux architecture Node runs on; getconf only confirms it.
    if (!Number.isFinite(clockTicks) || clockTicks <= 0) clockTicks = 100;
  }
  return clockTicks;
}

/**
 * CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat: how much of a core
 * a server used in a phase, whether it is Node or not.
 */
export function cpuSeconds(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name, in parentheses, may hold spaces: the fields are counted after its ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 (utime) and 15 (stime) of proc(5), counted from the pid as 1.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) {
    throw new Error(`no CPU times in /proc/${pid}/stat`);
  }
  return (utime + stime) / ticksPerSecond();
}

/** Rounds to a number of significant digits that a table can show without lying about precision. */
export function round(value: number, digits = 3): number {
  if (!Number.isFinite(value) || value === 0) return value;
  const magnitude = Math.floor(Math.log10(Math.abs(value)));
  const factor = 10 ** Math.max(0, digits - 1 - magnitude);
  return Math.round(value * factor) / factor;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `fn` over `items` with at most `limit` promises pending at once. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  async function worker(): Promise<void> {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
