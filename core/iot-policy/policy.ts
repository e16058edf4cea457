// IoT policy documents: the builders the program deploys, and the one reading of a document
// (AWS's own rules, and the IoT policy language the evaluator implements) that the policy pack,
// the stack config and the local broker's evaluator share.
import { isIP } from "node:net";
import { BASIC_INGEST_PREFIX } from "../iot-limits";
import { telemetryTopicFor } from "../topics";

export type Effect = "Allow" | "Deny";
export type OneOrMany = string | string[];

/** A condition block: operator → condition key → value(s), as in IAM. */
export type ConditionBlock = Record<string, Record<string, OneOrMany>>;

export interface PolicyStatement {
  Sid?: string;
  Effect: Effect;
  Action?: OneOrMany;
  NotAction?: OneOrMany;
  Resource?: OneOrMany;
  NotResource?: OneOrMany;
  Condition?: ConditionBlock;
}

export interface PolicyDocument {
  Version: "2012-10-17";
  Statement: PolicyStatement | PolicyStatement[];
}

/** Where the policy's ARNs point: `arn:<partition>:iot:<region>:<accountId>:...`. */
export interface IotArnContext {
  readonly partition: string;
  readonly region: string;
  readonly accountId: string;
}

/** The policy variable that names the connected thing (needs client id = thing name). */
export const THING_NAME_VARIABLE = "${iot:Connection.Thing.ThingName}";

export function iotArn(ctx: IotArnContext, resource: string): string {
  return `arn:${ctx.partition}:iot:${ctx.region}:${ctx.accountId}:${resource}`;
}

/** The seed's `sensor-policy`: every IoT action on every resource. Tutorial use only. */
export function tutorialPolicy(): PolicyDocument {
  return {
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Action: "iot:*", Resource: "*" }],
  };
}

/** What the device policy grants beyond connecting and publishing its telemetry. */

/**
 * AWS's least-privilege pattern for a telemetry device: connect only as the thing the
 * certificate is attached to, publish only on that thing's telemetry topic (by Basic Ingest when
 * the stack says so), nothing else.
 */
export function leastPrivilegePolicy(
  ctx: IotArnContext,
  topicTemplate: string,
  grants: DeviceGrants = {},
): PolicyDocument {
  const own = telemetryTopicFor(topicTemplate, THING_NAME_VARIABLE);
  const rule = grants.basicIngestRule;
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "ConnectAsAttachedThing",
        Effect: "Allow",
        Action: "iot:Connect",
        Resource: iotArn(ctx, `client/${THING_NAME_VARIABLE}`),
        Condition: { Bool: { "iot:Connection.Thing.IsAttached": "true" } },
      },
      {
        Sid: rule === undefined ? "PublishOwnTelemetry" : "PublishOwnTelemetryByBasicIngest",
        Effect: "Allow",
        Action: "iot:Publish",
        Resource: iotArn(
          ctx,
          rule === undefined ? `topic/${own}` : `topic/${BASIC_INGEST_PREFIX}${rule}/${own}`,
        ),
      },
      ...(grants.deviceShadows === true ? ownShadowStatements(ctx) : []),
    ],
  };
}

/** What a stack says its devices use beyond telemetry, each granted on the device's own thing only. */
export interface DeviceGrants {
  /** The device's own classic and named shadows over MQTT (stack key `deviceShadows`). */
  readonly deviceShadows?: boolean;
  /**
   * The devices publish by Basic Ingest to this rule: their telemetry topic behind
   * `$aws/rules/<rule>/` ("you can specify permission for individual rules with
   * $aws/rules/rule_name/* in the policy", iot-basic-ingest.html), in place of the topic itself
   * (stack key `basicIngest`).
   * @default undefined (the telemetry topic through the message broker)
   */
  readonly basicIngestRule?: string;
}

/**
 * The device's own shadows, classic and named, and no other thing's: Publish on its request topics,
 * Subscribe and Receive on its response topics, as the example policies of device-shadow-mqtt.html
 * grant them, with `thingName` the connection's own thing (`${iot:Connection.Thing.ThingName}`).
 * One `shadow/*` resource per action keeps the document within AWS's 2048 characters; `*` after
 * the thing's own `shadow/` cannot reach another thing, and the response topics are Subscribe-only
 * (reserved-topics.html), so Publish there is refused by AWS IoT whatever the policy says.
 */
export function ownShadowStatements(ctx: IotArnContext): PolicyStatement[] {
  const own = `$aws/things/${THING_NAME_VARIABLE}/shadow/*`;
  return [
    {
      Sid: "OwnShadowRequests",
      Effect: "Allow",
      Action: "iot:Publish",
      Resource: iotArn(ctx, `topic/${own}`),
    },
    {
      Sid: "OwnShadowResponses",
      Effect: "Allow",
      Action: "iot:Subscribe",
      Resource: iotArn(ctx, `topicfilter/${own}`),
    },
    {
      Sid: "ReceiveOwnShadowResponses",
      Effect: "Allow",
      Action: "iot:Receive",
      Resource: iotArn(ctx, `topic/${own}`),
    },
  ];
}

/**
 * A stack's own document (`policyMode: custom`) with its ARN placeholders, `{partition}`,
 * `{region}` and `{account}`, filled in for one account and region: the parts of its ARNs that
 * differ between the account it deploys to and the local pipeline's. `${...}` is policy-variable
 * syntax, so the placeholders are written without the dollar, like `{thing}` in topic templates.
 */
export function instantiateCustomPolicy(template: unknown, ctx: IotArnContext): unknown {
  const fill = (v: unknown): unknown => {
    if (typeof v === "string") {
      return v
        .replace(/(?<!\$)\{partition\}/g, ctx.partition)
        .replace(/(?<!\$)\{region\}/g, ctx.region)
        .replace(/(?<!\$)\{account\}/g, ctx.accountId);
    }
    if (Array.isArray(v)) return v.map(fill);
    if (v !== null && typeof v === "object") {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x)]));
    }
    return v;
  };
  return fill(template);
}

/**
 * The document a stack attaches to every certificate, for its policy mode. `custom` takes the
 * stack's own document (`policyDocument` in the stack config) with its ARN placeholders filled.
 */
export function policyDocumentFor(
  mode: "tutorial" | "least-privilege" | "custom",
  ctx: IotArnContext,
  topicTemplate: string,
  custom?: unknown,
  grants: DeviceGrants = {},
): PolicyDocument {
  if (mode === "custom") {
    if (custom === undefined) {
      throw new PolicyDocumentError(
        "policy mode custom needs the stack's policyDocument; set iot-pipeline:policyDocument",
      );
    }
    // Validated when the stack config is read (normalizePolicy); the type is the caller's promise.
    return instantiateCustomPolicy(custom, ctx) as PolicyDocument;
  }
  return mode === "tutorial" ? tutorialPolicy() : leastPrivilegePolicy(ctx, topicTemplate, grants);
}

// ---- Reading a document the way AWS does -------------------------------------------------

/** A document that AWS would reject, or that uses what this evaluator does not implement. */
export class PolicyDocumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PolicyDocumentError";
  }
}

/**
 * Compiles every statement of several documents; a document's error names which one it was when
 * there are several (an evaluator over a role's or a certificate's policies).
 */
export function compileDocuments<T>(
  documents: readonly unknown[],
  compile: (document: unknown) => T[],
): T[] {
  return documents.flatMap((d, i) => {
    try {
      return compile(d);
    } catch (e) {
      if (e instanceof PolicyDocumentError && documents.length > 1) {
        throw new PolicyDocumentError(`policy ${i}: ${e.message}`);
      }
      throw e;
    }
  });
}

export interface NormalizedCondition {
  readonly operator: string;
  readonly key: string;
  readonly values: readonly string[];
}

/** One statement with every one-or-many field made a list; exactly one of each pair is set. */
export interface NormalizedStatement {
  /** Position in the document, 0-based, for messages ("statement 2"). */
  readonly index: number;
  readonly sid?: string;
  readonly effect: Effect;
  readonly actions?: readonly string[];
  readonly notActions?: readonly string[];
  readonly resources?: readonly string[];
  readonly notResources?: readonly string[];
  readonly conditions: readonly NormalizedCondition[];
}

/** "statement 2 (Sid PublishOwnTelemetry)" or "statement 0". */
export function describeStatement(s: Pick<NormalizedStatement, "index" | "sid">): string {
  return s.sid ? `statement ${s.index} (Sid ${s.sid})` : `statement ${s.index}`;
}

function list(value: unknown, where: string, field: string): string[] | undefined {
  if (value === undefined) return undefined;
  const items = Array.isArray(value) ? value : [value];
  if (items.length === 0 || items.some((v) => typeof v !== "string" || v === "")) {
    throw new PolicyDocumentError(
      `${where}: ${field} must be a non-empty string or list of strings`,
    );
  }
  return items as string[];
}

function parseJson(doc: unknown): unknown {
  if (typeof doc !== "string") return doc;
  try {
    return JSON.parse(doc);
  } catch (e) {
    throw new PolicyDocumentError(`policy document is not JSON: ${(e as Error).message}`);
  }
}

/**
 * The statements of any IAM-grammar document (IoT policies and the roles' IAM policies alike):
 * Effect, Action/NotAction, Resource/NotResource and Condition, with nothing checked that belongs
 * to one service's language. `core/iam/policy-audit.ts` reads IAM documents through this;
 * IoT documents go through {@link normalizePolicy}, which adds the IoT language's checks.
 */
export function normalizePolicyGrammar(doc: unknown): NormalizedStatement[] {
  const value = parseJson(doc);
  if (typeof value !== "object" || value === null || !("Statement" in value)) {
    throw new PolicyDocumentError("policy document has no Statement");
  }
  const raw = (value as { Statement: unknown }).Statement;
  const statements = Array.isArray(raw) ? raw : [raw];
  if (statements.length === 0) {
    throw new PolicyDocumentError("policy document has an empty Statement list; add a statement");
  }
  return statements.map((st: unknown, index): NormalizedStatement => {
    const where = `statement ${index}`;
    if (typeof st !== "object" || st === null || Array.isArray(st)) {
      throw new PolicyDocumentError(`${where}: must be an object`);
    }
    const s = st as Record<string, unknown>;
    if (s.Effect !== "Allow" && s.Effect !== "Deny") {
      throw new PolicyDocumentError(`${where}: Effect must be Allow or Deny`);
    }
    const actions = list(s.Action, where, "Action");
    const notActions = list(s.NotAction, where, "NotAction");
    const resources = list(s.Resource, where, "Resource");
    const notResources = list(s.NotResource, where, "NotResource");
    if ((actions === undefined) === (notActions === undefined)) {
      throw new PolicyDocumentError(`${where}: set exactly one of Action and NotAction`);
    }
    if ((resources === undefined) === (notResources === undefined)) {
      throw new PolicyDocumentError(`${where}: set exactly one of Resource and NotResource`);
    }
    const conditions: NormalizedCondition[] = [];
    if (s.Condition !== undefined) {
      if (typeof s.Condition !== "object" || s.Condition === null || Array.isArray(s.Condition)) {
        throw new PolicyDocumentError(`${where}: Condition must be an object`);
      }
      for (const [operator, block] of Object.entries(s.Condition as Record<string, unknown>)) {
        if (typeof block !== "object" || block === null || Array.isArray(block)) {
          throw new PolicyDocumentError(`${where}: Condition ${operator} must be an object`);
        }
        for (const [key, v] of Object.entries(block as Record<string, unknown>)) {
          const items = Array.isArray(v) ? v : [v];
          // IAM takes strings, numbers and booleans ("Bool": {"k": true}); anything else is malformed.
          if (items.some((x) => !["string", "number", "boolean"].includes(typeof x))) {
            throw new PolicyDocumentError(
              `${where}: Condition ${operator} ${key} must be a string, number, boolean or a list of them`,
            );
          }
          conditions.push({ operator, key, values: items.map(String) });
        }
      }
    }
    return {
      index,
      sid: typeof s.Sid === "string" ? s.Sid : undefined,
      effect: s.Effect,
      actions,
      notActions,
      resources,
      notResources,
      conditions,
    };
  });
}

// ---- The IoT policy language: operators, condition keys, variables, resources --------------

/**
 * CreatePolicy's limit on a document: 2048 characters, whitespace excluded
 * (https://docs.aws.amazon.com/iot/latest/apireference/API_CreatePolicy.html).
 */
export const MAX_POLICY_CHARS = 2048;

/** The family of an operator decides which keys it compares and how its values must look. */
export type OperatorFamily = "string" | "numeric" | "date" | "bool" | "ip" | "arn" | "null";

interface OperatorSpec {
  readonly family: OperatorFamily;
  /** Negated operators: true when the key is absent, and "matches none" over several values. */
  readonly negated: boolean;
}

/**
 * The condition operators of the IAM User Guide's condition-operator page
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html)
 * that the evaluator implements. BinaryEquals is left out: no IoT condition key is binary.
 */
export const CONDITION_OPERATORS: Readonly<Record<string, OperatorSpec>> = {
  StringEquals: { family: "string", negated: false },
  StringNotEquals: { family: "string", negated: true },
  StringEqualsIgnoreCase: { family: "string", negated: false },
  StringNotEqualsIgnoreCase: { family: "string", negated: true },
  StringLike: { family: "string", negated: false },
  StringNotLike: { family: "string", negated: true },
  NumericEquals: { family: "numeric", negated: false },
  NumericNotEquals: { family: "numeric", negated: true },
  NumericLessThan: { family: "numeric", negated: false },
  NumericLessThanEquals: { family: "numeric", negated: false },
  NumericGreaterThan: { family: "numeric", negated: false },
  NumericGreaterThanEquals: { family: "numeric", negated: false },
  DateEquals: { family: "date", negated: false },
  DateNotEquals: { family: "date", negated: true },
  DateLessThan: { family: "date", negated: false },
  DateLessThanEquals: { family: "date", negated: false },
  DateGreaterThan: { family: "date", negated: false },
  DateGreaterThanEquals: { family: "date", negated: false },
  Bool: { family: "bool", negated: false },
  IpAddress: { family: "ip", negated: false },
  NotIpAddress: { family: "ip", negated: true },
  ArnEquals: { family: "arn", negated: false },
  ArnLike: { family: "arn", negated: false },
  ArnNotEquals: { family: "arn", negated: true },
  ArnNotLike: { family: "arn", negated: true },
  Null: { family: "null", negated: false },
};

export type SetOperator = "ForAnyValue" | "ForAllValues";

/** An operator as written, taken apart: `ForAllValues:StringEqualsIfExists` → its three parts. */
export interface ParsedOperator {
  readonly base: string;
  readonly spec: OperatorSpec;
  readonly ifExists: boolean;
  readonly set?: SetOperator;
}

const OPERATOR_HELP = `use one of ${Object.keys(CONDITION_OPERATORS).join(", ")}, optionally with the suffix IfExists (not on Null) and the prefix ForAnyValue: or ForAllValues:`;

/** Parses an operator name, or says why it cannot be evaluated. Operator names are case-sensitive. */
export function parseConditionOperator(operator: string): ParsedOperator | { error: string } {
  let rest = operator;
  let set: SetOperator | undefined;
  const prefix = /^(ForAnyValue|ForAllValues):/.exec(rest);
  if (prefix) {
    set = prefix[1] as SetOperator;
    rest = rest.slice(prefix[0].length);
  }
  const ifExists = rest.endsWith("IfExists");
  const base = ifExists ? rest.slice(0, -"IfExists".length) : rest;
  const spec = Object.hasOwn(CONDITION_OPERATORS, base) ? CONDITION_OPERATORS[base] : undefined;
  if (spec === undefined) {
    return { error: `condition operator ${operator} is not supported; ${OPERATOR_HELP}` };
  }
  if (spec.family === "null" && (ifExists || set !== undefined)) {
    return {
      error: `condition operator ${operator} is not valid: Null takes neither IfExists nor ForAnyValue:/ForAllValues:`,
    };
  }
  return { base, spec, ifExists, set };
}

/** The type of a condition key's value, which decides the operators that can compare it. */
export type KeyType = "string" | "bool" | "date" | "ip" | "arn";

/** A condition key or policy variable the evaluator can resolve for a connection. */
export interface KeySpec {
  /** The canonical spelling, which the evaluator resolves. */
  readonly name: string;
  readonly type: KeyType;
  /** Multi-valued (a set): only with ForAnyValue: or ForAllValues:, never as `${...}`. */
  readonly multi: boolean;
  /** Usable as a `${...}` policy variable in Resource and condition values. */
  readonly variable: boolean;
  /** Its value changes from request to request (the clock), not only per connection. */
  readonly perRequest?: boolean;
}

const FIXED_KEYS: readonly KeySpec[] = [
  // Basic variables (basic-policy-variables.html).
  { name: "iot:ClientId", type: "string", multi: false, variable: true },
  { name: "iot:DomainName", type: "string", multi: false, variable: true },
  { name: "aws:SourceIp", type: "ip", multi: false, variable: true },
  // Global IAM keys an IoT request carries (reference_policies_condition-keys.html).
  { name: "aws:CurrentTime", type: "date", multi: false, variable: false, perRequest: true },
  { name: "aws:EpochTime", type: "date", multi: false, variable: false, perRequest: true },
  { name: "aws:SecureTransport", type: "bool", multi: false, variable: false },
  // Thing variables (thing-policy-variables.html).
  { name: "iot:Connection.Thing.ThingName", type: "string", multi: false, variable: true },
  { name: "iot:Connection.Thing.ThingTypeName", type: "string", multi: false, variable: true },
  { name: "iot:Connection.Thing.IsAttached", type: "bool", multi: false, variable: true },
  // Connect attributes and the will's topic (connect-policy.html, mqtt.html#connect-attribute).
  { name: "iot:ConnectAttributes", type: "string", multi: true, variable: false },
  { name: "iot:LastWillTopic", type: "arn", multi: false, variable: false },
  // Certificate variables (cert-policy-variables.html, certificate-policy-examples.html).
  { name: "iot:CertificateId", type: "string", multi: false, variable: true },
  { name: "iot:Certificate.SerialNumber", type: "string", multi: false, variable: true },
  { name: "iot:Certificate.AvailableKeys", type: "string", multi: true, variable: false },
];

/** The subject and issuer attributes AWS exposes, with their X.500 attribute OIDs. */
export const CERTIFICATE_NAME_ATTRIBUTES: Readonly<Record<string, string>> = {
  DistinguishedNameQualifier: "2.5.4.46",
  Country: "2.5.4.6",
  Organization: "2.5.4.10",
  OrganizationalUnit: "2.5.4.11",
  State: "2.5.4.8",
  CommonName: "2.5.4.3",
  SerialNumber: "2.5.4.5",
  Title: "2.5.4.12",
  Surname: "2.5.4.4",
  GivenName: "2.5.4.42",
  Initials: "2.5.4.43",
  Pseudonym: "2.5.4.65",
  GenerationQualifier: "2.5.4.44",
};

/** The alternative-name kinds AWS exposes for the subject and the issuer. */
export const CERTIFICATE_ALT_NAME_TYPES = [
  "RFC822Name",
  "DNSName",
  "DirectoryName",
  "UniformResourceIdentifier",
  "IPAddress",
] as const;

const FIXED_BY_LOWER = new Map(FIXED_KEYS.map((k) => [k.name.toLowerCase(), k]));
const ATTR_BY_LOWER = new Map(
  Object.keys(CERTIFICATE_NAME_ATTRIBUTES).map((a) => [a.toLowerCase(), a]),
);
const ALT_BY_LOWER = new Map(CERTIFICATE_ALT_NAME_TYPES.map((a) => [a.toLowerCase(), a]));

const SUPPORTED_KEYS_HELP =
  "supported: iot:ClientId, iot:DomainName, aws:SourceIp, aws:CurrentTime, aws:EpochTime, aws:SecureTransport, " +
  "iot:Connection.Thing.ThingName|ThingTypeName|IsAttached|Attributes[name], iot:ConnectAttributes, iot:LastWillTopic, " +
  "iot:CertificateId, iot:Certificate.SerialNumber, iot:Certificate.AvailableKeys, " +
  `iot:Certificate.Subject|Issuer.<${Object.keys(CERTIFICATE_NAME_ATTRIBUTES).join("|")}>[.N|.List], ` +
  `iot:Certificate.Subject|Issuer.AlternativeName.<${CERTIFICATE_ALT_NAME_TYPES.join("|")}>[.N|.List]`;

/**
 * The key a condition or variable names, in its canonical spelling, or why it is not one the
 * evaluator resolves. Condition key names match case-insensitively, as the IAM User Guide says of
 * condition keys; a thing attribute's own name keeps its case.
 */
export function lookupKey(name: string): KeySpec | { error: string } {
  const lower = name.toLowerCase();
  const fixed = FIXED_BY_LOWER.get(lower);
  if (fixed) return fixed;
  const attr = /^iot:connection\.thing\.attributes\[([^\]]+)\]$/.exec(lower);
  if (attr) {
    const own = name.slice(name.indexOf("[") + 1, -1);
    return {
      name: `iot:Connection.Thing.Attributes[${own}]`,
      type: "string",
      multi: false,
      variable: true,
    };
  }
  const cert =
    /^iot:certificate\.(subject|issuer)\.(?:(alternativename)\.)?([a-z0-9]+)(?:\.(\d{1,3}|list))?$/.exec(
      lower,
    );
  if (cert) {
    const [, side, alt, field, suffix] = cert;
    const canonicalField = alt ? ALT_BY_LOWER.get(field) : ATTR_BY_LOWER.get(field);
    if (canonicalField !== undefined) {
      const sideName = side === "subject" ? "Subject" : "Issuer";
      const isList = suffix === "list";
      const tail = suffix === undefined ? "" : isList ? ".List" : `.${Number(suffix)}`;
      return {
        name: `iot:Certificate.${sideName}.${alt ? "AlternativeName." : ""}${canonicalField}${tail}`,
        type: "string",
        multi: isList,
        variable: !isList,
      };
    }
  }
  return { error: `condition key ${name} is not supported; ${SUPPORTED_KEYS_HELP}` };
}

/** A piece of a Resource pattern or condition value: text with `*`/`?` wildcards, or a variable. */
export type TemplatePart =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "literal"; readonly text: string }
  | { readonly kind: "var"; readonly key: KeySpec };

/** `${*}`, `${?}` and `${$}` stand for the characters themselves (iot-policy-variables.html). */
const SPECIAL_LITERALS: Readonly<Record<string, string>> = { "*": "*", "?": "?", $: "$" };

/**
 * Splits a Resource pattern or condition value into text and `${...}` variables, or says which
 * variable the evaluator cannot resolve. Variable names must be spelled as AWS documents them:
 * a differently cased one is refused naming the documented spelling, so that no variable is ever
 * silently left unresolved.
 */
export function parseTemplate(text: string): TemplatePart[] | { error: string } {
  const parts: TemplatePart[] = [];
  let at = 0;
  for (const m of text.matchAll(/\$\{([^}]*)\}/g)) {
    if (m.index > at) parts.push({ kind: "text", text: text.slice(at, m.index) });
    at = m.index + m[0].length;
    const name = m[1];
    if (Object.hasOwn(SPECIAL_LITERALS, name)) {
      parts.push({ kind: "literal", text: SPECIAL_LITERALS[name] });
      continue;
    }
    const key = lookupKey(name);
    if ("error" in key) {
      return { error: `policy variable \${${name}} is not supported; ${SUPPORTED_KEYS_HELP}` };
    }
    if (key.name !== name) {
      return { error: `policy variable \${${name}} must be written \${${key.name}}` };
    }
    if (!key.variable) {
      return {
        error: key.multi
          ? `policy variable \${${name}} holds several values and cannot stand in a string; use it as a condition key with ForAnyValue: or ForAllValues:`
          : `\${${name}} is a condition key, not a policy variable; compare it in a Condition`,
      };
    }
    parts.push({ kind: "var", key });
  }
  if (at < text.length) parts.push({ kind: "text", text: text.slice(at) });
  return parts;
}

/** The resource types of the IoT policy actions (iot-action-resources.html). */
export const IOT_RESOURCE_TYPES = ["client", "topic", "topicfilter", "thing", "rolealias"] as const;

/** Why a Resource entry is not an ARN AWS IoT accepts, or undefined when it is. */
function resourceProblem(pattern: string): string | undefined {
  if (pattern === "*") return undefined;
  const shape = `write * or arn:<partition>:iot:<region>:<account>:<${IOT_RESOURCE_TYPES.join("|")}>/<name>`;
  if (!pattern.startsWith("arn:")) return `resource ${pattern} is not an ARN; ${shape}`;
  const parts = pattern.split(":");
  if (parts.length < 6) return `resource ${pattern} is a malformed ARN; ${shape}`;
  const [, partition, service, , , ...restParts] = parts;
  const rest = restParts.join(":");
  if (!/^(aws|aws-cn|aws-us-gov|aws-iso[a-z-]*|[a-z-]*[*?][a-z-*?]*)$/.test(partition)) {
    return `resource ${pattern} names the unknown partition ${partition || "(empty)"}; ${shape}`;
  }
  if (service !== "iot" && !/[*?]/.test(service)) {
    return `resource ${pattern} is not an AWS IoT ARN (service ${service || "(empty)"}); ${shape}`;
  }
  if (rest === "") return `resource ${pattern} is a malformed ARN: it names no resource; ${shape}`;
  const slash = rest.indexOf("/");
  const type = slash < 0 ? rest : rest.slice(0, slash);
  if (/[*?]/.test(type)) return undefined;
  if (!(IOT_RESOURCE_TYPES as readonly string[]).includes(type) || slash < 0) {
    return `resource ${pattern} is a malformed ARN: ${slash < 0 ? `${type} has no /<name>` : `unknown resource type ${type}`}; ${shape}`;
  }
  return undefined;
}

/** Why a condition value cannot be compared by its operator, or undefined. */
function valueProblem(family: OperatorFamily, value: string): string | undefined {
  if (value.includes("${")) return undefined; // resolved per connection
  switch (family) {
    case "numeric":
      return value.trim() !== "" && Number.isFinite(Number(value))
        ? undefined
        : `${JSON.stringify(value)} is not a number`;
    case "date":
      return parseIamDate(value) === undefined
        ? `${JSON.stringify(value)} is not an ISO 8601 date or epoch seconds`
        : undefined;
    case "bool":
    case "null":
      return /^(true|false)$/i.test(value)
        ? undefined
        : `${JSON.stringify(value)} is not true or false`;
    case "ip":
      return parseCidr(value) === undefined
        ? `${JSON.stringify(value)} is not an IPv4 or IPv6 address or CIDR block`
        : undefined;
    case "arn":
      return value.startsWith("arn:") && value.split(":").length >= 6
        ? undefined
        : `${JSON.stringify(value)} is not an ARN`;
    default:
      return undefined;
  }
}

/** Whether an operator family can compare a key of this type (the IAM operator page's pairs). */
function compatible(family: OperatorFamily, key: KeySpec): boolean {
  switch (family) {
    case "string":
    case "null":
      return true;
    case "numeric":
      return key.type === "string" || key.name === "aws:EpochTime";
    case "date":
      return key.type === "date";
    case "bool":
      return key.type === "bool";
    case "ip":
      return key.type === "ip";
    case "arn":
      return key.type === "arn";
  }
}

/**
 * A date as IAM's date operators read it: ISO 8601 (date, or date and time with a zone) or epoch
 * seconds. Milliseconds since the epoch, or undefined.
 */
export function parseIamDate(value: string): number | undefined {
  const v = value.trim();
  if (/^\d{1,12}$/.test(v)) return Number(v) * 1000;
  if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/.test(v)) {
    return undefined;
  }
  const t = Date.parse(/T/.test(v) ? v : `${v}T00:00:00Z`);
  return Number.isFinite(t) ? t : undefined;
}

/** An IPv4 or IPv6 address or CIDR block, normalized; undefined when malformed. */
export function parseCidr(
  value: string,
): { address: string; prefix: number; family: "ipv4" | "ipv6" } | undefined {
  const [address, prefixText, extra] = value.trim().split("/");
  if (extra !== undefined) return undefined;
  const version = isIP(address);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!/^\d{1,3}$/.test(prefixText ?? "0") || !Number.isInteger(prefix) || prefix > max) {
    return undefined;
  }
  return { address, prefix, family: version === 4 ? "ipv4" : "ipv6" };
}

/** One checked condition: its operator and key taken apart. */
export interface CheckedCondition extends NormalizedCondition {
  readonly parsed: ParsedOperator;
  readonly keySpec: KeySpec;
}

/**
 * Checks a condition against the IoT language, or throws naming the statement, the key or
 * operator, and what is supported. Nothing the evaluator does not implement gets through.
 */
export function checkCondition(s: NormalizedStatement, c: NormalizedCondition): CheckedCondition {
  const where = describeStatement(s);
  const parsed = parseConditionOperator(c.operator);
  if ("error" in parsed) throw new PolicyDocumentError(`${where}: ${parsed.error}`);
  const keySpec = lookupKey(c.key);
  if ("error" in keySpec) throw new PolicyDocumentError(`${where}: ${keySpec.error}`);
  if (!compatible(parsed.spec.family, keySpec)) {
    throw new PolicyDocumentError(
      `${where}: condition operator ${c.operator} cannot compare ${keySpec.name} (a ${keySpec.type} key); use ${keySpec.type === "string" ? "a String or Numeric" : keySpec.type === "bool" ? "Bool" : keySpec.type === "ip" ? "IpAddress or NotIpAddress" : keySpec.type === "arn" ? "an Arn" : "a Date"} operator, or a String operator`,
    );
  }
  if (keySpec.multi && parsed.set === undefined && parsed.spec.family !== "null") {
    throw new PolicyDocumentError(
      `${where}: condition key ${keySpec.name} holds several values; write ForAnyValue:${c.operator} or ForAllValues:${c.operator}`,
    );
  }
  for (const v of c.values) {
    const bad = valueProblem(parsed.spec.family, v);
    if (bad) {
      throw new PolicyDocumentError(`${where}: condition ${c.operator} ${c.key}: ${bad}`);
    }
    const t = parseTemplate(v);
    if ("error" in t) throw new PolicyDocumentError(`${where}: condition ${c.key}: ${t.error}`);
  }
  return { ...c, parsed, keySpec };
}

const DOCUMENT_FIELDS = new Set(["Version", "Id", "Statement"]);
const STATEMENT_FIELDS = new Set([
  "Sid",
  "Effect",
  "Action",
  "NotAction",
  "Resource",
  "NotResource",
  "Condition",
]);

/**
 * Parses an IoT policy document (object or JSON text) into normalized statements, or throws a
 * PolicyDocumentError naming what AWS would reject or what the evaluator does not implement: an
 * unknown condition key, operator or policy variable, a malformed resource ARN, an empty
 * statement list, a document over CreatePolicy's 2048 characters. This is the one reading of an
 * IoT policy: the evaluator, the audit and the stack config all go through it.
 */
export function normalizePolicy(doc: unknown): NormalizedStatement[] {
  const value = parseJson(doc);
  const statements = normalizePolicyGrammar(value);
  const text = typeof doc === "string" ? doc : JSON.stringify(value);
  const size = text.replace(/\s/g, "").length;
  if (size > MAX_POLICY_CHARS) {
    throw new PolicyDocumentError(
      `policy document is ${size} characters without whitespace; AWS IoT accepts at most ${MAX_POLICY_CHARS}: split it into several policies`,
    );
  }
  const top = value as Record<string, unknown>;
  for (const field of Object.keys(top)) {
    if (!DOCUMENT_FIELDS.has(field)) {
      throw new PolicyDocumentError(
        `policy document has the unknown field ${field}; an IoT policy has Version and Statement`,
      );
    }
  }
  if (top.Version !== undefined && top.Version !== "2012-10-17") {
    throw new PolicyDocumentError(
      `policy document Version ${JSON.stringify(top.Version)} is not supported; write "Version": "2012-10-17" (policy variables need it)`,
    );
  }
  const raw = Array.isArray(top.Statement) ? top.Statement : [top.Statement];
  let usesVariables = false;
  for (const s of statements) {
    const where = describeStatement(s);
    for (const field of Object.keys(raw[s.index] as object)) {
      if (!STATEMENT_FIELDS.has(field)) {
        throw new PolicyDocumentError(
          field === "Principal" || field === "NotPrincipal"
            ? `${where}: an IoT policy has no ${field}: it applies to the certificate it is attached to; remove it`
            : `${where}: unknown field ${field}; a statement has Sid, Effect, Action/NotAction, Resource/NotResource and Condition`,
        );
      }
    }
    for (const r of [...(s.resources ?? []), ...(s.notResources ?? [])]) {
      const t = parseTemplate(r);
      if ("error" in t) throw new PolicyDocumentError(`${where}: resource ${r}: ${t.error}`);
      if (t.some((p) => p.kind === "var")) usesVariables = true;
      // Check the ARN's shape with its variables taken out: they stand inside the name.
      const bad = resourceProblem(t.map((p) => (p.kind === "var" ? "x" : p.text)).join(""));
      if (bad)
        throw new PolicyDocumentError(`${where}: ${bad.replace(/^resource \S+/, `resource ${r}`)}`);
    }
    for (const c of s.conditions) {
      checkCondition(s, c);
      if (c.values.some((v) => v.includes("${"))) usesVariables = true;
    }
  }
  if (usesVariables && top.Version === undefined) {
    throw new PolicyDocumentError(
      'policy document uses policy variables but has no Version; add "Version": "2012-10-17", without which AWS leaves ${...} unreplaced',
    );
  }
  return statements;
}

// ---- Matching ------------------------------------------------------------------------------

/** A compiled wildcard pattern: true when the whole text matches. */
type Matcher = (text: string) => boolean;

/**
 * Compiled patterns by case and pattern. The local broker evaluates its policy on every publish,
 * and compiling the same few patterns each time was a sixth of its CPU. Bounded, because a
 * pattern holding a policy variable becomes one pattern per client once substituted: past the
 * bound the oldest entry goes, which costs a recompile, never a wrong answer.
 */
const compiled = new Map<string, Matcher>();
const COMPILED_MAX = 10_000;

const escapeRegExp = (c: string) => c.replace(/[.+^${}()|[\]\\*?]/g, "\\$&");

/** A pattern's pieces: literal text (`${*}`-style escapes made literal) and the wildcards. */
function tokens(pattern: string): Array<{ text: string } | "*" | "?"> {
  const out: Array<{ text: string } | "*" | "?"> = [];
  let text = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    const special = c === "$" && /^\$\{[*?$]\}/.exec(pattern.slice(i));
    if (special) {
      text += special[0][2];
      i += 3;
    } else if (c === "*" || c === "?") {
      out.push({ text }, c);
      text = "";
    } else text += c;
  }
  out.push({ text });
  return out;
}

/**
 * IAM-style wildcard match: `*` any run of characters (across `/` and `:`), `?` exactly one;
 * `${*}`, `${?}` and `${$}` are the characters themselves. Patterns with `*` only are matched by
 * their literal pieces in order (prefix, pieces found left to right, suffix), which is linear: a
 * regular expression with several `.*` backtracks over a long ARN, and a policy with twenty such
 * resources spent most of its time there.
 */
function wildcardMatcher(pattern: string, ignoreCase: boolean): Matcher {
  const key = `${ignoreCase ? "i" : "c"}:${pattern}`;
  let m = compiled.get(key);
  if (m) return m;
  const parts = tokens(pattern);
  if (parts.includes("?")) {
    const body = parts
      .map((p) => (p === "*" ? ".*" : p === "?" ? "." : escapeRegExp(p.text)))
      .join("");
    const re = new RegExp(`^${body}$`, ignoreCase ? "is" : "s");
    m = (text) => re.test(text);
  } else {
    const fold = (t: string) => (ignoreCase ? t.toLowerCase() : t);
    const pieces = parts.flatMap((p) => (typeof p === "object" ? [fold(p.text)] : []));
    if (pieces.length === 1) {
      const only = pieces[0];
      m = (text) => fold(text) === only;
    } else {
      const first = pieces[0];
      const last = pieces[pieces.length - 1];
      const middle = pieces.slice(1, -1);
      const min = pieces.reduce((n, p) => n + p.length, 0);
      m = (raw) => {
        const text = fold(raw);
        if (text.length < min || !text.startsWith(first) || !text.endsWith(last)) return false;
        let at = first.length;
        const end = text.length - last.length;
        for (const piece of middle) {
          const found = text.indexOf(piece, at);
          if (found < 0 || found + piece.length > end) return false;
          at = found + piece.length;
        }
        return at <= end;
      };
    }
  }
  if (compiled.size >= COMPILED_MAX) compiled.delete(compiled.keys().next().value as string);
  compiled.set(key, m);
  return m;
}

/** Whether a pattern needs the matcher: a wildcard, or a `${*}`-style literal. */
const needsMatcher = (pattern: string): boolean =>
  pattern.includes("*") || pattern.includes("?") || pattern.includes("${");

/** Whether an action pattern (`iot:*`, `iot:Publish*`, `*`) covers an action; case-insensitive. */
export function actionMatches(pattern: string, action: string): boolean {
  return wildcardMatcher(pattern, true)(action);
}

/** {@link actionMatches} for one pattern, compiled once: for a document's fixed actions. */
export function actionMatcher(pattern: string): (action: string) => boolean {
  return wildcardMatcher(pattern, true);
}

/**
 * Whether a resource pattern covers a resource ARN; case-sensitive. MQTT's `+` and `#` are
 * plain characters here, as they are in AWS IoT policies.
 */
export function resourceMatches(pattern: string, resource: string): boolean {
  // Without a wildcard the match is plain, case-sensitive equality.
  if (!needsMatcher(pattern)) return pattern === resource;
  return wildcardMatcher(pattern, false)(resource);
}

/** {@link resourceMatches} for one pattern, compiled once: for a document's fixed resources. */
export function resourceMatcher(pattern: string): (resource: string) => boolean {
  if (!needsMatcher(pattern)) return (resource) => pattern === resource;
  return wildcardMatcher(pattern, false);
}

/** Whether a statement's action part (Action or NotAction) applies to the action. */
export function statementCoversAction(s: NormalizedStatement, action: string): boolean {
  return actionCoverage(s)(action);
}

/** {@link statementCoversAction} for one statement, its patterns compiled once. */
export function actionCoverage(s: NormalizedStatement): (action: string) => boolean {
  const any = (s.actions ?? []).map(actionMatcher);
  const none = (s.notActions ?? []).map(actionMatcher);
  const covers = s.actions
    ? (action: string) => any.some((m) => m(action))
    : (action: string) => !none.some((m) => m(action));
  // A broker asks about the same handful of actions on every message: answer each once. Bounded,
  // since an action name comes from the caller.
  const memo = new Map<string, boolean>();
  return (action) => {
    let r = memo.get(action);
    if (r === undefined) {
      r = covers(action);
      if (memo.size < 64) memo.set(action, r);
    }
    return r;
  };
}
