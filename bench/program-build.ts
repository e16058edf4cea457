// Figure 4's measuring process: loads the program's modules, builds one stack under mocks and runs
// the policy check over what it registered, each timed, in a fresh process of its own so that the
// load is a user's first load and one size's heap never weighs on the next size's numbers.
import { nowMs, peakRssMiB } from "./stats";

/** What bench/program.ts asks for: the stack and its project folder. */
export interface BuildRequest {
  readonly stack: string;
  readonly dir: string;
  readonly things: number;
}

export interface BuildReply {
  readonly type: "built";
  readonly loadSeconds: number;
  readonly buildSeconds: number;
  readonly buildCpuSeconds: number;
  readonly resources: number;
  readonly customResources: number;
  readonly things: number;
  readonly checkSeconds: number;
  readonly checkCpuSeconds: number;
  readonly violations: number;
  readonly reportCharacters: number;
  readonly peakRssMiB: number;
}

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
}

async function main(): Promise<void> {
  const req = JSON.parse(process.argv[2]) as BuildRequest;
  let t = nowMs();
  const { runProgram } = await import("../tools/mock-program");
  const loadSeconds = (nowMs() - t) / 1000;

  t = nowMs();
  let cpu = process.cpuUsage();
  const program = await runProgram(req.stack, { dir: req.dir });
  const buildSeconds = (nowMs() - t) / 1000;
  // CPU time moves much less than wall time when the shared machine is busy: it says whether a
  // slow build was this program's doing or the neighbours'.
  const buildCpuSeconds = cpuSeconds(cpu);
  const things = program.resources.filter((r) => r.type === "aws:iot/thing:Thing").length;
  if (things !== req.things) {
    throw new Error(`the program registered ${things} things, expected ${req.things}`);
  }

  // The policy check as `npm run check` runs it after its own build: the pack's settings resolved
  // from an empty pack config, every policy run, the report formatted. Loading the policy engine
  // is counted: the user waits for it too.
  t = nowMs();
  cpu = process.cpuUsage();
  const engine = await import("../tools/policy-engine");
  const { toChecked } = await import("../tools/check");
  const resources = program.resources.map(toChecked);
  const settings = engine.resolvePackConfig({});
  const stack = program.config.stack;
  const violations = await engine.runPolicies(resources, { stack, settings });
  const report = engine.formatReport(stack, violations, resources, settings);
  const checkSeconds = (nowMs() - t) / 1000;
  const checkCpuSeconds = cpuSeconds(cpu);

  const reply: BuildReply = {
    type: "built",
    loadSeconds,
    buildSeconds,
    buildCpuSeconds,
    resources: program.resources.length,
    customResources: program.resources.filter((r) => r.custom).length,
    things,
    checkSeconds,
    checkCpuSeconds,
    violations: violations.length,
    reportCharacters: report.length,
    peakRssMiB: peakRssMiB(),
  };
  await new Promise<void>((resolve) => process.send?.(reply, () => resolve()));
  // The SDK's leak check and open handles are not this figure's business: the result is out.
  process.exit(0);
}

void main();
