// The local topic rule (actions, WHERE, the error action's message) and the broker's policy hooks.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadStackConfig, type StackConfig } from "../../core/stack-config";
import { LocalAuthorizer } from "../../local/broker/authorizer";
import type { ClientIdentity } from "../../local/broker/broker";
import { LocalDeliveryStream } from "../../local/delivery";
import { LocalRuleEngine, type RuleErrorMessage } from "../../local/rule/rule-engine";

// The telemetry rule's own tests: prod without its further rules (an engine running those needs
// the broker and the local CloudWatch: tests/local/rule-actions.e2e.test.ts).
const prod: StackConfig = { ...loadStackConfig("prod"), rules: [] };
const withSql = (sql: string): StackConfig => ({ ...prod, rule: { ...prod.rule, sql } });
const thing = (name: string): ClientIdentity => ({
  clientId: name,
  thingName: name,
  kind: "thing",
});

describe("local topic rule (local/rule/rule-engine)", () => {
  let dir: string;
  let stream: LocalDeliveryStream;
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rule-"));
    stream = await LocalDeliveryStream.open({
      stack: "test",
      delivery: { ...prod.delivery, compression: "UNCOMPRESSED" },
      bucket: "b",
      stateDir: dir,
    });
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function engine(config: StackConfig) {
    return new LocalRuleEngine(config, {
      firehosePut: (r) => stream.put(r),
      errorAction: (m) => stream.putError(m),
      now: () => 1764147600000,
      uuid: () => "trace-1",
    });
  }

  const read = (file: string) => fs.readFileSync(file, "utf8");

  it("sends the SELECT output plus the separator to Firehose, and tells listeners", async () => {
    const rules = engine(prod);
    const outputs: unknown[] = [];
    rules.onOutput((o) => outputs.push(o));
    await rules.onPublish(
      "store-sensor-seattle2",
      "SeattleStoreTemp/store-sensor-seattle2",
      Buffer.from('{"temperature":3}'),
    );
    await rules.onPublish("store-sensor-seattle2", "Elsewhere/x", Buffer.from('{"temperature":4}'));
    await stream.close();
    const expected = {
      temperature: 3,
      topic_thing: "store-sensor-seattle2",
      received_at: 1764147600000,
    };
    assert.equal(read(stream.objects[0]), `${JSON.stringify(expected)}\n`);
    assert.deepEqual(outputs, [expected]);
    assert.deepEqual(rules.stats, {
      onTopic: 1,
      matched: 1,
      whereFalse: 0,
      actionFailures: 0,
      evaluationErrors: 0,
    });
  });

  it("runs no action when WHERE is false", async () => {
    const rules = engine(withSql("SELECT * FROM 'SeattleStoreTemp/+' WHERE temperature > 30"));
    await rules.onPublish("c", "SeattleStoreTemp/a", Buffer.from('{"temperature":3}'));
    await rules.onPublish("c", "SeattleStoreTemp/a", Buffer.from('{"other":1}'));
    await stream.close();
    assert.equal(stream.stats.recordsIn, 0);
    assert.deepEqual(rules.stats, {
      onTopic: 2,
      matched: 0,
      whereFalse: 2,
      actionFailures: 0,
      evaluationErrors: 0,
    });
  });

  it("runs the error action with AWS's message shape when Firehose refuses the record", async () => {
    // Nine copies of a 120 KiB string (the payload stays under IoT's 128 KB): a record over
    // Firehose's 1,000 KiB limit.
    const rules = engine(
      withSql(`SELECT VALUE concat(${Array(9).fill("big").join(", ")}) FROM 'SeattleStoreTemp/+'`),
    );
    const payload = Buffer.from(JSON.stringify({ big: "x".repeat(120 * 1024) }));
    await rules.onPublish(
      "store-sensor-seattle1",
      "SeattleStoreTemp/store-sensor-seattle1",
      payload,
    );
    await stream.close();
    assert.equal(stream.stats.recordsDelivered, 0);
    assert.equal(stream.stats.errorRecordsDelivered, 1);
    assert.match(stream.objects[0], /[/\\]errors[/\\]processing-failed[/\\]/);
    const message = JSON.parse(read(stream.objects[0])) as RuleErrorMessage;
    assert.deepEqual(Object.keys(message), [
      "ruleName",
      "topic",
      "cloudwatchTraceId",
      "clientId",
      "base64OriginalPayload",
      "failures",
    ]);
    assert.equal(message.ruleName, "sensor_rule");
    assert.equal(message.clientId, "store-sensor-seattle1");
    assert.equal(Buffer.from(message.base64OriginalPayload, "base64").equals(payload), true);
    assert.equal(message.failures[0].failedAction, "FirehoseAction");
    assert.equal(message.failures[0].failedResource, "weather-data-stream");
    assert.match(message.failures[0].errorMessage, /exceeds the Firehose limit/);
  });
});

describe("IoT policy at the broker (local/broker/authorizer)", () => {
  it("prod: allows a thing its own topic, denies others with action, resource and client", () => {
    const hooks = new LocalAuthorizer(prod).hooks();
    const t1 = thing("store-sensor-seattle1");
    assert.equal(hooks.authorizeConnect(t1), undefined);
    assert.equal(hooks.authorizePublish(t1, "SeattleStoreTemp/store-sensor-seattle1"), undefined);
    assert.equal(
      hooks.authorizePublish(t1, "SeattleStoreTemp/store-sensor-seattle2"),
      "iot:Publish on arn:aws:iot:us-east-1:000000000000:topic/SeattleStoreTemp/store-sensor-seattle2 for client store-sensor-seattle1 (policy sensor-telemetry-least-privilege: implicit deny: no statement allows it)",
    );
  });

  it("prod: a certificate attached to no fleet thing cannot connect", () => {
    const a = new LocalAuthorizer(prod);
    assert.match(
      a.hooks().authorizeConnect(thing("intruder")) ?? "",
      /iot:Connect on .*client\/intruder/,
    );
    assert.equal(a.denials["iot:Connect"], 1);
  });

  it("prod: a denied Receive drops the delivery and is logged", () => {
    const lines: string[] = [];
    const a = new LocalAuthorizer(prod, (l) => lines.push(l));
    assert.equal(
      a.hooks().authorizeReceive(thing("store-sensor-seattle1"), "SeattleStoreTemp/x"),
      false,
    );
    assert.match(
      lines[0],
      /^policy: denied iot:Receive on .*topic\/SeattleStoreTemp\/x for client store-sensor-seattle1/,
    );
  });

  it("the console identity is not subject to IoT policies (IAM in AWS)", () => {
    const hooks = new LocalAuthorizer(prod).hooks();
    const console: ClientIdentity = { clientId: "console", thingName: "console", kind: "console" };
    assert.equal(hooks.authorizeSubscribe(console, "#"), undefined);
    assert.equal(hooks.authorizeReceive(console, "SeattleStoreTemp/a"), true);
  });

  it("dev: the tutorial policy lets everything through", () => {
    const hooks = new LocalAuthorizer(loadStackConfig("dev")).hooks();
    const t = thing("anything-at-all");
    assert.equal(hooks.authorizeConnect(t), undefined);
    assert.equal(hooks.authorizePublish(t, "any/topic"), undefined);
    assert.equal(hooks.authorizeSubscribe(t, "#"), undefined);
  });
});
