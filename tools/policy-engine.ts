// Runs the policy pack's policies the way the Pulumi engine's analyzer does (pack config, levels,
// not-applicable, unknown-checking props, stack resources with parents), for `npm run check`
// and the tests, with no Pulumi CLI.
import * as fs from "node:fs";
import * as path from "node:path";
import Ajv, { type ValidateFunction } from "ajv";
import {
  type EnforcementLevel,
  type Policies,
  type PolicyResource,
  type PolicyResourceOptions,
  type ReportViolation,
  type ResourceValidation,
  type ResourceValidationArgs,
  type StackValidation,
  type StackValidationArgs,
  UnknownValueError,
  unknownCheckingProxy,
} from "@pulumi/policy";
import {
  PACK_ENFORCEMENT_LEVEL,
  PACK_NAME,
  policies as packPolicies,
  setStackNameSource,
} from "../policypack/policies";
import { UserError } from "../core/errors";

/** A pack config that the CLI would refuse; the message is one line naming the file or policy. */
export class PackConfigError extends UserError {}

export const ENFORCEMENT_LEVELS: readonly EnforcementLevel[] = [
  "advisory",
  "mandatory",
  "remediate",
  "disabled",
];

/** A policy's effective level and its config properties (schema defaults applied). */
export interface PolicySettings {
  readonly level: EnforcementLevel;
  readonly config: Readonly<Record<string, unknown>>;
}

/** Reads a `--policy-pack-config` JSON file. */
export function readPackConfig(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    throw new PackConfigError(
      `policy pack config ${file} does not exist; pass the path of a JSON file`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new PackConfigError(
      `policy pack config ${file} is not valid JSON: ${(e as Error).message.split("\n")[0]}`,
    );
  }
}

function isLevel(v: unknown): v is EnforcementLevel {
  return typeof v === "string" && (ENFORCEMENT_LEVELS as readonly string[]).includes(v);
}

const ajv = new Ajv({ useDefaults: true, allErrors: false, strict: false });
const validators = new WeakMap<Policies[number], ValidateFunction>();

/** The policy's config schema, compiled once per policy. */
function validatorFor(p: Policies[number]): ValidateFunction {
  let v = validators.get(p);
  if (!v) {
    v = ajv.compile({
      type: "object",
      properties: p.configSchema?.properties ?? {},
      required: p.configSchema?.required ?? [],
    });
    validators.set(p, v);
  }
  return v;
}

/**
 * Resolves each policy's level and config as the CLI does: the policy's entry in the pack config
 * (a level, or an object with `enforcementLevel` and options), then the `all` entry, then the
 * policy's own level, then the pack's default; options are checked against the policy's
 * config schema and its defaults filled in.
 */
export function resolvePackConfig(
  raw: unknown = {},
  policies: Policies = packPolicies,
  packLevel: EnforcementLevel = PACK_ENFORCEMENT_LEVEL,
): Map<string, PolicySettings> {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new PackConfigError(
      'policy pack config must be a JSON object of policy name to level or options, e.g. {"iot-policy-no-allow-all": "advisory"}',
    );
  }
  const entries = raw as Record<string, unknown>;
  const names = new Set(policies.map((p) => p.name));
  for (const key of Object.keys(entries)) {
    if (key !== "all" && !names.has(key)) {
      throw new PackConfigError(
        `policy pack config names unknown policy ${JSON.stringify(key)}; known policies: all, ${[...names].join(", ")}`,
      );
    }
  }
  let allLevel: EnforcementLevel | undefined;
  if (entries.all !== undefined) {
    const all = entries.all;
    const level =
      typeof all === "object" && all !== null
        ? (all as Record<string, unknown>).enforcementLevel
        : all;
    if (!isLevel(level)) {
      throw new PackConfigError(
        `policy pack config "all" = ${JSON.stringify(all)} is invalid: use one of ${ENFORCEMENT_LEVELS.join(", ")}`,
      );
    }
    allLevel = level;
  }
  const settings = new Map<string, PolicySettings>();
  for (const p of policies) {
    const entry = entries[p.name];
    let level: EnforcementLevel | undefined;
    let config: Record<string, unknown> = {};
    if (typeof entry === "string") {
      if (!isLevel(entry)) {
        throw new PackConfigError(
          `policy pack config ${p.name} = ${JSON.stringify(entry)} is invalid: use one of ${ENFORCEMENT_LEVELS.join(", ")}`,
        );
      }
      level = entry;
    } else if (typeof entry === "object" && entry !== null && !Array.isArray(entry)) {
      const { enforcementLevel, ...rest } = entry as Record<string, unknown>;
      if (enforcementLevel !== undefined && !isLevel(enforcementLevel)) {
        throw new PackConfigError(
          `policy pack config ${p.name}.enforcementLevel = ${JSON.stringify(enforcementLevel)} is invalid: use one of ${ENFORCEMENT_LEVELS.join(", ")}`,
        );
      }
      level = enforcementLevel;
      config = structuredClone(rest);
    } else if (entry !== undefined) {
      throw new PackConfigError(
        `policy pack config ${p.name} = ${JSON.stringify(entry)} is invalid: use a level or an object of options`,
      );
    }
    const validate = validatorFor(p);
    if (!validate(config)) {
      const err = validate.errors?.[0];
      const where = `${p.name}${err?.instancePath.replace(/\//g, ".") ?? ""}`;
      throw new PackConfigError(
        `policy pack config ${where} is invalid: ${err?.message ?? "does not match the policy's config schema"}`,
      );
    }
    settings.set(p.name, { level: level ?? allLevel ?? p.enforcementLevel ?? packLevel, config });
  }
  return settings;
}

/** One violation as the CLI would print it. */
export interface Violation {
  readonly policy: string;
  readonly description: string;
  readonly level: "advisory" | "mandatory";
  readonly message: string;
  readonly urn?: string;
}

/** A resource as the program registered it: inputs go to resource policies, props to stack ones. */
export interface CheckedResource {
  readonly type: string;
  readonly name: string;
  readonly urn: string;
  readonly inputs: Record<string, unknown>;
  readonly props: Record<string, unknown>;
  readonly parent?: string;
  readonly dependencies?: readonly string[];
  readonly propertyDependencies?: Readonly<Record<string, readonly string[]>>;
}

/**
 * What `notApplicable()` throws; caught by the engine around every validation and never seen
 * outside it. Not an Error: most resources are not applicable to most policies, and capturing a
 * stack trace for each of them was a large part of a big stack's check.
 */
class NotApplicable {
  constructor(readonly reason?: string) {}
}

const notApplicable = (reason?: string): never => {
  throw new NotApplicable(reason);
};

const OPTIONS: PolicyResourceOptions = {
  protect: false,
  ignoreChanges: [],
  aliases: [],
  customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
  additionalSecretOutputs: [],
};

function pulumiTypeOf(x: unknown): string | undefined {
  const t = (x as { __pulumiType?: unknown } | undefined)?.__pulumiType;
  return typeof t === "string" && t !== "" ? t : undefined;
}

/** The engine hands each validation a fresh, deserialized copy behind the unknown-checking proxy. */
function fresh(props: Record<string, unknown>): Record<string, unknown> {
  let copy: Record<string, unknown>;
  try {
    copy = structuredClone(props);
  } catch {
    copy = { ...props };
  }
  return unknownCheckingProxy(copy) as Record<string, unknown>;
}

function isTypeOf(type: string, resourceClass: unknown): boolean {
  const t = pulumiTypeOf(resourceClass);
  if (t) return type === t;
  const isInstance = (resourceClass as { isInstance?: unknown }).isInstance;
  return typeof isInstance === "function" && isInstance({ __pulumiType: type }) === true;
}

/**
 * One resource as a stack policy sees it. The engine deserializes every resource afresh for each
 * stack policy (@pulumi/policy's analyzeStack), so that no policy sees another's changes; here each
 * policy gets objects of its own too, but a resource's props, options and dependencies are copied
 * only when the policy reads them. Policies read few resources' props, and copying 60,000
 * resources per policy was most of the check of a 10,000-thing stack.
 */
class StackResource implements PolicyResource {
  private copied?: Record<string, unknown>;
  private options?: PolicyResourceOptions;
  private deps?: PolicyResource[];
  private propDeps?: Record<string, PolicyResource[]>;

  constructor(
    private readonly r: CheckedResource,
    private readonly byUrn: ReadonlyMap<string, StackResource>,
  ) {}

  get type(): string {
    return this.r.type;
  }
  get urn(): string {
    return this.r.urn;
  }
  get name(): string {
    return this.r.name;
  }
  get props(): Record<string, unknown> {
    this.copied ??= fresh(this.r.props);
    return this.copied;
  }
  get opts(): PolicyResourceOptions {
    this.options ??= this.r.parent ? { ...OPTIONS, parent: this.r.parent } : { ...OPTIONS };
    return this.options;
  }
  get parent(): PolicyResource | undefined {
    return this.r.parent === undefined ? undefined : this.byUrn.get(this.r.parent);
  }
  get dependencies(): PolicyResource[] {
    this.deps ??= this.find(this.r.dependencies);
    return this.deps;
  }
  get propertyDependencies(): Record<string, PolicyResource[]> {
    if (this.propDeps === undefined) {
      this.propDeps = {};
      for (const [k, urns] of Object.entries(this.r.propertyDependencies ?? {})) {
        this.propDeps[k] = this.find(urns);
      }
    }
    return this.propDeps;
  }
  isType(cls: unknown): boolean {
    return isTypeOf(this.r.type, cls);
  }
  asType(cls: unknown): never {
    return (isTypeOf(this.r.type, cls) ? this.props : undefined) as never;
  }

  private find(urns: readonly string[] | undefined): PolicyResource[] {
    return (urns ?? []).map((u) => this.byUrn.get(u)).filter((x) => x !== undefined);
  }
}

/**
 * What a resource policy is called with for one resource. Like the engine, each call gets its own
 * deserialized copy of the inputs; it is made when the policy first reads them, which a policy that
 * finds the resource not applicable (most resources, for most policies) never does.
 */
class ValidationArgs implements ResourceValidationArgs {
  readonly stackTags: ReadonlyMap<string, string> = new Map();
  private copied?: Record<string, unknown>;
  private options?: PolicyResourceOptions;

  constructor(
    private readonly r: CheckedResource,
    readonly getConfig: <T extends object>() => T,
  ) {}

  get type(): string {
    return this.r.type;
  }
  get urn(): string {
    return this.r.urn;
  }
  get name(): string {
    return this.r.name;
  }
  get props(): Record<string, unknown> {
    this.copied ??= fresh(this.r.inputs);
    return this.copied;
  }
  get opts(): PolicyResourceOptions {
    this.options ??= this.r.parent ? { ...OPTIONS, parent: this.r.parent } : OPTIONS;
    return this.options;
  }
  isType(cls: unknown): boolean {
    return isTypeOf(this.r.type, cls);
  }
  asType(cls: unknown): never {
    return (isTypeOf(this.r.type, cls) ? this.props : undefined) as never;
  }
  notApplicable(reason?: string): never {
    return notApplicable(reason);
  }
}

function stackResources(resources: readonly CheckedResource[]): PolicyResource[] {
  const byUrn = new Map<string, StackResource>();
  const built = resources.map((r) => {
    const pr = new StackResource(r, byUrn);
    byUrn.set(r.urn, pr);
    return pr;
  });
  return built;
}

export interface RunOptions {
  /** The stack name the policies see (as PULUMI_NODEJS_STACK tells a running pack). */
  readonly stack: string;
  /** Resolved settings; defaults to {@link resolvePackConfig} of an empty config. */
  readonly settings?: Map<string, PolicySettings>;
  readonly policies?: Policies;
}

/** Runs every enabled resource policy on each resource's inputs and every stack policy on all. */
export async function runPolicies(
  resources: readonly CheckedResource[],
  opts: RunOptions,
): Promise<Violation[]> {
  const policies = opts.policies ?? packPolicies;
  const settings = opts.settings ?? resolvePackConfig({}, policies);
  const violations: Violation[] = [];
  setStackNameSource(() => opts.stack);
  try {
    for (const p of policies) {
      const s = settings.get(p.name) ?? {
        level: p.enforcementLevel ?? PACK_ENFORCEMENT_LEVEL,
        config: {},
      };
      if (s.level === "disabled") continue;
      // A violation left after remediation is reported as mandatory, as the engine does.
      const level: Violation["level"] = s.level === "advisory" ? "advisory" : "mandatory";
      const getConfig = <T extends object>(): T => structuredClone(s.config) as T;
      const push = (message: string, urn: string | undefined, lvl = level) =>
        violations.push({ policy: p.name, description: p.description, level: lvl, message, urn });
      const guard = async (urn: string | undefined, run: () => Promise<void> | void) => {
        try {
          await run();
        } catch (e) {
          if (e instanceof NotApplicable) return;
          if (e instanceof UnknownValueError) {
            push(
              `can't run policy ${p.name} during preview: ${(e as Error).message}`,
              urn,
              "advisory",
            );
            return;
          }
          throw new Error(
            `Error validating resource with policy ${p.name}: ${(e as Error).message}`,
          );
        }
      };
      if ("validateResource" in p && p.validateResource) {
        const validations: ResourceValidation[] = Array.isArray(p.validateResource)
          ? p.validateResource
          : [p.validateResource];
        const only = validations.length === 1 ? pulumiTypeOf(validations[0]) : undefined;
        for (const r of resources) {
          if (only && r.type !== only) continue;
          for (const validate of validations) {
            const args = new ValidationArgs(r, getConfig);
            const report: ReportViolation = (message) => push(message, r.urn);
            await guard(r.urn, () => validate(args, report));
          }
        }
      }
      if ("validateStack" in p && typeof p.validateStack === "function") {
        const validateStack: StackValidation = p.validateStack;
        const only = pulumiTypeOf(validateStack);
        if (only && !resources.some((r) => r.type === only)) continue;
        const args: StackValidationArgs = {
          resources: stackResources(resources),
          stackTags: new Map(),
          getConfig,
          notApplicable,
        };
        const report: ReportViolation = (message, urn) => push(message, urn);
        await guard(undefined, () => validateStack(args, report));
      }
    }
  } finally {
    setStackNameSource();
  }
  return violations;
}

/** The pack's version from its package.json, for the report header. */
export function packVersion(): string {
  const pkg = JSON.parse(
    fs.readFileSync(path.join(__dirname, "..", "policypack", "package.json"), "utf8"),
  ) as { version?: string };
  return pkg.version ?? "0.0.0";
}

function resourceLabel(urn: string | undefined, resources: readonly CheckedResource[]): string {
  if (!urn) return "the stack";
  const r = resources.find((x) => x.urn === urn);
  return r ? `${r.type} ${r.name}` : urn;
}

/** The report `npm run check` prints: violations grouped by policy, each with its resource. */
export function formatReport(
  stack: string,
  violations: readonly Violation[],
  resources: readonly CheckedResource[],
  settings: Map<string, PolicySettings>,
  policies: Policies = packPolicies,
): string {
  const enabled = policies.filter((p) => settings.get(p.name)?.level !== "disabled").length;
  const lines = [
    `Policy check of stack ${stack}: ${PACK_NAME}@${packVersion()}, ${enabled} of ${policies.length} policies enabled, ${resources.length} resources`,
    "",
  ];
  for (const p of policies) {
    const mine = violations.filter((v) => v.policy === p.name);
    if (mine.length === 0) continue;
    lines.push(`${p.name} (${settings.get(p.name)?.level ?? p.enforcementLevel})`);
    lines.push(`  ${p.description}`);
    for (const v of mine) {
      lines.push(`  [${v.level}] ${resourceLabel(v.urn, resources)}`);
      lines.push(`    ${v.message}`);
    }
    lines.push("");
  }
  const mandatory = violations.filter((v) => v.level === "mandatory").length;
  const advisory = violations.length - mandatory;
  if (violations.length === 0) {
    lines.push("No policy violations.");
  } else {
    lines.push(
      `${violations.length} violation${violations.length === 1 ? "" : "s"}: ${mandatory} mandatory, ${advisory} advisory.` +
        (mandatory > 0
          ? " `pulumi preview --policy-pack policypack` would fail: fix the mandatory ones."
          : ""),
    );
  }
  return lines.join("\n");
}
