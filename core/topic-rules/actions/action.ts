// What one kind of topic rule action is in the stack config, Pulumi-free: its parameters' shape,
// their validation when the config is loaded, and the names AWS gives it.
//
// HOW TO ADD AN ACTION KIND (one module per layer, each registered in its folder's index.ts):
//
//  1. core/topic-rules/actions/<kind>.ts: the parameters interface `<Kind>Params`, the spec type
//     `{ kind: "<kind>"; params: <Kind>Params }` and an `ActionDefinition` whose `parse` validates
//     the YAML object under the action's key (every error through `params.fail`, one line naming
//     the key). Template parameters are checked with `params.template(...)` and kept as text.
//     List the spec in `ActionSpec` and the definition in ACTION_DEFINITIONS (./index.ts).
//  2. components/rule/actions/<kind>.ts: a RuleAction (components/rule/actions/action.ts) whose
//     `bind` creates the role the action assumes with exactly its AWS page's grant, and a
//     ProgramActionFactory registered in PROGRAM_ACTIONS (components/rule/actions/index.ts).
//     The grant's calls are rows of core/iam/run-time-calls.ts (tests/program/iam-roles.test.ts).
//  3. local/rule/actions/<kind>.ts: a LocalActionFactory (local/rule/actions/action.ts) that
//     runs the action offline, registered in LOCAL_ACTIONS (local/rule/actions/index.ts).
import { invalidConfig } from "../../errors";
import { parseTemplate, TemplateError } from "../template";

/** What an action's parser may know: where it stands and which rule it belongs to. */
export interface ActionParseContext {
  /** The config key of the action's object, e.g. `rules[1].actions[0].republish`. */
  readonly at: string;
  readonly ruleName: string;
  /** Whether this is the rule's error action (some parameters differ). */
  readonly isErrorAction: boolean;
}

/** Reads one action's parameters, each error one line naming its key. */
export class ParamReader {
  constructor(
    readonly raw: Readonly<Record<string, unknown>>,
    readonly ctx: ActionParseContext,
    allowed: readonly string[],
  ) {
    for (const k of Object.keys(raw)) {
      if (!allowed.includes(k)) {
        this.fail(
          k,
          raw[k],
          `is not a parameter of this action; use ${allowed.join(", ") || "none"}`,
        );
      }
    }
  }

  fail(key: string, value: unknown, what: string): never {
    return invalidConfig(`${this.ctx.at}.${key}`, value, what);
  }

  /** A required string. */
  string(key: string, pattern?: RegExp, what = "set a non-empty string"): string {
    const v = this.raw[key];
    if (typeof v !== "string" || v === "" || (pattern !== undefined && !pattern.test(v))) {
      this.fail(key, v ?? null, what);
    }
    return v;
  }

  optionalString(key: string, pattern?: RegExp, what?: string): string | undefined {
    return this.raw[key] === undefined ? undefined : this.string(key, pattern, what);
  }

  /** A required substitution template (`${expression}` parsed as IoT SQL), kept as its text. */
  template(key: string, maxLength = 1024): string {
    const v = this.raw[key];
    const text = typeof v === "number" ? String(v) : v;
    if (typeof text !== "string" || text === "" || text.length > maxLength) {
      this.fail(
        key,
        v ?? null,
        `set a string of 1 to ${maxLength} characters (a substitution template may use \${expression})`,
      );
    }
    checkTemplate(text, (why) => this.fail(key, text, why));
    return text;
  }

  optionalTemplate(key: string, maxLength?: number): string | undefined {
    return this.raw[key] === undefined ? undefined : this.template(key, maxLength);
  }

  oneOf<T extends string | number>(key: string, values: readonly T[], fallback: T): T {
    const v = this.raw[key];
    if (v === undefined) return fallback;
    if (!values.includes(v as T)) this.fail(key, v, `use one of ${values.join(", ")}`);
    return v as T;
  }
}

/** Checks a template's syntax; `fail` receives why it is not one. */
export function checkTemplate(text: string, fail: (why: string) => never): void {
  try {
    parseTemplate(text);
  } catch (e) {
    if (!(e instanceof TemplateError)) throw e;
    fail(
      `${e.message} (substitution templates: https://docs.aws.amazon.com/iot/latest/developerguide/iot-substitution-templates.html)`,
    );
  }
}

/**
 * One kind of action: how the stack config's `{<kind>: {...}}` becomes its validated parameters.
 * `K` is the key AWS's API (and Pulumi's `errorAction`) gives the action.
 */
export interface ActionDefinition<K extends string, P> {
  readonly kind: K;
  /** What AWS writes in the error action's `failures[].failedAction` (e.g. `RepublishAction`). */
  readonly failedAction: string;
  /** The action's page in the AWS IoT developer guide. */
  readonly page: string;
  /** Whether the action may be a rule's error action. @default true */
  readonly errorAction?: boolean;
  /** The parameters, validated; throws a ConfigError naming the key. */
  parse(raw: Readonly<Record<string, unknown>>, ctx: ActionParseContext): P;
}
