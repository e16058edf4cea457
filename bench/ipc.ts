// Starting the benchmark's helper processes (TypeScript, through the project's run-time loader,
// tools/ts-hook.cjs, as `npm run simulate` runs) and waiting for their replies.
import { fork, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { PROJECT_DIR, TS_NODE_FLAGS } from "../core/project";

/**
 * Node's flags for a benchmark process: the project's loader ({@link TS_NODE_FLAGS}), and with BENCH_CPU_PROF=DIR a V8 CPU profile written
 * there (open it in Chrome's DevTools) — how the "why" of a missed target in docs/benchmarks.md
 * was found.
 */
export function tsExecArgv(): string[] {
  const profileDir = process.env.BENCH_CPU_PROF;
  return [
    ...TS_NODE_FLAGS,
    ...(profileDir
      ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(PROJECT_DIR, profileDir)}`]
      : []),
  ];
}

/**
 * Forks `bench/<file>` with {@link tsExecArgv} and any further Node flags; its stderr goes to ours
 * so failures are visible.
 */
export function forkTs(
  file: string,
  args: readonly string[],
  nodeFlags: readonly string[] = [],
): ChildProcess {
  return fork(path.join(__dirname, file), [...args], {
    cwd: PROJECT_DIR,
    execArgv: [...tsExecArgv(), ...nodeFlags],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
}

/** The child's next IPC message of this type; rejects if it exits first or takes too long. */
export function nextMessage<T extends { type: string }>(
  child: ChildProcess,
  type: T["type"],
  timeoutMs = 120_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: unknown): void => {
      if (typeof m === "object" && m !== null && (m as { type?: unknown }).type === type) {
        cleanup();
        resolve(m as T);
      }
    };
    const onExit = (code: number | null, signal: string | null): void => {
      cleanup();
      reject(new Error(`helper process ended (${signal ?? `exit ${code}`}) before "${type}"`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`helper process sent no "${type}" within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off("message", onMessage);
      child.off("exit", onExit);
    };
    child.on("message", onMessage);
    child.on("exit", onExit);
  });
}

/** Lets a helper that is finishing exit on its own (writing its profile), then kills it. */
export async function reap(child: ChildProcess | undefined, graceMs = 5_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve();
    }, graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
