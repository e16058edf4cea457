// The fleet stack (certificateMode fleet-provisioning) under mocks: what it registers instead of
// per-device things and certificates, the template AWS will evaluate, the claim and its policy,
// the hook's function run from the very archive the program hands to Lambda, and a stack size
// that does not grow with the fleet.
import { strict as assert } from "node:assert";
import { createPrivateKey, X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { createEvaluator } from "../../core/iot-policy/policy-eval";
import {
  MOCK_ACCOUNT_ID,
  mockIssuerPem,
  runProgram,
  type ProgramRun,
} from "../../tools/mock-program";
import { json, ofType, one, trustedServices } from "../program/helpers";
import { tempDir } from "../helpers/temp";

const T = {
  thing: "aws:iot/thing:Thing",
  cert: "aws:iot/certificate:Certificate",
  thingAttach: "aws:iot/thingPrincipalAttachment:ThingPrincipalAttachment",
  policy: "aws:iot/policy:Policy",
  attach: "aws:iot/policyAttachment:PolicyAttachment",
  template: "aws:iot/provisioningTemplate:ProvisioningTemplate",
  role: "aws:iam/role:Role",
  roleAttach: "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
  fn: "aws:lambda/function:Function",
  rolePolicy: "aws:iam/rolePolicy:RolePolicy",
  permission: "aws:lambda/permission:Permission",
  thingType: "aws:iot/thingType:ThingType",
  group: "aws:iot/thingGroup:ThingGroup",
};
const ARN = `arn:aws:iot:us-east-1:${MOCK_ACCOUNT_ID}`;

/**
 * A stand-in for the AWS SDK for JavaScript v3 that the Lambda Node.js runtime provides: its
 * DescribeThing answers from `globalThis.__things` (ResourceNotFoundException otherwise, as
 * API_DescribeThing.html documents), or throws `globalThis.__sdkFailure`; every call is recorded.
 */
const SDK_STUB = `
class DescribeThingCommand { constructor(input) { this.input = input; } }
class IoTClient {
  async send(command) {
    globalThis.__describeCalls.push(command.input.thingName);
    if (globalThis.__sdkFailure) throw globalThis.__sdkFailure;
    if (globalThis.__things.has(command.input.thingName)) return { thingName: command.input.thingName };
    throw Object.assign(new Error("not found"), { name: "ResourceNotFoundException" });
  }
}
module.exports = { IoTClient, DescribeThingCommand };
`;

const sdk = globalThis as unknown as {
  __things: Set<string>;
  __describeCalls: string[];
  __sdkFailure?: Error;
};

/**
 * The hook's archive, written out as Lambda unpacks it, and its handler loaded from index.js, with
 * the runtime's SDK (a stand-in) where the runtime puts it: resolvable from the function's folder.
 */
async function loadHook(run: ProgramRun) {
  const code = one(run, T.fn).inputs.code as {
    assets: Promise<Record<string, { text: Promise<string> | string }>>;
  };
  const assets = await code.assets;
  const dir = tempDir("hook-archive");
  for (const [name, asset] of Object.entries(assets)) {
    fs.writeFileSync(path.join(dir, name), await asset.text);
  }
  const sdkDir = path.join(dir, "node_modules", "@aws-sdk", "client-iot");
  fs.mkdirSync(sdkDir, { recursive: true });
  fs.writeFileSync(path.join(sdkDir, "index.js"), SDK_STUB);
  sdk.__things = new Set();
  sdk.__describeCalls = [];
  sdk.__sdkFailure = undefined;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- Lambda loads it this way
  const mod = require(path.join(dir, "index.js")) as { handler: (e: unknown) => Promise<unknown> };
  return { names: Object.keys(assets).sort(), handler: mod.handler };
}

function hookEvent(serial: string | undefined) {
  return {
    claimCertificateId: "c".repeat(64),
    certificateId: "d".repeat(64),
    certificatePem: "-----BEGIN CERTIFICATE-----\n...",
    templateArn: `${ARN}:provisioningtemplate/sensor-fleet`,
    clientId: "claim-1",
    parameters: serial === undefined ? {} : { SerialNumber: serial },
  };
}

describe("program: the fleet stack (certificateMode fleet-provisioning)", function () {
  this.timeout(120_000);
  let run: ProgramRun;
  before(async () => {
    run = await runProgram("fleet");
  });

  it("registers no thing and no device certificate: one claim certificate, attached to no thing", () => {
    assert.equal(ofType(run, T.thing).length, 0);
    assert.equal(ofType(run, T.thingAttach).length, 0);
    assert.equal(ofType(run, T.cert).length, 1);
    assert.deepEqual(run.outputs.thingNames, []);
  });

  it("the template is a fleet provisioning template whose role trusts IoT and holds AWSIoTThingsRegistration", () => {
    const t = one(run, T.template);
    assert.equal(t.props.name, "sensor-fleet");
    assert.equal(t.props.type, "FLEET_PROVISIONING");
    assert.equal(t.props.enabled, true);
    const role = one(run, T.role, (r) => r.props.arn === t.props.provisioningRoleArn);
    assert.deepEqual(trustedServices(role), ["iot.amazonaws.com"]);
    const attached = ofType(run, T.roleAttach).filter((a) => a.props.role === role.props.name);
    assert.deepEqual(
      attached.map((a) => a.props.policyArn),
      ["arn:aws:iam::aws:policy/service-role/AWSIoTThingsRegistration"],
    );
    // The role's attachment exists before the template uses the role.
    assert.ok(attached.every((a) => t.options.dependencies.includes(a.urn)));
  });

  it("the template body: the serial parameter, the certificate by id, the device policy, a prefixed thing in the stack's type and group", () => {
    const body = json(one(run, T.template).props.templateBody) as {
      Parameters: Record<string, { Type: string }>;
      Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
    };
    assert.deepEqual(body.Parameters.SerialNumber, { Type: "String" });
    const r = body.Resources;
    assert.deepEqual(r.certificate, {
      Type: "AWS::IoT::Certificate",
      Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" }, Status: "Active" },
    });
    const devicePolicy = one(run, T.policy, (p) => p.props.name === "sensor-fleet-least-privilege");
    assert.deepEqual(r.policy.Properties, { PolicyName: devicePolicy.props.name });
    assert.deepEqual(r.thing.Properties.ThingName, {
      "Fn::Join": ["", ["store-sensor-seattle", { Ref: "SerialNumber" }]],
    });
    assert.equal(r.thing.Properties.ThingTypeName, one(run, T.thingType).props.name);
    assert.deepEqual(r.thing.Properties.ThingGroups, [one(run, T.group).props.name]);
  });

  it("the claim policy allows the CSR and RegisterThing topics and a claim client id, nothing else", () => {
    const claimPolicy = one(run, T.policy, (p) => p.props.name === "sensor-fleet-claim");
    const claimCert = one(run, T.cert);
    assert.ok(
      ofType(run, T.attach).some(
        (a) => a.props.policy === claimPolicy.props.name && a.props.target === claimCert.props.arn,
      ),
    );
    const evaluate = createEvaluator([claimPolicy.props.policy]);
    const decide = (action: string, resource: string) =>
      evaluate({
        action,
        resource: `${ARN}:${resource}`,
        context: { clientId: "claim-1", isAttached: false, attributes: {} },
      }).decision;
    assert.equal(decide("iot:Connect", "client/claim-1"), "allow");
    assert.equal(decide("iot:Connect", "client/store-sensor-seattle1"), "implicit-deny");
    assert.equal(decide("iot:Publish", "topic/$aws/certificates/create-from-csr/json"), "allow");
    assert.equal(
      decide("iot:Subscribe", "topicfilter/$aws/certificates/create-from-csr/json/accepted"),
      "allow",
    );
    assert.equal(
      decide("iot:Publish", "topic/$aws/provisioning-templates/sensor-fleet/provision/json"),
      "allow",
    );
    assert.equal(
      decide(
        "iot:Receive",
        "topic/$aws/provisioning-templates/sensor-fleet/provision/json/rejected",
      ),
      "allow",
    );
    // createKeys is false: AWS would send the private key over the wire.
    assert.equal(decide("iot:Publish", "topic/$aws/certificates/create/json"), "implicit-deny");
    assert.equal(
      decide("iot:Publish", "topic/$aws/provisioning-templates/other/provision/json"),
      "implicit-deny",
    );
    assert.equal(
      decide("iot:Publish", "topic/SeattleStoreTemp/store-sensor-seattle1"),
      "implicit-deny",
    );
  });

  it("outputs what a device needs; the claim key is a secret and pairs with the claim certificate", () => {
    const p = run.outputs.provisioning as Record<string, string>;
    assert.equal(p.templateName, "sensor-fleet");
    assert.equal(p.claimPolicyName, "sensor-fleet-claim");
    assert.equal(p.hookFunctionName, "sensor-fleet-pre-provisioning-hook");
    const cert = new X509Certificate(p.claimCertificatePem);
    assert.ok(cert.verify(new X509Certificate(mockIssuerPem()).publicKey));
    assert.ok(cert.checkPrivateKey(createPrivateKey(run.outputs.claimPrivateKey as string)));
    assert.deepEqual(run.secretOutputs, ["claimPrivateKey"]);
    assert.equal(typeof run.outputs.endpoint, "string");
  });

  it("the hook's function: Node 22, 5 s, its own log group, invoked by IoT for this template only", () => {
    const fn = one(run, T.fn);
    assert.equal(fn.props.runtime, "nodejs22.x");
    assert.equal(fn.props.handler, "index.handler");
    assert.equal(fn.props.timeout, 5);
    const t = one(run, T.template);
    assert.deepEqual(t.props.preProvisioningHook, {
      targetArn: fn.props.arn,
      payloadVersion: "2020-04-01",
    });
    const perm = one(run, T.permission);
    assert.equal(perm.props.principal, "iot.amazonaws.com");
    assert.equal(perm.props.action, "lambda:InvokeFunction");
    assert.equal(perm.props.sourceArn, t.props.arn);
    assert.equal(perm.props.sourceAccount, MOCK_ACCOUNT_ID);
  });

  it("the archive Lambda runs allows the listed serials and refuses the rest, failing closed", async () => {
    const hook = await loadHook(run);
    assert.deepEqual(hook.names, ["hook-config.json", "index.js"]);
    // Each decision is one line in the function's log (console.log in Lambda).
    const logged: string[] = [];
    const log = console.log;
    console.log = (line: string) => logged.push(line);
    after(() => (console.log = log));
    assert.deepEqual(await hook.handler(hookEvent("1")), { allowProvisioning: true });
    assert.deepEqual(await hook.handler(hookEvent("4")), { allowProvisioning: true });
    assert.deepEqual(await hook.handler(hookEvent("5")), { allowProvisioning: false });
    assert.deepEqual(await hook.handler(hookEvent(undefined)), { allowProvisioning: false });
    assert.deepEqual(await hook.handler("not an event"), { allowProvisioning: false });
    console.log = log;
    assert.equal(logged.length, 5);
    assert.match(
      logged[2],
      /"allowProvisioning":false,"reason":"serial \\"5\\" is not on the stack's list/,
    );
  });

  it("the bundle is the same on every run (so the function changes only with its code)", async () => {
    const again = await runProgram("fleet");
    const text = async (r: ProgramRun) => {
      const assets = await (
        one(r, T.fn).inputs.code as { assets: Promise<Record<string, { text: string }>> }
      ).assets;
      return assets["index.js"].text;
    };
    assert.equal(await text(again), await text(run));
  });

  it("refuses a serial whose thing exists (DescribeThing), allows a new one, fails closed when it cannot tell", async () => {
    const hook = await loadHook(run);
    const log = console.log;
    console.log = () => undefined;
    after(() => (console.log = log));
    sdk.__things.add("store-sensor-seattle1");
    assert.deepEqual(await hook.handler(hookEvent("1")), { allowProvisioning: false });
    assert.deepEqual(await hook.handler(hookEvent("2")), { allowProvisioning: true });
    // Only serials the list lets through cost a call, each about the fleet's own thing name.
    assert.deepEqual(await hook.handler(hookEvent("5")), { allowProvisioning: false });
    assert.deepEqual(sdk.__describeCalls, ["store-sensor-seattle1", "store-sensor-seattle2"]);
    sdk.__sdkFailure = Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" });
    assert.deepEqual(await hook.handler(hookEvent("3")), { allowProvisioning: false });
    console.log = log;
  });

  it("the hook's role may DescribeThing on the fleet's things only (thing/<prefix>*)", () => {
    const grant = one(run, T.rolePolicy, (r) => r.name.includes("hook"));
    const statements = json(grant.props.policy).Statement as Array<Record<string, unknown>>;
    const describe = statements.filter((st) => JSON.stringify(st.Action).includes("iot:"));
    // Service Authorization Reference (list_awsiot.html): DescribeThing, resource type thing,
    // arn:${Partition}:iot:${Region}:${Account}:thing/${ThingName}.
    assert.deepEqual(describe, [
      {
        Sid: "DescribeFleetThings",
        Effect: "Allow",
        Action: ["iot:DescribeThing"],
        Resource: [`${ARN}:thing/store-sensor-seattle*`],
      },
    ]);
  });

  it("without allowedSerials the hook still refuses known serials; only allowReprovisioning with no list removes it", async () => {
    const anySerial = await runProgram("fleet", {
      overrides: {
        provisioning: {
          templateName: "sensor-fleet",
          claimPolicyName: "sensor-fleet-claim",
          createKeys: false,
          allowedSerials: null,
        },
      },
    });
    assert.equal(ofType(anySerial, T.fn).length, 1);
    const hook = await loadHook(anySerial);
    const log = console.log;
    console.log = () => undefined;
    try {
      sdk.__things.add("store-sensor-seattle77");
      assert.deepEqual(await hook.handler(hookEvent("77")), { allowProvisioning: false });
      assert.deepEqual(await hook.handler(hookEvent("78")), { allowProvisioning: true });
    } finally {
      console.log = log;
    }
    const noHook = await runProgram("fleet", {
      overrides: {
        provisioning: {
          templateName: "sensor-fleet",
          claimPolicyName: "sensor-fleet-claim",
          createKeys: false,
          allowedSerials: null,
          allowReprovisioning: true,
        },
      },
    });
    assert.equal(ofType(noHook, T.fn).length, 0);
    assert.equal(ofType(noHook, T.permission).length, 0);
    assert.equal(one(noHook, T.template).props.preProvisioningHook, undefined);
  });

  it("registers as many resources for 10,000 devices as for 5", async () => {
    const big = await runProgram("fleet", {
      overrides: {
        fleet: [
          {
            group: "Seattle",
            attributes: { city: "Seattle" },
            thingPrefix: "store-sensor-seattle",
            count: 10000,
          },
        ],
      },
    });
    assert.equal(big.resources.length, run.resources.length);
  });
});
