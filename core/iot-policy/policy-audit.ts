// Device-Defender-style audit of an IoT policy document at preview time: which statements grant
// everything, which are overly permissive, which are misconfigured, following the audit checks'
// documentation (audit-chk-iot-policy-permissive.html, audit-chk-iot-misconfigured-policies.html).
// Plain functions, no Pulumi.
import {
  type NormalizedStatement,
  describeStatement,
  normalizePolicy,
  resourceMatches,
  statementCoversAction,
} from "./policy";

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
  if (RESERVED_PROBES.some((topic) => patternReaches(pattern, type, topic))) return true;
  // `+` and `#` are literal in a policy, so `topicfilter/$aws/things/+/shadow/update` allows
  // exactly that filter, which MQTT then matches against every thing's shadow: Device Defender
  // flags it (audit-chk-iot-policy-permissive.html, "Subscribe").
  return (
    type === "topicfilter" &&
    RESERVED_FILTER_PROBES.some((f) => patternReaches(pattern, "topicfilter", f))
  );
}

/**
 * Every MQTT filter that matches `topic` and holds a wildcard: each level itself or `+`, and any
 * tail replaced by `#`. Filters whose first level is a wildcard are left out for `$` topics, which
 * MQTT does not match them against ([MQTT-4.7.2-1]).
 */
export function wildcardFiltersFor(topic: string): string[] {
  const levels = topic.split("/");
  const out = new Set<string>();
  const walk = (i: number, acc: string[]) => {
    // A `#` may stand for the rest from any level on, including none ("a/#" matches "a").
    if (i > 0 || !topic.startsWith("$")) out.add([...acc, "#"].join("/"));
    if (i === levels.length) {
      if (acc.some((l) => l === "+")) out.add(acc.join("/"));
      return;
    }
    walk(i + 1, [...acc, levels[i]]);
    if (i > 0 || !topic.startsWith("$")) walk(i + 1, [...acc, "+"]);
  };
  walk(0, []);
  return [...out];
}

/** Wildcard filters that reach another thing's reserved topics (shadows, jobs). */
const RESERVED_FILTER_PROBES = [
  `$aws/things/${PROBE_THING}/shadow/update`,
  `$aws/things/${PROBE_THING}/shadow/name/probe/update`,
  `$aws/things/${PROBE_THING}/jobs/notify`,
].flatMap(wildcardFiltersFor);

/** Wildcard filters that reach every topic of the account (`#`, `+/#`, ...). */
const EVERY_TOPIC_FILTER_PROBES = wildcardFiltersFor(PROBE_NAME).filter((f) =>
  /^(\+\/)*#$|^(\+\/)*\+$/.test(f),
);

/** Whether a topic-filter pattern allows a filter that matches every topic: `#`, `+/#` and the like. */
export function allowsEveryTopicFilter(pattern: string): boolean {
  return EVERY_TOPIC_FILTER_PROBES.some((f) => patternReaches(pattern, "topicfilter", f));
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

/** Whether some Allow statement lets the device subscribe to a filter that reaches every topic, or other things' reserved ones. */
function broadSubscribe(statements: readonly NormalizedStatement[]): string | undefined {
  for (const s of statements) {
    if (s.effect !== "Allow" || !statementCoversAction(s, "iot:Subscribe")) continue;
    for (const p of s.resources ?? []) {
      if (
        coversAnyResource(p, "topicfilter") ||
        allowsEveryTopicFilter(p) ||
        coversOtherThingsReservedTopics(p, "topicfilter")
      ) {
        return `${describeStatement(s)} allows iot:Subscribe on ${p}`;
      }
    }
    if (s.notResources) return `${describeStatement(s)} allows iot:Subscribe with NotResource`;
  }
  return undefined;
}

/**
 * Device Defender's IOT_POLICY_OVERLY_PERMISSIVE_CHECK at preview time: Connect that any client id
 * passes (`client/*`, `client/${iot:ClientId}`) without the IsAttached condition; Publish and
 * Subscribe (and shadow/job actions) on every topic, filter or thing, or on other things' reserved
 * `$aws/things/` topics, MQTT wildcards in a topic filter included (`$aws/things/+/shadow/update`
 * is that very filter); any Allow written with NotAction or NotResource. A broad iot:Receive alone
 * is compliant, as the check's page says, because a device receives only what it may subscribe
 * to: it is reported only alongside a broad Subscribe. Statements that allow everything are left
 * to {@link allowAllFindings}, so one statement is reported once.
 */
export function overlyPermissiveFindings(
  statements: readonly NormalizedStatement[],
): AuditFinding[] {
  const findings: AuditFinding[] = [];
  const subscribeEverywhere = broadSubscribe(statements);
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
        const reaches =
          type === "client"
            ? undefined
            : coversAnyResource(pattern, type) ||
                (type === "topicfilter" && allowsEveryTopicFilter(pattern))
              ? `it reaches every ${type === "topicfilter" ? "topic" : type} of the account${type === "topicfilter" && allowsEveryTopicFilter(pattern) && !coversAnyResource(pattern, type) ? " (+ and # are literal in a policy, so this allows that very MQTT filter)" : ""}; ${FIX_BY_TYPE[type]}`
              : (type === "topic" || type === "topicfilter") &&
                  coversOtherThingsReservedTopics(pattern, type)
                ? `it reaches other things' reserved topics ($aws/things/<other thing>/...${type === "topicfilter" && /[+#]/.test(pattern) ? "; + and # are literal in a policy, so this allows that very MQTT filter, which matches every thing's topics" : ""}); use $aws/things/\${iot:Connection.Thing.ThingName}/... instead`
                : undefined;
        if (type === "client") {
          if (coversAnyResource(pattern, "client") && !hasIsAttachedCondition(s)) {
            add(`any client id can connect: ${FIX_BY_TYPE.client}`, action);
          }
        } else if (reaches !== undefined) {
          if (action === "iot:Receive") {
            // Receiving needs a subscription: broad Receive matters only with a broad Subscribe.
            if (subscribeEverywhere !== undefined) {
              add(
                `${reaches.split(";")[0]}, and ${subscribeEverywhere}, so it receives them`,
                action,
              );
            }
          } else {
            add(reaches, action);
          }
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

/** A topic the pattern names, its wildcards made plain characters ("building/control_room/x"). */
function sampleTopic(pattern: string): string | undefined {
  const m = /:topicfilter\/(.*)$/.exec(pattern);
  const name = m?.[1];
  if (name === undefined || /[+#]/.test(name) || name.includes("${")) return undefined;
  return name.replace(/[*?]/g, "x");
}

/**
 * Whether the document lets the device receive messages on `topic`: an Allow on iot:Receive
 * reaches it and no Deny on iot:Receive does.
 */
function receives(statements: readonly NormalizedStatement[], topic: string): boolean {
  const on = (s: NormalizedStatement) =>
    statementCoversAction(s, "iot:Receive") &&
    (s.resources
      ? s.resources.some((p) => patternReaches(p, "topic", topic))
      : !(s.notResources ?? []).some((p) => patternReaches(p, "topic", topic)));
  return (
    statements.some((s) => s.effect === "Allow" && on(s)) &&
    !statements.some((s) => s.effect === "Deny" && s.conditions.length === 0 && on(s))
  );
}

/**
 * Device Defender's IOT_POLICY_POTENTIAL_MISCONFIGURATION_CHECK, both of its reasons
 * (audit-chk-iot-misconfigured-policies.html): MQTT wildcards `+` or `#` in a Deny statement's
 * topic or topic-filter resource (literal in a policy, so the Deny covers less than it seems);
 * and a Deny on iot:Subscribe that an allowed MQTT wildcard filter walks around (Deny
 * `topicfilter/building/control_room/*`, Allow `topicfilter/building/*`: the device subscribes to
 * `building/#` and receives the denied topics).
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
    if (!statementCoversAction(s, "iot:Subscribe") || s.conditions.length > 0) continue;
    for (const denied of s.resources ?? []) {
      const topic = sampleTopic(denied);
      if (topic === undefined || !receives(statements, topic)) continue;
      const around = wildcardFiltersFor(topic).find(
        (f) =>
          !patternReaches(denied, "topicfilter", f) &&
          statements.some(
            (a) =>
              a.effect === "Allow" &&
              statementCoversAction(a, "iot:Subscribe") &&
              (a.resources ?? []).some((p) => patternReaches(p, "topicfilter", f)),
          ),
      );
      if (around === undefined) continue;
      const prefix = denied.slice(0, denied.indexOf(":topicfilter/"));
      findings.push({
        statement: s,
        message: `${describeStatement(s)} denies iot:Subscribe on ${denied}, but the policy allows subscribing to the MQTT filter ${around}, which receives those topics anyway; deny iot:Receive on ${prefix}:topic/${denied.slice(denied.indexOf(":topicfilter/") + 13)} as well`,
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

/** Another thing's shadow topics: requests, responses, named shadows (device-shadow-mqtt.html). */
const OTHER_SHADOW_TOPICS = [
  "shadow/get",
  "shadow/update",
  "shadow/delete",
  "shadow/get/accepted",
  "shadow/get/rejected",
  "shadow/update/accepted",
  "shadow/update/rejected",
  "shadow/update/delta",
  "shadow/delete/accepted",
  "shadow/delete/rejected",
  "shadow/update/documents",
  "shadow/name/probe/update",
  "shadow/name/probe/update/delta",
].map((rest) => `$aws/things/${PROBE_THING}/${rest}`);

/** The MQTT filters a subscription to another thing's shadow could use, wildcards included. */
const OTHER_SHADOW_FILTERS = [
  ...OTHER_SHADOW_TOPICS,
  ...[
    `$aws/things/${PROBE_THING}/shadow/update/delta`,
    `$aws/things/${PROBE_THING}/shadow/name/probe/update/delta`,
  ].flatMap(wildcardFiltersFor),
];

/** The shadow actions of the HTTP API, on `thing/<name>` and `thing/<name>/<shadowName>` (iot-action-resources.html). */
const SHADOW_ACTIONS = ["iot:GetThingShadow", "iot:UpdateThingShadow", "iot:DeleteThingShadow"];
const OTHER_SHADOW_THINGS = [PROBE_THING, `${PROBE_THING}/probe`];

/**
 * Statements that let a device reach another thing's Device Shadow: iot:Publish on its request
 * topics (change or delete it), iot:Subscribe to its response topics or to a filter that matches
 * them (read it), or the shadow actions on its `thing/` resource. A device's own shadow is
 * `$aws/things/${iot:Connection.Thing.ThingName}/shadow/...`, which no other thing's name matches.
 * Statements that allow every action on every resource are left to {@link allowAllFindings}.
 */
export function otherThingsShadowFindings(
  statements: readonly NormalizedStatement[],
): AuditFinding[] {
  const findings: AuditFinding[] = [];
  for (const s of statements) {
    // A statement that allows everything is iot-policy-no-allow-all's, reported there once.
    if (s.effect !== "Allow" || allowsAllOnAll(s)) continue;
    const where = describeStatement(s);
    const reaches = (type: IotResourceType, names: readonly string[]) => (p: string) =>
      names.some((n) => patternReaches(p, type, n));
    const checks: Array<[string, IotResourceType, readonly string[]]> = [
      ["iot:Publish", "topic", OTHER_SHADOW_TOPICS],
      ["iot:Subscribe", "topicfilter", OTHER_SHADOW_FILTERS],
      ...SHADOW_ACTIONS.map((a): [string, IotResourceType, readonly string[]] => [
        a,
        "thing",
        OTHER_SHADOW_THINGS,
      ]),
    ];
    for (const [action, type, names] of checks) {
      if (!statementCoversAction(s, action)) continue;
      const hit = s.resources
        ? s.resources.find(reaches(type, names))
        : (s.notResources ?? []).some(reaches(type, names))
          ? undefined
          : `NotResource ${(s.notResources ?? []).join(", ")}`;
      if (hit === undefined) continue;
      const fix =
        type === "thing"
          ? "name the device's own thing: thing/${iot:Connection.Thing.ThingName} (and thing/${iot:Connection.Thing.ThingName}/<shadowName>)"
          : `name the device's own shadow: ${type}/$aws/things/\${iot:Connection.Thing.ThingName}/shadow/...`;
      findings.push({
        statement: s,
        message: `${where} allows ${action} on ${hit}, which reaches other things' Device Shadows; ${fix}`,
      });
    }
  }
  return findings;
}
