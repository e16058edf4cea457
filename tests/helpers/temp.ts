// Temporary folders for tests, and the leftovers a crash-safe writer must not leave in them.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const made: string[] = [];
process.once("exit", () => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

/** A fresh temporary folder, removed when the test process exits. */
export function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `iot-${prefix}-`));
  made.push(d);
  return d;
}

/** Every `.tmp` file under `root`: what an atomic write leaves behind when it is cut short. */
export function tmpFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (e.name.endsWith(".tmp")) out.push(path.join(d, e.name));
    }
  };
  walk(root);
  return out;
}
