// Figure 4: the Pulumi program at fleet scale — building a 1,000-thing and a 10,000-thing stack under
// mocks (seconds, resources registered) and running the policy check over what each registered
// (seconds), and how both grow from one size to the other.
//
// The targets are absolute (issue 16: at 10,000 things, load + build under 30 s and the check under
// 5 s); the 1,000-thing stack is the baseline the growth is measured against, in the same run. Each
// size is built in a fresh process, so the time to load @pulumi/pulumi, @pulumi/aws and the
// program's modules is reported on its own line and counted in the total the target is checked
// against: that is what a user waits for. The large size is built three times (issue 28), each
// in a fresh process, and reported as the median with the fastest and slowest run, beside the
// build's CPU time, which the machine's neighbours move much less than the wall time.
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { PROJECT, PROJECT_DIR } from "../core/project";
import type { FigureOptions, FigureOutcome } from "./figure";
import { forkTs, nextMessage, reap } from "./ipc";
import type { BuildReply, BuildRequest } from "./program-build";
import { target, type Metric, type Target } from "./report";
import { median, round } from "./stats";

/** The fleet measured: `things` sensors in four city groups. */
function fleet(things: number): unknown[] {
  const cities = ["Seattle", "Portland", "Vancouver", "Boise"];
  const per = Math.ceil(things / cities.length);
  return cities.map((city, i) => ({
    group: city,
    description: `Things in ${city}`,
    attributes: { city },
    thingPrefix: `store-sensor-${city.toLowerCase()}`,
    count: Math.max(1, Math.min(per, things - i * per)),
  }));
}

/**
 * A project folder holding Pulumi.yaml and a stack file `Pulumi.bench-<things>.yaml`: prod's
 * choices (least privilege, certificates from the devices' CSRs, GZIP, error logging) with a fleet
 * of `things`, and the CSRs made by `npm run csr`'s own code. Kept under .local/bench and reused,
 * so only the first run pays for a thousand keys.
 */
async function benchStack(
  stateDir: string,
  things: number,
): Promise<{ dir: string; stack: string; csrsCreated: number }> {
  const dir = path.join(stateDir, "program");
  const stack = `bench-${things}`;
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(PROJECT_DIR, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
  const prod = parseYaml(fs.readFileSync(path.join(PROJECT_DIR, "Pulumi.prod.yaml"), "utf8")) as {
    config: Record<string, unknown>;
  };
  const config = {
    ...prod.config,
    [`${PROJECT}:fleet`]: fleet(things),
    // Absolute, because the program resolves csrDir against the repository root.
    [`${PROJECT}:csrDir`]: path.join(dir, "csr", stack),
  };
  fs.writeFileSync(
    path.join(dir, `Pulumi.${stack}.yaml`),
    `# Written by bench/program.ts: prod with a fleet of ${things}.\n${stringifyYaml({ config })}`,
  );
  const { makeCsrs } = await import("../tools/make-csr");
  const results = await makeCsrs({ stack, dir });
  return { dir, stack, csrsCreated: results.filter((r) => r.outcome === "created").length };
}

/** How every npm script of ours starts a TypeScript file: Node with the project's loader. */
const TS_SCRIPT_PREFIX = ["exec", "node", "--require", "./tools/ts-hook.cjs"];

/**
 * The further Node flags an npm script gives before its file (`exec node --require
 * ./tools/ts-hook.cjs --max-semi-space-size=64 tools/check.ts` gives the last), so that the
 * figure's process runs as `npm run check` does; throws for a script not of that form.
 */
export function nodeFlagsOf(script: string): string[] {
  const words = script.trim().split(/\s+/);
  if (TS_SCRIPT_PREFIX.some((w, i) => words[i] !== w)) {
    throw new Error(
      `expected "${TS_SCRIPT_PREFIX.join(" ")} [node flags] file.ts", got ${JSON.stringify(script)}`,
    );
  }
  const flags: string[] = [];
  for (const w of words.slice(TS_SCRIPT_PREFIX.length)) {
    if (!w.startsWith("--")) break;
    flags.push(w);
  }
  return flags;
}

function scriptNodeFlags(name: string): string[] {
  const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_DIR, "package.json"), "utf8")) as {
    scripts: Record<string, string>;
  };
  return nodeFlagsOf(pkg.scripts[name]);
}

/**
 * Builds and checks one size `runs` times, each in a process of its own (a user's first load
 * every time), one after the other.
 */
async function measure(
  stateDir: string,
  things: number,
  log: (line: string) => void,
  runs = 1,
): Promise<BuildReply[]> {
  const { dir, stack, csrsCreated } = await benchStack(stateDir, things);
  log(`stack ${stack} in ${dir}: ${csrsCreated} CSR(s) made this run; building ${things} things`);
  const req: BuildRequest = { stack, dir, things };
  const replies: BuildReply[] = [];
  for (let i = 0; i < runs; i++) {
    const child = forkTs("program-build.ts", [JSON.stringify(req)], scriptNodeFlags("check"));
    try {
      const r = await nextMessage<BuildReply>(child, "built", 600_000);
      log(
        `${things} things${runs > 1 ? ` (run ${i + 1} of ${runs})` : ""}: load ${round(r.loadSeconds)} s, build ${round(r.buildSeconds)} s (${round(r.buildCpuSeconds)} s of CPU; ${r.resources} resources), check ${round(r.checkSeconds)} s (${r.violations} violation(s)), peak RSS ${round(r.peakRssMiB)} MiB`,
      );
      replies.push(r);
    } finally {
      await reap(child);
    }
  }
  return replies;
}

/**
 * The runs of one size as one reply: each number the median of the runs (so a key means what it
 * meant when the figure built once), the counts from the first run (every run builds the same
 * stack).
 */
function medianRun(runs: readonly BuildReply[]): BuildReply {
  const m = (f: (r: BuildReply) => number): number => median(runs.map(f));
  return {
    ...runs[0],
    loadSeconds: m((r) => r.loadSeconds),
    buildSeconds: m((r) => r.buildSeconds),
    buildCpuSeconds: m((r) => r.buildCpuSeconds),
    checkSeconds: m((r) => r.checkSeconds),
    checkCpuSeconds: m((r) => r.checkCpuSeconds),
    peakRssMiB: m((r) => r.peakRssMiB),
  };
}

/** How a per-thing cost grows: (seconds per thing at the large size) / (at the small size). */
function growth(small: number, smallThings: number, large: number, largeThings: number): number {
  return large / largeThings / (small / smallThings);
}

export async function run(opts: FigureOptions): Promise<FigureOutcome> {
  const [smallThings, largeThings] = opts.quick ? [25, 50] : [1000, 10_000];
  // The large size, which the target is about, several times: one build's wall time on a shared
  // machine says as much about the neighbours as about the program.
  const largeRuns = opts.quick ? 2 : 3;
  const [small] = await measure(opts.stateDir, smallThings, opts.log);
  const larges = await measure(opts.stateDir, largeThings, opts.log, largeRuns);
  const total = (r: BuildReply) => r.loadSeconds + r.buildSeconds;
  const large = medianRun(larges);
  const largeTotals = larges.map(total);
  const largeTotal = median(largeTotals);
  const largeCpu = larges.map((r) => r.buildCpuSeconds);
  const runsUnder = largeTotals.filter((t) => t < 30).length;
  const metrics: Metric[] = [
    // The 1,000-thing stack under the keys earlier runs used, so that runs stay comparable.
    { key: "things", label: "things in the stack", value: small.things, unit: "" },
    { key: "resources", label: "resources registered", value: small.resources, unit: "" },
    {
      key: "customResources",
      label: "of which AWS resources",
      value: small.customResources,
      unit: "",
    },
    {
      key: "loadSeconds",
      label: "load @pulumi/* and the program",
      value: round(small.loadSeconds),
      unit: "s",
    },
    {
      key: "buildSeconds",
      label: "build under mocks",
      value: round(small.buildSeconds),
      unit: "s",
    },
    {
      key: "buildCpuSeconds",
      label: "build CPU time (user + system)",
      value: round(small.buildCpuSeconds),
      unit: "s",
    },
    { key: "totalBuildSeconds", label: "load + build", value: round(total(small)), unit: "s" },
    {
      key: "checkSeconds",
      label: "policy check over the stack",
      value: round(small.checkSeconds),
      unit: "s",
    },
    {
      key: "checkCpuSeconds",
      label: "policy check CPU time",
      value: round(small.checkCpuSeconds),
      unit: "s",
    },
    {
      key: "checkViolations",
      label: "policy violations reported",
      value: small.violations,
      unit: "",
    },
    { key: "peakRssMiB", label: "peak RSS", value: round(small.peakRssMiB), unit: "MiB" },
    { key: "large.things", label: "large stack: things", value: large.things, unit: "" },
    {
      key: "large.resources",
      label: "large stack: resources registered",
      value: large.resources,
      unit: "",
    },
    {
      key: "large.loadSeconds",
      label: "large stack: load @pulumi/* and the program",
      value: round(large.loadSeconds),
      unit: "s",
    },
    {
      key: "large.buildSeconds",
      label: "large stack: build under mocks",
      value: round(large.buildSeconds),
      unit: "s",
    },
    {
      key: "large.buildCpuSeconds",
      label: "large stack: build CPU time (median of the runs)",
      value: round(large.buildCpuSeconds),
      unit: "s",
    },
    {
      key: "large.totalBuildSeconds",
      label: `large stack: load + build (median of ${larges.length} runs)`,
      value: round(largeTotal),
      unit: "s",
    },
    {
      key: "large.totalBuildSeconds.min",
      label: "large stack: load + build, fastest run",
      value: round(Math.min(...largeTotals)),
      unit: "s",
    },
    {
      key: "large.totalBuildSeconds.max",
      label: "large stack: load + build, slowest run",
      value: round(Math.max(...largeTotals)),
      unit: "s",
    },
    {
      key: "large.buildCpuSeconds.min",
      label: "large stack: build CPU time, least of the runs",
      value: round(Math.min(...largeCpu)),
      unit: "s",
    },
    {
      key: "large.buildCpuSeconds.max",
      label: "large stack: build CPU time, most of the runs",
      value: round(Math.max(...largeCpu)),
      unit: "s",
    },
    {
      key: "large.runs",
      label: "large stack: runs (fresh process each)",
      value: larges.length,
      unit: "",
    },
    {
      key: "large.checkSeconds",
      label: "large stack: policy check",
      value: round(large.checkSeconds),
      unit: "s",
    },
    {
      key: "large.checkCpuSeconds",
      label: "large stack: policy check CPU time",
      value: round(large.checkCpuSeconds),
      unit: "s",
    },
    {
      key: "large.checkViolations",
      label: "large stack: policy violations reported",
      value: large.violations,
      unit: "",
    },
    {
      key: "large.peakRssMiB",
      label: "large stack: peak RSS",
      value: round(large.peakRssMiB),
      unit: "MiB",
    },
    {
      key: "growth.build",
      label: "build time per thing, large / small (1 = linear)",
      value: round(growth(small.buildSeconds, small.things, large.buildSeconds, large.things)),
      unit: "×",
    },
    {
      key: "growth.check",
      label: "check time per thing, large / small (1 = linear)",
      value: round(growth(small.checkSeconds, small.things, large.checkSeconds, large.things)),
      unit: "×",
    },
  ];
  const targets: Target[] = [
    target(
      `load + build at ${large.things} things (s)`,
      "large.totalBuildSeconds",
      "<",
      30,
      largeTotal,
    ),
    target(
      `policy check at ${large.things} things (s)`,
      "large.checkSeconds",
      "<",
      5,
      large.checkSeconds,
    ),
  ];
  return {
    status: "measured",
    params: {
      stack: `bench-<things> (prod with <things> things)`,
      things: small.things,
      largeThings: large.things,
      largeRuns: larges.length,
      certificateMode: "csr",
      groups: 4,
    },
    metrics,
    targets,
    notes: [
      "Each size is built in a fresh process; the policy check is timed over the resources of that build (as npm run check does after its own), including loading the policy engine and formatting the report.",
      `The large stack was built ${larges.length} times, each in a fresh process: load + build ${largeTotals.map((t) => `${round(t)} s`).join(", ")} (${runsUnder} of ${larges.length} under 30 s); build CPU time ${largeCpu.map((t) => `${round(t)} s`).join(", ")}. Each large-stack metric is the median of the runs; the target is checked against the median of load + build.`,
      `Growth from ${small.things} to ${large.things} things: build ${round(large.buildSeconds / small.buildSeconds)} × the time for ${round(large.things / small.things)} × the things, check ${round(large.checkSeconds / small.checkSeconds)} ×.`,
    ],
  };
}
