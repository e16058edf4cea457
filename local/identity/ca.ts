// The local certificate authority: a CA, the embedded broker's server certificate, and one client
// certificate per identity (each thing of the fleet, plus `console`), kept under a folder and reused.
import "reflect-metadata";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as x509 from "@peculiar/x509";
import { writeFileAtomic } from "../../core/atomic-write";
import { UserError } from "../../core/errors";
import { IOT_THING_NAME } from "../../core/iot-limits";
import { toPem } from "../../core/pem";
import { withLock } from "../../core/process-lock";
import { CERTIFICATE_NAME_ATTRIBUTES } from "../../core/iot-policy/policy";
import type { LocalCertificateSpec, StackConfig, ThingSpec } from "../../core/stack-config";

x509.cryptoProvider.set(crypto.webcrypto);

type CryptoKey = crypto.webcrypto.CryptoKey;
type CryptoKeyPair = crypto.webcrypto.CryptoKeyPair;

/** The identity of the AWS console's MQTT test client, here: it may subscribe to see the traffic. */
export const CONSOLE_IDENTITY = "console";

/** Certificates that expire within this window are reissued (Device Defender flags 30 days). */
export const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;

const DAY_MS = 24 * 3600 * 1000;
const CA_VALIDITY_MS = 10 * 365 * DAY_MS;
const LEAF_VALIDITY_MS = 365 * DAY_MS;
// EC P-256: key generation and signing take well under a millisecond, so a 1,000-thing fleet is
// issued in seconds; AWS IoT accepts P-256 device certificates.
const KEY_ALG: crypto.webcrypto.EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const SIGN_ALG = { name: "ECDSA", hash: "SHA-256" };

/** PEM texts a TLS client needs. */
export interface Credentials {
  readonly key: string;
  readonly cert: string;
  readonly ca: string;
}

/** A CA able to sign: its certificate and private key. */
export interface CertificateAuthority {
  readonly cert: x509.X509Certificate;
  readonly key: CryptoKey;
  readonly certPem: string;
  readonly keyPem: string;
}

/** A key pair and certificate, as PEM. */
export interface IssuedCertificate {
  readonly key: string;
  readonly cert: string;
}

/** What the embedded broker and the devices use; all PEM. */
export interface Pki {
  readonly dir: string;
  readonly caPem: string;
  readonly server: IssuedCertificate;
  /** Paths of the files, for clients written by others (mosquitto_pub --cafile ...). */
  paths(identity: string): { key: string; cert: string; ca: string };
  credentialsFor(identity: string): Credentials;
  /** How many certificates this call created (0 when everything was reused). */
  readonly issued: number;
}

/** A PKI problem the user can fix; the message is one line. */
export class PkiError extends UserError {}

function fromPem(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64");
}

async function newKeyPair(): Promise<CryptoKeyPair> {
  return crypto.webcrypto.subtle.generateKey(KEY_ALG, true, [
    "sign",
    "verify",
  ]) as Promise<CryptoKeyPair>;
}

async function keyPem(key: CryptoKey): Promise<string> {
  return toPem(await crypto.webcrypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
}

async function importSigningKey(pem: string): Promise<CryptoKey> {
  return crypto.webcrypto.subtle.importKey("pkcs8", fromPem(pem), KEY_ALG, false, ["sign"]);
}

/** A new self-signed CA. */
export async function createCertificateAuthority(
  commonName = "iot-pipeline local CA",
  now = new Date(),
): Promise<CertificateAuthority> {
  const keys = await newKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: [{ CN: [commonName] }, { O: ["iot-pipeline (local, not for production)"] }],
    notBefore: new Date(now.getTime() - 60_000),
    notAfter: new Date(now.getTime() + CA_VALIDITY_MS),
    keys,
    signingAlgorithm: SIGN_ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    cert,
    key: keys.privateKey,
    certPem: cert.toString("pem") + "\n",
    keyPem: await keyPem(keys.privateKey),
  };
}

/**
 * What a certificate carries besides CN = its identity: subject attributes by AWS's attribute name
 * (`Organization`, `Country`, ...; several values each, in order) and subject alternative names by
 * AWS's kind (`DNSName`, `RFC822Name`, `UniformResourceIdentifier`, `IPAddress`), so that policies
 * using certificate variables can be tried locally.
 */
export interface CertificateProfile {
  readonly subject?: Readonly<Record<string, readonly string[]>>;
  readonly subjectAltNames?: Readonly<Record<string, readonly string[]>>;
}

/** AWS's alternative-name kinds → @peculiar/x509's general-name types. */
const ALT_NAME_TYPES: Readonly<Record<string, "dns" | "email" | "url" | "ip">> = {
  DNSName: "dns",
  RFC822Name: "email",
  UniformResourceIdentifier: "url",
  IPAddress: "ip",
};

/** The subject as @peculiar/x509's JSON: CN first, then each attribute value as its own RDN. */
function subjectJson(commonName: string, profile: CertificateProfile): x509.JsonName {
  const rdns: x509.JsonName = [{ CN: [commonName] }];
  for (const [attr, values] of Object.entries(profile.subject ?? {})) {
    const oid = CERTIFICATE_NAME_ATTRIBUTES[attr];
    if (oid === undefined || attr === "CommonName") {
      throw new PkiError(`certificate subject attribute ${attr} is not one AWS IoT exposes`);
    }
    for (const v of values) rdns.push({ [oid]: [v] });
  }
  return rdns;
}

function altNamesJson(profile: CertificateProfile): x509.JsonGeneralNames {
  return Object.entries(profile.subjectAltNames ?? {}).flatMap(([kind, values]) => {
    const type = ALT_NAME_TYPES[kind];
    if (type === undefined) throw new PkiError(`alternative name kind ${kind} is not supported`);
    return values.map((value) => ({ type, value }));
  });
}

/**
 * A fleet thing's profile from the stack's `localCertificates`: `{thing}`, `{thingType}`,
 * `{group}` and `{stack}` filled in.
 */
export function certificateProfileFor(
  spec: LocalCertificateSpec,
  thing: ThingSpec,
  config: Pick<StackConfig, "stack" | "thingType">,
): CertificateProfile {
  const fill = (v: string) =>
    v
      .split("{thing}")
      .join(thing.name)
      .split("{thingType}")
      .join(config.thingType.name)
      .split("{group}")
      .join(thing.group)
      .split("{stack}")
      .join(config.stack);
  const map = (m: Readonly<Record<string, readonly string[]>>) =>
    Object.fromEntries(Object.entries(m).map(([k, vs]) => [k, vs.map(fill)]));
  return { subject: map(spec.subject), subjectAltNames: map(spec.subjectAlternativeNames) };
}

export interface IssueOptions {
  /** Defaults to now minus a minute (clock skew). */
  readonly notBefore?: Date;
  /** Defaults to a year after notBefore. */
  readonly notAfter?: Date;
  /** A server certificate for localhost and 127.0.0.1 instead of a client one. */
  readonly server?: boolean;
  /** Subject attributes and alternative names besides the CN (client certificates). */
  readonly profile?: CertificateProfile;
}

/** Issues a certificate with CN = `commonName`, signed by `ca`, on a fresh P-256 key. */
export async function issueCertificate(
  ca: CertificateAuthority,
  commonName: string,
  opts: IssueOptions = {},
): Promise<IssuedCertificate> {
  const keys = await newKeyPair();
  const cert = await signCertificate(ca, commonName, keys.publicKey, opts);
  return { key: await keyPem(keys.privateKey), cert };
}

/**
 * A client certificate (PEM) for a public key someone else holds, as fleet provisioning's
 * CreateCertificateFromCsr issues it: the key pair never comes near the CA.
 */
export async function issueCertificateForKey(
  ca: CertificateAuthority,
  commonName: string,
  publicKey: x509.PublicKey | CryptoKey,
  opts: IssueOptions = {},
): Promise<string> {
  return signCertificate(ca, commonName, publicKey, opts);
}

async function signCertificate(
  ca: CertificateAuthority,
  commonName: string,
  publicKey: x509.PublicKey | CryptoKey,
  opts: IssueOptions,
): Promise<string> {
  const keys = { publicKey };
  const notBefore = opts.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter = opts.notAfter ?? new Date(notBefore.getTime() + LEAF_VALIDITY_MS);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([
      opts.server ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
    ]),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
  ];
  if (opts.server) {
    extensions.push(
      new x509.SubjectAlternativeNameExtension([
        { type: "dns", value: "localhost" },
        { type: "ip", value: "127.0.0.1" },
        { type: "ip", value: "::1" },
      ]),
    );
  } else {
    const names = altNamesJson(opts.profile ?? {});
    if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names));
  }
  const cert = await x509.X509CertificateGenerator.create({
    subject: subjectJson(commonName, opts.server ? {} : (opts.profile ?? {})),
    issuer: ca.cert.subjectName,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.key,
    signingAlgorithm: SIGN_ALG,
    extensions,
  });
  return cert.toString("pem") + "\n";
}

/** Identity names become file names: the thing-name alphabet (IOT_THING_NAME), nothing that walks folders. */
const IDENTITY = IOT_THING_NAME;

function identityPaths(dir: string, name: string) {
  if (!IDENTITY.test(name)) {
    throw new PkiError(
      `identity ${JSON.stringify(name)} is not a thing name (1-128 letters, digits, ':', '_' or '-')`,
    );
  }
  return {
    key: path.join(dir, "identities", `${name}.key`),
    cert: path.join(dir, "identities", `${name}.crt`),
    ca: path.join(dir, "ca.crt"),
  };
}

/** A DER element's header: where its content starts and ends, or undefined if malformed. */
function derElement(der: Buffer, at: number): { start: number; end: number } | undefined {
  if (at + 2 > der.length) return undefined;
  const first = der[at + 1];
  let start = at + 2;
  let length = first;
  if (first >= 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 4 || at + 2 + n > der.length) return undefined;
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[at + 2 + i];
    start = at + 2 + n;
  }
  return start + length > der.length ? undefined : { start, end: start + length };
}

/**
 * The subject Name's DER in a certificate (TBSCertificate: [0] version, serial, signature,
 * issuer, validity, subject), read by walking element headers: a full parse of every fleet
 * certificate on each start made reusing 1,000 certificates ten times slower.
 */
function subjectDer(der: Buffer): Buffer | undefined {
  const cert = derElement(der, 0);
  const tbs = cert && derElement(der, cert.start);
  if (!tbs) return undefined;
  let at = tbs.start;
  if (der[at] === 0xa0) at = derElement(der, at)?.end ?? -1; // explicit version
  for (let i = 0; i < 4 && at >= 0; i++) at = derElement(der, at)?.end ?? -1; // serial .. validity
  const subject = at >= 0 ? derElement(der, at) : undefined;
  return subject ? der.subarray(at, subject.end) : undefined;
}

/** The DER each profile's subject encodes to, by identity and profile. */
const wantedSubjects = new Map<string, Buffer>();

/** Whether a certificate carries exactly the profile's subject and alternative names. */
function hasProfile(cert: crypto.X509Certificate, name: string, profile: CertificateProfile) {
  const key = JSON.stringify([name, profile.subject ?? {}]);
  let wanted = wantedSubjects.get(key);
  if (wanted === undefined) {
    wanted = Buffer.from(new x509.Name(subjectJson(name, profile)).toArrayBuffer());
    if (wantedSubjects.size < 100_000) wantedSubjects.set(key, wanted);
  }
  const subject = subjectDer(cert.raw);
  if (subject === undefined || !subject.equals(wanted)) return false;
  const names = altNamesJson(profile);
  if (names.length === 0) return cert.subjectAltName === undefined;
  const c = new x509.X509Certificate(cert.raw);
  const san = c.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON() ?? [];
  return JSON.stringify(san) === JSON.stringify(names);
}

/**
 * True when `certFile` holds a certificate from `ca` that is valid for RENEW_BEFORE_MS more and,
 * for a client certificate, carries the wanted profile (a changed `localCertificates` reissues).
 */
function usable(
  certFile: string,
  keyFile: string,
  ca: crypto.X509Certificate,
  now: Date,
  profile?: { name: string; profile: CertificateProfile },
): boolean {
  if (!fs.existsSync(certFile) || !fs.existsSync(keyFile)) return false;
  try {
    const cert = new crypto.X509Certificate(fs.readFileSync(certFile));
    const key = crypto.createPrivateKey(fs.readFileSync(keyFile));
    return (
      (profile === undefined || hasProfile(cert, profile.name, profile.profile)) &&
      cert.checkIssued(ca) &&
      cert.verify(ca.publicKey) &&
      cert.checkPrivateKey(key) &&
      new Date(cert.validTo).getTime() - now.getTime() > RENEW_BEFORE_MS &&
      new Date(cert.validFrom).getTime() <= now.getTime() + 60_000
    );
  } catch {
    return false; // unreadable or corrupt: reissue
  }
}

/**
 * Holds the folder's lock while the PKI is created or extended, so two processes starting together
 * (a simulate and a benchmark) do not each mint a CA; waits up to a minute for another holder.
 */
function withPkiLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = path.join(dir, "lock.pid");
  return withLock(
    lock,
    {
      timeoutMs: 60_000,
      busy: ({ owner }) =>
        new PkiError(
          `${lock} is held by process ${owner}; stop it, or remove the file if it no longer runs`,
        ),
    },
    fn,
  );
}

async function loadOrCreateCa(
  dir: string,
  now: Date,
): Promise<{ ca: CertificateAuthority; created: boolean }> {
  const certFile = path.join(dir, "ca.crt");
  const keyFile = path.join(dir, "ca.key");
  if (fs.existsSync(certFile) && fs.existsSync(keyFile)) {
    try {
      const certPem = fs.readFileSync(certFile, "utf8");
      const keyPemText = fs.readFileSync(keyFile, "utf8");
      const cert = new x509.X509Certificate(certPem);
      if (cert.notAfter.getTime() - now.getTime() > RENEW_BEFORE_MS) {
        const key = await importSigningKey(keyPemText);
        return { ca: { cert, key, certPem, keyPem: keyPemText }, created: false };
      }
    } catch {
      // corrupt CA files: make a new CA (every leaf is then reissued)
    }
  }
  const ca = await createCertificateAuthority(undefined, now);
  writeFileAtomic(keyFile, ca.keyPem, 0o600);
  writeFileAtomic(certFile, ca.certPem, 0o644);
  return { ca, created: true };
}

/**
 * Makes sure `dir` holds a CA, a server certificate for localhost/127.0.0.1 and a client
 * certificate for each identity (CN = the name, plus its profile's subject attributes and
 * alternative names), issuing only what is missing, expiring (30 days), not from the current CA
 * or not carrying its profile. Private keys are written mode 0600, the folder 0700.
 */
export async function ensurePki(
  dir: string,
  identities: readonly string[],
  now: Date = new Date(),
  profiles: Readonly<Record<string, CertificateProfile>> = {},
): Promise<Pki> {
  fs.mkdirSync(path.join(dir, "identities"), { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  let issued = 0;
  const caPem = await withPkiLock(dir, async () => {
    const { ca, created } = await loadOrCreateCa(dir, now);
    if (created) issued++;
    const caNative = new crypto.X509Certificate(ca.certPem);
    const wanted: Array<{ name: string; server: boolean; key: string; cert: string }> = [
      {
        name: "localhost",
        server: true,
        key: path.join(dir, "server.key"),
        cert: path.join(dir, "server.crt"),
      },
      ...[...new Set(identities)].map((name) => ({
        name,
        server: false,
        ...identityPaths(dir, name),
      })),
    ];
    const profileOf = (w: { name: string; server: boolean }) =>
      w.server ? undefined : { name: w.name, profile: profiles[w.name] ?? {} };
    const missing = wanted.filter((w) => !usable(w.cert, w.key, caNative, now, profileOf(w)));
    // Issue in parallel chunks: signing is async in WebCrypto, and 1,000 at once is fine.
    for (let i = 0; i < missing.length; i += 100) {
      await Promise.all(
        missing.slice(i, i + 100).map(async (w) => {
          const c = await issueCertificate(ca, w.name, {
            server: w.server,
            profile: profileOf(w)?.profile,
          });
          writeFileAtomic(w.key, c.key, 0o600);
          writeFileAtomic(w.cert, c.cert, 0o644);
        }),
      );
    }
    issued += missing.length;
    return ca.certPem;
  });
  const server = {
    key: fs.readFileSync(path.join(dir, "server.key"), "utf8"),
    cert: fs.readFileSync(path.join(dir, "server.crt"), "utf8"),
  };
  return {
    dir,
    caPem,
    server,
    issued,
    paths: (name) => identityPaths(dir, name),
    credentialsFor: (name) => readCredentials(dir, name),
  };
}

/** The CA of a PKI folder, able to sign (made if missing, as ensurePki would). */
export async function openCertificateAuthority(
  dir: string,
  now: Date = new Date(),
): Promise<CertificateAuthority> {
  fs.mkdirSync(path.join(dir, "identities"), { recursive: true, mode: 0o700 });
  return withPkiLock(dir, async () => (await loadOrCreateCa(dir, now)).ca);
}

/** Reads an identity's credentials, or throws a one-line PkiError telling what to run. */
export function readCredentials(dir: string, identity: string): Credentials {
  const p = identityPaths(dir, identity);
  try {
    return {
      key: fs.readFileSync(p.key, "utf8"),
      cert: fs.readFileSync(p.cert, "utf8"),
      ca: fs.readFileSync(p.ca, "utf8"),
    };
  } catch {
    throw new PkiError(
      `no local certificate for ${JSON.stringify(identity)} under ${dir}; run npm run simulate once to issue the stack's certificates`,
    );
  }
}
