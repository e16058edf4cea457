// The CBOR codec of the provisioning API's `.../cbor` topics, held to RFC 8949's own examples
// (Appendix A, https://www.rfc-editor.org/rfc/rfc8949.html#name-examples-of-encoded-cbor-da), and
// the provisioning API answered in CBOR over real TLS.
import { strict as assert } from "node:assert";
import { CborError, decodeCbor, encodeCbor, type CborValue } from "../../core/cbor";
import { loadStackConfig } from "../../core/stack-config";
import { makeCsr } from "../../device/provisioner";
import { startLocalPipeline, type LocalPipeline } from "../../local/pipeline/pipeline";
import { connectOutcome, testClient } from "../helpers/broker";
import { tempDir } from "../helpers/temp";
import { until } from "../helpers/wait";

/** RFC 8949 Appendix A: value and its preferred encoding. */
const APPENDIX_A: Array<[CborValue, string]> = [
  [0, "00"],
  [1, "01"],
  [10, "0a"],
  [23, "17"],
  [24, "1818"],
  [25, "1819"],
  [100, "1864"],
  [1000, "1903e8"],
  [1000000, "1a000f4240"],
  [1000000000000, "1b000000e8d4a51000"],
  [-1, "20"],
  [-10, "29"],
  [-100, "3863"],
  [-1000, "3903e7"],
  [false, "f4"],
  [true, "f5"],
  [null, "f6"],
  [Buffer.from([]), "40"],
  [Buffer.from([1, 2, 3, 4]), "4401020304"],
  ["", "60"],
  ["a", "6161"],
  ["IETF", "6449455446"],
  ['"\\', "62225c"],
  ["\u00fc", "62c3bc"],
  ["\u6c34", "63e6b0b4"],
  [[], "80"],
  [[1, 2, 3], "83010203"],
  [[1, [2, 3], [4, 5]], "8301820203820405"],
  [{}, "a0"],
  [{ a: 1, b: [2, 3] }, "a26161016162820203"],
  [["a", { b: "c" }], "826161a161626163"],
  [{ a: "A", b: "B", c: "C", d: "D", e: "E" }, "a56161614161626142616361436164614461656145"],
];

describe("CBOR (RFC 8949)", () => {
  for (const [value, hex] of APPENDIX_A) {
    it(`${JSON.stringify(value)} ⇄ 0x${hex}`, () => {
      assert.equal(encodeCbor(value).toString("hex"), hex);
      assert.deepEqual(decodeCbor(Buffer.from(hex, "hex")), value);
    });
  }

  for (const [what, hex, message] of [
    ["trailing bytes", "0000", /1 byte\(s\) after the item/],
    ["a truncated string", "6449", /ends inside an item/],
    ["a tag (major type 6)", "c11a514b67b0", /tags/],
    ["an indefinite-length array", "9f018202039f0405ffff", /additional information 31/],
    ["a map key that is not text", "a10102", /map key that is not a text string/],
    ["a repeated map key", "a2616101616102", /appears twice/],
    ["a float", "f93c00", /float/],
    ["invalid UTF-8", "62c328", /not UTF-8/],
  ] as const) {
    it(`refuses ${what}`, () => {
      assert.throws(
        () => decodeCbor(Buffer.from(hex, "hex")),
        (e: unknown) => e instanceof CborError && message.test(e.message),
      );
    });
  }

  it("refuses nesting beyond its bound", () => {
    assert.throws(() => decodeCbor(Buffer.from("81".repeat(40) + "00", "hex")), /nested deeper/);
  });
});

describe("the provisioning API in CBOR at the embedded broker (real TLS)", function () {
  this.timeout(60_000);
  let p: LocalPipeline;
  before(async () => {
    p = await startLocalPipeline(loadStackConfig("fleet"), { stateDir: tempDir("cbor-e2e") });
  });
  after(async () => {
    await p?.stop();
  });

  it("CreateCertificateFromCsr and RegisterThing on .../cbor answer in CBOR; the device then connects", async () => {
    const claim = testClient(p.url, { ...p.claimCredentials(), ca: p.ca }, "claim-3");
    assert.equal(await connectOutcome(claim), "connect");
    const answers = new Map<string, Buffer>();
    claim.on("message", (t, m) => answers.set(t, m));
    const csrTopic = "$aws/certificates/create-from-csr/cbor";
    const regTopic = "$aws/provisioning-templates/sensor-fleet/provision/cbor";
    await claim.subscribeAsync(
      [`${csrTopic}/accepted`, `${regTopic}/accepted`, `${regTopic}/rejected`],
      {
        qos: 1,
      },
    );
    const { csrPem, keyPem } = await makeCsr("3");
    await claim.publishAsync(csrTopic, encodeCbor({ certificateSigningRequest: csrPem }), {
      qos: 1,
    });
    await until(() => answers.has(`${csrTopic}/accepted`), "the CBOR answer");
    const cert = decodeCbor(answers.get(`${csrTopic}/accepted`) as Buffer) as Record<
      string,
      string
    >;
    assert.deepEqual(Object.keys(cert).sort(), [
      "certificateId",
      "certificateOwnershipToken",
      "certificatePem",
    ]);
    // A JSON payload on a CBOR topic is not CBOR: the documented error shape, in CBOR.
    await claim.publishAsync(
      regTopic,
      Buffer.from(JSON.stringify({ certificateOwnershipToken: "x" })),
      {
        qos: 1,
      },
    );
    await until(() => answers.has(`${regTopic}/rejected`), "the CBOR rejection");
    const rejected = decodeCbor(answers.get(`${regTopic}/rejected`) as Buffer) as Record<
      string,
      unknown
    >;
    assert.equal(rejected.statusCode, 400);
    assert.equal(rejected.errorCode, "InvalidPayload");
    await claim.publishAsync(
      regTopic,
      encodeCbor({
        certificateOwnershipToken: cert.certificateOwnershipToken,
        parameters: { SerialNumber: "3" },
      }),
      { qos: 1 },
    );
    await until(() => answers.has(`${regTopic}/accepted`), "RegisterThing's CBOR answer");
    assert.deepEqual(decodeCbor(answers.get(`${regTopic}/accepted`) as Buffer), {
      deviceConfiguration: { telemetryTopic: "SeattleStoreTemp/store-sensor-seattle3" },
      thingName: "store-sensor-seattle3",
    });
    claim.end(true);
    const device = testClient(
      p.url,
      { cert: cert.certificatePem, key: keyPem, ca: p.ca },
      "store-sensor-seattle3",
    );
    assert.equal(await connectOutcome(device), "connect");
    device.end(true);
  });
});
