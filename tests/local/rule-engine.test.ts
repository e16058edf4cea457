// The local topic rule with real delivery files and, end to end, over the mutual-TLS broker:
// a message the SQL cannot be evaluated on goes to the error action with its original payload
// and is acknowledged (issue 17.5); records reach S3 unchanged (issue 17.8); principal() is the
// connection's certificate id; get_registry_data() answers from the stack's registry.
import { strict as assert } from "node:assert";
import { createHash, X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import mqtt from "mqtt";
import { loadStackConfig, type StackConfig } from "../../core/stack-config";
import { LocalDeliveryStream } from "../../local/delivery";
import { startLocalPipeline } from "../../local/pipeline/pipeline";
import {
  LocalRuleEngine,
  registryFromConfig,
  type RuleErrorMessage,
} from "../../local/rule/rule-engine";
import { deliveredLines } from "../helpers/delivered";

// Prod with the seed's JSON-lines delivery: these tests read the records back as text. The
// telemetry rule's own tests: without prod's further rules (an engine running those needs the
// broker and the local CloudWatch: tests/local/rule-actions.e2e.test.ts).
const prod: StackConfig = {
  ...loadStackConfig("prod"),
  lake: { format: "json", partitionByThing: false },
  rules: [],
};
const withSql = (sql: string): StackConfig => ({ ...prod, rule: { ...prod.rule, sql } });
const THING = "store-sensor-seattle1";
const TOPIC = `SeattleStoreTemp/${THING}`;
const POISON = '{"a":'.repeat(10000) + "1" + "}".repeat(10000);

/** Records and error messages of every object the stream wrote. */
function delivered(objects: readonly string[]) {
  const lines = (f: string) => deliveredLines([f]);
  const isError = (f: string) => /[/\\]errors[/\\]/.test(f);
  return {
    records: objects.filter((f) => !isError(f)).flatMap(lines),
    errors: objects
      .filter(isError)
      .flatMap(lines)
      .map((l) => JSON.parse(l) as RuleErrorMessage),
  };
}

describe("local topic rule: what cannot be evaluated, and records unchanged (local/rule/rule-engine)", () => {
  let dir: string;
  let stream: LocalDeliveryStream;
  const lines: string[] = [];
  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rule-"));
    lines.length = 0;
    stream = await LocalDeliveryStream.open({
      stack: "test",
      delivery: { ...prod.delivery, compression: "UNCOMPRESSED" },
      bucket: "b",
      stateDir: dir,
    });
  });
  afterEach(async () => {
    await stream.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function engine(config: StackConfig = prod) {
    return new LocalRuleEngine(config, {
      firehosePut: (r) => stream.put(r),
      errorAction: (m) => stream.putError(m),
      now: () => 1764147600000,
      uuid: () => "trace-1",
      log: (l) => lines.push(l),
    });
  }

  it("a JSON payload nested 10,000 deep goes to the error action with its payload, and resolves (acknowledged)", async () => {
    const rules = engine();
    await rules.onPublish(THING, TOPIC, Buffer.from(POISON));
    await rules.onPublish(THING, TOPIC, Buffer.from('{"temperature":3}'));
    await stream.close();
    const { records, errors } = delivered(stream.objects);
    assert.equal(records.length, 1, "the next message still flows");
    assert.equal(errors.length, 1);
    assert.equal(Buffer.from(errors[0].base64OriginalPayload, "base64").toString(), POISON);
    assert.equal(errors[0].cloudwatchTraceId, "trace-1");
    assert.match(errors[0].failures[0].errorMessage, /nests 10000 levels deep/);
    assert.equal(rules.stats.evaluationErrors, 1);
    assert.equal(rules.stats.matched, 1);
    assert.equal(lines.filter((l) => /not evaluated: the JSON nests 10000/.test(l)).length, 1);
  });

  it("prod rule: a payload that is not JSON reaches the error action unchanged, not as the added fields alone", async () => {
    const rules = engine();
    const payload = Buffer.from([0x01, 0xfe, 0x42, 0x00]);
    await rules.onPublish(THING, TOPIC, payload);
    await stream.close();
    const { records, errors } = delivered(stream.objects);
    assert.deepEqual(records, []);
    assert.equal(errors.length, 1);
    assert.ok(Buffer.from(errors[0].base64OriginalPayload, "base64").equals(payload));
    assert.match(errors[0].failures[0].errorMessage, /needs a JSON object payload/);
  });

  it("prod rule: 1e309, an integer beyond 2^53 and a __proto__ key reach S3 as they were sent", async () => {
    const rules = engine();
    const sent = '{"temperature":1e309,"count":9007199254740993,"__proto__":{"x":1},"thing":"t"}';
    await rules.onPublish(THING, TOPIC, Buffer.from(sent));
    await stream.close();
    const { records, errors } = delivered(stream.objects);
    assert.deepEqual(errors, []);
    assert.equal(
      records[0],
      `${sent.slice(0, -1)},"topic_thing":"${THING}","received_at":1764147600000}`,
    );
  });

  // traceid() is the message's trace id, the one its error message carries as cloudwatchTraceId
  // (iot-sql-functions.html#iot-function-traceid, rule-error-handling.html). It is made when first
  // read (issue 28): a rule that does not take a message makes none.
  it("a message's trace id is made only when read, and is one id for the SELECT and the error message", async () => {
    let made = 0;
    const counted = (config: StackConfig) =>
      new LocalRuleEngine(config, {
        firehosePut: (r) => stream.put(r),
        errorAction: (m) => stream.putError(m),
        now: () => 1764147600000,
        uuid: () => `trace-${++made}`,
      });
    const filtered = counted(withSql("SELECT * FROM 'SeattleStoreTemp/+' WHERE temperature > 100"));
    await filtered.onPublish(THING, TOPIC, Buffer.from('{"temperature":3}'));
    assert.equal(made, 0, "a WHERE that is false makes no trace id");
    const traced = counted(
      withSql("SELECT traceid() AS a, traceid() AS b FROM 'SeattleStoreTemp/+'"),
    );
    const outputs: unknown[] = [];
    traced.onOutput((o) => outputs.push(o));
    await traced.onPublish(THING, TOPIC, Buffer.from('{"temperature":3}'));
    assert.deepEqual(outputs, [{ a: "trace-1", b: "trace-1" }], "one trace id per message");
    await traced.onPublish(THING, TOPIC, Buffer.from(POISON));
    await stream.close();
    const { errors } = delivered(stream.objects);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].cloudwatchTraceId, "trace-2", "the error message's trace id");
    assert.equal(made, 2);
  });

  it("get_registry_data() answers DescribeThing and ListThingGroupsForThing from the stack config", () => {
    const lookup = registryFromConfig(prod);
    assert.deepEqual(lookup("DescribeThing", THING), {
      defaultClientId: THING,
      thingName: THING,
      thingArn: `arn:aws:iot:us-east-1:000000000000:thing/${THING}`,
      thingTypeName: prod.thingType.name,
      attributes: {},
      version: 1,
    });
    assert.deepEqual(lookup("ListThingGroupsForThing", THING), {
      thingGroups: [
        { groupName: "Seattle", groupArn: "arn:aws:iot:us-east-1:000000000000:thinggroup/Seattle" },
      ],
    });
    assert.equal(lookup("DescribeThing", "not-in-the-fleet"), undefined);
  });

  it("warns once at start for each function that calls another AWS service", () => {
    engine(
      withSql(
        "SELECT aws_lambda('arn:aws:lambda:us-east-1:1:function:f', *) AS a, aws_lambda('arn:aws:lambda:us-east-1:1:function:g', *) AS b FROM 'SeattleStoreTemp/+' WHERE get_dynamodb('t', 'k', 'v', 'r').on = true",
      ),
    );
    assert.deepEqual(lines, [
      "rule sensor_rule: aws_lambda() calls AWS Lambda, which the offline pipeline does not have; locally it evaluates to Undefined",
      "rule sensor_rule: get_dynamodb() calls Amazon DynamoDB, which the offline pipeline does not have; locally it evaluates to Undefined",
    ]);
  });
});

describe("local topic rule end to end over mutual TLS", function () {
  this.timeout(60000);
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rule-e2e-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("principal() is the device certificate's id; a poison message is acknowledged and the device stays connected", async () => {
    const config = withSql(
      "SELECT *, principal() AS principal, clientid() AS client, get_registry_data('DescribeThing', topic(2), 'arn:aws:iam::000000000000:role/r').thingTypeName AS type FROM 'SeattleStoreTemp/+'",
    );
    const p = await startLocalPipeline(config, { stateDir: dir });
    const creds = p.credentialsFor(THING);
    let client: mqtt.MqttClient | undefined;
    try {
      client = await mqtt.connectAsync(p.url, {
        ...creds,
        clientId: THING,
        rejectUnauthorized: true,
        reconnectPeriod: 0,
        protocolVersion: 4,
      });
      client.on("error", () => undefined);
      // QoS 1: publishAsync resolves on the PUBACK.
      await client.publishAsync(TOPIC, POISON, { qos: 1 });
      await client.publishAsync(TOPIC, '{"temperature":21.5}', { qos: 1 });
      assert.equal(client.connected, true);
      await client.endAsync();
    } finally {
      await p.stop();
    }
    const { records, errors } = delivered(p.objects().map((f) => path.resolve(f)));
    const certificateId = createHash("sha256")
      .update(new X509Certificate(creds.cert).raw)
      .digest("hex");
    assert.deepEqual(
      records.map((r) => JSON.parse(r) as unknown),
      [{ temperature: 21.5, principal: certificateId, client: THING, type: config.thingType.name }],
    );
    assert.equal(errors.length, 1);
    assert.equal(Buffer.from(errors[0].base64OriginalPayload, "base64").toString(), POISON);
    assert.equal(errors[0].clientId, THING);
    assert.match(String(p.summary().find((s) => /^rule errors/.test(s.label))?.value), /^1 \/ 0$/);
  });
});
