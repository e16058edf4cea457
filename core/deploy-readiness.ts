// What `pulumi preview` and `pulumi up` refuse before building anything, beyond a valid config:
// a stack that would deploy something nobody can use or nobody would notice. The local pipeline
// (`npm run simulate`) does not ask: it needs no e-mail address, no CSR (its devices' keys and
// certificates are its own) and no connector jar.
import * as path from "node:path";
import { ConfigError } from "./errors";
import { pinCommand } from "./flink-connector";
import { ALARM_EMAIL_EXTERNAL } from "./monitoring";
import { DEFAULT_DEV_STACKS, PROJECT, PROJECT_DIR } from "./project";
import type { StackConfig } from "./stack-config";
import { httpDestinationProblem } from "./topic-rules/actions/http";

export interface ReadinessOptions {
  /** @default DEFAULT_DEV_STACKS */
  readonly devStacks?: readonly string[];
  /** Where relative paths are shown from. @default PROJECT_DIR */
  readonly dir?: string;
}

/** Each reason the stack cannot be deployed as configured, one actionable line each. */
export function deployProblems(config: StackConfig, opts: ReadinessOptions = {}): string[] {
  const dev = (opts.devStacks ?? DEFAULT_DEV_STACKS).includes(config.stack);
  const rel = (f: string) => path.relative(opts.dir ?? PROJECT_DIR, f);
  const problems: string[] = [];
  const s = config.stack;

  // A CSR's key must be on the device that will use the certificate: CSRs are made where the keys
  // are (`npm run csr`), never committed, so a clone cannot register certificates with lost keys.
  const missing = config.certificates.missingCsrs;
  if (missing.length > 0) {
    problems.push(
      `stack ${s}: no CSR for ${missing.length} device(s) (${missing.map(rel).join(", ")}); run \`npm run csr -- --stack ${s}\` on the machine that keeps the devices' keys, then preview again`,
    );
  }

  const alarms = config.monitoring.alarms;
  if (!dev && alarms.enabled && alarms.email === undefined && !alarms.subscribedElsewhere) {
    problems.push(
      `stack ${s}: config ${PROJECT}:alarmEmail is not set, so its alarms would notify an SNS topic nobody subscribes to; run \`pulumi config set ${PROJECT}:alarmEmail you@example.com\` (or \`pulumi config set ${PROJECT}:alarmEmail ${ALARM_EMAIL_EXTERNAL}\` if you subscribe the topic yourself)`,
    );
  }

  if (!dev && config.analytics !== undefined && config.flinkConnector.sha512 === undefined) {
    problems.push(
      `stack ${s}: config ${PROJECT}:flinkConnectorSha512 is not set, so the Managed Flink connector jar would be deployed unverified; pin the digest Maven Central publishes: ${pinCommand(config.flinkConnector.url)}`,
    );
  }
  // An HTTP action's destination must be confirmed and enabled before the rules engine uses it.
  for (const r of config.rules) {
    for (const a of [...r.actions, ...(r.errorAction === undefined ? [] : [r.errorAction])]) {
      const problem = a.kind === "http" ? httpDestinationProblem(a.params) : undefined;
      if (problem !== undefined) problems.push(`stack ${s}: rule ${r.name}: ${problem}`);
    }
  }
  return problems;
}

/** Throws the first problem as a ConfigError (one line), saying how many more there are. */
export function assertDeployable(config: StackConfig, opts: ReadinessOptions = {}): void {
  const problems = deployProblems(config, opts);
  if (problems.length === 0) return;
  const more =
    problems.length > 1
      ? ` (and ${problems.length - 1} more: see npm run check -- --stack ${config.stack})`
      : "";
  throw new ConfigError(`${problems[0]}${more}`);
}
