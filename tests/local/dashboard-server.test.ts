// The local dashboard's server over real HTTP on 127.0.0.1: its own page (nothing from a CDN),
// Server-Sent Events, the read-only bucket with its path check, and the bad cases: a port in use,
// a tab closed mid-stream, too many tabs, a page that reads nothing (never waited for).
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as path from "node:path";
import { EnvironmentError } from "../../core/errors";
import { loadPlan } from "../../core/plan";
import { dashboardBody } from "../../core/monitoring";
import {
  DashboardFeed,
  DashboardServer,
  metricKey,
  objectPath,
  type DashboardSnapshot,
  type DashboardTick,
} from "../../local/dashboard";
import { startLocalPipeline } from "../../local/pipeline/pipeline";
import { telemetryTopicFor } from "../../core/topics";
import { tempDir } from "../helpers/temp";
import { until } from "../helpers/wait";

/** A source of snapshots and ticks that the test drives by hand. */
class FakeSource {
  private listeners: ((t: DashboardTick) => void)[] = [];
  snapshot(): DashboardSnapshot {
    return { stack: "test", ended: false } as unknown as DashboardSnapshot;
  }
  onTick(listener: (t: DashboardTick) => void): void {
    this.listeners.push(listener);
  }
  emit(extra: Record<string, unknown> = {}): void {
    for (const l of this.listeners) l({ at: Date.now(), ...extra } as unknown as DashboardTick);
  }
}

function get(
  url: string,
  method = "GET",
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** An EventSource-like reader: the events it got, by name, and the request to abort. */
function openEvents(url: string): Promise<{
  status: number;
  events: { event: string; data: string }[];
  req: http.ClientRequest;
  body: () => string;
  ended: Promise<void>;
}> {
  return new Promise((resolve, reject) => {
    const events: { event: string; data: string }[] = [];
    let text = "";
    let endedResolve: () => void = () => undefined;
    const ended = new Promise<void>((r) => (endedResolve = r));
    const req = http.get(`${url}events`, { agent: false }, (res) => {
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        text += d;
        let i;
        while ((i = text.indexOf("\n\n")) >= 0) {
          const block = text.slice(0, i);
          text = text.slice(i + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1] ?? "message";
          const data = /^data: (.*)$/m.exec(block)?.[1] ?? "";
          events.push({ event, data });
        }
      });
      res.on("end", endedResolve);
      res.on("close", endedResolve);
      resolve({ status: res.statusCode ?? 0, events, req, body: () => text, ended });
    });
    req.on("error", (e) =>
      (e as NodeJS.ErrnoException).code === "ECONNRESET" ? undefined : reject(e),
    );
  });
}

describe("local dashboard server (real HTTP on 127.0.0.1)", function () {
  this.timeout(20_000);
  const servers: DashboardServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });
  async function start(opts: Parameters<typeof DashboardServer.start>[0] = {}) {
    const s = await DashboardServer.start(opts);
    servers.push(s);
    return s;
  }

  it("serves its page, script and style from the project, and loads nothing from elsewhere (works offline)", async () => {
    const s = await start();
    assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await get(s.url);
    assert.equal(page.status, 200);
    assert.match(page.headers["content-type"] ?? "", /^text\/html/);
    assert.match(page.body, /<script src="\/dashboard\.js"><\/script>/);
    for (const file of ["dashboard.js", "dashboard.css"]) {
      const r = await get(`${s.url}${file}`);
      assert.equal(r.status, 200, file);
      assert.ok(r.body.length > 100, file);
    }
    for (const body of [page.body, (await get(`${s.url}dashboard.js`)).body]) {
      assert.doesNotMatch(body, /(src|href)=["']?(https?:)?\/\//, "a resource from another host");
      assert.doesNotMatch(body, /import\s*\(|fetch\(["']https?:/, "a fetch from another host");
    }
  });

  it("answers only to its own address: a request naming another host (DNS rebinding) is 421", async () => {
    const s = await start();
    const asHost = (host: string) =>
      new Promise<number>((resolve, reject) => {
        http
          .get(`${s.url}api/snapshot`, { agent: false, headers: { host } }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          })
          .on("error", reject);
      });
    assert.equal(await asHost("evil.example:80"), 421);
    assert.equal(await asHost(`evil.example:${s.port}`), 421);
    assert.equal(await asHost(`localhost:${s.port}`), 503); // its own: no run attached yet
    assert.equal(s.stats.badHosts, 2);
  });

  it("a request it cannot parse is answered 400, and the server goes on", async () => {
    const s = await start();
    const sock = net.connect(s.port, "127.0.0.1");
    await new Promise((r) => sock.once("connect", r));
    let answer = "";
    sock.on("data", (d: Buffer) => (answer += d.toString()));
    sock.write(`GET http://[ HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\n\r\n`);
    await until(() => answer.includes("\r\n\r\n"), "an answer");
    sock.destroy();
    assert.match(answer, /^HTTP\/1\.1 400 /);
    assert.equal((await get(s.url)).status, 200);
  });

  it("is read-only: anything but GET and HEAD is 405", async () => {
    const s = await start();
    const r = await get(s.url, "POST");
    assert.equal(r.status, 405);
    assert.equal(r.headers.allow, "GET, HEAD");
  });

  it("a port in use: one line naming --dashboard-port and what to do, nothing left listening", async () => {
    const first = await start();
    const e = await DashboardServer.start({ port: first.port }).then(
      () => assert.fail("a second server on one port started"),
      (err: unknown) => err,
    );
    assert.ok(e instanceof EnvironmentError, String(e));
    assert.match(
      e.message,
      new RegExp(
        `^--dashboard-port ${first.port}: the port is in use by another program; .*--no-dashboard$`,
      ),
    );
    assert.doesNotMatch(e.message, /\n/);
    // The first one still serves.
    assert.equal((await get(first.url)).status, 200);
  });

  it("serves the local bucket's objects read-only, and nothing outside the bucket", async () => {
    const root = tempDir("dash-bucket");
    const bucket = path.join(root, "s3", "b");
    fs.mkdirSync(path.join(bucket, "2026", "12"), { recursive: true });
    fs.writeFileSync(path.join(bucket, "2026", "12", "obj-1"), '{"a":1}\n');
    fs.writeFileSync(path.join(root, "secret"), "outside\n");
    fs.symlinkSync(path.join(root, "secret"), path.join(bucket, "link-out"));
    const s = await start();
    s.attach(new FakeSource(), bucket);
    const ok = await get(`${s.url}bucket/2026/12/obj-1`);
    assert.equal(ok.status, 200);
    assert.equal(ok.body, '{"a":1}\n');
    assert.match(ok.headers["content-type"] ?? "", /^text\/plain/);
    for (const bad of [
      "bucket/..%2F..%2Fsecret",
      "bucket/%2e%2e/%2e%2e/secret",
      "bucket/2026/..%2F..%2F..%2Fsecret",
      `bucket/${encodeURIComponent(path.join(root, "secret"))}`,
      "bucket/link-out",
      "bucket/2026",
      "bucket/obj%00",
      "bucket/%E0%A4%A",
      "bucket/no-such-object",
    ]) {
      const r = await get(`${s.url}${bad}`);
      assert.equal(r.status, 404, bad);
      assert.doesNotMatch(r.body, /outside/, bad);
    }
    // Those that reach the bucket's check are counted (a URL that normalises away is no page).
    assert.ok(s.stats.badPaths >= 8, String(s.stats.badPaths));
  });

  it("objectPath: a key stays inside the bucket's folder", () => {
    assert.equal(objectPath("/b", "x/y"), path.resolve("/b/x/y"));
    for (const key of ["", "../x", "x/../../y", "/etc/passwd", "a\0b", ".", "x/.."]) {
      assert.equal(objectPath("/b", key), undefined, JSON.stringify(key));
    }
  });

  it("streams a snapshot, then each tick as an event; a tab closed mid-stream is dropped and the ticks go on", async () => {
    const s = await start();
    const src = new FakeSource();
    s.attach(src, tempDir("dash-empty"));
    const a = await openEvents(s.url);
    const b = await openEvents(s.url);
    assert.equal(a.status, 200);
    await until(() => a.events.length === 1 && b.events.length === 1, "both snapshots");
    assert.equal(a.events[0].event, "snapshot");
    assert.equal((JSON.parse(a.events[0].data) as { stack: string }).stack, "test");
    assert.equal(s.openPages, 2);
    a.req.destroy(); // the browser closes a tab mid-stream
    await until(() => s.openPages === 1, "the closed tab to go");
    assert.equal(s.stats.closed, 1);
    src.emit({ n: 1 });
    src.emit({ n: 2 });
    await until(() => b.events.length === 3, "two ticks");
    assert.deepEqual(
      b.events.slice(1).map((e) => [e.event, (JSON.parse(e.data) as { n: number }).n]),
      [
        ["tick", 1],
        ["tick", 2],
      ],
    );
  });

  it("many tabs: beyond maxClients a page gets 503 with one line, logged once", async () => {
    const lines: string[] = [];
    const s = await start({ maxClients: 2, log: (l) => lines.push(l) });
    s.attach(new FakeSource(), tempDir("dash-empty"));
    const open = [await openEvents(s.url), await openEvents(s.url)];
    for (const o of open) assert.equal(o.status, 200);
    const third = await get(`${s.url}events`);
    const fourth = await get(`${s.url}events`);
    assert.equal(third.status, 503);
    assert.equal(fourth.status, 503);
    assert.match(
      third.body,
      /^2 dashboard pages are open already, .*close another tab and reload\n$/,
    );
    assert.equal(s.stats.refused, 2);
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0], /^dashboard: 2 pages are open, the most it serves; refused another/);
  });

  it("a page that reads nothing: its events are dropped (bounded), then it is cut; the source never waits", async () => {
    const lines: string[] = [];
    const s = await start({
      maxBufferedBytes: 64 * 1024,
      stalledMs: 300,
      log: (l) => lines.push(l),
    });
    const src = new FakeSource();
    s.attach(src, tempDir("dash-empty"));
    // A raw connection that asks for the stream and then never reads a byte.
    const sock = net.connect(s.port, "127.0.0.1");
    await new Promise((r) => sock.once("connect", r));
    sock.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1:${s.port}\r\n\r\n`);
    sock.pause();
    await until(() => s.openPages === 1, "the page to open");
    const big = "x".repeat(1024 * 1024);
    const started = Date.now();
    let slowest = 0;
    while (s.stats.cut === 0 && Date.now() - started < 15_000) {
      const t0 = performance.now();
      src.emit({ big });
      slowest = Math.max(slowest, performance.now() - t0);
      await new Promise((r) => setTimeout(r, 20));
    }
    sock.destroy();
    assert.equal(s.stats.cut, 1, "the stalled page was not cut");
    assert.ok(s.stats.dropped > 0, "no event was dropped");
    assert.equal(s.openPages, 0);
    assert.ok(slowest < 200, `a tick took ${slowest} ms: the source waited for the page`);
    assert.ok(
      lines.some((l) => /^dashboard: a page took nothing for 0 s; disconnected it/.test(l)),
      lines.join("\n"),
    );
  });

  it("close(): every page gets an end event and the server stops listening", async () => {
    const s = await start();
    s.attach(new FakeSource(), tempDir("dash-empty"));
    const a = await openEvents(s.url);
    await until(() => a.events.length === 1, "the snapshot");
    const port = s.port;
    await s.close();
    servers.length = 0;
    await a.ended;
    assert.equal(a.events.at(-1)?.event, "end");
    await assert.rejects(get(`http://127.0.0.1:${port}/`), /ECONNREFUSED/);
  });
});

describe("local dashboard feed: the stack's widgets, fed under CloudWatch's names", function () {
  this.timeout(60_000);

  it("every metric line of the stack's dashboard (core/monitoring.ts) has a local series under the same key", async () => {
    const plan = loadPlan("prod");
    const pipeline = await startLocalPipeline(plan, { stateDir: tempDir("dash-feed") });
    try {
      const feed = new DashboardFeed({
        pipeline,
        things: plan.config.things.map((t) => t.name),
        sampleMs: 60_000,
      });
      feed.tick();
      const snap = feed.snapshot();
      // The widgets are the deployed definition, with the local analytics job standing in for Flink.
      const deployed = dashboardBody(
        plan.region,
        plan.config.rule.name,
        { telemetry: plan.config.delivery.streamName, windows: plan.windowsStreamName },
        plan.windowsStreamName,
        "local-analytics",
        plan.monitoring.alarms,
      );
      assert.deepEqual(snap.widgets, deployed.widgets);
      const lines = deployed.widgets.flatMap((w) => w.properties.metrics);
      assert.ok(lines.length >= 7);
      for (const m of lines) {
        const key = metricKey(...(m.slice(0, 4) as [string, string, string, string]));
        assert.ok(key in snap.series, `no local series for ${key}`);
        assert.equal(snap.series[key].points.length, 1, key);
      }
      assert.deepEqual(
        snap.alarms.map((a) => `${a.name} ${a.state}`),
        [
          "iot-pipeline-prod-rule-error-rate INSUFFICIENT_DATA",
          "iot-pipeline-prod-telemetry-delivery-freshness INSUFFICIENT_DATA",
          "iot-pipeline-prod-windows-delivery-freshness INSUFFICIENT_DATA",
          "iot-pipeline-prod-flink-downtime OK",
        ],
      );
      assert.deepEqual(
        snap.devices.map((d) => d.thing),
        plan.config.things.map((t) => t.name),
      );
      assert.deepEqual(snap.windowColumns, ["max_temp", "min_temp"]);
      feed.finish();
    } finally {
      await pipeline.stop();
    }
  });

  it("a fast device costs no more than a slow one: every message counted, its chart thinned to one reading per gap", async () => {
    const plan = loadPlan("dev");
    const thing = plan.config.things[0].name;
    const pipeline = await startLocalPipeline(plan, { stateDir: tempDir("dash-thin") });
    try {
      const feed = new DashboardFeed({
        pipeline,
        things: [thing],
        sampleMs: 60_000,
        readingGapMs: 3_600_000,
      });
      const topic = telemetryTopicFor(plan.config.telemetryTopic, thing);
      for (let i = 0; i < 50; i++) {
        const reading = { thing, timestamp: Date.now(), temperature: 20 + i, humidity: 50 };
        await pipeline.rules.onPublish(thing, topic, Buffer.from(JSON.stringify(reading)));
      }
      const tick = feed.tick();
      const row = tick.devices.find((d) => d.thing === thing);
      assert.equal(row?.matched, 50);
      // The table shows the last reading; the chart took the first and nothing within the gap.
      assert.equal(row?.lastReading?.values.temperature, 69);
      assert.deepEqual(
        tick.readings[thing].map(([, v]) => v.temperature),
        [20],
      );
      assert.equal(tick.series["AWS/IoT|TopicMatch|RuleName|sensor_rule"].total, 50);
      feed.finish();
    } finally {
      await pipeline.stop();
    }
  });

  it("lists rule errors with the error action's message, and links the error output's objects", async () => {
    const plan = loadPlan("dev");
    const thing = plan.config.things[0].name;
    const pipeline = await startLocalPipeline(plan, { stateDir: tempDir("dash-errors") });
    let feed: DashboardFeed | undefined;
    try {
      feed = new DashboardFeed({ pipeline, things: [thing], sampleMs: 60_000 });
      const topic = telemetryTopicFor(plan.config.telemetryTopic, thing);
      // A payload over the rule engine's bound (AWS IoT's 128 KB): not evaluated, error action run.
      const huge = { thing, timestamp: Date.now(), temperature: 20, note: "x".repeat(200_000) };
      await pipeline.rules.onPublish(thing, topic, Buffer.from(JSON.stringify(huge)));
      const tick = feed.tick();
      assert.equal(tick.ruleErrorsTotal, 1);
      assert.equal(tick.ruleErrors[0].clientId, thing);
      assert.equal(tick.ruleErrors[0].topic, topic);
      assert.match(tick.ruleErrors[0].message, /could not be evaluated on this message/);
      assert.equal(tick.series["iot-pipeline|RuleErrors|RuleName|sensor_rule"].total, 1);
    } finally {
      await pipeline.stop();
    }
    // Stopping flushed the error record into an object under the error output prefix.
    const objects = feed.finish()?.objects ?? [];
    const errors = objects.filter((o) => o.error);
    assert.equal(errors.length, 1, JSON.stringify(objects));
    assert.match(errors[0].key, /^errors\//);
    assert.ok(
      fs.existsSync(path.join(pipeline.delivery.bucket.dir, ...errors[0].key.split("/"))),
      errors[0].key,
    );
  });

  it("bounds the table: the fleet's first `tableDevices` things listed, the rest counted; strangers capped", async () => {
    const plan = loadPlan("dev");
    const pipeline = await startLocalPipeline(plan, { stateDir: tempDir("dash-table") });
    try {
      const fleet = Array.from({ length: 10 }, (_, i) => `t${i}`);
      const feed = new DashboardFeed({
        pipeline,
        things: fleet,
        sampleMs: 60_000,
        tableDevices: 4,
        strangers: 2,
      });
      for (const id of ["t1", "t7", "s1", "s2", "s3", "s4"]) {
        pipeline.broker.emit("connectRefused", id, undefined, "test");
      }
      const snap = feed.snapshot();
      assert.deepEqual(
        snap.devices.map((d) => `${d.thing}:${d.denials}`),
        ["t0:0", "t1:1", "t2:0", "t3:0", "s1:1", "s2:1"],
      );
      assert.equal(snap.devicesNotShown, 6);
      assert.equal(snap.strangerEventsNotShown, 2);
      feed.finish();
    } finally {
      await pipeline.stop();
    }
  });

  it("a failure of the page's figures is one line and never the pipeline's: the publish still goes through", async () => {
    const plan = loadPlan("dev");
    const thing = plan.config.things[0].name;
    const pipeline = await startLocalPipeline(plan, { stateDir: tempDir("dash-guard") });
    try {
      const lines: string[] = [];
      const feed = new DashboardFeed({
        pipeline,
        things: [thing],
        sampleMs: 60_000,
        log: (l) => lines.push(l),
      });
      // Break the feed's bookkeeping: every listener of the rule and the broker now throws.
      (feed as unknown as { row: () => never }).row = () => {
        throw new Error("boom");
      };
      const topic = telemetryTopicFor(plan.config.telemetryTopic, thing);
      for (let i = 0; i < 3; i++) {
        const reading = { thing, timestamp: Date.now(), temperature: 20, humidity: 50 };
        await pipeline.rules.onPublish(thing, topic, Buffer.from(JSON.stringify(reading)));
      }
      pipeline.broker.emit("connectRefused", thing, undefined, "test");
      assert.equal(pipeline.rules.stats.matched, 3);
      assert.equal(feed.failures, 4);
      assert.deepEqual(lines, [
        "dashboard: the page's figures failed (boom); the pipeline goes on",
      ]);
      feed.finish();
    } finally {
      await pipeline.stop();
    }
    assert.equal(pipeline.delivery.stats.recordsDelivered, 3);
  });

  it("keeps a ring of points: a long run holds at most `points` per series", async () => {
    const plan = loadPlan("dev");
    const pipeline = await startLocalPipeline(plan, { stateDir: tempDir("dash-ring") });
    try {
      const feed = new DashboardFeed({ pipeline, things: ["a"], sampleMs: 60_000, points: 5 });
      for (let i = 0; i < 50; i++) feed.tick();
      for (const s of Object.values(feed.snapshot().series)) assert.equal(s.points.length, 5);
      feed.finish();
    } finally {
      await pipeline.stop();
    }
  });
});
