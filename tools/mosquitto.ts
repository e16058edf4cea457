// Mosquitto on this machine (a Debian package, not an npm one): where its binaries are, and the one
// mutual-TLS configuration that the interoperability tests and the benchmark's baseline both run.
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";

/** The environment variable that turns a missing Mosquitto from a skip into a failure (CI sets it). */
export const REQUIRE_MOSQUITTO = "REQUIRE_MOSQUITTO";

/** The environment variable naming the broker binary to use instead of searching for one. */
export const MOSQUITTO_BIN = "MOSQUITTO_BIN";

export const INSTALL_MOSQUITTO = "apt-get install mosquitto mosquitto-clients";

export interface MosquittoBinaries {
  readonly mosquitto: string;
  readonly mosquittoPub: string;
  readonly mosquittoSub: string;
}

function find(name: string): string | undefined {
  // The broker is in /usr/sbin, which is not on every user's PATH.
  for (const dir of [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/usr/local/sbin"]) {
    const p = path.join(dir, name);
    if (dir && fs.existsSync(p)) return p;
  }
  return undefined;
}

/** The broker and its two clients, or the names of those missing. */
export function findMosquitto(): MosquittoBinaries | { readonly missing: string[] } {
  const found = {
    mosquitto: find("mosquitto"),
    mosquittoPub: find("mosquitto_pub"),
    mosquittoSub: find("mosquitto_sub"),
  };
  const missing = Object.entries(found)
    .filter(([, p]) => p === undefined)
    .map(([k]) => k.replace(/([A-Z])/g, (c) => `_${c.toLowerCase()}`));
  return missing.length > 0 ? { missing } : (found as MosquittoBinaries);
}

/** The broker binary alone ($MOSQUITTO_BIN when set), or one line saying why there is none. */
export function findMosquittoBroker(
  env: NodeJS.ProcessEnv = process.env,
): { readonly bin: string } | { readonly reason: string } {
  const chosen = env[MOSQUITTO_BIN];
  if (chosen !== undefined && chosen !== "") {
    return fs.existsSync(chosen)
      ? { bin: chosen }
      : { reason: `${MOSQUITTO_BIN}=${chosen}: no such file` };
  }
  const bin = find("mosquitto");
  return bin !== undefined
    ? { bin }
    : { reason: `mosquitto not installed (${INSTALL_MOSQUITTO}, or set ${MOSQUITTO_BIN})` };
}

export interface MosquittoListener {
  /** The TLS listener's port, on 127.0.0.1. */
  readonly port: number;
  /** A PKI folder of local/identity/ca.ts: ca.crt, server.crt (localhost, 127.0.0.1) and server.key. */
  readonly pkiDir: string;
  /** Persistence on, with mosquitto.db in this folder; off (memory only) when absent. */
  readonly persistenceDir?: string;
  /** Log every packet (tests wait for log lines); otherwise Mosquitto's default log types. */
  readonly logAll?: boolean;
}

/**
 * mosquitto.conf for one mutual-TLS listener trusting only the local CA: a client needs a
 * certificate from it, and its certificate's CN becomes its user name, as a thing's does at AWS.
 */
export function mosquittoConf(opts: MosquittoListener): string {
  return [
    // As root, mosquitto would switch to the user "mosquitto", who cannot read 0600 keys.
    ...(process.getuid?.() === 0 ? ["user root"] : []),
    ...(opts.persistenceDir === undefined
      ? ["persistence false"]
      : [
          "persistence true",
          // With the trailing slash, as the package's own /etc/mosquitto/mosquitto.conf writes it.
          `persistence_location ${path.join(opts.persistenceDir, "/")}`,
        ]),
    "log_dest stderr",
    ...(opts.logAll === true ? ["log_type all"] : []),
    `listener ${opts.port} 127.0.0.1`,
    `cafile ${path.join(opts.pkiDir, "ca.crt")}`,
    `certfile ${path.join(opts.pkiDir, "server.crt")}`,
    `keyfile ${path.join(opts.pkiDir, "server.key")}`,
    "require_certificate true",
    "use_identity_as_username true",
    "",
  ].join("\n");
}

/**
 * A loopback port free at the time of asking, for Mosquitto's listener: Mosquitto cannot be told
 * to take any free port and report which.
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}
