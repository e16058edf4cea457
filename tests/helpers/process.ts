// Child processes in tests: a command's exit code and its whole output, gathered without blocking
// the event loop (a broker under test may run in this process).
import type { ChildProcessByStdio } from "node:child_process";
import type { Readable } from "node:stream";

/** How a child process ended, and everything it wrote. */
export interface Outcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Collects a child's stdout and stderr until it closes. */
export function outcomeOf(child: ChildProcessByStdio<null, Readable, Readable>): Promise<Outcome> {
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}
