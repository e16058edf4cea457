// The stack configuration: the user's input, read from Pulumi.yaml + Pulumi.<stack>.yaml and each
// key checked for its syntax (each section's parser sits beside its module; this file keeps the
// files, the fleet, the policy, the certificates and the rule). Rules that tie keys together are
// checked where their value is derived, by core/plan.ts. Shared by the Pulumi program, the offline
// policy check, the local pipeline and the tests.
import * as fs from "node:fs";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";
import { CsrFormatError, csrPublicKeyInfo } from "./csr";
import { parseDeliveryConfig, type DeliveryConfig } from "./delivery";
import { oneOf, optionalStr, str, structured, type RawConfig } from "./config-values";
import { ConfigError, invalidConfig as fail } from "./errors";
import { parseFlinkConnector, type FlinkConnectorSource } from "./flink-connector";
import { CERTIFICATE_NAME_ATTRIBUTES, parseCidr } from "./iot-policy/policy";
import { parseLakeOptions, type LakeOptions } from "./lake";
import { parseMonitoringConfig, type MonitoringConfig } from "./monitoring";
import {
  IOT_MAX_CERT_VALUES as MAX_CERT_VALUES,
  IOT_POLICY_NAME,
  IOT_THING_NAME as THING_NAME,
} from "./iot-limits";
import { PROJECT, PROJECT_DIR } from "./project";
import { parseStorageConfig, type StorageConfig } from "./storage";
import { parseTopicRules, RULE_DESCRIPTION_MAX, type TopicRuleConfig } from "./topic-rules/config";
import { parseWindowSpec, type WindowSpec } from "./analytics/window";
import { parseProvisioningConfig, type ProvisioningConfig } from "./provisioning/config";

export { deriveBucketName, isValidBucketName } from "./storage";

export type PolicyMode = "tutorial" | "least-privilege" | "custom";
export const POLICY_MODES: readonly PolicyMode[] = ["tutorial", "least-privilege", "custom"];

export type CertificateMode = "generated" | "csr" | "fleet-provisioning";
export const CERTIFICATE_MODES: readonly CertificateMode[] = [
  "generated",
  "csr",
  "fleet-provisioning",
];

/** One thing of the fleet, with the group it belongs to. */
export interface ThingSpec {
  readonly name: string;
  readonly group: string;
  /** The group's attributes (for example `city`), which the thing inherits. */
  readonly attributes: Readonly<Record<string, string>>;
}

/** A thing group and the things in it. */
export interface FleetGroup {
  readonly group: string;
  readonly description: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly things: readonly string[];
  /** The prefix of `{thingPrefix, count}` groups (the things are prefix + 1..count). */
  readonly thingPrefix?: string;
}

export type { DeliveryConfig } from "./delivery";
export type { RawConfig } from "./config-values";
export type { FlinkConnectorSource } from "./flink-connector";
export type { ProvisioningConfig } from "./provisioning/config";
export type { TopicRuleConfig } from "./topic-rules/config";

export interface StackConfig {
  readonly stack: string;
  readonly region: string;
  readonly thingType: { readonly name: string; readonly description: string };
  readonly fleet: readonly FleetGroup[];
  /** Every thing of the fleet, flattened, in declaration order. */
  readonly things: readonly ThingSpec[];
  readonly policy: {
    readonly mode: PolicyMode;
    readonly name: string;
    /**
     * The stack's own IoT policy document (`policyMode: custom`), its ARNs written with the
     * placeholders `{partition}`, `{region}` and `{account}`; undefined in the other modes.
     */
    readonly document?: unknown;
  };
  /** The subject and alternative names the local CA writes into each thing's certificate. */
  readonly localCertificates: LocalCertificateSpec;
  readonly certificates: {
    readonly mode: CertificateMode;
    /** Absolute path of each thing's CSR file in csr mode (empty in generated mode). */
    readonly csrFiles: Readonly<Record<string, string>>;
    /** Each thing's CSR (PEM) in csr mode, read once when the config is loaded; empty otherwise. */
    readonly csrPems: Readonly<Record<string, string>>;
    /**
     * csr mode: the CSR files that are not there yet (absolute paths). The CSRs are made on the
     * devices' machine (`npm run csr`) and not committed; `pulumi up` refuses the stack until
     * they exist, the local pipeline does not need them.
     */
    readonly missingCsrs: readonly string[];
    /** csr mode: the csrDir value as configured (relative to Pulumi.yaml). */
    readonly csrDir?: string;
  };
  /**
   * Fleet provisioning, only in certificateMode fleet-provisioning: the stack then registers no
   * thing or device certificate, and `things` are the devices that will provision themselves.
   */
  readonly provisioning?: ProvisioningConfig;
  /** Topic template; `{thing}` stands for the thing name. */
  readonly telemetryTopic: string;
  readonly rule: {
    readonly name: string;
    readonly sql: string;
    readonly roleName: string;
    /** What the rule is for, shown in the AWS IoT console; undefined when `ruleDescription` is empty. */
    readonly description?: string;
  };
  /**
   * The stack's further topic rules (`rules`), each with its actions and error action; the
   * telemetry rule above is always the stack's first.
   */
  readonly rules: readonly TopicRuleConfig[];
  readonly delivery: DeliveryConfig;
  /** The streaming window (core/analytics/window.ts validates it); undefined when analytics is disabled. */
  readonly analytics: WindowSpec | undefined;
  /** The bucket itself: teardown, versioning, lifecycle, access logging, encryption key. */
  readonly storage: StorageConfig;
  /** The queryable lake: the format Firehose writes and whether it partitions by thing. */
  readonly lake: LakeOptions;
  /** IoT logging and the alarms. */
  readonly monitoring: MonitoringConfig;
  /** Where the Managed Flink connector jar comes from and the SHA-512 it must have. */
  readonly flinkConnector: FlinkConnectorSource;
}

/**
 * Thing and thing-group attributes as AWS IoT's AttributePayload accepts them
 * (https://docs.aws.amazon.com/iot/latest/apireference/API_AttributePayload.html).
 */
const ATTRIBUTE_NAME = /^[a-zA-Z0-9_.,@/:#-]{1,128}$/;
const ATTRIBUTE_VALUE = /^[a-zA-Z0-9_.,@/:#=[\]-]{0,800}$/;

function parseFleet(raw: RawConfig): FleetGroup[] {
  const v = structured(raw, "fleet");
  const shape =
    "must be a non-empty list of {group, description, attributes, thingPrefix, count} or {group, things: [names]}";
  if (!Array.isArray(v) || v.length === 0) fail("fleet", v, shape);
  const seen = new Set<string>();
  return v.map((g: unknown, i: number): FleetGroup => {
    if (typeof g !== "object" || g === null) fail(`fleet[${i}]`, g, shape);
    const e = g as Record<string, unknown>;
    const group = e.group;
    if (typeof group !== "string" || !THING_NAME.test(group)) {
      fail(`fleet[${i}].group`, group, "must be 1-128 letters, digits, ':', '_' or '-'");
    }
    const attributes: Record<string, string> = {};
    if (e.attributes !== undefined) {
      if (
        typeof e.attributes !== "object" ||
        e.attributes === null ||
        Array.isArray(e.attributes)
      ) {
        fail(`fleet[${i}].attributes`, e.attributes, "must be a map of name to string");
      }
      for (const [k, a] of Object.entries(e.attributes as Record<string, unknown>)) {
        if (!ATTRIBUTE_NAME.test(k)) {
          fail(
            `fleet[${i}].attributes`,
            k,
            "attribute names are 1-128 letters, digits or _ . , @ / : # - (AWS IoT AttributePayload)",
          );
        }
        if (typeof a !== "string" && typeof a !== "number") {
          fail(`fleet[${i}].attributes.${k}`, a, "must be a string");
        }
        if (!ATTRIBUTE_VALUE.test(String(a))) {
          fail(
            `fleet[${i}].attributes.${k}`,
            a,
            "attribute values are at most 800 letters, digits or _ . , @ / : # = [ ] - (no spaces; AWS IoT AttributePayload)",
          );
        }
        attributes[k] = String(a);
      }
    }
    let things: string[];
    if (e.things !== undefined) {
      if (!Array.isArray(e.things) || e.things.length === 0) {
        fail(`fleet[${i}].things`, e.things, "must be a non-empty list of thing names");
      }
      things = e.things.map((t: unknown, j: number) => {
        if (typeof t !== "string" || !THING_NAME.test(t)) {
          fail(`fleet[${i}].things[${j}]`, t, "must be 1-128 letters, digits, ':', '_' or '-'");
        }
        return t;
      });
    } else {
      const count = e.count ?? 1;
      if (typeof count !== "number" || !Number.isInteger(count) || count < 1 || count > 10000) {
        fail(`fleet[${i}].count`, count, "must be a whole number from 1 to 10000");
      }
      const prefix = e.thingPrefix ?? `store-sensor-${group.toLowerCase()}`;
      if (typeof prefix !== "string" || !THING_NAME.test(`${prefix}${count}`)) {
        fail(`fleet[${i}].thingPrefix`, prefix, "must be letters, digits, ':', '_' or '-'");
      }
      things = Array.from({ length: count }, (_, j) => `${prefix}${j + 1}`);
    }
    for (const t of things) {
      if (seen.has(t)) fail("fleet", t, "each thing name must appear once in the fleet");
      seen.add(t);
    }
    const description = e.description ?? `Things in ${group}`;
    if (typeof description !== "string")
      fail(`fleet[${i}].description`, description, "set a string");
    return {
      group,
      description,
      attributes,
      things,
      ...(e.things === undefined ? { thingPrefix: things[0].slice(0, -1) } : {}),
    };
  });
}

/**
 * The CSR files of a csr-mode stack. A missing file is recorded, not refused: `npm run simulate`
 * issues local certificates for keys of its own and needs no CSR, while `pulumi up` refuses a
 * stack with missing CSRs (core/deploy-readiness.ts). A file that is there must be a CSR.
 */
function parseCsrFiles(things: readonly ThingSpec[], csrDir: string, baseDir: string) {
  const files: Record<string, string> = {};
  const pems: Record<string, string> = {};
  const missing: string[] = [];
  for (const t of things) {
    const file = path.resolve(baseDir, csrDir, `${t.name}.csr`);
    let text: string;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      missing.push(file);
      continue;
    }
    try {
      csrPublicKeyInfo(text);
    } catch (e) {
      if (!(e instanceof CsrFormatError)) throw e;
      throw new ConfigError(
        `config ${PROJECT}:csrDir = ${JSON.stringify(csrDir)} is invalid: ${file} is ${e.message}; make it with npm run csr -- --stack <stack>`,
      );
    }
    files[t.name] = file;
    pems[t.name] = text;
  }
  return { files, pems, missing };
}

/**
 * What the local CA writes into a thing's certificate besides CN = thing name, so that policies
 * using certificate variables can be tried offline. Values are templates: `{thing}`,
 * `{thingType}`, `{group}` and `{stack}` are filled per thing.
 */
export interface LocalCertificateSpec {
  /** Subject attribute values by AWS's attribute name (`Organization`, `Country`, ...), in order. */
  readonly subject: Readonly<Record<string, readonly string[]>>;
  /** Subject alternative names by AWS's kind (`DNSName`, `RFC822Name`, `UniformResourceIdentifier`, `IPAddress`). */
  readonly subjectAlternativeNames: Readonly<Record<string, readonly string[]>>;
}

/** The placeholders a certificate template may use. */
export const CERTIFICATE_PLACEHOLDERS = ["{thing}", "{thingType}", "{group}", "{stack}"] as const;

/** The alternative-name kinds the local CA can write (DirectoryName is left to real CAs). */
export const LOCAL_ALT_NAME_TYPES = [
  "DNSName",
  "RFC822Name",
  "UniformResourceIdentifier",
  "IPAddress",
] as const;

function certificateValues(key: string, v: unknown, check: (s: string) => string | undefined) {
  const items = Array.isArray(v) ? v : [v];
  if (items.length === 0 || items.length > MAX_CERT_VALUES) {
    fail(
      key,
      v,
      `must be a string or a list of 1 to ${MAX_CERT_VALUES} strings (AWS reads at most five values)`,
    );
  }
  return items.map((x: unknown) => {
    if (typeof x !== "string" || x === "") fail(key, v, "must be a non-empty string");
    for (const m of x.matchAll(/\{[^}]*\}/g)) {
      if (!(CERTIFICATE_PLACEHOLDERS as readonly string[]).includes(m[0])) {
        fail(key, x, `${m[0]} is not a placeholder; use ${CERTIFICATE_PLACEHOLDERS.join(", ")}`);
      }
    }
    if (/[*$+?#]/.test(x.replace(/\{[^}]*\}/g, ""))) {
      fail(
        key,
        x,
        "must not contain * $ + ? or #: AWS leaves certificate variables holding them unreplaced",
      );
    }
    const bad = check(x.replace(/\{[^}]*\}/g, "x"));
    if (bad) fail(key, x, bad);
    return x;
  });
}

function parseLocalCertificates(raw: RawConfig): LocalCertificateSpec {
  const v = raw.localCertificates === "" ? {} : (structured(raw, "localCertificates") ?? {});
  const shape =
    "must be {subject: {Attribute: value(s)}, subjectAlternativeNames: {Kind: value(s)}}";
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail("localCertificates", v, shape);
  const e = v as Record<string, unknown>;
  for (const k of Object.keys(e)) {
    if (k !== "subject" && k !== "subjectAlternativeNames")
      fail(`localCertificates.${k}`, e[k], shape);
  }
  const map = (key: string, x: unknown): Record<string, unknown> => {
    if (x === undefined || x === null) return {};
    if (typeof x !== "object" || Array.isArray(x)) fail(key, x, shape);
    return x as Record<string, unknown>;
  };
  const attributes = Object.keys(CERTIFICATE_NAME_ATTRIBUTES).filter((a) => a !== "CommonName");
  const subject: Record<string, string[]> = {};
  for (const [attr, values] of Object.entries(map("localCertificates.subject", e.subject))) {
    const key = `localCertificates.subject.${attr}`;
    if (attr === "CommonName")
      fail(
        key,
        values,
        "is always the thing name (the broker binds the connection to it); remove it",
      );
    if (!attributes.includes(attr)) fail(key, values, `use one of ${attributes.join(", ")}`);
    subject[attr] = certificateValues(key, values, (s) =>
      attr === "Country" && !/^[A-Z]{2}$/.test(s)
        ? "must be a two-letter ISO 3166 country code"
        : s.length > 64
          ? "must be at most 64 characters (X.520)"
          : undefined,
    );
  }
  const alternativeNames: Record<string, string[]> = {};
  const sanChecks: Record<string, (s: string) => string | undefined> = {
    DNSName: (s) => (/^[A-Za-z0-9.-]{1,253}$/.test(s) ? undefined : "must be a DNS name"),
    RFC822Name: (s) => (/^[^@\s]+@[^@\s]+$/.test(s) ? undefined : "must be an e-mail address"),
    UniformResourceIdentifier: (s) =>
      /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(s) ? undefined : "must be a URI with a scheme",
    IPAddress: (s) => (parseCidr(s) && !s.includes("/") ? undefined : "must be an IP address"),
  };
  for (const [kind, values] of Object.entries(
    map("localCertificates.subjectAlternativeNames", e.subjectAlternativeNames),
  )) {
    const key = `localCertificates.subjectAlternativeNames.${kind}`;
    const check = sanChecks[kind];
    if (check === undefined) fail(key, values, `use one of ${LOCAL_ALT_NAME_TYPES.join(", ")}`);
    alternativeNames[kind] = certificateValues(key, values, (s) =>
      kind === "IPAddress" && s === "x" ? undefined : check(s),
    );
  }
  return { subject, subjectAlternativeNames: alternativeNames };
}

/**
 * The policy keys: the mode, and a document exactly when the mode is custom. The document is
 * evaluated with the stack's region and topic by the plan (core/plan.ts checkPolicyDocument).
 */
function parsePolicy(raw: RawConfig): { mode: PolicyMode; document?: unknown } {
  const mode = oneOf(raw, "policyMode", POLICY_MODES);
  const given = raw.policyDocument === "" ? undefined : structured(raw, "policyDocument");
  const empty =
    given === undefined ||
    given === null ||
    given === "" ||
    (typeof given === "object" && Object.keys(given).length === 0);
  if (mode !== "custom" && !empty) {
    fail(
      "policyDocument",
      "(a document)",
      `is used only with policyMode custom (policyMode is ${mode}); set policyMode custom or remove policyDocument`,
    );
  }
  if (mode === "custom" && empty) {
    fail(
      "policyDocument",
      given ?? "",
      "must be the stack's IoT policy document when policyMode is custom",
    );
  }
  const document = mode === "custom" ? given : undefined;
  return { mode, document };
}

export { RULE_DESCRIPTION_MAX };

/** `ruleDescription`: one line of text, or empty for none. */
function parseRuleDescription(raw: RawConfig): string | undefined {
  const description = optionalStr(raw, "ruleDescription");
  if (
    description !== undefined &&
    (description.length > RULE_DESCRIPTION_MAX || /[\r\n]/.test(description))
  ) {
    fail(
      "ruleDescription",
      description,
      `use one line of at most ${RULE_DESCRIPTION_MAX} characters, or leave it empty`,
    );
  }
  return description;
}

/**
 * Validates raw config values into a StackConfig, or throws a ConfigError naming the first bad
 * key. `baseDir` is where relative paths (the CSR folder) are resolved.
 */
export function parseStackConfig(
  raw: RawConfig,
  stack: string,
  baseDir: string = PROJECT_DIR,
): StackConfig {
  const region = raw["aws:region"];
  if (typeof region !== "string" || !/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) {
    throw new ConfigError(
      `config aws:region = ${JSON.stringify(region)} is invalid: set an AWS region such as us-east-1 (pulumi config set aws:region us-east-1)`,
    );
  }
  const fleet = parseFleet(raw);
  const things = fleet.flatMap((g) =>
    g.things.map((name) => ({ name, group: g.group, attributes: g.attributes })),
  );

  const ruleName = str(raw, "ruleName");
  if (!/^[a-zA-Z0-9_]+$/.test(ruleName)) {
    fail("ruleName", ruleName, "use only letters, digits and underscores (AWS IoT rule names)");
  }
  const sql = str(raw, "ruleSql");
  const description = parseRuleDescription(raw);
  // Parsed (once) where the statement is used: core/plan.ts planRule.

  const telemetryTopic = str(raw, "telemetryTopic");
  if (/[+#]/.test(telemetryTopic) || telemetryTopic.startsWith("$")) {
    fail(
      "telemetryTopic",
      telemetryTopic,
      "must be a topic to publish to, without + or # and not reserved ($...)",
    );
  }

  const roleName = str(raw, "ruleRoleName");
  // The syntax of an IAM role name; the roles derived from it check their own length where they
  // add their suffix (core/plan.ts suffixedRoleName).
  if (!/^[\w+=,.@-]{1,64}$/.test(roleName)) {
    fail("ruleRoleName", roleName, "use 1-56 letters, digits or + = , . @ _ - (IAM role names)");
  }
  const delivery = parseDeliveryConfig(raw);
  const policyName = str(raw, "policyName");
  if (!IOT_POLICY_NAME.test(policyName)) {
    fail("policyName", policyName, "use 1-128 letters, digits or + = , . @ _ - (IoT policy names)");
  }
  const analytics = parseWindowSpec(structured(raw, "analytics"));
  const lake = parseLakeOptions(raw);

  const certificateMode = oneOf(raw, "certificateMode", CERTIFICATE_MODES);
  const csrDir = certificateMode === "csr" ? str(raw, "csrDir") : undefined;
  const csrs =
    csrDir === undefined
      ? { files: {}, pems: {}, missing: [] }
      : parseCsrFiles(things, csrDir, baseDir);
  const provisioning =
    certificateMode === "fleet-provisioning"
      ? parseProvisioningConfig(structured(raw, "provisioning"), fleet)
      : undefined;

  return {
    stack,
    region,
    thingType: { name: str(raw, "thingTypeName"), description: str(raw, "thingTypeDescription") },
    fleet,
    things,
    policy: { ...parsePolicy(raw), name: policyName },
    localCertificates: parseLocalCertificates(raw),
    certificates: {
      mode: certificateMode,
      csrFiles: csrs.files,
      csrPems: csrs.pems,
      missingCsrs: csrs.missing,
      ...(csrDir === undefined ? {} : { csrDir }),
    },
    flinkConnector: parseFlinkConnector(raw),
    ...(provisioning === undefined ? {} : { provisioning }),
    telemetryTopic,
    rule: {
      name: ruleName,
      sql,
      roleName,
      ...(description === undefined ? {} : { description }),
    },
    rules: parseTopicRules(structured(raw, "rules"), ruleName),
    delivery,
    analytics,
    storage: parseStorageConfig(raw),
    lake,
    monitoring: parseMonitoringConfig(raw),
  };
}

function readYaml(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    throw new ConfigError(`${file} does not exist`);
  }
  try {
    const doc: unknown = parseYaml(text);
    return (doc ?? {}) as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`${file} is not valid YAML: ${(e as Error).message.split("\n")[0]}`);
  }
}

/** The names of the stacks that have a Pulumi.<name>.yaml beside Pulumi.yaml. */
export function listStacks(dir: string = PROJECT_DIR): string[] {
  return fs
    .readdirSync(dir)
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
}

/**
 * Reads the raw config the Pulumi CLI would hand the program: project defaults from Pulumi.yaml,
 * overridden by Pulumi.<stack>.yaml. Keys come back without the project namespace.
 */
export function readRawStackConfig(stack: string, dir: string = PROJECT_DIR): RawConfig {
  const stackFile = path.join(dir, `Pulumi.${stack}.yaml`);
  if (!/^[A-Za-z0-9._-]+$/.test(stack) || !fs.existsSync(stackFile)) {
    const known = listStacks(dir);
    throw new ConfigError(
      `unknown stack ${JSON.stringify(stack)}: no ${path.basename(stackFile)}; known stacks: ${known.join(", ") || "none"}`,
    );
  }
  const raw: RawConfig = {};
  const project = readYaml(path.join(dir, "Pulumi.yaml"));
  const declared = (project.config ?? {}) as Record<string, unknown>;
  for (const [key, decl] of Object.entries(declared)) {
    const name = key.startsWith(`${PROJECT}:`) ? key.slice(PROJECT.length + 1) : key;
    if (decl !== null && typeof decl === "object" && !Array.isArray(decl)) {
      const d = decl as Record<string, unknown>;
      if ("default" in d) raw[name] = d.default;
      else if ("value" in d) raw[name] = d.value;
    } else {
      raw[name] = decl;
    }
  }
  const stackDoc = readYaml(stackFile);
  const values = (stackDoc.config ?? {}) as Record<string, unknown>;
  for (const [key, value] of Object.entries(values)) {
    const name = key.startsWith(`${PROJECT}:`) ? key.slice(PROJECT.length + 1) : key;
    raw[name] = value;
  }
  return raw;
}

/** Reads and validates one stack's config from its files, as `npm run simulate` and the tests do. */
export function loadStackConfig(stack: string, dir: string = PROJECT_DIR): StackConfig {
  return parseStackConfig(readRawStackConfig(stack, dir), stack, dir);
}

/** The config keys of ours that a program reads (everything Pulumi.yaml declares). */
export function declaredKeys(dir: string = PROJECT_DIR): string[] {
  const project = readYaml(path.join(dir, "Pulumi.yaml"));
  return Object.keys((project.config ?? {}) as Record<string, unknown>)
    .filter((k) => k.startsWith(`${PROJECT}:`))
    .map((k) => k.slice(PROJECT.length + 1));
}
