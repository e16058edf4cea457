// The storage and monitoring policies (11-14): a whole happy-path stack with no violation from any
// policy, then one change per test with the exact violations expected.
import * as assert from "node:assert/strict";
import { denyInsecureTransport } from "../../core/storage";
import { type Res, lines, res, violations } from "./helpers";

const UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"; // the engine's unknown-string sentinel
const BUCKET_ARN = "arn:aws:s3:::iot-pipeline-prod-data";
const TOPIC = "arn:aws:sns:us-east-1:123456789012:alarms";

const bucket = () =>
  res("aws:s3/bucket:Bucket", "data", {
    bucket: "iot-pipeline-prod-data",
    id: "iot-pipeline-prod-data",
    arn: BUCKET_ARN,
  });
const publicAccess = () =>
  res("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "data-block", {
    bucket: "iot-pipeline-prod-data",
    blockPublicAcls: true,
    blockPublicPolicy: true,
    ignorePublicAcls: true,
    restrictPublicBuckets: true,
  });
const encryption = () =>
  res(
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "data-sse",
    {
      bucket: "iot-pipeline-prod-data",
      rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" } }],
    },
  );
const bucketPolicy = (statements: unknown[] = [denyInsecureTransport(BUCKET_ARN)]) =>
  res("aws:s3/bucketPolicy:BucketPolicy", "data-policy", {
    bucket: "iot-pipeline-prod-data",
    policy: JSON.stringify({ Version: "2012-10-17", Statement: statements }),
  });
const lifecycle = (
  rules: unknown[] = [{ id: "data", status: "Enabled", expiration: { days: 365 } }],
) =>
  res("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "data-lifecycle", {
    bucket: "iot-pipeline-prod-data",
    rules,
  });
const rule = () =>
  res("aws:iot/topicRule:TopicRule", "rule", {
    name: "sensor_rule",
    sql: "SELECT * FROM 'SeattleStoreTemp/1'",
    sqlVersion: "2016-03-23",
    errorAction: {
      cloudwatchLogs: { logGroupName: "/iot/rules/sensor_rule/errors", roleArn: "r" },
    },
  });
const stream = () =>
  res("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream", "stream", {
    name: "weather-data-stream",
    destination: "extended_s3",
    extendedS3Configuration: {
      bucketArn: BUCKET_ARN,
      cloudwatchLoggingOptions: { enabled: true, logGroupName: "/g", logStreamName: "s" },
    },
  });
const app = () =>
  res("aws:kinesisanalyticsv2/application:Application", "window", {
    name: "window-app",
    runtimeEnvironment: "FLINK-1_20",
  });
const logging = (props: Record<string, unknown> = {}) =>
  res("aws:iot/loggingOptions:LoggingOptions", "iot-logging", {
    defaultLogLevel: "ERROR",
    disableAllLogs: false,
    roleArn: "arn:aws:iam::123456789012:role/iot-logging",
    ...props,
  });
const ruleAlarm = (props: Record<string, unknown> = {}) =>
  res("aws:cloudwatch/metricAlarm:MetricAlarm", "rule-error-rate", {
    alarmActions: [TOPIC],
    metricQueries: [
      {
        id: "messages",
        metric: {
          namespace: "AWS/IoT",
          metricName: "TopicMatch",
          dimensions: { RuleName: "sensor_rule" },
          stat: "Sum",
          period: 300,
        },
      },
      { id: "rate", expression: "100 * FILL(errors, 0) / messages", returnData: true },
    ],
    ...props,
  });
const freshnessAlarm = (stream = "weather-data-stream") =>
  res("aws:cloudwatch/metricAlarm:MetricAlarm", `freshness-${stream}`, {
    alarmActions: [TOPIC],
    namespace: "AWS/Firehose",
    metricName: "DeliveryToS3.DataFreshness",
    dimensions: { DeliveryStreamName: stream },
    statistic: "Maximum",
  });
const downtimeAlarm = () =>
  res("aws:cloudwatch/metricAlarm:MetricAlarm", "flink-downtime", {
    alarmActions: [TOPIC],
    namespace: "AWS/KinesisAnalytics",
    metricName: "downtime",
    dimensions: { Application: "window-app" },
    statistic: "Average",
  });

const topic = (props: Record<string, unknown> = {}) =>
  res("aws:sns/topic:Topic", "alarms", { name: "alarms", arn: TOPIC, ...props });
const subscription = (props: Record<string, unknown> = {}) =>
  res("aws:sns/topicSubscription:TopicSubscription", "alarms-email", {
    topic: TOPIC,
    protocol: "email",
    endpoint: "ops@example.com",
    ...props,
  });

type Part =
  | "bucket"
  | "publicAccess"
  | "encryption"
  | "bucketPolicy"
  | "lifecycle"
  | "rule"
  | "stream"
  | "app"
  | "logging"
  | "ruleAlarm"
  | "freshnessAlarm"
  | "downtimeAlarm"
  | "topic"
  | "subscription";

const HAPPY: Record<Part, () => Res> = {
  bucket,
  publicAccess,
  encryption,
  bucketPolicy: () => bucketPolicy(),
  lifecycle: () => lifecycle(),
  rule,
  stream,
  app,
  logging: () => logging(),
  ruleAlarm: () => ruleAlarm(),
  freshnessAlarm: () => freshnessAlarm(),
  downtimeAlarm,
  topic: () => topic(),
  subscription: () => subscription(),
};

/** The happy stack with some parts replaced (a resource) or removed (null). */
function stackWith(changes: Partial<Record<Part, Res | null>> = {}): Res[] {
  return (Object.keys(HAPPY) as Part[])
    .map((k) => (k in changes ? changes[k] : HAPPY[k]()))
    .filter((r): r is Res => r !== null && r !== undefined);
}

async function check(resources: Res[], stack = "prod", config: unknown = {}): Promise<string[]> {
  return lines(await violations(resources, stack, config));
}

describe("the storage and monitoring policies on a whole stack", () => {
  it("the happy-path stack has no violation from any policy, in prod and in dev", async () => {
    assert.deepEqual(await check(stackWith()), []);
    assert.deepEqual(await check(stackWith(), "dev"), []);
  });
});

describe("policy 11: s3-bucket-deny-insecure-transport", () => {
  const message =
    'mandatory s3-bucket-deny-insecure-transport: S3 bucket data accepts requests without TLS; add an aws.s3.BucketPolicy for it with a Deny for Principal "*" on s3:* over the bucket and its objects when aws:SecureTransport is "false"';

  it("a bucket without a bucket policy fails, in dev too", async () => {
    assert.deepEqual(await check(stackWith({ bucketPolicy: null })), [message]);
    assert.deepEqual(await check(stackWith({ bucketPolicy: null }), "dev"), [message]);
  });

  it("a policy whose condition is aws:SecureTransport true does not refuse plain HTTP", async () => {
    const wrong = {
      ...denyInsecureTransport(BUCKET_ARN),
      Condition: { Bool: { "aws:SecureTransport": "true" } },
    };
    assert.deepEqual(await check(stackWith({ bucketPolicy: bucketPolicy([wrong]) })), [message]);
  });

  it("a Deny that covers the objects but not the bucket fails", async () => {
    const objectsOnly = { ...denyInsecureTransport(BUCKET_ARN), Resource: [`${BUCKET_ARN}/*`] };
    assert.deepEqual(await check(stackWith({ bucketPolicy: bucketPolicy([objectsOnly]) })), [
      message,
    ]);
  });

  it("an Allow in place of the Deny fails", async () => {
    const allow = { ...denyInsecureTransport(BUCKET_ARN), Effect: "Allow" };
    assert.deepEqual(await check(stackWith({ bucketPolicy: bucketPolicy([allow]) })), [message]);
  });

  it("another bucket's TLS policy does not count", async () => {
    const other = bucketPolicy([denyInsecureTransport("arn:aws:s3:::someone-else")]);
    other.props = { ...other.props, bucket: "someone-else" };
    other.inputs = other.props;
    assert.deepEqual(await check(stackWith({ bucketPolicy: other })), [message]);
  });

  it("during preview, a policy tied to the unknown bucket by property dependencies passes", async () => {
    const b = bucket();
    b.props = { ...b.props, arn: UNKNOWN_STRING, id: UNKNOWN_STRING, bucket: UNKNOWN_STRING };
    b.inputs = b.props;
    const p = bucketPolicy([denyInsecureTransport("arn:aws:s3:::later-known")]);
    p.props = { ...p.props, bucket: UNKNOWN_STRING };
    p.inputs = p.props;
    p.propertyDependencies = { bucket: [b.urn] };
    const vs = await violations(
      stackWith({
        bucket: b,
        bucketPolicy: p,
        publicAccess: null,
        encryption: null,
        lifecycle: null,
      }),
    );
    assert.deepEqual(
      vs.filter((v) => v.policy === "s3-bucket-deny-insecure-transport"),
      [],
    );
  });
});

describe("policy 12: s3-bucket-lifecycle", () => {
  const message =
    "mandatory s3-bucket-lifecycle: S3 bucket data keeps every object forever; add an aws.s3.BucketLifecycleConfiguration for it with an Enabled rule that sets expiration.days or noncurrentVersionExpiration.noncurrentDays (config iot-pipeline:expirationDays)";

  it("a bucket without a lifecycle fails outside dev and is fine in dev", async () => {
    assert.deepEqual(await check(stackWith({ lifecycle: null })), [message]);
    assert.deepEqual(await check(stackWith({ lifecycle: null }), "dev"), []);
  });

  it("a disabled rule does not count", async () => {
    const off = lifecycle([{ id: "data", status: "Disabled", expiration: { days: 365 } }]);
    assert.deepEqual(await check(stackWith({ lifecycle: off })), [message]);
  });

  it("a rule that only moves objects to another class does not expire them", async () => {
    const moveOnly = lifecycle([
      { id: "data", status: "Enabled", transitions: [{ days: 30, storageClass: "STANDARD_IA" }] },
    ]);
    assert.deepEqual(await check(stackWith({ lifecycle: moveOnly })), [message]);
  });

  it("expiring old versions only is enough", async () => {
    const versions = lifecycle([
      { id: "data", status: "Enabled", noncurrentVersionExpiration: { noncurrentDays: 30 } },
    ]);
    assert.deepEqual(await check(stackWith({ lifecycle: versions })), []);
  });

  it("devStacks decides which stacks are dev", async () => {
    const config = { "s3-bucket-lifecycle": { devStacks: ["sandbox"] } };
    assert.deepEqual(await check(stackWith({ lifecycle: null }), "sandbox", config), []);
    assert.deepEqual(await check(stackWith({ lifecycle: null }), "dev", config), [message]);
  });
});

describe("policy 13: iot-logging-enabled", () => {
  it("a stack with a topic rule and no IoT logging fails outside dev, not in dev", async () => {
    const expected = [
      "mandatory iot-logging-enabled: AWS IoT logging is not configured; add an aws.iot.LoggingOptions with a logging role and defaultLogLevel ERROR, WARN, INFO or DEBUG (config iot-pipeline:iotLogLevel)",
    ];
    assert.deepEqual(await check(stackWith({ logging: null })), expected);
    assert.deepEqual(await check(stackWith({ logging: null }), "dev"), []);
  });

  it("logging options that disable logging fail, by level or by disableAllLogs", async () => {
    const expected = [
      "mandatory iot-logging-enabled: aws.iot.LoggingOptions iot-logging turns IoT logging off; set defaultLogLevel to ERROR, WARN, INFO or DEBUG and disableAllLogs to false",
    ];
    const disabled = logging({ defaultLogLevel: "DISABLED" });
    assert.deepEqual(await check(stackWith({ logging: disabled })), expected);
    const all = logging({ disableAllLogs: true });
    assert.deepEqual(await check(stackWith({ logging: all })), expected);
  });

  it("a stack without things or topic rules is not asked to log", async () => {
    const noIot = stackWith({ logging: null, rule: null, ruleAlarm: null });
    assert.deepEqual(await check(noIot), []);
  });
});

describe("policy 14: cloudwatch-pipeline-alarms", () => {
  it("no alarms: each rule, stream and application is reported outside dev, nothing in dev", async () => {
    const none = stackWith({ ruleAlarm: null, freshnessAlarm: null, downtimeAlarm: null });
    assert.deepEqual(await check(none), [
      "mandatory cloudwatch-pipeline-alarms: topic rule sensor_rule has no alarm; add an aws.cloudwatch.MetricAlarm on AWS/IoT metric with RuleName = sensor_rule with alarmActions (config iot-pipeline:alarms true)",
      "mandatory cloudwatch-pipeline-alarms: delivery stream weather-data-stream has no alarm; add an aws.cloudwatch.MetricAlarm on AWS/Firehose DeliveryToS3.DataFreshness with DeliveryStreamName = weather-data-stream with alarmActions (config iot-pipeline:alarms true)",
      "mandatory cloudwatch-pipeline-alarms: Managed Flink application window-app has no alarm; add an aws.cloudwatch.MetricAlarm on AWS/KinesisAnalytics downtime with Application = window-app with alarmActions (config iot-pipeline:alarms true)",
    ]);
    assert.deepEqual(await check(none, "dev"), []);
  });

  it("an alarm with no action notifies no one", async () => {
    const silent = ruleAlarm({ alarmActions: [] });
    assert.deepEqual(await check(stackWith({ ruleAlarm: silent })), [
      "mandatory cloudwatch-pipeline-alarms: the alarms on topic rule sensor_rule (rule-error-rate) notify no one; set alarmActions to an SNS topic",
    ]);
  });

  it("an alarm on another stream does not watch this one", async () => {
    assert.deepEqual(await check(stackWith({ freshnessAlarm: freshnessAlarm("other-stream") })), [
      "mandatory cloudwatch-pipeline-alarms: delivery stream weather-data-stream has no alarm; add an aws.cloudwatch.MetricAlarm on AWS/Firehose DeliveryToS3.DataFreshness with DeliveryStreamName = weather-data-stream with alarmActions (config iot-pipeline:alarms true)",
    ]);
  });

  it("during preview, an alarm whose dimension depends on the unknown application name passes", async () => {
    const a = app();
    a.props = { ...a.props, name: UNKNOWN_STRING };
    a.inputs = a.props;
    const alarm = downtimeAlarm();
    alarm.props = { ...alarm.props, dimensions: { Application: UNKNOWN_STRING } };
    alarm.inputs = alarm.props;
    alarm.propertyDependencies = { dimensions: [a.urn] };
    const vs = await violations(stackWith({ app: a, downtimeAlarm: alarm }));
    assert.deepEqual(
      vs.filter((v) => v.policy === "cloudwatch-pipeline-alarms"),
      [],
    );
  });
});

describe("policy 15: sns-alarm-topic-subscribed", () => {
  const advisory =
    "advisory sns-alarm-topic-subscribed: SNS topic alarms receives the alarms rule-error-rate, freshness-weather-data-stream, flink-downtime but nothing in the stack subscribes to it, so they reach no one; add an aws.sns.TopicSubscription (pulumi config set iot-pipeline:alarmEmail you@example.com), or subscribe it outside the stack";

  it("alarms notifying a topic nobody subscribes to are reported outside dev, not in dev", async () => {
    assert.deepEqual(await check(stackWith({ subscription: null })), [advisory]);
    assert.deepEqual(await check(stackWith({ subscription: null }), "dev"), []);
  });

  it("a subscription to another topic does not count", async () => {
    const other = subscription({ topic: "arn:aws:sns:us-east-1:123456789012:other" });
    assert.deepEqual(await check(stackWith({ subscription: other })), [advisory]);
  });

  it("alarms notifying a topic outside the stack are not this policy's business", async () => {
    assert.deepEqual(await check(stackWith({ topic: null, subscription: null })), []);
  });

  it("a topic no alarm notifies needs no subscription", async () => {
    const quiet = topic({ arn: "arn:aws:sns:us-east-1:123456789012:quiet" });
    assert.deepEqual(await check(stackWith({ topic: quiet, subscription: null })), []);
  });

  it("during preview, a subscription tied to the unknown topic ARN by property dependencies counts", async () => {
    const t = topic({ arn: UNKNOWN_STRING });
    const alarm = (r: Res) => {
      r.props = { ...r.props, alarmActions: [UNKNOWN_STRING] };
      r.inputs = r.props;
      r.propertyDependencies = { alarmActions: [t.urn] };
      return r;
    };
    const s = subscription({ topic: UNKNOWN_STRING });
    s.propertyDependencies = { topic: [t.urn] };
    const parts = {
      topic: t,
      ruleAlarm: alarm(ruleAlarm()),
      freshnessAlarm: alarm(freshnessAlarm()),
      downtimeAlarm: alarm(downtimeAlarm()),
    };
    assert.deepEqual(await check(stackWith({ ...parts, subscription: s })), []);
    assert.deepEqual(await check(stackWith({ ...parts, subscription: null })), [advisory]);
  });
});
