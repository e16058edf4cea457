// Each policy of the pack: a happy-path resource with no violation, then one change per test with
// the exact violation expected.
import * as assert from "node:assert/strict";
import { leastPrivilegePolicy, tutorialPolicy } from "../../core/iot-policy/policy";
import { type Res, ARN, CTX, lines, res, violations } from "./helpers";

const UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"; // the engine's unknown-string sentinel

/**
 * The storage and monitoring policies judge a whole stack (its buckets' policies and lifecycles,
 * its logging and alarms), which these few-resource stacks are not: they have their own tests in
 * storage-monitoring-policies.test.ts, and are left out here.
 */
const WHOLE_STACK = new Set([
  "s3-bucket-deny-insecure-transport",
  "s3-bucket-lifecycle",
  "iot-logging-enabled",
  "cloudwatch-pipeline-alarms",
  "sns-alarm-topic-subscribed",
]);

async function only(resources: Res[], stack = "prod", config: unknown = {}): Promise<string[]> {
  return lines(
    (await violations(resources, stack, config)).filter((v) => !WHOLE_STACK.has(v.policy)),
  );
}

describe("policies 1-3: IoT policy documents", () => {
  const policy = (doc: unknown) =>
    res("aws:iot/policy:Policy", "sensor-policy", {
      name: "sensor-policy",
      policy: JSON.stringify(doc),
    });
  const tutorialMessage =
    "IoT policy sensor-policy: statement 0 allows every IoT action on every resource (iot:* on *); replace it with least-privilege statements: iot:Connect on client/${iot:Connection.Thing.ThingName} with the iot:Connection.Thing.IsAttached condition, iot:Publish only on the device's own topics";

  it("the least-privilege document passes in prod and dev", async () => {
    const doc = leastPrivilegePolicy(CTX, "SeattleStoreTemp/{thing}");
    assert.deepEqual(await only([policy(doc)], "prod"), []);
    assert.deepEqual(await only([policy(doc)], "dev"), []);
  });

  it("the tutorial document is a mandatory violation outside dev", async () => {
    assert.deepEqual(await only([policy(tutorialPolicy())], "prod"), [
      `mandatory iot-policy-no-allow-all: ${tutorialMessage}`,
    ]);
  });

  it("the tutorial document is an advisory violation in dev", async () => {
    assert.deepEqual(await only([policy(tutorialPolicy())], "dev"), [
      `advisory iot-policy-no-allow-all-in-dev: ${tutorialMessage}`,
    ]);
  });

  it("devStacks decides which stacks are dev", async () => {
    const devStacks = { devStacks: ["sandbox"] };
    const config = {
      "iot-policy-no-allow-all": devStacks,
      "iot-policy-no-allow-all-in-dev": devStacks,
    };
    assert.deepEqual(await only([policy(tutorialPolicy())], "sandbox", config), [
      `advisory iot-policy-no-allow-all-in-dev: ${tutorialMessage}`,
    ]);
    assert.deepEqual(await only([policy(tutorialPolicy())], "dev", config), [
      `mandatory iot-policy-no-allow-all: ${tutorialMessage}`,
    ]);
  });

  it("Connect on client/* is overly permissive", async () => {
    const doc = {
      Version: "2012-10-17",
      Statement: {
        Sid: "Any",
        Effect: "Allow",
        Action: "iot:Connect",
        Resource: `${ARN}:client/*`,
      },
    };
    assert.deepEqual(await only([policy(doc)]), [
      `mandatory iot-policy-overly-permissive: IoT policy sensor-policy: statement 0 (Sid Any) allows iot:Connect on ${ARN}:client/*, which is overly permissive: any client id can connect: allow iot:Connect only on client/\${iot:Connection.Thing.ThingName} with the condition Bool iot:Connection.Thing.IsAttached = true`,
    ]);
  });

  it("a # in a Deny is a misconfiguration (advisory)", async () => {
    const doc = {
      Version: "2012-10-17",
      Statement: [
        { Effect: "Deny", Action: "iot:Subscribe", Resource: `${ARN}:topicfilter/admin/#` },
      ],
    };
    assert.deepEqual(await only([policy(doc)]), [
      `advisory iot-policy-misconfigured: IoT policy sensor-policy: statement 0 denies iot:Subscribe on ${ARN}:topicfilter/admin/#, but + and # are literal characters in an IoT policy, so the Deny does not cover the topics the MQTT filter would match; use the policy wildcard * instead (${ARN}:topicfilter/admin/*)`,
    ]);
  });

  it("a document AWS would reject is reported once, by the headline rule", async () => {
    const bad = res("aws:iot/policy:Policy", "bad", {
      name: "bad",
      policy: '{"Statement": [{"Effect": "Maybe"}]}',
    });
    assert.deepEqual(await only([bad]), [
      "mandatory iot-policy-no-allow-all: IoT policy bad: property policy is not a valid IoT policy document (statement 0: Effect must be Allow or Deny); fix the document",
    ]);
  });

  it("a document unknown during preview gives the engine's advisory, not a pass", async () => {
    const vs = await violations([
      res("aws:iot/policy:Policy", "p", { name: "p", policy: UNKNOWN_STRING }),
    ]);
    assert.deepEqual(
      [...new Set(vs.map((v) => `${v.level} ${v.policy}`))],
      [
        "advisory iot-policy-no-allow-all",
        "advisory iot-policy-overly-permissive",
        "advisory iot-policy-misconfigured",
      ],
    );
    assert.match(
      vs[0].message,
      /^can't run policy iot-policy-no-allow-all during preview: string value at \.policy can't be known during preview$/,
    );
  });
});

describe("policy 4: s3-bucket-private-and-encrypted", () => {
  const bucket = () =>
    res("aws:s3/bucket:Bucket", "data", {
      bucket: "iot-pipeline-prod-data",
      id: "iot-pipeline-prod-data",
    });
  const block = (flags: Record<string, boolean> = {}) =>
    res("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "data-block", {
      bucket: "iot-pipeline-prod-data",
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
      ...flags,
    });
  const sse = (sseAlgorithm = "AES256") =>
    res(
      "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
      "data-sse",
      {
        bucket: "iot-pipeline-prod-data",
        rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm } }],
      },
    );

  it("a bucket with a full public access block and SSE passes", async () => {
    assert.deepEqual(await only([bucket(), block(), sse()]), []);
    assert.deepEqual(await only([bucket(), block(), sse("aws:kms")]), []);
  });

  it("a bucket without a public access block fails", async () => {
    assert.deepEqual(await only([bucket(), sse()]), [
      "mandatory s3-bucket-private-and-encrypted: S3 bucket data has no public access block; add an aws.s3.BucketPublicAccessBlock for it with blockPublicAcls, blockPublicPolicy, ignorePublicAcls, restrictPublicBuckets all true",
    ]);
  });

  it("a public access block that leaves one setting off fails", async () => {
    assert.deepEqual(await only([bucket(), block({ restrictPublicBuckets: false }), sse()]), [
      "mandatory s3-bucket-private-and-encrypted: public access block data-block of S3 bucket data does not set restrictPublicBuckets to true; set all four to true",
    ]);
  });

  it("a bucket without server-side encryption fails (also in dev)", async () => {
    assert.deepEqual(await only([bucket(), block()], "dev"), [
      "mandatory s3-bucket-private-and-encrypted: S3 bucket data has no server-side encryption; add an aws.s3.BucketServerSideEncryptionConfiguration for it with rules[0].applyServerSideEncryptionByDefault.sseAlgorithm AES256 or aws:kms",
    ]);
  });

  it("an encryption configuration of another bucket does not count", async () => {
    const other = sse();
    other.props = { ...other.props, bucket: "someone-else" };
    other.inputs = other.props;
    assert.equal((await only([bucket(), block(), other])).length, 1);
  });

  it("during preview the engine's property dependencies tie the block to its unknown bucket", async () => {
    const b = res("aws:s3/bucket:Bucket", "data", { bucket: UNKNOWN_STRING, id: UNKNOWN_STRING });
    const pab = block({});
    const enc = sse();
    for (const r of [pab, enc]) {
      r.props = { ...r.props, bucket: UNKNOWN_STRING };
      r.inputs = r.props;
      r.propertyDependencies = { bucket: [b.urn] };
    }
    assert.deepEqual(await only([b, pab, enc]), []);
  });
});

describe("policy 5: firehose-delivery-stream-error-logging", () => {
  const stream = (logging?: Record<string, unknown>) =>
    res("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream", "stream", {
      name: "weather-data-stream",
      destination: "extended_s3",
      extendedS3Configuration: {
        bucketArn: "arn:aws:s3:::b",
        ...(logging ? { cloudwatchLoggingOptions: logging } : {}),
      },
    });
  const on = {
    enabled: true,
    logGroupName: "/aws/kinesisfirehose/weather-data-stream",
    logStreamName: "S3Delivery",
  };

  it("a stream that logs errors passes", async () => {
    assert.deepEqual(await only([stream(on)]), []);
  });

  it("a stream without error logging fails outside dev", async () => {
    assert.deepEqual(await only([stream()]), [
      "mandatory firehose-delivery-stream-error-logging: delivery stream weather-data-stream has no error logging: set extendedS3Configuration.cloudwatchLoggingOptions.enabled to true with a logGroupName and logStreamName (config iot-pipeline:errorLogging true)",
    ]);
  });

  it("a stream with logging disabled is fine in dev", async () => {
    assert.deepEqual(await only([stream({ enabled: false })], "dev"), []);
  });

  it("a log group named by another resource's unknown output counts as set during preview", async () => {
    assert.deepEqual(await only([stream({ ...on, logGroupName: UNKNOWN_STRING })]), []);
  });

  it("logging enabled without a log stream fails", async () => {
    assert.deepEqual(await only([stream({ enabled: true, logGroupName: "/g" })]), [
      "mandatory firehose-delivery-stream-error-logging: delivery stream weather-data-stream enables error logging without logStreamName; set extendedS3Configuration.cloudwatchLoggingOptions.logStreamName",
    ]);
  });
});

describe("policy 19: iam-role-policy-log-group-arn", () => {
  // CloudWatch Logs: the group's ARN with the trailing :* for every action but TagResource,
  // UntagResource and ListTagsForResource
  // (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/iam-access-control-overview-cwl.html).
  const GROUP = "arn:aws:logs:us-east-1:123456789012:log-group:/iot/rules/sensor_rule/errors";
  const rolePolicy = (statement: object) =>
    res("aws:iam/rolePolicy:RolePolicy", "rule-errors-policy", {
      name: "rule-errors",
      policy: JSON.stringify({ Version: "2012-10-17", Statement: [statement] }),
    });
  const grant = (Action: string[], Resource: string[]) =>
    rolePolicy({ Effect: "Allow", Action, Resource });

  it("group-level actions on log-group:NAME:* and PutLogEvents on its streams pass", async () => {
    assert.deepEqual(
      await only([grant(["logs:CreateLogStream", "logs:DescribeLogStreams"], [`${GROUP}:*`])]),
      [],
    );
    assert.deepEqual(await only([grant(["logs:PutLogEvents"], [`${GROUP}:log-stream:*`])]), []);
  });

  it("the tagging actions, which IAM authorizes on the ARN without :*, pass on it", async () => {
    assert.deepEqual(await only([grant(["logs:TagResource"], [GROUP])]), []);
  });

  it("a group-level action on the ARN without :* fails, naming the form to write", async () => {
    assert.deepEqual(
      await only([grant(["logs:CreateLogStream", "logs:DescribeLogStreams"], [GROUP])]),
      [
        `mandatory iam-role-policy-log-group-arn: policy rule-errors: statement 0 allows logs:CreateLogStream, logs:DescribeLogStreams on ${GROUP}, a log group's ARN without the trailing :*, which IAM never sees for these actions; grant group-level actions on ${GROUP}:* and PutLogEvents on ${GROUP}:log-stream:<stream> (the provider's LogGroup.arn has the :* removed)`,
      ],
    );
  });

  it("PutLogEvents on the group's ARN alone fails too", async () => {
    assert.equal((await only([grant(["logs:PutLogEvents"], [GROUP])])).length, 1);
  });
});

describe("policy 6: iam-role-policy-no-wildcards", () => {
  const SUFFIX =
    " (the only wildcards allowed are the ones AWS requires: logs:DescribeLogGroups on arn:<partition>:logs:<region>:<account>:log-group:*, iot:DescribeThing on arn:<partition>:iot:<region>:<account>:thing/<fleet prefix>*, cloudwatch:PutMetricData on * (narrowed by the cloudwatch:namespace condition key))";
  const streamArn = "arn:aws:firehose:us-east-1:123456789012:deliverystream/weather-data-stream";
  const rolePolicy = (statement: object) =>
    res("aws:iam/rolePolicy:RolePolicy", "rule-role-policy", {
      name: "firehose-put",
      policy: JSON.stringify({ Version: "2012-10-17", Statement: [statement] }),
    });

  it("exact actions on exact resources pass, including a bucket's objects and a log group's streams", async () => {
    assert.deepEqual(
      await only([
        rolePolicy({
          Effect: "Allow",
          Action: ["firehose:PutRecord", "firehose:PutRecordBatch"],
          Resource: streamArn,
        }),
      ]),
      [],
    );
    assert.deepEqual(
      await only([
        rolePolicy({
          Effect: "Allow",
          Action: ["s3:PutObject"],
          Resource: ["arn:aws:s3:::bkt", "arn:aws:s3:::bkt/*"],
        }),
      ]),
      [],
    );
    assert.deepEqual(
      await only([
        rolePolicy({
          Effect: "Allow",
          Action: "logs:PutLogEvents",
          Resource: "arn:aws:logs:us-east-1:123456789012:log-group:/aws/kinesisfirehose/s:*",
        }),
      ]),
      [],
    );
  });

  it("iot:DescribeThing on the fleet's things (thing/<prefix>*) passes; on thing/* it fails", async () => {
    // The pre-provisioning hook's lookup (docs/provisioning.md); Service Authorization Reference,
    // list_awsiot.html: DescribeThing authorizes on arn:${Partition}:iot:${Region}:${Account}:thing/${ThingName}.
    const describe = (resource: string) =>
      rolePolicy({ Effect: "Allow", Action: ["iot:DescribeThing"], Resource: [resource] });
    const things = "arn:aws:iot:us-east-1:123456789012:thing/";
    assert.deepEqual(await only([describe(`${things}store-sensor-seattle*`)]), []);
    assert.deepEqual(await only([describe(`${things}*`)]), [
      `mandatory iam-role-policy-no-wildcards: policy firehose-put: statement 0 allows iot:DescribeThing on the wildcard resource ${things}*; name the ARN of the one stream, bucket or log group the role needs${SUFFIX}`,
    ]);
  });

  it("a wildcard action fails", async () => {
    assert.deepEqual(
      await only([rolePolicy({ Effect: "Allow", Action: "firehose:*", Resource: streamArn })]),
      [
        "mandatory iam-role-policy-no-wildcards: policy firehose-put: statement 0 allows the wildcard action firehose:*; name the exact actions the service needs (for example firehose:PutRecord, firehose:PutRecordBatch)",
      ],
    );
  });

  it("a wildcard resource fails", async () => {
    assert.deepEqual(
      await only([
        rolePolicy({
          Effect: "Allow",
          Action: "firehose:PutRecord",
          Resource: "arn:aws:firehose:us-east-1:123456789012:deliverystream/*",
        }),
      ]),
      [
        "mandatory iam-role-policy-no-wildcards: policy firehose-put: statement 0 allows firehose:PutRecord on the wildcard resource arn:aws:firehose:us-east-1:123456789012:deliverystream/*; name the ARN of the one stream, bucket or log group the role needs (the only wildcards allowed are the ones AWS requires: logs:DescribeLogGroups on arn:<partition>:logs:<region>:<account>:log-group:*, iot:DescribeThing on arn:<partition>:iot:<region>:<account>:thing/<fleet prefix>*, cloudwatch:PutMetricData on * (narrowed by the cloudwatch:namespace condition key))",
      ],
    );
  });

  it("a role's inline policy is checked too", async () => {
    const role = res("aws:iam/role:Role", "role", {
      name: "iot-weather-data-role",
      inlinePolicies: [
        {
          name: "put",
          policy: JSON.stringify({
            Version: "2012-10-17",
            Statement: [{ Effect: "Allow", Action: "firehose:PutRecord", Resource: "*" }],
          }),
        },
      ],
    });
    assert.deepEqual(await only([role]), [
      "mandatory iam-role-policy-no-wildcards: inline policy put of role iot-weather-data-role: statement 0 allows firehose:PutRecord on the wildcard resource *; name the ARN of the one stream, bucket or log group the role needs (the only wildcards allowed are the ones AWS requires: logs:DescribeLogGroups on arn:<partition>:logs:<region>:<account>:log-group:*, iot:DescribeThing on arn:<partition>:iot:<region>:<account>:thing/<fleet prefix>*, cloudwatch:PutMetricData on * (narrowed by the cloudwatch:namespace condition key))",
    ]);
  });

  it("accepts the one wildcard AWS requires (DescribeLogGroups on log-group:*) and nothing beside it", async () => {
    const groups = "arn:aws:logs:us-east-1:123456789012:log-group:*";
    assert.deepEqual(
      await only([
        rolePolicy({ Effect: "Allow", Action: "logs:DescribeLogGroups", Resource: groups }),
      ]),
      [],
    );
    assert.deepEqual(
      await only([
        rolePolicy({
          Effect: "Allow",
          Action: ["logs:DescribeLogGroups", "logs:PutLogEvents"],
          Resource: groups,
        }),
      ]),
      [
        `mandatory iam-role-policy-no-wildcards: policy firehose-put: statement 0 allows logs:DescribeLogGroups, logs:PutLogEvents on the wildcard resource ${groups}; name the ARN of the one stream, bucket or log group the role needs${SUFFIX}`,
      ],
    );
    assert.deepEqual(
      await only([
        rolePolicy({ Effect: "Allow", Action: "logs:DescribeLogGroups", Resource: "*" }),
      ]),
      [
        `mandatory iam-role-policy-no-wildcards: policy firehose-put: statement 0 allows logs:DescribeLogGroups on the wildcard resource *; name the ARN of the one stream, bucket or log group the role needs${SUFFIX}`,
      ],
    );
  });

  it("accepts cloudwatch:PutMetricData on * (it has no resource type) only narrowed by cloudwatch:namespace", async () => {
    // https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html:
    // PutMetricData has no resource type; cloudwatch:namespace is its condition key.
    const put = { Effect: "Allow", Action: "cloudwatch:PutMetricData", Resource: "*" };
    const narrowed = { StringLike: { "cloudwatch:namespace": "IotPipeline/Alerts" } };
    assert.deepEqual(await only([rolePolicy({ ...put, Condition: narrowed })]), []);
    const missing =
      "mandatory iam-role-policy-no-wildcards: policy firehose-put: statement 0 allows cloudwatch:PutMetricData on * without the cloudwatch:namespace condition key; add a Condition that names the one namespace the role needs";
    assert.deepEqual(await only([rolePolicy(put)]), [missing]);
    assert.deepEqual(
      await only([
        rolePolicy({ ...put, Condition: { StringLike: { "cloudwatch:namespace": "*" } } }),
      ]),
      [missing],
    );
    assert.deepEqual(
      await only([
        rolePolicy({
          Effect: "Allow",
          Action: ["cloudwatch:PutMetricData", "cloudwatch:SetAlarmState"],
          Resource: "*",
          Condition: narrowed,
        }),
      ]),
      [
        `mandatory iam-role-policy-no-wildcards: policy firehose-put: statement 0 allows cloudwatch:PutMetricData, cloudwatch:SetAlarmState on the wildcard resource *; name the ARN of the one stream, bucket or log group the role needs${SUFFIX}`,
      ],
    );
  });

  it("an Allow with NotAction fails", async () => {
    assert.deepEqual(
      await only([rolePolicy({ Effect: "Allow", NotAction: "iam:*", Resource: streamArn })]),
      [
        "mandatory iam-role-policy-no-wildcards: policy firehose-put: statement 0 is an Allow with NotAction, which grants every other action; list the actions the service needs in Action",
      ],
    );
  });
});

describe("policy 7: iot-topic-rule-sql-and-error-action", () => {
  const rule = (extra: Record<string, unknown> = {}) =>
    res("aws:iot/topicRule:TopicRule", "rule", {
      name: "sensor_rule",
      enabled: true,
      sql: "SELECT * FROM 'SeattleStoreTemp/1'",
      sqlVersion: "2016-03-23",
      errorAction: {
        cloudwatchLogs: { logGroupName: "/iot/rules/sensor_rule/errors", roleArn: "arn:r" },
      },
      ...extra,
    });

  it("a rule with 2016-03-23 SQL, a quoted FROM and an error action passes", async () => {
    assert.deepEqual(await only([rule()]), []);
  });

  it("another SQL version fails", async () => {
    assert.deepEqual(await only([rule({ sqlVersion: "2015-10-08" })]), [
      'mandatory iot-topic-rule-sql-and-error-action: topic rule sensor_rule has sqlVersion "2015-10-08"; set sqlVersion to "2016-03-23"',
    ]);
  });

  it("an unquoted FROM topic fails, with the parser's position", async () => {
    assert.deepEqual(await only([rule({ sql: "SELECT * FROM SeattleStoreTemp/1" })]), [
      `mandatory iot-topic-rule-sql-and-error-action: topic rule sensor_rule has sql "SELECT * FROM SeattleStoreTemp/1" that IoT SQL 2016-03-23 rejects (FROM must name a quoted topic filter, as in FROM 'SeattleStoreTemp/1' at line 1, column 15); write SELECT ... FROM 'topic/filter' [WHERE ...]`,
    ]);
  });

  it("no errorAction fails outside dev and passes in dev", async () => {
    const noError = rule({ errorAction: undefined });
    assert.deepEqual(await only([noError]), [
      "mandatory iot-topic-rule-sql-and-error-action: topic rule sensor_rule has no errorAction, so failed actions are dropped silently; add an errorAction (CloudWatch Logs or S3 under the error prefix)",
    ]);
    assert.deepEqual(await only([noError], "dev"), []);
  });
});

describe("policy 8: iot-certificate-from-csr", () => {
  const cert = (props: Record<string, unknown>) =>
    res("aws:iot/certificate:Certificate", "store-sensor-seattle1-cert", {
      active: true,
      ...props,
    });

  it("a certificate from a CSR passes", async () => {
    assert.deepEqual(
      await only([
        cert({ csr: "-----BEGIN CERTIFICATE REQUEST-----\nx\n-----END CERTIFICATE REQUEST-----" }),
      ]).then((l) => l.filter((x) => x.includes("from-csr"))),
      [],
    );
  });

  it("a generated certificate is an advisory violation outside dev, nothing in dev", async () => {
    const l = (await only([cert({})])).filter((x) => x.includes("from-csr"));
    assert.deepEqual(l, [
      "advisory iot-certificate-from-csr: certificate store-sensor-seattle1-cert is created without a csr, so AWS generates the key pair and the private key is kept in the stack state; set csr to the device's CSR (config iot-pipeline:certificateMode csr, npm run csr -- --stack <stack>)",
    ]);
    assert.deepEqual(
      (await only([cert({})], "dev")).filter((x) => x.includes("from-csr")),
      [],
    );
  });
});

describe("policy 9: kinesis-analytics-sql-application-retired", () => {
  it("a Managed Flink application passes", async () => {
    assert.deepEqual(
      await only([
        res("aws:kinesisanalyticsv2/application:Application", "window", {
          runtimeEnvironment: "FLINK-1_20",
        }),
      ]),
      [],
    );
  });

  it("a Kinesis Data Analytics for SQL application is mandatory, even in dev", async () => {
    const app = res("aws:kinesis/analyticsApplication:AnalyticsApplication", "window", {
      name: "weather-window",
    });
    const expected =
      "kinesis-analytics-sql-application-retired: aws.kinesis.AnalyticsApplication weather-window is Kinesis Data Analytics for SQL, which no longer accepts new applications (since 2025-10-15; existing ones are deleted from 2026-01-27); replace it with Amazon Managed Service for Apache Flink (aws.kinesisanalyticsv2.Application, runtime FLINK-1_20)";
    assert.deepEqual(await only([app], "dev"), [`mandatory ${expected}`]);
    assert.deepEqual(await only([app], "prod"), [`mandatory ${expected}`]);
  });
});

describe("policy 10: iot-certificate-attachments", () => {
  const thing = (n: string) => res("aws:iot/thing:Thing", n, { name: n });
  const cert = (n: string) =>
    res("aws:iot/certificate:Certificate", `${n}-cert`, {
      active: true,
      csr: "csr",
      arn: `arn:aws:iot:us-east-1:123456789012:cert/${n}`,
    });
  const tpa = (n: string, certOf = n) =>
    res("aws:iot/thingPrincipalAttachment:ThingPrincipalAttachment", `${n}-attach`, {
      thing: n,
      principal: `arn:aws:iot:us-east-1:123456789012:cert/${certOf}`,
    });
  const pa = (n: string) =>
    res("aws:iot/policyAttachment:PolicyAttachment", `${n}-policy`, {
      policy: "sensor-policy",
      target: `arn:aws:iot:us-east-1:123456789012:cert/${n}`,
    });
  const fleet = (n: string) => [thing(n), cert(n), tpa(n), pa(n)];

  it("one certificate per thing, each with a policy, passes", async () => {
    assert.deepEqual(await only([...fleet("s1"), ...fleet("s2")]), []);
  });

  it("a certificate attached to no thing and a thing without certificate fail", async () => {
    assert.deepEqual(await only([thing("s1"), cert("s1"), pa("s1")]), [
      "mandatory iot-certificate-attachments: certificate s1-cert is attached to no thing; attach it to its thing with an aws.iot.ThingPrincipalAttachment (principal = the certificate ARN)",
      "mandatory iot-certificate-attachments: thing s1 has no certificate attached; create one for it and attach it with an aws.iot.ThingPrincipalAttachment",
    ]);
  });

  it("a certificate shared by two things fails", async () => {
    assert.deepEqual(await only([...fleet("s1"), thing("s2"), tpa("s2", "s1")]), [
      "mandatory iot-certificate-attachments: certificate s1-cert is attached to 2 things (s1, s2); give each thing a certificate of its own (Device Defender DEVICE_CERTIFICATE_SHARED_CHECK)",
    ]);
  });

  it("a certificate without an IoT policy fails", async () => {
    assert.deepEqual(await only([thing("s1"), cert("s1"), tpa("s1")]), [
      "mandatory iot-certificate-attachments: certificate s1-cert has no IoT policy attached, so its device cannot connect; attach the stack's IoT policy with an aws.iot.PolicyAttachment (target = the certificate ARN)",
    ]);
  });

  it("an attachment may name its certificate by id, and its thing by id", async () => {
    const t = res("aws:iot/thing:Thing", "s1", { name: "s1", id: "thing-id-1" });
    const c = res("aws:iot/certificate:Certificate", "s1-cert", { csr: "csr", id: "cert-id-1" });
    const a = tpa("s1");
    a.props = { thing: "thing-id-1", principal: "cert-id-1" };
    a.inputs = a.props;
    const p = pa("s1");
    p.props = { policy: "sensor-policy", target: "cert-id-1" };
    p.inputs = p.props;
    assert.deepEqual(await only([t, c, a, p]), []);
    // The same fleet with the thing's id changed: its attachment no longer points at it.
    const other = res("aws:iot/thing:Thing", "s1", { name: "s1", id: "thing-id-2" });
    assert.deepEqual(await only([other, c, a, p]), [
      "mandatory iot-certificate-attachments: thing s1 has no certificate attached; create one for it and attach it with an aws.iot.ThingPrincipalAttachment",
    ]);
  });

  it("during preview the engine's property dependencies tie attachments to unknown certificates", async () => {
    const unknownCert = (n: string) =>
      res("aws:iot/certificate:Certificate", `${n}-cert`, {
        csr: "csr",
        arn: UNKNOWN_STRING,
        id: UNKNOWN_STRING,
      });
    const tied = (r: Res, prop: string, to: Res) => {
      r.props = { ...r.props, [prop]: UNKNOWN_STRING };
      r.inputs = r.props;
      r.propertyDependencies = { [prop]: [to.urn] };
      return r;
    };
    const c1 = unknownCert("s1");
    const c2 = unknownCert("s2");
    const fleetOf = (n: string, c: Res) => [
      thing(n),
      c,
      tied(tpa(n), "principal", c),
      tied(pa(n), "target", c),
    ];
    assert.deepEqual(await only([...fleetOf("s1", c1), ...fleetOf("s2", c2)]), []);
    // s2's attachment tied to s1's certificate: s1's is shared, s2's attached to no thing.
    assert.deepEqual(
      await only([...fleetOf("s1", c1), thing("s2"), c2, tied(tpa("s2"), "principal", c1)]),
      [
        "mandatory iot-certificate-attachments: certificate s1-cert is attached to 2 things (s1, s2); give each thing a certificate of its own (Device Defender DEVICE_CERTIFICATE_SHARED_CHECK)",
        "mandatory iot-certificate-attachments: certificate s2-cert is attached to no thing; attach it to its thing with an aws.iot.ThingPrincipalAttachment (principal = the certificate ARN)",
        "mandatory iot-certificate-attachments: certificate s2-cert has no IoT policy attached, so its device cannot connect; attach the stack's IoT policy with an aws.iot.PolicyAttachment (target = the certificate ARN)",
      ],
    );
  });
});
