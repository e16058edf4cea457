// Table tests of the IoT policy evaluator against the documents the program deploys and edge cases.
import { strict as assert } from "node:assert";
import {
  createEvaluator,
  describeEvaluation,
  evaluate,
  type PolicyContext,
  type PolicyDecision,
} from "../../core/iot-policy/policy-eval";
import {
  actionMatches,
  iotArn,
  leastPrivilegePolicy,
  PolicyDocumentError,
  resourceMatches,
  tutorialPolicy,
  type PolicyDocument,
} from "../../core/iot-policy/policy";

const ctx = { partition: "aws", region: "us-east-1", accountId: "000000000000" };
const arn = (r: string) => iotArn(ctx, r);

const thing1: PolicyContext = {
  clientId: "store-sensor-seattle1",
  thingName: "store-sensor-seattle1",
  isAttached: true,
  thingTypeName: "sensor",
  attributes: { city: "Seattle" },
};
const detached: PolicyContext = { ...thing1, isAttached: false };
const stranger: PolicyContext = {
  clientId: "store-sensor-seattle1",
  isAttached: false,
  attributes: {},
};
const otherId: PolicyContext = { ...thing1, clientId: "someone-else" };

const leastPrivilege = leastPrivilegePolicy(ctx, "SeattleStoreTemp/{thing}");
const basicIngest = leastPrivilegePolicy(ctx, "SeattleStoreTemp/{thing}", {
  basicIngestRule: "sensor_rule",
});

function doc(...Statement: PolicyDocument["Statement"][]): PolicyDocument {
  return { Version: "2012-10-17", Statement: Statement.flat() };
}

interface Row {
  name: string;
  docs: unknown[];
  action: string;
  resource: string;
  context?: PolicyContext;
  want: PolicyDecision;
}

const rows: Row[] = [
  // The seed's tutorial policy lets everything through.
  {
    name: "tutorial: connect",
    docs: [tutorialPolicy()],
    action: "iot:Connect",
    resource: arn("client/anyone"),
    want: "allow",
  },
  {
    name: "tutorial: publish anywhere",
    docs: [tutorialPolicy()],
    action: "iot:Publish",
    resource: arn("topic/x/y"),
    want: "allow",
  },
  {
    name: "tutorial: subscribe #",
    docs: [tutorialPolicy()],
    action: "iot:Subscribe",
    resource: arn("topicfilter/#"),
    want: "allow",
  },
  {
    name: "tutorial: even a client that is no thing",
    docs: [tutorialPolicy()],
    action: "iot:Publish",
    resource: arn("topic/a"),
    context: stranger,
    want: "allow",
  },
  // Basic Ingest (iot-basic-ingest.html: "you can specify permission for individual rules with
  // $aws/rules/rule_name/* in the policy"): the device's own topic behind its rule's prefix only.
  {
    name: "lp basic ingest: own topic through the stack's rule",
    docs: [basicIngest],
    action: "iot:Publish",
    resource: arn("topic/$aws/rules/sensor_rule/SeattleStoreTemp/store-sensor-seattle1"),
    want: "allow",
  },
  {
    name: "lp basic ingest: another thing's topic through the rule",
    docs: [basicIngest],
    action: "iot:Publish",
    resource: arn("topic/$aws/rules/sensor_rule/SeattleStoreTemp/store-sensor-seattle2"),
    want: "implicit-deny",
  },
  {
    name: "lp basic ingest: own topic through another rule",
    docs: [basicIngest],
    action: "iot:Publish",
    resource: arn("topic/$aws/rules/other_rule/SeattleStoreTemp/store-sensor-seattle1"),
    want: "implicit-deny",
  },
  {
    name: "lp basic ingest: the plain topic is no longer granted",
    docs: [basicIngest],
    action: "iot:Publish",
    resource: arn("topic/SeattleStoreTemp/store-sensor-seattle1"),
    want: "implicit-deny",
  },
  // Least privilege: connect as the attached thing, publish on its own topic only.
  {
    name: "lp: connect as own thing",
    docs: [leastPrivilege],
    action: "iot:Connect",
    resource: arn("client/store-sensor-seattle1"),
    want: "allow",
  },
  {
    name: "lp: connect when not attached",
    docs: [leastPrivilege],
    action: "iot:Connect",
    resource: arn("client/store-sensor-seattle1"),
    context: detached,
    want: "implicit-deny",
  },
  {
    name: "lp: connect with another client id (no thing variables)",
    docs: [leastPrivilege],
    action: "iot:Connect",
    resource: arn("client/someone-else"),
    context: otherId,
    want: "implicit-deny",
  },
  {
    name: "lp: connect as a client that is no thing",
    docs: [leastPrivilege],
    action: "iot:Connect",
    resource: arn("client/store-sensor-seattle1"),
    context: stranger,
    want: "implicit-deny",
  },
  {
    name: "lp: publish own topic",
    docs: [leastPrivilege],
    action: "iot:Publish",
    resource: arn("topic/SeattleStoreTemp/store-sensor-seattle1"),
    want: "allow",
  },
  {
    name: "lp: publish another thing's topic",
    docs: [leastPrivilege],
    action: "iot:Publish",
    resource: arn("topic/SeattleStoreTemp/store-sensor-seattle2"),
    want: "implicit-deny",
  },
  {
    name: "lp: publish outside (probe)",
    docs: [leastPrivilege],
    action: "iot:Publish",
    resource: arn("topic/SeattleStoreTemp/probe-outside"),
    want: "implicit-deny",
  },
  {
    name: "lp: subscribe not granted",
    docs: [leastPrivilege],
    action: "iot:Subscribe",
    resource: arn("topicfilter/SeattleStoreTemp/store-sensor-seattle1"),
    want: "implicit-deny",
  },
  {
    name: "lp: receive not granted",
    docs: [leastPrivilege],
    action: "iot:Receive",
    resource: arn("topic/SeattleStoreTemp/store-sensor-seattle1"),
    want: "implicit-deny",
  },
  {
    name: "lp: another region's ARN",
    docs: [leastPrivilege],
    action: "iot:Publish",
    resource: "arn:aws:iot:eu-west-1:000000000000:topic/SeattleStoreTemp/store-sensor-seattle1",
    want: "implicit-deny",
  },
  // Deny precedence, in either order and across documents.
  {
    name: "deny after allow wins",
    docs: [
      doc([
        { Effect: "Allow", Action: "iot:*", Resource: "*" },
        { Effect: "Deny", Action: "iot:Publish", Resource: arn("topic/secret") },
      ]),
    ],
    action: "iot:Publish",
    resource: arn("topic/secret"),
    want: "explicit-deny",
  },
  {
    name: "deny before allow wins",
    docs: [
      doc([
        { Effect: "Deny", Action: "iot:Publish", Resource: arn("topic/secret") },
        { Effect: "Allow", Action: "iot:*", Resource: "*" },
      ]),
    ],
    action: "iot:Publish",
    resource: arn("topic/secret"),
    want: "explicit-deny",
  },
  {
    name: "deny in another document wins",
    docs: [tutorialPolicy(), doc([{ Effect: "Deny", Action: "iot:Connect", Resource: "*" }])],
    action: "iot:Connect",
    resource: arn("client/x"),
    want: "explicit-deny",
  },
  {
    name: "deny elsewhere leaves the allow",
    docs: [
      doc([
        { Effect: "Allow", Action: "iot:*", Resource: "*" },
        { Effect: "Deny", Action: "iot:Publish", Resource: arn("topic/secret") },
      ]),
    ],
    action: "iot:Publish",
    resource: arn("topic/public"),
    want: "allow",
  },
  // Wildcards: * across slashes, ? exactly one character, MQTT + and # literal.
  {
    name: "* crosses slashes",
    docs: [doc({ Effect: "Allow", Action: "iot:Publish", Resource: arn("topic/a/*") })],
    action: "iot:Publish",
    resource: arn("topic/a/b/c"),
    want: "allow",
  },
  {
    name: "? one character",
    docs: [doc({ Effect: "Allow", Action: "iot:Publish", Resource: arn("topic/room?") })],
    action: "iot:Publish",
    resource: arn("topic/room7"),
    want: "allow",
  },
  {
    name: "? not two characters",
    docs: [doc({ Effect: "Allow", Action: "iot:Publish", Resource: arn("topic/room?") })],
    action: "iot:Publish",
    resource: arn("topic/room17"),
    want: "implicit-deny",
  },
  {
    name: "MQTT # is literal in a resource",
    docs: [doc({ Effect: "Allow", Action: "iot:Publish", Resource: arn("topic/a/#") })],
    action: "iot:Publish",
    resource: arn("topic/a/b"),
    want: "implicit-deny",
  },
  {
    name: "MQTT + is literal in a resource",
    docs: [doc({ Effect: "Allow", Action: "iot:Publish", Resource: arn("topic/a/+") })],
    action: "iot:Publish",
    resource: arn("topic/a/b"),
    want: "implicit-deny",
  },
  {
    name: "a Deny on topicfilter/a/# does not deny the filter a/b",
    docs: [
      tutorialPolicy(),
      doc({ Effect: "Deny", Action: "iot:Subscribe", Resource: arn("topicfilter/a/#") }),
    ],
    action: "iot:Subscribe",
    resource: arn("topicfilter/a/b"),
    want: "allow",
  },
  {
    name: "a Deny on topicfilter/a/# denies exactly that filter",
    docs: [
      tutorialPolicy(),
      doc({ Effect: "Deny", Action: "iot:Subscribe", Resource: arn("topicfilter/a/#") }),
    ],
    action: "iot:Subscribe",
    resource: arn("topicfilter/a/#"),
    want: "explicit-deny",
  },
  {
    name: "action wildcard iot:Pub*",
    docs: [doc({ Effect: "Allow", Action: "iot:Pub*", Resource: "*" })],
    action: "iot:Publish",
    resource: arn("topic/a"),
    want: "allow",
  },
  {
    name: "actions are case-insensitive",
    docs: [doc({ Effect: "Allow", Action: "IOT:publish", Resource: "*" })],
    action: "iot:Publish",
    resource: arn("topic/a"),
    want: "allow",
  },
  // Variables.
  {
    name: "${iot:ClientId} in a resource",
    docs: [
      doc({ Effect: "Allow", Action: "iot:Publish", Resource: arn("topic/${iot:ClientId}/data") }),
    ],
    action: "iot:Publish",
    resource: arn("topic/store-sensor-seattle1/data"),
    want: "allow",
  },
  {
    name: "thing attribute variable",
    docs: [
      doc({
        Effect: "Allow",
        Action: "iot:Publish",
        Resource: arn("topic/${iot:Connection.Thing.Attributes[city]}/*"),
      }),
    ],
    action: "iot:Publish",
    resource: arn("topic/Seattle/x"),
    want: "allow",
  },
  {
    name: "missing attribute leaves the resource unmatched",
    docs: [
      doc({
        Effect: "Allow",
        Action: "iot:Publish",
        Resource: arn("topic/${iot:Connection.Thing.Attributes[floor]}*"),
      }),
    ],
    action: "iot:Publish",
    resource: arn("topic/x"),
    want: "implicit-deny",
  },
  {
    name: "thing type variable",
    docs: [
      doc({
        Effect: "Allow",
        Action: "iot:Publish",
        Resource: arn("topic/${iot:Connection.Thing.ThingTypeName}"),
      }),
    ],
    action: "iot:Publish",
    resource: arn("topic/sensor"),
    want: "allow",
  },
  {
    name: "a client id holding * is no wildcard",
    docs: [doc({ Effect: "Allow", Action: "iot:Publish", Resource: arn("topic/${iot:ClientId}") })],
    action: "iot:Publish",
    resource: arn("topic/anything"),
    context: { ...stranger, clientId: "*" },
    want: "implicit-deny",
  },
  // Conditions.
  {
    name: "StringEquals on an attribute",
    docs: [
      doc({
        Effect: "Allow",
        Action: "iot:Publish",
        Resource: "*",
        Condition: { StringEquals: { "iot:Connection.Thing.Attributes[city]": "Seattle" } },
      }),
    ],
    action: "iot:Publish",
    resource: arn("topic/a"),
    want: "allow",
  },
  {
    name: "StringEquals not met",
    docs: [
      doc({
        Effect: "Allow",
        Action: "iot:Publish",
        Resource: "*",
        Condition: { StringEquals: { "iot:Connection.Thing.Attributes[city]": "Portland" } },
      }),
    ],
    action: "iot:Publish",
    resource: arn("topic/a"),
    want: "implicit-deny",
  },
  {
    name: "StringLike on the client id",
    docs: [
      doc({
        Effect: "Allow",
        Action: "iot:Connect",
        Resource: "*",
        Condition: { StringLike: { "iot:ClientId": "store-sensor-*" } },
      }),
    ],
    action: "iot:Connect",
    resource: arn("client/store-sensor-seattle1"),
    want: "allow",
  },
  {
    name: "StringEqualsIfExists with the key missing",
    docs: [
      doc({
        Effect: "Allow",
        Action: "iot:Connect",
        Resource: "*",
        Condition: { StringEqualsIfExists: { "iot:Connection.Thing.ThingTypeName": "sensor" } },
      }),
    ],
    action: "iot:Connect",
    resource: arn("client/x"),
    context: stranger,
    want: "allow",
  },
  {
    name: "StringEquals with the key missing",
    docs: [
      doc({
        Effect: "Allow",
        Action: "iot:Connect",
        Resource: "*",
        Condition: { StringEquals: { "iot:Connection.Thing.ThingTypeName": "sensor" } },
      }),
    ],
    action: "iot:Connect",
    resource: arn("client/x"),
    context: stranger,
    want: "implicit-deny",
  },
  {
    name: "Bool IsAttached false denies via Deny",
    docs: [
      tutorialPolicy(),
      doc({
        Effect: "Deny",
        Action: "iot:Connect",
        Resource: "*",
        Condition: { Bool: { "iot:Connection.Thing.IsAttached": "false" } },
      }),
    ],
    action: "iot:Connect",
    resource: arn("client/x"),
    context: stranger,
    want: "explicit-deny",
  },
  {
    name: "condition value with a variable",
    docs: [
      doc({
        Effect: "Allow",
        Action: "iot:Connect",
        Resource: "*",
        Condition: { StringEquals: { "iot:ClientId": "${iot:Connection.Thing.ThingName}" } },
      }),
    ],
    action: "iot:Connect",
    resource: arn("client/x"),
    want: "allow",
  },
  // NotAction / NotResource.
  {
    name: "NotAction allows the rest",
    docs: [doc({ Effect: "Allow", NotAction: "iot:Subscribe", Resource: "*" })],
    action: "iot:Publish",
    resource: arn("topic/a"),
    want: "allow",
  },
  {
    name: "NotAction excludes its action",
    docs: [doc({ Effect: "Allow", NotAction: "iot:Subscribe", Resource: "*" })],
    action: "iot:Subscribe",
    resource: arn("topicfilter/a"),
    want: "implicit-deny",
  },
  {
    name: "NotResource excludes its resource",
    docs: [doc({ Effect: "Allow", Action: "iot:Publish", NotResource: arn("topic/secret") })],
    action: "iot:Publish",
    resource: arn("topic/secret"),
    want: "implicit-deny",
  },
  {
    name: "NotResource allows the rest",
    docs: [doc({ Effect: "Allow", Action: "iot:Publish", NotResource: arn("topic/secret") })],
    action: "iot:Publish",
    resource: arn("topic/open"),
    want: "allow",
  },
  {
    name: "Deny with NotResource denies everything else",
    docs: [
      tutorialPolicy(),
      doc({ Effect: "Deny", Action: "iot:Publish", NotResource: arn("topic/${iot:ClientId}/*") }),
    ],
    action: "iot:Publish",
    resource: arn("topic/other/x"),
    want: "explicit-deny",
  },
  {
    name: "nothing at all",
    docs: [],
    action: "iot:Connect",
    resource: arn("client/x"),
    want: "implicit-deny",
  },
];

describe("IoT policy evaluation (core/iot-policy/policy-eval)", () => {
  for (const r of rows) {
    it(`${r.name} → ${r.want}`, () => {
      const got = evaluate(r.docs, {
        action: r.action,
        resource: r.resource,
        context: r.context ?? thing1,
      });
      assert.equal(
        got.decision,
        r.want,
        `${r.action} on ${r.resource}: ${describeEvaluation(got)}`,
      );
    });
  }

  it("names the deciding statement", () => {
    const got = evaluate([leastPrivilege], {
      action: "iot:Publish",
      resource: arn("topic/SeattleStoreTemp/store-sensor-seattle1"),
      context: thing1,
    });
    assert.equal(describeEvaluation(got), "allowed by statement 1 (Sid PublishOwnTelemetry)");
  });

  it("rejects a condition operator it cannot evaluate, naming the statement", () => {
    assert.throws(
      () =>
        createEvaluator([
          doc({
            Effect: "Allow",
            Action: "*",
            Resource: "*",
            Condition: { BinaryEquals: { "iot:ClientId": "eA==" } },
          }),
        ]),
      (e: unknown) =>
        e instanceof PolicyDocumentError &&
        /^statement 0: condition operator BinaryEquals is not supported; use one of StringEquals, /.test(
          e.message,
        ),
    );
  });
});

describe("one evaluator for many connections", () => {
  it("substitutes each connection's own variables, whatever the order of requests", () => {
    const decide = createEvaluator([leastPrivilege]);
    const thing2: PolicyContext = {
      ...thing1,
      clientId: "store-sensor-seattle2",
      thingName: "store-sensor-seattle2",
    };
    const publish = (context: PolicyContext, thing: string) =>
      decide({
        action: "iot:Publish",
        resource: arn(`topic/SeattleStoreTemp/${thing}`),
        context,
      }).decision;
    for (let round = 0; round < 2; round++) {
      assert.equal(publish(thing1, "store-sensor-seattle1"), "allow");
      assert.equal(publish(thing2, "store-sensor-seattle1"), "implicit-deny");
      assert.equal(publish(thing2, "store-sensor-seattle2"), "allow");
      assert.equal(publish(thing1, "store-sensor-seattle2"), "implicit-deny");
      assert.equal(publish(stranger, "store-sensor-seattle1"), "implicit-deny");
      assert.equal(publish(detached, "store-sensor-seattle1"), "implicit-deny");
    }
  });
});

describe("IoT policy wildcard matching (core/iot-policy/policy)", () => {
  it("keeps actions case-insensitive and resources case-sensitive for the same pattern", () => {
    // Both orders, so that a compiled pattern shared across the two would show.
    assert.equal(resourceMatches("IOT:Pub*", "iot:publish"), false);
    assert.equal(actionMatches("IOT:Pub*", "iot:publish"), true);
    assert.equal(resourceMatches("IOT:Pub*", "iot:publish"), false);
    assert.equal(actionMatches("iot:Publis?", "IOT:PUBLISH"), true);
    assert.equal(resourceMatches("iot:Publis?", "IOT:PUBLISH"), false);
  });

  it("matches a pattern without wildcards only on the exact resource", () => {
    const topic = arn("topic/SeattleStoreTemp/store.sensor+1");
    assert.equal(resourceMatches(topic, topic), true);
    assert.equal(resourceMatches(topic, arn("topic/SeattleStoreTemp/storeXsensor+1")), false);
    assert.equal(resourceMatches(topic, `${topic}/more`), false);
    assert.equal(resourceMatches(topic, topic.toUpperCase()), false);
    assert.equal(resourceMatches(arn("topic/a"), `${arn("topic/a")}\n`), false);
  });

  it("answers the same past its bound of compiled patterns", () => {
    assert.equal(resourceMatches(arn("topic/first/*"), arn("topic/first/x")), true);
    for (let i = 0; i < 12_000; i++) {
      assert.equal(resourceMatches(arn(`topic/t${i}/*`), arn(`topic/t${i}/x`)), true);
    }
    assert.equal(resourceMatches(arn("topic/first/*"), arn("topic/first/x")), true);
    assert.equal(resourceMatches(arn("topic/first/*"), arn("topic/other/x")), false);
    assert.equal(resourceMatches(arn("topic/t11999/*"), arn("topic/t1199/x")), false);
  });
});
