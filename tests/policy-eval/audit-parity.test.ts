// Device Defender parity of the preview-time audit (core/iot-policy/policy-audit.ts): the compliant and
// noncompliant resources of the "IoT policies overly permissive" and "IoT policy potentially
// misconfigured" check pages, read through the one parser.
import { strict as assert } from "node:assert";
import { auditIotPolicy, wildcardFiltersFor } from "../../core/iot-policy/policy-audit";

const PERMISSIVE =
  "https://docs.aws.amazon.com/iot/latest/developerguide/audit-chk-iot-policy-permissive.html";
const MISCONFIGURED =
  "https://docs.aws.amazon.com/iot-device-defender/latest/devguide/audit-chk-iot-misconfigured-policies.html";

const A = "arn:aws:iot:us-east-1:111122223333";
const TN = "${iot:Connection.Thing.ThingName}";
const doc = (...Statement: object[]) => ({ Version: "2012-10-17", Statement });
const allow = (Action: unknown, Resource: unknown, Condition?: object) => ({
  Effect: "Allow",
  Action,
  Resource,
  ...(Condition ? { Condition } : {}),
});
const deny = (Action: unknown, Resource: unknown) => ({ Effect: "Deny", Action, Resource });

type Rule = "overlyPermissive" | "misconfigured";

/** [what, page, document, rule flagged or none, the message's distinctive part] */
const TABLE: Array<[string, string, unknown, Rule | "none", RegExp?]> = [
  [
    "Connect on client/*",
    PERMISSIVE,
    doc(allow("iot:Connect", `${A}:client/*`)),
    "overlyPermissive",
    /any client id can connect/,
  ],
  [
    "Connect on client/${iot:ClientId} without IsAttached",
    PERMISSIVE,
    doc(allow("iot:Connect", `${A}:client/\${iot:ClientId}`)),
    "overlyPermissive",
  ],
  [
    "the compliant Connect: client/<thing name> with IsAttached",
    PERMISSIVE,
    doc(
      allow(["iot:Connect"], [`${A}:client/${TN}`], {
        Bool: { "iot:Connection.Thing.IsAttached": "true" },
      }),
    ),
    "none",
  ],
  [
    "Publish on every thing's shadow update",
    PERMISSIVE,
    doc(allow("iot:Publish", `${A}:topic/$aws/things/*/shadow/update`)),
    "overlyPermissive",
    /other things' reserved topics/,
  ],
  [
    "Publish on $aws/things/*",
    PERMISSIVE,
    doc(allow("iot:Publish", `${A}:topic/$aws/things/*`)),
    "overlyPermissive",
  ],
  [
    "the compliant Publish: the thing's own shadow topics",
    PERMISSIVE,
    doc(allow(["iot:Publish"], [`${A}:topic/$aws/things/${TN}/shadow/*`])),
    "none",
  ],
  [
    "Subscribe on topicfilter/$aws/things/*",
    PERMISSIVE,
    doc(allow("iot:Subscribe", `${A}:topicfilter/$aws/things/*`)),
    "overlyPermissive",
  ],
  [
    "Subscribe on topicfilter/$aws/things/# (the page's # example; # is literal in a policy)",
    PERMISSIVE,
    doc(allow("iot:Subscribe", `${A}:topicfilter/$aws/things/#`)),
    "overlyPermissive",
    /\+ and # are literal in a policy, so this allows that very MQTT filter/,
  ],
  [
    "Subscribe on topicfilter/$aws/things/+/shadow/update (the page's + example)",
    PERMISSIVE,
    doc(allow("iot:Subscribe", `${A}:topicfilter/$aws/things/+/shadow/update`)),
    "overlyPermissive",
    /reaches other things' reserved topics .*\+ and # are literal/,
  ],
  [
    "the compliant Subscribe: the thing's own shadow and job topics",
    PERMISSIVE,
    doc(
      allow(
        ["iot:Subscribe"],
        [
          `${A}:topicfilter/$aws/things/${TN}/shadow/*`,
          `${A}:topicfilter/$aws/things/${TN}/jobs/*`,
        ],
      ),
    ),
    "none",
  ],
  [
    "the compliant Receive: topic/$aws/things/* alone (a device receives only what it may subscribe to)",
    PERMISSIVE,
    doc(allow("iot:Receive", `${A}:topic/$aws/things/*`)),
    "none",
  ],
  ["Receive on topic/* alone", PERMISSIVE, doc(allow("iot:Receive", `${A}:topic/*`)), "none"],
  [
    "broad Receive with a subscribe to every thing's shadow: flagged with it",
    PERMISSIVE,
    doc(
      allow("iot:Receive", `${A}:topic/$aws/things/*`),
      allow("iot:Subscribe", `${A}:topicfilter/$aws/things/+/shadow/update`),
    ),
    "overlyPermissive",
    /allows iot:Receive on .*and statement 1 allows iot:Subscribe on .*, so it receives them/,
  ],
  [
    "Subscribe on topicfilter/# (every topic, # literal)",
    PERMISSIVE,
    doc(allow("iot:Subscribe", `${A}:topicfilter/#`)),
    "overlyPermissive",
    /reaches every topic of the account \(\+ and # are literal/,
  ],
  [
    "Subscribe on topicfilter/sensors/+/temperature (not reserved, not everything)",
    PERMISSIVE,
    doc(allow("iot:Subscribe", `${A}:topicfilter/sensors/+/temperature`)),
    "none",
  ],
  [
    "shadow actions on thing/*",
    PERMISSIVE,
    doc(allow("iot:UpdateThingShadow", `${A}:thing/*`)),
    "overlyPermissive",
  ],
  [
    "the compliant shadow and job actions on two things",
    PERMISSIVE,
    doc(
      allow(
        [
          "iot:DeleteThingShadow",
          "iot:GetThingShadow",
          "iot:UpdateThingShadow",
          "iot:DescribeJobExecution",
          "iot:GetPendingJobExecutions",
          "iot:StartNextPendingJobExecution",
          "iot:UpdateJobExecution",
        ],
        [`${A}:thing/MyThing1`, `${A}:thing/MyThing2`],
      ),
    ),
    "none",
  ],
  [
    "MQTT wildcard in a Deny (POLICY_CONTAINS_MQTT_WILDCARDS_IN_DENY_STATEMENT)",
    MISCONFIGURED,
    doc(
      allow("iot:Subscribe", `${A}:topicfilter/building/*`),
      deny("iot:Subscribe", `${A}:topicfilter/building/control_room/#`),
      allow("iot:Receive", `${A}:topic/building/*`),
    ),
    "misconfigured",
    /\+ and # are literal characters in an IoT policy/,
  ],
  [
    "a Deny walked around by an allowed wildcard filter (TOPIC_FILTERS_INTENDED_TO_DENY_ALLOWED_USING_WILDCARDS)",
    MISCONFIGURED,
    doc(
      allow("iot:Subscribe", `${A}:topicfilter/building/*`),
      deny("iot:Subscribe", `${A}:topicfilter/building/control_room/*`),
      allow("iot:Receive", `${A}:topic/building/*`),
    ),
    "misconfigured",
    /denies iot:Subscribe on .*building\/control_room\/\*, but the policy allows subscribing to the MQTT filter .*#.*deny iot:Receive on .*topic\/building\/control_room\/\*/,
  ],
  [
    "the correctly configured policy: Receive denied as well",
    MISCONFIGURED,
    doc(
      allow("iot:Subscribe", `${A}:topicfilter/building/*`),
      deny(["iot:Subscribe"], `${A}:topicfilter/building/control_room/*`),
      allow("iot:Receive", `${A}:topic/building/*`),
      deny("iot:Receive", `${A}:topic/building/control_room/*`),
    ),
    "none",
  ],
];

describe("Device Defender parity of the IoT policy audit", () => {
  for (const [what, page, d, rule, message] of TABLE) {
    it(`${what}: ${rule === "none" ? "no finding" : rule} (${page.split("/").pop()})`, () => {
      const got = auditIotPolicy(d);
      const flagged = (["overlyPermissive", "misconfigured"] as const).filter(
        (r) => got[r].length > 0,
      );
      assert.deepEqual(got.allowAll, [], "no allow-all finding");
      assert.deepEqual(
        flagged,
        rule === "none" ? [] : [rule],
        [...got.overlyPermissive, ...got.misconfigured].map((f) => f.message).join("\n"),
      );
      if (message && rule !== "none") {
        assert.ok(
          got[rule].some((f) => message.test(f.message)),
          got[rule].map((f) => f.message).join("\n"),
        );
      }
    });
  }

  it("lists the MQTT filters that match a topic, without a leading wildcard on $ topics", () => {
    const filters = wildcardFiltersFor("$aws/things/x/shadow");
    for (const f of [
      "$aws/#",
      "$aws/things/+/shadow",
      "$aws/things/#",
      "$aws/+/x/#",
      "$aws/things/x/shadow/#",
    ]) {
      assert.ok(filters.includes(f), f);
    }
    for (const f of ["#", "+/things/x/shadow", "$aws/things/x/shadow"])
      assert.ok(!filters.includes(f), f);
    assert.ok(wildcardFiltersFor("a/b").includes("#"));
  });
});
