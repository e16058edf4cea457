// The local pipeline's alarm figures: the rule's counters cut into the stack's alarm period, the
// streams' freshness scaled back to the stack's time, and the findings the thresholds give.
import { strict as assert } from "node:assert";
import { LocalMonitor } from "../../local/monitoring/monitor";

const alarms = {
  enabled: true,
  periodSeconds: 60,
  ruleErrorRatePercent: 1,
  deliveryFreshnessSeconds: 900,
};

describe("local monitor: what the stack's alarms would have flagged", () => {
  it("flags a rule error rate above the threshold and a stream that waited too long (at --fast)", () => {
    let counters = { onTopic: 0, errors: 0 };
    const m = new LocalMonitor({
      alarms,
      ruleName: "sensor_rule",
      sample: () => counters,
      // 20 s of local time at 60× is 1,200 s of the stack's.
      freshness: () => ({ "weather-data-stream": 20_000, "weather-data-stream-windows": 1_000 }),
      timeScale: 60,
      analytics: true,
    });
    counters = { onTopic: 50, errors: 3 };
    m.stop();
    const f = m.figures();
    assert.deepEqual(
      f.rulePeriods.map((p) => [p.onTopic, p.errors]),
      [[50, 3]],
    );
    assert.deepEqual(f.deliveryFreshnessSeconds, {
      "weather-data-stream": 1200,
      "weather-data-stream-windows": 60,
    });
    assert.equal(f.flinkDowntimeMs, 0);
    assert.deepEqual(
      m.findings().map((x) => `${x.kind} ${x.subject}`),
      ["rule-error-rate sensor_rule", "delivery-freshness weather-data-stream"],
    );
  });

  it("a clean run flags nothing, and a period without messages is no period", () => {
    const m = new LocalMonitor({
      alarms,
      ruleName: "sensor_rule",
      sample: () => ({ onTopic: 0, errors: 0 }),
      freshness: () => ({ s: 1000 }),
    });
    m.stop();
    m.stop();
    assert.deepEqual(m.figures().rulePeriods, []);
    assert.equal(m.figures().flinkDowntimeMs, undefined);
    assert.deepEqual(m.findings(), []);
  });
});
