// The code of the stack's Lambda functions as Lambda runs it: a TypeScript handler under
// functions/ and the core modules it imports, bundled by esbuild into one CommonJS file when the
// program runs.
//
// Why at program run: `pulumi up` needs the code and the user runs no build step, and a checked-in
// compiled copy could drift from its source. esbuild (a dependency, like tsx that uses it) bundles
// a handler in milliseconds, and its output for the same sources and options is byte-identical,
// so the archive's hash, and the function, change only when the code does.
import * as path from "node:path";
import { buildSync } from "esbuild";
import { PROJECT_DIR } from "../../core/project";

/** The Lambda runtime every bundle targets. */
export const FUNCTION_RUNTIME = "nodejs22.x";
/** `index.handler`: the bundle is the archive's index.js. */
export const FUNCTION_HANDLER = "index.handler";

const bundles = new Map<string, string>();

/**
 * The bundle's text for a handler file relative to the project (`functions/<name>.ts`), cached:
 * a program run builds each once.
 */
export function functionBundle(source: string): string {
  const entry = path.resolve(PROJECT_DIR, source);
  const cached = bundles.get(entry);
  if (cached !== undefined) return cached;
  const result = buildSync({
    entryPoints: [entry],
    // Paths in the bundle's comments are relative to this, so the bundle is the same anywhere.
    absWorkingDir: PROJECT_DIR,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node22",
    write: false,
    legalComments: "none",
    // The Node.js runtime provides the AWS SDK for JavaScript v3: functions use it, not a copy.
    external: ["@aws-sdk/*"],
    logLevel: "silent",
  });
  const out = result.outputFiles[0];
  if (out === undefined) throw new Error(`esbuild produced no bundle of ${entry}`);
  bundles.set(entry, out.text);
  return out.text;
}
