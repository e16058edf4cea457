// Evaluates a parsed IoT SQL statement on one message with AWS's semantics: FROM filters the
// topic, WHERE runs before SELECT, and Undefined (a missing field, a bad argument) is left out.
import type { Expr, RuleStatement, SelectItem } from "./ast";

/** A JSON value, or a raw payload (`SELECT *` on a payload that is not JSON). */
export type SqlValue =
  string | number | boolean | null | Buffer | SqlValue[] | { [key: string]: SqlValue };

/** IoT SQL's Undefined, modelled as JavaScript's undefined. */
type Value = SqlValue | undefined;

export interface RuleInput {
  /** The MQTT payload; parsed as JSON when it is JSON, kept as raw bytes otherwise. */
  readonly payload: Buffer | string;
  readonly topic: string;
  readonly clientId: string;
  /** Epoch milliseconds at which the broker received the message (`timestamp()`). */
  readonly timestamp: number;
  readonly newuuid: () => string;
  /** The certificate id for `principal()`; Undefined when not given. */
  readonly principal?: string;
}

export type RuleResult =
  | { readonly matched: false; readonly reason: "topic" | "where" }
  | { readonly matched: true; readonly output: SqlValue };

/** MQTT topic-filter matching (`+` one level, `#` the rest); `$` topics need a literal start. */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  if (topic.startsWith("$") && (f[0] === "+" || f[0] === "#")) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

function parsePayload(payload: Buffer | string): Value {
  const text = typeof payload === "string" ? payload : payload.toString("utf8");
  try {
    return JSON.parse(text) as SqlValue;
  } catch {
    return typeof payload === "string" ? Buffer.from(payload) : payload;
  }
}

function isObject(v: Value): v is { [key: string]: SqlValue } {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function getPath(root: Value, path: readonly (string | number)[]): Value {
  let v = root;
  for (const step of path) {
    if (typeof step === "number") {
      if (!Array.isArray(v) || step >= v.length) return undefined;
      v = v[step];
    } else {
      if (!isObject(v) || !Object.prototype.hasOwnProperty.call(v, step)) return undefined;
      v = v[step];
    }
  }
  return v;
}

/** IoT SQL's conversion to Decimal: numbers, and strings that hold a number; else Undefined. */
function toDecimal(v: Value): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "string" && v.trim() !== "") {
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

/** Booleans, and the strings "true"/"false" in any case, as AND, OR and NOT accept them. */
function toBoolean(v: Value): boolean | undefined {
  if (typeof v === "boolean") return v;
  if (typeof v === "string" && /^(true|false)$/i.test(v)) return v.toLowerCase() === "true";
  return undefined;
}

function equal(a: Value, b: Value): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function arithmetic(op: string, a: number | undefined, b: number | undefined): Value {
  if (a === undefined || b === undefined) return undefined;
  if ((op === "/" || op === "%") && b === 0) return undefined;
  if (op === "+") return a + b;
  if (op === "-") return a - b;
  if (op === "*") return a * b;
  return op === "/" ? a / b : a % b;
}

function call(name: string, args: Value[], input: RuleInput): Value {
  switch (name) {
    case "topic": {
      if (args.length === 0) return input.topic;
      const n = args[0];
      const levels = input.topic.split("/");
      // topic(n) is 1-based; anything but a whole number in range is a bad argument: Undefined.
      if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > levels.length) {
        return undefined;
      }
      return levels[n - 1];
    }
    case "timestamp":
      return input.timestamp;
    case "clientid":
      return input.clientId;
    case "newuuid":
      return input.newuuid();
    case "principal":
      return input.principal;
    case "abs":
      return typeof args[0] === "number" ? Math.abs(args[0]) : undefined;
    case "lower":
      return typeof args[0] === "string" ? args[0].toLowerCase() : undefined;
    case "upper":
      return typeof args[0] === "string" ? args[0].toUpperCase() : undefined;
    case "concat":
      return args.every((a) => typeof a === "string" || typeof a === "number")
        ? args.join("")
        : undefined;
    case "get": {
      const [container, key] = args;
      if (Array.isArray(container) && typeof key === "number") return container[key];
      if (isObject(container) && typeof key === "string") return container[key];
      return undefined;
    }
    default:
      return undefined;
  }
}

function evalExpr(e: Expr, doc: Value, input: RuleInput): Value {
  switch (e.kind) {
    case "literal":
      return e.value;
    case "field":
      return getPath(doc, e.path);
    case "call":
      return call(
        e.name,
        e.args.map((a) => evalExpr(a, doc, input)),
        input,
      );
    case "array": {
      // Undefined elements are dropped, as from objects.
      const items = e.items.map((i) => evalExpr(i, doc, input));
      return items.filter((i): i is SqlValue => i !== undefined);
    }
    case "object": {
      const out: { [key: string]: SqlValue } = {};
      for (const { key, value } of e.entries) {
        const v = evalExpr(value, doc, input);
        if (v !== undefined) out[key] = v;
      }
      return out;
    }
    case "unary": {
      const v = evalExpr(e.operand, doc, input);
      if (e.op === "NOT") {
        const b = toBoolean(v);
        return b === undefined ? undefined : !b;
      }
      const n = toDecimal(v);
      return n === undefined ? undefined : -n;
    }
    case "binary": {
      const l = evalExpr(e.left, doc, input);
      const r = evalExpr(e.right, doc, input);
      switch (e.op) {
        case "AND":
        case "OR": {
          // Both operands must be Boolean (or "true"/"false"); anything else is Undefined.
          const lb = toBoolean(l);
          const rb = toBoolean(r);
          if (lb === undefined || rb === undefined) return undefined;
          return e.op === "AND" ? lb && rb : lb || rb;
        }
        case "=":
        case "<>":
          if (l === undefined || r === undefined) return undefined;
          return e.op === "=" ? equal(l, r) : !equal(l, r);
        case "<":
        case "<=":
        case ">":
        case ">=": {
          // AWS converts both operands to Decimal; what does not convert is Undefined.
          const a = toDecimal(l);
          const b = toDecimal(r);
          if (a === undefined || b === undefined) return undefined;
          if (e.op === "<") return a < b;
          if (e.op === "<=") return a <= b;
          if (e.op === ">") return a > b;
          return a >= b;
        }
        case "+":
          if (typeof l === "string" && typeof r === "string") return l + r;
          return arithmetic("+", toDecimal(l), toDecimal(r));
        case "-":
        case "*":
        case "/":
        case "%":
          return arithmetic(e.op, toDecimal(l), toDecimal(r));
      }
    }
  }
}

/** The key an unaliased item gets: a field's last name, else `_<position>`. */
function defaultName(item: SelectItem & { kind: "expr" }, position: number): readonly string[] {
  if (item.expr.kind === "field") {
    const names = item.expr.path.filter((s): s is string => typeof s === "string");
    const last = names[names.length - 1];
    if (last !== undefined) return [last];
  }
  return [`_${position}`];
}

function setPath(out: { [key: string]: SqlValue }, path: readonly string[], v: SqlValue): void {
  let node = out;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (!isObject(next)) node[key] = {};
    node = node[key] as { [key: string]: SqlValue };
  }
  node[path[path.length - 1]] = v;
}

/**
 * Runs the statement on one message. A topic outside FROM or a WHERE that is not true (false or
 * Undefined) does not match, and then no action runs.
 */
export function evaluateRule(ast: RuleStatement, input: RuleInput): RuleResult {
  if (!topicMatches(ast.from, input.topic)) return { matched: false, reason: "topic" };
  const doc = parsePayload(input.payload);
  if (ast.where !== undefined && evalExpr(ast.where, doc, input) !== true) {
    return { matched: false, reason: "where" };
  }
  if (ast.select.kind === "value") {
    // An Undefined VALUE produces an empty payload object rather than nothing at all.
    return { matched: true, output: evalExpr(ast.select.expr, doc, input) ?? {} };
  }
  const items = ast.select.items;
  if (items.length === 1 && items[0].kind === "star") {
    // `SELECT *` alone passes the payload through, raw bytes included.
    return { matched: true, output: doc ?? {} };
  }
  const out: { [key: string]: SqlValue } = {};
  items.forEach((item, i) => {
    if (item.kind === "star") {
      if (isObject(doc)) Object.assign(out, doc);
      return;
    }
    const v = evalExpr(item.expr, doc, input);
    if (v === undefined) return;
    setPath(out, item.alias ?? defaultName(item, i + 1), v);
  });
  return { matched: true, output: out };
}
