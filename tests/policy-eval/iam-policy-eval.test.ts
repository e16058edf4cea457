// Conformance cases for the IAM evaluator (core/iam/policy-eval.ts), each from the IAM User Guide
// page it cites: the policy evaluation logic
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html) and
// the element pages (reference_policies_elements_*.html).
import { strict as assert } from "node:assert";
import { createIamEvaluator, type IamRequest } from "../../core/iam/policy-eval";
import { PolicyDocumentError } from "../../core/iot-policy/policy";

const GROUP = "arn:aws:logs:us-east-1:123456789012:log-group:/iot/rules/r/errors";
const BUCKET = "arn:aws:s3:::bucket";

function decide(statements: unknown[], request: IamRequest): string {
  return createIamEvaluator([{ Version: "2012-10-17", Statement: statements }])(request).decision;
}

const allow = (Action: unknown, Resource: unknown, extra: object = {}) => ({
  Effect: "Allow",
  Action,
  Resource,
  ...extra,
});

describe("IAM policy evaluator: IAM's evaluation logic", () => {
  // reference_policies_evaluation-logic.html: "By default, all requests are implicitly denied".
  it("denies by default: no statement, no access", () => {
    assert.equal(
      decide([allow("s3:GetObject", `${BUCKET}/*`)], {
        action: "s3:PutObject",
        resources: [`${BUCKET}/k`],
      }),
      "implicit-deny",
    );
  });

  // reference_policies_evaluation-logic.html: an Allow in an identity-based policy allows.
  it("allows what an Allow statement covers", () => {
    assert.equal(
      decide([allow("s3:GetObject", `${BUCKET}/*`)], {
        action: "s3:GetObject",
        resources: [`${BUCKET}/k`],
      }),
      "allow",
    );
  });

  // reference_policies_evaluation-logic.html: "An explicit deny in any policy overrides any allows."
  it("an explicit Deny beats an Allow, in the same document or another", () => {
    const deny = { Effect: "Deny", Action: "s3:*", Resource: `${BUCKET}/secret/*` };
    const req = { action: "s3:GetObject", resources: [`${BUCKET}/secret/k`] };
    assert.equal(decide([allow("s3:GetObject", `${BUCKET}/*`), deny], req), "explicit-deny");
    const two = createIamEvaluator([
      { Statement: [allow("s3:GetObject", `${BUCKET}/*`)] },
      { Statement: [deny] },
    ]);
    assert.equal(two(req).decision, "explicit-deny");
    assert.equal(two({ ...req, resources: [`${BUCKET}/public/k`] }).decision, "allow");
  });

  it("a request on several resources is allowed only when each one is", () => {
    const glue = "arn:aws:glue:us-east-1:123456789012";
    const s = [
      allow("glue:GetTable", [`${glue}:catalog`, `${glue}:database/db`, `${glue}:table/db/t`]),
    ];
    const on = (table: string) => ({
      action: "glue:GetTable",
      resources: [`${glue}:catalog`, `${glue}:database/db`, `${glue}:table/db/${table}`],
    });
    assert.equal(decide(s, on("t")), "allow");
    assert.equal(decide(s, on("other")), "implicit-deny");
  });
});

describe("IAM policy evaluator: Action and NotAction", () => {
  // reference_policies_elements_action.html: action names are case-insensitive; * and ? wildcards.
  it("matches action names case-insensitively, with * and ?", () => {
    const req = { action: "logs:PutLogEvents", resources: [`${GROUP}:log-stream:s`] };
    assert.equal(decide([allow("LOGS:putlogevents", "*")], req), "allow");
    assert.equal(decide([allow("logs:Put*", "*")], req), "allow");
    assert.equal(decide([allow("logs:?utLogEvents", "*")], req), "allow");
    assert.equal(decide([allow("logs:Create*", "*")], req), "implicit-deny");
  });

  // reference_policies_elements_notaction.html: an Allow with NotAction allows every other action.
  it("NotAction in an Allow covers every action but the listed ones", () => {
    const s = [{ Effect: "Allow", NotAction: "iam:*", Resource: "*" }];
    assert.equal(decide(s, { action: "s3:GetObject", resources: [`${BUCKET}/k`] }), "allow");
    assert.equal(decide(s, { action: "iam:PassRole", resources: ["*"] }), "implicit-deny");
  });
});

describe("IAM policy evaluator: Resource and NotResource", () => {
  // reference_policies_elements_resource.html: * matches any combination of characters, ? one.
  it("matches resources with * (across : and /) and ?", () => {
    const stream = `${GROUP}:log-stream:2026/12/07/[$LATEST]abc`;
    assert.equal(
      decide([allow("logs:PutLogEvents", `${GROUP}:*`)], {
        action: "logs:PutLogEvents",
        resources: [stream],
      }),
      "allow",
    );
    assert.equal(
      decide([allow("s3:GetObject", `${BUCKET}/k?`)], {
        action: "s3:GetObject",
        resources: [`${BUCKET}/k1`],
      }),
      "allow",
    );
    assert.equal(
      decide([allow("s3:GetObject", `${BUCKET}/k?`)], {
        action: "s3:GetObject",
        resources: [`${BUCKET}/k12`],
      }),
      "implicit-deny",
    );
  });

  // The CloudWatch Logs group-level form: a grant on the group's ARN without `:*` does not cover
  // the ARN with it (iam-access-control-overview-cwl.html), since a resource must match whole.
  it("a log group's ARN without the trailing :* does not cover the :* form", () => {
    const req = { action: "logs:CreateLogStream", resources: [`${GROUP}:*`] };
    assert.equal(decide([allow("logs:CreateLogStream", GROUP)], req), "implicit-deny");
    assert.equal(decide([allow("logs:CreateLogStream", `${GROUP}:*`)], req), "allow");
    assert.equal(
      decide([allow("logs:CreateLogStream", `${GROUP}:*`)], {
        ...req,
        resources: [`${GROUP}-other:*`],
      }),
      "implicit-deny",
    );
  });

  // reference_policies_elements_resource.html / reference-arns.html: resource ARNs are case-sensitive.
  it("matches resources case-sensitively", () => {
    assert.equal(
      decide([allow("s3:GetObject", `${BUCKET}/Key`)], {
        action: "s3:GetObject",
        resources: [`${BUCKET}/key`],
      }),
      "implicit-deny",
    );
  });

  // reference_policies_elements_notresource.html: an Allow with NotResource covers every other resource.
  it("NotResource in an Allow covers every resource but the listed ones", () => {
    const s = [{ Effect: "Allow", Action: "s3:GetObject", NotResource: `${BUCKET}/private/*` }];
    assert.equal(decide(s, { action: "s3:GetObject", resources: [`${BUCKET}/k`] }), "allow");
    assert.equal(
      decide(s, { action: "s3:GetObject", resources: [`${BUCKET}/private/k`] }),
      "implicit-deny",
    );
  });
});

describe("IAM policy evaluator: Condition", () => {
  const kms = "arn:aws:kms:us-east-1:123456789012:key/k";
  const viaS3 = allow("kms:GenerateDataKey", kms, {
    Condition: {
      StringEquals: { "kms:ViaService": "s3.us-east-1.amazonaws.com" },
      StringLike: { "kms:EncryptionContext:aws:s3:arn": `${BUCKET}*` },
    },
  });
  const req = (context: Record<string, string>) => ({
    action: "kms:GenerateDataKey",
    resources: [kms],
    context,
  });

  // reference_policies_elements_condition.html: every condition of a statement must hold.
  it("holds only when every operator's key matches", () => {
    const ok = {
      "kms:ViaService": "s3.us-east-1.amazonaws.com",
      "kms:EncryptionContext:aws:s3:arn": BUCKET,
    };
    assert.equal(decide([viaS3], req(ok)), "allow");
    assert.equal(
      decide([viaS3], req({ ...ok, "kms:EncryptionContext:aws:s3:arn": "arn:aws:s3:::other" })),
      "implicit-deny",
    );
    assert.equal(
      decide([viaS3], req({ ...ok, "kms:ViaService": "s3.eu-west-1.amazonaws.com" })),
      "implicit-deny",
    );
  });

  // reference_policies_elements_condition.html: condition key names are not case-sensitive.
  it("compares condition key names case-insensitively", () => {
    assert.equal(
      decide(
        [viaS3],
        req({
          "KMS:VIASERVICE": "s3.us-east-1.amazonaws.com",
          "kms:encryptioncontext:aws:s3:arn": BUCKET,
        }),
      ),
      "allow",
    );
  });

  // reference_policies_elements_condition_operators.html: a key absent from the request fails a
  // positive operator; IfExists and the negated operators hold.
  it("treats an absent key as IAM does: false, true with IfExists or a negated operator", () => {
    const on = (Condition: object) => [allow("kms:Decrypt", kms, { Condition })];
    const r = { action: "kms:Decrypt", resources: [kms], context: {} };
    assert.equal(decide(on({ StringEquals: { "kms:ViaService": "x" } }), r), "implicit-deny");
    assert.equal(decide(on({ StringEqualsIfExists: { "kms:ViaService": "x" } }), r), "allow");
    assert.equal(decide(on({ StringNotEquals: { "kms:ViaService": "x" } }), r), "allow");
    assert.equal(decide(on({ Null: { "kms:ViaService": "true" } }), r), "allow");
    assert.equal(decide(on({ Null: { "kms:ViaService": "false" } }), r), "implicit-deny");
  });

  // reference_policies_elements_condition_operators.html (ARN operators): each part matched on its own.
  it("ArnLike matches ARNs part by part with wildcards", () => {
    const s = [
      allow("sts:AssumeRole", "*", {
        Condition: { ArnLike: { "aws:SourceArn": "arn:aws:iot:*:123456789012:rule/*" } },
      }),
    ];
    const r = (arn: string) => ({
      action: "sts:AssumeRole",
      resources: ["*"],
      context: { "aws:SourceArn": arn },
    });
    assert.equal(decide(s, r("arn:aws:iot:us-east-1:123456789012:rule/sensor_rule")), "allow");
    assert.equal(
      decide(s, r("arn:aws:iot:us-east-1:210987654321:rule/sensor_rule")),
      "implicit-deny",
    );
  });

  // reference_policies_elements_condition_operators.html: the same operators as the IoT evaluator
  // (core/iot-policy/conditions.ts), numeric ones included.
  it("shares the IoT evaluator's operators: NumericLessThan, IpAddress, Bool", () => {
    const on = (Condition: object, context: Record<string, string>) =>
      decide([allow("s3:ListBucket", BUCKET, { Condition })], {
        action: "s3:ListBucket",
        resources: [BUCKET],
        context,
      });
    assert.equal(on({ NumericLessThan: { "s3:max-keys": "10" } }, { "s3:max-keys": "5" }), "allow");
    assert.equal(
      on({ NumericLessThan: { "s3:max-keys": "10" } }, { "s3:max-keys": "50" }),
      "implicit-deny",
    );
    assert.equal(
      on({ IpAddress: { "aws:SourceIp": "10.0.0.0/8" } }, { "aws:SourceIp": "10.1.2.3" }),
      "allow",
    );
    assert.equal(
      on({ Bool: { "aws:SecureTransport": "true" } }, { "aws:SecureTransport": "false" }),
      "implicit-deny",
    );
  });

  // Fail closed: an operator it does not know, or a policy variable, is an error, never a guess.
  it("refuses unknown operators and policy variables rather than guess", () => {
    const on = (Condition: object) => () =>
      createIamEvaluator([{ Statement: [allow("kms:Decrypt", kms, { Condition })] }]);
    assert.throws(on({ StringEqualsMaybe: { "kms:ViaService": "x" } }), PolicyDocumentError);
    assert.throws(on({ BinaryEquals: { "kms:ViaService": "eA==" } }), /not supported/);
    assert.throws(on({ StringEquals: { "kms:ViaService": "${aws:username}" } }), /policy variable/);
    assert.throws(
      () =>
        createIamEvaluator([
          { Statement: [allow("s3:GetObject", `${BUCKET}/\${aws:username}/*`)] },
        ]),
      /policy variable/,
    );
    assert.throws(
      () => createIamEvaluator([{ Statement: [{ Effect: "Allow", Action: "s3:GetObject" }] }]),
      /Resource/,
    );
  });
});
