// The open-files check of a fleet run: how many file descriptors a fleet needs (one per device's
// connection in the simulator, one more per device at an embedded broker in the same process, and
// a margin for everything else), read against this process's limit in /proc/self/limits, so that
// a fleet too large for it is refused before anything starts rather than failing part-way with
// EMFILE. Node raises its soft limit to the hard one as it starts: the hard limit is what counts.
import * as fs from "node:fs";
import { UserError } from "../core/errors";

/**
 * Descriptors a run needs besides its devices' connections: Node itself (its event loop, stdio,
 * the worker pool) and esbuild's compiler service (tools/ts-hook.cjs), about 25; the embedded
 * pipeline's delivery journals, lake objects and registry, about 10 more. Measured under tsx,
 * which kept up to about 80 files of its compile cache open on a first run: 33 open besides the
 * connections in a run of the prod stack, 108 at most; the margin keeps that room.
 */
export const FD_MARGIN = 128;

/** The soft and hard limits on open files; `Infinity` for unlimited. */
export interface OpenFilesLimit {
  readonly soft: number;
  readonly hard: number;
}

/** Descriptors `devices` connections need, with or without a broker in the same process. */
export function descriptorsNeeded(devices: number, embeddedBroker: boolean): number {
  return devices * (embeddedBroker ? 2 : 1) + FD_MARGIN;
}

/** The most devices that fit under `limit` (0 when not even the margin fits). */
export function devicesWithin(limit: number, embeddedBroker: boolean): number {
  return Math.max(0, Math.floor((limit - FD_MARGIN) / (embeddedBroker ? 2 : 1)));
}

function limitValue(v: string): number | undefined {
  if (v === "unlimited") return Infinity;
  return /^\d+$/.test(v) ? Number(v) : undefined;
}

/**
 * The "Max open files" line of Linux's /proc/<pid>/limits, e.g.
 * `Max open files            1024                 4096                 files`; undefined when the
 * text has no such line or it cannot be read.
 */
export function parseOpenFilesLimit(procLimits: string): OpenFilesLimit | undefined {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(procLimits);
  if (!m) return undefined;
  const soft = limitValue(m[1]);
  const hard = limitValue(m[2]);
  return soft === undefined || hard === undefined ? undefined : { soft, hard };
}

/** This process's limit on open files; undefined where there is no /proc (macOS, Windows). */
export function readOpenFilesLimit(
  platform: NodeJS.Platform = process.platform,
  read: () => string = () => fs.readFileSync("/proc/self/limits", "utf8"),
): OpenFilesLimit | undefined {
  if (platform !== "linux") return undefined;
  try {
    return parseOpenFilesLimit(read());
  } catch {
    return undefined; // no /proc mounted: skip the check rather than refuse every run
  }
}

/** A fleet larger than the open-files limit allows; the message is one line saying what to do. */
export class OpenFilesLimitError extends UserError {}

/**
 * Why `devices` connections cannot run under `limit`, as one line naming the devices, the
 * descriptors needed, the limit and what to do; undefined when they fit. `fewer` words the other
 * way out for the most devices that fit (by default `--devices N`); false leaves it out.
 */
export function openFilesShortfall(
  devices: number,
  embeddedBroker: boolean,
  limit: OpenFilesLimit,
  fewer: ((fits: number) => string) | false = (fits) => `use --devices ${fits} or fewer`,
): string | undefined {
  const needed = descriptorsNeeded(devices, embeddedBroker);
  if (needed <= limit.soft) return undefined;
  const per = embeddedBroker
    ? "a connection per device and its other end at the embedded broker"
    : "a connection per device";
  // Node raises its soft limit to the hard one as it starts, so the hard limit is what counts.
  const which =
    limit.soft === limit.hard
      ? "ulimit -Hn: Node raises its soft limit to the hard one"
      : "ulimit -n";
  const raise =
    needed <= limit.hard
      ? `run ulimit -n ${needed} and run again`
      : `raise the hard limit to ${needed} (ulimit -n ${needed} as root; nofile in /etc/security/limits.conf, LimitNOFILE= for a service, docker run --ulimit nofile=${needed}) and run again`;
  const fits = devicesWithin(limit.soft, embeddedBroker);
  return (
    `${devices} device(s) need ${needed} open files (${per}, plus ${FD_MARGIN} for Node, the journal and logs) ` +
    `but this process may open only ${limit.soft} (${which}); ${raise}${fits > 0 && fewer ? `, or ${fewer(fits)}` : ""}`
  );
}

/**
 * Throws an {@link OpenFilesLimitError} when `devices` connections do not fit under this process's
 * open-files limit; does nothing where the limit cannot be read.
 */
export function checkOpenFilesLimit(
  devices: number,
  embeddedBroker: boolean,
  read: () => OpenFilesLimit | undefined = readOpenFilesLimit,
): void {
  const limit = read();
  if (limit === undefined) return;
  const shortfall = openFilesShortfall(devices, embeddedBroker, limit);
  if (shortfall !== undefined) throw new OpenFilesLimitError(shortfall);
}
