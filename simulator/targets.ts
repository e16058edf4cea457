// Where the devices connect and with which credentials: the embedded broker (its run file lets
// `subscribe` find a running simulate), an MQTT endpoint given by files, or a deployed AWS stack.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "../core/atomic-write";
import { isProcessRunning } from "../core/process-lock";
import { UserError } from "../core/errors";

/** A problem with the target the user can fix; one line, exit code 2. */
export class TargetError extends UserError {}

/** TLS material for one device; `ca` undefined means Node's default trust store. */
export interface DeviceCredentials {
  readonly key: string;
  readonly cert: string;
  readonly ca?: string;
}

/** What a running embedded simulate publishes about itself, so `subscribe` can attach. */
export interface RunFile {
  readonly pid: number;
  readonly stack: string;
  readonly url: string;
  readonly port: number;
  readonly stateDir: string;
  readonly startedAt: string;
}

export function runFilePath(stateDir: string, stack: string): string {
  return path.join(stateDir, "run", `${stack}.json`);
}

/** Writes the run file whole or not at all (a full disk must not leave half a file behind). */
export function writeRunFile(file: string, run: RunFile): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, JSON.stringify(run, null, 2) + "\n");
}

/** Removes the run file if it is still ours (a newer simulate may have replaced it). */
export function removeRunFile(file: string, pid = process.pid): void {
  try {
    const run = JSON.parse(fs.readFileSync(file, "utf8")) as RunFile;
    if (run.pid === pid) fs.rmSync(file, { force: true });
  } catch {
    // already gone
  }
}

/** The running simulate of `stack`, or a TargetError telling the user to start one. */
export function readRunFile(stateDir: string, stack: string): RunFile {
  const file = runFilePath(stateDir, stack);
  const hint = `start one first in another terminal: npm run simulate -- --stack ${stack} --duration 600`;
  let run: RunFile;
  try {
    run = JSON.parse(fs.readFileSync(file, "utf8")) as RunFile;
  } catch {
    throw new TargetError(
      `no embedded pipeline of stack ${stack} is running (${file} is missing); ${hint}`,
    );
  }
  if (typeof run.pid !== "number" || !isProcessRunning(run.pid)) {
    throw new TargetError(
      `the simulate that wrote ${file} (pid ${run.pid}) is no longer running; ${hint}`,
    );
  }
  return run;
}

function readFile(what: string, file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new TargetError(
      `cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
    );
  }
}

/**
 * Credentials from files for an external endpoint. `{thing}` in a path stands for the thing name,
 * so one pattern serves a fleet; without it, the files serve one device only.
 */
export function fileCredentials(
  things: readonly string[],
  certPattern: string,
  keyPattern: string,
  caFile: string | undefined,
): Map<string, DeviceCredentials> {
  if (things.length > 1 && !(certPattern.includes("{thing}") && keyPattern.includes("{thing}"))) {
    throw new TargetError(
      `--cert and --key name one device's files but ${things.length} devices would publish; use --devices 1 or put {thing} in both paths (e.g. --cert certs/{thing}.crt)`,
    );
  }
  const ca = caFile === undefined ? undefined : readFile("--ca", caFile);
  const out = new Map<string, DeviceCredentials>();
  for (const t of things) {
    out.set(t, {
      cert: readFile("--cert", certPattern.split("{thing}").join(t)),
      key: readFile("--key", keyPattern.split("{thing}").join(t)),
      ca,
    });
  }
  return out;
}

/** The parts of `pulumi stack output --json --show-secrets` that devices need (see program.ts). */
export interface AwsStackOutputs {
  readonly endpoint: string;
  readonly credentials: Map<string, DeviceCredentials>;
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return v !== null && typeof v === "object" && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

/** `pulumi stack output --json` as an object, or a TargetError. */
function stackOutputs(json: string, stack: string): Record<string, unknown> {
  let outputs: Record<string, unknown> | undefined;
  try {
    outputs = asRecord(JSON.parse(json));
  } catch {
    outputs = undefined;
  }
  if (!outputs) throw new TargetError(`pulumi stack output for ${stack} is not a JSON object`);
  return outputs;
}

/**
 * Reads a deployed stack's outputs: `endpoint`, `certificatePems` and (generated certificate
 * mode) `privateKeys`, both keyed by thing name. In csr mode the keys never left the devices:
 * `keyDir` must hold `<thing>.key` for each thing.
 */
export function parseAwsOutputs(
  json: string,
  stack: string,
  things: readonly string[],
  keyDir: string | undefined,
): AwsStackOutputs {
  const outputs = stackOutputs(json, stack);
  const endpoint = outputs.endpoint;
  if (typeof endpoint !== "string" || endpoint === "") {
    throw new TargetError(
      `stack ${stack} has no endpoint output; run pulumi up on it first (pulumi stack output --stack ${stack})`,
    );
  }
  const pems = asRecord(outputs.certificatePems) ?? {};
  const keys = asRecord(outputs.privateKeys) ?? {};
  const credentials = new Map<string, DeviceCredentials>();
  for (const t of things) {
    const cert = pems[t];
    if (typeof cert !== "string" || cert === "") {
      throw new TargetError(
        `stack ${stack} has no certificate for ${t} in its certificatePems output; run pulumi up`,
      );
    }
    let key = keys[t];
    if (typeof key !== "string" || key === "") {
      if (keyDir === undefined) {
        throw new TargetError(
          `stack ${stack} holds no private key for ${t} (csr certificate mode keeps keys on the devices); pass --key-dir DIR holding ${t}.key`,
        );
      }
      key = readFile("private key", path.join(keyDir, `${t}.key`));
    }
    // ca undefined: AWS IoT's ATS endpoint chains to Amazon Root CA 1, in Node's default store.
    credentials.set(t, { cert, key: key as string });
  }
  return { endpoint, credentials };
}

/** What a device needs to provision itself against a deployed fleet-provisioning stack. */
export interface AwsProvisioningOutputs {
  readonly endpoint: string;
  readonly templateName: string;
  readonly claim: { readonly cert: string; readonly key: string };
}

/** Reads `endpoint`, `provisioning` and `claimPrivateKey` (see program.ts) from the outputs. */
export function parseAwsProvisioningOutputs(json: string, stack: string): AwsProvisioningOutputs {
  const outputs = stackOutputs(json, stack);
  const endpoint = outputs.endpoint;
  const p = asRecord(outputs.provisioning);
  const key = outputs.claimPrivateKey;
  if (typeof endpoint !== "string" || endpoint === "" || p === undefined) {
    throw new TargetError(
      `stack ${stack} has no endpoint and provisioning outputs; deploy it in certificateMode fleet-provisioning (pulumi up) first`,
    );
  }
  if (typeof p.templateName !== "string" || typeof p.claimCertificatePem !== "string") {
    throw new TargetError(
      `stack ${stack}'s provisioning output lacks templateName or claimCertificatePem; run pulumi up`,
    );
  }
  if (typeof key !== "string" || key === "") {
    throw new TargetError(
      `stack ${stack} shows no claimPrivateKey; the outputs must be read with --show-secrets`,
    );
  }
  return { endpoint, templateName: p.templateName, claim: { cert: p.claimCertificatePem, key } };
}

/** Runs the Pulumi CLI for a fleet-provisioning stack's outputs. */
export function readAwsProvisioningOutputs(stack: string, cwd: string): AwsProvisioningOutputs {
  return parseAwsProvisioningOutputs(pulumiStackOutput(stack, cwd), stack);
}

/** Runs the Pulumi CLI for the stack's outputs; a missing CLI is a one-line TargetError. */
export function readAwsOutputs(
  stack: string,
  things: readonly string[],
  keyDir: string | undefined,
  cwd: string,
): AwsStackOutputs {
  return parseAwsOutputs(pulumiStackOutput(stack, cwd), stack, things, keyDir);
}

/** `pulumi stack output --json --show-secrets --stack <stack>`, or a one-line TargetError. */
function pulumiStackOutput(stack: string, cwd: string): string {
  let json: string;
  try {
    json = execFileSync(
      "pulumi",
      ["stack", "output", "--json", "--show-secrets", "--stack", stack],
      {
        cwd,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
        maxBuffer: 64 * 1024 * 1024,
      },
    );
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === "ENOENT") {
      throw new TargetError(
        "--aws needs the Pulumi CLI, which is not installed (https://www.pulumi.com/docs/install/); or pass --endpoint HOST --cert FILE --key FILE",
      );
    }
    const first = (err.stderr ?? err.message).trim().split("\n")[0];
    throw new TargetError(`pulumi stack output --stack ${stack} failed: ${first}`);
  }
  return json;
}
