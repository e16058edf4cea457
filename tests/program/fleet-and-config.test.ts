// A fleet yields one identity per thing; bad config fails before any resource exists; the runner
// builds several stacks in one process; the rule takes an optional Kinesis action.
import { strict as assert } from "node:assert";
import { FLEET_CHUNK, inChunks } from "../../components/private/chunks";
import { KinesisAction } from "../../components/rule/actions/kinesis";
import { ConfigError } from "../../core/errors";
import { deriveBucketName, isValidBucketName } from "../../core/stack-config";
import {
  MOCK_ACCOUNT_ID,
  registeredSoFar,
  runProgram,
  type ProgramRun,
} from "../../tools/mock-program";
import { grants, ofType, one, trustedServices } from "./helpers";

const FLEET = [
  {
    group: "Seattle",
    attributes: { city: "Seattle" },
    thingPrefix: "store-sensor-seattle",
    count: 4,
  },
  { group: "Portland", description: "Things in Portland", things: ["pdx-a", "pdx-b", "pdx-c"] },
];

describe("program: a fleet of N things", () => {
  let run: ProgramRun;
  before(async () => {
    run = await runProgram("dev", { overrides: { fleet: FLEET } });
  });

  it("yields N things, N certificates, N policy attachments and N thing attachments", () => {
    const n = 7;
    const count = (t: string) => ofType(run, t).length;
    assert.equal(count("aws:iot/thing:Thing"), n);
    assert.equal(count("aws:iot/certificate:Certificate"), n);
    assert.equal(count("aws:iot/policyAttachment:PolicyAttachment"), n);
    assert.equal(count("aws:iot/thingPrincipalAttachment:ThingPrincipalAttachment"), n);
    assert.equal(count("aws:iot/thingGroupMembership:ThingGroupMembership"), n);
    assert.equal(count("aws:iot/policy:Policy"), 1, "one policy shared by the fleet");
  });

  it("gives every thing its own certificate, attached to the shared policy", () => {
    const certArns = new Set(
      ofType(run, "aws:iot/certificate:Certificate").map((c) => c.props.arn),
    );
    const principals = new Map<string, string>();
    for (const a of ofType(run, "aws:iot/thingPrincipalAttachment:ThingPrincipalAttachment")) {
      principals.set(a.props.thing as string, a.props.principal as string);
    }
    assert.deepEqual([...principals.keys()].sort(), run.config.things.map((t) => t.name).sort());
    assert.equal(new Set(principals.values()).size, 7, "no certificate is shared");
    for (const p of principals.values()) assert.ok(certArns.has(p));
    const targets = ofType(run, "aws:iot/policyAttachment:PolicyAttachment").map((a) => {
      assert.equal(a.props.policy, "sensor-policy");
      return a.props.target;
    });
    assert.deepEqual(new Set(targets), certArns);
  });

  it("puts each thing in its group, with the group's attributes", () => {
    const groups = ofType(run, "aws:iot/thingGroup:ThingGroup").map((g) => g.props.name);
    assert.deepEqual(groups.sort(), ["Portland", "Seattle"]);
    const memberOf = (thing: string) =>
      one(
        run,
        "aws:iot/thingGroupMembership:ThingGroupMembership",
        (m) => m.props.thingName === thing,
      ).props.thingGroupName;
    assert.equal(memberOf("store-sensor-seattle4"), "Seattle");
    assert.equal(memberOf("pdx-b"), "Portland");
  });
});

describe("program: a fleet larger than one chunk (components/private/chunks.ts)", () => {
  it("makes every thing and identity, and outputs them all in fleet order", async function () {
    this.timeout(60_000);
    const n = 2 * FLEET_CHUNK + 1;
    const run = await runProgram("dev", {
      overrides: { fleet: [{ group: "Big", thingPrefix: "big-", count: n }] },
    });
    const names = Array.from({ length: n }, (_, i) => `big-${i + 1}`);
    assert.deepEqual(run.outputs.thingNames, names);
    assert.deepEqual(Object.keys(run.outputs.certificateArns as object), names);
    assert.deepEqual(Object.keys(run.outputs.certificatePems as object), names);
    assert.deepEqual(Object.keys(run.outputs.privateKeys as object), names);
    assert.deepEqual(run.secretOutputs, ["privateKeys"]);
    for (const t of ["aws:iot/thing:Thing", "aws:iot/certificate:Certificate"]) {
      assert.equal(ofType(run, t).length, n, t);
    }
    const arns = new Set(ofType(run, "aws:iot/certificate:Certificate").map((c) => c.props.arn));
    assert.deepEqual(new Set(Object.values(run.outputs.certificateArns as object)), arns);
  });
});

describe("inChunks", () => {
  it("makes the first chunk at once and the rest a chunk per turn of the event loop", async () => {
    const made: number[] = [];
    const done = inChunks([1, 2, 3, 4, 5], (i) => made.push(i), 2);
    assert.deepEqual(made, [1, 2], "the first chunk, synchronously");
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(made, [1, 2, 3, 4], "the second, one turn later");
    await done;
    assert.deepEqual(made, [1, 2, 3, 4, 5]);
  });

  it("rejects with the first error and makes nothing after it", async () => {
    const made: number[] = [];
    const boom = new Error("boom");
    await assert.rejects(
      inChunks(
        [1, 2, 3, 4],
        (i) => {
          if (i === 3) throw boom;
          made.push(i);
        },
        2,
      ),
      (e: unknown) => e === boom,
    );
    assert.deepEqual(made, [1, 2]);
  });
});

describe("program: invalid config fails with its message before any resource is registered", () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    [
      "a buffer size over 128 MiB",
      { bufferSizeMiB: 129 },
      /bufferSizeMiB = "129" is invalid: .*1 to 128/,
    ],
    ["a buffer size of 0", { bufferSizeMiB: 0 }, /bufferSizeMiB = "0" is invalid/],
    [
      "an interval over 900 s",
      { bufferIntervalSeconds: 901 },
      /bufferIntervalSeconds = "901" is invalid: .*0 to 900/,
    ],
    [
      "a rule name with a hyphen",
      { ruleName: "sensor-rule" },
      /ruleName = "sensor-rule" is invalid: use only letters, digits and underscores/,
    ],
    [
      "SQL without a quoted FROM topic",
      { ruleSql: "SELECT * FROM SeattleStoreTemp/1" },
      /ruleSql = .* must name a quoted topic filter/,
    ],
    [
      "an unknown policy mode",
      { policyMode: "open" },
      /policyMode = "open" is invalid: must be one of tutorial, least-privilege/,
    ],
    ["an empty fleet", { fleet: [] }, /fleet = \[\] is invalid: must be a non-empty list/],
    [
      "a CSR file that is not a CSR",
      { certificateMode: "csr", csrDir: "tests/fixtures/not-a-csr" },
      /csrDir = "tests\/fixtures\/not-a-csr" is invalid: .* is not a PEM certificate signing request/,
    ],
    [
      "a CSR file whose PEM armour holds no PKCS#10 request",
      { certificateMode: "csr", csrDir: "tests/fixtures/armoured-garbage-csr" },
      /csrDir = "tests\/fixtures\/armoured-garbage-csr" is invalid: .* is not a PEM certificate signing request/,
    ],
    [
      "an invalid bucket name",
      { bucketName: "My_Bucket" },
      /bucketName = "My_Bucket" is invalid: use 3-63 lower-case/,
    ],
    [
      "a prefix expression without an error-output-type in the error prefix",
      { s3Prefix: "t/!{timestamp:yyyy}/" },
      /errorOutputPrefix = "errors\/" is invalid: must contain !\{firehose:error-output-type\}/,
    ],
    [
      "an unknown prefix expression",
      {
        s3Prefix: "t/!{partitionKeyFromQuery:x}/",
        errorOutputPrefix: "e/!{firehose:error-output-type}/",
      },
      /s3Prefix = .* is not a Firehose expression/,
    ],
    [
      "a role name too long for the -kinesis role",
      { ruleRoleName: "r".repeat(57) },
      /ruleRoleName = "r{57}" is invalid: use 1-56 letters/,
    ],
    [
      "a stream name with a space",
      { streamName: "weather data" },
      /streamName = "weather data" is invalid: use 1-56 letters/,
    ],
    [
      "a stream name too long for the -windows stream",
      { streamName: "s".repeat(57) },
      /streamName = "s{57}" is invalid: use 1-56 letters.*-windows/,
    ],
    [
      "a group attribute value with a space, which AWS IoT's AttributePayload refuses",
      {
        fleet: [{ group: "NYC", attributes: { city: "New York" }, thingPrefix: "s", count: 1 }],
      },
      /fleet\[0\]\.attributes\.city = "New York" is invalid: attribute values are at most 800 letters, digits or _ \. , @ \/ : # = \[ \] - \(no spaces/,
    ],
    [
      "a group attribute name with a space",
      { fleet: [{ group: "NYC", attributes: { "the city": "NYC" }, thingPrefix: "s" }] },
      /fleet\[0\]\.attributes = "the city" is invalid: attribute names are 1-128/,
    ],
    ["a missing region", { "aws:region": "" }, /aws:region = .* is invalid: set an AWS region/],
  ];
  for (const [what, overrides, message] of cases) {
    it(`rejects ${what}`, async () => {
      await assert.rejects(runProgram("dev", { overrides }), (e: unknown) => {
        assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
        assert.match(e.message, message);
        assert.ok(!e.message.includes("\n"), "the message is one line");
        return true;
      });
      assert.deepEqual(registeredSoFar(), [], "no resource was registered");
    });
  }
});

describe("program: several stacks in one process", () => {
  it("builds dev, then prod, then dev again with nothing carried over", async () => {
    const dev1 = await runProgram("dev");
    const prod = await runProgram("prod");
    const dev2 = await runProgram("dev");
    const shape = (r: ProgramRun) => r.resources.map((x) => `${x.type} ${x.name}`).sort();
    assert.deepEqual(shape(dev2), shape(dev1));
    assert.notDeepEqual(shape(prod), shape(dev1));
    assert.ok(dev2.resources.every((r) => r.urn.startsWith("urn:pulumi:dev::iot-pipeline::")));
    assert.ok(prod.resources.every((r) => r.urn.startsWith("urn:pulumi:prod::iot-pipeline::")));
    assert.equal(dev2.config.policy.mode, "tutorial");
    assert.equal(one(dev2, "aws:iot/policy:Policy").props.name, "sensor-policy");
    assert.equal(ofType(dev2, "aws:iot/thing:Thing").length, 1);
    assert.deepEqual(dev2.secretOutputs, ["privateKeys"]);
  });
});

describe("program: a rule action the analytics hook plugs in (a Kinesis action object)", () => {
  const streamArn = `arn:aws:kinesis:us-east-1:${MOCK_ACCOUNT_ID}:stream/telemetry-window`;

  it("adds a kineses action through a role allowed only kinesis:PutRecord on that stream", async () => {
    const run = await runProgram("dev", {
      build: {
        analytics: () => ({
          ruleActions: [
            new KinesisAction({
              streamName: "telemetry-window",
              streamArn,
              partitionKey: "${topic()}",
              roleName: "iot-weather-data-role-kinesis",
            }),
          ],
        }),
      },
    });
    const rule = one(run, "aws:iot/topicRule:TopicRule");
    const [action, ...more] = rule.props.kineses as Record<string, unknown>[];
    assert.equal(more.length, 0);
    assert.equal(action.streamName, "telemetry-window");
    assert.equal(action.partitionKey, "${topic()}");
    const role = one(run, "aws:iam/role:Role", (r) => r.props.arn === action.roleArn);
    assert.equal(role.props.name, "iot-weather-data-role-kinesis");
    assert.deepEqual(trustedServices(role), ["iot.amazonaws.com"]);
    assert.deepEqual(grants(run, role), { actions: ["kinesis:PutRecord"], resources: [streamArn] });
    assert.equal((rule.props.firehoses as unknown[]).length, 1, "the Firehose action stays");
  });

  it("has no Kinesis action or role without it", async () => {
    const run = await runProgram("dev", { build: { analytics: () => undefined } });
    assert.equal(one(run, "aws:iot/topicRule:TopicRule").props.kineses, undefined);
    assert.equal(
      ofType(run, "aws:iam/role:Role").filter((r) => String(r.props.name).endsWith("-kinesis"))
        .length,
      0,
    );
  });
});

describe("program: rule actions are objects that bind their own role", () => {
  it("refuses two actions with one id, whose roles would collide", async () => {
    const action = () =>
      new KinesisAction({
        streamName: "s",
        streamArn: "arn:aws:kinesis:r:1:stream/s",
        partitionKey: "k",
      });
    await assert.rejects(
      runProgram("dev", { build: { analytics: () => ({ ruleActions: [action(), action()] }) } }),
      /topic rule sensor_rule's action ids must be unique: firehose, kinesis, kinesis/,
    );
  });
});

describe("derived bucket names", () => {
  it("are <project>-<stack>-<account>-<region>, lower-cased and valid", () => {
    const name = deriveBucketName("Dev", MOCK_ACCOUNT_ID, "us-east-1");
    assert.equal(name, "iot-pipeline-dev-123456789012-us-east-1");
    assert.ok(isValidBucketName(name));
  });

  it("stay within 63 characters and distinct for long stack names", () => {
    const a = deriveBucketName(
      "a-very-long-stack-name-for-the-team-one",
      MOCK_ACCOUNT_ID,
      "ap-southeast-2",
    );
    const b = deriveBucketName(
      "a-very-long-stack-name-for-the-team-two",
      MOCK_ACCOUNT_ID,
      "ap-southeast-2",
    );
    assert.ok(a.length <= 63 && b.length <= 63, `${a} / ${b}`);
    assert.notEqual(a, b);
    assert.ok(isValidBucketName(a) && isValidBucketName(b), `${a} / ${b}`);
    assert.ok(a.endsWith(`-${MOCK_ACCOUNT_ID}-ap-southeast-2`));
  });

  it("use the configured name when one is set", async () => {
    const run = await runProgram("dev", { overrides: { bucketName: "my-telemetry-bucket" } });
    assert.equal(one(run, "aws:s3/bucket:Bucket").props.bucket, "my-telemetry-bucket");
    assert.equal(run.outputs.bucketName, "my-telemetry-bucket");
  });
});
