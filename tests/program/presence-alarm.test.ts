// The presence alarm in the program: `presenceAlarm` deploys a CloudWatch alarm on the metric the
// presence rule puts (core/monitoring.ts presenceMetric, PRESENCE), beside the stack's other alarms.
import { strict as assert } from "node:assert";
import { runProgram } from "../../tools/mock-program";
import { ofType, one } from "./helpers";

const ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm";

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
});
