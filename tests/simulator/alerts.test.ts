// prod's alerts rule as a user meets it: `npm run simulate -- --stack prod` with readings above
// the rule's threshold, `npm run subscribe -- --stack prod --topic 'alerts/#'` printing the
// republished alerts, and the run's dashboard and alarm report showing the rule's CloudWatch
// metric and its alarm. Child processes, the embedded pipeline, real TLS.
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { PROJECT_DIR, TS_NODE_FLAGS } from "../../core/project";
import { outcomeOf, type Outcome } from "../helpers/process";
import { tempDir } from "../helpers/temp";
import { until } from "../helpers/wait";

function cli(args: string[]) {
  const child = spawn(process.execPath, [...TS_NODE_FLAGS, "simulator/cli.ts", ...args], {
    cwd: PROJECT_DIR,
    stdio: ["ignore", "pipe", "pipe"],
  });
  return { child, outcome: outcomeOf(child) };
}

describe("prod's alerts rule through npm run simulate and npm run subscribe", function () {
  this.timeout(120_000);
  const children: ReturnType<typeof cli>["child"][] = [];
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
  });

  it("republishes each reading above 30 °C to alerts/<thing>, and its metric's alarm would fire", async () => {
    const state = tempDir("alerts");
    // A heat wave: the replayed readings run between 31 and 36 °C, all above the threshold.
    const csv = path.join(state, "hot.csv");
    fs.writeFileSync(
      csv,
      "date,precipitation,temp_max,temp_min,wind,weather\n2012-07-01,0.0,36.0,31.0,4.7,sun\n2012-07-02,0.0,35.0,31.5,4.5,sun\n",
    );
    const sim = cli([
      "simulate",
      "--stack",
      "prod",
      "--source",
      "replay",
      "--csv",
      csv,
      "--speedup",
      "3600",
      "--duration",
      "60",
      "--rate",
      "2",
      "--fast",
      "--no-probe",
      "--state-dir",
      state,
    ]);
    children.push(sim.child);
    const runFile = path.join(state, "run", "prod.json");
    await until(
      () => fs.existsSync(runFile) || sim.child.exitCode !== null,
      "the run file",
      60_000,
    );
    assert.ok(fs.existsSync(runFile), "simulate started the embedded pipeline");

    const sub = cli([
      "subscribe",
      "--stack",
      "prod",
      "--topic",
      "alerts/#",
      "--count",
      "4",
      "--state-dir",
      state,
    ]);
    children.push(sub.child);
    const s: Outcome = await sub.outcome;
    assert.equal(s.code, 0, s.stdout + s.stderr);
    const alerts = s.stdout.split("\n").filter((l) => l.startsWith("alerts/"));
    assert.equal(alerts.length, 4, s.stdout);
    for (const line of alerts) {
      const [topic, json] = [line.slice(0, line.indexOf(" ")), line.slice(line.indexOf(" ") + 1)];
      const body = JSON.parse(json) as { thing: string; temperature: number; alerted_at: number };
      // The topic's template ${topic(2)} is the publishing thing; the SELECT's fields alone.
      assert.equal(topic, `alerts/${body.thing}`);
      assert.match(body.thing, /^store-sensor-seattle[123]$/);
      assert.ok(body.temperature > 30, line);
      assert.deepEqual(Object.keys(body).sort(), ["alerted_at", "temperature", "thing"]);
    }

    sim.child.kill("SIGINT");
    const r = await sim.outcome;
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const matched = /^ {2}matched by rule alerts\s+(\d+) of (\d+) on its topic$/m.exec(r.stdout);
    assert.ok(matched, r.stdout);
    assert.equal(matched[1], matched[2], "every hot reading crossed the threshold");
    const samples =
      /^ {2}metric IotPipeline\/Alerts\/HighTemperature \(samples \/ sum, None\)\s+(\d+) \/ [\d.]+$/m.exec(
        r.stdout,
      );
    assert.ok(samples, r.stdout);
    assert.equal(samples[1], matched[1], "one datum per alert");
    assert.match(
      r.stdout,
      /WOULD FIRE rule-metric: alarm iot-pipeline-prod-alerts-HighTemperature: IotPipeline\/Alerts\/HighTemperature SampleCount \d+ above 0/,
    );
  });
});
