// The IAM evaluator for the pipeline's service roles: decides whether a role's identity-based
// policies allow one request (an action on one or more resources, with its context keys) the way
// IAM's policy evaluation logic does for a single account
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
// denied by default, allowed by a matching Allow, and an explicit Deny beats any Allow. It reads
// documents through the one IAM grammar reader and matches with the one wildcard matcher
// (core/iot-policy/policy.ts) and the one set of condition operators (core/iot-policy/conditions.ts), so IoT
// and IAM policies cannot disagree on what `*` or StringLike means. It fails closed: an operator it
// does not know or a policy variable is an error, never a silent match.
import {
  actionCoverage,
  compileDocuments,
  describeStatement,
  normalizePolicyGrammar,
  parseConditionOperator,
  PolicyDocumentError,
  resourceMatcher,
  type NormalizedStatement,
  type ParsedOperator,
} from "../iot-policy/policy";
import { conditionHolds } from "../iot-policy/conditions";

/** One request as IAM sees it. */
export interface IamRequest {
  /** `service:Action`; IAM compares action names case-insensitively. */
  readonly action: string;
  /**
   * The resource ARNs the request is authorized on (most calls have one; Glue's GetTable is
   * authorized on the catalog, the database and the table). Every one must be allowed.
   */
  readonly resources: readonly string[];
  /** Condition keys present in the request, by name (IAM compares key names case-insensitively). */
  readonly context?: Readonly<Record<string, string | readonly string[]>>;
}

export type IamDecision = "allow" | "explicit-deny" | "implicit-deny";

export interface IamEvaluation {
  readonly decision: IamDecision;
  /** The deciding statement: the Deny that matched, or the first Allow that matched. */
  readonly statement?: NormalizedStatement;
  /** For an implicit deny: the first resource no Allow covers. */
  readonly resource?: string;
}

interface CompiledCondition {
  readonly holds: (context: ReadonlyMap<string, readonly string[]>) => boolean;
}

function compileCondition(
  s: NormalizedStatement,
  operator: string,
  key: string,
  values: readonly string[],
): CompiledCondition {
  const where = describeStatement(s);
  const parsed: ParsedOperator | { error: string } = parseConditionOperator(operator);
  if ("error" in parsed) throw new PolicyDocumentError(`${where}: ${parsed.error}`);
  if (values.some((v) => v.includes("${"))) {
    throw new PolicyDocumentError(
      `${where}: condition ${operator} ${key} uses a policy variable, which the IAM evaluator does not implement`,
    );
  }
  const name = key.toLowerCase();
  const policy = values.map((v) => ({ pattern: v, literal: v }));
  return { holds: (ctx) => conditionHolds(parsed, ctx.get(name), policy) };
}

interface CompiledStatement {
  readonly statement: NormalizedStatement;
  readonly coversAction: (action: string) => boolean;
  readonly coversResource: (resource: string) => boolean;
  readonly conditions: readonly CompiledCondition[];
}

function compileStatement(s: NormalizedStatement): CompiledStatement {
  const where = describeStatement(s);
  for (const r of [...(s.resources ?? []), ...(s.notResources ?? [])]) {
    // IAM policy variables (`${aws:username}`) are not implemented; `${*}`-style literals are.
    if (/\$\{(?![*?$]\})/.test(r)) {
      throw new PolicyDocumentError(
        `${where}: resource ${r} uses a policy variable, which the IAM evaluator does not implement`,
      );
    }
  }
  const inList = (patterns: readonly string[]) => {
    const ms = patterns.map(resourceMatcher);
    return (resource: string) => ms.some((m) => m(resource));
  };
  const listed = inList(s.resources ?? s.notResources ?? []);
  const coversResource = s.resources ? listed : (resource: string) => !listed(resource);
  return {
    statement: s,
    coversAction: actionCoverage(s),
    coversResource,
    conditions: s.conditions.map((c) => compileCondition(s, c.operator, c.key, c.values)),
  };
}

/** A reusable decision function over a fixed set of identity-based policy documents. */
export type IamEvaluator = (request: IamRequest) => IamEvaluation;

/**
 * Parses the documents once (JSON text or objects) and returns the decision function. Throws
 * PolicyDocumentError for a malformed document and for what the evaluator does not implement.
 */
export function createIamEvaluator(documents: readonly unknown[]): IamEvaluator {
  const compiled = compileDocuments(documents, (d) =>
    normalizePolicyGrammar(d).map(compileStatement),
  );
  return (request) => {
    if (request.resources.length === 0) {
      throw new Error(`the request for ${request.action} names no resource`);
    }
    const context = new Map<string, readonly string[]>();
    for (const [k, v] of Object.entries(request.context ?? {})) {
      context.set(k.toLowerCase(), typeof v === "string" ? [v] : v);
    }
    const applies = (c: CompiledStatement, resource: string) =>
      c.coversAction(request.action) &&
      c.coversResource(resource) &&
      c.conditions.every((cond) => cond.holds(context));
    // An explicit Deny on any of the request's resources wins over every Allow.
    for (const c of compiled) {
      if (c.statement.effect !== "Deny") continue;
      if (request.resources.some((r) => applies(c, r))) {
        return { decision: "explicit-deny", statement: c.statement };
      }
    }
    let first: NormalizedStatement | undefined;
    for (const resource of request.resources) {
      const allow = compiled.find((c) => c.statement.effect === "Allow" && applies(c, resource));
      if (allow === undefined) return { decision: "implicit-deny", resource };
      first ??= allow.statement;
    }
    return { decision: "allow", statement: first };
  };
}

/** One line for a message: the decision and why. */
export function describeIamEvaluation(e: IamEvaluation): string {
  if (e.decision === "implicit-deny") {
    return `implicit deny: no statement allows it${e.resource === undefined ? "" : ` on ${e.resource}`}`;
  }
  const by = e.statement ? describeStatement(e.statement) : "a statement";
  return e.decision === "allow" ? `allowed by ${by}` : `explicit deny by ${by}`;
}
