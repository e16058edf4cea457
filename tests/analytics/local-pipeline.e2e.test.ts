// The window inside the embedded local pipeline: a device publishes over mutual TLS, the stack's
// rule matches, and the closed windows land in the local bucket under the analytics prefix.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import mqtt from "mqtt";
import { telemetryTopicFor } from "../../core/topics";
import { loadStackConfig, type StackConfig } from "../../core/stack-config";
import { startLocalPipeline } from "../../local/pipeline/pipeline";
import { localBucketName } from "../../local/storage/s3";

const T0 = Date.UTC(2026, 10, 26, 9, 0, 0);

function reading(i: number) {
  return {
    thing: "store-sensor-seattle1",
    // 25 readings 1.2 s apart: windows [0,10), [10,20), [20,30) s after T0.
    timestamp: T0 + i * 1200,
    temperature: 10,
    max_temperature: 10 + (i % 7),
    min_temperature: 5 - (i % 5),
  };
}

describe("analytics in the local pipeline", function () {
  this.timeout(60000);
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "pipeline-analytics-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("writes each closed event-time window of the accepted messages, prints it, flushes on stop", async () => {
    const dev = loadStackConfig("dev");
    assert.ok(dev.analytics);
    const config: StackConfig = {
      ...dev,
      analytics: { ...dev.analytics, time: "event", watermarkSeconds: 2, groupBy: ["thing"] },
    };
    const lines: string[] = [];
    const p = await startLocalPipeline(config, { stateDir: dir, log: (l) => lines.push(l) });
    try {
      const client = await mqtt.connectAsync(p.url, {
        ...p.credentialsFor("store-sensor-seattle1"),
        clientId: "store-sensor-seattle1",
        rejectUnauthorized: true,
        reconnectPeriod: 0,
      });
      client.on("error", () => undefined);
      const topic = telemetryTopicFor(config.telemetryTopic, "store-sensor-seattle1");
      for (let i = 0; i < 25; i++) {
        await client.publishAsync(topic, JSON.stringify(reading(i)), { qos: 1 });
      }
      await client.endAsync();
      // The PUBACK waits for the rule, so by now the first two windows have closed (watermark).
      assert.equal(lines.filter((l) => l.startsWith("analytics: window")).length, 2);
    } finally {
      await p.stop();
    }

    // Firehose's layout under the prefix: analytics/YYYY/MM/dd/HH/<windows stream>-1-...
    const dirOf = path.join(dir, "s3", localBucketName(config), "analytics");
    const objects = (fs.readdirSync(dirOf, { recursive: true }) as string[]).filter((f) =>
      fs.statSync(path.join(dirOf, f)).isFile(),
    );
    assert.ok(objects.length > 0);
    for (const f of objects) {
      assert.match(f, /^\d{4}\/\d\d\/\d\d\/\d\d\/weather-data-stream-windows-1-/);
    }
    const rows = objects
      .flatMap((f) => fs.readFileSync(path.join(dirOf, f), "utf8").trim().split("\n"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .sort((a, b) => String(a.window_start).localeCompare(String(b.window_start)));
    const expected = [0, 1, 2].map((w) => {
      const rs = Array.from({ length: 25 }, (_, i) => reading(i)).filter(
        (r) => Math.floor((r.timestamp - T0) / 10_000) === w,
      );
      return {
        window_start: new Date(T0 + w * 10_000).toISOString(),
        window_end: new Date(T0 + (w + 1) * 10_000).toISOString(),
        thing: "store-sensor-seattle1",
        max_temp: Math.max(...rs.map((r) => r.max_temperature)),
        min_temp: Math.min(...rs.map((r) => r.min_temperature)),
        records: rs.length,
      };
    });
    assert.deepEqual(rows, expected);
    assert.equal(lines.filter((l) => l.startsWith("analytics: window")).length, 3);
    assert.ok(
      lines.some((l) => /^pipeline: analytics 10 s tumbling windows on event time/.test(l)),
    );
    const summary = p.summary().find((s) => s.label.startsWith("analytics windows delivered"));
    assert.equal(summary?.value, 3);
  });

  it("analytics disabled: no window objects", async () => {
    const config: StackConfig = { ...loadStackConfig("dev"), analytics: undefined };
    const p = await startLocalPipeline(config, { stateDir: dir });
    await p.stop();
    assert.ok(!fs.existsSync(path.join(dir, "s3", localBucketName(config), "analytics")));
    assert.ok(!p.summary().some((s) => s.label.startsWith("analytics")));
  });
});
