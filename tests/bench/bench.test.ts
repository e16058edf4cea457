// Smoke check of `npm run bench -- --quick`: the benchmark still runs end to end and its JSON holds
// every figure with sane values. No timed thresholds: speed is the benchmark's report, not a test.
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { FIGURE_IDS, type BenchRun } from "../../bench/report";

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
    "brokerPeakRssMiB",
    "brokerKiBPerDevice",
    "floor.tlsClientKiBPerConnection",
    "floor.tlsServerKiBPerConnection",
  ],
  pipeline: [
    "baseline.msgPerSec",
    "pipeline.ackedMsgPerSec",
    "pipeline.e2eMsgPerSec",
    "pipeline.ratio",
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
};

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
]);

function runBench(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", path.join(ROOT, "bench", "run.ts"), ...args],
      { cwd: ROOT, timeout: 170_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
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
      const run = JSON.parse(fs.readFileSync(path.join(out, files[0]), "utf8")) as BenchRun;
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
        for (const key of EXPECTED[f.id]) {
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
      const soak = run.figures.find((f) => f.id === "soak");
      const lost = soak?.metrics.find((m) => m.key === "soak.lost")?.value;
      assert.equal(lost, 0, "the soak lost no acknowledged record through its kill -9");
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
