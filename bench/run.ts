// `npm run bench`: runs each figure in its own process, prints the table and writes the JSON.
import { fork } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { tsExecArgv } from "./ipc";
import {
  FIGURE_IDS,
  FIGURE_TITLES,
  machineInfo,
  notMeasured,
  renderMarkdown,
  renderTable,
  type BenchRun,
  type FigureId,
  type FigureResult,
} from "./report";
import { shownPath } from "../core/display";
import { UsageError, UserError } from "../core/errors";
import { PROJECT_DIR } from "../core/project";

const USAGE = `usage: npm run bench -- [--quick] [--only ${FIGURE_IDS.join(",")}] [--soak-minutes M] [--out DIR] [--markdown]

  --quick      small sizes and short phases (seconds), every figure: proves the benchmark works
  --only LIST  run only these figures (comma-separated); without it a full run leaves out the
               soak (ten minutes on its own: --only soak)
  --soak-minutes M  length of the soak's attack phase (default 10; the baseline is a fifth of it,
               at most 2 minutes)
  --out DIR    where to write the results JSON (default bench/results)
  --markdown   also print the table as Markdown (what docs/benchmarks.md shows)`;

interface Args {
  quick: boolean;
  /** Whether --only chose the figures. */
  chosen: boolean;
  soakSeconds: number;
  only: FigureId[];
  out: string;
  markdown: boolean;
}

function parseArgs(argv: readonly string[]): Args | "help" {
  const args: Args = {
    quick: false,
    chosen: false,
    soakSeconds: 600,
    only: [...FIGURE_IDS],
    out: path.join(PROJECT_DIR, "bench", "results"),
    markdown: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v.startsWith("--")) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === "--help" || a === "-h") return "help";
    else if (a === "--quick") args.quick = true;
    else if (a === "--markdown") args.markdown = true;
    else if (a === "--out") args.out = path.resolve(value());
    else if (a === "--soak-minutes") {
      const v = value();
      const minutes = Number(v);
      if (!Number.isFinite(minutes) || minutes <= 0 || minutes > 24 * 60) {
        throw new UsageError(`--soak-minutes ${v}: expected a number of minutes from 0 to 1440`);
      }
      args.soakSeconds = Math.round(minutes * 60);
    } else if (a === "--only") {
      const ids = value().split(",");
      for (const id of ids) {
        if (!(FIGURE_IDS as readonly string[]).includes(id)) {
          throw new UsageError(
            `--only: unknown figure ${JSON.stringify(id)}; choose from ${FIGURE_IDS.join(", ")}`,
          );
        }
      }
      args.only = ids as FigureId[];
      args.chosen = true;
    } else throw new UsageError(`unknown option ${JSON.stringify(a)}; see --help`);
  }
  return args;
}

/** How long a figure may take before it is stopped and reported as not measured. */
function timeoutSeconds(id: FigureId, args: Args): number {
  if (args.quick) return 90;
  // The soak: its attack phase, a baseline of at most two minutes, and room to start and stop.
  if (id === "soak") return args.soakSeconds + 120 + 240;
  // The program figure makes 10,000 keys and CSRs on its first run (kept under .local/bench), the
  // fleet figure 10,000 certificates, then connects 10,000 devices and 2,000 bare TLS connections.
  if (id === "program" || id === "fleet") return 600;
  // The flood figure: about a minute of load, then a replay of a large journal and the lake read.
  if (id === "flood") return 600;
  // The pipeline figure runs seven loads of 23 s: broker alone and Mosquitto at two QoS each, the
  // pipeline over 3.1.1, over MQTT 5 and with the dashboard page open.
  return id === "pipeline" ? 420 : 120;
}

function runFigure(id: FigureId, args: Args): Promise<FigureResult> {
  const opts = {
    quick: args.quick,
    soakSeconds: args.soakSeconds,
    stateDir: path.join(PROJECT_DIR, ".local", "bench"),
  };
  const started = performance.now();
  return new Promise((resolve) => {
    const child = fork(path.join(__dirname, "child.ts"), [id, JSON.stringify(opts)], {
      cwd: PROJECT_DIR,
      // The figure's own process is profiled too: the publisher figure's client runs in it.
      execArgv: tsExecArgv(),
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    let result: FigureResult | undefined;
    const limit = timeoutSeconds(id, args);
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      result = notMeasured(id, FIGURE_TITLES[id], `timed out after ${limit} s`, limit);
    }, limit * 1000);
    child.on("message", (m) => {
      result = m as FigureResult;
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      const seconds = (performance.now() - started) / 1000;
      resolve(
        result ??
          notMeasured(
            id,
            FIGURE_TITLES[id],
            `its process ended (${signal ?? `exit ${code}`}) without a result`,
            seconds,
          ),
      );
    });
  });
}

async function main(): Promise<number> {
  let args: Args | "help";
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UserError) {
      process.stderr.write(`bench: ${e.message}\n`);
      return e.exitCode;
    }
    throw e;
  }
  if (args === "help") {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  const started = performance.now();
  const date = new Date().toISOString();
  const machine = machineInfo();
  const figures: FigureResult[] = [];
  // The soak runs ten minutes: a full run without --only is the speed figures; --quick has all.
  const figureIds = args.quick || args.chosen ? args.only : args.only.filter((id) => id !== "soak");
  for (const id of figureIds) {
    process.stderr.write(`bench: ${FIGURE_TITLES[id]}${args.quick ? " (quick)" : ""}\n`);
    figures.push(await runFigure(id, args));
  }
  const run: BenchRun = {
    date,
    mode: args.quick ? "quick" : "full",
    machine,
    figures,
    seconds: (performance.now() - started) / 1000,
  };
  fs.mkdirSync(args.out, { recursive: true });
  const file = path.join(args.out, `bench-${run.mode}-${date.replace(/[:.]/g, "-")}.json`);
  fs.writeFileSync(file, JSON.stringify(run, null, 2) + "\n");
  process.stdout.write(renderTable(run) + "\n\n");
  if (args.markdown) process.stdout.write(renderMarkdown(run) + "\n\n");
  process.stdout.write(`results: ${shownPath(file)}\n`);
  const failed = figures.filter((f) => f.status !== "measured");
  if (failed.length > 0) {
    process.stderr.write(
      `bench: ${failed.length} figure(s) not measured: ${failed.map((f) => f.id).join(", ")}\n`,
    );
    return 1;
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
