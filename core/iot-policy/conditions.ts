// What IAM's condition operators compare and how a condition combines the request's values with
// the policy's (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html):
// one definition for the IoT policy evaluator (core/iot-policy/policy-eval.ts) and the IAM evaluator of
// the pipeline's roles (core/iam/policy-eval.ts).
import { BlockList } from "node:net";
import {
  parseCidr,
  parseIamDate,
  PolicyDocumentError,
  resourceMatches,
  type ParsedOperator,
} from "./policy";

/**
 * One condition value, ready to compare: as a wildcard pattern (`*`/`?` wildcards, `${*}`-style
 * escapes for the characters) and as the literal string. Without variables or escapes the two
 * are the same text.
 */
export interface ConditionValue {
  readonly pattern: string;
  readonly literal: string;
}

/** IPv4 addresses reach Node as `::ffff:a.b.c.d` on dual-stack sockets; IAM sees `a.b.c.d`. */
export function normalizeIp(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1] : address;
}

/** One comparison of a request value with one condition value. */
export type ConditionTest = (actual: string, policy: ConditionValue) => boolean;

/** The comparison of the positive form of each operator (negation is applied around it). */
export function positiveTest(base: string): ConditionTest {
  switch (base) {
    case "StringEquals":
    case "StringNotEquals":
      return (a, p) => a === p.literal;
    case "StringEqualsIgnoreCase":
    case "StringNotEqualsIgnoreCase":
      return (a, p) => a.toLowerCase() === p.literal.toLowerCase();
    case "StringLike":
    case "StringNotLike":
      return (a, p) => resourceMatches(p.pattern, a);
    case "NumericEquals":
    case "NumericNotEquals":
      return numeric((a, p) => a === p);
    case "NumericLessThan":
      return numeric((a, p) => a < p);
    case "NumericLessThanEquals":
      return numeric((a, p) => a <= p);
    case "NumericGreaterThan":
      return numeric((a, p) => a > p);
    case "NumericGreaterThanEquals":
      return numeric((a, p) => a >= p);
    case "DateEquals":
    case "DateNotEquals":
      return date((a, p) => a === p);
    case "DateLessThan":
      return date((a, p) => a < p);
    case "DateLessThanEquals":
      return date((a, p) => a <= p);
    case "DateGreaterThan":
      return date((a, p) => a > p);
    case "DateGreaterThanEquals":
      return date((a, p) => a >= p);
    case "Bool":
      return (a, p) => a.toLowerCase() === p.literal.toLowerCase();
    case "IpAddress":
    case "NotIpAddress":
      return ipTest;
    case "ArnEquals":
    case "ArnLike":
    case "ArnNotEquals":
    case "ArnNotLike":
      return arnTest;
    default:
      // parseConditionOperator admits only the operators above.
      throw new PolicyDocumentError(`condition operator ${base} has no implementation`);
  }
}

const toNumber = (s: string) => (s.trim() === "" ? NaN : Number(s));

/** Numbers that do not parse never match (so a negated operator over them does). */
function numeric(cmp: (a: number, p: number) => boolean): ConditionTest {
  return (a, p) => {
    const x = toNumber(a);
    const y = toNumber(p.literal);
    return Number.isFinite(x) && Number.isFinite(y) && cmp(x, y);
  };
}

function date(cmp: (a: number, p: number) => boolean): ConditionTest {
  return (a, p) => {
    const x = parseIamDate(a);
    const y = parseIamDate(p.literal);
    return x !== undefined && y !== undefined && cmp(x, y);
  };
}

/** Lists of CIDR blocks by condition value, built once per value. */
const blockLists = new Map<string, BlockList | null>();

function ipTest(actual: string, p: ConditionValue): boolean {
  let list = blockLists.get(p.literal);
  if (list === undefined) {
    const cidr = parseCidr(p.literal);
    list = null;
    if (cidr) {
      list = new BlockList();
      list.addSubnet(cidr.address, cidr.prefix, cidr.family);
    }
    if (blockLists.size < 10_000) blockLists.set(p.literal, list);
  }
  const a = parseCidr(normalizeIp(actual));
  return list !== null && a !== undefined && list.check(a.address, a.family);
}

/** The six colon-separated parts of an ARN, the last holding any further colons. */
function arnParts(arn: string): string[] | undefined {
  const parts = arn.split(":");
  if (parts.length < 6) return undefined;
  return [...parts.slice(0, 5), parts.slice(5).join(":")];
}

/** ArnEquals/ArnLike: each of the six parts matched on its own, with `*` and `?` (IAM operator page). */
export function arnMatches(pattern: string, arn: string): boolean {
  const a = arnParts(arn);
  const w = arnParts(pattern);
  return a !== undefined && w !== undefined && w.every((part, i) => resourceMatches(part, a[i]));
}

function arnTest(actual: string, p: ConditionValue): boolean {
  return arnMatches(p.pattern, actual);
}

/**
 * Whether a condition holds for the request's values of its key (`undefined` or empty when the
 * request does not carry it) against the policy's values. Null "true" holds when the key is
 * absent, "false" when present.
 * A negated operator matches when no policy value does. ForAllValues: every request value must
 * match, and an absent key matches. ForAnyValue: one must, and an absent key does not unless
 * IfExists. Otherwise an absent key fails, except with IfExists or a negated operator.
 */
export function conditionHolds(
  parsed: ParsedOperator,
  actual: readonly string[] | undefined,
  policy: readonly ConditionValue[],
): boolean {
  const present = actual !== undefined && actual.length > 0;
  // Null "true": the key must be absent; "false": present.
  if (parsed.spec.family === "null") {
    return policy.some((p) => (p.literal.toLowerCase() === "true") === !present);
  }
  const test = positiveTest(parsed.base);
  const matches = (a: string) => {
    const any = policy.some((p) => test(a, p));
    return parsed.spec.negated ? !any : any;
  };
  if (parsed.set === "ForAllValues") return !present || actual.every(matches);
  if (parsed.set === "ForAnyValue") return present ? actual.some(matches) : parsed.ifExists;
  if (!present) return parsed.ifExists || parsed.spec.negated;
  return matches(actual[0]);
}
