// PEM armour as RFC 7468 writes it: base64 in lines of 64 characters between BEGIN and END lines
// naming the label (https://www.rfc-editor.org/rfc/rfc7468#section-2).

/** DER bytes as PEM text under `label` ("CERTIFICATE", "PRIVATE KEY"), ending in a newline. */
export function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const bytes = der instanceof Uint8Array ? der : new Uint8Array(der);
  const base64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}
