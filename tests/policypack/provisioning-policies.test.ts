// Policies 13-16 (fleet provisioning): one happy-path stack, one field changed per test, the exact
// violation (or none) asserted.
import { strict as assert } from "node:assert";
import { claimPolicy } from "../../core/provisioning/claim-policy";
import { provisioningTemplateBody } from "../../core/provisioning/template";
import { CTX, lines, res, violations, type Res } from "./helpers";

const T = {
  policy: "aws:iot/policy:Policy",
  cert: "aws:iot/certificate:Certificate",
  attach: "aws:iot/policyAttachment:PolicyAttachment",
  thingAttach: "aws:iot/thingPrincipalAttachment:ThingPrincipalAttachment",
  template: "aws:iot/provisioningTemplate:ProvisioningTemplate",
  role: "aws:iam/role:Role",
  roleAttach: "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
};
const REGISTRATION = "arn:aws:iam::aws:policy/service-role/AWSIoTThingsRegistration";
const ROLE_ARN = "arn:aws:iam::123456789012:role/provisioning";
const SPEC = {
  thingPrefix: "store-sensor-seattle",
  thingTypeName: "sensor",
  group: "Seattle",
  attributes: { city: "Seattle" },
  policyName: "sensor-policy",
  telemetryTopic: "SeattleStoreTemp/{thing}",
};

function trust(service: string) {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Principal: { Service: service }, Action: "sts:AssumeRole" }],
  });
}

/** The fleet stack's provisioning resources, as the program registers them. */
function stack(
  over: {
    claimDoc?: object;
    body?: object;
    hook?: boolean;
    roleTrust?: string;
    managed?: string[];
    inline?: boolean;
  } = {},
): Res[] {
  const claimArn = "arn:aws:iot:us-east-1:123456789012:cert/claim";
  return [
    res(T.policy, "claim-policy", {
      name: "sensor-claim-policy",
      policy: JSON.stringify(over.claimDoc ?? claimPolicy(CTX, "sensor-fleet", false)),
    }),
    res(T.cert, "claim", { active: true, arn: claimArn, id: "claim" }),
    res(T.attach, "claim-attachment", { policy: "sensor-claim-policy", target: claimArn }),
    res(T.role, "provisioning-role", {
      name: "provisioning",
      arn: ROLE_ARN,
      assumeRolePolicy: over.roleTrust ?? trust("iot.amazonaws.com"),
    }),
    ...(over.managed ?? [REGISTRATION]).map((arn, i) =>
      res(T.roleAttach, `provisioning-role-${i}`, { role: "provisioning", policyArn: arn }),
    ),
    ...(over.inline
      ? [
          res(T.rolePolicy, "provisioning-role-policy", {
            name: "extra",
            role: "provisioning",
            policy: JSON.stringify({
              Version: "2012-10-17",
              Statement: [
                {
                  Effect: "Allow",
                  Action: ["iot:CreateThing"],
                  Resource: ["arn:aws:iot:us-east-1:123456789012:thing/x"],
                },
              ],
            }),
          }),
        ]
      : []),
    res(T.template, "template", {
      name: "sensor-fleet",
      type: "FLEET_PROVISIONING",
      provisioningRoleArn: ROLE_ARN,
      templateBody: JSON.stringify(over.body ?? provisioningTemplateBody(SPEC)),
      ...(over.hook === false
        ? {}
        : {
            preProvisioningHook: {
              targetArn: "arn:aws:lambda:us-east-1:123456789012:function:hook",
              payloadVersion: "2020-04-01",
            },
          }),
    }),
  ];
}

/** The lines of policies 13-16, and of the certificate-attachment rule that claims relax. */
const ours = (vs: string[]) =>
  vs.filter((l) =>
    /^\w+ (iot-claim-policy-provisioning-only|iam-provisioning-role|iot-provisioning-template-\S+|iot-certificate-attachments):/.test(
      l,
    ),
  );

describe("policies 13-16: fleet provisioning", () => {
  it("the program's claim policy, role, template and hook pass, and the claim needs no thing", async () => {
    assert.deepEqual(ours(lines(await violations(stack()))), []);
  });

  it("a claim policy that also allows publishing telemetry is flagged as overly permissive", async () => {
    const doc = claimPolicy(CTX, "sensor-fleet", false);
    (doc.Statement as object[]).push({
      Effect: "Allow",
      Action: "iot:Publish",
      Resource: "arn:aws:iot:us-east-1:123456789012:topic/SeattleStoreTemp/*",
    });
    assert.deepEqual(ours(lines(await violations(stack({ claimDoc: doc })))), [
      "mandatory iot-claim-policy-provisioning-only: claim policy sensor-claim-policy: statement 3 allows iot:Publish on arn:aws:iot:us-east-1:123456789012:topic/SeattleStoreTemp/*, outside the provisioning topics ($aws/certificates/create-from-csr/*, $aws/certificates/create/*, $aws/provisioning-templates/<template>/provision/*); a claim certificate must reach nothing else (IOT_POLICY_OVERLY_PERMISSIVE_CHECK)",
    ]);
  });

  it("a claim policy that subscribes to other things' shadows is flagged", async () => {
    const doc = claimPolicy(CTX, "sensor-fleet", false);
    (doc.Statement as object[]).push({
      Effect: "Allow",
      Action: "iot:Subscribe",
      Resource: "arn:aws:iot:us-east-1:123456789012:topicfilter/$aws/things/*",
    });
    const found = ours(lines(await violations(stack({ claimDoc: doc }))));
    assert.equal(found.length, 1);
    assert.match(
      found[0],
      /iot-claim-policy-provisioning-only: .*iot:Subscribe on .*topicfilter\/\$aws\/things\/\*/,
    );
  });

  it("a certificate with no thing whose policy is not a claim policy is still reported, once", async () => {
    const rs = stack({
      claimDoc: {
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Allow",
            Action: "iot:Publish",
            Resource: "arn:aws:iot:us-east-1:123456789012:topic/a",
          },
        ],
      },
    });
    const found = ours(lines(await violations(rs)));
    assert.ok(
      found.some((l) =>
        l.startsWith(
          "mandatory iot-certificate-attachments: certificate claim is attached to no thing",
        ),
      ),
      found.join("\n"),
    );
    // Not a claim: the claim policy rule leaves it to the attachments rule.
    assert.equal(found.length, 1, found.join("\n"));
  });

  it("a provisioning role with AdministratorAccess is refused", async () => {
    const found = ours(
      lines(
        await violations(
          stack({ managed: [REGISTRATION, "arn:aws:iam::aws:policy/AdministratorAccess"] }),
        ),
      ),
    );
    assert.deepEqual(found, [
      "mandatory iam-provisioning-role: provisioning role provisioning has arn:aws:iam::aws:policy/AdministratorAccess attached; a provisioning role needs only arn:aws:iam::aws:policy/service-role/AWSIoTThingsRegistration: detach it",
    ]);
  });

  it("a provisioning role trusted by another service, or with an inline grant, is refused", async () => {
    const trusted = ours(
      lines(await violations(stack({ roleTrust: trust("lambda.amazonaws.com") }))),
    );
    assert.deepEqual(trusted, [
      "mandatory iam-provisioning-role: provisioning role provisioning is trusted by lambda.amazonaws.com; trust only the iot.amazonaws.com service principal",
    ]);
    const inline = ours(lines(await violations(stack({ inline: true }))));
    assert.equal(inline.length, 1);
    assert.match(
      inline[0],
      /^mandatory iam-provisioning-role: provisioning role provisioning has the inline policy extra/,
    );
  });

  it("a template whose thing name is the device's parameter is refused", async () => {
    const body = provisioningTemplateBody(SPEC) as {
      Resources: { thing: { Properties: Record<string, unknown> } };
    };
    body.Resources.thing.Properties.ThingName = { Ref: "SerialNumber" };
    const found = ours(lines(await violations(stack({ body }))));
    assert.equal(found.length, 1);
    assert.match(
      found[0],
      /^mandatory iot-provisioning-template-thing-name: provisioning template sensor-fleet: resource thing's ThingName \{"Ref":"SerialNumber"\} starts with a value the device sends/,
    );
  });

  it("a template without a pre-provisioning hook is advisory", async () => {
    assert.deepEqual(ours(lines(await violations(stack({ hook: false })))), [
      "advisory iot-provisioning-template-hook: provisioning template sensor-fleet has no pre-provisioning hook, so any holder of the claim certificate can register any serial, or provision an already-provisioned one and connect as that thing; list the allowed serials (config iot-pipeline:provisioning.allowedSerials) or leave iot-pipeline:provisioning.allowReprovisioning false",
    ]);
  });
});
