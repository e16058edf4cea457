// Device Shadows and the IoT policy: the least-privilege document with `deviceShadows` grants each
// device its own shadow's topics and no other thing's (evaluated by the broker's evaluator, as the
// example policies of device-shadow-mqtt.html grant them), the shadow actions on `thing/<name>`
// resources (iot-action-resources.html), and the pack's iot-policy-shadow-own-thing-only rule.
import * as assert from "node:assert/strict";
import { leastPrivilegePolicy, tutorialPolicy } from "../../core/iot-policy/policy";
import { createEvaluator } from "../../core/iot-policy/policy-eval";
import { ARN, CTX, lines, res, violations } from "./helpers";

const RULE = "iot-policy-shadow-own-thing-only";

async function shadowViolations(doc: unknown, stack = "prod"): Promise<string[]> {
  const p = res("aws:iot/policy:Policy", "sensor-policy", {
    name: "sensor-policy",
    policy: JSON.stringify(doc),
  });
  return lines((await violations([p], stack)).filter((v) => v.policy === RULE));
}

describe("Device Shadows in the IoT policy", () => {
  const context = {
    clientId: "sensor-a",
    thingName: "sensor-a",
    isAttached: true,
    attributes: {},
  };
  const decide = (doc: unknown, action: string, resource: string) =>
    createEvaluator([doc as never])({
      action,
      resource: `${ARN}:${resource}`,
      context,
    }).decision;

  describe("least-privilege with deviceShadows (device-shadow-mqtt.html example policies)", () => {
    const doc = leastPrivilegePolicy(CTX, "SeattleStoreTemp/{thing}", { deviceShadows: true });
    const own = "$aws/things/sensor-a/shadow";
    const other = "$aws/things/sensor-b/shadow";

    for (const op of ["get", "update", "delete", "name/config/update"]) {
      it(`allows iot:Publish on its own ${op} and denies another thing's`, () => {
        assert.equal(decide(doc, "iot:Publish", `topic/${own}/${op}`), "allow");
        assert.equal(decide(doc, "iot:Publish", `topic/${other}/${op}`), "implicit-deny");
      });
    }
    for (const r of [
      "get/accepted",
      "get/rejected",
      "update/accepted",
      "update/rejected",
      "update/delta",
      "update/documents",
      "delete/accepted",
      "delete/rejected",
      "name/config/update/delta",
    ]) {
      it(`allows iot:Subscribe and iot:Receive on its own ${r} and denies another thing's`, () => {
        assert.equal(decide(doc, "iot:Subscribe", `topicfilter/${own}/${r}`), "allow");
        assert.equal(decide(doc, "iot:Receive", `topic/${own}/${r}`), "allow");
        assert.equal(decide(doc, "iot:Subscribe", `topicfilter/${other}/${r}`), "implicit-deny");
        assert.equal(decide(doc, "iot:Receive", `topic/${other}/${r}`), "implicit-deny");
      });
    }

    it("without deviceShadows, least-privilege grants no shadow topic", () => {
      const plain = leastPrivilegePolicy(CTX, "SeattleStoreTemp/{thing}");
      assert.equal(decide(plain, "iot:Publish", `topic/${own}/update`), "implicit-deny");
      assert.equal(
        decide(plain, "iot:Subscribe", `topicfilter/${own}/update/delta`),
        "implicit-deny",
      );
    });

    it("passes the pack in prod, with no overly permissive finding either", async () => {
      const p = res("aws:iot/policy:Policy", "sensor-policy", {
        name: "sensor-policy",
        policy: JSON.stringify(doc),
      });
      const found = lines(await violations([p], "prod")).filter((l) => l.includes("iot-policy"));
      assert.deepEqual(found, []);
    });
  });

  describe("the shadow actions on thing resources (iot-action-resources.html)", () => {
    const doc = {
      Version: "2012-10-17",
      Statement: [
        {
          Effect: "Allow",
          Action: ["iot:GetThingShadow", "iot:UpdateThingShadow", "iot:DeleteThingShadow"],
          Resource: [
            `${ARN}:thing/\${iot:Connection.Thing.ThingName}`,
            `${ARN}:thing/\${iot:Connection.Thing.ThingName}/*`,
          ],
        },
      ],
    };
    it("iot:UpdateThingShadow on thing/<name> and thing/<name>/<shadowName>: its own only", () => {
      assert.equal(decide(doc, "iot:UpdateThingShadow", "thing/sensor-a"), "allow");
      assert.equal(decide(doc, "iot:UpdateThingShadow", "thing/sensor-a/config"), "allow");
      assert.equal(decide(doc, "iot:GetThingShadow", "thing/sensor-b"), "implicit-deny");
      assert.equal(decide(doc, "iot:DeleteThingShadow", "thing/sensor-b/config"), "implicit-deny");
    });
  });

  describe(`${RULE} (policy pack)`, () => {
    it("flags, outside dev, Publish on every thing's shadow update topic", async () => {
      const doc = {
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Allow",
            Action: "iot:Publish",
            Resource: `${ARN}:topic/$aws/things/*/shadow/update`,
          },
        ],
      };
      assert.deepEqual(await shadowViolations(doc), [
        `mandatory ${RULE}: IoT policy sensor-policy: statement 0 allows iot:Publish on ${ARN}:topic/$aws/things/*/shadow/update, which reaches other things' Device Shadows; name the device's own shadow: topic/$aws/things/\${iot:Connection.Thing.ThingName}/shadow/...`,
      ]);
      assert.deepEqual(await shadowViolations(doc, "dev"), []);
    });

    it("flags Subscribe to the literal MQTT filter $aws/things/+/shadow/update/delta", async () => {
      const doc = {
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Allow",
            Action: "iot:Subscribe",
            Resource: `${ARN}:topicfilter/$aws/things/+/shadow/update/delta`,
          },
        ],
      };
      assert.equal((await shadowViolations(doc)).length, 1);
    });

    it("flags iot:GetThingShadow on thing/*", async () => {
      const doc = {
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Action: "iot:GetThingShadow", Resource: `${ARN}:thing/*` }],
      };
      assert.deepEqual(await shadowViolations(doc), [
        `mandatory ${RULE}: IoT policy sensor-policy: statement 0 allows iot:GetThingShadow on ${ARN}:thing/*, which reaches other things' Device Shadows; name the device's own thing: thing/\${iot:Connection.Thing.ThingName} (and thing/\${iot:Connection.Thing.ThingName}/<shadowName>)`,
      ]);
    });

    it("leaves iot:* on * to iot-policy-no-allow-all (one statement, one report)", async () => {
      assert.deepEqual(await shadowViolations(tutorialPolicy()), []);
    });
  });
});
