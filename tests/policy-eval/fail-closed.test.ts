// Fail closed: a policy using a condition key, operator or variable the evaluator does not
// implement, a malformed ARN or an empty statement is refused with one line naming the statement,
// the key and what is supported — by the parser, the stack config, `npm run check` and the
// program — and never evaluated as if the key were absent.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigError } from "../../core/errors";
import {
  CERTIFICATE_ALT_NAME_TYPES,
  CERTIFICATE_NAME_ATTRIBUTES,
  lookupKey,
  normalizePolicy,
  normalizePolicyGrammar,
  PolicyDocumentError,
} from "../../core/iot-policy/policy";
import { createEvaluator, keyValues, type PolicyContext } from "../../core/iot-policy/policy-eval";
import { loadPlan } from "../../core/plan";
import { loadStackConfig } from "../../core/stack-config";
import { PROJECT_DIR } from "../../core/project";
import { main as checkMain } from "../../tools/check";
import { runProgram } from "../../tools/mock-program";
import { certificate, PAGES, registered } from "./cases";

const A = "arn:aws:iot:us-east-1:123456789012";
const doc = (...Statement: object[]) => ({ Version: "2012-10-17", Statement });
const allowIf = (Condition: object) => ({
  Effect: "Allow",
  Action: "iot:Publish",
  Resource: `${A}:topic/t`,
  Condition,
});

/** [what, document, the one-line message expected] */
const REFUSED: Array<[string, unknown, RegExp]> = [
  [
    "an unknown condition key in a Deny (the case that must never be read as absent)",
    doc(
      { Effect: "Allow", Action: "iot:*", Resource: "*" },
      {
        Sid: "NoUntagged",
        Effect: "Deny",
        Action: "iot:Publish",
        Resource: "*",
        Condition: { StringNotEquals: { "aws:PrincipalTag/team": "ops" } },
      },
    ),
    /^statement 1 \(Sid NoUntagged\): condition key aws:PrincipalTag\/team is not supported; supported: iot:ClientId, .*aws:SourceIp/,
  ],
  [
    "an unknown iot: key",
    doc(allowIf({ StringEquals: { "iot:Connection.Thing.Group": "x" } })),
    /^statement 0: condition key iot:Connection\.Thing\.Group is not supported/,
  ],
  [
    "an unknown operator",
    doc(allowIf({ StringEqualz: { "iot:ClientId": "x" } })),
    /^statement 0: condition operator StringEqualz is not supported; use one of StringEquals, .*IpAddress.*optionally with the suffix IfExists/,
  ],
  [
    "Null with IfExists",
    doc(allowIf({ NullIfExists: { "iot:ClientId": "true" } })),
    /Null takes neither IfExists nor ForAnyValue/,
  ],
  [
    "an unknown policy variable in a resource",
    doc({ Effect: "Allow", Action: "iot:Publish", Resource: `${A}:topic/\${aws:username}` }),
    /^statement 0: resource .*: policy variable \$\{aws:username\} is not supported; supported: /,
  ],
  [
    "a policy variable spelled in another case",
    doc({ Effect: "Allow", Action: "iot:Publish", Resource: `${A}:topic/\${iot:clientid}` }),
    /policy variable \$\{iot:clientid\} must be written \$\{iot:ClientId\}/,
  ],
  [
    "an unknown variable in a condition value",
    doc(allowIf({ StringEquals: { "iot:ClientId": "${iot:Thing.ThingName}" } })),
    /^statement 0: condition iot:ClientId: policy variable \$\{iot:Thing\.ThingName\} is not supported/,
  ],
  [
    "a .List key used as a variable",
    doc({
      Effect: "Allow",
      Action: "iot:Publish",
      Resource: `${A}:topic/\${iot:Certificate.Subject.Organization.List}`,
    }),
    /holds several values and cannot stand in a string/,
  ],
  [
    "a condition-only key used as a variable",
    doc({ Effect: "Allow", Action: "iot:Publish", Resource: `${A}:topic/\${aws:CurrentTime}` }),
    /is a condition key, not a policy variable/,
  ],
  [
    "a multi-valued key without ForAnyValue/ForAllValues",
    doc(allowIf({ StringEquals: { "iot:ConnectAttributes": "LastWill" } })),
    /holds several values; write ForAnyValue:StringEquals or ForAllValues:StringEquals/,
  ],
  [
    "an IP operator on a string key",
    doc(allowIf({ IpAddress: { "iot:ClientId": "10.0.0.0/8" } })),
    /condition operator IpAddress cannot compare iot:ClientId \(a string key\)/,
  ],
  [
    "a Date operator on a string key",
    doc(allowIf({ DateLessThan: { "iot:ClientId": "2026-01-01" } })),
    /cannot compare iot:ClientId/,
  ],
  [
    "a malformed CIDR",
    doc(allowIf({ IpAddress: { "aws:SourceIp": "300.1.2.3/8" } })),
    /"300\.1\.2\.3\/8" is not an IPv4 or IPv6 address or CIDR block/,
  ],
  [
    "a date that is no date",
    doc(allowIf({ DateLessThan: { "aws:CurrentTime": "tomorrow" } })),
    /"tomorrow" is not an ISO 8601 date or epoch seconds/,
  ],
  [
    "a number that is no number",
    doc(allowIf({ NumericLessThan: { "iot:Connection.Thing.Attributes[n]": "ten" } })),
    /"ten" is not a number/,
  ],
  [
    "a Bool value that is not true/false",
    doc(allowIf({ Bool: { "iot:Connection.Thing.IsAttached": "yes" } })),
    /"yes" is not true or false/,
  ],
  [
    "a resource that is not an ARN",
    doc({ Effect: "Allow", Action: "iot:Publish", Resource: "topic/foo" }),
    /^statement 0: resource topic\/foo is not an ARN; write \* or arn:<partition>:iot:/,
  ],
  [
    "an ARN cut short",
    doc({ Effect: "Allow", Action: "iot:Publish", Resource: "arn:aws:iot:us-east-1:123" }),
    /is a malformed ARN/,
  ],
  [
    "another service's ARN",
    doc({ Effect: "Allow", Action: "iot:Publish", Resource: "arn:aws:s3:::bucket/key" }),
    /is not an AWS IoT ARN \(service s3\)/,
  ],
  [
    "a misspelt resource type",
    doc({ Effect: "Allow", Action: "iot:Publish", Resource: `${A}:topics/a` }),
    /malformed ARN: unknown resource type topics/,
  ],
  [
    "a resource type without a name",
    doc({ Effect: "Allow", Action: "iot:Publish", Resource: `${A}:topic` }),
    /malformed ARN: topic has no \/<name>/,
  ],
  ["an empty statement list", doc(), /policy document has an empty Statement list/],
  ["an empty statement", doc({}), /^statement 0: Effect must be Allow or Deny$/],
  [
    "a Principal",
    doc({ Effect: "Allow", Principal: "*", Action: "iot:Publish", Resource: "*" }),
    /^statement 0: an IoT policy has no Principal/,
  ],
  [
    "an unknown statement field",
    doc({ Effect: "Allow", Action: "iot:Publish", Resources: "*", Resource: "*" }),
    /^statement 0: unknown field Resources/,
  ],
  [
    "Version 2008-10-17",
    { Version: "2008-10-17", Statement: [{ Effect: "Allow", Action: "iot:*", Resource: "*" }] },
    /Version "2008-10-17" is not supported/,
  ],
  [
    "variables without a Version",
    {
      Statement: [
        { Effect: "Allow", Action: "iot:Publish", Resource: `${A}:topic/\${iot:ClientId}` },
      ],
    },
    /uses policy variables but has no Version/,
  ],
  [
    "a document over CreatePolicy's 2048 characters",
    doc(
      ...Array.from({ length: 30 }, (_, i) => ({
        Effect: "Allow",
        Action: "iot:Publish",
        Resource: `${A}:topic/some/long/topic/number/${i}`,
      })),
    ),
    /policy document is \d+ characters without whitespace; AWS IoT accepts at most 2048/,
  ],
  [
    "a condition value that is an object",
    doc(allowIf({ StringEquals: { "iot:ClientId": { a: 1 } } })),
    /must be a string, number, boolean or a list of them/,
  ],
];

describe("fail closed: the parser refuses what the evaluator does not implement", () => {
  for (const [what, d, message] of REFUSED) {
    it(`refuses ${what}, in one line`, () => {
      assert.throws(
        () => createEvaluator([d]),
        (e: unknown) => {
          assert.ok(
            e instanceof PolicyDocumentError,
            `expected a PolicyDocumentError: ${String(e)}`,
          );
          assert.match(e.message, message);
          assert.ok(!e.message.includes("\n"), "one line");
          return true;
        },
      );
    });
  }

  it("names the policy when several are attached", () => {
    assert.throws(
      () => createEvaluator([doc(allowIf({})), doc(allowIf({ StringEquals: { "iot:X": "1" } }))]),
      /: policy 1: statement 0: condition key iot:X is not supported/,
    );
  });

  it("matches condition key names case-insensitively, as IAM documents", () => {
    // reference_policies_elements_condition.html: condition key names are not case-sensitive.
    const decide = createEvaluator([
      doc(allowIf({ StringEquals: { "IOT:connection.thing.THINGNAME": "thing1" } })),
    ]);
    const got = decide({
      action: "iot:Publish",
      resource: `${A}:topic/t`,
      context: registered("thing1"),
    });
    assert.equal(got.decision, "allow");
  });

  it("keeps the IAM grammar reader for IAM documents (no IoT checks there)", () => {
    const iam = doc({
      Effect: "Allow",
      Action: "s3:PutObject",
      Resource: "arn:aws:s3:::bucket/*",
      Condition: { StringEquals: { "aws:SourceAccount": "1" } },
    });
    assert.equal(normalizePolicyGrammar(iam).length, 1);
    assert.throws(() => normalizePolicy(iam), /not an AWS IoT ARN/);
  });

  it("resolves every key the parser accepts (the language and the evaluator agree)", () => {
    // Every key the parser admits must have a value on a connection that carries it: a key the
    // parser accepts but the evaluator cannot resolve would be evaluated as absent.
    const ctx: PolicyContext = {
      ...registered("thing1"),
      domainName: "iot.example.com",
      connectAttributes: ["LastWill"],
      lastWillTopic: `${A}:topic/will`,
      certificate: certificate(
        Object.fromEntries(Object.keys(CERTIFICATE_NAME_ATTRIBUTES).map((a) => [a, ["v0", "v1"]])),
        {
          issuer: Object.fromEntries(
            Object.keys(CERTIFICATE_NAME_ATTRIBUTES).map((a) => [a, ["i0"]]),
          ),
          subjectAltNames: Object.fromEntries(CERTIFICATE_ALT_NAME_TYPES.map((k) => [k, ["s0"]])),
          issuerAltNames: Object.fromEntries(CERTIFICATE_ALT_NAME_TYPES.map((k) => [k, ["j0"]])),
          serialNumber: "01",
        },
      ),
    };
    const names = [
      "iot:ClientId",
      "iot:DomainName",
      "aws:SourceIp",
      "aws:CurrentTime",
      "aws:EpochTime",
      "aws:SecureTransport",
      "iot:Connection.Thing.ThingName",
      "iot:Connection.Thing.ThingTypeName",
      "iot:Connection.Thing.IsAttached",
      "iot:Connection.Thing.Attributes[attributeName]",
      "iot:ConnectAttributes",
      "iot:LastWillTopic",
      "iot:CertificateId",
      "iot:Certificate.SerialNumber",
      "iot:Certificate.AvailableKeys",
      ...Object.keys(CERTIFICATE_NAME_ATTRIBUTES).flatMap((a) => [
        `iot:Certificate.Subject.${a}`,
        `iot:Certificate.Subject.${a}.1`,
        `iot:Certificate.Subject.${a}.List`,
        `iot:Certificate.Issuer.${a}`,
      ]),
      ...CERTIFICATE_ALT_NAME_TYPES.flatMap((k) => [
        `iot:Certificate.Subject.AlternativeName.${k}`,
        `iot:Certificate.Issuer.AlternativeName.${k}.List`,
      ]),
    ];
    for (const name of names) {
      const key = lookupKey(name);
      assert.ok(!("error" in key), `${name} is accepted`);
      const v = keyValues(key, ctx);
      assert.ok(v !== undefined && v.length > 0, `${name} resolves (got ${JSON.stringify(v)})`);
    }
  });
});

describe("fail closed when the stack loads: one line, exit code 2", function () {
  this.timeout(60_000);
  const bad = JSON.stringify(
    doc({
      Sid: "Oops",
      Effect: "Deny",
      Action: "iot:Publish",
      Resource: "*",
      Condition: { StringEquals: { "iot:Foo": "x" } },
    }),
  );

  it("the stack config (what npm run simulate reads first) refuses a custom policy with an unknown key", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "iot-policy-stack-"));
    try {
      fs.copyFileSync(path.join(PROJECT_DIR, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
      fs.writeFileSync(
        path.join(dir, "Pulumi.bad.yaml"),
        [
          "config:",
          "  aws:region: us-east-1",
          "  iot-pipeline:policyMode: custom",
          `  iot-pipeline:policyDocument: ${bad}`,
        ].join("\n"),
      );
      assert.throws(
        () => loadPlan("bad", dir),
        (e: unknown) => {
          assert.ok(e instanceof ConfigError);
          assert.equal(e.exitCode, 2);
          assert.match(
            e.message,
            /^config iot-pipeline:policyDocument is invalid: statement 0 \(Sid Oops\): condition key iot:Foo is not supported; supported: /,
          );
          assert.ok(!e.message.includes("\n"));
          return true;
        },
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("npm run check exits 2 with one line", async () => {
    const err: string[] = [];
    const code = await checkMain(
      ["--stack", "prod", "-c", "policyMode=custom", "-c", `policyDocument=${bad}`],
      () => undefined,
      (l) => err.push(l),
    );
    assert.equal(code, 2);
    assert.equal(err.length, 1, err.join("\n"));
    assert.match(
      err[0],
      /policyDocument is invalid: statement 0 \(Sid Oops\): condition key iot:Foo/,
    );
  });

  it("the program stops before registering anything", async () => {
    await assert.rejects(
      runProgram("dev", { overrides: { policyMode: "custom", policyDocument: bad } }),
      (e: unknown) => e instanceof ConfigError && /condition key iot:Foo/.test(e.message),
    );
  });

  it("a policy document is refused outside policyMode custom, and custom needs one", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "iot-policy-stack-"));
    try {
      fs.copyFileSync(path.join(PROJECT_DIR, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
      const write = (lines: string[]) =>
        fs.writeFileSync(
          path.join(dir, "Pulumi.s.yaml"),
          ["config:", "  aws:region: us-east-1", ...lines].join("\n"),
        );
      write([`  iot-pipeline:policyDocument: ${bad}`]);
      assert.throws(
        () => loadStackConfig("s", dir),
        /policyDocument = .* is used only with policyMode custom/,
      );
      write(["  iot-pipeline:policyMode: custom"]);
      assert.throws(
        () => loadStackConfig("s", dir),
        /must be the stack's IoT policy document when policyMode is custom/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it(`the program deploys a valid custom document with its ARN placeholders filled (${PAGES.policies})`, async () => {
    const custom = doc({
      Effect: "Allow",
      Action: "iot:Publish",
      Resource: "arn:{partition}:iot:{region}:{account}:topic/${iot:Connection.Thing.ThingName}",
    });
    const run = await runProgram("dev", {
      overrides: { policyMode: "custom", policyDocument: JSON.stringify(custom) },
    });
    const policy = run.resources.find((r) => r.type === "aws:iot/policy:Policy");
    assert.ok(policy, "an IoT policy is registered");
    const deployed = JSON.parse(String(policy.inputs.policy)) as {
      Statement: Array<{ Resource: string }>;
    };
    assert.match(
      deployed.Statement[0].Resource,
      /^arn:aws:iot:us-east-1:\d{12}:topic\/\$\{iot:Connection\.Thing\.ThingName\}$/,
    );
  });
});
