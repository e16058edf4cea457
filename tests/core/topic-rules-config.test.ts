// The stack config's `rules`: each rule and action checked when the config is loaded, in one line
// naming the key (docs/config.md#topic-rules); the telemetry rule's keys keep their meaning.
import { strict as assert } from "node:assert";
import { ConfigError } from "../../core/errors";
import { loadPlan, planPipeline } from "../../core/plan";
import { parseStackConfig, readRawStackConfig } from "../../core/stack-config";

const ALERTS = {
  name: "alerts",
  sql: "SELECT * FROM 'SeattleStoreTemp/+' WHERE temperature > 15",
  actions: [{ republish: { topic: "alerts/${topic(2)}", qos: 1 } }],
};

const planWith = (rules: unknown, stack = "dev") =>
  planPipeline(parseStackConfig({ ...readRawStackConfig(stack), rules }, stack));

function refuses(rules: unknown, message: RegExp, stack = "dev") {
  assert.throws(
    () => planWith(rules, stack),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
      assert.match(e.message, message);
      assert.ok(!e.message.includes("\n"), "the message is one line");
      return true;
    },
  );
}

const rule = (extra: Record<string, unknown>) => [{ ...ALERTS, ...extra }];

describe("stack config: rules (core/topic-rules/config.ts)", () => {
  it("the seed stacks dev and fleet have no further rule; the telemetry rule is as before", () => {
    for (const stack of ["dev", "fleet"]) {
      const plan = loadPlan(stack);
      assert.deepEqual(plan.rules, []);
      assert.equal(plan.rule.name, "sensor_rule");
    }
  });

  it("prod's alerts rule: SQL parsed, defaults filled (enabled, QoS, the error log group), its alarm planned", () => {
    const plan = loadPlan("prod");
    assert.equal(plan.rules.length, 1);
    const [alerts] = plan.rules;
    assert.equal(alerts.name, "alerts");
    assert.equal(alerts.enabled, true);
    assert.equal(alerts.statement.from, "SeattleStoreTemp/+");
    assert.deepEqual(alerts.actions[0], {
      kind: "republish",
      params: { topic: "alerts/${topic(2)}", qos: 1 },
    });
    assert.deepEqual(alerts.errorAction, {
      kind: "cloudwatchLogs",
      params: { logGroupName: "/iot/rules/alerts/errors" },
    });
    assert.deepEqual(
      plan.monitoring.metricAlarms.map((a) => [a.name, a.statistic, a.threshold]),
      [["iot-pipeline-prod-alerts-HighTemperature", "SampleCount", 0]],
    );
  });

  it("errorAction: none leaves the rule without one (the pack refuses that outside dev)", () => {
    const [r] = planWith(rule({ errorAction: "none" })).rules;
    assert.equal(r.errorAction, undefined);
  });

  it("an unknown action kind, in one line naming the action and the kinds", () => {
    refuses(
      rule({ actions: [{ lambdaa: { functionArn: "x" } }] }),
      /^config iot-pipeline:rules\[0\]\.actions\[0\]\.lambdaa = "\(an action\)" is invalid: lambdaa is not an action kind; use one of republish, /,
    );
  });

  it("an unknown parameter of a known action", () => {
    refuses(
      rule({ actions: [{ republish: { topic: "a", retain: true } }] }),
      /rules\[0\]\.actions\[0\]\.republish\.retain = true is invalid: is not a parameter of this action; use topic, qos, headers/,
    );
  });

  it("a bad substitution template names the parameter and the page", () => {
    refuses(
      rule({ actions: [{ republish: { topic: "alerts/${topic(2)" } }] }),
      /rules\[0\]\.actions\[0\]\.republish\.topic = "alerts\/\$\{topic\(2\)" is invalid: \$\{ at character 8 has no closing \} \(substitution templates: https:\/\/docs\.aws\.amazon\.com\/iot\/latest\/developerguide\/iot-substitution-templates\.html\)/,
    );
    refuses(
      rule({
        actions: [
          {
            cloudwatchMetric: {
              metricNamespace: "N",
              metricName: "M",
              metricValue: "${upper(}",
              metricUnit: "None",
            },
          },
        ],
      }),
      /rules\[0\]\.actions\[0\]\.cloudwatchMetric\.metricValue = "\$\{upper\(\}" is invalid: \$\{upper\(\} is not an IoT SQL expression/,
    );
  });

  it("a missing target: a republish without a topic, an alarm action on an alarm the stack does not have", () => {
    refuses(
      rule({ actions: [{ republish: { qos: 1 } }] }),
      /rules\[0\]\.actions\[0\]\.republish\.topic = null is invalid: set a string of 1 to 256 characters/,
    );
    refuses(
      rule({
        actions: [
          { cloudwatchAlarm: { alarmName: "nope", stateValue: "ALARM", stateReason: "hot" } },
        ],
      }),
      /rules\[0\]\.actions\[0\]\.cloudwatchAlarm\.alarmName = "nope" is invalid: name an alarm of the stack: iot-pipeline-prod-rule-error-rate, iot-pipeline-prod-telemetry-delivery-freshness, /,
      "prod",
    );
    refuses(
      rule({
        actions: [{ cloudwatchAlarm: { alarmName: "x", stateValue: "ALARM", stateReason: "hot" } }],
      }),
      /alarmName = "x" is invalid: name an alarm of the stack: \(none: turn alarms on or give a cloudwatchMetric action an alarm\)/,
    );
  });

  it("an alarm action on one of the stack's alarms loads", () => {
    const [r] = planWith(
      rule({
        actions: [
          {
            cloudwatchAlarm: {
              alarmName: "iot-pipeline-prod-rule-error-rate",
              stateValue: "ALARM",
              stateReason: "${temperature}",
            },
          },
        ],
      }),
      "prod",
    ).rules;
    assert.equal(r.actions[0].kind, "cloudwatchAlarm");
  });

  it("SQL the local engine cannot parse names the rule's sql key, line and column", () => {
    refuses(
      rule({ sql: "SELECT * FROM SeattleStoreTemp/1" }),
      /^config iot-pipeline:rules\[0\]\.sql = "SELECT \* FROM SeattleStoreTemp\/1" is invalid: FROM must name a quoted topic filter.* at line 1, column 15$/,
    );
  });

  it("a reserved topic other than the shadow's, and one $ for $$", () => {
    refuses(
      rule({ actions: [{ republish: { topic: "$$aws/things/t/jobs/get" } }] }),
      /republish\.topic = "\$\$aws\/things\/t\/jobs\/get" is invalid: republishing to reserved job topics is not supported/,
    );
    refuses(
      rule({ actions: [{ republish: { topic: "$aws/things/t/shadow/update" } }] }),
      /write \$\$ for its leading \$/,
    );
  });

  it("names: the telemetry rule's is taken, each once, AWS's syntax", () => {
    refuses(
      rule({ name: "sensor_rule" }),
      /rules\[0\]\.name = "sensor_rule" is invalid: each rule of the stack needs its own name/,
    );
    refuses([ALERTS, ALERTS], /rules\[1\]\.name = "alerts" is invalid/);
    refuses(
      rule({ name: "high-alerts" }),
      /rules\[0\]\.name = "high-alerts" is invalid: use 1-128 letters, digits and underscores/,
    );
  });

  it("1 to 10 actions (AWS IoT's most per rule), a known rule key, a boolean enabled", () => {
    refuses(
      rule({ actions: [] }),
      /rules\[0\]\.actions = \[\] is invalid: set a list of 1 to 10 actions/,
    );
    refuses(
      rule({ actions: Array.from({ length: 11 }, (_, i) => ({ republish: { topic: `a/${i}` } })) }),
      /rules\[0\]\.actions = .* is invalid: set a list of 1 to 10 actions/,
    );
    refuses(
      rule({ ruleDisabled: true }),
      /rules\[0\]\.ruleDisabled = true is invalid: is not a rule key/,
    );
    refuses(rule({ enabled: "yes" }), /rules\[0\]\.enabled = "yes" is invalid: set true or false/);
  });

  it("MQTT 5 headers: the page's fields, each a template; payloadFormatIndicator one of two", () => {
    const [r] = planWith(
      rule({
        actions: [
          {
            republish: {
              topic: "alerts/${topic(2)}",
              headers: {
                contentType: "application/json",
                payloadFormatIndicator: "UTF8_DATA",
                userProperties: [{ key: "thing", value: "${topic(2)}" }],
                messageExpiry: "60",
              },
            },
          },
        ],
      }),
    ).rules;
    assert.deepEqual(r.actions[0], {
      kind: "republish",
      params: {
        topic: "alerts/${topic(2)}",
        qos: 0,
        headers: {
          payloadFormatIndicator: "UTF8_DATA",
          contentType: "application/json",
          messageExpiry: "60",
          userProperties: [{ key: "thing", value: "${topic(2)}" }],
        },
      },
    });
    refuses(
      rule({
        actions: [{ republish: { topic: "a", headers: { payloadFormatIndicator: "UTF16" } } }],
      }),
      /republish\.headers\.payloadFormatIndicator = "UTF16" is invalid: use UTF8_DATA or UNSPECIFIED_BYTES/,
    );
  });
});
