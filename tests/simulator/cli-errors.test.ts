// Environment problems end `npm run simulate` with one line on stderr and exit code 2, never a stack
// trace: a busy --port, two simulates started at the same instant (same state, or same port), a
// --state-dir that cannot be a folder. Each is run as a user would start it (child processes).
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { PROJECT_DIR, TS_NODE_FLAGS } from "../../core/project";
import { tempDir } from "../helpers/temp";
import { outcomeOf, type Outcome } from "../helpers/process";

function simulate(args: string[]): Promise<Outcome> {
  const child = spawn(
    process.execPath,
    [...TS_NODE_FLAGS, "simulator/cli.ts", "simulate", ...args],
    {
      cwd: PROJECT_DIR,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  return outcomeOf(child);
}

/** Exit 2 with exactly one line on stderr, `simulate: ...`, and no stack trace. */
function assertOneLine(o: Outcome, pattern: RegExp): void {
  assert.equal(o.code, 2, `exit ${o.code}; stderr:\n${o.stderr}`);
  const lines = o.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one line, got:\n${o.stderr}`);
  assert.match(lines[0], /^simulate: /);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(o.stderr, /\n\s+at /, "no stack trace");
}

const QUICK = ["--duration", "1", "--no-probe"];

describe("simulate: environment problems are one line and exit 2", function () {
  this.timeout(120_000);
  let state: string;
  before(async () => {
    // Issue the certificates once, so that the runs below start alike and fast.
    state = tempDir("cli-errors");
    const first = await simulate(["--state-dir", state, ...QUICK]);
    assert.equal(first.code, 0, first.stderr);
  });

  it("a busy --dashboard-port: refused before the pipeline starts", async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const o = await simulate(["--state-dir", state, "--dashboard-port", String(port), ...QUICK]);
      assertOneLine(
        o,
        new RegExp(
          `--dashboard-port ${port}: the port is in use by another program; choose another, leave it out for any free port, or add --no-dashboard$`,
        ),
      );
      assert.doesNotMatch(o.stdout, /embedded pipeline/, "the pipeline started");
      assert.equal(fs.existsSync(path.join(state, "run", "dev.json")), false, "no run file left");
    } finally {
      blocker.close();
    }
  });

  it("a busy --port", async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", () => r()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const o = await simulate(["--state-dir", state, "--port", String(port), ...QUICK]);
      assertOneLine(
        o,
        new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use .*choose another --port`),
      );
      assert.equal(fs.existsSync(path.join(state, "run", "dev.json")), false, "no run file left");
      assert.equal(
        fs.existsSync(path.join(state, "journal", "dev", "weather-data-stream", "owner.pid")),
        false,
        "the journal was released",
      );
    } finally {
      blocker.close();
    }
  });

  it("two simulates of one stack and state folder started at the same instant: one runs, one line for the other", async () => {
    const [a, b] = await Promise.all([
      simulate(["--state-dir", state, ...QUICK]),
      simulate(["--state-dir", state, ...QUICK]),
    ]);
    const [won, lost] = a.code === 0 ? [a, b] : [b, a];
    assert.equal(won.code, 0, `one of them runs: ${won.stderr}`);
    assertOneLine(lost, /is already running|is in use by process/);
    assert.match(won.stdout, /records delivered/);
  });

  it("two simulates on the same --port at the same instant: one runs, one line for the other", async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const other = tempDir("cli-errors-other");
    fs.cpSync(path.join(state, "pki"), path.join(other, "pki"), { recursive: true });
    const [a, b] = await Promise.all([
      simulate(["--state-dir", state, "--port", String(port), ...QUICK]),
      simulate(["--state-dir", other, "--port", String(port), ...QUICK]),
    ]);
    const [won, lost] = a.code === 0 ? [a, b] : [b, a];
    assert.equal(won.code, 0, `one of them runs: ${won.stderr}`);
    assertOneLine(lost, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is in use`));
  });

  it("a --state-dir that is a file", async () => {
    const file = path.join(tempDir("cli-errors-file"), "not-a-folder");
    fs.writeFileSync(file, "x");
    const o = await simulate(["--state-dir", file, ...QUICK]);
    assertOneLine(o, /ENOTDIR: a file is where a folder should be/);
  });
});
