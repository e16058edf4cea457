// The components' own options and defaults, each built alone under mocks.
import { strict as assert } from "node:assert";
import { DeliveryStream } from "../../components/delivery/delivery-stream";
import { allowDocument, logGroupPolicyArn } from "../../components/private/iam";
import { isWildcardResource } from "../../core/iam/policy-audit";
import { runProgram } from "../../tools/mock-program";
import { one } from "./helpers";

describe("components: DeliveryStream on its own", () => {
  it("defaults to the seed's 5 MiB / 300 s, uncompressed, telemetry/ and errors/, AES256, no logging", async () => {
    const run = await runProgram("dev", {
      program: () => {
        const d = new DeliveryStream("d", { streamName: "s", bucketName: "b-bucket" });
        return { stream: d.streamName };
      },
    });
    const s3 = one(run, "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream").props
      .extendedS3Configuration as Record<string, unknown>;
    assert.equal(s3.bufferingSize, 5);
    assert.equal(s3.bufferingInterval, 300);
    assert.equal(s3.compressionFormat, "UNCOMPRESSED");
    assert.equal(s3.prefix, "telemetry/");
    assert.equal(s3.errorOutputPrefix, "errors/");
    assert.deepEqual(s3.cloudwatchLoggingOptions, { enabled: false });
    const sse = one(
      run,
      "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    ).props.rules as { applyServerSideEncryptionByDefault: { sseAlgorithm: string } }[];
    assert.equal(sse[0].applyServerSideEncryptionByDefault.sseAlgorithm, "AES256");
    assert.equal(run.outputs.stream, "s");
  });

  it("encrypts with aws:kms (and an S3 bucket key) when asked", async () => {
    const run = await runProgram("dev", {
      program: () => {
        new DeliveryStream("d", {
          streamName: "s",
          bucketName: "b-bucket",
          sseAlgorithm: "aws:kms",
        });
        return {};
      },
    });
    const sse = one(
      run,
      "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    ).props.rules as Record<string, unknown>[];
    assert.deepEqual(sse, [
      { applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms" }, bucketKeyEnabled: true },
    ]);
  });
});

describe("components: IAM documents refuse wildcards (core/iam/policy-audit.ts's one definition)", () => {
  const grant = (Action: string[], Resource: string[]) => ({
    Sid: "G",
    Effect: "Allow" as const,
    Action,
    Resource,
  });
  const LOGS = "arn:aws:logs:us-east-1:123456789012";

  it("accepts named resources, one bucket's objects and one log group's streams", () => {
    for (const arn of [
      "arn:aws:firehose:us-east-1:1:deliverystream/s",
      "arn:aws:s3:::b",
      "arn:aws:s3:::b/*",
      "arn:aws:s3:::b/analytics/*",
      `${LOGS}:log-group:/g`,
      `${LOGS}:log-group:/g:*`,
      `${LOGS}:log-group:/g:log-stream:*`,
      `${LOGS}:log-group:/g:log-stream:application`,
    ]) {
      assert.equal(isWildcardResource(arn), false, `${arn} is scoped`);
    }
    assert.doesNotThrow(() => allowDocument(grant(["s3:PutObject"], ["arn:aws:s3:::b/*"])));
  });

  it("accepts one SNS topic or SQS queue, whose ARNs name no resource type (list_amazonsns.html, list_amazonsqs.html)", () => {
    for (const arn of ["arn:aws:sns:us-east-1:1:ops-alerts", "arn:aws:sqs:us-east-1:1:readings"]) {
      assert.equal(isWildcardResource(arn), false, `${arn} is scoped`);
    }
    for (const arn of ["arn:aws:sns:us-east-1:1:*", "arn:aws:sqs:us-east-1:1:read*"]) {
      assert.equal(isWildcardResource(arn), true, `${arn} is a wildcard`);
    }
  });

  it("calls wildcard what names only a resource type, an account part or nothing", () => {
    for (const arn of [
      "*",
      "arn:aws:s3:::*",
      "arn:aws:s3:::*/x",
      "arn:aws:firehose:us-east-1:1:deliverystream/*",
      `${LOGS}:log-group:*`,
      `${LOGS}:*`,
      "arn:aws:logs:*:123456789012:log-group:/g",
      "arn:aws:kinesis:us-east-1:1:stream/tele*",
    ]) {
      assert.equal(isWildcardResource(arn), true, `${arn} is a wildcard`);
    }
  });

  it("throws on a wildcard action or resource", () => {
    assert.throws(() => allowDocument(grant(["s3:*"], ["arn:aws:s3:::b"])), /action s3:\* in G/);
    assert.throws(() => allowDocument(grant(["s3:GetObject"], ["*"])), /resource \* in G/);
    assert.throws(
      () => allowDocument(grant(["s3:GetObject"], ["arn:aws:s3:::*/x"])),
      /is a wildcard/,
    );
  });

  it("allows the one wildcard AWS requires, DescribeLogGroups on log-group:*, and only for it", () => {
    assert.doesNotThrow(() =>
      allowDocument(grant(["logs:DescribeLogGroups"], [`${LOGS}:log-group:*`])),
    );
    assert.throws(
      () => allowDocument(grant(["logs:PutLogEvents"], [`${LOGS}:log-group:*`])),
      /log-group:\* in G is a wildcard; the only ones allowed are logs:DescribeLogGroups on/,
    );
    assert.throws(
      () =>
        allowDocument(
          grant(["logs:DescribeLogGroups", "logs:DescribeLogStreams"], [`${LOGS}:log-group:*`]),
        ),
      /is a wildcard/,
    );
    assert.throws(() => allowDocument(grant(["logs:DescribeLogGroups"], ["*"])), /is a wildcard/);
  });

  // https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/iam-access-control-overview-cwl.html:
  // group-level actions use the group's ARN with the trailing :*; the provider's arn lacks it.
  it("names a log group for group-level actions by its ARN with the trailing :*", () => {
    assert.equal(
      logGroupPolicyArn(`${LOGS}:log-group:/iot/rules/r/errors`),
      `${LOGS}:log-group:/iot/rules/r/errors:*`,
    );
    assert.throws(
      () => logGroupPolicyArn(`${LOGS}:log-group:/g:*`),
      /without a trailing :\*.*LogGroup\.arn/,
    );
    assert.throws(
      () => logGroupPolicyArn(`${LOGS}:log-group:/g:log-stream:s`),
      /not a log group ARN/,
    );
  });
});

describe("components: the topic rule's description (ruleDescription, through the plan)", () => {
  // TopicRulePayload's `description` (https://docs.aws.amazon.com/iot/latest/apireference/API_TopicRulePayload.html)
  it("is the configured text", async () => {
    const run = await runProgram("dev", {
      overrides: { ruleDescription: "Seattle store temperatures into the lake" },
    });
    const rule = one(run, "aws:iot/topicRule:TopicRule");
    assert.equal(rule.inputs.description, "Seattle store temperatures into the lake");
  });

  it("is not set when ruleDescription is empty (the default)", async () => {
    const run = await runProgram("dev");
    assert.equal(one(run, "aws:iot/topicRule:TopicRule").inputs.description, undefined);
  });
});
