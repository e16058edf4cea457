// The CloudWatch metric action offline: one datum per message into the local CloudWatch (the
// run's dashboard and alarm report), its fields substitution templates filled in per message
// (https://docs.aws.amazon.com/iot/latest/developerguide/cloudwatch-metrics-rule-action.html).
import { CLOUDWATCH_UNITS } from "../../../core/topic-rules/actions/cloudwatch-metric";
import { compileTemplate } from "../../../core/topic-rules/template";
import { ActionFailure, required, substitute, type LocalActionFactory } from "./action";

export const localCloudwatchMetric: LocalActionFactory<"cloudwatchMetric"> = (
  spec,
  services,
  ctx,
) => {
  const cloudwatch = required(services.cloudwatch, "the local CloudWatch", ctx);
  const p = spec.params;
  const namespace = compileTemplate(p.metricNamespace);
  const name = compileTemplate(p.metricName);
  const value = compileTemplate(p.metricValue);
  const unit = compileTemplate(p.metricUnit);
  const timestamp =
    p.metricTimestamp === undefined ? undefined : compileTemplate(p.metricTimestamp);
  return {
    kind: "cloudwatchMetric",
    failedAction: "CloudwatchMetricAction",
    resource: p.metricNamespace,
    async run(m) {
      const ns = substitute(namespace, m);
      const metricName = substitute(name, m);
      const fail = (why: string): never => {
        throw new ActionFailure(`Failed to put metric ${ns}/${metricName}: ${why}`, ns);
      };
      const text = substitute(value, m);
      const n = Number(text);
      if (text.trim() === "" || !Number.isFinite(n))
        fail(`metricValue ${JSON.stringify(text)} is not a number`);
      const u = substitute(unit, m);
      if (!(CLOUDWATCH_UNITS as readonly string[]).includes(u))
        fail(`metricUnit ${JSON.stringify(u)} is not a CloudWatch unit`);
      let at = m.receivedAt;
      if (timestamp !== undefined) {
        const ts = substitute(timestamp, m);
        // The page: a Unix timestamp (seconds).
        if (!/^\d+$/.test(ts)) fail(`metricTimestamp ${JSON.stringify(ts)} is not Unix seconds`);
        at = Number(ts) * 1000;
      }
      if (ns === "" || metricName === "") fail("the namespace and the name must not be empty");
      cloudwatch.putMetric({ namespace: ns, metricName, value: n, unit: u, timestamp: at });
      await Promise.resolve();
    },
  };
};
