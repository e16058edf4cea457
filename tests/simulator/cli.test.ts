// The simulate/subscribe command line: option parsing and its one-line errors (in process), then
// real runs as a user would start them (child processes, embedded pipeline, real TLS).
import * as assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { main, parseSimulateArgs, parseSubscribeArgs } from "../../simulator/cli";
import { simulate } from "../../simulator/simulate";
import { PROJECT_DIR, TS_NODE_FLAGS } from "../../core/project";
import { tempDir } from "../helpers/temp";
import { until } from "../helpers/wait";

interface Run {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  done: Promise<number | null>;
}

/** Starts the CLI as `npm run simulate` does (tsx), in the project folder. */
function cli(args: string[], env: NodeJS.ProcessEnv = process.env): Run {
  const child = spawn(process.execPath, [...TS_NODE_FLAGS, "simulator/cli.ts", ...args], {
    cwd: PROJECT_DIR,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const run: Run = {
    child,
    stdout: "",
    stderr: "",
    done: new Promise((resolve) => child.once("exit", (code) => resolve(code))),
  };
  child.stdout?.on("data", (d: Buffer) => (run.stdout += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (run.stderr += d.toString()));
  return run;
}

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  return "(no error)";
}

describe("simulate options", () => {
  it("defaults to the dev stack, the embedded target, QoS 1, 100 publishes/s, the probe on", () => {
    const o = parseSimulateArgs([]);
    assert.ok(o !== "help");
    assert.equal(o.stack, "dev");
    assert.equal(o.qos, 1);
    // MQTT 5, as AWS's current Device SDK samples connect (docs/devices.md).
    assert.equal(o.protocol, 5);
    assert.equal(o.rateLimit, 100);
    assert.equal(o.rate, 1);
    assert.equal(o.durationS, undefined);
    assert.equal(o.probe, true);
    assert.equal(o.fast, false);
    assert.deepEqual(o.target, { kind: "embedded", port: undefined });
    assert.equal(o.stateDir, path.join(PROJECT_DIR, ".local"));
    // The live page on any free port (docs/dashboard.md).
    assert.deepEqual(o.dashboard, { port: 0 });
  });

  it("--no-dashboard: no page; --aws and --endpoint runs have none either", () => {
    const off = parseSimulateArgs(["--no-dashboard"]);
    assert.ok(off !== "help");
    assert.equal(off.dashboard, undefined);
    const aws = parseSimulateArgs(["--aws"]);
    assert.ok(aws !== "help");
    assert.equal(aws.dashboard, undefined);
  });

  it("reads every option", () => {
    const o = parseSimulateArgs(
      (
        "--stack prod --devices 2 --rate 2.5 --duration 9 --count 4 --qos 0 --topic a/{thing} " +
        "--source replay --csv x.csv --speedup 60 --seed 3 --rate-limit off --max-in-flight 7 " +
        "--queue 9 --fast --no-probe --port 1884 --state-dir /tmp/s --protocol 3.1.1 " +
        "--dashboard-port 8090"
      ).split(" "),
    );
    assert.ok(o !== "help");
    assert.deepEqual(
      { ...o, csv: path.basename(o.csv ?? "") },
      {
        stack: "prod",
        protocol: 4,
        devices: 2,
        rate: 2.5,
        durationS: 9,
        count: 4,
        qos: 0,
        topic: "a/{thing}",
        source: "replay",
        csv: "x.csv",
        speedup: 60,
        seed: 3,
        rateLimit: 0,
        maxInFlight: 7,
        maxQueue: 9,
        fast: true,
        probe: false,
        stateDir: "/tmp/s",
        target: { kind: "embedded", port: 1884 },
        dashboard: { port: 8090 },
      },
    );
  });

  it("takes an endpoint with files, or --aws", () => {
    const e = parseSimulateArgs(
      "--endpoint h.example --cert c/{thing}.crt --key k/{thing}.key".split(" "),
    );
    assert.ok(e !== "help");
    assert.deepEqual(e.target, {
      kind: "endpoint",
      host: "h.example",
      port: 8883,
      cert: "c/{thing}.crt",
      key: "k/{thing}.key",
      ca: undefined,
    });
    const a = parseSimulateArgs(["--aws", "--key-dir", "keys"]);
    assert.ok(a !== "help");
    assert.deepEqual(a.target, { kind: "aws", keyDir: "keys" });
  });

  const bad: Array<[string, RegExp]> = [
    ["--bogus", /^Unknown option '--bogus'; see --help$/],
    ["--qos 2", /AWS IoT Core does not support QoS 2; use --qos 0 or --qos 1/],
    ["--qos x", /--qos x: expected 0 or 1/],
    ["--protocol 3", /--protocol 3: expected 5 \(MQTT 5\) or 3\.1\.1/],
    ["--rate 0", /--rate 0: expected a number greater than 0/],
    ["--rate abc", /--rate abc: expected a number/],
    ["--duration=-1", /--duration -1: expected a number greater than 0/],
    ["--duration -1", /^Option '--duration' argument is ambiguous; see --help$/],
    ["--count 1.5", /--count 1.5: expected a whole number >= 1/],
    ["--devices 0", /--devices 0: expected a whole number >= 1/],
    ["--port 70000", /--port 70000: expected a whole number from 0 to 65535/],
    ["--rate-limit fast", /--rate-limit fast: expected a whole number/],
    ["--source csv", /--source csv: expected synthetic or replay/],
    ["--csv x.csv", /--csv is for --source replay/],
    ["--topic a/#", /--topic a\/#: \+ and # are filters/],
    ["--topic a/b/c/d/e/f/g/h/i", /at most 7 slashes/],
    ["--topic $aws/things/x", /reserved/],
    ["--endpoint h", /--endpoint needs --cert FILE and --key FILE/],
    ["--cert c.pem", /--cert needs --endpoint HOST/],
    ["--aws --endpoint h", /--aws and --endpoint exclude each other/],
    ["--aws --fast", /--fast speeds up the embedded pipeline only/],
    ["--duration", /argument missing/],
    ["--dashboard-port 70000", /--dashboard-port 70000: expected a whole number from 0 to 65535/],
    ["--dashboard-port 1 --no-dashboard", /--dashboard-port and --no-dashboard exclude each other/],
    ["--aws --dashboard-port 8090", /--dashboard-port: the dashboard shows the embedded pipeline/],
  ];
  for (const [args, expected] of bad) {
    it(`refuses ${args} in one line`, () => {
      const msg = errorOf(() => parseSimulateArgs(args.split(" ")));
      assert.match(msg, expected);
      assert.ok(!msg.includes("\n"), msg);
    });
  }

  it("parses subscribe's options and refuses endpoint files without --endpoint", () => {
    const o = parseSubscribeArgs(["--topic", "SeattleStoreTemp/#", "--count", "2"]);
    assert.ok(o !== "help");
    assert.equal(o.topic, "SeattleStoreTemp/#");
    assert.equal(o.count, 2);
    assert.equal(o.endpoint, undefined);
    assert.equal(o.protocol, 5);
    // Lifecycle events (life-cycle-events.html) can be watched; Basic Ingest topics cannot.
    const presence = parseSubscribeArgs(["--topic", "$aws/events/presence/+/+"]);
    assert.ok(presence !== "help");
    assert.equal(presence.topic, "$aws/events/presence/+/+");
    assert.match(
      errorOf(() => parseSubscribeArgs(["--topic", "$aws/rules/sensor_rule/#"])),
      /Basic Ingest topics .* reach their rule only/,
    );
    assert.match(
      errorOf(() => parseSubscribeArgs(["--topic", "$SYS/#"])),
      /reserved/,
    );
    const v4 = parseSubscribeArgs(["--protocol", "4"]);
    assert.ok(v4 !== "help");
    assert.equal(v4.protocol, 4);
    assert.match(
      errorOf(() => parseSubscribeArgs(["--key", "k"])),
      /--key needs --endpoint HOST/,
    );
  });
});

describe("npm run simulate / subscribe (child processes)", function () {
  this.timeout(60_000);
  const running: ChildProcess[] = [];
  afterEach(() => {
    for (const c of running.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
  });
  function start(args: string[], env?: NodeJS.ProcessEnv): Run {
    const r = cli(args, env);
    running.push(r.child);
    return r;
  }

  it("--help documents every option and exits 0", async () => {
    const r = start(["simulate", "--help"]);
    assert.equal(await r.done, 0);
    for (const opt of [
      "--stack",
      "--devices",
      "--rate",
      "--duration",
      "--count",
      "--qos",
      "--topic",
      "--source",
      "--csv",
      "--speedup",
      "--seed",
      "--rate-limit",
      "--fast",
      "--no-probe",
      "--endpoint",
      "--cert",
      "--key",
      "--ca",
      "--aws",
      "--key-dir",
      "--state-dir",
    ]) {
      assert.ok(r.stdout.includes(opt), `--help does not mention ${opt}`);
    }
  });

  it("exits 2 with one line on stderr for a bad option, no pulumi, or no running simulate", async () => {
    const cases: Array<[string[], RegExp, NodeJS.ProcessEnv?]> = [
      [["simulate", "--qos", "2"], /^simulate: --qos 2: AWS IoT Core does not support QoS 2/],
      [
        ["simulate", "--aws"],
        /^simulate: --aws needs the Pulumi CLI, which is not installed/,
        { ...process.env, PATH: path.dirname(process.execPath) },
      ],
      [
        ["subscribe", "--stack", "prod", "--state-dir", tempDir("nosim")],
        /^subscribe: no embedded pipeline of stack prod is running .*npm run simulate/,
      ],
    ];
    const runs = cases.map(([args, , env]) => start(args, env));
    for (let i = 0; i < cases.length; i++) {
      assert.equal(await runs[i].done, 2, runs[i].stderr);
      assert.match(runs[i].stderr, cases[i][1]);
      assert.equal(runs[i].stderr.trim().split("\n").length, 1, runs[i].stderr);
    }
  });

  it("refuses more devices than the fleet, an unknown stack or command before starting anything", async () => {
    const base = parseSimulateArgs(["--state-dir", tempDir("nothing")]);
    assert.ok(base !== "help");
    const out = { line: () => undefined, progress: () => undefined };
    await assert.rejects(
      simulate({ ...base, devices: 5 }, out),
      /^UsageError: --devices 5: stack dev's fleet has 1 thing\(s\) \(store-sensor-seattle1\); use at most 1/,
    );
    await assert.rejects(
      simulate({ ...base, stack: "nope" }, out),
      /unknown stack "nope": no Pulumi.nope.yaml; known stacks: dev, fleet, prod/,
    );
    assert.ok(!fs.existsSync(path.join(base.stateDir, "pki")), "nothing may start on bad input");
    const errors: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string) => errors.push(chunk) > 0) as typeof write;
    try {
      assert.equal(await main(["frobnicate"]), 2);
    } finally {
      process.stderr.write = write;
    }
    assert.deepEqual(errors, [
      'frobnicate: unknown command "frobnicate"; use simulate or subscribe\n',
    ]);
  });

  it("runs a short simulation on the embedded pipeline, a subscriber attaches, SIGINT stops it with a summary", async () => {
    const state = tempDir("sim");
    const sim = start([
      "simulate",
      "--duration",
      "30",
      "--rate",
      "5",
      "--fast",
      "--state-dir",
      state,
    ]);
    const runFile = path.join(state, "run", "dev.json");
    await until(
      () => fs.existsSync(runFile) || sim.child.exitCode !== null,
      "the run file",
      30_000,
    );
    assert.ok(fs.existsSync(runFile), sim.stdout + sim.stderr);

    const second = parseSimulateArgs(["--state-dir", state]);
    assert.ok(second !== "help");
    await assert.rejects(
      simulate(second, { line: () => undefined, progress: () => undefined }),
      /the embedded pipeline of stack dev is already running \(pid \d+, mqtts:\/\/127.0.0.1:\d+\); stop it first/,
    );

    const sub = start(["subscribe", "--count", "3", "--state-dir", state]);
    assert.equal(await sub.done, 0, sub.stdout + sub.stderr);
    const lines = sub.stdout.split("\n").filter((l) => l.startsWith("SeattleStoreTemp/1 "));
    assert.equal(lines.length, 3, sub.stdout);
    for (const l of lines) {
      const msg = JSON.parse(l.slice(l.indexOf(" ") + 1)) as { thing: string };
      assert.equal(msg.thing, "store-sensor-seattle1");
    }

    sim.child.kill("SIGINT");
    assert.equal(await sim.done, 0, sim.stdout + sim.stderr);
    assert.match(sim.stderr, /SIGINT: stopping/);
    assert.match(sim.stdout, /stopping: no new messages; waiting for acknowledgements/);
    const count = (label: string) =>
      Number(new RegExp(`^  ${label}\\s+(\\d+)`, "m").exec(sim.stdout)?.[1]);
    assert.ok(count("sent") > 0, sim.stdout);
    assert.equal(count("acknowledged \\(PUBACK\\)"), count("sent"), sim.stdout);
    assert.equal(count("unacknowledged at stop"), 0);
    assert.match(sim.stdout, /local CA: issued 4 certificate\(s\)/);
    assert.ok(!fs.existsSync(runFile), "the run file must go when the simulation ends");
    // Keys readable by the owner only.
    const mode = fs.statSync(
      path.join(state, "pki", "identities", "store-sensor-seattle1.key"),
    ).mode;
    assert.equal(mode & 0o777, 0o600);
  });

  it("runs to the end by itself (count), reuses the certificates, replays a CSV with a bad row, and probes", async () => {
    const state = tempDir("sim2");
    const csv = path.join(state, "weather.csv");
    fs.writeFileSync(
      csv,
      "date,precipitation,temp_max,temp_min,wind,weather\n2012-01-01,0.0,12.8,5.0,4.7,drizzle\n2012-01-02,x,10.6,2.8,4.5,rain\n2012-01-03,0.8,11.7,7.2,2.3,rain\n",
    );
    const first = start(["simulate", "--count", "1", "--no-probe", "--state-dir", state]);
    assert.equal(await first.done, 0, first.stdout + first.stderr);
    const r = start([
      "simulate",
      "--source",
      "replay",
      "--csv",
      csv,
      "--speedup",
      "3600",
      "--count",
      "3",
      "--rate",
      "10",
      "--state-dir",
      state,
    ]);
    assert.equal(await r.done, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /replay: weather.csv line 3 skipped: precipitation "x" is not a number/);
    assert.match(r.stdout, /replay: 2 day\(s\) from weather.csv, 1 malformed row\(s\) skipped/);
    assert.doesNotMatch(r.stdout, /local CA: issued/, "the second run must reuse the certificates");
    assert.match(r.stdout, /^  acknowledged \(PUBACK\)\s+3$/m);
    assert.match(
      r.stdout,
      /probe: store-sensor-seattle1 published one valid message outside its own topic, to SeattleStoreTemp\/1\/probe: ACCEPTED/,
    );
  });
});

describe("npm run simulate stopped by a signal to its process group", function () {
  this.timeout(60_000);

  // SIGTERM to the group reaches npm, the shell npm starts the script with, and simulate. A shell
  // that stays in between dies of it at once; npm, seeing its child killed, exits 143 while
  // simulate runs on, orphaned. And npm forwards the signal to its child, which then receives it
  // twice. The script execs node (no shell, no tsx wrapper process), and simulate takes a repeat of
  // the same signal within a second as that echo.
  it("stops simulate with its summary and exit code, and npm exits only after it", async () => {
    const state = tempDir("sigterm");
    const npmCli = process.env.npm_execpath;
    const [command, first] =
      npmCli !== undefined && npmCli.endsWith(".js") ? [process.execPath, [npmCli]] : ["npm", []];
    const args = ["run", "simulate", "--", "--duration", "30", "--rate", "5", "--fast"];
    const child = spawn(command, [...first, ...args, "--no-probe", "--state-dir", state], {
      cwd: PROJECT_DIR,
      // Node 22 first, as for every command here; the group is npm's own.
      env: { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` },
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<{ code: number | null; groupAlive: boolean }>((resolve) =>
      child.once("exit", (code) => resolve({ code, groupAlive: groupAlive(child.pid as number) })),
    );
    try {
      await until(() => /sent [1-9]/.test(stdout) || child.exitCode !== null, "a publish", 30_000);
      process.kill(-(child.pid as number), "SIGTERM");
      const { code, groupAlive: alive } = await exited;
      assert.equal(alive, false, `npm exited while its script still ran:\n${stdout}${stderr}`);
      // docs/devices.md: exit 0 when readings were acknowledged (a stop by signal included).
      assert.equal(code, 0, stdout + stderr);
      assert.equal(stderr.match(/SIGTERM: stopping/g)?.length, 1, stderr);
      assert.match(stdout, /^summary: stack dev/m);
      assert.match(stdout, /^ {2}acknowledged \(PUBACK\) +[1-9]/m);
    } finally {
      if (groupAlive(child.pid as number)) process.kill(-(child.pid as number), "SIGKILL");
    }
  });
});

/** Whether any process of the group `pgid` is still running. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}
