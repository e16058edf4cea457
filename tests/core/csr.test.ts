// The CSR reader (core/csr.ts): the public key of real requests, made by @peculiar/x509 as `npm run
// csr` makes them and checked against the key itself and the library's own reading, and one clear
// refusal for every way a request's DER can be wrong.
import "reflect-metadata";
import { strict as assert } from "node:assert";
import { generateKeyPairSync, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { CsrFormatError, csrKeyProblem, csrPublicKeyInfo } from "../../core/csr";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** One DER element with a definite length (short or long form). */
function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  const len =
    n < 0x80
      ? Buffer.from([n])
      : n < 0x100
        ? Buffer.from([0x81, n])
        : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}
const seq = (...c: Buffer[]) => tlv(0x30, ...c);
const hex = (h: string) => Buffer.from(h, "hex");

function pem(der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE REQUEST-----\n${lines.join("\n")}\n-----END CERTIFICATE REQUEST-----\n`;
}

const spki = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey.export({
  type: "spki",
  format: "der",
});
/** The parts of a request, each replaceable by a test. */
const PARTS = {
  version: tlv(0x02, hex("00")),
  subject: seq(tlv(0x31, seq(hex("0603550403"), tlv(0x0c, Buffer.from("sensor-1"))))),
  spki,
  attributes: hex("a000"),
  algorithm: seq(hex("06082a8648ce3d040302")),
  signature: tlv(0x03, hex("00"), Buffer.alloc(70, 1)),
};
function request(over: Partial<Record<keyof typeof PARTS, Buffer>> = {}, tail = Buffer.alloc(0)) {
  const p = { ...PARTS, ...over };
  const info = seq(p.version, p.subject, p.spki, p.attributes);
  return Buffer.concat([seq(info, p.algorithm, p.signature), tail]);
}

describe("core/csr: csrPublicKeyInfo", () => {
  it("returns the public key of requests made as npm run csr makes them (EC P-256, RSA-2048)", async () => {
    const algorithms = [
      { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" },
      {
        name: "RSASSA-PKCS1-v1_5",
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: "SHA-256",
      },
    ] as const;
    for (const alg of algorithms) {
      const keys = await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"]);
      const csr = await x509.Pkcs10CertificateRequestGenerator.create({
        name: "CN=store-sensor-seattle1",
        keys: keys as never,
        signingAlgorithm: alg,
        extensions: [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature)],
      });
      const expected = Buffer.from(await webcrypto.subtle.exportKey("spki", keys.publicKey));
      const text = csr.toString("pem");
      assert.deepEqual(csrPublicKeyInfo(text), expected, `${alg.name}: the key's own SPKI`);
      assert.deepEqual(
        csrPublicKeyInfo(text),
        Buffer.from(new x509.Pkcs10CertificateRequest(text).publicKey.rawData),
        `${alg.name}: what @peculiar/x509 reads`,
      );
    }
  });

  it("accepts a well-formed request built part by part (the base of the refusals below)", () => {
    assert.deepEqual(csrPublicKeyInfo(pem(request())), spki);
  });

  const refusals: Array<[string, string, RegExp]> = [
    [
      "a certificate instead of a request",
      "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
      /BEGIN CERTIFICATE REQUEST/,
    ],
    ["the request cut short", pem(request().subarray(0, 200)), /longer than what holds it/],
    ["a byte after the request", pem(request({}, hex("00"))), /bytes after the request/],
    ["version 1", pem(request({ version: tlv(0x02, hex("01")) })), /version other than 0/],
    [
      "no attributes",
      pem(seq(seq(PARTS.version, PARTS.subject, PARTS.spki), PARTS.algorithm, PARTS.signature)),
      /no attributes/,
    ],
    [
      "a signature that is not a BIT STRING",
      pem(request({ signature: tlv(0x04, hex("00")) })),
      /where the signature belongs/,
    ],
    [
      "a subject that is not a Name",
      pem(request({ subject: tlv(0x0c, Buffer.from("x")) })),
      /where the subject belongs/,
    ],
    [
      "a public key that is no key",
      pem(request({ spki: seq(PARTS.algorithm, tlv(0x03, hex("0004aabb"))) })),
      /public key is not usable/,
    ],
    [
      "an indefinite length (BER, not DER)",
      pem(Buffer.concat([hex("3080"), request().subarray(4), hex("0000")])),
      /indefinite length/,
    ],
    [
      "a malformed element inside the subject",
      pem(request({ subject: seq(tlv(0x31, hex("3005"))) })),
      /cut short|longer than what holds it/,
    ],
    [
      "nesting beyond any request's",
      pem(
        request({
          subject: Array.from({ length: 40 }).reduce<Buffer>((inner) => seq(inner), seq()),
        }),
      ),
      /nested more than/,
    ],
  ];
  for (const [what, text, reason] of refusals) {
    it(`refuses ${what} with a CsrFormatError saying why`, () => {
      assert.throws(
        () => csrPublicKeyInfo(text),
        (e: unknown) =>
          e instanceof CsrFormatError &&
          /^not a PEM certificate signing request/.test(e.message) &&
          reason.test(e.message),
      );
    });
  }
});

describe("core/csr: csrKeyProblem (x509-client-certs.html)", () => {
  // "an RSA key with a length of at least 2048 bits or derived from supported NIST P-256,
  // NIST P-384, or NIST P-521 curves":
  // https://docs.aws.amazon.com/iot/latest/developerguide/x509-client-certs.html
  const spki = (k: ReturnType<typeof generateKeyPairSync>["publicKey"]) =>
    k.export({ format: "der", type: "spki" });
  const ec = (namedCurve: string) => spki(generateKeyPairSync("ec", { namedCurve }).publicKey);
  const rsa = (modulusLength: number) =>
    spki(generateKeyPairSync("rsa", { modulusLength }).publicKey);

  it("takes NIST P-256, P-384, P-521 and RSA of 2048 bits or more", () => {
    for (const key of [ec("prime256v1"), ec("secp384r1"), ec("secp521r1"), rsa(2048), rsa(3072)]) {
      assert.equal(csrKeyProblem(key), undefined);
    }
  });

  it("names the curve, the size or the type of every other key", () => {
    assert.match(String(csrKeyProblem(ec("prime192v1"))), /curve prime192v1; AWS IoT takes NIST/);
    assert.match(String(csrKeyProblem(ec("secp256k1"))), /curve secp256k1/);
    assert.match(String(csrKeyProblem(rsa(1024))), /1024 bits; AWS IoT takes at least 2048/);
    assert.match(
      String(csrKeyProblem(spki(generateKeyPairSync("ed25519").publicKey))),
      /its key is ed25519/,
    );
    assert.match(String(csrKeyProblem(Buffer.from("not a key"))), /not usable/);
  });
});
