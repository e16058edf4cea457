// Every function of the AWS IoT SQL functions page: its argument counts, how far the local
// engine supports it, and its implementation with the page's conversions and Undefined rules.
// The parser checks names and argument counts against this catalogue; docs/iot-sql.md lists it.
import { createHash } from "node:crypto";
import { Decimal } from "decimal.js";
import { md2 } from "./md2";
import { formatJoda, parseJdk } from "./time";
import {
  Dec,
  arithmetic,
  bigIntToInt,
  fromDouble,
  getKey,
  intToBigInt,
  intToIndex,
  isInt,
  isNumeric,
  isObject,
  normalize,
  parseJson,
  roundToInt,
  serialize,
  setKey,
  toDec,
  toDouble,
  toInt,
  toNumber,
  toStr,
  type SqlObject,
  type SqlValue,
  type Value,
} from "./values";

/** MQTT 5 properties of the message, for get_mqtt_property() and get_user_properties(). */
export interface MqttProperties {
  readonly contentType?: string;
  /** 0: unspecified bytes, 1: UTF-8 data. */
  readonly payloadFormatIndicator?: 0 | 1;
  readonly responseTopic?: string;
  readonly correlationData?: Buffer;
  readonly userProperties?: readonly (readonly [string, string])[];
}

/** What get_registry_data() reads: the registry's answer to one API call, or undefined. */
export type RegistryLookup = (
  api: "DescribeThing" | "ListThingGroupsForThing",
  thingName: string,
) => SqlValue | undefined;

/**
 * What get_thing_shadow() reads: the shadow's document as GetThingShadow returns it (the /get
 * accepted document: state, metadata, version, timestamp), or undefined when it has none.
 */
export type ShadowLookup = (thingName: string, shadowName?: string) => SqlValue | undefined;

/** What a function may know of the message beyond its arguments. */
export interface CallContext {
  readonly topic: string;
  /** The MQTT client id; clientid() is "n/a" without one. */
  readonly clientId?: string;
  /** Epoch milliseconds at which the broker received the message (`timestamp()`). */
  readonly timestamp: number;
  readonly newuuid: () => string;
  /** The certificate id for `principal()`; Undefined when not given. */
  readonly principal?: string;
  /** The message's trace id for `traceid()`; Undefined when not given. */
  readonly traceId?: string;
  /** The account id for `accountid()`. */
  readonly accountId?: string;
  readonly mqtt?: MqttProperties;
  readonly registry?: RegistryLookup;
  /** The Device Shadow service, for get_thing_shadow(). */
  readonly shadow?: ShadowLookup;
  readonly random?: () => number;
}

/**
 * `local`: evaluated as AWS documents it. `stand-in`: evaluated from local data in place of the
 * AWS service (the registry, the connection). `parsed-only`: calls another AWS service; parsed and
 * argument-checked, Undefined locally, with one warning line per rule at start.
 */
export type Support = "local" | "stand-in" | "parsed-only";

export interface FunctionSpec {
  readonly min: number;
  readonly max: number;
  readonly support: Support;
  /** Why a stand-in or parsed-only function is not the real thing. */
  readonly reason?: string;
  /** The anchor of the function on the functions page. */
  readonly anchor: string;
  readonly impl: (args: readonly Value[], ctx: CallContext) => Value;
}

/**
 * transform("enrichArray", ...): "The array returned by this function is limited to 128 KiB." A
 * limit of the function's own, equal to the message size limit but documented apart from it.
 */
const TRANSFORM_MAX_BYTES = 128 * 1024;

const FUNCTIONS_PAGE =
  "https://docs.aws.amazon.com/iot/latest/developerguide/iot-sql-functions.html";

export function functionUrl(spec: FunctionSpec): string {
  return `${FUNCTIONS_PAGE}#${spec.anchor}`;
}

// ---- helpers -------------------------------------------------------------------------------

type Num = number | Dec;

/** A one-argument function of a number, with the page's String conversion and Undefined rules. */
function numeric(f: (n: Num) => Value): (args: readonly Value[]) => Value {
  return ([a]) => {
    const n = toNumber(a);
    return n === undefined ? undefined : f(n);
  };
}

/** A double-precision function ("Decimal arguments are rounded to double precision"). */
function double(f: (x: number) => number): (args: readonly Value[]) => Value {
  return numeric((n) => fromDouble(f(toDouble(n))));
}

function double2(f: (x: number, y: number) => number): (args: readonly Value[]) => Value {
  return ([a, b]) => {
    const x = toNumber(a);
    const y = toNumber(b);
    return x === undefined || y === undefined ? undefined : fromDouble(f(toDouble(x), toDouble(y)));
  };
}

/** Strings by the standard conversion; Null and Undefined make the result Undefined. */
function strings(n: number, f: (...s: string[]) => Value): (args: readonly Value[]) => Value {
  return (args) => {
    const s: string[] = [];
    for (let i = 0; i < n; i++) {
      const v = toStr(args[i]);
      if (v === undefined) return undefined;
      s.push(v);
    }
    return f(...s);
  };
}

/** Bitwise functions: Int conversion rounding down, two's complement on the Int. */
function bitwise(f: (a: bigint, b: bigint) => bigint): (args: readonly Value[]) => Value {
  return ([a, b]) => {
    const x = toInt(a, "floor");
    const y = toInt(b, "floor");
    if (x === undefined || y === undefined) return undefined;
    return bigIntToInt(f(intToBigInt(x), intToBigInt(y)));
  };
}

function hash(algorithm: string): (args: readonly Value[]) => Value {
  return strings(1, (s) => createHash(algorithm).update(s, "utf8").digest("hex"));
}

/** lpad/rpad: the count is an Int rounded down, clamped to 0..1000 as the page says. */
function pad(left: boolean): (args: readonly Value[]) => Value {
  return ([a, b]) => {
    const s = toStr(a);
    const n = toInt(b, "floor");
    if (s === undefined || n === undefined || typeof b === "boolean") return undefined;
    const count = Math.min(1000, Math.max(0, intToIndex(n)));
    const spaces = " ".repeat(count);
    return left ? spaces + s : s + spaces;
  };
}

// The ltrim/rtrim pages define white space as tabs and spaces.
const LEADING = /^[ \t]+/;
const TRAILING = /[ \t]+$/;

const regexCache = new Map<string, RegExp | null>();

/**
 * A regular expression from the SQL (Java syntax on AWS). Patterns JavaScript reads the same way
 * work; a leading `(?i)` becomes the i flag; anything JavaScript refuses is "not valid regex".
 */
function regex(pattern: string, global: boolean): RegExp | undefined {
  const key = `${global ? "g" : "-"}${pattern}`;
  let re = regexCache.get(key);
  if (re === undefined) {
    let source = pattern;
    let flags = global ? "g" : "";
    if (source.startsWith("(?i)")) {
      source = source.slice(4);
      flags += "i";
    }
    try {
      re = new RegExp(source, flags);
    } catch {
      re = null;
    }
    if (regexCache.size > 256) regexCache.clear();
    regexCache.set(key, re);
  }
  if (re === null) return undefined;
  re.lastIndex = 0;
  return re;
}

/**
 * A Java replacement string (`$1`, `${name}`, `\$`) as a function of a match; undefined when it
 * is not a valid replacement (a trailing backslash, `$` before anything but a group).
 */
function replacement(repl: string): ((m: RegExpExecArray | string[]) => string) | undefined {
  const parts: (string | number)[] = [];
  let lit = "";
  for (let i = 0; i < repl.length; i++) {
    const c = repl[i];
    if (c === "\\") {
      if (i + 1 >= repl.length) return undefined;
      lit += repl[++i];
    } else if (c === "$") {
      const m = /^\d+/.exec(repl.slice(i + 1));
      if (!m) return undefined;
      parts.push(lit);
      lit = "";
      parts.push(Number(m[0]));
      i += m[0].length;
    } else lit += c;
  }
  parts.push(lit);
  return (m) => parts.map((p) => (typeof p === "number" ? (m[p] ?? "") : p)).join("");
}

function utf8(s: string): Buffer {
  return Buffer.from(s, "utf8");
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function external(anchor: string, min: number, max: number, service: string): FunctionSpec {
  return {
    min,
    max,
    support: "parsed-only",
    reason: `calls ${service}, which the offline pipeline does not have`,
    anchor,
    impl: () => undefined,
  };
}

// ---- the catalogue -------------------------------------------------------------------------

export const FUNCTIONS: Readonly<Record<string, FunctionSpec>> = {
  abs: {
    min: 1,
    max: 1,
    support: "local",
    anchor: "iot-func-abs",
    impl: numeric((n) => (typeof n === "number" ? Math.abs(n) : n.abs())),
  },
  accountid: {
    min: 0,
    max: 0,
    support: "stand-in",
    reason: "the local account id 000000000000, as in the local policy ARNs",
    anchor: "iot-sql-function-accountid",
    impl: (_a, ctx) => ctx.accountId,
  },
  acos: { min: 1, max: 1, support: "local", anchor: "iot-func-acos", impl: double(Math.acos) },
  asin: { min: 1, max: 1, support: "local", anchor: "iot-func-asin", impl: double(Math.asin) },
  atan: { min: 1, max: 1, support: "local", anchor: "iot-func-atan", impl: double(Math.atan) },
  atan2: { min: 2, max: 2, support: "local", anchor: "iot-func-atan2", impl: double2(Math.atan2) },
  aws_lambda: external("iot-func-aws-lambda", 2, 2, "AWS Lambda"),
  bitand: {
    min: 2,
    max: 2,
    support: "local",
    anchor: "iot-func-bitand",
    impl: bitwise((a, b) => a & b),
  },
  bitor: {
    min: 2,
    max: 2,
    support: "local",
    anchor: "iot-func-bitor",
    impl: bitwise((a, b) => a | b),
  },
  bitxor: {
    min: 2,
    max: 2,
    support: "local",
    anchor: "iot-func-xbitor",
    impl: bitwise((a, b) => a ^ b),
  },
  bitnot: {
    min: 1,
    max: 1,
    support: "local",
    anchor: "iot-func-bitnot",
    impl: ([a]) => {
      const x = toInt(a, "floor");
      return x === undefined ? undefined : bigIntToInt(~intToBigInt(x));
    },
  },
  // cast(value AS type) has a syntax of its own; the evaluator calls castTo() below.
  cast: {
    min: 1,
    max: 1,
    support: "local",
    anchor: "iot-sql-function-cast",
    impl: () => undefined,
  },
  ceil: {
    min: 1,
    max: 1,
    support: "local",
    anchor: "iot-func-ceil",
    impl: numeric((n) =>
      typeof n === "number"
        ? Math.ceil(n) || 0
        : normalize(n.toDecimalPlaces(0, Decimal.ROUND_CEIL)),
    ),
  },
  chr: {
    min: 1,
    max: 1,
    support: "local",
    anchor: "iot-func-chr",
    impl: ([a]) => {
      if (typeof a === "boolean") return undefined;
      const n = toInt(a, "floor");
      if (n === undefined || typeof n !== "number" || n < 0 || n > 127) return undefined;
      return String.fromCharCode(n);
    },
  },
  clientid: {
    min: 0,
    max: 0,
    support: "stand-in",
    reason: "the MQTT client id of the local broker's connection",
    anchor: "iot-sql-function-clientid",
    impl: (_a, ctx) => ctx.clientId ?? "n/a",
  },
  concat: {
    min: 0,
    max: Infinity,
    support: "local",
    anchor: "iot-func-concat",
    impl: (args) => {
      if (args.length === 0) return undefined;
      if (args.some((a) => a === undefined)) return undefined;
      if (args.length === 1) {
        // The table says one argument is returned unmodified, the example says concat(1) = "1":
        // an Array comes back as it is, anything else as its String (both hold for what they show).
        return Array.isArray(args[0]) ? args[0] : toStr(args[0]);
      }
      if (args.some(Array.isArray)) {
        const out: SqlValue[] = [];
        for (const a of args) {
          // A loop, not push(...a): an array from a payload may be longer than a call's arguments.
          if (Array.isArray(a)) for (const x of a) out.push(x);
          else out.push(a as SqlValue);
        }
        return out;
      }
      if (!args.some((a) => typeof a === "string")) return undefined;
      let s = "";
      for (const a of args) {
        const t = toStr(a);
        if (t === undefined) return undefined;
        s += t;
      }
      return s;
    },
  },
  cos: { min: 1, max: 1, support: "local", anchor: "iot-func-cos", impl: double(Math.cos) },
  cosh: { min: 1, max: 1, support: "local", anchor: "iot-func-cosh", impl: double(Math.cosh) },
  decode: {
    min: 2,
    max: 2,
    support: "local",
    anchor: "iot-sql-decode-base64",
    impl: ([value, scheme]) => {
      if (scheme !== "base64") return undefined;
      if (typeof value !== "string") return undefined;
      const text = value.replace(/\s+/g, "");
      // "The function returns NULL if the string cannot be decoded."
      if (!BASE64.test(text)) return null;
      const bytes = Buffer.from(text, "base64");
      const decoded = bytes.toString("utf8");
      if (!utf8(decoded).equals(bytes)) return null;
      const json = parseJson(decoded);
      return json === undefined ? decoded : json;
    },
  },
  // encode(*, ...) reads the payload's bytes; the evaluator handles that form.
  encode: {
    min: 2,
    max: 2,
    support: "local",
    anchor: "iot-sql-encode-payload",
    impl: ([value, scheme]) => {
      if (scheme !== "base64") return undefined;
      const s = toStr(value);
      return s === undefined ? undefined : utf8(s).toString("base64");
    },
  },
  endswith: {
    min: 2,
    max: 2,
    support: "local",
    anchor: "iot-func-endswith",
    impl: strings(2, (a, b) => a.endsWith(b)),
  },
  exp: { min: 1, max: 1, support: "local", anchor: "iot-func-exp", impl: double(Math.exp) },
  floor: {
    min: 1,
    max: 1,
    support: "local",
    anchor: "iot-func-floor",
    impl: numeric((n) =>
      typeof n === "number"
        ? Math.floor(n) || 0
        : normalize(n.toDecimalPlaces(0, Decimal.ROUND_FLOOR)),
    ),
  },
  get: {
    min: 2,
    max: 2,
    support: "local",
    anchor: "iot-sql-function-get",
    impl: ([c, k]) => {
      if (Array.isArray(c) || typeof c === "string") {
        const i = toInt(k);
        if (i === undefined) return undefined;
        const idx = intToIndex(i);
        if (idx < 0 || idx >= c.length) return undefined;
        return c[idx];
      }
      if (isObject(c) && typeof k === "string") return getKey(c, k);
      return undefined;
    },
  },
  get_dynamodb: external("iot-sql-function-get-dynamodb", 4, 6, "Amazon DynamoDB"),
  get_mqtt_property: {
    min: 1,
    max: 1,
    support: "stand-in",
    reason:
      "reads the MQTT 5 publish's properties as the local broker received them; a 3.1.1 publish carries none: format_indicator is UNSPECIFIED_BYTES, the others Undefined",
    anchor: "iot-sql-function-get-mqtt-property",
    impl: ([name], ctx) => {
      const p = ctx.mqtt ?? {};
      if (name === "format_indicator") {
        return p.payloadFormatIndicator === 1 ? "UTF8_DATA" : "UNSPECIFIED_BYTES";
      }
      if (name === "content_type") return p.contentType;
      if (name === "response_topic") return p.responseTopic;
      if (name === "correlation_data") return p.correlationData?.toString("base64");
      return undefined;
    },
  },
  get_registry_data: {
    min: 3,
    max: 3,
    support: "stand-in",
    reason:
      "answers DescribeThing and ListThingGroupsForThing from the stack config's registry (things, thing type, groups) instead of calling AWS IoT",
    anchor: "iot-sql-function-get-registry_data",
    impl: ([api, thing], ctx) => {
      if (
        (api !== "DescribeThing" && api !== "ListThingGroupsForThing") ||
        typeof thing !== "string"
      ) {
        return undefined;
      }
      return ctx.registry?.(api, thing);
    },
  },
  get_secret: external("iot-sql-function-get-secret", 3, 4, "AWS Secrets Manager"),
  get_thing_shadow: {
    // get_thing_shadow(thingName, roleArn) or get_thing_shadow(thingName, shadowName, roleArn):
    // "Returns the specified shadow of the specified thing" (iot-sql-functions.html). The role's
    // iot:GetThingShadow is IAM's to decide, which the local pipeline does not model.
    min: 2,
    max: 3,
    support: "stand-in",
    reason:
      "reads the local Device Shadow service's shadow (its /get document); the role ARN is not checked; Undefined when the thing has no such shadow",
    anchor: "iot-sql-function-get-thing-shadow",
    impl: (args, ctx) => {
      const [thing, shadowName] = args.length === 3 ? [args[0], args[1]] : [args[0], undefined];
      if (typeof thing !== "string") return undefined;
      if (shadowName !== undefined && typeof shadowName !== "string") return undefined;
      return ctx.shadow?.(thing, shadowName);
    },
  },
  get_user_properties: {
    min: 0,
    max: 1,
    support: "stand-in",
    reason:
      "reads the MQTT 5 publish's user properties as the local broker received them (repeated keys grouped, not interleaved); a 3.1.1 publish has none: Undefined",
    anchor: "iot-sql-function-get-user-properties",
    impl: (args, ctx) => {
      const props = ctx.mqtt?.userProperties ?? [];
      if (args.length === 0) {
        return props.length === 0 ? undefined : props.map(([k, v]) => ({ [k]: v }));
      }
      const values = props.filter(([k]) => k === args[0]).map(([, v]) => v);
      return values.length === 0 ? undefined : values;
    },
  },
  indexof: {
    min: 2,
    max: 2,
    support: "local",
    anchor: "iot-sql-function-indexof",
    impl: strings(2, (a, b) => a.indexOf(b)),
  },
  isnull: {
    min: 1,
    max: 1,
    support: "local",
    anchor: "iot-sql-function-isNull",
    impl: ([a]) => a === null,
  },
  isundefined: {
    min: 1,
    max: 1,
    support: "local",
    anchor: "iot-sql-function-isUndefined",
    impl: ([a]) => a === undefined,
  },
  length: {
    min: 1,
    max: 1,
    support: "local",
    anchor: "iot-sql-function-length",
    impl: strings(1, (s) => s.length),
  },
  ln: { min: 1, max: 1, support: "local", anchor: "iot-func-nln", impl: double(Math.log) },
  log: { min: 1, max: 1, support: "local", anchor: "iot-func-log", impl: double(Math.log10) },
  lower: {
    min: 1,
    max: 1,
    support: "local",
    anchor: "iot-func-lower",
    impl: strings(1, (s) => s.toLowerCase()),
  },
  lpad: { min: 2, max: 2, support: "local", anchor: "iot-func-lpad", impl: pad(true) },
  ltrim: {
    min: 1,
    max: 1,
    support: "local",
    anchor: "iot-func-ltrim",
    impl: strings(1, (s) => s.replace(LEADING, "")),
  },
  machinelearning_predict: external(
    "iot-sql-function-machine-learning",
    3,
    3,
    "Amazon Machine Learning",
  ),
  md2: { min: 1, max: 1, support: "local", anchor: "iot-sql-function-hash", impl: strings(1, md2) },
  md5: { min: 1, max: 1, support: "local", anchor: "iot-sql-function-hash", impl: hash("md5") },
  mod: {
    min: 2,
    max: 2,
    support: "local",
    anchor: "iot-func-mod",
    impl: ([a, b]) => {
      const x = toNumber(a);
      const y = toNumber(b);
      return x === undefined || y === undefined ? undefined : arithmetic("%", x, y);
    },
  },
  nanvl: {
    min: 2,
    max: 2,
    support: "local",
    anchor: "iot-func-nanvl",
    // NaN never arises here (double results that are not numbers are Undefined already).
    impl: ([a, b]) => (a === undefined || a === null ? b : a),
  },
  newuuid: {
    min: 0,
    max: 0,
    support: "local",
    anchor: "iot-sql-function-newuuid",
    impl: (_a, ctx) => ctx.newuuid(),
  },
  numbytes: {
    min: 1,
    max: 1,
    support: "local",
    anchor: "iot-sql-function-numbytes",
    impl: strings(1, (s) => Buffer.byteLength(s, "utf8")),
  },
  parse_time: {
    min: 2,
    max: 3,
    support: "local",
    anchor: "iot-sql-function-parse-time",
    impl: ([pattern, ts, zone]) => {
      const p = toStr(pattern);
      const t = toInt(ts, "floor");
      if (p === undefined || t === undefined || typeof ts === "boolean") return undefined;
      const z = zone === undefined ? "UTC" : toStr(zone);
      if (z === undefined) return undefined;
      const ms = toDouble(t);
      if (Math.abs(ms) > 8.64e15) return undefined;
      return formatJoda(p, ms, z);
    },
  },
  power: { min: 2, max: 2, support: "local", anchor: "iot-func-power", impl: double2(Math.pow) },
  principal: {
    min: 0,
    max: 0,
    support: "stand-in",
    reason:
      "the id of the client certificate the local broker verified (SHA-256 of its DER, 64 hex digits)",
    anchor: "iot-sql-function-principal",
    impl: (_a, ctx) => ctx.principal,
  },
  rand: {
    min: 0,
    max: 0,
    support: "local",
    anchor: "iot-sql-function-rand",
    impl: (_a, ctx) => (ctx.random ?? Math.random)(),
  },
  regexp_matches: {
    min: 2,
    max: 2,
    support: "local",
    anchor: "iot-func-regex-matches",
    impl: strings(2, (s, p) => regex(p, false)?.test(s)),
  },
  regexp_replace: {
    min: 3,
    max: 3,
    support: "local",
    anchor: "iot-func-regex-replace",
    impl: strings(3, (s, p, r) => {
      const re = regex(p, true);
      const build = replacement(r);
      if (re === undefined || build === undefined) return undefined;
      // The callback receives the match, the groups, the offset, the string and, when the
      // pattern names groups, an object of them: the groups end before the numeric offset.
      return s.replace(re, (...m: unknown[]) => {
        const end = m.findIndex((x, i) => i > 0 && typeof x === "number");
        return build(m.slice(0, end).map((x) => (x === undefined ? "" : (x as string))));
      });
    }),
  },
  regexp_substr: {
    min: 2,
    max: 2,
    support: "local",
    anchor: "iot-func-regex-substr",
    impl: strings(2, (s, p) => regex(p, false)?.exec(s)?.[0]),
  },
  remainder: {
    min: 2,
    max: 2,
    support: "local",
    anchor: "iot-func-remainder",
    impl: ([a, b]) => {
      const x = toNumber(a);
      const y = toNumber(b);
      return x === undefined || y === undefined ? undefined : arithmetic("%", x, y);
    },
  },
  replace: {
    min: 3,
    max: 3,
    support: "local",
    anchor: "iot-func-replace",
    impl: strings(3, (s, f, r) => s.split(f).join(r)),
  },
  round: {
    min: 1,
    max: 1,
    support: "local",
    anchor: "iot-func-round",
    // The page's table says "rounded down", its text and five examples round to nearest with
    // halves away from zero (Round(-1.5) = -2): the examples are followed.
    impl: numeric((n) => roundToInt(n, "nearest")),
  },
  rpad: { min: 2, max: 2, support: "local", anchor: "iot-func-rpad", impl: pad(false) },
  rtrim: {
    min: 1,
    max: 1,
    support: "local",
    anchor: "iot-func-rtrim",
    impl: strings(1, (s) => s.replace(TRAILING, "")),
  },
  sha1: { min: 1, max: 1, support: "local", anchor: "iot-sql-function-hash", impl: hash("sha1") },
  sha224: {
    min: 1,
    max: 1,
    support: "local",
    anchor: "iot-sql-function-hash",
    impl: hash("sha224"),
  },
  sha256: {
    min: 1,
    max: 1,
    support: "local",
    anchor: "iot-sql-function-hash",
    impl: hash("sha256"),
  },
  sha384: {
    min: 1,
    max: 1,
    support: "local",
    anchor: "iot-sql-function-hash",
    impl: hash("sha384"),
  },
  sha512: {
    min: 1,
    max: 1,
    support: "local",
    anchor: "iot-sql-function-hash",
    impl: hash("sha512"),
  },
  sign: {
    min: 1,
    max: 1,
    support: "local",
    anchor: "iot-func-sign",
    impl: numeric((n) =>
      typeof n === "number" ? Math.sign(n) || 0 : n.isZero() ? 0 : n.isNeg() ? -1 : 1,
    ),
  },
  sin: { min: 1, max: 1, support: "local", anchor: "iot-func-sin", impl: double(Math.sin) },
  sinh: { min: 1, max: 1, support: "local", anchor: "iot-func-sinh", impl: double(Math.sinh) },
  sql_version: {
    min: 0,
    max: 0,
    support: "local",
    anchor: "iot-sql-function-sql-version",
    impl: () => "2016-03-23",
  },
  sqrt: { min: 1, max: 1, support: "local", anchor: "iot-func-sqrt", impl: double(Math.sqrt) },
  startswith: {
    min: 2,
    max: 2,
    support: "local",
    anchor: "iot-func-startswith",
    impl: strings(2, (a, b) => a.startsWith(b)),
  },
  substring: {
    min: 2,
    max: 3,
    support: "local",
    anchor: "iot-func-substring",
    impl: (args) => {
      const s = toStr(args[0]);
      if (s === undefined) return undefined;
      const clamp = (v: Value): number | undefined => {
        const i = toInt(v, "floor");
        return i === undefined ? undefined : Math.min(s.length, Math.max(0, intToIndex(i)));
      };
      const from = clamp(args[1]);
      if (from === undefined) return undefined;
      if (args.length === 2) return s.slice(from);
      const to = clamp(args[2]);
      if (to === undefined) return undefined;
      return from >= to ? "" : s.slice(from, to);
    },
  },
  tan: { min: 1, max: 1, support: "local", anchor: "iot-func-tan", impl: double(Math.tan) },
  tanh: { min: 1, max: 1, support: "local", anchor: "iot-func-tanh", impl: double(Math.tanh) },
  time_to_epoch: {
    min: 2,
    max: 2,
    support: "local",
    anchor: "iot-sql-function-time-to-epoch",
    impl: ([ts, pattern]) =>
      typeof ts === "string" && typeof pattern === "string" ? parseJdk(ts, pattern) : undefined,
  },
  timestamp: {
    min: 0,
    max: 0,
    support: "local",
    anchor: "iot-function-timestamp",
    impl: (_a, ctx) => ctx.timestamp,
  },
  topic: {
    min: 0,
    max: 1,
    support: "local",
    anchor: "iot-function-topic",
    impl: (args, ctx) => {
      if (args.length === 0) return ctx.topic;
      if (typeof args[0] === "boolean") return undefined;
      const n = toInt(args[0], "floor");
      if (n === undefined) return undefined;
      const levels = ctx.topic.split("/");
      const i = intToIndex(n);
      return i >= 1 && i <= levels.length ? levels[i - 1] : undefined;
    },
  },
  traceid: {
    min: 0,
    max: 0,
    support: "stand-in",
    reason:
      "a UUID the local rule engine gives each message (also the error action's cloudwatchTraceId)",
    anchor: "iot-sql-function-traceid",
    impl: (_a, ctx) => ctx.traceId,
  },
  transform: {
    min: 3,
    max: 3,
    support: "local",
    anchor: "iot-func-transform",
    impl: ([mode, obj, arr]) => {
      if (mode !== "enrichArray" || !isObject(obj) || !Array.isArray(arr)) return undefined;
      const out: SqlValue[] = [];
      for (const el of arr) {
        if (!isObject(el)) return undefined;
        const merged: SqlObject = {};
        for (const k of Object.keys(el)) setKey(merged, k, el[k]);
        for (const k of Object.keys(obj)) setKey(merged, k, obj[k]);
        out.push(merged);
      }
      return Buffer.byteLength(serialize(out)) > TRANSFORM_MAX_BYTES ? undefined : out;
    },
  },
  trim: {
    min: 1,
    max: 1,
    support: "local",
    anchor: "iot-func-trim",
    impl: strings(1, (s) => s.replace(LEADING, "").replace(TRAILING, "")),
  },
  trunc: {
    min: 2,
    max: 2,
    support: "local",
    anchor: "iot-func-trunc",
    impl: ([a, b]) => {
      const x = toNumber(a);
      if (x === undefined || !isNumeric(b)) return undefined;
      const places = Math.min(34, Math.max(0, intToIndex(roundToInt(b, "floor"))));
      if (isInt(x)) return x;
      return normalize(toDec(x).toDecimalPlaces(places, Decimal.ROUND_DOWN));
    },
  },
  upper: {
    min: 1,
    max: 1,
    support: "local",
    anchor: "iot-sql-function-upper",
    impl: strings(1, (s) => s.toUpperCase()),
  },
};

/** The cast page's keywords, grouped by the type they produce. */
const CAST_TARGET: Record<string, "string" | "int" | "double" | "decimal" | "boolean"> = {
  string: "string",
  nvarchar: "string",
  text: "string",
  ntext: "string",
  varchar: "string",
  int: "int",
  integer: "int",
  double: "double",
  decimal: "decimal",
  bool: "boolean",
  boolean: "boolean",
};

/** cast(value AS type) with the cast page's tables. */
export function castTo(v: Value, type: string): Value {
  const target = CAST_TARGET[type];
  if (v === undefined || v === null) return undefined;
  switch (target) {
    case "string":
      // The cast page's String row for Strings repeats the Boolean table's text; the Data types
      // page ("To string": the original value) is followed.
      return toStr(v);
    case "boolean":
      if (isNumeric(v)) return typeof v === "number" ? v !== 0 : !v.isZero();
      if (typeof v === "boolean") return v;
      if (typeof v === "string") {
        const l = v.toLowerCase();
        return l === "true" ? true : l === "false" ? false : undefined;
      }
      return undefined;
    case "int":
    case "decimal":
    case "double": {
      const n = typeof v === "boolean" ? (v ? 1 : 0) : toNumber(v);
      if (n === undefined) return undefined;
      if (target === "int") return roundToInt(n, "floor");
      if (target === "double") return fromDouble(toDouble(n));
      return n;
    }
    default:
      return undefined;
  }
}

/** Whether a name is a function (case-insensitive, as the page's examples write Round, Ltrim). */
export function lookupFunction(name: string): FunctionSpec | undefined {
  const spec = FUNCTIONS[name.toLowerCase()];
  return spec !== undefined && Object.prototype.hasOwnProperty.call(FUNCTIONS, name.toLowerCase())
    ? spec
    : undefined;
}
