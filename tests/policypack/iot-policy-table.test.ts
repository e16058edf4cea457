// The IoT-policy rules on a table of documents: AWS's own least-privilege examples pass; each
// Device Defender failure shape fails with the rule that names it.
import * as assert from "node:assert/strict";
import { leastPrivilegePolicy, tutorialPolicy } from "../../core/iot-policy/policy";
import { ARN, CTX, res, violations } from "./helpers";

const TN = "${iot:Connection.Thing.ThingName}";
const attached = { Bool: { "iot:Connection.Thing.IsAttached": "true" } };
const doc = (...Statement: object[]) => ({ Version: "2012-10-17", Statement });
const allow = (Action: unknown, Resource: unknown, extra: object = {}) => ({
  Effect: "Allow",
  Action,
  Resource,
  ...extra,
});

type Rule =
  | "iot-policy-no-allow-all"
  | "iot-policy-overly-permissive"
  | "iot-policy-misconfigured"
  | "iot-policy-shadow-own-thing-only";

const ALL_DATA_PLANE = [
  "iot:Connect",
  "iot:Publish",
  "iot:RetainPublish",
  "iot:Receive",
  "iot:Subscribe",
  "iot:GetThingShadow",
  "iot:UpdateThingShadow",
  "iot:DeleteThingShadow",
];

const TABLE: { name: string; doc: unknown; fails: Rule[] }[] = [
  // --- AWS's least-privilege examples and this project's documents: no finding ---------------
  {
    name: "the project's least-privilege policy, per-thing topic",
    doc: leastPrivilegePolicy(CTX, "SeattleStoreTemp/{thing}"),
    fails: [],
  },
  {
    name: "the project's least-privilege policy, fixed topic",
    doc: leastPrivilegePolicy(CTX, "SeattleStoreTemp/1"),
    fails: [],
  },
  {
    name: "AWS thing example: Connect on * only when the certificate is attached",
    doc: doc(
      allow(["iot:Connect"], ["*"], {
        Condition: { Bool: { "iot:Connection.Thing.IsAttached": ["true"] } },
      }),
    ),
    fails: [],
  },
  {
    name: "AWS thing example: Publish on one topic with type and attribute conditions",
    doc: doc(
      allow(["iot:Publish"], `${ARN}:topic/device/stats`, {
        Condition: {
          StringEquals: { "iot:Connection.Thing.Attributes[attributeName]": "attributeValue" },
          ...attached,
        },
      }),
    ),
    fails: [],
  },
  {
    name: "AWS thing example: Publish under the thing's attribute",
    doc: doc(
      allow(["iot:Publish"], `${ARN}:topic/\${iot:Connection.Thing.Attributes[attributeName]}/*`),
    ),
    fails: [],
  },
  {
    name: "AWS connect example: deny two ids, allow the attached thing",
    doc: doc(
      {
        Effect: "Deny",
        Action: ["iot:Connect"],
        Resource: [`${ARN}:client/client1`, `${ARN}:client/client2`],
      },
      allow(["iot:Connect"], [`${ARN}:client/${TN}`], { Condition: attached }),
    ),
    fails: [],
  },
  {
    name: "AWS connect example for an unregistered device: one client id",
    doc: doc(allow(["iot:Connect"], [`${ARN}:client/client1`])),
    fails: [],
  },
  {
    name: "AWS shadow example: own shadow topics only",
    doc: doc(
      allow("iot:Publish", `${ARN}:topic/$aws/things/${TN}/shadow/update`),
      allow("iot:Subscribe", `${ARN}:topicfilter/$aws/things/${TN}/shadow/update/accepted`),
      allow("iot:Receive", `${ARN}:topic/$aws/things/${TN}/shadow/update/accepted`),
    ),
    fails: [],
  },
  {
    name: "AWS jobs example: own jobs topics only",
    doc: doc(
      allow(
        ["iot:Publish", "iot:Receive"],
        [
          `${ARN}:topic/$aws/things/${TN}/jobs/get`,
          `${ARN}:topic/$aws/things/${TN}/jobs/get/accepted`,
        ],
      ),
      allow("iot:Subscribe", `${ARN}:topicfilter/$aws/things/${TN}/jobs/notify`),
    ),
    fails: [],
  },
  {
    name: "AWS wildcard example: one topic level with *",
    doc: doc(allow("iot:Subscribe", `${ARN}:topicfilter/some/*/topic`)),
    fails: [],
  },
  {
    name: "shadow API actions on the thing's own thing ARN",
    doc: doc(allow(["iot:GetThingShadow", "iot:UpdateThingShadow"], `${ARN}:thing/${TN}`)),
    fails: [],
  },
  {
    name: "Connect as ${iot:ClientId} with the IsAttached condition",
    doc: doc(allow("iot:Connect", `${ARN}:client/\${iot:ClientId}`, { Condition: attached })),
    fails: [],
  },
  {
    name: "a Deny that uses the policy wildcard * correctly",
    doc: doc(allow("iot:Publish", `${ARN}:topic/sensors/${TN}`), {
      Effect: "Deny",
      Action: "iot:Publish",
      Resource: `${ARN}:topic/sensors/admin/*`,
    }),
    fails: [],
  },
  // --- iot:* on *: the headline rule (and only it, so one statement is reported once) ------
  {
    name: "the seed's tutorial policy, iot:* on *",
    doc: tutorialPolicy(),
    fails: ["iot-policy-no-allow-all"],
  },
  { name: "* on *", doc: doc(allow("*", "*")), fails: ["iot-policy-no-allow-all"] },
  {
    name: "IOT:* (any case) on every ARN of the account",
    doc: doc(allow(["IOT:*"], [`${ARN}:*`])),
    fails: ["iot-policy-no-allow-all"],
  },
  {
    name: "NotAction with a small exclusion on *",
    doc: doc({ Effect: "Allow", NotAction: "iot:DeleteThing", Resource: "*" }),
    fails: ["iot-policy-no-allow-all"],
  },
  {
    name: "iot:* on * hidden among good statements (JSON text)",
    doc: JSON.stringify(
      doc(
        allow("iot:Connect", `${ARN}:client/${TN}`, { Condition: attached }),
        allow("iot:*", "*"),
      ),
    ),
    fails: ["iot-policy-no-allow-all"],
  },
  // --- Device Defender's overly permissive shapes ------------------------------------------
  {
    name: "Connect on client/*",
    doc: doc(allow("iot:Connect", `${ARN}:client/*`)),
    fails: ["iot-policy-overly-permissive"],
  },
  {
    name: "Connect on client/${iot:ClientId} without IsAttached",
    doc: doc(allow("iot:Connect", `${ARN}:client/\${iot:ClientId}`)),
    fails: ["iot-policy-overly-permissive"],
  },
  {
    name: "Connect on * without IsAttached",
    doc: doc(allow("iot:Connect", "*")),
    fails: ["iot-policy-overly-permissive"],
  },
  {
    name: "Publish on *",
    doc: doc(allow("iot:Publish", "*")),
    fails: ["iot-policy-overly-permissive", "iot-policy-shadow-own-thing-only"],
  },
  {
    name: "Publish on topic/*",
    doc: doc(allow("iot:Publish", `${ARN}:topic/*`)),
    fails: ["iot-policy-overly-permissive", "iot-policy-shadow-own-thing-only"],
  },
  {
    name: "Subscribe on topicfilter/*",
    doc: doc(allow("iot:Subscribe", `${ARN}:topicfilter/*`)),
    fails: ["iot-policy-overly-permissive", "iot-policy-shadow-own-thing-only"],
  },
  {
    // Device Defender: broad Receive alone is compliant, a device receives only what it may
    // subscribe to (audit-chk-iot-policy-permissive.html, "Receive").
    name: "Receive on topic/* alone (any case, action wildcard iot:Rec*)",
    doc: doc(allow("iot:rec*", `${ARN}:topic/*`)),
    fails: [],
  },
  {
    name: "Receive on topic/* with Subscribe on topicfilter/#",
    doc: doc(allow("iot:rec*", `${ARN}:topic/*`), allow("iot:Subscribe", `${ARN}:topicfilter/#`)),
    fails: ["iot-policy-overly-permissive"],
  },
  {
    name: "Publish on other things' reserved topics $aws/things/*",
    doc: doc(allow("iot:Publish", `${ARN}:topic/$aws/things/*`)),
    fails: ["iot-policy-overly-permissive", "iot-policy-shadow-own-thing-only"],
  },
  {
    name: "Subscribe to every thing's shadow acceptances",
    doc: doc(allow("iot:Subscribe", `${ARN}:topicfilter/$aws/things/*/shadow/update/accepted`)),
    fails: ["iot-policy-overly-permissive", "iot-policy-shadow-own-thing-only"],
  },
  {
    name: "UpdateThingShadow on thing/*",
    doc: doc(allow("iot:UpdateThingShadow", `${ARN}:thing/*`)),
    fails: ["iot-policy-overly-permissive", "iot-policy-shadow-own-thing-only"],
  },
  {
    name: "every data-plane action listed on *",
    doc: doc(allow(ALL_DATA_PLANE, "*")),
    fails: ["iot-policy-overly-permissive", "iot-policy-shadow-own-thing-only"],
  },
  {
    name: "iot:* on every topic in any region and account",
    doc: doc(allow("iot:*", "arn:aws:iot:*:*:topic/*")),
    fails: ["iot-policy-overly-permissive", "iot-policy-shadow-own-thing-only"],
  },
  {
    name: "Publish on topic/* of another account",
    doc: doc(allow("iot:Publish", "arn:aws:iot:eu-west-1:999999999999:topic/*")),
    fails: ["iot-policy-overly-permissive", "iot-policy-shadow-own-thing-only"],
  },
  {
    name: "Allow with NotAction on the device's topic",
    doc: doc({ Effect: "Allow", NotAction: "iot:Connect", Resource: `${ARN}:topic/sensors/${TN}` }),
    fails: ["iot-policy-overly-permissive"],
  },
  {
    name: "Allow with NotResource",
    doc: doc({ Effect: "Allow", Action: "iot:Publish", NotResource: `${ARN}:topic/admin` }),
    fails: ["iot-policy-overly-permissive", "iot-policy-shadow-own-thing-only"],
  },
  {
    name: "one broad resource in an otherwise scoped list",
    doc: doc(allow("iot:Publish", [`${ARN}:topic/sensors/${TN}`, `${ARN}:topic/*`])),
    fails: ["iot-policy-overly-permissive", "iot-policy-shadow-own-thing-only"],
  },
  // --- Device Defender's potential misconfiguration: + or # in a Deny ----------------------
  {
    name: "Deny on topicfilter/a/# (the # is literal)",
    doc: doc(allow("iot:Subscribe", `${ARN}:topicfilter/a/${TN}`), {
      Effect: "Deny",
      Action: "iot:Subscribe",
      Resource: `${ARN}:topicfilter/a/#`,
    }),
    fails: ["iot-policy-misconfigured"],
  },
  {
    name: "Deny on topic/+/admin (the + is literal)",
    doc: doc({
      Effect: "Deny",
      Action: ["iot:Publish", "iot:Receive"],
      Resource: [`${ARN}:topic/+/admin`],
    }),
    fails: ["iot-policy-misconfigured"],
  },
];

describe("IoT policy rules on a table of documents", () => {
  it("has at least 25 documents, passing and failing", () => {
    assert.ok(TABLE.length >= 25, `${TABLE.length} documents`);
    assert.ok(TABLE.filter((t) => t.fails.length === 0).length >= 10);
  });

  for (const row of TABLE) {
    const verdict = row.fails.length === 0 ? "passes" : `fails ${row.fails.join(", ")}`;
    it(`${row.name}: ${verdict}`, async () => {
      const policy = typeof row.doc === "string" ? row.doc : JSON.stringify(row.doc);
      const vs = await violations([res("aws:iot/policy:Policy", "p", { name: "p", policy })]);
      const got = [...new Set(vs.map((v) => v.policy))].sort();
      assert.deepEqual(got, [...row.fails].sort(), vs.map((v) => v.message).join("\n"));
      for (const v of vs) {
        assert.match(v.message, /^IoT policy p: statement \d+/, "the message names the statement");
      }
    });
  }
});
