// A local pipeline in a process of its own (tests/local/fixtures/pipeline-child.ts), for the suites
// that kill it with SIGKILL or measure its memory apart from the test's.
import { spawn, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import { TS_NODE_FLAGS } from "../../core/project";

const FIXTURE = path.join(__dirname, "..", "local", "fixtures", "pipeline-child.ts");

export interface PipelineChild {
  readonly child: ChildProcess;
  /** The broker's `mqtts://` address. */
  readonly url: string;
}

/**
 * Starts the fixture with `args` (stack, state folder, layout, flags); resolves once its broker
 * listens. `stderr: "pipe"` keeps what it wrote for the error if it exits first; "inherit" shows it
 * as it comes (a flood's log would otherwise grow in the test's memory).
 */
export function startPipelineChild(
  args: readonly string[],
  stderr: "pipe" | "inherit" = "pipe",
): Promise<PipelineChild> {
  const child = spawn(process.execPath, [...TS_NODE_FLAGS, FIXTURE, ...args], {
    stdio: ["ignore", "pipe", stderr],
  });
  let written = "";
  child.stderr?.on("data", (d: Buffer) => (written += d.toString()));
  return new Promise<PipelineChild>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /^url (\S+)$/m.exec(out);
      if (m) resolve({ child, url: m[1] });
    });
    child.once("exit", (code) =>
      reject(new Error(`pipeline child exited ${code}${written === "" ? "" : `: ${written}`}`)),
    );
  });
}
