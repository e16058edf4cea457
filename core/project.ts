// The project's identity: its Pulumi name (the namespace of every config key of ours) and where
// the repository lives on disk.
import * as path from "node:path";

/** The Pulumi project name, and so the namespace of every key of ours in a stack file. */
export const PROJECT = "iot-pipeline";

/** The repository root, where Pulumi.yaml lives. */
export const PROJECT_DIR = path.resolve(__dirname, "..");

/** Where the local pipeline, the simulator and the query command keep their state by default: git-ignored `.local/`. */
export const DEFAULT_STATE_DIR = path.join(PROJECT_DIR, ".local");

/**
 * The stacks treated as dev, where the tutorial's shortcuts are tolerated: the pack's policies
 * take it as their `devStacks` default, and `pulumi up` relaxes its readiness checks there.
 */
export const DEFAULT_DEV_STACKS: readonly string[] = ["dev"];

/**
 * Node's flags that run the project's TypeScript the way its npm scripts do (`npm run simulate`,
 * `bench`, `check`, `query`…): tools/ts-hook.cjs, esbuild's compile of each file as it is
 * required. Every process the project starts from a .ts file, and every test that starts one as
 * a user's command would, uses these (tests/architecture/run-time-loader.test.ts holds the
 * scripts to the same hook).
 */
export const TS_NODE_FLAGS: readonly string[] = [
  "--require",
  path.join(PROJECT_DIR, "tools", "ts-hook.cjs"),
];
