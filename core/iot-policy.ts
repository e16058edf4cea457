// IoT policy documents: the builders the program deploys, and the one reading of a document
// (AWS's own rules) that the policy pack and the local broker's evaluator share.
import { telemetryTopicFor } from "./topics";

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

/**
 * AWS's least-privilege pattern for a telemetry device: connect only as the thing the
 * certificate is attached to, publish only on that thing's telemetry topic, nothing else.
 */
export function leastPrivilegePolicy(ctx: IotArnContext, topicTemplate: string): PolicyDocument {
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
        Sid: "PublishOwnTelemetry",
        Effect: "Allow",
        Action: "iot:Publish",
        Resource: iotArn(ctx, `topic/${telemetryTopicFor(topicTemplate, THING_NAME_VARIABLE)}`),
      },
    ],
  };
}

/** The document a stack attaches to every certificate, for its policy mode. */
export function policyDocumentFor(
  mode: "tutorial" | "least-privilege",
  ctx: IotArnContext,
  topicTemplate: string,
): PolicyDocument {
  return mode === "tutorial" ? tutorialPolicy() : leastPrivilegePolicy(ctx, topicTemplate);
}

// ---- Reading a document the way AWS does -------------------------------------------------

/** A document that AWS would reject; the message names the statement and the property. */
export class PolicyDocumentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PolicyDocumentError";
  }
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
export function describeStatement(s: NormalizedStatement): string {
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

/**
 * Parses a policy document (object or JSON text) into normalized statements, or throws a
 * PolicyDocumentError naming what AWS would reject.
 */
export function normalizePolicy(doc: unknown): NormalizedStatement[] {
  let value = doc;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch (e) {
      throw new PolicyDocumentError(`policy document is not JSON: ${(e as Error).message}`);
    }
  }
  if (typeof value !== "object" || value === null || !("Statement" in value)) {
    throw new PolicyDocumentError("policy document has no Statement");
  }
  const raw = (value as { Statement: unknown }).Statement;
  const statements = Array.isArray(raw) ? raw : [raw];
  return statements.map((st: unknown, index): NormalizedStatement => {
    const where = `statement ${index}`;
    if (typeof st !== "object" || st === null) {
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
      if (typeof s.Condition !== "object" || s.Condition === null) {
        throw new PolicyDocumentError(`${where}: Condition must be an object`);
      }
      for (const [operator, block] of Object.entries(s.Condition as Record<string, unknown>)) {
        if (typeof block !== "object" || block === null) {
          throw new PolicyDocumentError(`${where}: Condition ${operator} must be an object`);
        }
        for (const [key, v] of Object.entries(block as Record<string, unknown>)) {
          const values = (Array.isArray(v) ? v : [v]).map(String);
          conditions.push({ operator, key, values });
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

/**
 * Compiled patterns by flags and pattern. The local broker evaluates its policy on every publish,
 * and compiling the same few patterns each time was a sixth of its CPU. Bounded, because a
 * pattern holding a policy variable becomes one pattern per client once substituted: past the
 * bound the oldest entry goes, which costs a recompile, never a wrong answer.
 */
const compiled = new Map<string, RegExp>();
const COMPILED_MAX = 10_000;

/** IAM-style wildcard match: `*` any run of characters (across `/`), `?` exactly one. */
function wildcardRegExp(pattern: string, flags: string): RegExp {
  const key = `${flags}:${pattern}`;
  let re = compiled.get(key);
  if (re) return re;
  const body = pattern
    .split("")
    .map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\]/g, "\\$&")))
    .join("");
  re = new RegExp(`^${body}$`, flags);
  if (compiled.size >= COMPILED_MAX) compiled.delete(compiled.keys().next().value as string);
  compiled.set(key, re);
  return re;
}

const hasWildcard = (pattern: string): boolean => pattern.includes("*") || pattern.includes("?");

/** Whether an action pattern (`iot:*`, `iot:Publish*`, `*`) covers an action; case-insensitive. */
export function actionMatches(pattern: string, action: string): boolean {
  return wildcardRegExp(pattern, "i").test(action);
}

/** {@link actionMatches} for one pattern, compiled once: for a document's fixed actions. */
export function actionMatcher(pattern: string): (action: string) => boolean {
  const re = wildcardRegExp(pattern, "i");
  return (action) => re.test(action);
}

/**
 * Whether a resource pattern covers a resource ARN; case-sensitive. MQTT's `+` and `#` are
 * plain characters here, as they are in AWS IoT policies.
 */
export function resourceMatches(pattern: string, resource: string): boolean {
  // Without a wildcard the anchored, escaped, case-sensitive expression is plain equality.
  if (!hasWildcard(pattern)) return pattern === resource;
  return wildcardRegExp(pattern, "").test(resource);
}

/** {@link resourceMatches} for one pattern, compiled once: for a document's fixed resources. */
export function resourceMatcher(pattern: string): (resource: string) => boolean {
  if (!hasWildcard(pattern)) return (resource) => pattern === resource;
  const re = wildcardRegExp(pattern, "");
  return (resource) => re.test(resource);
}

/** Whether a statement's action part (Action or NotAction) applies to the action. */
export function statementCoversAction(s: NormalizedStatement, action: string): boolean {
  return actionCoverage(s)(action);
}

/** {@link statementCoversAction} for one statement, its patterns compiled once. */
export function actionCoverage(s: NormalizedStatement): (action: string) => boolean {
  if (s.actions) {
    const any = s.actions.map(actionMatcher);
    return (action) => any.some((m) => m(action));
  }
  const none = (s.notActions ?? []).map(actionMatcher);
  return (action) => !none.some((m) => m(action));
}
