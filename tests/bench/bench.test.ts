// Smoke check of `npm run bench -- --quick`: the benchmark still runs end to end and its JSON holds
// every figure with sane values. No timed thresholds: speed is the benchmark's report, not a test.
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { nodeFlagsOf } from "../../bench/program";
import { FIGURE_IDS, type BenchRun, type FigureResult } from "../../bench/report";
import { findMosquittoBroker, MOSQUITTO_BIN, REQUIRE_MOSQUITTO } from "../../tools/mosquitto";
import { TS_NODE_FLAGS } from "../../core/project";

const ROOT = path.resolve(__dirname, "..", "..");

/** The JSON contract: the metric keys each figure must report. */
const EXPECTED: Record<(typeof FIGURE_IDS)[number], string[]> = {
  publisher: [
    "qos0.bareMsgPerSec",
    "qos0.publisherMsgPerSec",
    "qos0.ratio",
    "qos1.bareMsgPerSec",
    "qos1.publisherMsgPerSec",
    "qos1.ratio",
    // The spread of the per-round ratios and the client's CPU per message (issue 28).
    ...[0, 1].flatMap((q) => [
      `qos${q}.ratio.min`,
      `qos${q}.ratio.p25`,
      `qos${q}.ratio.p75`,
      `qos${q}.ratio.max`,
      `qos${q}.bareCpuMicrosPerMsg`,
      `qos${q}.publisherCpuMicrosPerMsg`,
      `qos${q}.sendCpuMicrosPerMsg`,
      `qos${q}.cpuRatio`,
    ]),
  ],
  fleet: [
    "devices",
    "connectAllSeconds",
    "connectP50Ms",
    "connectP99Ms",
    "connectFailures",
    "ackedMsgPerSec",
    "ackedRatio",
    "notAcked",
    "simulatorPeakRssMiB",
    "simulatorKiBPerDevice",
    "simulatorConnectedKiBPerDevice",
    "simulatorSettledKiBPerDevice",
    "brokerPeakRssMiB",
    "brokerKiBPerDevice",
    "brokerConnectedKiBPerDevice",
    "brokerSettledKiBPerDevice",
    "floor.tlsClientKiBPerConnection",
    "floor.tlsServerKiBPerConnection",
    "simulatorVsFloor",
    "simulatorConnectedVsFloor",
    "simulatorSettledVsFloor",
    "brokerVsFloor",
    "brokerConnectedVsFloor",
    "brokerSettledVsFloor",
  ],
  pipeline: [
    "baseline.qos0.msgPerSec",
    "baseline.msgPerSec",
    "pipeline.ackedMsgPerSec",
    "pipeline.mqtt5.ackedMsgPerSec",
    "pipeline.dashboard.ackedMsgPerSec",
    "pipeline.dashboard.ratio",
    "pipeline.dashboard.microsPerMessage",
    "pipeline.dashboard.tickMs",
    "pipeline.e2eMsgPerSec",
    "pipeline.ackedRatio",
    "pipeline.ratio",
    "baseline.qos1.cpuMicrosPerMessage",
    "pipeline.qos1.cpuMicrosPerMessage",
    "pipeline.mqtt5.qos1.cpuMicrosPerMessage",
    "pipeline.cpuRatio",
    "pipeline.recordsPerFsync",
    "pipeline.latencyP50Ms",
    "pipeline.latencyP99Ms",
    "pipeline.recordsDelivered",
    "pipeline.objects",
    "pipeline.peakRssMiB",
    "pipeline.rssLastThirdMiB",
    "baseline.peakRssMiB",
  ],
  program: [
    "things",
    "resources",
    "customResources",
    "loadSeconds",
    "buildSeconds",
    "buildCpuSeconds",
    "totalBuildSeconds",
    "checkSeconds",
    "checkCpuSeconds",
    "checkViolations",
    "peakRssMiB",
    // The large stack, built several times (issue 28): the medians and the spread of the runs.
    "large.things",
    "large.totalBuildSeconds",
    "large.totalBuildSeconds.min",
    "large.totalBuildSeconds.max",
    "large.buildCpuSeconds",
    "large.buildCpuSeconds.min",
    "large.buildCpuSeconds.max",
    "large.runs",
  ],
  "rule-sql": [
    "payloadBytes",
    "jsonParse.perSec",
    "seed.perSec",
    "seed.ratio",
    "complex.perSec",
    "complex.ratio",
    "peakRssMiB",
  ],
  policy: [
    "contexts",
    "baseline.decisionsPerSec",
    "leastPrivilege.decisionsPerSec",
    "leastPrivilege.ratio",
    "conditions20.decisionsPerSec",
    "conditions20.ratio",
    "mismatches",
  ],
  provisioning: [
    "preIssuedP50Ms",
    "preIssuedP99Ms",
    "preIssuedPerSecond",
    "provisionedP50Ms",
    "provisionedP99Ms",
    "provisionedPerSecond",
    "failures",
    "fleetStackResources",
    "fleetStack10kResources",
    "preRegisteredResources",
    "fleetStackBuildSeconds",
    "preRegisteredBuildSeconds",
    "peakRssMiB",
  ],
  query: [
    "readings",
    "jsonMiB",
    "parquetMiB",
    "baseline.rowsPerSec",
    "json.rowsPerSec",
    "json.ratio",
    "parquet.rowsPerSec",
    "parquet.ratio",
  ],
  soak: [
    "soak.acked",
    "soak.delivered",
    "soak.lost",
    "soak.duplicates",
    "soak.deliveredNotAcked",
    "soak.baseline.ackP99Ms",
    "soak.attack.ackP99Ms",
    "soak.attack.ackP99OutsideRestartMs",
    "soak.attack.p99Ratio",
    "soak.restartSeconds",
    "soak.restartCaughtUpSeconds",
    "soak.baseline.peakRssMiB",
    "soak.attack.peakRssMiB",
    "soak.frozenSubscriberDrops",
    "soak.frozenSubscriberDisconnects",
    "soak.oversizeRefused",
    "soak.idleSocketsClosed",
  ],
  flood: [
    "flood.acked",
    "flood.lost",
    "flood.duplicates",
    "flood.qos1AckedBeforeKill",
    "flood.maxRowsOfOneThingInOneObject",
    "flood.objects",
    "flood.qos0Delivered",
    "flood.restartSeconds",
    "flood.peakRssMiB",
    "flood.baseline.peakRssMiB",
    "flood.qos1.peakRssMiB",
    "flood.restart.peakRssMiB",
    "flood.qos0.peakRssMiB",
    "flood.baseline.canaryP99Ms",
    "flood.qos1.canaryP99Ms",
    "flood.restart.canaryP99Ms",
    "flood.qos0.canaryP99Ms",
    "flood.qos1.canaryP99Ratio",
    "flood.qos0.canaryP99Ratio",
  ],
};

/** The pipeline figure's keys from its Mosquitto baseline: present exactly where it is installed. */
const MOSQUITTO_KEYS = [
  "mosquitto.qos0.msgPerSec",
  "mosquitto.qos1.msgPerSec",
  "mosquitto.qos1.cpuMicrosPerMessage",
  "pipeline.vsMosquittoQos1",
  "mosquitto.peakRssMiB",
];
const mosquittoInstalled = "bin" in findMosquittoBroker();

/** Counts that are right at zero (a failure count, violations of a clean stack). */
const MAY_BE_ZERO = new Set([
  "fleet.connectFailures",
  "fleet.notAcked",
  "program.checkViolations",
  "policy.mismatches",
  "provisioning.failures",
  // The soak's failure counts, and what a few seconds of attack may not reach (a 10 s handshake
  // timeout, the kernel's buffers in front of a frozen subscriber).
  "soak.soak.lost",
  "soak.soak.duplicates",
  "soak.soak.deliveredNotAcked",
  "soak.soak.frozenSubscriberDrops",
  "soak.soak.frozenSubscriberDisconnects",
  "soak.soak.idleSocketsClosed",
  // The flood figure's failure counts.
  "flood.flood.lost",
  "flood.flood.duplicates",
]);

function runBench(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...TS_NODE_FLAGS, path.join(ROOT, "bench", "run.ts"), ...args],
      { cwd: ROOT, env, timeout: 170_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Results JSON of a run written to `out`, which must hold exactly one. */
function readRun(out: string): BenchRun {
  const files = fs.readdirSync(out).filter((f) => f.endsWith(".json"));
  assert.equal(files.length, 1, `expected one results file, found ${files.join(", ")}`);
  return JSON.parse(fs.readFileSync(path.join(out, files[0]), "utf8")) as BenchRun;
}

/**
 * The pipeline figure's Mosquitto baseline: measured with its metrics and target where Mosquitto
 * is installed; elsewhere no Mosquitto metric, a note saying why and a target that is not met.
 */
function assertPipelineAgainstMosquitto(pipeline: FigureResult, installed: boolean): void {
  const keys = new Set(pipeline.metrics.map((m) => m.key));
  const vs = pipeline.targets.find((t) => t.metric === "pipeline.vsMosquittoQos1");
  assert.ok(vs, "the pipeline figure has its target against Mosquitto");
  const perFsync = pipeline.metrics.find((m) => m.key === "pipeline.recordsPerFsync")?.value;
  assert.ok(
    perFsync !== undefined && perFsync >= 1,
    `records per fsync ${perFsync}: an fsync carries at least one record`,
  );
  if (installed) {
    for (const key of MOSQUITTO_KEYS) assert.ok(keys.has(key), `${key} is missing`);
    assert.match(String(pipeline.params.mosquitto), /^2\./, "the baseline is Mosquitto 2");
    assert.equal(vs.notMeasured, undefined);
    assert.equal(typeof vs.value, "number");
  } else {
    const present = MOSQUITTO_KEYS.filter((k) => keys.has(k));
    assert.deepEqual(present, [], "no Mosquitto metric without Mosquitto");
    assert.ok(
      pipeline.notes.some((n) => n.startsWith("Mosquitto not measured: ")),
      `a note says why Mosquitto was not measured: ${pipeline.notes.join(" | ")}`,
    );
    assert.equal(vs.met, false, "a target against an unmeasured baseline is not met");
    assert.equal(vs.value, null);
    assert.match(vs.notMeasured ?? "", /no such file/);
  }
}

describe("npm run bench", () => {
  it("refuses an unknown figure with one line and exit 2", async () => {
    const r = await runBench(["--only", "nope"]);
    assert.equal(r.code, 2, `expected exit 2, got ${r.code}; stderr: ${r.stderr}`);
    assert.match(r.stderr, /^bench: --only: unknown figure "nope"; choose from publisher, fleet/);
    assert.equal(r.stderr.trim().split("\n").length, 1, "the error is one line");
  });

  it("--quick runs every figure and writes JSON with each figure's metrics, non-zero", async function () {
    this.timeout(180_000);
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "bench-test-"));
    try {
      const r = await runBench(["--quick", "--out", out]);
      assert.equal(r.code, 0, `bench --quick exited ${r.code}\n${r.stdout}\n${r.stderr}`);
      const files = fs.readdirSync(out).filter((f) => f.endsWith(".json"));
      assert.equal(files.length, 1, `expected one results file, found ${files.join(", ")}`);
      assert.ok(
        r.stdout.includes(`results: `) && r.stdout.includes(files[0]),
        "the results path is printed",
      );
      const run = readRun(out);
      assert.equal(run.mode, "quick");
      assert.ok(!Number.isNaN(Date.parse(run.date)), `date ${run.date} is an ISO date`);
      assert.ok(run.machine.cpus >= 1, "the CPU count is recorded");
      assert.equal(run.machine.node, process.version);
      assert.deepEqual(
        run.figures.map((f) => f.id),
        [...FIGURE_IDS],
      );
      for (const f of run.figures) {
        assert.equal(f.status, "measured", `${f.id} not measured: ${f.reason ?? ""}`);
        const byKey = new Map(f.metrics.map((m) => [m.key, m.value]));
        const expected = [
          ...EXPECTED[f.id],
          ...(f.id === "pipeline" && mosquittoInstalled ? MOSQUITTO_KEYS : []),
        ];
        for (const key of expected) {
          const value = byKey.get(key);
          assert.equal(typeof value, "number", `${f.id}.${key} is missing`);
          const v = value as number;
          assert.ok(Number.isFinite(v) && v >= 0, `${f.id}.${key} = ${v} is not a count or rate`);
          if (!MAY_BE_ZERO.has(`${f.id}.${key}`)) assert.ok(v > 0, `${f.id}.${key} is 0`);
        }
        assert.ok(f.targets.length > 0, `${f.id} checks its targets`);
      }
      const fleet = run.figures.find((f) => f.id === "fleet");
      const failures = fleet?.metrics.find((m) => m.key === "connectFailures")?.value;
      assert.equal(failures, 0, "every device of the quick fleet connected");
      const pipeline = run.figures.find((f) => f.id === "pipeline");
      const delivered = pipeline?.metrics.find((m) => m.key === "pipeline.recordsDelivered");
      assert.equal(delivered?.value, 1, "every acknowledged record was delivered");
      assertPipelineAgainstMosquitto(pipeline as FigureResult, mosquittoInstalled);
      const soak = run.figures.find((f) => f.id === "soak");
      const lost = soak?.metrics.find((m) => m.key === "soak.lost")?.value;
      assert.equal(lost, 0, "the soak lost no acknowledged record through its kill -9");
      const flood = run.figures.find((f) => f.id === "flood");
      const floodLost = flood?.metrics.find((m) => m.key === "flood.lost")?.value;
      assert.equal(floodLost, 0, "the floods on prod's Parquet lake lost no acknowledged record");
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  describe("without Mosquitto (a binary that is not there)", () => {
    const missing: NodeJS.ProcessEnv = {
      ...process.env,
      [MOSQUITTO_BIN]: "/nonexistent/mosquitto",
    };

    it("measures the rest of the pipeline figure, says why Mosquitto was skipped and exits 0", async function () {
      this.timeout(120_000);
      const out = fs.mkdtempSync(path.join(os.tmpdir(), "bench-test-"));
      try {
        const env = { ...missing };
        delete env[REQUIRE_MOSQUITTO];
        const r = await runBench(["--quick", "--only", "pipeline", "--out", out], env);
        assert.equal(r.code, 0, `bench exited ${r.code}\n${r.stdout}\n${r.stderr}`);
        const skips = r.stderr.split("\n").filter((l) => /Mosquitto baseline skipped/.test(l));
        assert.deepEqual(
          skips,
          [
            `[pipeline] Mosquitto baseline skipped: ${MOSQUITTO_BIN}=/nonexistent/mosquitto: no such file`,
          ],
          "one log line says why",
        );
        const [pipeline] = readRun(out).figures;
        assert.equal(pipeline.status, "measured", pipeline.reason);
        for (const key of EXPECTED.pipeline) {
          assert.ok(
            pipeline.metrics.some((m) => m.key === key),
            `${key} is measured without Mosquitto`,
          );
        }
        assertPipelineAgainstMosquitto(pipeline, false);
        assert.match(
          r.stdout,
          /pipeline +pipeline acked \/ Mosquitto QoS 1 >= 1 +- +not measured/,
          "the table says the target was not measured, not missed or met",
        );
      } finally {
        fs.rmSync(out, { recursive: true, force: true });
      }
    });

    it(`fails the figure, before measuring, under ${REQUIRE_MOSQUITTO}=1`, async function () {
      this.timeout(60_000);
      const out = fs.mkdtempSync(path.join(os.tmpdir(), "bench-test-"));
      try {
        const env = { ...missing, [REQUIRE_MOSQUITTO]: "1" };
        const r = await runBench(["--quick", "--only", "pipeline", "--out", out], env);
        assert.equal(r.code, 1, `expected exit 1, got ${r.code}\n${r.stdout}\n${r.stderr}`);
        const [pipeline] = readRun(out).figures;
        assert.equal(pipeline.status, "not measured");
        assert.equal(
          pipeline.reason,
          `${MOSQUITTO_BIN}=/nonexistent/mosquitto: no such file; ${REQUIRE_MOSQUITTO}=1 requires it`,
        );
        assert.doesNotMatch(r.stderr, /baseline: broker alone/, "nothing was measured first");
      } finally {
        fs.rmSync(out, { recursive: true, force: true });
      }
    });
  });
});

describe("bench program figure: the process runs as npm run check does", () => {
  it("takes the Node flags a script gives the loader before its file", () => {
    const run = "exec node --require ./tools/ts-hook.cjs";
    assert.deepEqual(nodeFlagsOf(`${run} --max-semi-space-size=64 --trace-gc tools/check.ts --x`), [
      "--max-semi-space-size=64",
      "--trace-gc",
    ]);
    assert.deepEqual(nodeFlagsOf(`${run} tools/check.ts`), []);
    assert.throws(() => nodeFlagsOf("tsx tools/check.ts"), /expected "exec node --require/);
    assert.throws(() => nodeFlagsOf("node tools/check.ts"), /expected "exec node --require/);
  });

  it("npm run check's own script parses (the figure forks with its flags)", () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    const flags = nodeFlagsOf(pkg.scripts.check);
    assert.ok(
      flags.every((f) => /^--[a-z-]+(=\S+)?$/.test(f)),
      `Node flags only: ${flags.join(" ")}`,
    );
  });
});
