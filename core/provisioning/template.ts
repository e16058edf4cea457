// Fleet provisioning by claim: the provisioning template the stack deploys, its evaluation for a
// request, and the audit of templates that would let a device choose its thing name.
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

export function isObject(v: unknown): v is { [key: string]: Json } {
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
