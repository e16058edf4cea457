// End to end over real mutual TLS: devices publish through the embedded broker, the stack's IoT
// policy, its rule and the delivery stream into the local S3 layout, for the dev and prod stacks.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { telemetryTopicFor } from "../../core/topics";
import { loadStackConfig, type StackConfig } from "../../core/stack-config";

/**
 * Prod with the seed's JSON-lines delivery: these tests read the records back as text. Prod's
 * Parquet, partitioned lake is tested in tests/lake and tests/local/lake-writer.test.ts.
 */
const prodJsonLines = (): StackConfig => ({
  ...loadStackConfig("prod"),
  lake: { format: "json", partitionByThing: false },
});
import { readCredentials } from "../../local/identity/ca";
import { startLocalPipeline, type LocalPipeline } from "../../local/pipeline/pipeline";
import { deliveredLines } from "../helpers/delivered";
import { startPipelineChild } from "../helpers/pipeline-child";

const N = 40;

function reading(thing: string, seq: number) {
  return {
    thing,
    timestamp: 1764147600000 + seq * 1000,
    temperature: 10 + (seq % 7),
    max_temperature: 20,
    min_temperature: 5,
    humidity: seq % 100,
  };
}

async function connect(p: LocalPipeline, identity: string, console = false): Promise<MqttClient> {
  const creds = console ? p.consoleCredentials() : p.credentialsFor(identity);
  const client = await mqtt.connectAsync(p.url, {
    ...creds,
    clientId: identity,
    rejectUnauthorized: true,
    reconnectPeriod: 0,
    protocolVersion: 4,
  });
  client.on("error", () => undefined);
  return client;
}

/** Every record of every delivered object (GZIP or not), parsed. */
function deliveredRecords(p: LocalPipeline): Record<string, unknown>[] {
  return (
    p
      .objects()
      // Telemetry objects only: not the error prefix, not the analytics windows.
      .filter((f) => f.includes(`${path.sep}telemetry${path.sep}`))
      .flatMap((f) => deliveredLines([path.resolve(f)]))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
  );
}

function summaryValue(p: LocalPipeline, label: RegExp): string {
  const line = p.summary().find((s) => label.test(s.label));
  assert.ok(line, `no summary line matching ${label}`);
  return String(line.value);
}

/** Counts records per (thing, timestamp): N unique expected; duplicates are allowed, loss is not. */
function tally(records: Record<string, unknown>[]) {
  const seen = new Map<string, number>();
  for (const r of records) {
    const k = `${String(r.thing)}@${String(r.timestamp)}`;
    seen.set(k, (seen.get(k) ?? 0) + 1);
  }
  const duplicates = [...seen.values()].reduce((a, n) => a + n - 1, 0);
  return { unique: seen.size, duplicates, keys: seen };
}

describe("local pipeline end to end over mutual TLS", function () {
  this.timeout(60000);
  let dir: string;
  const lines: string[] = [];
  const log = (l: string) => lines.push(l);
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "pipeline-"));
    lines.length = 0;
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  async function publishAll(p: LocalPipeline, config: StackConfig) {
    const clients = await Promise.all(config.things.map((t) => connect(p, t.name)));
    await Promise.all(
      config.things.map(async (t, i) => {
        const topic = telemetryTopicFor(config.telemetryTopic, t.name);
        for (let seq = 0; seq < N; seq++) {
          await clients[i].publishAsync(topic, JSON.stringify(reading(t.name, seq)), { qos: 1 });
        }
      }),
    );
    return clients;
  }

  it("dev (tutorial policy): N messages in, N records delivered, an outside publish passes", async () => {
    const config = loadStackConfig("dev");
    const p = await startLocalPipeline(config, { stateDir: dir, log });
    try {
      const [device] = await publishAll(p, config);
      // The probe: outside the device's own topic. The tutorial policy lets it through.
      await device.publishAsync("SeattleStoreTemp/probe-outside", JSON.stringify(reading("x", 0)), {
        qos: 1,
      });
      assert.equal(device.connected, true);
      await device.endAsync();
    } finally {
      await p.stop();
    }
    const { unique, duplicates } = tally(deliveredRecords(p));
    assert.equal(unique, N, `records delivered (duplicates: ${duplicates})`);
    assert.equal(summaryValue(p, /^denied by policy/), "0 (0 / 0 / 0 / 0)");
    assert.equal(summaryValue(p, /^records delivered/), String(N));
    assert.ok(p.objects().length >= 1);
    for (const f of p.objects()) {
      assert.match(
        f,
        /iot-pipeline-dev-local[/\\]telemetry[/\\]\d{4}[/\\]\d\d[/\\]\d\d[/\\]\d\d[/\\]weather-data-stream-1-\d{4}(-\d\d){5}-[0-9a-f-]{36}$/,
      );
    }
  });

  it("prod (least privilege): every device's N records arrive; a publish outside the policy disconnects and is not delivered", async () => {
    const config = prodJsonLines();
    const p = await startLocalPipeline(config, { stateDir: dir, log });
    let disconnected = false;
    try {
      // The console (IAM in AWS, no IoT policy) watches everything, as the seed's test client did.
      const watcher = await connect(p, "console", true);
      const seen: string[] = [];
      watcher.on("message", (topic) => seen.push(topic));
      await watcher.subscribeAsync("SeattleStoreTemp/#", { qos: 1 });

      const clients = await publishAll(p, config);
      const device = clients[0];
      const closed = new Promise<void>((resolve) => device.once("close", () => resolve()));
      // A device may not even subscribe: SUBACK carries the failure code.
      await assert.rejects(
        clients[1].subscribeAsync("SeattleStoreTemp/#", { qos: 1 }),
        /Subscribe error/,
        "the least-privilege policy grants no Subscribe (SUBACK 0x80)",
      );

      device.publish("SeattleStoreTemp/probe-outside", JSON.stringify(reading("x", 1)), {
        qos: 1,
      });
      await closed;
      disconnected = true;
      assert.ok(seen.length >= config.things.length * N, `console saw ${seen.length}`);
      await Promise.all([...clients.slice(1), watcher].map((c) => c.endAsync()));
    } finally {
      await p.stop();
    }
    assert.ok(disconnected, "the device publishing outside its policy was disconnected");

    const records = deliveredRecords(p);
    const { unique, duplicates } = tally(records);
    assert.equal(unique, config.things.length * N, `unique records (duplicates: ${duplicates})`);
    assert.ok(
      records.every((r) => r.thing !== "x"),
      "the denied message was not delivered",
    );
    // The prod rule adds the topic's thing and the arrival time.
    const r0 = records[0];
    assert.equal(r0.topic_thing, r0.thing);
    assert.equal(typeof r0.received_at, "number");
    assert.ok(
      p.objects().every((f) => f.endsWith(".gz")),
      "prod delivers GZIP objects",
    );

    assert.match(summaryValue(p, /^denied by policy/), /^2 \(0 \/ 1 \/ 1 \/ 0\)$/);
    const denial = lines.find((l) => l.includes("SeattleStoreTemp/probe-outside"));
    assert.ok(denial, `no denial logged; log was:\n${lines.join("\n")}`);
    assert.match(
      denial,
      /iot:Publish on arn:aws:iot:us-east-1:000000000000:topic\/SeattleStoreTemp\/probe-outside/,
    );
    assert.match(denial, /client store-sensor-seattle1/);
    assert.match(denial, /disconnected/);
  });

  it("kill -9 after PUBACKs: the next start delivers every acknowledged message", async () => {
    const config = prodJsonLines();
    const { child, url } = await startPipelineChild(["prod", dir, "json-lines"]);
    const thing = config.things[0].name;
    const device = await mqtt.connectAsync(url, {
      ...readCredentials(path.join(dir, "pki"), thing),
      clientId: thing,
      reconnectPeriod: 0,
    });
    device.on("error", () => undefined);
    const topic = telemetryTopicFor(config.telemetryTopic, thing);
    const acked = new Set<number>();
    // Publish without waiting: many in flight; kill once a good share is acknowledged.
    await new Promise<void>((resolve) => {
      for (let seq = 0; seq < 400; seq++) {
        device.publish(topic, JSON.stringify(reading(thing, seq)), { qos: 1 }, (err) => {
          if (err) return;
          acked.add(seq);
          if (acked.size === 200) {
            child.kill("SIGKILL");
            resolve();
          }
        });
      }
    });
    await new Promise((r) => child.once("close", r));
    device.end(true);
    assert.equal(fs.existsSync(path.join(dir, "s3")), false, "nothing delivered before the kill");

    const p = await startLocalPipeline(config, { stateDir: dir, log });
    await p.stop();
    const keys = tally(deliveredRecords(p)).keys;
    const lost = [...acked].filter((seq) => !keys.has(`${thing}@${reading(thing, seq).timestamp}`));
    assert.deepEqual(lost, [], `${lost.length} of ${acked.size} acknowledged message(s) lost`);
  });

  it("delivers on the next start what a stopped-too-early run left in the journal", async () => {
    const config = loadStackConfig("dev");
    const first = await startLocalPipeline(config, { stateDir: dir, log });
    const [device] = await publishAll(first, config);
    await device.endAsync();
    // Stop the broker only, as a crash would: the buffered records stay in the journal.
    await first.broker.stop();
    assert.equal(first.delivery.stats.objectsWritten, 0);

    const second = await startLocalPipeline(config, { stateDir: dir, log });
    await second.stop();
    assert.equal(second.delivery.stats.recordsReplayed, N);
    assert.equal(tally(deliveredRecords(second)).unique, N);
    assert.equal(summaryValue(second, /^records replayed/), String(N));
    // The "crashed" run still lives in this process. Left running, its delivery stream's flush
    // timer fires once the test's folder is gone, and from then on it retries a journal segment
    // it cannot create every second, which keeps mocha from ever exiting.
    await first.stop();
  });
});
