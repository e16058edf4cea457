// The local CloudWatch the rules' actions write to (local/monitoring/cloudwatch.ts): data points
// aggregated per period, a metric alarm evaluated as CloudWatch would (the statistic of each
// period against the threshold, `evaluationPeriods` in a row, missing data not breaching:
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html), and
// SetAlarmState only on an alarm of the stack (ResourceNotFound otherwise:
// https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_SetAlarmState.html).
import { strict as assert } from "node:assert";
import type { MetricAlarmPlan } from "../../core/monitoring";
import { LOCAL_METRIC_SERIES_MAX, LocalCloudWatchStore } from "../../local/monitoring/cloudwatch";
import { ActionFailure } from "../../local/rule/actions/action";

const alarm = (extra: Partial<MetricAlarmPlan> = {}): MetricAlarmPlan => ({
  name: "iot-pipeline-prod-alerts-High",
  ruleName: "alerts",
  actionId: "cloudwatchMetric-1",
  namespace: "Test",
  metricName: "High",
  statistic: "Sum",
  periodSeconds: 60,
  evaluationPeriods: 2,
  threshold: 10,
  ...extra,
});

const T0 = Date.UTC(2026, 11, 7, 20, 0, 0);
const put = (cw: LocalCloudWatchStore, value: number, at: number, metricName = "High") =>
  cw.putMetric({ namespace: "Test", metricName, value, unit: "None", timestamp: at });

describe("local CloudWatch (local/monitoring/cloudwatch.ts)", () => {
  it("fires only after evaluationPeriods breaching periods in a row", () => {
    const cw = new LocalCloudWatchStore({
      metricAlarms: [alarm()],
      alarmPrefix: "iot-pipeline-prod",
    });
    put(cw, 11, T0); // period 1: Sum 11 > 10
    assert.deepEqual(cw.findings(), [], "one breaching period of two");
    put(cw, 6, T0 + 60_000);
    put(cw, 6, T0 + 61_000); // period 2: Sum 12 > 10
    const [f] = cw.findings();
    assert.equal(f.kind, "rule-metric");
    assert.match(
      f.message,
      /Sum 12 above 10 for 2 period\(s\) of 60 s, from 2026-12-07T20:00:00\.000Z$/,
    );
  });

  it("a period without data in between does not breach (notBreaching): the run starts again", () => {
    const cw = new LocalCloudWatchStore({ metricAlarms: [alarm()], alarmPrefix: "p" });
    put(cw, 11, T0);
    put(cw, 11, T0 + 120_000);
    assert.deepEqual(cw.findings(), []);
  });

  it("each statistic: Maximum, Minimum, Average, SampleCount", () => {
    for (const [statistic, want] of [
      ["Maximum", 9],
      ["Minimum", 1],
      ["Average", 5],
      ["SampleCount", 3],
    ] as const) {
      const cw = new LocalCloudWatchStore({
        metricAlarms: [alarm({ statistic, threshold: want - 0.5, evaluationPeriods: 1 })],
        alarmPrefix: "p",
      });
      for (const v of [1, 5, 9]) put(cw, v, T0 + v);
      assert.equal(cw.findings().length, 1, statistic);
      const tight = new LocalCloudWatchStore({
        metricAlarms: [alarm({ statistic, threshold: want, evaluationPeriods: 1 })],
        alarmPrefix: "p",
      });
      for (const v of [1, 5, 9]) put(tight, v, T0 + v);
      assert.deepEqual(tight.findings(), [], `${statistic} equal to the threshold does not breach`);
    }
  });

  it("SetAlarmState: an alarm of the stack is set and shown; any other is ResourceNotFound", () => {
    const cw = new LocalCloudWatchStore({
      metricAlarms: [alarm()],
      alarmPrefix: "iot-pipeline-prod",
    });
    cw.setAlarmState("iot-pipeline-prod-rule-error-rate", "ALARM", "hot", T0);
    cw.setAlarmState("iot-pipeline-prod-alerts-High", "OK", "cool", T0);
    assert.throws(
      () => cw.setAlarmState("someone-elses", "ALARM", "x", T0),
      (e: unknown) => e instanceof ActionFailure && /ResourceNotFound/.test(e.message),
    );
    assert.deepEqual(
      cw.findings().map((f) => [f.kind, f.subject]),
      [["alarm-state", "iot-pipeline-prod-rule-error-rate"]],
    );
    assert.deepEqual(cw.rows(), [{ label: "alarm states set by rules (SetAlarmState)", value: 2 }]);
  });

  it(`keeps at most ${LOCAL_METRIC_SERIES_MAX} metrics, counts and logs the rest once`, () => {
    const lines: string[] = [];
    const cw = new LocalCloudWatchStore({
      metricAlarms: [],
      alarmPrefix: "p",
      log: (l) => lines.push(l),
    });
    for (let i = 0; i < LOCAL_METRIC_SERIES_MAX + 5; i++) put(cw, 1, T0, `m${i}`);
    assert.equal(cw.dropped, 5);
    assert.equal(lines.length, 1);
    assert.match(
      lines[0],
      /more than 1000 metrics in one run; Test\/m1000 and later new metrics are not kept/,
    );
    assert.deepEqual(cw.rows().at(-1), {
      label: "metric data not kept (over the series bound)",
      value: 5,
    });
  });
});
