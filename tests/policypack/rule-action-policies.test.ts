// Policies 22 and 23, each on one happy-path resource with one field changed per test:
// iot-topic-rule-http-confirmed-destination ("You must confirm and enable HTTPS endpoints before
// the rules engine can use them": https://docs.aws.amazon.com/iot/latest/developerguide/https-rule-action.html)
// and lambda-permission-iot-scoped ("If you add a permission for an AWS IoT principal without
// providing the source-arn or source-account, any AWS account that creates a rule with your
// Lambda action can trigger rules to invoke your Lambda function from AWS IoT":
// https://docs.aws.amazon.com/iot/latest/developerguide/lambda-rule-action.html).
import { strict as assert } from "node:assert";
import { runProgram } from "../../tools/mock-program";
import { TYPES } from "../../policypack/policies";
import { lines, res, violations } from "./helpers";

const HOOK = "https://hooks.example.com/iot/";
const PACK = { "iot-topic-rule-http-confirmed-destination": { confirmedDestinations: [HOOK] } };

function rule(http: Record<string, unknown>, where: "https" | "errorAction" = "https") {
  return res(TYPES.iotTopicRule, "r", {
    name: "copies",
    sql: "SELECT * FROM 'a/+'",
    sqlVersion: "2016-03-23",
    errorAction: where === "errorAction" ? { http } : { cloudwatchLogs: { logGroupName: "g" } },
    ...(where === "https" ? { https: [http] } : {}),
  });
}

const only = (vs: string[], policy: string) => vs.filter((v) => v.includes(` ${policy}:`));

describe("policy 22: iot-topic-rule-http-confirmed-destination", () => {
  const P = "iot-topic-rule-http-confirmed-destination";
  const good = { url: `${HOOK}\${topic(2)}`, confirmationUrl: HOOK };

  it("an HTTP action to a destination the pack lists as confirmed passes", async () => {
    assert.deepEqual(only(lines(await violations([rule(good)], "prod", PACK)), P), []);
  });

  it("a destination the pack does not list is a mandatory violation", async () => {
    assert.deepEqual(only(lines(await violations([rule(good)], "prod")), P), [
      `mandatory ${P}: topic rule copies's https action sends to ${HOOK}, which the pack does not list as confirmed; confirm and enable the destination, then add it to this policy's confirmedDestinations`,
    ]);
  });

  it("no confirmationUrl, or one with a template: no confirmed destination", async () => {
    for (const h of [{ url: HOOK }, { url: `${HOOK}x`, confirmationUrl: "https://${topic()}/" }]) {
      const vs = only(lines(await violations([rule(h)], "prod", PACK)), P);
      assert.equal(vs.length, 1);
      assert.match(vs[0], /has no literal confirmationUrl/);
    }
  });

  it("a url that does not begin with its confirmationUrl, or an http:// one", async () => {
    const vs = only(
      lines(
        await violations(
          [rule({ url: "https://other.example.com/x", confirmationUrl: HOOK })],
          "prod",
          PACK,
        ),
      ),
      P,
    );
    assert.deepEqual(vs.length, 1);
    assert.match(vs[0], /does not begin with its confirmationUrl/);
    const plain = "http://hooks.example.com/";
    const vs2 = only(
      lines(
        await violations([rule({ url: `${plain}x`, confirmationUrl: plain })], "prod", {
          [P]: { confirmedDestinations: [plain] },
        }),
      ),
      P,
    );
    assert.equal(vs2.length, 1);
    assert.match(vs2[0], /is not an https:\/\/ URL/);
  });

  it("an HTTP error action is checked too", async () => {
    const vs = only(lines(await violations([rule(good, "errorAction")], "prod")), P);
    assert.equal(vs.length, 1);
    assert.match(vs[0], /errorAction\.http action sends to/);
  });
});

describe("policy 23: lambda-permission-iot-scoped", () => {
  const P = "lambda-permission-iot-scoped";
  const perm = (over: Record<string, unknown>) =>
    res(TYPES.lambdaPermission, "p", {
      action: "lambda:InvokeFunction",
      function: "copies-log-event",
      principal: "iot.amazonaws.com",
      sourceArn: "arn:aws:iot:us-east-1:123456789012:rule/copies",
      sourceAccount: "123456789012",
      ...over,
    });

  it("a permission scoped to one rule and its account passes (and one to a provisioning template)", async () => {
    assert.deepEqual(only(lines(await violations([perm({})])), P), []);
    const template = perm({
      sourceArn: "arn:aws:iot:us-east-1:123456789012:provisioningtemplate/fleet",
    });
    assert.deepEqual(only(lines(await violations([template])), P), []);
  });

  it("no sourceArn: any rule of any account may invoke", async () => {
    assert.deepEqual(only(lines(await violations([perm({ sourceArn: undefined })])), P), [
      `mandatory ${P}: Lambda permission for copies-log-event lets iot.amazonaws.com invoke it from any rule of any account; set sourceArn to the rule's ARN (arn:aws:iot:<region>:<account>:rule/<name>) and sourceAccount`,
    ]);
  });

  it("a wildcard sourceArn, a missing or another sourceAccount", async () => {
    const wild = only(
      lines(await violations([perm({ sourceArn: "arn:aws:iot:us-east-1:123456789012:rule/*" })])),
      P,
    );
    assert.equal(wild.length, 1);
    assert.match(wild[0], /is not one IoT rule or provisioning template/);
    const none = only(lines(await violations([perm({ sourceAccount: undefined })])), P);
    assert.match(none[0], /has no sourceAccount/);
    const other = only(lines(await violations([perm({ sourceAccount: "210987654321" })])), P);
    assert.match(
      other[0],
      /sourceAccount 210987654321 but its sourceArn is in account 123456789012/,
    );
  });

  it("a permission for another principal is not this policy's", async () => {
    assert.deepEqual(
      only(
        lines(await violations([perm({ principal: "s3.amazonaws.com", sourceArn: undefined })])),
        P,
      ),
      [],
    );
  });

  it("the program's own Lambda action and the fleet hook pass, from the stack config", async () => {
    const run = await runProgram("dev", {
      overrides: {
        rules: [
          {
            name: "copies",
            sql: "SELECT * FROM 'a/+'",
            actions: [{ lambda: { handler: "functions/log-event.ts" } }],
          },
        ],
      },
    });
    const resources = run.resources
      .filter((r) => r.custom)
      .map((r) => res(r.type, r.name, r.props));
    assert.deepEqual(only(lines(await violations(resources, "dev")), P), []);
    const fleet = await runProgram("fleet");
    const fleetRes = fleet.resources
      .filter((r) => r.custom)
      .map((r) => res(r.type, r.name, r.props));
    assert.deepEqual(only(lines(await violations(fleetRes, "fleet")), P), []);
  });
});
