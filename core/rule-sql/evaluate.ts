// Evaluates a parsed IoT SQL statement on one message with AWS's semantics: FROM filters the
// topic (Basic Ingest topics go to the rule they name), WHERE runs before SELECT, Undefined is
// left out. The statement is compiled once into closures, since it runs on every publish.
import { compileTopicFilter } from "../topics";
import type { BinaryOp, Expr, PathStep, RuleStatement, SelectList, SubQuery } from "./ast";
import { castTo, lookupFunction, type CallContext } from "./functions";
import {
  RuleEvaluationError,
  arithmetic,
  compareNumbers,
  getKey,
  isObject,
  normalize,
  parsePayload,
  readNumberLiteral,
  serialize,
  setKey,
  sqlEquals,
  toBool,
  toNumber,
  toStr,
  type SqlObject,
  type SqlValue,
  type Value,
} from "./values";

/** One message for a rule: its payload, and what the functions may know of it (CallContext). */
export interface RuleInput extends CallContext {
  /** The MQTT payload; JSON when it is UTF-8 JSON text, raw bytes otherwise. */
  readonly payload: Buffer | string;
  /** The rule's name: a Basic Ingest topic `$aws/rules/<name>/...` reaches only that rule. */
  readonly ruleName?: string;
}

export type RuleResult =
  | { readonly matched: false; readonly reason: "topic" | "where" }
  | {
      readonly matched: true;
      /** The SELECT's value (Undefined for a `SELECT VALUE` of Undefined). */
      readonly output: Value;
      /**
       * What the rule's actions receive: the payload's own bytes for `SELECT *` alone (JSON or
       * not), else the output as JSON (empty for Undefined, which serialises as an empty string).
       */
      readonly record: Buffer;
    };

export { RuleEvaluationError };

const BASIC_INGEST = "$aws/rules/";

/** What every compiled expression sees: the message, and the payload for `*`. */
interface Context extends CallContext {
  readonly payload: SqlValue;
  readonly payloadBytes: Buffer;
}

type Fn = (doc: Value, ctx: Context) => Value;

function getPath(root: Value, path: readonly PathStep[]): Value {
  let v = root;
  for (const step of path) {
    if (typeof step === "number") {
      if (!Array.isArray(v) || step >= v.length) return undefined;
      v = v[step];
    } else {
      if (!isObject(v)) return undefined;
      v = getKey(v, step);
    }
  }
  return v;
}

function starValue(ctx: Context): SqlValue {
  if (Buffer.isBuffer(ctx.payload)) {
    throw new RuleEvaluationError(
      "the statement uses * as a value, but the payload is not JSON; encode(*, 'base64') is the documented way to carry a binary payload",
    );
  }
  return ctx.payload;
}

function compileExpr(e: Expr): Fn {
  switch (e.kind) {
    case "number": {
      const v = readNumberLiteral(e.text);
      return () => v;
    }
    case "literal": {
      const v = e.value;
      return () => v;
    }
    case "field": {
      const path = e.path;
      if (path.length === 1 && typeof path[0] === "string") {
        const key = path[0];
        return (doc) => (isObject(doc) ? getKey(doc, key) : undefined);
      }
      return (doc) => getPath(doc, path);
    }
    case "access": {
      const target = compileExpr(e.target);
      const path = e.path;
      return (doc, ctx) => getPath(target(doc, ctx), path);
    }
    case "star":
      return (_doc, ctx) => starValue(ctx);
    case "cast": {
      const value = compileExpr(e.value);
      const type = e.type;
      return (doc, ctx) => castTo(value(doc, ctx), type);
    }
    case "call":
      return compileCall(e);
    case "unary": {
      const operand = compileExpr(e.operand);
      if (e.op === "NOT") {
        return (doc, ctx) => {
          const b = toBool(operand(doc, ctx));
          return b === undefined ? undefined : !b;
        };
      }
      return (doc, ctx) => {
        const n = toNumber(operand(doc, ctx));
        if (n === undefined) return undefined;
        return typeof n === "number" ? (n === 0 ? 0 : -n) : normalize(n.neg());
      };
    }
    case "binary":
      return compileBinary(e.op, compileExpr(e.left), compileExpr(e.right));
    case "array": {
      const items = e.items.map(compileExpr);
      return (doc, ctx) => {
        const out: SqlValue[] = [];
        for (const item of items) {
          const v = item(doc, ctx);
          if (v !== undefined) out.push(v);
        }
        return out;
      };
    }
    case "object": {
      const entries = e.entries.map(({ key, value }) => ({ key, value: compileExpr(value) }));
      return (doc, ctx) => {
        const out: SqlObject = {};
        for (const { key, value } of entries) {
          const v = value(doc, ctx);
          if (v !== undefined) setKey(out, key, v);
        }
        return out;
      };
    }
    case "case": {
      const whens = e.whens.map((w) => ({ when: compileExpr(w.when), then: compileExpr(w.then) }));
      const otherwise = e.otherwise === undefined ? () => undefined : compileExpr(e.otherwise);
      if (e.subject === undefined) {
        // The searched form: the first WHEN whose condition is true.
        return (doc, ctx) => {
          for (const w of whens) if (toBool(w.when(doc, ctx)) === true) return w.then(doc, ctx);
          return otherwise(doc, ctx);
        };
      }
      const subject = compileExpr(e.subject);
      return (doc, ctx) => {
        const v = subject(doc, ctx);
        // "If v is Undefined, the result of the case statement is Undefined."
        if (v === undefined) return undefined;
        for (const w of whens) {
          const t = w.when(doc, ctx);
          if (t !== undefined && sqlEquals(v, t)) return w.then(doc, ctx);
        }
        return otherwise(doc, ctx);
      };
    }
    case "subquery":
      return compileSubquery(e.query);
  }
}

function compileCall(e: Expr & { kind: "call" }): Fn {
  const spec = lookupFunction(e.name);
  if (spec === undefined) throw new Error(`unknown function ${e.name} (the parser checks names)`);
  const first = e.args[0];
  if (e.name.toLowerCase() === "encode" && first?.kind === "star") {
    // encode(*, 'base64') encodes the payload's bytes, whether or not they are JSON.
    const scheme = compileExpr(e.args[1]);
    return (doc, ctx) =>
      scheme(doc, ctx) === "base64" ? ctx.payloadBytes.toString("base64") : undefined;
  }
  const args = e.args.map(compileExpr);
  const impl = spec.impl;
  if (args.length === 0) return (_doc, ctx) => impl([], ctx);
  if (args.length === 1) {
    const [a] = args;
    return (doc, ctx) => impl([a(doc, ctx)], ctx);
  }
  return (doc, ctx) =>
    impl(
      args.map((a) => a(doc, ctx)),
      ctx,
    );
}

function compileBinary(op: BinaryOp, l: Fn, r: Fn): Fn {
  switch (op) {
    case "AND":
    case "OR":
      // Both operands are evaluated: a non-Boolean on either side makes the result Undefined.
      return (doc, ctx) => {
        const a = toBool(l(doc, ctx));
        const b = toBool(r(doc, ctx));
        if (a === undefined || b === undefined) return undefined;
        return op === "AND" ? a && b : a || b;
      };
    case "=":
    case "<>":
      return (doc, ctx) => {
        const a = l(doc, ctx);
        const b = r(doc, ctx);
        if (a === undefined || b === undefined) return undefined;
        const eq = sqlEquals(a, b);
        return op === "=" ? eq : !eq;
      };
    case "<":
    case "<=":
    case ">":
    case ">=":
      return (doc, ctx) => {
        const a = toNumber(l(doc, ctx));
        const b = toNumber(r(doc, ctx));
        if (a === undefined || b === undefined) return undefined;
        const c = compareNumbers(a, b);
        return op === "<" ? c < 0 : op === "<=" ? c <= 0 : op === ">" ? c > 0 : c >= 0;
      };
    case "IN":
      return (doc, ctx) => {
        const a = l(doc, ctx);
        const b = r(doc, ctx);
        if (a === undefined || !Array.isArray(b)) return undefined;
        return b.some((item) => sqlEquals(a, item));
      };
    case "+":
      return (doc, ctx) => {
        const a = l(doc, ctx);
        const b = r(doc, ctx);
        if (typeof a === "string" || typeof b === "string") {
          // Either side a String: the other converts to a String and the two concatenate.
          const sa = toStr(a);
          const sb = toStr(b);
          return sa === undefined || sb === undefined ? undefined : sa + sb;
        }
        if (
          typeof a === "number" &&
          typeof b === "number" &&
          Number.isInteger(a) &&
          Number.isInteger(b)
        ) {
          const s = a + b;
          if (Number.isSafeInteger(s)) return s;
        }
        const x = toNumber(a);
        const y = toNumber(b);
        return x === undefined || y === undefined ? undefined : arithmetic("+", x, y);
      };
    default:
      return (doc, ctx) => {
        const x = toNumber(l(doc, ctx));
        const y = toNumber(r(doc, ctx));
        return x === undefined || y === undefined ? undefined : arithmetic(op, x, y);
      };
  }
}

/** Builds the SELECT's value for one document (the message, or an element in a nested query). */
type SelectFn = (doc: Value, ctx: Context, top: boolean) => Value;

/** The key an unaliased item gets: a field's last name, else `_<position>` (1-based). */
function defaultName(expr: Expr, position: number): readonly string[] {
  if (expr.kind === "field" || expr.kind === "access") {
    const names = expr.path.filter((s): s is string => typeof s === "string");
    const last = names[names.length - 1];
    if (last !== undefined) return [last];
  }
  return [`_${position}`];
}

/**
 * Sets `a.b.c` in the output. An object on the way is copied, never written into: it may be one
 * the statement read (`SELECT * AS p, 1 AS p.x`, `SELECT a, 2 AS a.y`), and the payload's parsed
 * value is shared by every rule of the message (parsed once) and by the statement's own items.
 */
function setPath(out: SqlObject, path: readonly string[], v: SqlValue): void {
  let node = out;
  for (let i = 0; i < path.length - 1; i++) {
    const next = getKey(node, path[i]);
    const child: SqlObject = {};
    if (isObject(next)) for (const k of Object.keys(next)) setKey(child, k, next[k]);
    setKey(node, path[i], child);
    node = child;
  }
  setKey(node, path[path.length - 1], v);
}

function describePayload(v: SqlValue): string {
  if (Buffer.isBuffer(v)) return `a payload that is not JSON (${v.length} bytes)`;
  return `a JSON ${Array.isArray(v) ? "array" : v === null ? "null" : typeof v === "object" ? "value" : typeof v}`;
}

/** `offset` is the position of the first item in the statement (for `_<position>` names). */
function compileSelect(select: SelectList, offset = 0): SelectFn {
  if (select.kind === "value") {
    const expr = compileExpr(select.expr);
    return (doc, ctx) => expr(doc, ctx);
  }
  const items = select.items.map((item, i) => {
    if (item.kind === "star") return { star: true as const, alias: item.alias };
    return {
      star: false as const,
      fn: compileExpr(item.expr),
      alias: item.alias ?? defaultName(item.expr, offset + i + 1),
    };
  });
  return (doc, ctx, top) => {
    const out: SqlObject = {};
    for (const item of items) {
      if (item.star) {
        // At the top `*` is the payload; in a nested query it is the element being queried.
        const whole = top ? ctx.payload : doc;
        if (item.alias !== undefined) {
          if (Buffer.isBuffer(whole)) starValue(ctx);
          if (whole !== undefined) setPath(out, item.alias, whole as SqlValue);
        } else if (isObject(whole)) {
          for (const k of Object.keys(whole)) setKey(out, k, whole[k]);
        } else if (!(Buffer.isBuffer(whole) && whole.length === 0) && whole !== undefined) {
          // The binary-payloads page: data can be added to an empty or a JSON payload; where
          // the added data would go for any other payload it does not say, so nothing is guessed.
          throw new RuleEvaluationError(
            `SELECT * with other items needs a JSON object payload to add them to, and this is ${describePayload(whole as SqlValue)}; select encode(*, 'base64') AS data to carry it`,
          );
        }
        continue;
      }
      const v = item.fn(doc, ctx);
      if (v !== undefined) setPath(out, item.alias, v);
    }
    return out;
  };
}

function compileSubquery(q: SubQuery): Fn {
  const from = q.from;
  const select = compileSelect(q.select);
  const where = q.where === undefined ? undefined : compileExpr(q.where);
  const one = (el: Value, ctx: Context): Value => {
    if (where !== undefined && toBool(where(el, ctx)) !== true) return undefined;
    return select(el, ctx, false);
  };
  return (doc, ctx) => {
    const source = getPath(doc, from);
    if (Array.isArray(source)) {
      const out: SqlValue[] = [];
      for (const el of source) {
        const v = one(el, ctx);
        if (v !== undefined) out.push(v);
      }
      return out;
    }
    // FROM naming an object queries that one object (the transform page's example 3).
    return isObject(source) ? one(source, ctx) : undefined;
  };
}

/** A statement ready to run on messages. */
export interface CompiledRule {
  readonly statement: RuleStatement;
  evaluate(input: RuleInput): RuleResult;
}

const EMPTY = Buffer.alloc(0);

/** The payload object and the added items, merged as `SELECT *, ...` outputs them. */
function merge(payload: SqlObject, extras: SqlObject): SqlObject {
  const out: SqlObject = {};
  for (const k of Object.keys(payload)) setKey(out, k, payload[k]);
  for (const k of Object.keys(extras)) setKey(out, k, extras[k]);
  return out;
}

/** Compiles a parsed statement; `evaluate` then runs it on each message. */
export function compileRule(statement: RuleStatement): CompiledRule {
  const where = statement.where === undefined ? undefined : compileExpr(statement.where);
  const select = compileSelect(statement.select);
  const items = statement.select.kind === "items" ? statement.select.items : [];
  const passthrough =
    items.length === 1 && items[0].kind === "star" && items[0].alias === undefined;
  // `SELECT *, a, b` (the seed's rule): the added items can be spliced into the payload's own
  // JSON text, which keeps the payload's bytes as sent and saves serialising them again.
  const rest = items.slice(1);
  const splice =
    items.length > 1 &&
    items[0].kind === "star" &&
    items[0].alias === undefined &&
    rest.every((i) => i.kind === "expr")
      ? compileSelect({ kind: "items", items: rest }, 1)
      : undefined;
  const from = statement.from;
  const matchesFrom = from === undefined ? () => false : compileTopicFilter(from);
  return {
    statement,
    evaluate(input) {
      let topic = input.topic;
      if (topic.startsWith(BASIC_INGEST)) {
        // Basic Ingest: `$aws/rules/<rule>/<topic>` invokes that rule, whose topic() and FROM
        // see the topic without the prefix.
        const rest = topic.slice(BASIC_INGEST.length);
        const slash = rest.indexOf("/");
        const name = slash < 0 ? rest : rest.slice(0, slash);
        if (input.ruleName === undefined || name !== input.ruleName) {
          return { matched: false, reason: "topic" };
        }
        topic = slash < 0 ? "" : rest.slice(slash + 1);
      } else if (!matchesFrom(topic)) {
        return { matched: false, reason: "topic" };
      }
      const ctx = contextOf(input, topic);
      const payload = ctx.payload;
      const bytes = ctx.payloadBytes;
      try {
        if (where !== undefined && toBool(where(payload, ctx)) !== true) {
          return { matched: false, reason: "where" };
        }
        if (passthrough) return { matched: true, output: payload, record: bytes };
        if (splice !== undefined && isObject(payload)) {
          const spliced = spliceRecord(payload, splice(payload, ctx, true) as SqlObject, bytes);
          if (spliced !== undefined) return spliced;
        }
        const output = select(payload, ctx, true);
        // "Undefined is converted to an empty string when serialized by itself."
        const record = output === undefined ? EMPTY : Buffer.from(serialize(output));
        return { matched: true, output, record };
      } catch (e) {
        // A value nested too deep for the platform: refused like any other unevaluable message.
        if (e instanceof RangeError)
          throw new RuleEvaluationError(`evaluation failed: ${e.message}`);
        throw e;
      }
    },
  };
}

/**
 * The result of `SELECT *, …` whose record is the payload's own bytes with the added keys spliced
 * in before the closing brace. The merged output object is built only if someone reads it (the
 * actions need the record alone).
 */
class SplicedResult {
  readonly matched = true;
  private merged: SqlObject | undefined;
  constructor(
    private readonly payload: SqlObject,
    private readonly extras: SqlObject,
    readonly record: Buffer,
  ) {}

  get output(): Value {
    return (this.merged ??= merge(this.payload, this.extras));
  }
}

/**
 * The record of `SELECT *, …`: the payload's bytes up to its closing brace, then the added keys.
 * Undefined (serialise the merged object instead) when an added key is also a payload key, whose
 * value must then be replaced where it stands.
 */
function spliceRecord(
  payload: SqlObject,
  extras: SqlObject,
  bytes: Buffer,
): RuleResult | undefined {
  let added = 0;
  for (const k in extras) {
    if (Object.prototype.hasOwnProperty.call(payload, k)) return undefined;
    added++;
  }
  if (added === 0) return new SplicedResult(payload, extras, bytes);
  let hasKeys = false;
  for (const _k in payload) {
    hasKeys = true;
    break;
  }
  const close = bytes.lastIndexOf(0x7d); // the payload object's closing brace
  const tail = `${hasKeys ? "," : ""}${serialize(extras).slice(1)}`;
  // One buffer, the tail written straight into it.
  const record = Buffer.allocUnsafe(close + Buffer.byteLength(tail));
  bytes.copy(record, 0, 0, close);
  record.write(tail, close);
  return new SplicedResult(payload, extras, record);
}

/**
 * The payload last parsed and its value. A message's rules run one after another in the same
 * turn on the same Buffer (and their actions' substitution templates after them), so it is parsed
 * once rather than once per rule and template: the second rule's parse was a tenth of a durable
 * message's rule CPU (issue 28). Keyed by the Buffer itself: every publish has its own.
 */
let lastBytes: Buffer | undefined;
let lastParsed: SqlValue = EMPTY;

function parsedPayload(bytes: Buffer): SqlValue {
  if (bytes !== lastBytes) {
    // A payload that cannot be read throws here, every time, and is not remembered.
    lastParsed = parsePayload(bytes);
    lastBytes = bytes;
  }
  return lastParsed;
}

/**
 * What the SQL's functions see of one message: the input's fields, its payload parsed once, and
 * `topic` as the rule sees it (a Basic Ingest topic without its `$aws/rules/<name>/`). One place,
 * so that the rule and its actions' substitution templates see the same (get_thing_shadow() too).
 * The input's fields are read through, not copied: most statements read none of them, and the
 * trace id is only made when something reads it.
 */
class MessageContext implements Context {
  constructor(
    private readonly input: RuleInput,
    readonly topic: string,
    readonly payload: SqlValue,
    readonly payloadBytes: Buffer,
  ) {}
  get clientId() {
    return this.input.clientId;
  }
  get timestamp() {
    return this.input.timestamp;
  }
  get newuuid() {
    return this.input.newuuid;
  }
  get principal() {
    return this.input.principal;
  }
  get traceId() {
    return this.input.traceId;
  }
  get accountId() {
    return this.input.accountId;
  }
  get mqtt() {
    return this.input.mqtt;
  }
  get registry() {
    return this.input.registry;
  }
  get shadow() {
    return this.input.shadow;
  }
  get random() {
    return this.input.random;
  }
}

function contextOf(input: RuleInput, topic: string): Context {
  const bytes = typeof input.payload === "string" ? Buffer.from(input.payload) : input.payload;
  return new MessageContext(input, topic, parsedPayload(bytes), bytes);
}

/**
 * Compiles one expression on its own, as a substitution template's `${expression}` is evaluated:
 * "separately from the SELECT statement", against the original payload, functions and operators
 * (https://docs.aws.amazon.com/iot/latest/developerguide/iot-substitution-templates.html). The
 * input's topic is the rule's (a Basic Ingest topic seen without its `$aws/rules/<name>/`).
 */
export function compileExpression(expr: Expr): (input: RuleInput) => Value {
  const value = compileExpr(expr);
  return (input) => {
    let topic = input.topic;
    if (topic.startsWith(BASIC_INGEST)) {
      const rest = topic.slice(BASIC_INGEST.length);
      const slash = rest.indexOf("/");
      topic = slash < 0 ? "" : rest.slice(slash + 1);
    }
    const ctx = contextOf(input, topic);
    try {
      return value(ctx.payload, ctx);
    } catch (e) {
      if (e instanceof RangeError) throw new RuleEvaluationError(`evaluation failed: ${e.message}`);
      throw e;
    }
  };
}

const compiled = new WeakMap<RuleStatement, CompiledRule>();

/**
 * Runs the statement on one message. A topic outside FROM or a WHERE that is not true (false or
 * Undefined) does not match, and then no action runs. Throws RuleEvaluationError for a message
 * the engine will not evaluate (over a bound, or a number Int and Decimal cannot hold).
 */
export function evaluateRule(statement: RuleStatement, input: RuleInput): RuleResult {
  let rule = compiled.get(statement);
  if (rule === undefined) {
    rule = compileRule(statement);
    compiled.set(statement, rule);
  }
  return rule.evaluate(input);
}
