// A connection's client certificate read the way AWS IoT exposes it to policies: subject and
// issuer attributes, alternative names and serial number (cert-policy-variables.html).
import "reflect-metadata";
import type { X509Certificate as NodeCertificate } from "node:crypto";
import * as crypto from "node:crypto";
import * as x509 from "@peculiar/x509";
import { CERTIFICATE_NAME_ATTRIBUTES } from "../../core/iot-policy/policy";
import type { CertificateAttributes } from "../../core/iot-policy/policy-eval";

x509.cryptoProvider.set(crypto.webcrypto);

/** @peculiar's general-name kinds → AWS's alternative-name variable names. */
const ALT_NAME_KINDS: Readonly<Record<string, string>> = {
  dns: "DNSName",
  email: "RFC822Name",
  url: "UniformResourceIdentifier",
  ip: "IPAddress",
  dn: "DirectoryName",
};

function nameAttributes(name: x509.Name): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [attr, oid] of Object.entries(CERTIFICATE_NAME_ATTRIBUTES)) {
    const values = name.getField(oid);
    if (values.length > 0) out[attr] = values;
  }
  return out;
}

function altNames(ext: { names: x509.GeneralNames } | null): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const n of ext?.names.items ?? []) {
    const kind = ALT_NAME_KINDS[n.type];
    if (kind !== undefined) (out[kind] ??= []).push(n.value);
  }
  return out;
}

/** The attributes of a verified client certificate, for the policy evaluator. */
export function certificateAttributes(cert: NodeCertificate): CertificateAttributes {
  const c = new x509.X509Certificate(cert.raw);
  return {
    subject: nameAttributes(c.subjectName),
    issuer: nameAttributes(c.issuerName),
    subjectAltNames: altNames(c.getExtension(x509.SubjectAlternativeNameExtension)),
    issuerAltNames: altNames(c.getExtension(x509.IssuerAlternativeNameExtension)),
    // Upper-case hex, as `openssl x509 -serial` prints it; AWS's pages do not show the format.
    serialNumber: cert.serialNumber.toUpperCase(),
  };
}
