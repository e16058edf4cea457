// The dashboard page in a real browser: headless Chromium (Debian's package, driven by
// puppeteer-core) against a short `npm run simulate`, started the way a user starts it. The page
// must show the run's own numbers: every device in the table, as many window points as windows
// delivered, the widgets' totals equal to the figures the run prints at its end.
// UPDATE_SCREENSHOT=1 writes the page as docs/images/dashboard.png.
import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import * as path from "node:path";
import puppeteer, { type Browser } from "puppeteer-core";
import { PROJECT_DIR } from "../../core/project";
import { loadPlan } from "../../core/plan";
import { describeWithChromium } from "../helpers/chromium";
import { outcomeOf } from "../helpers/process";
import { tempDir } from "../helpers/temp";
import { until } from "../helpers/wait";

/** A figure of the run's printed summary: `  <label>  <number>`. */
function figure(stdout: string, label: string): number {
  const escaped = label.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const m = new RegExp(`^ {2}${escaped} +(\\d+)`, "m").exec(stdout);
  assert.ok(m, `no "${label}" in the summary:\n${stdout}`);
  return Number(m[1]);
}

describeWithChromium(
  "dashboard page in headless Chromium, against npm run simulate",
  function (chromium) {
    this.timeout(120_000);
    let browser: Browser | undefined;
    after(async () => browser?.close());

    it("shows every device, one window point per window delivered, and the run's own totals", async () => {
      const plan = loadPlan("prod");
      const things = plan.config.things.map((t) => t.name);
      const state = tempDir("dashboard-browser");
      const npmCli = process.env.npm_execpath;
      const [command, first] =
        npmCli !== undefined && npmCli.endsWith(".js") ? [process.execPath, [npmCli]] : ["npm", []];
      const args = ["run", "simulate", "--", "--stack", "prod", "--duration", "14", "--fast"];
      const child = spawn(command, [...first, ...args, "--no-probe", "--state-dir", state], {
        cwd: PROJECT_DIR,
        env: { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH}` },
        stdio: ["ignore", "pipe", "pipe"],
      });
      const outcome = outcomeOf(child);
      let stdout = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      try {
        await until(
          () => /^dashboard: http:\/\/127\.0\.0\.1:\d+\//m.test(stdout) || child.exitCode !== null,
          "the dashboard's address",
          60_000,
        );
        const url = /^dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/m.exec(stdout)?.[1];
        assert.ok(url, `no dashboard address printed:\n${stdout}`);
        assert.match(
          stdout,
          /^embedded pipeline of stack prod .* on mqtts:\/\/127\.0\.0\.1:\d+;.*\ndashboard: /m,
        );

        browser = await puppeteer.launch({
          executablePath: chromium,
          headless: true,
          // CI runs as root, where Chromium's sandbox cannot start; containers often have a small
          // /dev/shm, which Chromium would otherwise crash on.
          args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        });
        const page = await browser.newPage();
        await page.setViewport({ width: 1280, height: 1000 });
        const problems: string[] = [];
        page.on("pageerror", (e) => problems.push(String(e)));
        // The event stream itself ends when the run does (the page then closes it): not a failure.
        page.on("requestfailed", (r) => {
          if (!r.url().endsWith("/events")) problems.push(`${r.url()}: ${r.failure()?.errorText}`);
        });
        await page.goto(url);

        // Live: the page fills while devices publish.
        await page.waitForSelector("#status[data-state=live]", { timeout: 20_000 });
        // (A string: this file is compiled without the DOM's types; the browser evaluates it.)
        await page.waitForFunction(
          `Number(document.querySelector("[data-metric='AWS/IoT|PublishIn.Success|Protocol|MQTT']")?.getAttribute("data-total") ?? 0) > 0`,
          { timeout: 30_000 },
        );
        // The run ends: the page keeps its final figures.
        await page.waitForSelector("body[data-ended=true]", { timeout: 60_000 });
        await page.waitForSelector("#status[data-state=ended]", { timeout: 10_000 });
        const { code, stderr } = await outcome;
        assert.equal(code, 0, stdout + stderr);

        const rows = await page.$$eval("#devices tbody tr", (trs) =>
          trs.map((tr) => ({
            thing: tr.getAttribute("data-thing"),
            sent: Number(tr.querySelector("[data-col=sent]")?.textContent?.replace(/,/g, "")),
            acked: Number(tr.querySelector("[data-col=acked]")?.textContent?.replace(/,/g, "")),
          })),
        );
        assert.deepEqual(
          rows.map((r) => r.thing),
          things,
        );
        assert.equal(
          rows.reduce((n, r) => n + r.sent, 0),
          figure(stdout, "sent"),
        );
        assert.equal(
          rows.reduce((n, r) => n + r.acked, 0),
          figure(stdout, "acknowledged (PUBACK)"),
        );

        const windows = figure(stdout, "analytics windows delivered under analytics/");
        assert.ok(windows > 0, "the run delivered no window");
        assert.equal(await page.$$eval("#windows svg g.window", (g) => g.length), windows);
        assert.equal(
          await page.$eval("#windows-panel", (p) =>
            Number(p.getAttribute("data-windows-delivered")),
          ),
          windows,
        );

        // The widgets are the stack's dashboard, in its order, with the run's totals.
        assert.deepEqual(
          await page.$$eval("[data-widget-title]", (w) =>
            w.map((e) => e.getAttribute("data-widget-title")),
          ),
          [
            "Messages in (MQTT publishes accepted)",
            "Rule sensor_rule: matches and errors",
            "Records delivered to S3",
            "Delivery freshness (s)",
            "Window output (windows delivered) and Flink downtime",
          ],
        );
        const total = (key: string) =>
          page.$eval(`[data-metric='${key}']`, (e) => Number(e.getAttribute("data-total")));
        assert.equal(
          await total("AWS/IoT|PublishIn.Success|Protocol|MQTT"),
          figure(stdout, "broker publishes accepted"),
        );
        assert.equal(
          await total("AWS/IoT|TopicMatch|RuleName|sensor_rule"),
          figure(stdout, "rule matches (TopicMatch, sensor_rule)"),
        );
        assert.equal(await total("iot-pipeline|RuleErrors|RuleName|sensor_rule"), 0);
        assert.equal(
          await total("AWS/Firehose|DeliveryToS3.Records|DeliveryStreamName|weather-data-stream"),
          figure(stdout, "records delivered"),
        );
        assert.equal(
          await total(
            "AWS/Firehose|DeliveryToS3.Records|DeliveryStreamName|weather-data-stream-windows",
          ),
          windows,
        );

        // The alarms the stack deploys, with its thresholds; none fired in a clean run.
        const alarms = await page.$$eval("#alarms tbody tr", (trs) =>
          trs.map((tr) => [...tr.querySelectorAll("td")].slice(0, 4).map((td) => td.textContent)),
        );
        assert.deepEqual(
          alarms.map((a) => [a[0], a[1], a[3]]),
          [
            ["iot-pipeline-prod-rule-error-rate", "OK", "> 1 %"],
            ["iot-pipeline-prod-telemetry-delivery-freshness", "OK", "> 900 s"],
            ["iot-pipeline-prod-windows-delivery-freshness", "OK", "> 900 s"],
            ["iot-pipeline-prod-flink-downtime", "OK", "> 0 ms"],
          ],
        );

        // Each device's readings are charted.
        assert.deepEqual(
          await page.$$eval("[data-readings]", (p) =>
            p.map((e) => e.getAttribute("data-readings")),
          ),
          things,
        );
        assert.deepEqual(problems, [], "the page had errors or failed requests");

        if (process.env.UPDATE_SCREENSHOT === "1") {
          await page.screenshot({
            path: path.join(PROJECT_DIR, "docs", "images", "dashboard.png"),
            fullPage: true,
          });
        }
      } finally {
        if (child.exitCode === null) child.kill("SIGKILL");
        await until(() => child.exitCode !== null || child.signalCode !== null, "simulate to exit");
      }
    });
  },
);
