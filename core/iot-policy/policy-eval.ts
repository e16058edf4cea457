// The one IoT policy evaluator: decides an action on a resource for a connected client the way
// AWS IoT Core does (IAM's evaluation logic and condition operators, IoT's policy variables), for
// the local broker, the stack config check and the tests.
import {
  actionCoverage,
  compileDocuments,
  checkCondition,
  describeStatement,
  normalizePolicy,
  parseTemplate,
  PolicyDocumentError,
  resourceMatcher,
  type CheckedCondition,
  type KeySpec,
  type NormalizedStatement,
  type TemplatePart,
} from "./policy";
import { IOT_MAX_CERT_VALUES } from "../iot-limits";
import { conditionHolds, normalizeIp, type ConditionValue } from "./conditions";

/** A certificate's attributes as AWS IoT exposes them to policies (cert-policy-variables.html). */
export interface CertificateAttributes {
  /** Subject attribute values by AWS's attribute name (`Organization`, `Country`, ...), in order. */
  readonly subject: Readonly<Record<string, readonly string[]>>;
  readonly issuer: Readonly<Record<string, readonly string[]>>;
  /** Subject alternative names by AWS's kind (`DNSName`, `RFC822Name`, ...). */
  readonly subjectAltNames: Readonly<Record<string, readonly string[]>>;
  readonly issuerAltNames: Readonly<Record<string, readonly string[]>>;
  /** The serial number, upper-case hex without separators. */
  readonly serialNumber?: string;
}

/** What AWS knows about the connection when it evaluates a policy. */
export interface PolicyContext {
  readonly clientId: string;
  /** The thing the connection's certificate is attached to, if any. */
  readonly thingName?: string;
  /** Whether the certificate is attached to `thingName` in the registry. */
  readonly isAttached: boolean;
  /**
   * How the certificate is attached to its thing (AttachThingPrincipal's thingPrincipalType).
   * Non-exclusive (AWS's default): thing variables resolve only when the client id is the thing's
   * name. Exclusive: they resolve to the one attached thing whatever the client id.
   * @default "non-exclusive"
   */
  readonly association?: "exclusive" | "non-exclusive";
  readonly thingTypeName?: string;
  /** The thing's attributes (a thing inherits nothing here: pass what the registry holds). */
  readonly attributes: Readonly<Record<string, string>>;
  /** `${iot:CertificateId}`: the certificate's id (64 hex characters). */
  readonly certificateId?: string;
  readonly certificate?: CertificateAttributes;
  /** `aws:SourceIp`: the peer's address. */
  readonly sourceIp?: string;
  /** `iot:DomainName`: the domain the client connected to. */
  readonly domainName?: string;
  /** `iot:ConnectAttributes`: `PersistentConnect` (clean session off), `LastWill`. */
  readonly connectAttributes?: readonly string[];
  /** `iot:LastWillTopic`: the ARN of the will's topic, when the connection has a will. */
  readonly lastWillTopic?: string;
  /** `aws:SecureTransport`: true over TLS. */
  readonly secureTransport?: boolean;
}

export interface PolicyRequest {
  /** For example `iot:Publish`. */
  readonly action: string;
  /** The full ARN, for example `arn:aws:iot:us-east-1:000000000000:topic/a/b`. */
  readonly resource: string;
  readonly context: PolicyContext;
  /** `aws:CurrentTime` / `aws:EpochTime`; defaults to now. */
  readonly time?: Date;
}

export type PolicyDecision = "allow" | "explicit-deny" | "implicit-deny";

export interface PolicyEvaluation {
  readonly decision: PolicyDecision;
  /** The deciding statement: the Deny that matched, or the first Allow that matched. */
  readonly statement?: NormalizedStatement;
}

// ---- What a key stands for on one connection ----------------------------------------------

/** Whether thing variables resolve for this connection (thing-policy-variables.html, exclusive-thing.html). */
function thingResolves(ctx: PolicyContext): boolean {
  if (ctx.thingName === undefined || !ctx.isAttached) return false;
  return ctx.association === "exclusive" || ctx.thingName === ctx.clientId;
}

export { normalizeIp };

/** Special characters in certificate values are escaped with a backslash (cert-policy-variables.html). */
const escapeCertValue = (v: string) => v.replace(/[,"\\=<>;]/g, "\\$&");

function certificateValues(key: string, ctx: PolicyContext): string[] | undefined {
  const c = ctx.certificate;
  if (c === undefined) return undefined;
  if (key === "iot:Certificate.SerialNumber") {
    return c.serialNumber === undefined ? undefined : [c.serialNumber];
  }
  if (key === "iot:Certificate.AvailableKeys") return availableKeys(c);
  const m = /^iot:Certificate\.(Subject|Issuer)\.(AlternativeName\.)?(\w+?)(?:\.(\d+|List))?$/.exec(
    key,
  );
  if (!m) return undefined;
  const [, side, alt, field, suffix] = m;
  const table =
    side === "Subject" ? (alt ? c.subjectAltNames : c.subject) : alt ? c.issuerAltNames : c.issuer;
  const all = (table[field] ?? []).slice(0, IOT_MAX_CERT_VALUES).map(escapeCertValue);
  if (all.length === 0) return undefined;
  if (suffix === "List") return all;
  const one = all[suffix === undefined ? 0 : Number(suffix)];
  return one === undefined ? undefined : [one];
}

function availableKeys(c: CertificateAttributes): string[] {
  const keys: string[] = [];
  const add = (prefix: string, table: Readonly<Record<string, readonly string[]>>) => {
    for (const [field, values] of Object.entries(table)) {
      if (values.length > 0) keys.push(`${prefix}${field}`);
    }
  };
  add("iot:Certificate.Subject.", c.subject);
  add("iot:Certificate.Issuer.", c.issuer);
  add("iot:Certificate.Subject.AlternativeName.", c.subjectAltNames);
  add("iot:Certificate.Issuer.AlternativeName.", c.issuerAltNames);
  if (c.serialNumber !== undefined) keys.push("iot:Certificate.SerialNumber");
  return keys;
}

/**
 * The values of a key on this connection at this time, or undefined when the request does not
 * carry it (AWS then leaves a variable unreplaced and treats the key as absent). Single-valued
 * keys give one value.
 */
export function keyValues(
  key: KeySpec,
  ctx: PolicyContext,
  now: Date = new Date(),
): string[] | undefined {
  const one = (v: string | undefined) => (v === undefined ? undefined : [v]);
  switch (key.name) {
    case "iot:ClientId":
      return [ctx.clientId];
    case "iot:DomainName":
      return one(ctx.domainName);
    case "aws:SourceIp":
      return one(ctx.sourceIp === undefined ? undefined : normalizeIp(ctx.sourceIp));
    case "aws:CurrentTime":
      return [now.toISOString().replace(/\.\d{3}Z$/, "Z")];
    case "aws:EpochTime":
      return [String(Math.floor(now.getTime() / 1000))];
    case "aws:SecureTransport":
      return ctx.secureTransport === undefined ? undefined : [String(ctx.secureTransport)];
    case "iot:Connection.Thing.IsAttached":
      return [String(thingResolves(ctx))];
    case "iot:Connection.Thing.ThingName":
      return thingResolves(ctx) ? one(ctx.thingName) : undefined;
    case "iot:Connection.Thing.ThingTypeName":
      return thingResolves(ctx) ? one(ctx.thingTypeName) : undefined;
    case "iot:ConnectAttributes":
      return [...(ctx.connectAttributes ?? [])];
    case "iot:LastWillTopic":
      return one(ctx.lastWillTopic);
    case "iot:CertificateId":
      return one(ctx.certificateId);
  }
  const attr = /^iot:Connection\.Thing\.Attributes\[(.+)\]$/.exec(key.name);
  if (attr) {
    return thingResolves(ctx) && Object.hasOwn(ctx.attributes, attr[1])
      ? [ctx.attributes[attr[1]]]
      : undefined;
  }
  return certificateValues(key.name, ctx);
}

// ---- Substituting variables ----------------------------------------------------------------

/** A template with its variables filled: as a wildcard pattern, and as the literal string. */
type Filled = ConditionValue;

/** Characters that keep a certificate variable from being replaced (cert-policy-variables.html). */
const CERT_WILDCARDS = /[*$+?#]/;
/** Longer certificate values are not substituted (cert-policy-variables.html). */
const MAX_CERT_VALUE_CHARS = 1024;

function fill(parts: readonly TemplatePart[], ctx: PolicyContext): Filled | undefined {
  let pattern = "";
  let literal = "";
  for (const p of parts) {
    if (p.kind === "text") {
      pattern += p.text;
      literal += p.text;
    } else if (p.kind === "literal") {
      pattern += `\${${p.text}}`;
      literal += p.text;
    } else {
      const v = keyValues(p.key, ctx)?.[0];
      if (v === undefined) return undefined;
      const isCert = p.key.name.startsWith("iot:Certificate.");
      // A value holding a wildcard would widen the pattern: AWS leaves certificate variables
      // with wildcard characters unreplaced, and so does this evaluator for every variable.
      if (isCert ? CERT_WILDCARDS.test(v) || v.length > MAX_CERT_VALUE_CHARS : /[*?]/.test(v)) {
        return undefined;
      }
      pattern += v.replace(/\$/g, "${$}");
      literal += v;
    }
  }
  return { pattern, literal };
}

// ---- Conditions ------------------------------------------------------------------------------

interface CompiledCondition {
  readonly holds: (ctx: PolicyContext, now: Date) => boolean;
}

function compileCondition(c: CheckedCondition): CompiledCondition {
  const { parsed, keySpec } = c;
  const values = c.values.map((v) => {
    const parts = parseTemplate(v);
    if ("error" in parts) throw new PolicyDocumentError(parts.error); // checkCondition let it through
    return parts;
  });
  const holds = (ctx: PolicyContext, now: Date): boolean => {
    const actual = keyValues(keySpec, ctx, now);
    const present = actual !== undefined && (!keySpec.multi || actual.length > 0);
    const policy = values.map((p) => fill(p, ctx)).filter((f): f is Filled => f !== undefined);
    return conditionHolds(parsed, present ? actual : undefined, policy);
  };
  const perRequest = keySpec.perRequest === true;
  if (perRequest) return { holds };
  // Everything else depends only on the connection, which the broker keeps per client: remember
  // the answer per context object rather than working it out on every publish.
  const byContext = new WeakMap<PolicyContext, boolean>();
  return {
    holds: (ctx, now) => {
      let r = byContext.get(ctx);
      if (r === undefined) {
        r = holds(ctx, now);
        byContext.set(ctx, r);
      }
      return r;
    },
  };
}

// ---- Statements ------------------------------------------------------------------------------

/** A Resource or NotResource entry, compiled once; one with variables is filled per connection. */
interface ResourcePattern {
  readonly matches: (resource: string, ctx: PolicyContext) => boolean;
  /** Whether its variables resolve for this connection (always, without variables). */
  readonly resolves: (ctx: PolicyContext) => boolean;
}

function compileResource(p: string): ResourcePattern {
  const parts = parseTemplate(p);
  if ("error" in parts) throw new PolicyDocumentError(parts.error);
  if (!parts.some((x) => x.kind === "var")) {
    return { matches: resourceMatcher(p), resolves: () => true };
  }
  // The substitution depends only on the connection's context, which the broker keeps per client
  // (a PolicyContext is read-only): remember it per context object, not once per publish. null
  // stands for unresolved, so that a missing entry stays undefined.
  const byContext = new WeakMap<PolicyContext, ((resource: string) => boolean) | null>();
  const resolved = (ctx: PolicyContext) => {
    let m = byContext.get(ctx);
    if (m === undefined) {
      const f = fill(parts, ctx);
      m = f === undefined ? null : resourceMatcher(f.pattern);
      byContext.set(ctx, m);
    }
    return m;
  };
  return {
    matches: (resource, ctx) => resolved(ctx)?.(resource) ?? false,
    resolves: (ctx) => resolved(ctx) !== null,
  };
}

/** A statement with its patterns compiled: the evaluator runs on every publish at the broker. */
interface CompiledStatement {
  readonly statement: NormalizedStatement;
  readonly coversAction: (action: string) => boolean;
  readonly resources?: readonly ResourcePattern[];
  readonly notResources: readonly ResourcePattern[];
  readonly conditions: readonly CompiledCondition[];
}

function compileStatement(s: NormalizedStatement): CompiledStatement {
  return {
    statement: s,
    coversAction: actionCoverage(s),
    resources: s.resources?.map(compileResource),
    notResources: (s.notResources ?? []).map(compileResource),
    conditions: s.conditions.map((c) => compileCondition(checkCondition(s, c))),
  };
}

function statementApplies(c: CompiledStatement, req: PolicyRequest, now: Date): boolean {
  if (!c.coversAction(req.action)) return false;
  const ctx = req.context;
  if (c.resources) {
    if (!c.resources.some((p) => p.matches(req.resource, ctx))) return false;
  } else {
    // An unresolved NotResource entry makes the statement not apply at all rather than widen it.
    if (c.notResources.some((p) => !p.resolves(ctx))) return false;
    if (c.notResources.some((p) => p.matches(req.resource, ctx))) return false;
  }
  return c.conditions.every((cond) => cond.holds(ctx, now));
}

/** A reusable decision function over a fixed set of documents (parsed and checked once). */
export type PolicyEvaluator = (request: PolicyRequest) => PolicyEvaluation;

/**
 * Parses the documents once and returns the decision function. Throws PolicyDocumentError for
 * what AWS would reject and for anything the evaluator does not implement (a condition key,
 * operator or variable): an unknown key is never evaluated as if it were absent.
 */
export function createEvaluator(documents: readonly unknown[]): PolicyEvaluator {
  const compiled = compileDocuments(documents, (d) => normalizePolicy(d).map(compileStatement));
  return (request) => {
    const now = request.time ?? new Date();
    let allow: NormalizedStatement | undefined;
    for (const c of compiled) {
      if (!statementApplies(c, request, now)) continue;
      const s = c.statement;
      // An explicit Deny wins over any Allow, wherever it appears.
      if (s.effect === "Deny") return { decision: "explicit-deny", statement: s };
      allow ??= s;
    }
    return allow ? { decision: "allow", statement: allow } : { decision: "implicit-deny" };
  };
}

/** Evaluates one request against the documents attached to the principal. */
export function evaluate(documents: readonly unknown[], request: PolicyRequest): PolicyEvaluation {
  return createEvaluator(documents)(request);
}

/** One line for a log: the decision and why, e.g. "explicit deny by statement 1 (Sid NoDebug)". */
export function describeEvaluation(e: PolicyEvaluation): string {
  if (e.decision === "implicit-deny") return "implicit deny: no statement allows it";
  const by = e.statement ? describeStatement(e.statement) : "a statement";
  return e.decision === "allow" ? `allowed by ${by}` : `explicit deny by ${by}`;
}
