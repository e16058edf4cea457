// `npm run check -- --stack <name> [--policy-pack-config FILE] [-c key=value]...`: the policy half
// of `pulumi preview --policy-pack policypack`, offline: the program built under mocks from
// Pulumi.<name>.yaml, every policy run on what it registers, exit 1 on a mandatory violation.
// It also prints what `pulumi preview` would refuse before any policy runs (missing CSRs, alarms
// with nowhere to go, an unpinned connector jar), as lines that do not change the exit code.
import { parseArgs } from "node:util";
import { PROJECT } from "../core/project";
import { planPipeline } from "../core/plan";
import { type RawConfig, parseStackConfig, readRawStackConfig } from "../core/stack-config";
import {
  type CheckedResource,
  formatReport,
  readPackConfig,
  resolvePackConfig,
  runPolicies,
} from "./policy-engine";
import type { RegisteredResource } from "./mock-program";
import { deployProblems } from "../core/deploy-readiness";
import { UsageError, UserError } from "../core/errors";
import { runCommand } from "../core/command";

const USAGE =
  "usage: npm run check -- --stack <name> [--policy-pack-config FILE] [--config key=value]...";

interface Args {
  readonly stack: string;
  readonly packConfig?: string;
  /** `--config key=value` values over the stack file, as `pulumi preview --config` takes them. */
  readonly overrides: RawConfig;
}

function overridesOf(pairs: readonly string[]): RawConfig {
  const raw: RawConfig = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`--config ${pair} is not key=value; ${USAGE}`);
    const key = pair.slice(0, eq);
    raw[key.startsWith(`${PROJECT}:`) ? key.slice(PROJECT.length + 1) : key] = pair.slice(eq + 1);
  }
  return raw;
}

function parse(argv: readonly string[]): Args {
  let values: {
    stack?: string;
    "policy-pack-config"?: string;
    config?: string[];
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        stack: { type: "string", short: "s" },
        "policy-pack-config": { type: "string" },
        config: { type: "string", short: "c", multiple: true },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    // node's messages are long and multi-line; keep the first sentence and add the usage.
    const first = (e as Error).message.split(/\.\s|\n/)[0].replace(/\.$/, "");
    throw new UsageError(`${first}; ${USAGE}`);
  }
  if (values.help) throw new UsageError(USAGE);
  if (!values.stack) throw new UsageError(`--stack is required; ${USAGE}`);
  return {
    stack: values.stack,
    packConfig: values["policy-pack-config"],
    overrides: overridesOf(values.config ?? []),
  };
}

/** What the engine sees of a registered resource: inputs, outputs, parent and dependencies. */
export function toChecked(r: RegisteredResource): CheckedResource {
  return {
    type: r.type,
    name: r.name,
    urn: r.urn,
    inputs: r.inputs,
    props: r.props,
    parent: r.parent,
    dependencies: r.options?.dependencies,
  };
}

/**
 * Runs the check and returns the exit code: 0 clean or advisory only, 1 on a mandatory
 * violation, 2 on a command line, stack or pack config the check cannot use.
 */
export async function main(
  argv: readonly string[],
  out: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
  err: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<number> {
  let args: Args;
  let settings;
  let problems: string[];
  try {
    args = parse(argv);
    // Validate the stack's config before building anything, for a one-line error.
    const raw = { ...readRawStackConfig(args.stack), ...args.overrides };
    problems = deployProblems(planPipeline(parseStackConfig(raw, args.stack)).config);
    settings = resolvePackConfig(args.packConfig ? readPackConfig(args.packConfig) : {});
  } catch (e) {
    if (e instanceof UserError) {
      err(`check: ${e.message}`);
      return e.exitCode;
    }
    throw e;
  }
  const { stack, overrides } = args;
  // Loaded only now: the program and @pulumi/aws take a moment, and bad arguments should not wait.
  const { runProgram } = await import("./mock-program");
  const run = await runProgram(stack, { overrides });
  const resources = run.resources.map(toChecked);
  const violations = await runPolicies(resources, { stack, settings });
  out(formatReport(stack, violations, resources, settings));
  // What `pulumi preview` would refuse before the pack runs (core/deploy-readiness.ts): the
  // policies above ran on stand-ins for it, so the exit code stays the policies' own.
  for (const note of run.standIns) out(`note: ${note}`);
  for (const p of problems) out(`pulumi up would refuse: ${p}`);
  return violations.some((v) => v.level === "mandatory") ? 1 : 0;
}

if (require.main === module) runCommand("check", () => main(process.argv.slice(2)));
