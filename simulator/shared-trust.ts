// One trust store for a fleet: when every device trusts the same CA, that CA becomes this process's
// default for TLS clients while the fleet runs, and no device's connection carries a copy of it.
// Each copy is a certificate store of its own in every device's TLS context: about 7 KiB a device,
// 65 MiB for a fleet of 10,000 (tls.createSecureContext with and without `ca`, 2,000 of each).
import * as tls from "node:tls";

interface DefaultCAs {
  setDefaultCACertificates?: (certs: string[]) => void;
  getCACertificates?: (type?: "default") => string[];
}

/**
 * Makes `cas`' one CA this process's default trust for TLS clients (tls.setDefaultCACertificates)
 * when every device has the same one, and returns what puts the previous default back; the devices
 * then connect without `ca` and verify against exactly that CA. Undefined, and nothing changed,
 * when a device has none (AWS IoT: Node's own roots hold Amazon's), when they differ, or on a Node
 * without the calls (before 22.19).
 */
export function trustOnce(cas: ReadonlyArray<string | undefined>): (() => void) | undefined {
  const first = cas[0];
  if (first === undefined || cas.some((ca) => ca !== first)) return undefined;
  const { setDefaultCACertificates: set, getCACertificates: get } = tls as DefaultCAs;
  if (typeof set !== "function" || typeof get !== "function") return undefined;
  const previous = get("default");
  set([first]);
  return () => set(previous);
}
