// Runs one benchmark figure in a process of its own and hands its result to bench/run.ts over IPC,
// so that one figure's heap, sockets and peak RSS never leak into another's numbers.
import { FIGURE_IDS, FIGURE_TITLES as TITLES, notMeasured, type FigureId } from "./report";
import type { FigureResult } from "./report";
import type { FigureOptions, FigureOutcome } from "./figure";

async function main(): Promise<void> {
  const id = process.argv[2] as FigureId;
  if (!FIGURE_IDS.includes(id)) throw new Error(`unknown figure ${JSON.stringify(id)}`);
  const opts = JSON.parse(process.argv[3] ?? "{}") as Omit<FigureOptions, "log">;
  const log = (line: string): void => {
    process.stderr.write(`[${id}] ${line}\n`);
  };
  const started = performance.now();
  let result: FigureResult;
  try {
    const mod = (await import(`./${id}`)) as { run(o: FigureOptions): Promise<FigureOutcome> };
    const r = await mod.run({ ...opts, log });
    result = { id, title: TITLES[id], ...r, seconds: (performance.now() - started) / 1000 };
  } catch (e) {
    const message = e instanceof Error ? e.message.split("\n")[0] : String(e);
    log(`failed: ${e instanceof Error ? (e.stack ?? message) : message}`);
    result = notMeasured(id, TITLES[id], message, (performance.now() - started) / 1000);
  }
  await new Promise<void>((resolve) => {
    if (process.send) process.send(result, () => resolve());
    else {
      process.stdout.write(JSON.stringify(result, null, 2) + "\n");
      resolve();
    }
  });
  // A figure may leave sockets or timers of the parts it measured behind; the result is out.
  process.exit(0);
}

void main();
