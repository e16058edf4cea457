// The presence alarm in the program: `presenceAlarm` deploys a CloudWatch alarm on the metric the
// presence rule puts (core/monitoring.ts presenceMetric, PRESENCE), beside the stack's other alarms.
import { strict as assert } from "node:assert";
import { runProgram } from "../../tools/mock-program";
import { grants, json, ofType, one, statements } from "./helpers";

const ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm";
const RULE = "aws:iot/topicRule:TopicRule";

describe("program: the presence alarm (presenceAlarm)", function () {
  this.timeout(60_000);

  it("is off by default", async () => {
    const run = await runProgram("prod");
    assert.deepEqual(
      ofType(run, ALARM).filter((a) => String(a.props.name).endsWith("-device-disconnects")),
      [],
    );
  });

  it("watches iot-pipeline/<stack> DeviceDisconnects, Sum per alarm period, at or above the threshold", async () => {
    const run = await runProgram("prod", {
      overrides: { presenceAlarm: true, presenceAlarmDisconnects: 3, alarmPeriodSeconds: 60 },
    });
    const alarm = one(run, ALARM, (a) => a.props.name === "iot-pipeline-prod-device-disconnects");
    assert.equal(alarm.props.namespace, "iot-pipeline/prod");
    assert.equal(alarm.props.metricName, "DeviceDisconnects");
    assert.equal(alarm.props.statistic, "Sum");
    assert.equal(alarm.props.period, 60);
    assert.equal(alarm.props.comparisonOperator, "GreaterThanOrEqualToThreshold");
    assert.equal(alarm.props.threshold, 3);
    assert.equal(alarm.props.treatMissingData, "notBreaching");
  });

  it("deploys the rule that puts the metric the alarm watches, with a role that may put only that namespace", async () => {
    const off = await runProgram("prod");
    assert.equal(
      ofType(off, RULE).filter((r) => r.props.name === "device_presence").length,
      0,
      "no presence rule without presenceAlarm",
    );
    const run = await runProgram("prod", { overrides: { presenceAlarm: true } });
    const rule = one(run, RULE, (r) => r.props.name === "device_presence");
    // The disconnect event of life-cycle-events.html, without a client's own DISCONNECT.
    assert.equal(
      rule.props.sql,
      "SELECT clientId, disconnectReason, timestamp FROM '$aws/events/presence/disconnected/+' WHERE disconnectReason <> 'CLIENT_INITIATED_DISCONNECT'",
    );
    const [metric] = rule.props.cloudwatchMetrics as Record<string, unknown>[];
    assert.equal(metric.metricNamespace, "iot-pipeline/prod");
    assert.equal(metric.metricName, "DeviceDisconnects");
    assert.equal(metric.metricValue, "1");
    assert.equal(metric.metricUnit, "Count");
    const role = one(run, "aws:iam/role:Role", (r) => r.props.arn === metric.roleArn);
    const policy = one(
      run,
      "aws:iam/rolePolicy:RolePolicy",
      (p) => p.props.role === role.props.name,
    );
    assert.deepEqual(
      statements(json(policy.props.policy)).map((st) => st.Condition),
      [{ StringLike: { "cloudwatch:namespace": "iot-pipeline/prod" } }],
    );
    assert.deepEqual(grants(run, role).actions, ["cloudwatch:PutMetricData"]);
  });
});
