// The presence example (core/monitoring.ts PRESENCE): the rule statement on AWS IoT's lifecycle
// events, run by the project's IoT SQL engine on the disconnect messages exactly as
// https://docs.aws.amazon.com/iot/latest/developerguide/life-cycle-events.html shows them, the
// alarm evaluation the local run prints, and the config keys.
import { strict as assert } from "node:assert";
import {
  evaluateAlarms,
  isUnexpectedDisconnect,
  presenceMetric,
  presenceRuleSql,
} from "../../core/monitoring";
import { evaluateRule, parseRuleSql } from "../../core/rule-sql";
import { parseStackConfig, readRawStackConfig } from "../../core/stack-config";

/** life-cycle-events.html: "A disconnect message has the following structure." */
const documented = {
  clientId: "186b5",
  thingName: "exampleThing",
  timestamp: 1573002340451,
  eventType: "disconnected",
  sessionIdentifier: "00000000-0000-0000-0000-000000000000",
  principalIdentifier: "12345678901234567890123456789012",
  clientInitiatedDisconnect: true,
  disconnectReason: "CLIENT_INITIATED_DISCONNECT",
  versionNumber: 0,
};

describe("presence: a rule on $aws/events/presence/disconnected/+ and its alarm", () => {
  const statement = parseRuleSql(presenceRuleSql());
  const run = (body: object) =>
    evaluateRule(statement, {
      topic: "$aws/events/presence/disconnected/186b5",
      payload: JSON.stringify(body),
      timestamp: 0,
      newuuid: () => "u",
    });

  it("the documented disconnect message with CLIENT_INITIATED_DISCONNECT does not count", () => {
    assert.deepEqual(run(documented), { matched: false, reason: "where" });
    assert.equal(isUnexpectedDisconnect("CLIENT_INITIATED_DISCONNECT"), false);
  });

  for (const reason of ["CONNECTION_LOST", "MQTT_KEEP_ALIVE_TIMEOUT", "DUPLICATE_CLIENTID"]) {
    it(`a ${reason} disconnection counts, with the client id and reason`, () => {
      const r = run({ ...documented, clientInitiatedDisconnect: false, disconnectReason: reason });
      assert.ok(r.matched);
      assert.deepEqual(r.output, {
        clientId: "186b5",
        disconnectReason: reason,
        timestamp: 1573002340451,
      });
      assert.equal(isUnexpectedDisconnect(reason), true);
    });
  }

  it("a connected event on another topic is not the rule's", () => {
    const r = evaluateRule(statement, {
      topic: "$aws/events/presence/connected/186b5",
      payload: JSON.stringify({ ...documented, eventType: "connected" }),
      timestamp: 0,
      newuuid: () => "u",
    });
    assert.equal(r.matched, false);
  });

  it("the metric is the stack's namespace, DeviceDisconnects, summed per period", () => {
    assert.deepEqual(presenceMetric("prod"), {
      namespace: "iot-pipeline/prod",
      name: "DeviceDisconnects",
      statistic: "Sum",
    });
  });

  it("the alarm fires on a period at or above the threshold, and not when it is off", () => {
    const alarms = {
      enabled: true,
      periodSeconds: 300,
      ruleErrorRatePercent: 1,
      deliveryFreshnessSeconds: 900,
    };
    const figures = {
      rulePeriods: [],
      deliveryFreshnessSeconds: {},
      disconnectPeriods: [
        { start: 0, disconnects: 1 },
        { start: 300_000, disconnects: 2 },
      ],
    };
    assert.deepEqual(
      evaluateAlarms(figures, { ...alarms, presenceDisconnects: 2 }, "r").map((f) => f.message),
      [
        "2 device disconnection(s) other than CLIENT_INITIATED_DISCONNECT in the period from 1970-01-01T00:05:00.000Z, at or above 2",
      ],
    );
    assert.deepEqual(evaluateAlarms(figures, alarms, "r"), []);
  });

  it("config: presenceAlarm sets the threshold, needs alarms, and the threshold is at least 1", () => {
    const prod = readRawStackConfig("prod");
    const parse = (over: Record<string, unknown>) =>
      parseStackConfig({ ...prod, ...over }, "prod").monitoring.alarms;
    assert.equal(parse({}).presenceDisconnects, undefined);
    assert.equal(parse({ presenceAlarm: true }).presenceDisconnects, 1);
    assert.equal(
      parse({ presenceAlarm: true, presenceAlarmDisconnects: 5 }).presenceDisconnects,
      5,
    );
    assert.throws(
      () => parse({ presenceAlarm: true, alarms: false }),
      /presenceAlarm.*needs alarms: true/,
    );
    assert.throws(() => parse({ presenceAlarmDisconnects: 0 }), /presenceAlarmDisconnects/);
  });
});
