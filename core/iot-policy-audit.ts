// Device-Defender-style audit of an IoT policy document at preview time: which statements grant
// everything, which are overly permissive, which are misconfigured. Plain functions, no Pulumi.
import {
  type NormalizedStatement,
  describeStatement,
  normalizePolicy,
  resourceMatches,
  statementCoversAction,
} from "./iot-policy";

/** The resource type an IoT data-plane action is authorized on (`arn:...:iot:...:<type>/<name>`). */
export type IotResourceType = "client" | "topic" | "topicfilter" | "thing";

/**
 * The data-plane actions a device certificate uses, with the resource each is checked on
 * (AWS IoT Core developer guide, "AWS IoT Core policy actions").
 */
export const DATA_PLANE_ACTIONS: Readonly<Record<string, IotResourceType>> = {
  "iot:Connect": "client",
  "iot:Publish": "topic",
  "iot:RetainPublish": "topic",
  "iot:Receive": "topic",
  "iot:Subscribe": "topicfilter",
  "iot:GetThingShadow": "thing",
  "iot:UpdateThingShadow": "thing",
  "iot:DeleteThingShadow": "thing",
  "iot:ListNamedShadowsForThing": "thing",
  "iot:DescribeJobExecution": "thing",
  "iot:GetPendingJobExecutions": "thing",
  "iot:StartNextPendingJobExecution": "thing",
  "iot:UpdateJobExecution": "thing",
};

/** The condition key that ties a connection to the thing its certificate is attached to. */
export const IS_ATTACHED_KEY = "iot:Connection.Thing.IsAttached";

// Probe names: no real policy names them, so a pattern matching them matches any name.
const PROBE_NAME = "zq-probe-7f3a/any/level";
const PROBE_THING = "zq-probe-other-thing";
// An action name AWS does not define: only `*`, `iot:*`-like patterns or NotAction cover it.
const PROBE_ACTION = "iot:ZqProbeFutureAction";
const DEFAULT_ARN_PREFIX = ["arn", "aws", "iot", "us-east-1", "123456789012"];

/** Reserved topics of another thing that a device must not reach (`$aws/things/<thing>/...`). */
const RESERVED_PROBES = [
  "shadow/update",
  "shadow/update/accepted",
  "shadow/get",
  "shadow/delete",
  "shadow/name/probe/update",
  "jobs/notify",
  "jobs/get",
  "jobs/probe-job/update",
  "shadow/#",
  "jobs/#",
].map((rest) => `$aws/things/${PROBE_THING}/${rest}`);

/**
 * ARN prefixes (partition, service, region, account) to try a pattern against: the default
 * account, and the pattern's own prefix with each wildcard segment made into a value it matches.
 */
function probePrefixes(pattern: string): string[] {
  const prefixes = [DEFAULT_ARN_PREFIX.join(":")];
  if (pattern.startsWith("arn:")) {
    const parts = pattern.split(":");
    if (parts.length >= 6) {
      const own = parts
        .slice(0, 5)
        .map(
          (p, i) =>
            (/[*?]/.test(p) ? p.replace(/\*/g, "").replace(/\?/g, "x") : p) ||
            DEFAULT_ARN_PREFIX[i],
        );
      prefixes.push(own.join(":"));
    }
  }
  return prefixes;
}

/** Whether a Resource pattern matches `<type>/<name>` in some account the pattern can name. */
function patternReaches(pattern: string, type: IotResourceType, name: string): boolean {
  return probePrefixes(pattern).some((prefix) =>
    resourceMatches(pattern, `${prefix}:${type}/${name}`),
  );
}

/**
 * Whether a Resource pattern reaches every resource of the type: `*`, `arn:...:topic/*` and the
 * like. `${iot:ClientId}` in a Connect resource is whatever client id the caller picks, so for
 * `client` it counts as a wildcard (Device Defender treats `client/${iot:ClientId}` as `client/*`).
 */
export function coversAnyResource(pattern: string, type: IotResourceType): boolean {
  const p = type === "client" ? pattern.split("${iot:ClientId}").join("*") : pattern;
  return patternReaches(p, type, PROBE_NAME);
}

/** Whether a topic or topic-filter pattern reaches another thing's reserved `$aws/things/` topics. */
export function coversOtherThingsReservedTopics(pattern: string, type: "topic" | "topicfilter") {
  return RESERVED_PROBES.some((topic) => patternReaches(pattern, type, topic));
}

function hasIsAttachedCondition(s: NormalizedStatement): boolean {
  return s.conditions.some(
    (c) =>
      c.operator.toLowerCase() === "bool" &&
      c.key.toLowerCase() === IS_ATTACHED_KEY.toLowerCase() &&
      c.values.length > 0 &&
      c.values.every((v) => v.toLowerCase() === "true"),
  );
}

/** The data-plane actions (and every future IoT action) a statement's action part covers. */
function coveredDataPlaneActions(s: NormalizedStatement): string[] {
  return Object.keys(DATA_PLANE_ACTIONS).filter((a) => statementCoversAction(s, a));
}

/**
 * Whether a statement allows every IoT action on every resource, as the seed's tutorial policy
 * (`iot:*` on `*`) does: its actions cover all data-plane actions and any future `iot:` action,
 * and one of its resources reaches every client, topic, filter and thing.
 */
export function allowsAllOnAll(s: NormalizedStatement): boolean {
  if (s.effect !== "Allow") return false;
  const allActions =
    statementCoversAction(s, PROBE_ACTION) &&
    coveredDataPlaneActions(s).length === Object.keys(DATA_PLANE_ACTIONS).length;
  if (!allActions) return false;
  if (s.notResources) {
    // NotResource grants everything it does not name; it covers all when it names no probe.
    return (["client", "topic", "topicfilter", "thing"] as const).every(
      (t) => !s.notResources?.some((p) => patternReaches(p, t, PROBE_NAME)),
    );
  }
  return (s.resources ?? []).some((p) =>
    (["client", "topic", "topicfilter", "thing"] as const).every((t) =>
      patternReaches(p, t, PROBE_NAME),
    ),
  );
}

/** One finding of the audit: the statement, and a message that says what is wrong and what to do. */
export interface AuditFinding {
  readonly statement: NormalizedStatement;
  readonly message: string;
}

/** The headline rule: statements that allow `iot:*` (or `*`) on `*`. */
export function allowAllFindings(statements: readonly NormalizedStatement[]): AuditFinding[] {
  return statements.filter(allowsAllOnAll).map((s) => ({
    statement: s,
    message:
      `${describeStatement(s)} allows every IoT action on every resource (${actionText(s)} on ${resourceText(s)}); ` +
      "replace it with least-privilege statements: iot:Connect on client/${iot:Connection.Thing.ThingName} " +
      "with the iot:Connection.Thing.IsAttached condition, iot:Publish only on the device's own topics",
  }));
}

function actionText(s: NormalizedStatement): string {
  return s.actions ? s.actions.join(", ") : `NotAction ${(s.notActions ?? []).join(", ")}`;
}

function resourceText(s: NormalizedStatement): string {
  return s.resources ? s.resources.join(", ") : `NotResource ${(s.notResources ?? []).join(", ")}`;
}

const FIX_BY_TYPE: Record<IotResourceType, string> = {
  client:
    "allow iot:Connect only on client/${iot:Connection.Thing.ThingName} with the condition Bool iot:Connection.Thing.IsAttached = true",
  topic:
    "name the device's own topics, for example topic/SeattleStoreTemp/${iot:Connection.Thing.ThingName}",
  topicfilter:
    "name only the filters the device needs, for example topicfilter/commands/${iot:Connection.Thing.ThingName}",
  thing: "name the device's own thing: thing/${iot:Connection.Thing.ThingName}",
};

/**
 * Device Defender's IOT_POLICY_OVERLY_PERMISSIVE_CHECK at preview time: Connect that any client id
 * passes (`client/*`, `client/${iot:ClientId}`) without the IsAttached condition; Publish,
 * Subscribe, Receive (and shadow/job actions) on every topic, filter or thing, or on other
 * things' reserved `$aws/things/` topics; any Allow written with NotAction or NotResource.
 * Statements that allow everything are left to {@link allowAllFindings}, so one statement is
 * reported once.
 */
export function overlyPermissiveFindings(
  statements: readonly NormalizedStatement[],
): AuditFinding[] {
  const findings: AuditFinding[] = [];
  for (const s of statements) {
    if (s.effect !== "Allow" || allowsAllOnAll(s)) continue;
    const where = describeStatement(s);
    if (s.notActions) {
      findings.push({
        statement: s,
        message: `${where} is an Allow with NotAction (${s.notActions.join(", ")}), which grants every other action, including ones AWS adds later; list the allowed actions in Action instead`,
      });
    }
    if (s.notResources) {
      findings.push({
        statement: s,
        message: `${where} is an Allow with NotResource (${s.notResources.join(", ")}), which grants every other resource; list the allowed resources in Resource instead`,
      });
    }
    if (!s.resources) continue;
    const actions = coveredDataPlaneActions(s);
    for (const pattern of s.resources) {
      const broad = new Map<string, string[]>();
      const add = (reason: string, action: string) =>
        broad.set(reason, [...(broad.get(reason) ?? []), action]);
      for (const action of actions) {
        const type = DATA_PLANE_ACTIONS[action];
        if (type === "client") {
          if (coversAnyResource(pattern, "client") && !hasIsAttachedCondition(s)) {
            add(`any client id can connect: ${FIX_BY_TYPE.client}`, action);
          }
        } else if (coversAnyResource(pattern, type)) {
          add(
            `it reaches every ${type === "topicfilter" ? "topic filter" : type} of the account; ${FIX_BY_TYPE[type]}`,
            action,
          );
        } else if (
          (type === "topic" || type === "topicfilter") &&
          coversOtherThingsReservedTopics(pattern, type)
        ) {
          add(
            "it reaches other things' reserved topics ($aws/things/<other thing>/...); use $aws/things/${iot:Connection.Thing.ThingName}/... instead",
            action,
          );
        }
      }
      for (const [reason, acts] of broad) {
        findings.push({
          statement: s,
          message: `${where} allows ${acts.join(", ")} on ${pattern}, which is overly permissive: ${reason}`,
        });
      }
    }
  }
  return findings;
}

/**
 * Device Defender's IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK: MQTT wildcards `+` or `#` in a
 * Deny statement's topic or topic-filter resource. They are literal characters in a policy, so
 * the Deny covers less than it seems to.
 */
export function misconfigurationFindings(
  statements: readonly NormalizedStatement[],
): AuditFinding[] {
  const findings: AuditFinding[] = [];
  for (const s of statements) {
    if (s.effect !== "Deny") continue;
    for (const pattern of s.resources ?? []) {
      const m = /:(topic|topicfilter)\/(.*)$/.exec(pattern);
      const name = m?.[2] ?? (pattern.startsWith("arn:") ? undefined : pattern);
      if (name === undefined || !/[+#]/.test(name)) continue;
      const suggestion = pattern.replace(/#/g, "*").replace(/\+/g, "*");
      findings.push({
        statement: s,
        message: `${describeStatement(s)} denies ${actionText(s)} on ${pattern}, but + and # are literal characters in an IoT policy, so the Deny does not cover the topics the MQTT filter would match; use the policy wildcard * instead (${suggestion})`,
      });
    }
  }
  return findings;
}

/** Every finding of the three IoT rules for one document, by rule. */
export function auditIotPolicy(doc: unknown): {
  allowAll: AuditFinding[];
  overlyPermissive: AuditFinding[];
  misconfigured: AuditFinding[];
} {
  const statements = normalizePolicy(doc);
  return {
    allowAll: allowAllFindings(statements),
    overlyPermissive: overlyPermissiveFindings(statements),
    misconfigured: misconfigurationFindings(statements),
  };
}
