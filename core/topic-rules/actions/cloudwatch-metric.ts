// The CloudWatch metric action's parameters: namespace, name, value, unit and timestamp, each a
// substitution template
// (https://docs.aws.amazon.com/iot/latest/developerguide/cloudwatch-metrics-rule-action.html);
// and, the stack's own addition, an alarm on that metric the stack creates beside it.
import { ParamReader, type ActionDefinition } from "./action";

/** CloudWatch's units (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_MetricDatum.html). */
export const CLOUDWATCH_UNITS = [
  "Seconds",
  "Microseconds",
  "Milliseconds",
  "Bytes",
  "Kilobytes",
  "Megabytes",
  "Gigabytes",
  "Terabytes",
  "Bits",
  "Kilobits",
  "Megabits",
  "Gigabits",
  "Terabits",
  "Percent",
  "Count",
  "Bytes/Second",
  "Kilobytes/Second",
  "Megabytes/Second",
  "Gigabytes/Second",
  "Terabytes/Second",
  "Bits/Second",
  "Kilobits/Second",
  "Megabits/Second",
  "Gigabits/Second",
  "Terabits/Second",
  "Count/Second",
  "None",
] as const;

/** An alarm the stack creates on the action's metric (not a parameter of AWS's action). */
export interface MetricAlarmSpec {
  /** The alarm fires when the period's statistic is above this. */
  readonly threshold: number;
  /** @default "Sum" */
  readonly statistic: "Sum" | "Average" | "Maximum" | "Minimum" | "SampleCount";
  /** @default 60 */
  readonly periodSeconds: number;
  /** @default 1 */
  readonly evaluationPeriods: number;
}

export interface CloudWatchMetricParams {
  readonly metricNamespace: string;
  readonly metricName: string;
  /** A template giving a number (e.g. `${temperature}` or `1`). */
  readonly metricValue: string;
  /** A template giving one of CLOUDWATCH_UNITS. */
  readonly metricUnit: string;
  /** A template giving Unix seconds; the time the rule ran when undefined. */
  readonly metricTimestamp?: string;
  readonly alarm?: MetricAlarmSpec;
}

export interface CloudWatchMetricSpec {
  readonly kind: "cloudwatchMetric";
  readonly params: CloudWatchMetricParams;
}

function parseAlarm(p: ParamReader, literal: boolean): MetricAlarmSpec | undefined {
  const raw = p.raw.alarm;
  if (raw === undefined) return undefined;
  if (!literal) {
    p.fail("alarm", raw, "an alarm needs a metricNamespace and metricName without ${...}");
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    p.fail("alarm", raw, "set {threshold, statistic, periodSeconds, evaluationPeriods}");
  }
  const a: ParamReader = new ParamReader(
    raw as Record<string, unknown>,
    { ...p.ctx, at: `${p.ctx.at}.alarm` },
    ["threshold", "statistic", "periodSeconds", "evaluationPeriods"],
  );
  const threshold = a.raw.threshold;
  if (typeof threshold !== "number" || !Number.isFinite(threshold)) {
    a.fail("threshold", threshold ?? null, "set a number");
  }
  const whole = (key: string, fallback: number, ok: (n: number) => boolean, what: string) => {
    const v = a.raw[key] ?? fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || !ok(v)) a.fail(key, v, what);
    return v;
  };
  return {
    threshold,
    statistic: a.oneOf("statistic", ["Sum", "Average", "Maximum", "Minimum", "SampleCount"], "Sum"),
    // CloudWatch: 10, 30 or a multiple of 60 seconds.
    periodSeconds: whole(
      "periodSeconds",
      60,
      (n) => n === 10 || n === 30 || (n >= 60 && n % 60 === 0),
      "use 10, 30 or a multiple of 60 seconds",
    ),
    evaluationPeriods: whole("evaluationPeriods", 1, (n) => n >= 1 && n <= 100, "use 1 to 100"),
  };
}

export const cloudwatchMetricDefinition: ActionDefinition<
  "cloudwatchMetric",
  CloudWatchMetricParams
> = {
  kind: "cloudwatchMetric",
  failedAction: "CloudwatchMetricAction",
  page: "https://docs.aws.amazon.com/iot/latest/developerguide/cloudwatch-metrics-rule-action.html",
  parse(raw, ctx) {
    const p: ParamReader = new ParamReader(raw, ctx, [
      "metricNamespace",
      "metricName",
      "metricValue",
      "metricUnit",
      "metricTimestamp",
      "alarm",
    ]);
    const metricNamespace = p.template("metricNamespace", 255);
    if (metricNamespace.startsWith("AWS/")) {
      p.fail(
        "metricNamespace",
        metricNamespace,
        "AWS/ namespaces are AWS's own; use a namespace of your own",
      );
    }
    const metricName = p.template("metricName", 255);
    const metricValue = p.template("metricValue");
    const metricUnit = p.template("metricUnit");
    if (
      !metricUnit.includes("${") &&
      !(CLOUDWATCH_UNITS as readonly string[]).includes(metricUnit)
    ) {
      p.fail(
        "metricUnit",
        metricUnit,
        `use one of CloudWatch's units: ${CLOUDWATCH_UNITS.join(", ")}`,
      );
    }
    const metricTimestamp = p.optionalTemplate("metricTimestamp");
    const literal = !metricNamespace.includes("${") && !metricName.includes("${");
    const alarm = parseAlarm(p, literal);
    return {
      metricNamespace,
      metricName,
      metricValue,
      metricUnit,
      ...(metricTimestamp === undefined ? {} : { metricTimestamp }),
      ...(alarm === undefined ? {} : { alarm }),
    };
  },
};
