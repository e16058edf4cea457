// Substitution templates: `${expression}` inside an action's parameter, where the expression is
// any IoT SQL expression evaluated "separately from the SELECT statement", so that it sees the
// original payload, functions and operators but no AS alias
// (https://docs.aws.amazon.com/iot/latest/developerguide/iot-substitution-templates.html).
// Parsed with the rule engine's own parser (core/rule-sql) when the config is loaded, and
// evaluated with its evaluator on each message.
import {
  compileExpression,
  parseRuleSql,
  RuleSqlError,
  type Expr,
  type RuleInput,
  type Value,
} from "../rule-sql";
import { toStr } from "../rule-sql/values";

/** The most `${...}` in one parameter: a bound on the work per message, not an AWS limit. */
export const TEMPLATE_MAX_EXPRESSIONS = 16;

/** A template that does not parse: the reason, and where in the parameter. */
export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TemplateError";
  }
}

/** One piece of a template: literal text, or an expression with its source text. */
export type TemplatePart =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "expr"; readonly source: string; readonly expr: Expr };

export interface Template {
  readonly text: string;
  readonly parts: readonly TemplatePart[];
  /** Whether any `${...}` is in it (else it is the same text for every message). */
  readonly dynamic: boolean;
}

/** Where the `}` closing the `${` at `start` is: braces nest, quoted strings are skipped. */
function closingBrace(text: string, start: number): number {
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (c === "'" || c === '"' || c === "`") {
      const end = text.indexOf(c, i + 1);
      if (end < 0) return -1;
      i = end;
    } else if (c === "{") {
      depth++;
    } else if (c === "}") {
      if (depth === 0) return i;
      depth--;
    }
  }
  return -1;
}

/**
 * Parses a parameter's text into its literal pieces and its `${expression}`s, each parsed as IoT
 * SQL. Throws a TemplateError naming the expression and why, in one line.
 */
export function parseTemplate(text: string): Template {
  const parts: TemplatePart[] = [];
  let at = 0;
  let literal = "";
  let count = 0;
  while (at < text.length) {
    const open = text.indexOf("${", at);
    if (open < 0) {
      literal += text.slice(at);
      break;
    }
    literal += text.slice(at, open);
    const close = closingBrace(text, open + 2);
    if (close < 0) {
      throw new TemplateError(`\${ at character ${open + 1} has no closing }`);
    }
    const source = text.slice(open + 2, close);
    if (source.trim() === "") throw new TemplateError(`\${} at character ${open + 1} is empty`);
    if (++count > TEMPLATE_MAX_EXPRESSIONS) {
      throw new TemplateError(`has more than ${TEMPLATE_MAX_EXPRESSIONS} \${...} expressions`);
    }
    let expr: Expr;
    try {
      const statement = parseRuleSql(`SELECT VALUE ${source}`);
      if (statement.select.kind !== "value") throw new RuleSqlError("not one expression", 1, 1);
      expr = statement.select.expr;
    } catch (e) {
      if (!(e instanceof RuleSqlError)) throw e;
      throw new TemplateError(`\${${source}} is not an IoT SQL expression: ${e.reason}`);
    }
    if (literal !== "") parts.push({ kind: "text", text: literal });
    literal = "";
    parts.push({ kind: "expr", source, expr });
    at = close + 1;
  }
  if (literal !== "") parts.push({ kind: "text", text: literal });
  return { text, parts, dynamic: count > 0 };
}

/**
 * A value as it stands in the text: strings as they are, numbers and Booleans as IoT SQL writes
 * them, objects and arrays as JSON. Undefined (a missing key) and binary values become empty
 * text: the page does not say; this is the local choice, stated in docs/iot-sql.md.
 */
export function templateText(value: Value): string {
  return toStr(value) ?? "";
}

/** A parsed template, compiled once: `render` fills it in for one message. */
export interface CompiledTemplate {
  readonly text: string;
  readonly dynamic: boolean;
  render(input: RuleInput): string;
}

export function compileTemplate(template: Template | string): CompiledTemplate {
  const t = typeof template === "string" ? parseTemplate(template) : template;
  if (!t.dynamic) return { text: t.text, dynamic: false, render: () => t.text };
  const pieces = t.parts.map((p) => {
    if (p.kind === "text") return () => p.text;
    const value = compileExpression(p.expr);
    return (input: RuleInput) => templateText(value(input));
  });
  return {
    text: t.text,
    dynamic: true,
    render: (input) => pieces.map((piece) => piece(input)).join(""),
  };
}
