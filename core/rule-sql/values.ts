// IoT SQL's values and the conversions between them, as the Data types page documents them:
// Int and Decimal held exactly (34 digits), Undefined as JavaScript's undefined, and the payload
// read as JSON with bounds on its size, depth and numbers.
import { isUtf8 } from "node:buffer";
import { Decimal } from "decimal.js";
import { IOT_MAX_PAYLOAD_BYTES } from "../iot-limits";

/**
 * A Decimal that a JavaScript number cannot hold exactly: 34 significant digits, rounding half
 * to even (Decimal128), magnitudes from 1E-999 to 9.999…E999 (the Data types page).
 */
export const Dec = Decimal.clone({
  precision: 34,
  rounding: Decimal.ROUND_HALF_EVEN,
  toExpPos: 34,
  toExpNeg: -7,
  minE: -999,
  maxE: 999,
  modulo: Decimal.ROUND_DOWN,
});
export type Dec = Decimal;

// Serialised as the number it is (JSON.rawJSON), not as decimal.js's default quoted string.
(Dec.prototype as unknown as { toJSON: () => unknown }).toJSON = function (this: Decimal) {
  return (JSON as unknown as { rawJSON: (text: string) => unknown }).rawJSON(this.toString());
};

/**
 * A value of IoT SQL. Numbers are JavaScript numbers whenever the number's shortest decimal
 * form is the exact value (up to 15 significant digits, below 1e21), Dec otherwise; an Int is a
 * number or Dec with no fraction (SQL version 2016-03-23 treats 10.0 as the Int 10). A Buffer is
 * a payload that is not JSON, reachable only through `*`.
 */
export type SqlValue =
  string | number | boolean | null | Dec | Buffer | SqlValue[] | { [key: string]: SqlValue };

/** IoT SQL's Undefined is JavaScript's undefined. */
export type Value = SqlValue | undefined;

export type SqlObject = { [key: string]: SqlValue };

export function isNumeric(v: Value): v is number | Dec {
  return typeof v === "number" || v instanceof Dec;
}

export function isObject(v: Value): v is SqlObject {
  return (
    typeof v === "object" &&
    v !== null &&
    !Array.isArray(v) &&
    !(v instanceof Dec) &&
    !Buffer.isBuffer(v)
  );
}

export function isInt(v: number | Dec): boolean {
  return typeof v === "number" ? Number.isInteger(v) : v.isInteger();
}

/** Own properties only: a payload key such as `constructor` or `__proto__` is data, not a prototype. */
export function getKey(o: SqlObject, key: string): Value {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}

/** Sets a key as an own data property, so that `__proto__` is a key like any other. */
export function setKey(o: SqlObject, key: string, v: SqlValue): void {
  if (key === "__proto__") {
    Object.defineProperty(o, key, {
      value: v,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    o[key] = v;
  }
}

// ---- numbers -------------------------------------------------------------------------------

/** The exact decimal value of a number or Dec. */
export function toDec(v: number | Dec): Dec {
  return typeof v === "number" ? new Dec(v) : v;
}

/**
 * The smallest exact form of a Decimal: a JavaScript number when it holds the value exactly and
 * prints it the same, else the Dec. Integers up to 2^53 and decimals of up to 15 significant
 * digits below 1e21 are numbers.
 */
export function normalize(d: Dec): number | Dec {
  if (d.isZero()) return 0;
  if (d.isInteger()) {
    const n = d.toNumber();
    return Number.isSafeInteger(n) ? n : d;
  }
  if (d.sd() <= 15 && d.abs().lt(1e21) && d.e > -300) return Number(d.toString());
  return d;
}

/** A double-precision result (trigonometry, logarithms): Undefined where it is not a number. */
export function fromDouble(x: number): number | undefined {
  return Number.isFinite(x) ? x : undefined;
}

export function toDouble(v: number | Dec): number {
  return typeof v === "number" ? v : v.toNumber();
}

/** The pattern the Data types page gives for strings that convert to Decimal. */
const DECIMAL_STRING = /^-?\d+(\.\d+)?([eE]-?\d+)?$/;

/** A numeric string as a number, or Undefined when it does not match AWS's pattern or range. */
function parseNumericString(s: string): number | Dec | undefined {
  if (!DECIMAL_STRING.test(s)) return undefined;
  const n = readNumber(s);
  return typeof n === "string" ? undefined : n;
}

/**
 * "To decimal" of the Data types page: Int and Decimal as they are, Strings that match the
 * pattern, everything else Undefined. (The page converts Null to Null, but every operator and
 * function table that takes a number lists Null as Undefined, so the conversion does too.)
 */
export function toNumber(v: Value): number | Dec | undefined {
  if (typeof v === "number" || v instanceof Dec) return v;
  if (typeof v === "string") return parseNumericString(v);
  return undefined;
}

export type IntRounding = "floor" | "trunc" | "nearest";

/** A number as an Int with the rounding a function documents; a safe integer or a Dec. */
export function roundToInt(v: number | Dec, how: IntRounding): number | Dec {
  if (typeof v === "number") {
    if (Number.isInteger(v)) return v;
    if (how === "floor") return Math.floor(v);
    if (how === "trunc") return Math.trunc(v) || 0;
    // Half away from zero: what round() documents for equidistant values. Math.round works on
    // the exact double, and n + 0.5 is a double, so ties and their neighbours round as decimals.
    const r = Math.sign(v) * Math.round(Math.abs(v));
    return r === 0 ? 0 : r;
  }
  if (v.isInteger()) return v;
  const mode =
    how === "floor"
      ? Decimal.ROUND_FLOOR
      : how === "trunc"
        ? Decimal.ROUND_DOWN
        : Decimal.ROUND_HALF_UP;
  return normalize(v.toDecimalPlaces(0, mode));
}

/**
 * "To int": numbers round to the nearest Int; a String converts to Decimal and is truncated.
 * Functions that document their own rounding ("rounded down") pass it as `decimals`.
 */
export function toInt(v: Value, decimals: IntRounding = "nearest"): number | Dec | undefined {
  if (typeof v === "string") {
    const n = parseNumericString(v);
    return n === undefined ? undefined : roundToInt(n, decimals === "nearest" ? "trunc" : decimals);
  }
  if (typeof v === "number" || v instanceof Dec) return roundToInt(v, decimals);
  return undefined;
}

/** An Int as a JavaScript integer for indexes and counts, clamped to ±2^53. */
export function intToIndex(v: number | Dec): number {
  if (typeof v === "number") return v;
  return v.isNeg() ? -Number.MAX_SAFE_INTEGER : Number.MAX_SAFE_INTEGER;
}

export function intToBigInt(v: number | Dec): bigint {
  return BigInt(typeof v === "number" ? v : v.toFixed(0));
}

export function bigIntToInt(b: bigint): number | Dec {
  return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(b)
    : new Dec(b.toString());
}

export function compareNumbers(a: number | Dec, b: number | Dec): number {
  // Distinct doubles have distinct shortest forms in the same order, so doubles compare directly.
  if (typeof a === "number" && typeof b === "number") return a < b ? -1 : a > b ? 1 : 0;
  return toDec(a).cmp(toDec(b));
}

export type ArithmeticOp = "+" | "-" | "*" | "/" | "%";

/**
 * A number as an integer count of 10^-k (k ≤ 7): 21.5 is [215, 1]. Exact: the division back is
 * checked to give the same double, and the count stays below 10^15 (15 significant digits).
 */
function scaled(a: number): [number, number] | undefined {
  let p = 1;
  for (let k = 0; k <= 7; k++, p *= 10) {
    const n = Math.round(a * p);
    if (Math.abs(n) >= 1e15) return undefined;
    if (n / p === a) return [n, p];
  }
  return undefined;
}

/**
 * +, - and * of two numbers in exact decimal without a Decimal: both as scaled integers, the
 * integer result divided once by a power of ten (a correctly rounded division of exact doubles
 * yields the double whose shortest form is the exact decimal, while it has ≤ 15 digits).
 */
function scaledArithmetic(op: "+" | "-" | "*", a: number, b: number): number | undefined {
  const x = scaled(a);
  const y = scaled(b);
  if (x === undefined || y === undefined) return undefined;
  let n: number;
  let p: number;
  if (op === "*") {
    n = x[0] * y[0];
    p = x[1] * y[1];
  } else {
    p = Math.max(x[1], y[1]);
    const xa = x[0] * (p / x[1]);
    const yb = y[0] * (p / y[1]);
    if (Math.abs(xa) >= 1e15 || Math.abs(yb) >= 1e15) return undefined;
    n = op === "+" ? xa + yb : xa - yb;
  }
  if (Math.abs(n) >= 1e15 || !Number.isInteger(n)) return undefined;
  const r = n / p;
  return r === 0 ? 0 : r;
}

/**
 * The operator pages' arithmetic: Int op Int is an Int (`/` truncates, `%` keeps the dividend's
 * sign), anything with a Decimal is a Decimal of 34 digits. Division by zero is Undefined.
 */
export function arithmetic(
  op: ArithmeticOp,
  a: number | Dec,
  b: number | Dec,
): number | Dec | undefined {
  const ints = isInt(a) && isInt(b);
  if (typeof a === "number" && typeof b === "number" && ints) {
    let r: number;
    if (op === "/" || op === "%") {
      if (b === 0) return undefined;
      r = op === "/" ? Math.trunc(a / b) : a % b;
      // a / b in doubles is exact enough to truncate only while both are safe and small.
      if (op === "/" && Math.abs(a) >= 2 ** 52) r = Number(BigInt(a) / BigInt(b));
    } else r = op === "+" ? a + b : op === "-" ? a - b : a * b;
    if (Number.isSafeInteger(r)) return r === 0 ? 0 : r;
  }
  if (typeof a === "number" && typeof b === "number" && op !== "/" && op !== "%") {
    const fast = scaledArithmetic(op, a, b);
    if (fast !== undefined) return fast;
  }
  const x = toDec(a);
  const y = toDec(b);
  if ((op === "/" || op === "%") && y.isZero()) return undefined;
  let r: Dec;
  if (op === "+") r = x.plus(y);
  else if (op === "-") r = x.minus(y);
  else if (op === "*") r = x.times(y);
  else if (op === "%") r = x.mod(y);
  else r = ints ? x.div(y).toDecimalPlaces(0, Decimal.ROUND_DOWN) : x.div(y);
  if (!r.isFinite()) return undefined;
  return normalize(r);
}

// ---- strings -------------------------------------------------------------------------------

/** A number in the notation the conversions to String use (plain below 1e21, else scientific). */
function numberToString(v: number | Dec): string {
  return typeof v === "number" ? String(v) : v.toString();
}

/**
 * "To string" of the Data types page: numbers in their notation, Booleans in lower case, Arrays
 * and Objects serialised to JSON; Null and Undefined are Undefined.
 */
export function toStr(v: Value): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number" || v instanceof Dec) return numberToString(v);
  if (typeof v === "boolean") return v ? "true" : "false";
  if (v === null || v === undefined || Buffer.isBuffer(v)) return undefined;
  return serialize(v);
}

/** "To Boolean": Booleans, and the strings "true"/"false" in any case; the rest is Undefined. */
export function toBool(v: Value): boolean | undefined {
  if (typeof v === "boolean") return v;
  if (typeof v === "string") {
    const lower = v.toLowerCase();
    if (lower === "true") return true;
    if (lower === "false") return false;
  }
  return undefined;
}

// ---- equality ------------------------------------------------------------------------------

/**
 * The `=` operator's table: numbers by value (Int converted to Decimal), Strings, Booleans and
 * Null by identity, Arrays item by item in order, Objects by keys and values in any order;
 * mismatched types are not equal. Undefined on either side is handled by the caller.
 */
export function sqlEquals(a: SqlValue, b: SqlValue): boolean {
  if (isNumeric(a)) return isNumeric(b) && compareNumbers(a, b) === 0;
  if (a === null || typeof a !== "object") return a === b;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sqlEquals(a[i], b[i])) return false;
    return true;
  }
  if (Buffer.isBuffer(a)) return Buffer.isBuffer(b) && a.equals(b);
  if (!isObject(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) {
    const bv = getKey(b, k);
    if (bv === undefined || !sqlEquals(a[k], bv)) return false;
  }
  return true;
}

// ---- JSON in and out -----------------------------------------------------------------------

/** What the rule engine evaluates at most; beyond it the message goes to the error action. */
export const LIMITS = {
  /** AWS IoT's message payload limit (128 KB), which the broker also enforces. */
  payloadBytes: IOT_MAX_PAYLOAD_BYTES,
  /** Nesting of arrays and objects in a JSON payload or a decoded value. */
  depth: 1000,
} as const;

/** A message the engine will not evaluate; the rule's error action receives it unchanged. */
export class RuleEvaluationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RuleEvaluationError";
  }
}

/**
 * Reads one JSON number token as IoT SQL holds it: an Int of up to 34 digits, or a Decimal of up
 * to 34 significant digits and a magnitude from 1E-999 to 9.999…E999. Returns the reason as a
 * string for a token that neither type holds without change.
 */
function readNumber(token: string): number | Dec | string {
  let d: Decimal;
  try {
    // Read with the library's unbounded defaults first: Dec would round to 34 digits and clamp
    // the exponent, turning 1e-1000 into 0 before the range check could see it.
    d = new Decimal(token);
  } catch {
    return `${token} is not a number`;
  }
  if (!d.isFinite()) return `${token} is outside the Decimal range (magnitude up to 9.999E999)`;
  if (d.isZero()) return 0;
  // Dec's constructor keeps every digit; a token with more than 34 significant digits would be
  // rounded by IoT SQL's Decimal, which is a change to the record.
  if (d.sd() > 34) return `${token} has more than the 34 significant digits of IoT SQL's Decimal`;
  if (d.e > 999 || d.e < -999) {
    return `${token} is outside the Decimal range (magnitude 1E-999 to 9.999E999)`;
  }
  return normalize(new Dec(d));
}

/** A number literal of the SQL text as an Int or Decimal; throws for one neither type holds. */
export function readNumberLiteral(text: string): number | Dec {
  const n = readNumber(text);
  if (typeof n === "string") throw new RangeError(n);
  return n;
}

/** Why a number literal cannot be an Int or Decimal, or undefined when it can. */
export function numberLiteralProblem(text: string): string | undefined {
  const n = readNumber(text);
  return typeof n === "string" ? n : undefined;
}

interface Scan {
  depth: number;
  /** A number token that a double may not hold exactly: more than 15 digits, or an exponent. */
  exactNumbers: boolean;
}

/** One pass over JSON text: nesting depth and whether any number token needs exact reading. */
function scanJson(text: string): Scan {
  let depth = 0;
  let max = 0;
  let exactNumbers = false;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      // Skip the string: find the closing quote that no backslash escapes.
      for (;;) {
        const q = text.indexOf('"', i + 1);
        if (q < 0) return { depth: max, exactNumbers };
        let b = q - 1;
        while (text.charCodeAt(b) === 92) b--;
        i = q;
        if ((q - 1 - b) % 2 === 0) break;
      }
    } else if (c === 123 || c === 91) {
      if (++depth > max) max = depth;
    } else if (c === 125 || c === 93) {
      depth--;
    } else if (!exactNumbers && (c === 45 || (c >= 48 && c <= 57))) {
      let digits = 0;
      let j = i;
      for (; j < n; j++) {
        const d = text.charCodeAt(j);
        if (d >= 48 && d <= 57) digits++;
        else if (d === 101 || d === 69) exactNumbers = true;
        else if (d !== 46 && d !== 45 && d !== 43) break;
      }
      if (digits > 15) exactNumbers = true;
      i = j - 1;
    }
  }
  return { depth: max, exactNumbers };
}

/**
 * Whether the text may hold a number token a double cannot hold exactly: a run of 16 digits or
 * dots (a token of 16 digits or more), or a digit followed by an exponent. Strings may match too;
 * that only costs the exact reading. (A loop: a third faster than the equivalent regex.)
 */
function maybeInexact(text: string): boolean {
  let run = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c <= 57 && (c >= 48 || c === 46)) {
      if (++run >= 16) return true;
    } else {
      if (run > 0 && (c | 32) === 101) return true;
      run = 0;
    }
  }
  return false;
}

function exactReviver(this: unknown, _key: string, value: unknown, context?: { source?: string }) {
  if (typeof value !== "number") return value;
  const n = readNumber(context?.source ?? String(value));
  if (typeof n === "string") throw new RuleEvaluationError(`the payload's number ${n}`);
  return n;
}

/**
 * JSON text as an IoT SQL value, or undefined when it is not JSON. Throws RuleEvaluationError for
 * JSON the engine will not evaluate: nested deeper than LIMITS.depth, or holding a number that
 * Int and Decimal cannot represent without change.
 */
export function parseJson(text: string): SqlValue | undefined {
  let value: SqlValue;
  try {
    value = JSON.parse(text) as SqlValue;
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== "object") {
    if (typeof value !== "number") return value;
  }
  // Text shorter than two characters per level cannot nest deeper than the bound.
  if (text.length > 2 * LIMITS.depth) {
    const scan = scanJson(text);
    if (scan.depth > LIMITS.depth) {
      throw new RuleEvaluationError(
        `the JSON nests ${scan.depth} levels deep, over the rule engine's bound of ${LIMITS.depth}`,
      );
    }
    if (!scan.exactNumbers) return value;
  } else if (!maybeInexact(text)) return value;
  // Numbers a double may have rounded: read again with each token's own text.
  return (JSON.parse as (t: string, r: typeof exactReviver) => SqlValue)(text, exactReviver);
}

/** The payload as IoT SQL sees it: JSON when it is UTF-8 JSON text, else the raw bytes. */
export function parsePayload(payload: Buffer): SqlValue {
  if (payload.length > LIMITS.payloadBytes) {
    throw new RuleEvaluationError(
      `the payload of ${payload.length} bytes is over the rule engine's bound of ${LIMITS.payloadBytes} bytes (AWS IoT's message size limit)`,
    );
  }
  if (payload.length === 0 || !isUtf8(payload)) return payload;
  const v = parseJson(payload.toString("utf8"));
  return v === undefined ? payload : v;
}

/** A value as JSON text: Dec as the number it is, own keys only (a `__proto__` key included). */
export function serialize(v: SqlValue): string {
  return JSON.stringify(v);
}
