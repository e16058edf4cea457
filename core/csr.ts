// The one reader of devices' certificate signing requests (PKCS#10), on @peculiar/x509: the stack
// config checks csr/<stack>/*.csr with it, and the mocked AWS issues certificates for the public
// key it returns.
import type * as X509 from "@peculiar/x509";

let x509: typeof X509 | undefined;

/** The library, loaded on first use: it takes a third of a second, which runs without CSRs skip. */
function lib(): typeof X509 {
  if (x509 === undefined) {
    /* eslint-disable @typescript-eslint/no-require-imports -- a synchronous, lazy load */
    require("reflect-metadata");
    x509 = require("@peculiar/x509") as typeof X509;
    /* eslint-enable @typescript-eslint/no-require-imports */
  }
  return x509;
}

/** Text that is not a PEM PKCS#10 request; the message says what it is instead. */
export class CsrFormatError extends Error {}

const PEM_CSR =
  /^-----BEGIN CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END CERTIFICATE REQUEST-----\s*$/;

/**
 * Parsed requests by their text. A fleet's CSR is read twice per run (the config's check, then the
 * mocked issuer), and each parse costs about a millisecond. Bounded: past it the cache starts over.
 */
const parsed = new Map<string, Buffer>();
const PARSED_MAX = 20_000;

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
    const request = new (lib().Pkcs10CertificateRequest)(Buffer.from(body[1], "base64"));
    spki = Buffer.from(request.publicKey.rawData);
  } catch (e) {
    throw new CsrFormatError(
      `not a PEM certificate signing request: its armour holds no PKCS#10 request (${(e as Error).message})`,
    );
  }
  if (parsed.size >= PARSED_MAX) parsed.clear();
  parsed.set(pem, spki);
  return spki;
}
