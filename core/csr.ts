// The one reader of devices' certificate signing requests (PKCS#10, RFC 2986): the stack config
// checks csr/<stack>/*.csr with it, and the mocked AWS issues certificates for the public key it
// returns. A small strict DER reader rather than a general ASN.1 library: a 10,000-device fleet
// reads 10,000 requests per build, and the library took a millisecond each.
import { createPublicKey } from "node:crypto";

/** Text that is not a PEM PKCS#10 request; the message says what it is instead. */
export class CsrFormatError extends Error {}

const PEM_CSR =
  /^-----BEGIN CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END CERTIFICATE REQUEST-----\s*$/;

/**
 * Parsed requests by their text. A fleet's CSR is read twice per run (the config's check, then the
 * mocked issuer). Bounded: past it the cache starts over.
 */
const parsed = new Map<string, Buffer>();
const PARSED_MAX = 20_000;

/** DER tags (X.690) the request is built of. */
const INTEGER = 0x02;
const BIT_STRING = 0x03;
const SEQUENCE = 0x30;
/** `attributes [0] IMPLICIT SET OF Attribute`: context-specific, constructed, number 0. */
const ATTRIBUTES = 0xa0;

/** Nesting a request never needs (a Name holds SEQUENCE, SET, SEQUENCE, value): a bound on input. */
const MAX_DEPTH = 32;

/** One DER element: its tag and where its content lies in the buffer. */
interface Element {
  readonly tag: number;
  /** The first byte of the element (its tag). */
  readonly start: number;
  readonly contentStart: number;
  /** One past the last byte of the content (and of the element). */
  readonly end: number;
}

class DerError extends Error {}

/** The element at `at`, which must end by `limit`; definite lengths only, as DER requires. */
function elementAt(der: Buffer, at: number, limit: number): Element {
  if (at + 2 > limit) throw new DerError(`an element cut short at byte ${at}`);
  const tag = der[at];
  if ((tag & 0x1f) === 0x1f) throw new DerError(`a multi-byte tag at byte ${at}`);
  let length = der[at + 1];
  let contentStart = at + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0) throw new DerError(`an indefinite length at byte ${at} (not DER)`);
    if (n > 4) throw new DerError(`a length of ${n} bytes at byte ${at}`);
    if (contentStart + n > limit) throw new DerError(`a length cut short at byte ${at}`);
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[contentStart + i];
    contentStart += n;
  }
  const end = contentStart + length;
  if (end > limit) throw new DerError(`an element at byte ${at} longer than what holds it`);
  return { tag, start: at, contentStart, end };
}

/**
 * The elements inside a constructed element, each of whose own constructed content is well-formed
 * down to its leaves, so that nothing malformed hides inside a part the reader does not look at.
 */
function children(der: Buffer, parent: Element, depth = 0): Element[] {
  if (depth > MAX_DEPTH) throw new DerError(`elements nested more than ${MAX_DEPTH} deep`);
  const out: Element[] = [];
  for (let at = parent.contentStart; at < parent.end;) {
    const e = elementAt(der, at, parent.end);
    if (e.tag & 0x20) children(der, e, depth + 1);
    out.push(e);
    at = e.end;
  }
  return out;
}

function expect(e: Element | undefined, tag: number, what: string): Element {
  if (e === undefined) throw new DerError(`no ${what}`);
  if (e.tag !== tag) {
    throw new DerError(`tag 0x${e.tag.toString(16)} where the ${what} belongs`);
  }
  return e;
}

/**
 * The SubjectPublicKeyInfo (DER) of a PKCS#10 request:
 *
 *     CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature BIT STRING }
 *     CertificationRequestInfo ::= SEQUENCE { version INTEGER (0), subject Name,
 *                                             subjectPKInfo SubjectPublicKeyInfo, attributes [0] }
 */
function requestPublicKeyInfo(der: Buffer): Buffer {
  const whole = elementAt(der, 0, der.length);
  if (whole.end !== der.length) throw new DerError("bytes after the request");
  const [info, algorithm, signature, ...rest] = children(der, expect(whole, SEQUENCE, "request"));
  if (rest.length > 0) throw new DerError("more than three parts in the request");
  expect(info, SEQUENCE, "certificationRequestInfo");
  expect(algorithm, SEQUENCE, "signatureAlgorithm");
  expect(signature, BIT_STRING, "signature");
  const [version, subject, spki, attributes, ...more] = children(der, info);
  if (more.length > 0) throw new DerError("more than four parts in certificationRequestInfo");
  expect(version, INTEGER, "version");
  if (version.end - version.contentStart !== 1 || der[version.contentStart] !== 0) {
    throw new DerError("a version other than 0 (v1)");
  }
  expect(subject, SEQUENCE, "subject");
  expect(spki, SEQUENCE, "subjectPKInfo");
  expect(attributes, ATTRIBUTES, "attributes");
  const [keyAlgorithm, key, ...extra] = children(der, spki);
  if (extra.length > 0) throw new DerError("more than two parts in subjectPKInfo");
  expect(keyAlgorithm, SEQUENCE, "subjectPKInfo algorithm");
  expect(key, BIT_STRING, "subjectPublicKey");
  const out = Buffer.from(der.subarray(spki.start, spki.end));
  // The key itself must be one a certificate can be issued for (a point on its curve, a modulus).
  try {
    createPublicKey({ key: out, format: "der", type: "spki" });
  } catch (e) {
    throw new DerError(`its public key is not usable (${(e as Error).message})`);
  }
  return out;
}

/** The SubjectPublicKeyInfo (DER) of a PEM certificate request, or a CsrFormatError. */
export function csrPublicKeyInfo(pem: string): Buffer {
  const hit = parsed.get(pem);
  if (hit !== undefined) return hit;
  const body = PEM_CSR.exec(`${pem.trim()}\n`);
  if (body === null) {
    throw new CsrFormatError("not a PEM certificate signing request (BEGIN CERTIFICATE REQUEST)");
  }
  let spki: Buffer;
  try {
    spki = requestPublicKeyInfo(Buffer.from(body[1], "base64"));
  } catch (e) {
    if (!(e instanceof DerError)) throw e;
    throw new CsrFormatError(
      `not a PEM certificate signing request: its armour holds no PKCS#10 request (${e.message})`,
    );
  }
  if (parsed.size >= PARSED_MAX) parsed.clear();
  parsed.set(pem, spki);
  return spki;
}

/**
 * Why a request's public key is not one AWS IoT issues a certificate for, or undefined when it is:
 * "an RSA key with a length of at least 2048 bits or derived from supported NIST P-256, NIST P-384,
 * or NIST P-521 curves" (https://docs.aws.amazon.com/iot/latest/developerguide/x509-client-certs.html,
 * and the CreateCertificateFromCsr API reference). P-192, secp256k1, Brainpool, Ed25519 are not.
 */
export function csrKeyProblem(spki: Buffer): string | undefined {
  let key;
  try {
    key = createPublicKey({ key: spki, format: "der", type: "spki" });
  } catch (e) {
    return `its public key is not usable (${(e as Error).message})`;
  }
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === "ec") {
    const curve = details.namedCurve ?? "unknown";
    return SUPPORTED_CURVES.has(curve)
      ? undefined
      : `its EC key is on curve ${curve}; AWS IoT takes NIST P-256, P-384 or P-521`;
  }
  if (type === "rsa" || type === "rsa-pss") {
    const bits = details.modulusLength ?? 0;
    return bits >= 2048 ? undefined : `its RSA key has ${bits} bits; AWS IoT takes at least 2048`;
  }
  return `its key is ${type ?? "of an unknown type"}; AWS IoT takes RSA (2048 bits or more) or EC P-256, P-384, P-521`;
}

/** OpenSSL's names of NIST P-256, P-384 and P-521. */
const SUPPORTED_CURVES = new Set(["prime256v1", "secp384r1", "secp521r1"]);
