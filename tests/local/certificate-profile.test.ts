// The local CA's certificate profiles (subject attributes, alternative names) from the stack's
// `localCertificates`, reissued when they change, and read back as AWS's certificate variables.
import { strict as assert } from "node:assert";
import { X509Certificate } from "node:crypto";
import * as path from "node:path";
import { parseStackConfig, readRawStackConfig } from "../../core/stack-config";
import { certificateProfileFor, ensurePki } from "../../local/identity/ca";
import { certificateAttributes } from "../../local/identity/certificate-attributes";
import { tempDir } from "../helpers/temp";

const config = (localCertificates: unknown) =>
  parseStackConfig(
    { ...readRawStackConfig("prod"), localCertificates, certificateMode: "generated" },
    "prod",
  );

describe("certificate profiles of the local CA", function () {
  this.timeout(30_000);

  it("fills {thing}, {thingType}, {group} and {stack} per thing", () => {
    const c = config({
      subject: {
        Organization: ["{stack}-fleet", "Acme"],
        OrganizationalUnit: "{thingType}",
        State: "{group}",
      },
      subjectAlternativeNames: { DNSName: "{thing}.devices.example.com" },
    });
    const profile = certificateProfileFor(c.localCertificates, c.things[1], c);
    assert.deepEqual(profile, {
      subject: {
        Organization: ["prod-fleet", "Acme"],
        OrganizationalUnit: ["sensor"],
        State: ["Seattle"],
      },
      subjectAltNames: { DNSName: ["store-sensor-seattle2.devices.example.com"] },
    });
  });

  it("issues certificates carrying the profile, read back as AWS's certificate variables", async () => {
    const dir = path.join(tempDir("profile"), "pki");
    const pki = await ensurePki(dir, ["dev1"], new Date(), {
      dev1: {
        subject: { Organization: ["Acme", "Beta, Inc."], Country: ["US"], Pseudonym: ["p1"] },
        subjectAltNames: {
          DNSName: ["dev1.lab"],
          IPAddress: ["10.1.2.3"],
          RFC822Name: ["ops@lab"],
          UniformResourceIdentifier: ["urn:lab:dev1"],
        },
      },
    });
    const cert = new X509Certificate(pki.credentialsFor("dev1").cert);
    const attrs = certificateAttributes(cert);
    assert.deepEqual(attrs.subject, {
      Country: ["US"],
      Organization: ["Acme", "Beta, Inc."],
      CommonName: ["dev1"],
      Pseudonym: ["p1"],
    });
    assert.deepEqual(attrs.subjectAltNames, {
      DNSName: ["dev1.lab"],
      IPAddress: ["10.1.2.3"],
      RFC822Name: ["ops@lab"],
      UniformResourceIdentifier: ["urn:lab:dev1"],
    });
    assert.deepEqual(attrs.issuer.CommonName, ["iot-pipeline local CA"]);
    assert.match(attrs.serialNumber ?? "", /^[0-9A-F]+$/);
  });

  it("reuses a certificate with the same profile and reissues one whose profile changed", async () => {
    const dir = path.join(tempDir("profile"), "pki");
    const p = { subject: { Organization: ["Acme"] } };
    assert.equal((await ensurePki(dir, ["a", "b"], new Date(), { a: p, b: p })).issued, 4); // CA, server, a, b
    assert.equal((await ensurePki(dir, ["a", "b"], new Date(), { a: p, b: p })).issued, 0);
    const changed = await ensurePki(dir, ["a", "b"], new Date(), {
      a: p,
      b: { subject: { Organization: ["Other"] } },
    });
    assert.equal(changed.issued, 1);
    const san = await ensurePki(dir, ["a", "b"], new Date(), {
      a: { ...p, subjectAltNames: { DNSName: ["a.lab"] } },
      b: { subject: { Organization: ["Other"] } },
    });
    assert.equal(san.issued, 1);
    assert.equal(
      (await ensurePki(dir, ["a"], new Date(), {})).issued,
      1,
      "no profile: plain CN again",
    );
  });
});

describe("the localCertificates config", () => {
  const bad: Array<[string, unknown, RegExp]> = [
    ["CommonName", { subject: { CommonName: "x" } }, /CommonName .* is always the thing name/],
    [
      "an attribute AWS does not expose",
      { subject: { Locality: "x" } },
      /use one of DistinguishedNameQualifier, Country/,
    ],
    [
      "six values",
      { subject: { Organization: ["1", "2", "3", "4", "5", "6"] } },
      /1 to 5 strings \(AWS reads at most five values\)/,
    ],
    ["a country that is not two letters", { subject: { Country: "USA" } }, /two-letter ISO 3166/],
    [
      "an unknown placeholder",
      { subject: { Organization: "{owner}" } },
      /\{owner\} is not a placeholder/,
    ],
    [
      "a wildcard character",
      { subject: { Organization: "a*" } },
      /must not contain \* \$ \+ \? or #/,
    ],
    [
      "an unknown alternative-name kind",
      { subjectAlternativeNames: { DirectoryName: "x" } },
      /use one of DNSName, RFC822Name/,
    ],
    [
      "an IP that is none",
      { subjectAlternativeNames: { IPAddress: "10.1.2" } },
      /must be an IP address/,
    ],
    ["an unknown field", { issuer: {} }, /localCertificates\.issuer/],
  ];
  for (const [what, value, message] of bad) {
    it(`refuses ${what} in one line`, () => {
      assert.throws(
        () => config(value),
        (e: unknown) => e instanceof Error && message.test(e.message) && !e.message.includes("\n"),
      );
    });
  }

  it("defaults to the organisation and the thing type (Pulumi.yaml)", () => {
    const c = parseStackConfig(readRawStackConfig("dev"), "dev");
    assert.deepEqual(c.localCertificates, {
      subject: { Organization: ["iot-pipeline"], OrganizationalUnit: ["{thingType}"] },
      subjectAlternativeNames: {},
    });
  });
});
