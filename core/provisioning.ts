// Fleet provisioning by claim, the plain parts shared by the program, the policy pack, the local
// broker, the device and the Lambda hook: the MQTT API's topics, the provisioning template the
// stack deploys and its evaluation, the claim certificate's IoT policy and its audit, and the
// pre-provisioning hook's rule. AWS's pages are cited where each rule comes from.
import {
  actionCoverage,
  describeStatement,
  iotArn,
  resourceMatches,
  type IotArnContext,
  type NormalizedStatement,
  type PolicyDocument,
} from "./iot-policy/policy";

// ---- The MQTT API's topics ------------------------------------------------------------------
// https://docs.aws.amazon.com/iot/latest/developerguide/fleet-provision-api.html

/** CreateKeysAndCertificate's request topic, less `/<payload-format>`. */
export const CREATE_KEYS_TOPIC = "$aws/certificates/create";
/** CreateCertificateFromCsr's request topic, less `/<payload-format>`. */
export const CREATE_FROM_CSR_TOPIC = "$aws/certificates/create-from-csr";

/** RegisterThing's request topic for a template, less `/<payload-format>`. */
export function registerThingTopic(templateName: string): string {
  return `$aws/provisioning-templates/${templateName}/provision`;
}

export type ProvisioningApi =
  "CreateKeysAndCertificate" | "CreateCertificateFromCsr" | "RegisterThing";
/** The page's `payload-format`: the API answers in the format the request topic names. */
export type PayloadFormat = "json" | "cbor";

/** A topic of the MQTT API, read back: which call, which format, request or which response. */
export interface ProvisioningTopic {
  readonly api: ProvisioningApi;
  /** RegisterThing only. */
  readonly templateName?: string;
  readonly format: PayloadFormat;
  readonly kind: "request" | "accepted" | "rejected";
}

/** Provisioning template names: 1-36 of letters, digits, `_` and `-` (CreateProvisioningTemplate). */
const TEMPLATE_NAME_PART = "[0-9A-Za-z_-]{1,36}";
const TEMPLATE_NAME = new RegExp(`^${TEMPLATE_NAME_PART}$`);

/** The API topic a name is, or undefined for any other topic. */
export function parseProvisioningTopic(topic: string): ProvisioningTopic | undefined {
  const m =
    /^\$aws\/(?:certificates\/(create|create-from-csr)|provisioning-templates\/([^/]+)\/provision)\/(json|cbor)(?:\/(accepted|rejected))?$/.exec(
      topic,
    );
  if (m === null) return undefined;
  const [, certificates, templateName, format, response] = m;
  const kind = (response ?? "request") as ProvisioningTopic["kind"];
  if (certificates !== undefined) {
    const api = certificates === "create" ? "CreateKeysAndCertificate" : "CreateCertificateFromCsr";
    return { api, format: format as PayloadFormat, kind };
  }
  return { api: "RegisterThing", templateName, format: format as PayloadFormat, kind };
}

/** The request topic of a call in a format. */
export function requestTopic(
  api: ProvisioningApi,
  format: PayloadFormat,
  templateName = "",
): string {
  const base =
    api === "CreateKeysAndCertificate"
      ? CREATE_KEYS_TOPIC
      : api === "CreateCertificateFromCsr"
        ? CREATE_FROM_CSR_TOPIC
        : registerThingTopic(templateName);
  return `${base}/${format}`;
}

/** The error payload every call answers on `.../rejected` (the page's error payload). */
export interface ProvisioningErrorPayload {
  readonly statusCode: number;
  readonly errorCode: string;
  readonly errorMessage: string;
}

// ---- The stack's provisioning template -----------------------------------------------------
// https://docs.aws.amazon.com/iot/latest/developerguide/provision-template.html

/** The parameter a device passes to RegisterThing; the thing name is the prefix plus it. */
export const SERIAL_PARAMETER = "SerialNumber";
/** The parameter the service itself fills with the certificate's id (fleet provisioning). */
export const CERTIFICATE_ID_PARAMETER = "AWS::IoT::Certificate::Id";

/** What the stack's template registers for a device. */
export interface TemplateSpec {
  /** Every thing name is this prefix plus the device's serial. */
  readonly thingPrefix: string;
  readonly thingTypeName: string;
  readonly group: string;
  /** The group's attributes, given to every provisioned thing. */
  readonly attributes: Readonly<Record<string, string>>;
  /** The device policy (least-privilege or tutorial) attached to every device certificate. */
  readonly policyName: string;
  /** The telemetry topic template (`{thing}` = thing name), sent back as device configuration. */
  readonly telemetryTopic: string;
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
/** A template body (the JSON document AWS stores). */
export type TemplateBody = { [key: string]: Json };

/** `{"Fn::Join": ["", [prefix, {"Ref": "SerialNumber"}]]}`: the thing name from the serial. */
function thingNameOf(prefix: string): Json {
  return { "Fn::Join": ["", [prefix, { Ref: SERIAL_PARAMETER }]] };
}

/**
 * The stack's fleet provisioning template: one thing named `<prefix><SerialNumber>` of the stack's
 * thing type, in its group with its attributes (plus the serial), the certificate AWS made for the
 * request (by `AWS::IoT::Certificate::Id`, the only way fleet provisioning names it) activated,
 * and the stack's device policy attached by name. DeviceConfiguration (flat strings only, per the
 * page) tells the device its telemetry topic.
 */
export function provisioningTemplateBody(spec: TemplateSpec): TemplateBody {
  const [head, ...rest] = spec.telemetryTopic.split("{thing}");
  // One Fn::Join of literal strings and Refs, the form the page's fleet template example uses
  // (`{"Fn::Join":["",["ThingPrefix_",{"Ref":"SerialNumber"}]]}`); the page shows no function
  // nested in another's list, so the thing name's own Join is spelt out here, not nested.
  const topicParts: Json[] = [head];
  for (const part of rest) topicParts.push(spec.thingPrefix, { Ref: SERIAL_PARAMETER }, part);
  return {
    Parameters: {
      [SERIAL_PARAMETER]: { Type: "String" },
      [CERTIFICATE_ID_PARAMETER]: { Type: "String" },
    },
    Resources: {
      certificate: {
        Type: "AWS::IoT::Certificate",
        Properties: { CertificateId: { Ref: CERTIFICATE_ID_PARAMETER }, Status: "Active" },
      },
      policy: { Type: "AWS::IoT::Policy", Properties: { PolicyName: spec.policyName } },
      thing: {
        Type: "AWS::IoT::Thing",
        OverrideSettings: {
          AttributePayload: "MERGE",
          ThingTypeName: "REPLACE",
          ThingGroups: "DO_NOTHING",
        },
        Properties: {
          ThingName: thingNameOf(spec.thingPrefix),
          ThingTypeName: spec.thingTypeName,
          ThingGroups: [spec.group],
          AttributePayload: { ...spec.attributes, serialNumber: { Ref: SERIAL_PARAMETER } },
        },
      },
    },
    DeviceConfiguration: {
      telemetryTopic:
        rest.length === 0 ? head : { "Fn::Join": ["", topicParts.filter((x) => x !== "")] },
    },
  };
}

/** A template that cannot be evaluated with these parameters; `errorCode` is what the device gets. */
export class TemplateError extends Error {
  constructor(
    readonly errorCode: string,
    message: string,
  ) {
    super(message);
    this.name = "TemplateError";
  }
}

/** What a template registers for one request, once its parameters are substituted. */
export interface EvaluatedTemplate {
  readonly thing?: {
    readonly name: string;
    readonly typeName?: string;
    readonly groups: readonly string[];
    readonly attributes: Readonly<Record<string, string>>;
    readonly overrides: Readonly<Record<string, string>>;
  };
  readonly certificate?: { readonly id: string; readonly status: "ACTIVE" | "INACTIVE" };
  readonly policyNames: readonly string[];
  readonly deviceConfiguration: Readonly<Record<string, string>>;
}

const MAX_DEPTH = 16;

function isObject(v: unknown): v is { [key: string]: Json } {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Evaluates the intrinsic functions the page lists (Ref, Fn::Join, Fn::Select, Fn::Split,
 * Fn::FindInMap, Fn::Sub) in one value. Bounded in depth; anything else is a TemplateError.
 */
function evaluateValue(
  value: unknown,
  params: Readonly<Record<string, string>>,
  mappings: Readonly<Record<string, unknown>>,
  depth = 0,
): Json {
  if (depth > MAX_DEPTH) throw new TemplateError("InvalidRequest", "the template nests too deeply");
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
    return value;
  }
  if (value === null) return null;
  const ev = (v: unknown) => evaluateValue(v, params, mappings, depth + 1);
  if (Array.isArray(value)) return value.map(ev);
  if (!isObject(value))
    throw new TemplateError("InvalidRequest", "the template holds a non-JSON value");
  const keys = Object.keys(value);
  if (keys.length === 1 && (keys[0] === "Ref" || keys[0].startsWith("Fn::"))) {
    const arg = value[keys[0]];
    switch (keys[0]) {
      case "Ref": {
        if (typeof arg !== "string" || !(arg in params)) {
          throw new TemplateError(
            "InvalidParameters",
            `the template refers to parameter ${JSON.stringify(arg)}, which the request does not give and has no default`,
          );
        }
        return params[arg];
      }
      case "Fn::Join": {
        if (!Array.isArray(arg) || arg.length !== 2 || typeof arg[0] !== "string") {
          throw new TemplateError("InvalidRequest", "Fn::Join takes [delimiter, [values]]");
        }
        const items = ev(arg[1]);
        if (!Array.isArray(items) || items.some((i) => typeof i !== "string")) {
          throw new TemplateError("InvalidRequest", "Fn::Join joins a list of strings");
        }
        return items.join(arg[0]);
      }
      case "Fn::Split": {
        if (!Array.isArray(arg) || arg.length !== 2 || typeof arg[0] !== "string") {
          throw new TemplateError("InvalidRequest", "Fn::Split takes [delimiter, string]");
        }
        const s = ev(arg[1]);
        if (typeof s !== "string")
          throw new TemplateError("InvalidRequest", "Fn::Split splits a string");
        return s.split(arg[0]);
      }
      case "Fn::Select": {
        if (!Array.isArray(arg) || arg.length !== 2) {
          throw new TemplateError("InvalidRequest", "Fn::Select takes [index, list]");
        }
        const index = Number(ev(arg[0]));
        const list = ev(arg[1]);
        // The page: an index out of bounds or a null element is a provisioning error.
        if (!Array.isArray(list) || !Number.isInteger(index) || index < 0 || index >= list.length) {
          throw new TemplateError("InvalidRequest", "Fn::Select's index is outside its list");
        }
        const picked = list[index];
        if (picked === null) throw new TemplateError("InvalidRequest", "Fn::Select picked null");
        return picked;
      }
      case "Fn::FindInMap": {
        if (!Array.isArray(arg) || arg.length !== 3) {
          throw new TemplateError("InvalidRequest", "Fn::FindInMap takes [map, key, key]");
        }
        const [map, k1, k2] = arg.map(ev);
        const found = (mappings[String(map)] as Record<string, Record<string, Json>> | undefined)?.[
          String(k1)
        ]?.[String(k2)];
        if (found === undefined) {
          throw new TemplateError(
            "InvalidParameters",
            `Fn::FindInMap finds no ${String(map)}.${String(k1)}.${String(k2)}`,
          );
        }
        return found;
      }
      case "Fn::Sub": {
        if (typeof arg !== "string")
          throw new TemplateError("InvalidRequest", "Fn::Sub takes a string");
        return arg.replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
          if (!(name in params)) {
            throw new TemplateError(
              "InvalidParameters",
              `Fn::Sub refers to parameter ${JSON.stringify(name)}, which the request does not give`,
            );
          }
          return params[name];
        });
      }
      default:
        throw new TemplateError(
          "InvalidRequest",
          `the template uses ${keys[0]}, which is not supported`,
        );
    }
  }
  return Object.fromEntries(keys.map((k) => [k, ev(value[k])]));
}

function asStringMap(v: Json | undefined, what: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) throw new TemplateError("InvalidRequest", `${what} must be a map of strings`);
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    // The page: DeviceConfiguration "doesn't support nested JSON objects".
    if (typeof x !== "string" && typeof x !== "number" && typeof x !== "boolean") {
      throw new TemplateError("InvalidRequest", `${what}.${k} must be a string`);
    }
    out[k] = String(x);
  }
  return out;
}

/**
 * Evaluates a template for one RegisterThing: the request's parameters (each a string) over the
 * template's defaults, plus the service's `AWS::IoT::Certificate::Id`. A parameter without value
 * or default that the template uses is a TemplateError.
 */
export function evaluateTemplate(
  body: TemplateBody,
  requestParameters: Readonly<Record<string, string>>,
  certificateId: string,
): EvaluatedTemplate {
  const declared = isObject(body.Parameters) ? body.Parameters : {};
  const params: Record<string, string> = {};
  for (const [name, decl] of Object.entries(declared)) {
    if (isObject(decl) && typeof decl.Default === "string") params[name] = decl.Default;
  }
  for (const [name, value] of Object.entries(requestParameters)) params[name] = value;
  params[CERTIFICATE_ID_PARAMETER] = certificateId;
  const mappings = isObject(body.Mappings) ? body.Mappings : {};
  const resources = isObject(body.Resources) ? body.Resources : {};
  let thing: EvaluatedTemplate["thing"];
  let certificate: EvaluatedTemplate["certificate"];
  const policyNames: string[] = [];
  for (const [logical, raw] of Object.entries(resources)) {
    if (!isObject(raw))
      throw new TemplateError("InvalidRequest", `resource ${logical} is not an object`);
    const props = evaluateValue(raw.Properties ?? {}, params, mappings);
    if (!isObject(props))
      throw new TemplateError("InvalidRequest", `${logical}.Properties is not a map`);
    switch (raw.Type) {
      case "AWS::IoT::Thing": {
        if (typeof props.ThingName !== "string" || props.ThingName === "") {
          throw new TemplateError(
            "InvalidParameters",
            "the thing's ThingName evaluates to no name",
          );
        }
        const groups = props.ThingGroups ?? [];
        if (!Array.isArray(groups) || groups.some((g) => typeof g !== "string")) {
          throw new TemplateError("InvalidRequest", "ThingGroups must be a list of group names");
        }
        thing = {
          name: props.ThingName,
          typeName: typeof props.ThingTypeName === "string" ? props.ThingTypeName : undefined,
          groups: groups as string[],
          attributes: asStringMap(props.AttributePayload, "AttributePayload"),
          overrides: asStringMap(raw.OverrideSettings ?? null, "OverrideSettings"),
        };
        break;
      }
      case "AWS::IoT::Certificate": {
        const status = String(props.Status ?? "ACTIVE").toUpperCase();
        if (
          typeof props.CertificateId !== "string" ||
          (status !== "ACTIVE" && status !== "INACTIVE")
        ) {
          throw new TemplateError(
            "InvalidRequest",
            "a fleet provisioning template names its certificate by CertificateId, Status ACTIVE or INACTIVE",
          );
        }
        certificate = { id: props.CertificateId, status };
        break;
      }
      case "AWS::IoT::Policy":
        if (typeof props.PolicyName !== "string") {
          throw new TemplateError(
            "InvalidRequest",
            "this emulation attaches policies by PolicyName only",
          );
        }
        policyNames.push(props.PolicyName);
        break;
      default:
        throw new TemplateError("InvalidRequest", `resource ${logical} has an unknown Type`);
    }
  }
  const config = evaluateValue(body.DeviceConfiguration ?? {}, params, mappings);
  return {
    thing,
    certificate,
    policyNames,
    deviceConfiguration: asStringMap(config, "DeviceConfiguration"),
  };
}

// ---- The claim certificate's policy ----------------------------------------------------------
// https://docs.aws.amazon.com/iot/latest/developerguide/provision-wo-cert.html#claim-based

/**
 * Client ids a claim connection may use. AWS's example claim policy allows Connect on `*`, which
 * Device Defender flags (audit-chk-iot-policy-permissive), and with which a claim holder could
 * connect as a provisioned device's client id and disconnect it (one connection per client id).
 * The stack narrows it to a namespace no thing name of the fleet can be in.
 */
export const CLAIM_CLIENT_PREFIX = "claim-";

/** The provisioning topics' resource names (`topic/` or `topicfilter/` before them) a claim needs. */
export function claimTopicPatterns(templateName: string, createKeys: boolean): string[] {
  return [
    `${CREATE_FROM_CSR_TOPIC}/*`,
    ...(createKeys ? [`${CREATE_KEYS_TOPIC}/*`] : []),
    `${registerThingTopic(templateName)}/*`,
  ];
}

/**
 * The claim certificate's IoT policy: AWS's example, with Connect narrowed to the claim client ids
 * and the certificate calls to the ones the stack offers (CreateCertificateFromCsr always,
 * CreateKeysAndCertificate only when asked: it sends the private key over the wire).
 */
export function claimPolicy(
  ctx: IotArnContext,
  templateName: string,
  createKeys: boolean,
): PolicyDocument {
  const topics = claimTopicPatterns(templateName, createKeys);
  return {
    Version: "2012-10-17",
    Statement: [
      {
        Sid: "ConnectForProvisioning",
        Effect: "Allow",
        Action: "iot:Connect",
        Resource: iotArn(ctx, `client/${CLAIM_CLIENT_PREFIX}*`),
      },
      {
        Sid: "ProvisioningRequestsAndResponses",
        Effect: "Allow",
        Action: ["iot:Publish", "iot:Receive"],
        Resource: topics.map((t) => iotArn(ctx, `topic/${t}`)),
      },
      {
        Sid: "ProvisioningResponseTopics",
        Effect: "Allow",
        Action: "iot:Subscribe",
        Resource: topics.map((t) => iotArn(ctx, `topicfilter/${t}`)),
      },
    ],
  };
}

/** A topic or topic filter of the fleet provisioning MQTT API, for any template. */
const PROVISIONING_NAME = new RegExp(
  `^\\$aws/(certificates/(create|create-from-csr)|provisioning-templates/${TEMPLATE_NAME_PART}/provision)(/.*)?$`,
);

/** A resource pattern's `topic/...` or `topicfilter/...` name, or undefined for other ARNs. */
function topicName(pattern: string): string | undefined {
  const m = /^(?:arn:[^:]*:iot:[^:]*:[^:]*:)?(topic|topicfilter)\/(.*)$/.exec(pattern);
  return m?.[2];
}

/** Probes: a topic outside the API, and other things' reserved topics. */
const OUTSIDE_PROBES = [
  "SeattleStoreTemp/zq-probe",
  "$aws/things/zq-probe-thing/shadow/update",
  "$aws/things/zq-probe-thing/jobs/notify",
  "$aws/rules/zq-probe",
  "zq-probe/any/topic",
];

/** Whether a topic pattern reaches a topic outside the provisioning API. */
function reachesOutside(pattern: string): boolean {
  const name = topicName(pattern);
  if (name === undefined) return pattern.includes("*") || pattern.includes("?");
  if (!/[*?]/.test(name)) return !PROVISIONING_NAME.test(name);
  return OUTSIDE_PROBES.some((p) => resourceMatches(name, p));
}

/** Whether a document grants anything on a provisioning topic (the mark of a claim policy). */
export function grantsProvisioningTopics(statements: readonly NormalizedStatement[]): boolean {
  return statements.some(
    (s) =>
      s.effect === "Allow" &&
      (s.resources ?? []).some((r) => {
        const name = topicName(r);
        return name !== undefined && PROVISIONING_NAME.test(name.replace(/\*$/, "x"));
      }),
  );
}

/** One finding of the claim audit: the statement and a message saying what must change. */
export interface ClaimFinding {
  readonly statement: NormalizedStatement;
  readonly message: string;
}

const TOPIC_ACTIONS = ["iot:Publish", "iot:Receive", "iot:Subscribe", "iot:RetainPublish"];
const OTHER_ACTIONS = [
  "iot:GetThingShadow",
  "iot:UpdateThingShadow",
  "iot:DeleteThingShadow",
  "iot:DescribeJobExecution",
  "iot:UpdateJobExecution",
  "iot:ZqProbeFutureAction",
];

/**
 * The claim policy rule: a claim certificate's policy allows Connect, and Publish, Receive and
 * Subscribe on the provisioning API's topics only; anything wider is what Device Defender reports
 * as IOT_POLICY_OVERLY_PERMISSIVE_CHECK, and here it would hand every device in the field a
 * shared credential with data-plane access.
 */
export function claimPolicyFindings(statements: readonly NormalizedStatement[]): ClaimFinding[] {
  const findings: ClaimFinding[] = [];
  for (const s of statements) {
    if (s.effect !== "Allow") continue;
    const where = describeStatement(s);
    const covers = actionCoverage(s);
    if (s.notActions || s.notResources) {
      findings.push({
        statement: s,
        message: `${where} is an Allow with NotAction/NotResource, which grants more than the provisioning topics; list the provisioning actions and topics instead`,
      });
      continue;
    }
    const others = OTHER_ACTIONS.filter(covers);
    if (others.length > 0) {
      findings.push({
        statement: s,
        message: `${where} allows ${others.includes("iot:ZqProbeFutureAction") ? "every IoT action" : others.join(", ")}; a claim certificate needs only iot:Connect and iot:Publish, iot:Receive, iot:Subscribe on the provisioning topics (IOT_POLICY_OVERLY_PERMISSIVE_CHECK)`,
      });
    }
    const topicActions = TOPIC_ACTIONS.filter(covers);
    if (topicActions.length === 0) continue;
    const outside = (s.resources ?? []).filter(reachesOutside);
    if (outside.length > 0) {
      findings.push({
        statement: s,
        message: `${where} allows ${topicActions.join(", ")} on ${outside.join(", ")}, outside the provisioning topics ($aws/certificates/create-from-csr/*, $aws/certificates/create/*, $aws/provisioning-templates/<template>/provision/*); a claim certificate must reach nothing else (IOT_POLICY_OVERLY_PERMISSIVE_CHECK)`,
      });
    }
  }
  return findings;
}

// ---- The pre-provisioning hook's rule ---------------------------------------------------------
// https://docs.aws.amazon.com/iot/latest/developerguide/pre-provisioning-hook.html

/** What the hook returns (the page's return value). */
export interface PreProvisioningHookResponse {
  readonly allowProvisioning: boolean;
  readonly parameterOverrides?: Readonly<Record<string, string>>;
}

/** What the stack's hook decides by: its config (the archive's HOOK_CONFIG_FILE, or the stack's). */
export interface HookRule {
  /** Serials that may provision; undefined: any. */
  readonly allowedSerials?: readonly string[];
  /** The fleet's thing-name prefix: the template names each thing `<prefix><SerialNumber>`. */
  readonly thingPrefix: string;
  /** Whether a serial whose thing already exists may provision again. */
  readonly allowReprovisioning: boolean;
}

/**
 * Whether the stack needs a pre-provisioning hook: to hold serials to a list, or to refuse a known
 * serial. AWS applies a template to a thing that exists (its OverrideSettings merge into it), so
 * without a hook any claim holder could provision an already-provisioned serial and then connect as
 * that thing with a key of its own.
 */
export function hookRequired(rule: Omit<HookRule, "thingPrefix">): boolean {
  return rule.allowedSerials !== undefined || !rule.allowReprovisioning;
}

/** The request's serial (a string `SerialNumber` parameter), or undefined. */
export function hookSerial(request: unknown): string | undefined {
  const params = isObject(request) && isObject(request.parameters) ? request.parameters : undefined;
  const serial = params?.[SERIAL_PARAMETER];
  return typeof serial === "string" ? serial : undefined;
}

/** The thing a serial provisions into (the template's `Fn::Join ["", [prefix, Ref SerialNumber]]`). */
export function hookThingName(rule: HookRule, serial: string): string {
  return `${rule.thingPrefix}${serial}`;
}

/**
 * The stack's hook: provisioning proceeds only for a serial on the stack's list (when it has one),
 * and, unless the stack allows re-provisioning, only when the serial's thing does not exist yet
 * (`thingExists`: the registry's answer, DescribeThing's in the cloud). Anything that is not a
 * request with a string serial is refused: a hook must fail closed.
 */
export function preProvisioningDecision(
  request: unknown,
  rule: HookRule,
  thingExists: boolean,
): PreProvisioningHookResponse & { readonly reason: string } {
  const serial = hookSerial(request);
  if (serial === undefined) {
    return { allowProvisioning: false, reason: `the request has no ${SERIAL_PARAMETER} parameter` };
  }
  if (rule.allowedSerials !== undefined && !rule.allowedSerials.includes(serial)) {
    return {
      allowProvisioning: false,
      reason: `serial ${JSON.stringify(serial)} is not on the stack's list of allowed serials`,
    };
  }
  if (thingExists && !rule.allowReprovisioning) {
    return {
      allowProvisioning: false,
      reason: `serial ${JSON.stringify(serial)} is already provisioned (thing ${hookThingName(rule, serial)} exists) and the stack does not allow re-provisioning (provisioning.allowReprovisioning); delete the thing to provision it anew`,
    };
  }
  return { allowProvisioning: true, reason: `serial ${JSON.stringify(serial)} is allowed` };
}

/**
 * The file beside the function's code that holds its HookRule (JSON: `allowedSerials` or null,
 * `thingPrefix`, `allowReprovisioning`). Not environment variables: Lambda caps a function's
 * variables at 4 KB, less than a fleet's list of serials.
 */
export const HOOK_CONFIG_FILE = "hook-config.json";

/** The HookRule of a parsed HOOK_CONFIG_FILE, or undefined when it is not one (fail closed). */
export function parseHookRule(v: unknown): HookRule | undefined {
  if (!isObject(v) || typeof v.thingPrefix !== "string") return undefined;
  if (typeof v.allowReprovisioning !== "boolean") return undefined;
  const list = v.allowedSerials;
  if (list !== null && !(Array.isArray(list) && list.every((s) => typeof s === "string"))) {
    return undefined;
  }
  return {
    thingPrefix: v.thingPrefix,
    allowReprovisioning: v.allowReprovisioning,
    ...(list === null ? {} : { allowedSerials: list as string[] }),
  };
}

/** Whether a template name is one AWS accepts (1-36 of letters, digits, `_`, `-`). */
export function isTemplateName(name: string): boolean {
  return TEMPLATE_NAME.test(name);
}

// ---- Templates that would let a device choose its thing name --------------------------------

/** The literal text a template value starts with, whatever the parameters ("" if none). */
function literalPrefix(value: unknown): string {
  if (typeof value === "string") return value;
  if (!isObject(value)) return "";
  const [key] = Object.keys(value);
  const arg = value[key];
  if (key === "Fn::Join" && Array.isArray(arg) && Array.isArray(arg[1]) && arg[1].length > 0) {
    const first = literalPrefix(arg[1][0]);
    // With one element the join is that element; with more, a literal first part stays first.
    return first;
  }
  if (key === "Fn::Sub" && typeof arg === "string") return arg.split("${")[0];
  return "";
}

/**
 * Why a template lets a device choose any thing name (a claim holder could then register, or with
 * REPLACE override settings take over, a thing outside the fleet), or undefined when every thing it
 * registers is named with a fixed prefix before the device's parameters.
 */
export function templateThingNameFinding(body: unknown): string | undefined {
  let doc = body;
  if (typeof doc === "string") {
    try {
      doc = JSON.parse(doc);
    } catch {
      return "the template body is not JSON";
    }
  }
  if (!isObject(doc) || !isObject(doc.Resources)) return undefined;
  for (const [logical, r] of Object.entries(doc.Resources)) {
    if (!isObject(r) || r.Type !== "AWS::IoT::Thing") continue;
    const props = isObject(r.Properties) ? r.Properties : {};
    if (literalPrefix(props.ThingName) === "") {
      return `resource ${logical}'s ThingName ${JSON.stringify(props.ThingName)} starts with a value the device sends, so a claim holder can name any thing; build it as {"Fn::Join": ["", ["<fleet prefix>", {"Ref": "SerialNumber"}]]}`;
    }
  }
  return undefined;
}
