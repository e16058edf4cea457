// The stack's further topic rules (`rules:`): each a name, IoT SQL 2016-03-23, a description, an
// enabled flag, its actions and its error action, checked when the config is loaded. The
// pipeline's telemetry rule (ruleName, ruleSql, ruleDescription, ruleRoleName) stays the first
// rule of the stack and is not listed here. The SQL is parsed by the plan (core/plan.ts), once.
import { invalidConfig as fail } from "../errors";
import { ACTION_DEFINITIONS, ACTION_KINDS, type ActionKind, type ActionSpec } from "./actions";

/**
 * AWS IoT allows at most 10 actions per rule
 * (https://docs.aws.amazon.com/general/latest/gr/iot-core.html, "Maximum number of actions per rule").
 */
export const RULE_ACTIONS_MAX = 10;

/**
 * The most characters of a rule's description. AWS documents no limit for it
 * (https://docs.aws.amazon.com/iot/latest/apireference/API_TopicRulePayload.html); this bound
 * keeps it a line for the console and the local pipeline's log.
 */
export const RULE_DESCRIPTION_MAX = 1000;

/** The most further rules a stack lists: a bound on what one program and one local run hold. */
export const STACK_RULES_MAX = 50;

/** Rule names: letters, digits and underscores, at most 128 (API_CreateTopicRule, ruleName). */
export const RULE_NAME = /^[a-zA-Z0-9_]{1,128}$/;

export interface TopicRuleConfig {
  readonly name: string;
  /** IoT SQL, version 2016-03-23 (the only one the stack writes). */
  readonly sql: string;
  readonly description?: string;
  /** @default true */
  readonly enabled: boolean;
  readonly actions: readonly ActionSpec[];
  /**
   * What runs when an action fails. Undefined only with `errorAction: none`; when the key is
   * absent the rule gets a log group of its own, as the telemetry rule does.
   */
  readonly errorAction?: ActionSpec;
}

const RULE_KEYS = ["name", "sql", "description", "enabled", "actions", "errorAction"];

/** One `{<kind>: {params}}` action object. */
export function parseAction(
  raw: unknown,
  at: string,
  ruleName: string,
  isErrorAction: boolean,
): ActionSpec {
  const shape = `set one action as {<kind>: {parameters}} with <kind> one of ${ACTION_KINDS.join(", ")}`;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) fail(at, raw ?? null, shape);
  const keys = Object.keys(raw);
  if (keys.length !== 1) fail(at, raw, shape);
  const kind = keys[0];
  if (!(ACTION_KINDS as string[]).includes(kind)) {
    fail(
      `${at}.${kind}`,
      "(an action)",
      `${kind} is not an action kind; use one of ${ACTION_KINDS.join(", ")}`,
    );
  }
  const definition = ACTION_DEFINITIONS[kind as ActionKind];
  if (isErrorAction && definition.errorAction === false) {
    fail(`${at}.${kind}`, "(an action)", `${kind} cannot be an error action`);
  }
  const params = (raw as Record<string, unknown>)[kind] ?? {};
  if (typeof params !== "object" || params === null || Array.isArray(params)) {
    fail(`${at}.${kind}`, params, "set the action's parameters as a map");
  }
  const parsed = definition.parse(params as Record<string, unknown>, {
    at: `${at}.${kind}`,
    ruleName,
    isErrorAction,
  });
  return { kind, params: parsed } as ActionSpec;
}

/** `rules`: the stack's further topic rules; `telemetryRule` is the name already taken. */
export function parseTopicRules(value: unknown, telemetryRule: string): TopicRuleConfig[] {
  if (value === undefined || value === null || value === "") return [];
  const shape = "must be a list of {name, sql, description, enabled, actions, errorAction}";
  if (!Array.isArray(value)) fail("rules", value, shape);
  if (value.length > STACK_RULES_MAX) {
    fail("rules", `(${value.length} rules)`, `list at most ${STACK_RULES_MAX} rules`);
  }
  const names = new Set([telemetryRule]);
  return value.map((r: unknown, i: number): TopicRuleConfig => {
    const at = `rules[${i}]`;
    if (typeof r !== "object" || r === null || Array.isArray(r)) fail(at, r ?? null, shape);
    const e = r as Record<string, unknown>;
    for (const k of Object.keys(e)) {
      if (!RULE_KEYS.includes(k))
        fail(`${at}.${k}`, e[k], `is not a rule key; use ${RULE_KEYS.join(", ")}`);
    }
    const name = e.name;
    if (typeof name !== "string" || !RULE_NAME.test(name)) {
      fail(
        `${at}.name`,
        name ?? null,
        "use 1-128 letters, digits and underscores (AWS IoT rule names)",
      );
    }
    if (names.has(name)) {
      fail(
        `${at}.name`,
        name,
        "each rule of the stack needs its own name (ruleName is the telemetry rule's)",
      );
    }
    names.add(name);
    const sql = e.sql;
    if (typeof sql !== "string" || sql.trim() === "")
      fail(
        `${at}.sql`,
        sql ?? null,
        "set the rule's IoT SQL (SELECT ... FROM 'topic/filter' [WHERE ...])",
      );
    const description = e.description;
    if (
      description !== undefined &&
      (typeof description !== "string" ||
        description.length > RULE_DESCRIPTION_MAX ||
        /[\r\n]/.test(description))
    ) {
      fail(
        `${at}.description`,
        description,
        `use one line of at most ${RULE_DESCRIPTION_MAX} characters`,
      );
    }
    const enabled = e.enabled ?? true;
    if (typeof enabled !== "boolean") fail(`${at}.enabled`, enabled, "set true or false");
    const actions = e.actions;
    if (!Array.isArray(actions) || actions.length === 0 || actions.length > RULE_ACTIONS_MAX) {
      fail(
        `${at}.actions`,
        actions ?? null,
        `set a list of 1 to ${RULE_ACTIONS_MAX} actions (AWS IoT's most per rule)`,
      );
    }
    const parsed = actions.map((a: unknown, j: number) =>
      parseAction(a, `${at}.actions[${j}]`, name, false),
    );
    const errorAction =
      e.errorAction === "none"
        ? undefined
        : parseAction(e.errorAction ?? { cloudwatchLogs: {} }, `${at}.errorAction`, name, true);
    return {
      name,
      sql,
      ...(description === undefined || description === ""
        ? {}
        : { description: description as string }),
      enabled,
      actions: parsed,
      ...(errorAction === undefined ? {} : { errorAction }),
    };
  });
}
