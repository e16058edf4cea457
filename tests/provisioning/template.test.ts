// The provisioning template's evaluation (core/provisioning/template.ts) and the API's clock, case by case
// from AWS's pages (docs/provisioning.md's conformance table cites each).
import { strict as assert } from "node:assert";
import * as path from "node:path";
import {
  evaluateTemplate,
  provisioningTemplateBody,
  TemplateError,
  type TemplateBody,
} from "../../core/provisioning/template";
import { loadStackConfig } from "../../core/stack-config";
import { makeCsr } from "../../device/provisioner";
import { LocalAuthorizer } from "../../local/broker/authorizer";
import type { ClientIdentity } from "../../local/broker/broker";
import { ensurePki } from "../../local/identity/ca";
import {
  CLAIM_IDENTITY,
  LocalProvisioning,
  OWNERSHIP_TOKEN_TTL_MS,
} from "../../local/provisioning/provisioning";
import { tempDir } from "../helpers/temp";

const CERT_ID = "a".repeat(64);

function body(
  resources: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): TemplateBody {
  return {
    Parameters: { SerialNumber: { Type: "String" } },
    Resources: resources,
    ...extra,
  } as TemplateBody;
}

function thingNamed(name: unknown) {
  return body({ thing: { Type: "AWS::IoT::Thing", Properties: { ThingName: name } } });
}

function fails(b: TemplateBody, params: Record<string, string>, code: string, message: RegExp) {
  assert.throws(
    () => evaluateTemplate(b, params, CERT_ID),
    (e: unknown) => e instanceof TemplateError && e.errorCode === code && message.test(e.message),
  );
}

describe("provisioning templates (provision-template.html)", () => {
  // https://docs.aws.amazon.com/iot/latest/developerguide/provision-template.html#parameters-section
  it("a parameter's Default is used when the request gives no value; the request's value wins", () => {
    const b = body(
      { thing: { Type: "AWS::IoT::Thing", Properties: { ThingName: { Ref: "Location" } } } },
      { Parameters: { Location: { Type: "String", Default: "WA" } } },
    );
    assert.equal(evaluateTemplate(b, {}, CERT_ID).thing?.name, "WA");
    assert.equal(evaluateTemplate(b, { Location: "OR" }, CERT_ID).thing?.name, "OR");
  });

  it("a parameter with neither value nor default is an error naming it", () => {
    fails(thingNamed({ Ref: "SerialNumber" }), {}, "InvalidParameters", /"SerialNumber"/);
  });

  // https://docs.aws.amazon.com/iot/latest/developerguide/provision-template.html#intrinsic-functions
  it("Fn::Join concatenates with its delimiter (empty: none)", () => {
    const b = thingNamed({ "Fn::Join": ["", ["ThingPrefix_", { Ref: "SerialNumber" }]] });
    assert.equal(
      evaluateTemplate(b, { SerialNumber: "42" }, CERT_ID).thing?.name,
      "ThingPrefix_42",
    );
    const dashed = thingNamed({ "Fn::Join": ["-", ["a", "b", { Ref: "SerialNumber" }]] });
    assert.equal(evaluateTemplate(dashed, { SerialNumber: "c" }, CERT_ID).thing?.name, "a-b-c");
  });

  it("Fn::Split and Fn::Select pick an element; an index out of bounds is a provisioning error", () => {
    const pick = (i: number) =>
      thingNamed({ "Fn::Select": [i, { "Fn::Split": [",", { Ref: "SerialNumber" }] }] });
    assert.equal(evaluateTemplate(pick(1), { SerialNumber: "x,y,z" }, CERT_ID).thing?.name, "y");
    fails(pick(3), { SerialNumber: "x,y,z" }, "InvalidRequest", /outside its list/);
  });

  it("Fn::FindInMap reads the Mappings section; Fn::Sub substitutes parameters", () => {
    const b = body(
      {
        thing: {
          Type: "AWS::IoT::Thing",
          Properties: { ThingName: { "Fn::Sub": "sensor-${SerialNumber}" } },
        },
      },
      {
        Mappings: { LocationTable: { Seattle: { LocationUrl: "https://example.aws" } } },
        DeviceConfiguration: {
          LocationUrl: { "Fn::FindInMap": ["LocationTable", "Seattle", "LocationUrl"] },
        },
      },
    );
    const e = evaluateTemplate(b, { SerialNumber: "9" }, CERT_ID);
    assert.equal(e.thing?.name, "sensor-9");
    assert.deepEqual(e.deviceConfiguration, { LocationUrl: "https://example.aws" });
  });

  it("an intrinsic function the page does not list is refused", () => {
    fails(thingNamed({ "Fn::Base64": "x" }), {}, "InvalidRequest", /Fn::Base64/);
  });

  // https://docs.aws.amazon.com/iot/latest/developerguide/provision-template.html#certificate-resources
  it("the certificate is the one the service made (AWS::IoT::Certificate::Id), Status ACTIVE or INACTIVE", () => {
    const b = body({
      certificate: {
        Type: "AWS::IoT::Certificate",
        Properties: { CertificateId: { Ref: "AWS::IoT::Certificate::Id" }, Status: "Inactive" },
      },
    });
    assert.deepEqual(evaluateTemplate(b, {}, CERT_ID).certificate, {
      id: CERT_ID,
      status: "INACTIVE",
    });
    const csr = body({
      certificate: {
        Type: "AWS::IoT::Certificate",
        Properties: { CertificateSigningRequest: { Ref: "CSR" } },
      },
    });
    fails(csr, { CSR: "x" }, "InvalidRequest", /CertificateId/);
  });

  // https://docs.aws.amazon.com/iot/latest/developerguide/provision-template.html#device-config
  it("DeviceConfiguration does not take nested objects", () => {
    const b = body({}, { DeviceConfiguration: { nested: { a: "b" } } });
    fails(b, {}, "InvalidRequest", /DeviceConfiguration\.nested must be a string/);
  });

  it("the stack's template: the thing, its type, group, attributes, policy and the device's topic", () => {
    const b = provisioningTemplateBody({
      thingPrefix: "store-sensor-seattle",
      thingTypeName: "sensor",
      group: "Seattle",
      attributes: { city: "Seattle" },
      policyName: "sensor-policy",
      telemetryTopic: "SeattleStoreTemp/{thing}",
    });
    const e = evaluateTemplate(b, { SerialNumber: "7" }, CERT_ID);
    assert.deepEqual(e.thing, {
      name: "store-sensor-seattle7",
      typeName: "sensor",
      groups: ["Seattle"],
      attributes: { city: "Seattle", serialNumber: "7" },
      overrides: { AttributePayload: "MERGE", ThingTypeName: "REPLACE", ThingGroups: "DO_NOTHING" },
    });
    assert.deepEqual(e.certificate, { id: CERT_ID, status: "ACTIVE" });
    assert.deepEqual(e.policyNames, ["sensor-policy"]);
    assert.deepEqual(e.deviceConfiguration, {
      telemetryTopic: "SeattleStoreTemp/store-sensor-seattle7",
    });
  });
});

/**
 * Where a value uses an intrinsic function in a form the provision-template page does not show, or
 * undefined. The page (https://docs.aws.amazon.com/iot/latest/developerguide/provision-template.html,
 * "Fleet provisioning template example"; archived in awsdocs/aws-iot-docs) shows `{"Ref": name}`,
 * `{"Fn::Join": [delimiter, [strings and Refs]]}` and `{"Fn::FindInMap": [map, key or Ref, key]}`;
 * it shows no function inside a Join's list other than Ref.
 */
function undocumentedForm(v: unknown, where: string): string | undefined {
  const isRef = (x: unknown) =>
    typeof x === "object" &&
    x !== null &&
    Object.keys(x).join() === "Ref" &&
    typeof (x as { Ref: unknown }).Ref === "string";
  if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) {
      const bad = undocumentedForm(x, `${where}[${i}]`);
      if (bad !== undefined) return bad;
    }
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const keys = Object.keys(v);
  const o = v as Record<string, unknown>;
  if (keys.length === 1 && (keys[0] === "Ref" || keys[0].startsWith("Fn::"))) {
    const arg = o[keys[0]];
    const ok =
      (keys[0] === "Ref" && typeof arg === "string") ||
      (keys[0] === "Fn::Join" &&
        Array.isArray(arg) &&
        arg.length === 2 &&
        typeof arg[0] === "string" &&
        Array.isArray(arg[1]) &&
        arg[1].every((x) => typeof x === "string" || isRef(x))) ||
      (keys[0] === "Fn::FindInMap" &&
        Array.isArray(arg) &&
        arg.length === 3 &&
        arg.every((x) => typeof x === "string" || isRef(x)));
    return ok ? undefined : `${where}: ${JSON.stringify(v)}`;
  }
  for (const k of keys) {
    const bad = undocumentedForm(o[k], `${where}.${k}`);
    if (bad !== undefined) return bad;
  }
  return undefined;
}

describe("the stack's template uses only the forms provision-template.html shows", () => {
  for (const telemetryTopic of ["SeattleStoreTemp/{thing}", "{thing}/t/{thing}", "fixed/topic"]) {
    it(`telemetryTopic ${telemetryTopic}: no nested function, and the device learns its topic`, () => {
      const b = provisioningTemplateBody({
        thingPrefix: "store-sensor-seattle",
        thingTypeName: "sensor",
        group: "Seattle",
        attributes: { city: "Seattle" },
        policyName: "sensor-policy",
        telemetryTopic,
      });
      assert.equal(undocumentedForm(b, "template"), undefined);
      assert.equal(
        evaluateTemplate(b, { SerialNumber: "7" }, CERT_ID).deviceConfiguration.telemetryTopic,
        telemetryTopic.replaceAll("{thing}", "store-sensor-seattle7"),
      );
    });
  }

  it("the check itself refuses a Join nested in a Join", () => {
    const nested = {
      "Fn::Join": ["", ["a/", { "Fn::Join": ["", ["p", { Ref: "SerialNumber" }]] }]],
    };
    assert.match(String(undocumentedForm({ DeviceConfiguration: { t: nested } }, "t")), /Fn::Join/);
  });
});

describe("the ownership token (fleet-provision-api.html)", function () {
  this.timeout(30_000);

  it("registers its certificate once: the same token sent twice at once is refused the second time", async () => {
    const config = loadStackConfig("fleet");
    const dir = tempDir("provisioning-token-twice");
    const pkiDir = path.join(dir, "pki");
    await ensurePki(pkiDir, [CLAIM_IDENTITY]);
    const answers: Array<{ topic: string; body: Record<string, unknown> }> = [];
    const p = await LocalProvisioning.open({
      config,
      pkiDir,
      stateDir: dir,
      authorizer: new LocalAuthorizer(config),
      onResponse: (_c, topic, b) => answers.push({ topic, body: b as Record<string, unknown> }),
    });
    const claim: ClientIdentity = { clientId: "claim-2", thingName: CLAIM_IDENTITY, kind: "claim" };
    const { csrPem } = await makeCsr("2");
    await p.onPublish(
      claim,
      "$aws/certificates/create-from-csr/json",
      Buffer.from(JSON.stringify({ certificateSigningRequest: csrPem })),
    );
    const register = Buffer.from(
      JSON.stringify({
        certificateOwnershipToken: answers[0].body.certificateOwnershipToken,
        parameters: { SerialNumber: "2" },
      }),
    );
    const topic = "$aws/provisioning-templates/sensor-fleet/provision/json";
    await Promise.all([p.onPublish(claim, topic, register), p.onPublish(claim, topic, register)]);
    assert.deepEqual(
      answers
        .slice(1)
        .map((a) => a.topic.split("/").pop())
        .sort(),
      ["accepted", "rejected"],
    );
    assert.equal(p.stats.thingsRegistered, 1);
  });

  it("RegisterThing an hour after the certificate was made is refused, and the certificate is gone", async () => {
    const config = loadStackConfig("fleet");
    const dir = tempDir("provisioning-clock");
    const pkiDir = path.join(dir, "pki");
    await ensurePki(pkiDir, [CLAIM_IDENTITY]);
    let now = Date.parse("2026-01-01T00:00:00Z");
    const answers: Array<{ topic: string; body: Record<string, unknown> }> = [];
    const p = await LocalProvisioning.open({
      config,
      pkiDir,
      stateDir: dir,
      authorizer: new LocalAuthorizer(config),
      now: () => now,
      onResponse: (_c, topic, b) => answers.push({ topic, body: b as Record<string, unknown> }),
    });
    const claim: ClientIdentity = { clientId: "claim-1", thingName: CLAIM_IDENTITY, kind: "claim" };
    const { csrPem } = await makeCsr("1");
    await p.onPublish(
      claim,
      "$aws/certificates/create-from-csr/json",
      Buffer.from(JSON.stringify({ certificateSigningRequest: csrPem })),
    );
    const created = answers[0].body;
    assert.equal(answers[0].topic, "$aws/certificates/create-from-csr/json/accepted");
    now += OWNERSHIP_TOKEN_TTL_MS + 1;
    await p.onPublish(
      claim,
      "$aws/provisioning-templates/sensor-fleet/provision/json",
      Buffer.from(
        JSON.stringify({
          certificateOwnershipToken: created.certificateOwnershipToken,
          parameters: { SerialNumber: "1" },
        }),
      ),
    );
    assert.equal(
      answers[1].topic,
      "$aws/provisioning-templates/sensor-fleet/provision/json/rejected",
    );
    assert.equal(answers[1].body.errorCode, "InvalidCertificateOwnershipToken");
    assert.equal(p.registry.thing("store-sensor-seattle1"), undefined);
  });
});
