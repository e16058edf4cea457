// The stack's further rules offline, over real mutual TLS: devices publish, the local rules engine
// runs every rule, a republish reaches the subscribers the broker lets receive it (with its MQTT 5
// headers) and feeds the rules again as a message with no client, a rule republishing into its
// own topic is stopped by the engine's bound with the error action told in AWS's error message
// format, and the CloudWatch actions show in the run's dashboard and alarm report.
// Pages: republish-rule-action.html, cloudwatch-metrics-rule-action.html,
// cloudwatch-alarms-rule-action.html, rule-error-handling.html (docs.aws.amazon.com/iot/latest/developerguide/).
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { parseStackConfig, readRawStackConfig, type StackConfig } from "../../core/stack-config";
import { logGroupFile } from "../../local/rule/actions/cloudwatch-logs";
import { REPUBLISH_MAX_HOPS } from "../../local/rule/actions/republish";
import { LocalRuleEngine, type RuleErrorMessage } from "../../local/rule/rule-engine";
import { startLocalPipeline, type LocalPipeline } from "../../local/pipeline/pipeline";
import { until } from "../helpers/wait";

const RULES = [
  {
    name: "alerts",
    sql: "SELECT topic(2) AS thing, temperature FROM 'SeattleStoreTemp/+' WHERE temperature > 15",
    actions: [
      {
        republish: {
          topic: "alerts/${topic(2)}",
          qos: 1,
          headers: {
            contentType: "application/json",
            userProperties: [{ key: "thing", value: "${topic(2)}" }],
          },
        },
      },
      {
        cloudwatchMetric: {
          metricNamespace: "Test/Alerts",
          metricName: "High",
          metricValue: "${temperature}",
          metricUnit: "None",
          alarm: { statistic: "Maximum", threshold: 20 },
        },
      },
    ],
  },
  {
    // Who published a republished message: no client (clientid() "n/a", principal() Undefined).
    name: "seen",
    sql: "SELECT clientid() AS client, principal() AS principal, topic() AS t FROM 'alerts/#'",
    actions: [{ republish: { topic: "seen/${topic(2)}" } }],
  },
  {
    // A rule republishing into its own topic: the engine stops the chain.
    name: "loop",
    sql: "SELECT * FROM 'loop/#'",
    actions: [{ republish: { topic: "loop/${topic(2)}" } }],
  },
  {
    // A template that fills in a bad state: the action fails and the error action is told.
    name: "badstate",
    sql: "SELECT * FROM 'state/#'",
    actions: [
      {
        cloudwatchAlarm: {
          alarmName: "iot-pipeline-prod-rule-error-rate",
          stateValue: "${state}",
          stateReason: "set by ${topic()}",
        },
      },
    ],
  },
];

function config(): StackConfig {
  const c = parseStackConfig({ ...readRawStackConfig("prod"), rules: RULES }, "prod");
  // JSON lines: the records are read back as text here.
  return { ...c, lake: { format: "json", partitionByThing: false } };
}

async function connect(p: LocalPipeline, identity: string, console = false): Promise<MqttClient> {
  const creds = console ? p.consoleCredentials() : p.credentialsFor(identity);
  const client = await mqtt.connectAsync(p.url, {
    ...creds,
    clientId: identity,
    rejectUnauthorized: true,
    reconnectPeriod: 0,
    protocolVersion: 5,
  });
  client.on("error", () => undefined);
  return client;
}

describe("the local rules engine's services (local/rule/rule-engine.ts)", () => {
  it("an engine without the broker refuses, in one line, a stack whose rule republishes", () => {
    assert.throws(
      () =>
        new LocalRuleEngine(config(), {
          firehosePut: () => Promise.resolve(),
          errorAction: () => Promise.resolve(),
        }),
      /^Error: rule alerts: the republish-0 action needs the broker, which this engine was not given$/,
    );
  });
});

describe("the stack's further rules offline over mutual TLS (local/rule/actions)", function () {
  this.timeout(60_000);
  let dir: string;
  const lines: string[] = [];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rule-actions-"));
    lines.length = 0;
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("republish reaches subscribers with its MQTT 5 headers and feeds the rules as a message without a client; the metric and its alarm show", async () => {
    const p = await startLocalPipeline(config(), { stateDir: dir, log: (l) => lines.push(l) });
    const got: { topic: string; body: string; props: unknown }[] = [];
    try {
      const watcher = await connect(p, "console", true);
      watcher.on("message", (topic, payload, packet) =>
        got.push({ topic, body: payload.toString(), props: packet.properties }),
      );
      await watcher.subscribeAsync(["alerts/#", "seen/#"], { qos: 1 });
      const device = await connect(p, "store-sensor-seattle1");
      for (const temperature of [12, 18, 25]) {
        await device.publishAsync(
          "SeattleStoreTemp/store-sensor-seattle1",
          JSON.stringify({ thing: "store-sensor-seattle1", temperature }),
          { qos: 1 },
        );
      }
      await until(() => got.length >= 4, "two alerts and two seen messages", 10_000);
      await Promise.all([device.endAsync(), watcher.endAsync()]);
    } finally {
      await p.stop();
    }
    const alerts = got.filter((g) => g.topic.startsWith("alerts/"));
    assert.deepEqual(
      alerts.map((a) => [a.topic, JSON.parse(a.body)]),
      [
        ["alerts/store-sensor-seattle1", { thing: "store-sensor-seattle1", temperature: 18 }],
        ["alerts/store-sensor-seattle1", { thing: "store-sensor-seattle1", temperature: 25 }],
      ],
    );
    for (const a of alerts) {
      // mqtt-packet decodes user properties into a prototype-less object.
      assert.deepEqual(JSON.parse(JSON.stringify(a.props)), {
        contentType: "application/json",
        userProperties: { thing: "store-sensor-seattle1" },
      });
    }
    // The republished message ran the rules again: clientid() of a message AWS IoT published.
    const seen = got.filter((g) => g.topic.startsWith("seen/")).map((g) => JSON.parse(g.body));
    assert.deepEqual(seen, [
      { client: "n/a", t: "alerts/store-sensor-seattle1" },
      { client: "n/a", t: "alerts/store-sensor-seattle1" },
    ]);
    const dashboard = p.dashboard().find((r) => r.label.startsWith("metric Test/Alerts/High"));
    assert.deepEqual(dashboard?.value, "2 / 43");
    const findings = p.alarmFindings().filter((f) => f.kind === "rule-metric");
    assert.equal(findings.length, 1);
    assert.match(
      findings[0].message,
      /^alarm iot-pipeline-prod-alerts-High: Test\/Alerts\/High Maximum 25 above 20/,
    );
    assert.ok(
      p
        .summary()
        .some((r) => r.label === "matched by rule alerts" && r.value === "2 of 3 on its topic"),
    );
  });

  it("a rule republishing into its own topic stops at the bound; its error action gets AWS's error message", async () => {
    const p = await startLocalPipeline(config(), { stateDir: dir, log: (l) => lines.push(l) });
    const got: string[] = [];
    try {
      const watcher = await connect(p, "console", true);
      watcher.on("message", (topic) => got.push(topic));
      await watcher.subscribeAsync("loop/#", { qos: 1 });
      await watcher.publishAsync("loop/x", JSON.stringify({ n: 1 }), { qos: 1 });
      await until(() => got.length >= REPUBLISH_MAX_HOPS + 1, "the chain", 10_000);
      await watcher.endAsync();
    } finally {
      await p.stop();
    }
    // The console's own message and REPUBLISH_MAX_HOPS republishes, then nothing.
    assert.equal(got.length, REPUBLISH_MAX_HOPS + 1);
    const file = logGroupFile(dir, "/iot/rules/loop/errors");
    const errors = fs
      .readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as RuleErrorMessage);
    assert.equal(errors.length, 1);
    const [e] = errors;
    // rule-error-handling.html: ruleName, topic, cloudwatchTraceId, clientId,
    // base64OriginalPayload, failures[{failedAction, failedResource, errorMessage}].
    assert.deepEqual(Object.keys(e), [
      "ruleName",
      "topic",
      "cloudwatchTraceId",
      "clientId",
      "base64OriginalPayload",
      "failures",
    ]);
    assert.equal(e.ruleName, "loop");
    assert.equal(e.topic, "loop/x");
    assert.equal(e.clientId, "n/a");
    assert.deepEqual(JSON.parse(Buffer.from(e.base64OriginalPayload, "base64").toString()), {
      n: 1,
    });
    assert.equal(e.failures.length, 1);
    assert.equal(e.failures[0].failedAction, "RepublishAction");
    assert.equal(e.failures[0].failedResource, "loop/x");
    assert.match(
      e.failures[0].errorMessage,
      new RegExp(
        `republished ${REPUBLISH_MAX_HOPS} times in a chain.*Message arrived on: loop/x, Action: republish$`,
      ),
    );
    assert.ok(
      lines.some((l) => /rule loop: republish to loop\/x stopped/.test(l)),
      lines.join("\n"),
    );
  });

  it("an alarm action whose template fills in a state CloudWatch does not have fails to the error action; a good one sets the state", async () => {
    const p = await startLocalPipeline(config(), { stateDir: dir, log: (l) => lines.push(l) });
    try {
      const console_ = await connect(p, "console", true);
      await console_.publishAsync("state/a", JSON.stringify({ state: "HOT" }), { qos: 1 });
      await console_.publishAsync("state/b", JSON.stringify({ state: "ALARM" }), { qos: 1 });
      await console_.endAsync();
    } finally {
      await p.stop();
    }
    const errors = fs
      .readFileSync(logGroupFile(dir, "/iot/rules/badstate/errors"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as RuleErrorMessage);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].topic, "state/a");
    assert.equal(errors[0].clientId, "console");
    assert.equal(errors[0].failures[0].failedAction, "CloudwatchAlarmAction");
    assert.match(
      errors[0].failures[0].errorMessage,
      /stateValue "HOT" is not one of OK, ALARM, INSUFFICIENT_DATA/,
    );
    const set = p.alarmFindings().filter((f) => f.kind === "alarm-state");
    assert.deepEqual(
      set.map((f) => f.subject),
      ["iot-pipeline-prod-rule-error-rate"],
    );
    assert.match(set[0].message, /set by state\/b$/);
  });
});
