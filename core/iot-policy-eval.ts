// The one IoT policy evaluator: decides an action on a resource for a connected client the way
// AWS IoT Core does (IAM rules plus IoT policy variables), for the local broker and the policy pack.
import {
  actionCoverage,
  describeStatement,
  normalizePolicy,
  PolicyDocumentError,
  resourceMatcher,
  resourceMatches,
  type NormalizedCondition,
  type NormalizedStatement,
} from "./iot-policy";

/** What AWS knows about the connection when it evaluates a policy. */
export interface PolicyContext {
  readonly clientId: string;
  /**
   * The thing the certificate is attached to, when the client id equals that thing's name
   * (AWS fills the `iot:Connection.Thing.*` variables only then).
   */
  readonly thingName?: string;
  /** Whether the certificate is attached to `thingName` in the registry. */
  readonly isAttached: boolean;
  readonly thingTypeName?: string;
  /** The thing's attributes (a thing inherits nothing here: pass what the registry holds). */
  readonly attributes: Readonly<Record<string, string>>;
}

export interface PolicyRequest {
  /** For example `iot:Publish`. */
  readonly action: string;
  /** The full ARN, for example `arn:aws:iot:us-east-1:000000000000:topic/a/b`. */
  readonly resource: string;
  readonly context: PolicyContext;
}

export type PolicyDecision = "allow" | "explicit-deny" | "implicit-deny";

export interface PolicyEvaluation {
  readonly decision: PolicyDecision;
  /** The deciding statement: the Deny that matched, or the first Allow that matched. */
  readonly statement?: NormalizedStatement;
}

/** Operators we evaluate; AWS rejects a policy with an unknown one, and so do we (at load). */
const OPERATORS = new Set([
  "StringEquals",
  "StringNotEquals",
  "StringEqualsIgnoreCase",
  "StringNotEqualsIgnoreCase",
  "StringLike",
  "StringNotLike",
  "Bool",
  "Null",
]);
const NEGATED = new Set(["StringNotEquals", "StringNotEqualsIgnoreCase", "StringNotLike"]);

const VARIABLE = /\$\{([^}]*)\}/g;
const ATTRIBUTE = /^iot:Connection\.Thing\.Attributes\[([^\]]+)\]$/;

/**
 * The value of a policy variable or condition key for this connection, or undefined when AWS
 * would leave it unresolved (for example a thing variable while the client id is not an attached
 * thing's name).
 */
export function contextValue(name: string, ctx: PolicyContext): string | undefined {
  if (name === "iot:ClientId") return ctx.clientId;
  // Thing variables exist only for a client whose id is the name of the thing it is attached to.
  const thing = ctx.thingName !== undefined && ctx.thingName === ctx.clientId;
  if (name === "iot:Connection.Thing.IsAttached") {
    return String(thing && ctx.isAttached);
  }
  if (!thing || !ctx.isAttached) return undefined;
  if (name === "iot:Connection.Thing.ThingName") return ctx.thingName;
  if (name === "iot:Connection.Thing.ThingTypeName") return ctx.thingTypeName;
  const attr = ATTRIBUTE.exec(name);
  if (attr) return ctx.attributes[attr[1]];
  return undefined;
}

/**
 * Substitutes `${...}` variables. Undefined when any is unresolved: AWS then treats the
 * resource or condition value as matching nothing. A value holding `*` or `?` is refused as
 * unresolved too, so that a client id can never smuggle a wildcard into a resource pattern.
 */
export function substitute(text: string, ctx: PolicyContext): string | undefined {
  // Most patterns hold no variable; skip the replace (it ran on every publish).
  if (!text.includes("${")) return text;
  let unresolved = false;
  const out = text.replace(VARIABLE, (_m, name: string) => {
    const v = contextValue(name, ctx);
    if (v === undefined || /[*?]/.test(v)) {
      unresolved = true;
      return "";
    }
    return v;
  });
  return unresolved ? undefined : out;
}

function conditionHolds(c: NormalizedCondition, ctx: PolicyContext): boolean {
  const ifExists = c.operator.endsWith("IfExists");
  const operator = ifExists ? c.operator.slice(0, -"IfExists".length) : c.operator;
  const actual = contextValue(c.key, ctx);
  if (operator === "Null") {
    // Null: "true" means the key must be absent.
    return c.values.some((v) => (v === "true") === (actual === undefined));
  }
  if (actual === undefined) return ifExists || NEGATED.has(operator);
  const values = c.values
    .map((v) => substitute(v, ctx))
    .filter((v): v is string => v !== undefined);
  switch (operator) {
    case "StringEquals":
      return values.includes(actual);
    case "StringNotEquals":
      return !values.includes(actual);
    case "StringEqualsIgnoreCase":
      return values.some((v) => v.toLowerCase() === actual.toLowerCase());
    case "StringNotEqualsIgnoreCase":
      return !values.some((v) => v.toLowerCase() === actual.toLowerCase());
    case "StringLike":
      return values.some((v) => resourceMatches(v, actual));
    case "StringNotLike":
      return !values.some((v) => resourceMatches(v, actual));
    case "Bool":
      return values.some((v) => v.toLowerCase() === actual.toLowerCase());
    default:
      return false;
  }
}

/** A Resource or NotResource entry, compiled once; one with variables is substituted per request. */
interface ResourcePattern {
  readonly matches: (resource: string, ctx: PolicyContext) => boolean;
  /** Whether its variables resolve for this connection (always, without variables). */
  readonly resolves: (ctx: PolicyContext) => boolean;
}

function compileResource(p: string): ResourcePattern {
  if (!p.includes("${")) {
    return { matches: resourceMatcher(p), resolves: () => true };
  }
  // The substitution depends only on the connection's context, which the broker keeps per client
  // (a PolicyContext is read-only): remember it per context object, not once per publish. null
  // stands for unresolved, so that a missing entry stays undefined.
  const byContext = new WeakMap<PolicyContext, string | null>();
  const resolved = (ctx: PolicyContext): string | undefined => {
    let pattern = byContext.get(ctx);
    if (pattern === undefined) {
      pattern = substitute(p, ctx) ?? null;
      byContext.set(ctx, pattern);
    }
    return pattern ?? undefined;
  };
  return {
    matches: (resource, ctx) => {
      const pattern = resolved(ctx);
      return pattern !== undefined && resourceMatches(pattern, resource);
    },
    resolves: (ctx) => resolved(ctx) !== undefined,
  };
}

/** A statement with its patterns compiled: the evaluator runs on every publish at the broker. */
interface CompiledStatement {
  readonly statement: NormalizedStatement;
  readonly coversAction: (action: string) => boolean;
  readonly resources?: readonly ResourcePattern[];
  readonly notResources: readonly ResourcePattern[];
}

function compileStatement(s: NormalizedStatement): CompiledStatement {
  return {
    statement: s,
    coversAction: actionCoverage(s),
    resources: s.resources?.map(compileResource),
    notResources: (s.notResources ?? []).map(compileResource),
  };
}

function statementApplies(c: CompiledStatement, req: PolicyRequest): boolean {
  if (!c.coversAction(req.action)) return false;
  const ctx = req.context;
  if (c.resources) {
    if (!c.resources.some((p) => p.matches(req.resource, ctx))) return false;
  } else {
    // An unresolved NotResource entry makes the statement not apply at all rather than widen it.
    if (c.notResources.some((p) => !p.resolves(ctx))) return false;
    if (c.notResources.some((p) => p.matches(req.resource, ctx))) return false;
  }
  return c.statement.conditions.every((cond) => conditionHolds(cond, ctx));
}

/** A reusable decision function over a fixed set of documents (parsed and checked once). */
export type PolicyEvaluator = (request: PolicyRequest) => PolicyEvaluation;

/**
 * Parses the documents once and returns the decision function. Throws PolicyDocumentError for
 * what AWS would reject (including a condition operator this evaluator does not know).
 */
export function createEvaluator(documents: readonly unknown[]): PolicyEvaluator {
  const statements = documents.flatMap((d) => normalizePolicy(d));
  for (const s of statements) {
    for (const c of s.conditions) {
      const op = c.operator.endsWith("IfExists") ? c.operator.slice(0, -8) : c.operator;
      if (!OPERATORS.has(op)) {
        throw new PolicyDocumentError(
          `${describeStatement(s)}: condition operator ${c.operator} is not supported; use one of ${[...OPERATORS].join(", ")} (optionally with IfExists)`,
        );
      }
    }
  }
  const compiled = statements.map(compileStatement);
  return (request) => {
    let allow: NormalizedStatement | undefined;
    for (const c of compiled) {
      if (!statementApplies(c, request)) continue;
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
