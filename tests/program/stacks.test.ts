// The dev and prod stacks, each built from its own Pulumi.<stack>.yaml under mocks: the resource
// graph, its key properties, the IAM trust and grants, parentage and the stack outputs.
import "reflect-metadata";
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import { X509Certificate, createPrivateKey, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { iamWildcardFindings } from "../../core/iam/policy-audit";
import { leastPrivilegePolicy, tutorialPolicy } from "../../core/iot-policy/policy";
import {
  MOCK_ACCOUNT_ID,
  mockIssuerPem,
  runProgram,
  type ProgramRun,
  type RegisteredResource,
} from "../../tools/mock-program";
import {
  byUrn,
  grants,
  json,
  list,
  ofType,
  one,
  statements,
  trustedServices,
  type Statement,
} from "./helpers";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const T = {
  thingType: "aws:iot/thingType:ThingType",
  thingGroup: "aws:iot/thingGroup:ThingGroup",
  thing: "aws:iot/thing:Thing",
  membership: "aws:iot/thingGroupMembership:ThingGroupMembership",
  certificate: "aws:iot/certificate:Certificate",
  policy: "aws:iot/policy:Policy",
  policyAttachment: "aws:iot/policyAttachment:PolicyAttachment",
  thingAttachment: "aws:iot/thingPrincipalAttachment:ThingPrincipalAttachment",
  rule: "aws:iot/topicRule:TopicRule",
  role: "aws:iam/role:Role",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  stream: "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream",
  bucket: "aws:s3/bucket:Bucket",
  publicAccess: "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
  encryption:
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
  logGroup: "aws:cloudwatch/logGroup:LogGroup",
  logStream: "aws:cloudwatch/logStream:LogStream",
};

/** The expected parent component of each AWS type this components own. */
const PARENT_OF: Record<string, string> = {
  [T.thingType]: "iot-pipeline:registry:ThingRegistry",
  [T.thingGroup]: "iot-pipeline:registry:ThingRegistry",
  [T.thing]: "iot-pipeline:registry:ThingRegistry",
  [T.membership]: "iot-pipeline:registry:ThingRegistry",
  [T.certificate]: "iot-pipeline:identity:DeviceIdentity",
  [T.policyAttachment]: "iot-pipeline:identity:DeviceIdentity",
  [T.thingAttachment]: "iot-pipeline:identity:DeviceIdentity",
  [T.policy]: "iot-pipeline:identity:DevicePolicy",
  [T.rule]: "iot-pipeline:rule:TelemetryRule",
  [T.bucket]: "iot-pipeline:delivery:DeliveryStream",
  [T.publicAccess]: "iot-pipeline:delivery:DeliveryStream",
  [T.encryption]: "iot-pipeline:delivery:DeliveryStream",
};

/** Whether a resource belongs to the delivery component (not, say, the analytics' own logs). */
const inDelivery = (run: ProgramRun, r: RegisteredResource) =>
  r.parent !== undefined && byUrn(run, r.parent).type === "iot-pipeline:delivery:DeliveryStream";

const roleNamed = (run: ProgramRun, name: string) => one(run, T.role, (r) => r.props.name === name);

/** The telemetry rule (prod has a second rule, `alerts`, of the stack config's `rules`). */
const telemetryRule = (run: ProgramRun) =>
  one(run, T.rule, (r) => r.props.name === run.config.rule.name);

/** The telemetry's Firehose stream (the analytics windows have one of their own). */
const telemetryStream = (run: ProgramRun) =>
  one(run, T.stream, (r) => r.props.name === "weather-data-stream");

/** Every IAM permissions document the program registers, with where it came from. */
function iamDocuments(run: ProgramRun): { where: string; statements: Statement[] }[] {
  const docs: { where: string; statements: Statement[] }[] = [];
  for (const r of run.resources) {
    if (r.type === T.rolePolicy || r.type === "aws:iam/policy:Policy") {
      docs.push({ where: `${r.type} ${r.name}`, statements: statements(json(r.props.policy)) });
    }
    if (r.type === T.role) {
      for (const p of (r.props.inlinePolicies ?? []) as { policy?: string }[]) {
        if (p.policy !== undefined) {
          docs.push({
            where: `inline policy of ${r.name}`,
            statements: statements(json(p.policy)),
          });
        }
      }
    }
  }
  return docs;
}

/** Checks every stack must pass; `get` returns the run once `before` has built it. */
function commonGraphChecks(get: () => ProgramRun) {
  it("parents every resource to its component, named after it", () => {
    const run = get();
    const root = one(run, "iot-pipeline:index:TelemetryPipeline");
    assert.equal(root.parent, undefined, "the pipeline is the stack's root component");
    for (const r of run.resources) {
      if (r === root) continue;
      assert.ok(r.parent, `${r.type} ${r.name} has no parent`);
      const parent = byUrn(run, r.parent);
      assert.equal(parent.custom, false, `${r.name}'s parent ${parent.name} is not a component`);
      assert.ok(
        r.name.startsWith(`${parent.name}-`),
        `${r.name} is not named after its parent ${parent.name}`,
      );
      const expected =
        r.type === T.stream
          ? r.props.name === "weather-data-stream"
            ? "iot-pipeline:delivery:DeliveryStream"
            : "iot-pipeline:analytics:StreamAnalytics"
          : r.type === T.rule && r.props.name !== run.config.rule.name
            ? // The stack config's further rules (`rules`) are TopicRule components.
              "iot-pipeline:rule:TopicRule"
            : PARENT_OF[r.type];
      if (expected !== undefined) assert.equal(parent.type, expected, `parent of ${r.name}`);
      if (r.type.startsWith("iot-pipeline:") && !r.type.startsWith("iot-pipeline:analytics")) {
        assert.equal(parent, root, `${r.name} is a direct child of the pipeline`);
      }
    }
  });

  it("grants no wildcard action or resource in any IAM role policy", () => {
    const run = get();
    const docs = iamDocuments(run);
    assert.ok(docs.length >= 3, `expected the program's role policies, found ${docs.length}`);
    for (const d of docs) {
      for (const st of d.statements) {
        assert.equal(st.Effect, "Allow", `${d.where}: only Allow statements are expected`);
      }
      // The one definition the pack applies too: only the wildcards AWS requires, by name.
      assert.deepEqual(
        iamWildcardFindings({ Version: "2012-10-17", Statement: d.statements }),
        [],
        `${d.where} grants a wildcard`,
      );
    }
  });

  it("trusts iot.amazonaws.com in the rule's roles and firehose.amazonaws.com in the stream's", () => {
    const run = get();
    assert.deepEqual(trustedServices(roleNamed(run, "iot-weather-data-role")), [
      "iot.amazonaws.com",
    ]);
    assert.deepEqual(trustedServices(roleNamed(run, "iot-weather-data-role-errors")), [
      "iot.amazonaws.com",
    ]);
    const streamRoleArn = (
      telemetryStream(run).props.extendedS3Configuration as { roleArn: string }
    ).roleArn;
    const streamRole = one(run, T.role, (r) => r.props.arn === streamRoleArn);
    assert.deepEqual(trustedServices(streamRole), ["firehose.amazonaws.com"]);
    // Each service's documented account guard: Firehose's sts:ExternalId, aws:SourceAccount else.
    for (const role of ofType(run, T.role)) {
      for (const st of statements(json(role.props.assumeRolePolicy))) {
        const key = list(st.Principal?.Service).includes("firehose.amazonaws.com")
          ? "sts:ExternalId"
          : "aws:SourceAccount";
        assert.deepEqual(
          st.Condition,
          { StringEquals: { [key]: MOCK_ACCOUNT_ID } },
          `${role.name}'s trust is limited to this account`,
        );
      }
    }
  });

  it("lets the rule's role only put records on the one delivery stream", () => {
    const run = get();
    const stream = telemetryStream(run);
    // The Firehose rule action calls PutRecord; PutRecordBatch only with batchMode, which is off.
    assert.deepEqual(grants(run, roleNamed(run, "iot-weather-data-role")), {
      actions: ["firehose:PutRecord"],
      resources: [stream.props.arn],
    });
  });

  it("lets the error action's role only write to its own log group", () => {
    const run = get();
    const rule = telemetryRule(run);
    const errorAction = rule.props.errorAction as {
      cloudwatchLogs: { logGroupName: string; roleArn: string };
    };
    const group = one(
      run,
      T.logGroup,
      (g) => g.props.name === errorAction.cloudwatchLogs.logGroupName,
    );
    assert.equal(group.props.name, "/iot/rules/sensor_rule/errors");
    const role = one(run, T.role, (r) => r.props.arn === errorAction.cloudwatchLogs.roleArn);
    // The CloudWatch Logs action's page: CreateLogStream, DescribeLogStreams and PutLogEvents; the
    // first two on the group's ARN with the trailing `:*` IAM sees for group-level actions.
    assert.deepEqual(grants(run, role), {
      actions: ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
      resources: [`${group.props.arn as string}:*`, `${group.props.arn as string}:log-stream:*`],
    });
  });

  it("blocks public access and encrypts the bucket; the stream's role reaches that bucket only", () => {
    const run = get();
    const bucket = one(run, T.bucket, (b) => b.name.endsWith("-delivery-bucket"));
    const block = one(run, T.publicAccess, (b) => b.props.bucket === bucket.props.bucket);
    for (const k of [
      "blockPublicAcls",
      "blockPublicPolicy",
      "ignorePublicAcls",
      "restrictPublicBuckets",
    ]) {
      assert.equal(block.props[k], true, `${k} must be true`);
    }
    const sse = one(run, T.encryption, (e) => e.props.bucket === bucket.props.bucket);
    const rules = sse.props.rules as {
      applyServerSideEncryptionByDefault: { sseAlgorithm: string };
    }[];
    // With kmsKey (prod) the stack's own key, else S3-managed keys.
    assert.equal(
      rules[0].applyServerSideEncryptionByDefault.sseAlgorithm,
      run.config.storage.kmsKey ? "aws:kms" : "AES256",
    );

    const s3 = telemetryStream(run).props.extendedS3Configuration as {
      bucketArn: string;
      roleArn: string;
    };
    assert.equal(s3.bucketArn, bucket.props.arn);
    const role = one(run, T.role, (r) => r.props.arn === s3.roleArn);
    const g = grants(run, role);
    const s3Resources = g.resources.filter((r) => r.startsWith("arn:aws:s3:::"));
    assert.deepEqual(s3Resources, [bucket.props.arn, `${bucket.props.arn}/*`]);
    assert.ok(g.actions.includes("s3:PutObject"), "the stream's role may put objects");
  });

  it("registers the rule sensor_rule with SQL 2016-03-23 and a Firehose action separated by newlines", () => {
    const run = get();
    const rule = telemetryRule(run);
    assert.equal(rule.props.name, "sensor_rule");
    assert.equal(rule.props.sql, run.config.rule.sql);
    assert.equal(rule.props.sqlVersion, "2016-03-23");
    assert.equal(rule.props.enabled, true);
    const [firehose, ...more] = rule.props.firehoses as Record<string, unknown>[];
    assert.equal(more.length, 0, "one Firehose action");
    assert.equal(firehose.separator, "\n");
    assert.equal(firehose.deliveryStreamName, "weather-data-stream");
    assert.equal(firehose.roleArn, roleNamed(run, "iot-weather-data-role").props.arn);
  });

  it("registers the seed's thing type and Seattle group", () => {
    const run = get();
    const type = one(run, T.thingType);
    assert.equal(type.props.name, "sensor");
    assert.deepEqual(type.props.properties, { description: "A sensor" });
    const group = one(run, T.thingGroup, (g) => g.props.name === "Seattle");
    assert.deepEqual(group.props.properties, {
      description: "Things in Seattle",
      attributePayload: { attributes: { city: "Seattle" } },
    });
  });

  it("exports the endpoint, names, certificate ARNs and PEMs", () => {
    const run = get();
    const o = run.outputs;
    assert.equal(o.endpoint, "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com");
    assert.deepEqual(
      o.thingNames,
      run.config.things.map((t) => t.name),
    );
    const certs = ofType(run, T.certificate);
    assert.deepEqual(
      Object.values(o.certificateArns as Record<string, string>).sort(),
      certs.map((c) => c.props.arn as string).sort(),
    );
    for (const pem of Object.values(o.certificatePems as Record<string, string>)) {
      assert.match(pem, /^-----BEGIN CERTIFICATE-----/);
    }
    assert.equal(o.policyName, run.config.policy.name);
    assert.equal(o.ruleName, "sensor_rule");
    assert.equal(o.streamName, "weather-data-stream");
    assert.equal(o.bucketName, `iot-pipeline-${run.config.stack}-${MOCK_ACCOUNT_ID}-us-east-1`);
  });
}

describe("program: dev stack (Pulumi.dev.yaml)", function () {
  let run: ProgramRun;
  before(async () => {
    run = await runProgram("dev");
  });

  it("builds the seed's single sensor with an AWS-generated, active certificate", () => {
    const thing = one(run, T.thing);
    assert.equal(thing.props.name, "store-sensor-seattle1");
    assert.equal(thing.props.thingTypeName, "sensor");
    const membership = one(run, T.membership);
    assert.deepEqual(
      [membership.props.thingName, membership.props.thingGroupName],
      ["store-sensor-seattle1", "Seattle"],
    );
    const cert = one(run, T.certificate);
    assert.equal(cert.props.active, true);
    assert.equal(cert.inputs.csr, undefined, "generated mode sends no CSR");
  });

  it("attaches the tutorial's sensor-policy (iot:* on *), as the seed does", () => {
    const policy = one(run, T.policy);
    assert.equal(policy.props.name, "sensor-policy");
    assert.deepEqual(json(policy.props.policy), tutorialPolicy());
  });

  it("exports the private key as a secret, and only it", () => {
    assert.deepEqual(run.secretOutputs, ["privateKeys"]);
    const keys = run.outputs.privateKeys as Record<string, string>;
    assert.deepEqual(Object.keys(keys), ["store-sensor-seattle1"]);
    assert.match(keys["store-sensor-seattle1"], /^-----BEGIN PRIVATE KEY-----/);
  });

  it("mocks a real certificate: issued by the mock CA, for the exported private key", () => {
    const pem = (run.outputs.certificatePems as Record<string, string>)["store-sensor-seattle1"];
    const key = (run.outputs.privateKeys as Record<string, string>)["store-sensor-seattle1"];
    const cert = new X509Certificate(pem);
    assert.ok(cert.verify(new X509Certificate(mockIssuerPem()).publicKey), "signed by the issuer");
    assert.ok(cert.checkPrivateKey(createPrivateKey(key)), "certifies the exported key");
    assert.equal(cert.validTo, "Dec 31 23:59:59 2049 GMT");
  });

  it("buffers 5 MiB / 300 s, uncompressed, under telemetry/ and errors/, without error logging", () => {
    const stream = telemetryStream(run);
    assert.equal(stream.props.name, "weather-data-stream");
    assert.equal(stream.props.destination, "extended_s3");
    assert.equal(stream.props.kinesisSourceConfiguration, undefined, "Direct PUT");
    assert.deepEqual(
      {
        ...(stream.props.extendedS3Configuration as Record<string, unknown>),
        bucketArn: 0,
        roleArn: 0,
      },
      {
        bucketArn: 0,
        roleArn: 0,
        bufferingSize: 5,
        bufferingInterval: 300,
        compressionFormat: "UNCOMPRESSED",
        prefix: "telemetry/",
        errorOutputPrefix: "errors/",
        cloudwatchLoggingOptions: { enabled: false },
      },
    );
    assert.deepEqual(
      ofType(run, T.logStream).filter((r) => inDelivery(run, r)),
      [],
      "no Firehose log stream when logging is off",
    );
  });

  commonGraphChecks(() => run);
});

describe("program: prod stack (Pulumi.prod.yaml)", function () {
  let run: ProgramRun;
  before(async () => {
    run = await runProgram("prod");
  });

  it("issues each of the three certificates from the device's own CSR, for its key", async () => {
    const certs = ofType(run, T.certificate);
    assert.equal(certs.length, 3);
    for (const thing of run.config.things) {
      const csrPem = fs.readFileSync(run.config.certificates.csrFiles[thing.name], "utf8");
      const attachment = one(run, T.thingAttachment, (a) => a.props.thing === thing.name);
      const cert = one(run, T.certificate, (c) => c.props.arn === attachment.props.principal);
      assert.equal(cert.props.csr, csrPem, `${thing.name}'s certificate comes from its CSR`);
      assert.equal(cert.props.active, true);
      const issued = new x509.X509Certificate(cert.props.certificatePem as string);
      const requested = new x509.Pkcs10CertificateRequest(csrPem);
      assert.equal(
        Buffer.from(issued.publicKey.rawData).toString("base64"),
        Buffer.from(requested.publicKey.rawData).toString("base64"),
        "the certificate certifies the CSR's public key",
      );
    }
  });

  it("exports no private key: it never left the devices", () => {
    assert.equal(run.outputs.privateKeys, undefined);
    assert.deepEqual(run.secretOutputs, []);
    for (const c of ofType(run, T.certificate)) assert.equal(c.props.privateKey, undefined);
  });

  it("attaches the least-privilege policy (connect as the thing, publish on its own topic)", () => {
    const policy = one(run, T.policy);
    assert.equal(policy.props.name, "sensor-telemetry-least-privilege");
    assert.deepEqual(
      json(policy.props.policy),
      leastPrivilegePolicy(
        { partition: "aws", region: "us-east-1", accountId: MOCK_ACCOUNT_ID },
        "SeattleStoreTemp/{thing}",
      ),
    );
  });

  it("compresses with GZIP (Parquet's codec) and logs delivery errors to its own log group and stream", () => {
    const stream = telemetryStream(run);
    const s3 = stream.props.extendedS3Configuration as Record<string, unknown>;
    // Format conversion needs the stream's own compression off; GZIP becomes Parquet's codec.
    assert.equal(s3.compressionFormat, "UNCOMPRESSED");
    const conversion = s3.dataFormatConversionConfiguration as {
      outputFormatConfiguration: { serializer: { parquetSerDe: { compression: string } } };
    };
    assert.equal(conversion.outputFormatConfiguration.serializer.parquetSerDe.compression, "GZIP");
    assert.equal(s3.bufferingSize, 64);
    assert.equal(s3.bufferingInterval, 300);
    const logGroup = one(
      run,
      T.logGroup,
      (g) => g.props.name === "/aws/kinesisfirehose/weather-data-stream",
    );
    const logStream = one(run, T.logStream, (r) => inDelivery(run, r));
    assert.deepEqual(s3.cloudwatchLoggingOptions, {
      enabled: true,
      logGroupName: logGroup.props.name,
      logStreamName: logStream.props.name,
    });
    const role = one(run, T.role, (r) => r.props.arn === s3.roleArn);
    const g = grants(run, role);
    assert.ok(g.actions.includes("logs:PutLogEvents"));
    assert.ok(g.resources.includes(logStream.props.arn as string), "logging only to that stream");
  });

  it("uses prod's SQL over every thing's topic", () => {
    assert.equal(
      telemetryRule(run).props.sql,
      "SELECT *, topic(2) AS topic_thing, timestamp() AS received_at FROM 'SeattleStoreTemp/+'",
    );
  });

  commonGraphChecks(() => run);
});
