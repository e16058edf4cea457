// The pre-provisioning hook's code as Lambda runs it: functions/pre-provisioning-hook.ts and the
// core module it imports, bundled by esbuild into one CommonJS file when the program runs.
//
// Why at program run: `pulumi up` needs the code and the user runs no build step, and a checked-in
// compiled copy could drift from its source. esbuild (a dependency, like tsx that uses it) bundles
// the ~20 KB in milliseconds, and its output for the same sources and options is byte-identical,
// so the archive's hash, and the function, change only when the code does.
import * as path from "node:path";
import { buildSync } from "esbuild";
import { PROJECT_DIR } from "../../core/project";

/** The handler's source file. */
export const HOOK_SOURCE = path.join(PROJECT_DIR, "functions", "pre-provisioning-hook.ts");
/** The Lambda runtime the bundle targets. */
export const HOOK_RUNTIME = "nodejs22.x";
/** `index.handler`: the bundle is the archive's index.js. */
export const HOOK_HANDLER = "index.handler";

let bundled: string | undefined;

/** The bundle's text (cached: a program run builds it once). */
export function hookBundle(): string {
  if (bundled === undefined) {
    const result = buildSync({
      entryPoints: [HOOK_SOURCE],
      // Paths in the bundle's comments are relative to this, so the bundle is the same anywhere.
      absWorkingDir: PROJECT_DIR,
      bundle: true,
      platform: "node",
      format: "cjs",
      target: "node22",
      write: false,
      legalComments: "none",
      // The Node.js runtime provides the AWS SDK for JavaScript v3: the hook uses it, not a copy.
      external: ["@aws-sdk/*"],
      logLevel: "silent",
    });
    const out = result.outputFiles[0];
    if (out === undefined) throw new Error(`esbuild produced no bundle of ${HOOK_SOURCE}`);
    bundled = out.text;
  }
  return bundled;
}
