// A real, small file system that fills up (a tmpfs with a size limit; root only, skipped with the
// reason elsewhere): the journal acknowledges only what it wrote whole, every acknowledged record
// survives a kill -9 on the full disk, acknowledging resumes when space returns, and simulate on a
// full disk ends with its summary or one line, exit 2, no run file and no temp file.
import { strict as assert } from "node:assert";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PROJECT_DIR, TS_NODE_FLAGS } from "../../core/project";
import { loadStackConfig } from "../../core/stack-config";
import { LocalDeliveryStream } from "../../local/delivery";
import { describeWithSmallDisk } from "../helpers/small-disk";
import { deliveredNumbers } from "../helpers/delivered";
import { tmpFiles } from "../helpers/temp";

const RECORDS = 20_000; // about 8.5 MB of journal: more than the disk holds

/** The fill child's acks and nacks, and a way to wait for a line. */
function fillChild(stateDir: string) {
  const child = spawn(
    process.execPath,
    [
      ...TS_NODE_FLAGS,
      path.join(__dirname, "fixtures", "journal-fill-child.ts"),
      stateDir,
      String(RECORDS),
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const acked = new Set<number>();
  const nacked: string[] = [];
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  let pending = "";
  child.stdout.on("data", (d: Buffer) => {
    pending += d.toString();
    const all = pending.split("\n");
    pending = all.pop() ?? "";
    for (const line of all) {
      const ack = /^ack (\d+)$/.exec(line);
      if (ack) acked.add(Number(ack[1]));
      else if (line.startsWith("nack ")) nacked.push(line);
      else lines.push(line);
    }
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<void>((r) =>
    child.once("exit", () => {
      for (const w of waiters.splice(0)) w();
      r();
    }),
  );
  const until = async (cond: () => boolean, what: string) => {
    while (!cond()) {
      if (child.exitCode !== null) throw new Error(`the fill child exited before ${what}`);
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  return { child, acked, nacked, lines, until, exited };
}

function kill(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGKILL");
  return exited;
}

/** Replays the fill child's journal in this process and returns the record numbers delivered. */
async function replay(stateDir: string): Promise<number[]> {
  const s = await LocalDeliveryStream.open({
    stack: "fill",
    delivery: {
      ...loadStackConfig("dev").delivery,
      bufferIntervalSeconds: 900,
      bufferSizeMiB: 128,
    },
    bucket: "fill",
    stateDir,
  });
  await s.close();
  return deliveredNumbers(s.objects);
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function simulate(args: string[], onStdout?: (text: string) => void): Promise<Run> {
  const child = spawn(
    process.execPath,
    [...TS_NODE_FLAGS, "simulator/cli.ts", "simulate", ...args],
    {
      cwd: PROJECT_DIR,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const run: Run = { code: null, stdout: "", stderr: "" };
  child.stdout.on("data", (d: Buffer) => {
    run.stdout += d.toString();
    onStdout?.(run.stdout);
  });
  child.stderr.on("data", (d: Buffer) => (run.stderr += d.toString()));
  return new Promise((resolve) =>
    child.once("close", (code) => {
      run.code = code;
      resolve(run);
    }),
  );
}

function summaryNumber(stdout: string, label: RegExp): number {
  const line = stdout.split("\n").find((l) => label.test(l));
  assert.ok(line, `no summary line ${label} in:\n${stdout}`);
  return Number(/(\d+)\s*$/.exec(line)?.[1]);
}

describeWithSmallDisk("a full disk, for real (5 MiB tmpfs)", function (disks) {
  this.timeout(120_000);

  it("acknowledges only what reached the disk whole: after kill -9 on the full disk, every acknowledged record is delivered", async () => {
    const disk = disks.mount(5 * 1024);
    const state = path.join(disk, "state");
    const fill = fillChild(state);
    await fill.until(
      () => fill.lines.some((l) => /disk is full/.test(l)) || fill.nacked.length >= 20,
      "the disk filled up",
    );
    await kill(fill.child);
    assert.ok(
      fill.acked.size > 1000,
      `only ${fill.acked.size} acknowledged before the disk filled`,
    );
    disks.resize(disk, 64 * 1024); // space for the objects
    const delivered = new Set(await replay(state));
    const lost = [...fill.acked].filter((i) => !delivered.has(i));
    assert.deepEqual(lost, [], `${lost.length} of ${fill.acked.size} acknowledged record(s) lost`);
    assert.deepEqual(fill.nacked, [], "a full disk refuses nothing: publishes wait");
  });

  it("stops acknowledging while full, says so once, and resumes when space returns", async () => {
    const disk = disks.mount(5 * 1024);
    const state = path.join(disk, "state");
    const fill = fillChild(state);
    await fill.until(() => fill.lines.some((l) => /disk is full/.test(l)), "the disk filled up");
    const ackedWhileFull = fill.acked.size;
    assert.ok(ackedWhileFull < RECORDS);
    disks.resize(disk, 64 * 1024);
    await fill.until(() => fill.lines.includes("done"), "every record's outcome");
    assert.equal(
      fill.acked.size,
      RECORDS,
      `acknowledged ${fill.acked.size}; nacks: ${fill.nacked[0]}`,
    );
    assert.equal(fill.lines.filter((l) => /disk is full/.test(l)).length, 1, "said once");
    assert.equal(fill.lines.filter((l) => /writable again/.test(l)).length, 1);
    await kill(fill.child);
    assert.equal(new Set(await replay(state)).size, RECORDS);
  });

  it("simulate on a full disk: one line, exit 2, no run file, no temp file, nothing touched", async () => {
    const disk = disks.mount(8 * 1024);
    const state = path.join(disk, "state");
    const first = await simulate(["--state-dir", state, "--duration", "1", "--no-probe"]);
    assert.equal(first.code, 0, first.stderr);
    const filler = disks.fill(disk);
    for (let attempt = 0; attempt < 2; attempt++) {
      const r = await simulate(["--state-dir", state, "--duration", "1", "--no-probe"]);
      assert.equal(r.code, 2, `exit ${r.code}:\n${r.stderr}`);
      assert.equal(r.stderr.trim().split("\n").length, 1, `one line:\n${r.stderr}`);
      assert.match(
        r.stderr,
        /^simulate: .*ENOSPC: the disk is full; free some space and run again\n$/,
      );
      assert.equal(fs.existsSync(path.join(state, "run", "dev.json")), false, "no run file");
      assert.deepEqual(tmpFiles(state), [], "no temp file");
    }
    fs.rmSync(filler);
  });

  it("simulate whose disk fills mid-run: the summary still prints, the acknowledged records stay journaled, the next run delivers them", async () => {
    const disk = disks.mount(8 * 1024);
    const state = path.join(disk, "state");
    const warm = await simulate(["--state-dir", state, "--duration", "1", "--no-probe"]);
    assert.equal(warm.code, 0, warm.stderr);
    let filler: string | undefined;
    const run = await simulate(
      ["--state-dir", state, "--duration", "4", "--rate", "20", "--no-probe"],
      (stdout) => {
        // Fill the disk half a second after the device started publishing.
        if (filler === undefined && stdout.includes("\npublishing: ")) {
          filler = "";
          setTimeout(() => (filler = disks.fill(disk)), 500);
        }
      },
    );
    assert.ok(filler, `the run never got to publishing:\n${run.stdout}`);
    assert.equal(run.code, 2, `exit ${run.code}:\n${run.stderr}`);
    assert.match(run.stdout, /\nsummary: stack dev/);
    assert.match(run.stdout, /journal stalls \(disk full\)\s+1/);
    const acked = summaryNumber(run.stdout, /acknowledged \(PUBACK\)/);
    const left = summaryNumber(run.stdout, /records left in the journal for the next start/);
    assert.ok(acked > 0);
    assert.equal(left, acked, "every acknowledged record is still journaled");
    assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
    assert.match(
      run.stderr,
      /stay in the journal .*; fix that \(a full disk: free some space\) and run simulate again/,
    );
    assert.equal(fs.existsSync(path.join(state, "run", "dev.json")), false, "no run file");
    assert.deepEqual(tmpFiles(state), [], "no temp file");

    fs.rmSync(filler);
    const next = await simulate(["--state-dir", state, "--duration", "1", "--no-probe"]);
    assert.equal(next.code, 0, next.stderr);
    assert.equal(summaryNumber(next.stdout, /records replayed from the journal/), acked);
  });
});
