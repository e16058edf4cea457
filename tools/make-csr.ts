// `npm run csr -- --stack <stack>`: what each device of a csr-mode stack does before `pulumi up`:
// make an EC P-256 key that stays local (.local/devices/<stack>/<thing>.key, mode 0600) and a
// certificate signing request for it in the stack's csrDir, which AWS IoT issues the certificate from.
import "reflect-metadata";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { writeFileAtomic } from "../core/atomic-write";
import { shownPath } from "../core/display";
import { ConfigError } from "../core/errors";
import { PROJECT_DIR } from "../core/project";
import { parseStackConfig, readRawStackConfig } from "../core/stack-config";
import { runCommand } from "../core/command";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC = { name: "ECDSA", namedCurve: "P-256" } as const;
const SIGNING = { name: "ECDSA", hash: "SHA-256" } as const;

export interface MakeCsrOptions {
  readonly stack: string;
  /** Replace CSRs that exist already (their keys are not here, or are replaced too). */
  readonly force?: boolean;
  /** Project folder (Pulumi.yaml). @default the repository root */
  readonly dir?: string;
  /** Where device keys go. @default <dir>/.local/devices/<stack> */
  readonly keyDir?: string;
}

export type CsrOutcome = "created" | "kept" | "csr-from-existing-key" | "skipped";

export interface CsrResult {
  readonly thing: string;
  readonly csrFile: string;
  readonly keyFile: string;
  readonly outcome: CsrOutcome;
}

async function importKey(pem: string) {
  const der = x509.PemConverter.decodeFirst(pem);
  const privateKey = await webcrypto.subtle.importKey("pkcs8", der, EC, true, ["sign"]);
  // The CSR needs the public half too; derive it through a JWK without the private part.
  const jwk = await webcrypto.subtle.exportKey("jwk", privateKey);
  delete jwk.d;
  delete jwk.key_ops;
  const publicKey = await webcrypto.subtle.importKey("jwk", jwk, EC, true, ["verify"]);
  return { privateKey, publicKey };
}

/**
 * Makes the missing keys and CSRs of a stack's things. Existing keys are never overwritten
 * without `force`; a CSR whose key is not here is left alone unless `force` replaces both.
 */
export async function makeCsrs(opts: MakeCsrOptions): Promise<CsrResult[]> {
  const dir = opts.dir ?? PROJECT_DIR;
  const raw = readRawStackConfig(opts.stack, dir);
  // Validate everything but the CSRs themselves, which are what this tool makes.
  const config = parseStackConfig({ ...raw, certificateMode: "generated" }, opts.stack, dir);
  const csrDirValue = raw.csrDir;
  if (typeof csrDirValue !== "string" || csrDirValue.trim() === "") {
    throw new ConfigError(`config iot-pipeline:csrDir is not set for stack ${opts.stack}`);
  }
  const csrDir = path.resolve(dir, csrDirValue);
  const keyDir = opts.keyDir ?? path.join(dir, ".local", "devices", opts.stack);
  fs.mkdirSync(csrDir, { recursive: true });
  fs.mkdirSync(keyDir, { recursive: true, mode: 0o700 });

  const results: CsrResult[] = [];
  for (const thing of config.things.map((t) => t.name)) {
    const csrFile = path.join(csrDir, `${thing}.csr`);
    const keyFile = path.join(keyDir, `${thing}.key`);
    const haveCsr = fs.existsSync(csrFile);
    const haveKey = fs.existsSync(keyFile);
    let outcome: CsrOutcome;
    let keys: { privateKey: webcrypto.CryptoKey; publicKey: webcrypto.CryptoKey };
    if (haveCsr && haveKey && !opts.force) {
      results.push({ thing, csrFile, keyFile, outcome: "kept" });
      continue;
    } else if (haveCsr && !opts.force) {
      results.push({ thing, csrFile, keyFile, outcome: "skipped" });
      continue;
    } else if (haveKey && !opts.force) {
      keys = await importKey(fs.readFileSync(keyFile, "utf8"));
      outcome = "csr-from-existing-key";
    } else {
      keys = await webcrypto.subtle.generateKey(EC, true, ["sign", "verify"]);
      const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey);
      // Whole or not at all: a crash never leaves half a key behind.
      writeFileAtomic(keyFile, x509.PemConverter.encode(pkcs8, "PRIVATE KEY"), 0o600);
      outcome = "created";
    }
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: `CN=${thing}`,
      keys: keys as never,
      signingAlgorithm: SIGNING,
    });
    fs.writeFileSync(csrFile, csr.toString("pem") + "\n");
    results.push({ thing, csrFile, keyFile, outcome });
  }
  return results;
}

/**
 * CSRs for keys that are thrown away, written into a new temporary folder: what the mocked program
 * (`npm run check`, the tests) builds a csr-mode stack from when its real CSRs are not made yet.
 * Nothing deployable comes of them: no key survives, and `pulumi up` reads the stack's csrDir.
 */
export async function throwawayCsrDir(things: readonly string[]): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "iot-pipeline-throwaway-csr-"));
  for (const thing of things) {
    const keys = await webcrypto.subtle.generateKey(EC, false, ["sign", "verify"]);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: `CN=${thing}`,
      keys: keys as never,
      signingAlgorithm: SIGNING,
    });
    fs.writeFileSync(path.join(dir, `${thing}.csr`), csr.toString("pem") + "\n");
  }
  return dir;
}

function usage(): never {
  throw new ConfigError("usage: npm run csr -- --stack <stack> [--force]");
}

async function main(argv: string[]): Promise<void> {
  let stack: string | undefined;
  let force = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--stack") stack = argv[++i] ?? usage();
    else if (a.startsWith("--stack=")) stack = a.slice("--stack=".length);
    else if (a === "--force") force = true;
    else if (a === "--help" || a === "-h") {
      console.log("usage: npm run csr -- --stack <stack> [--force]");
      return;
    } else
      throw new ConfigError(
        `unknown argument ${a}; usage: npm run csr -- --stack <stack> [--force]`,
      );
  }
  if (stack === undefined) usage();
  const mode = readRawStackConfig(stack).certificateMode;
  if (mode !== "csr") {
    console.log(
      `note: stack ${stack} has certificateMode ${String(mode)}; pulumi up uses these CSRs only with certificateMode csr`,
    );
  }
  const results = await makeCsrs({ stack, force });
  for (const r of results) {
    const what = {
      created: `new key ${shownPath(r.keyFile)} and CSR ${shownPath(r.csrFile)}`,
      kept: `kept ${shownPath(r.csrFile)} (its key is ${shownPath(r.keyFile)})`,
      "csr-from-existing-key": `CSR ${shownPath(r.csrFile)} for the existing key ${shownPath(r.keyFile)}`,
      skipped: `kept ${shownPath(r.csrFile)}; its key is not on this machine (--force makes a new key and CSR)`,
    }[r.outcome];
    console.log(`${r.thing}: ${what}`);
  }
}

if (require.main === module) runCommand("csr", () => main(process.argv.slice(2)).then(() => 0));
