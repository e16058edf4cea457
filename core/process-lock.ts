// One process lock for the local state: a pid file that appears whole (written aside, then
// hard-linked into place) and is stale exactly when the process it names no longer runs. The
// delivery journal takes it once and refuses a second writer at once; the certificate folder waits
// for it, so that two processes starting together (a simulate and a benchmark) do not each mint a CA.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";

/** True when a process with this pid runs (EPERM: it runs, as another user). */
export function isProcessRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** What link() says on a file system that has no hard links. */
const NO_LINKS = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS"]);

/** The lock could not be taken: `owner` runs and holds it. */
export interface LockHeld {
  readonly owner: number;
}

/**
 * Takes `file` for this process, or returns who holds it. A lock naming a pid that no longer runs
 * (or this process's own pid: a process that had it before a restart), or holding no pid at all, is
 * stale and taken over. Throws only for what the file system refuses (a full disk, permissions).
 */
export async function tryLock(file: string): Promise<LockHeld | undefined> {
  const mine = String(process.pid);
  for (;;) {
    const tmp = `${file}.${mine}.${randomBytes(4).toString("hex")}.tmp`;
    try {
      await fs.writeFile(tmp, mine, { flag: "wx" });
      await fs.link(tmp, file).catch(async (e: unknown) => {
        // A file system without hard links: create the lock in place (not atomic, but exclusive).
        if (!NO_LINKS.has((e as NodeJS.ErrnoException).code ?? "")) throw e;
        await fs.writeFile(file, mine, { flag: "wx" });
      });
      return undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    } finally {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
    }
    const text = await fs.readFile(file, "utf8").catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    });
    if (text === undefined) continue; // released meanwhile: try again
    const owner = /^\d+$/.test(text.trim()) ? Number(text) : undefined;
    if (owner !== undefined && owner !== process.pid && isProcessRunning(owner)) return { owner };
    // Stale. Another starting process may be taking it over at this very moment: only one rename
    // of the same file succeeds, and the loser finds the winner's live lock next time round.
    const aside = `${file}.${mine}.${randomBytes(4).toString("hex")}.stale`;
    try {
      await fs.rename(file, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw e;
    }
    const moved = await fs.readFile(aside, "utf8").catch(() => text);
    if (moved !== text) {
      // What was moved is a newer, live lock written after the read: put it back.
      await fs.link(aside, file).catch(() => undefined);
    }
    await fs.rm(aside, { force: true }).catch(() => undefined);
  }
}

/** Removes the lock if this process holds it. */
export async function releaseLock(file: string): Promise<void> {
  const owner = await fs.readFile(file, "utf8").catch(() => "");
  if (owner === String(process.pid)) await fs.rm(file, { force: true });
}

/** Callers of withLock in this process, by lock file: the pid file cannot tell them apart. */
const inProcess = new Map<string, Promise<unknown>>();

export interface WaitOptions {
  /** How long to wait for another process's lock before `busy` is thrown. */
  readonly timeoutMs: number;
  /** How often to look again. @default 100 */
  readonly pollMs?: number;
  /** The error to throw when the lock is still held after timeoutMs. */
  readonly busy: (held: LockHeld) => Error;
}

/** Runs `fn` holding the lock, waiting for it (callers in this process take turns). */
export async function withLock<T>(
  file: string,
  wait: WaitOptions,
  fn: () => Promise<T>,
): Promise<T> {
  const before = inProcess.get(file) ?? Promise.resolve();
  const run = before
    .catch(() => undefined)
    .then(async () => {
      const deadline = Date.now() + wait.timeoutMs;
      for (;;) {
        const held = await tryLock(file);
        if (held === undefined) break;
        if (Date.now() >= deadline) throw wait.busy(held);
        await new Promise((r) => setTimeout(r, wait.pollMs ?? 100));
      }
      try {
        return await fn();
      } finally {
        await releaseLock(file).catch(() => undefined);
      }
    });
  inProcess.set(file, run);
  try {
    return await run;
  } finally {
    if (inProcess.get(file) === run) inProcess.delete(file);
  }
}
