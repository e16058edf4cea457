// Parses IoT SQL with the peggy grammar in iot-sql.peggy, then checks what the grammar leaves to
// the function catalogue (names, argument counts, literal arguments). Every error names line and
// column, as AWS refuses such a rule when it is created.
import * as peggy from "peggy";
import type { Expr, Position, RuleStatement, SelectList } from "./ast";
import { FUNCTIONS, lookupFunction } from "./functions";
import { GRAMMAR_FILE, grammarText } from "./grammar";
import { numberLiteralProblem } from "./values";

// Generated at module load rather than checked in: the grammar is small (generation takes tens
// of milliseconds, once per process), and a parser built from the file cannot go stale.
const parser = peggy.generate(grammarText(), { grammarSource: GRAMMAR_FILE });

/** A statement AWS would refuse; `line` and `column` are 1-based positions in the SQL text. */
export class RuleSqlError extends Error {
  constructor(
    readonly reason: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(`${reason} at line ${line}, column ${column}`);
    this.name = "RuleSqlError";
  }
}

function isPeggyError(e: unknown): e is peggy.parser.SyntaxError {
  return e instanceof Error && "location" in e && typeof e.location === "object";
}

/** Edit distance counting a swap of neighbours as one edit (sha265 is one edit from sha256). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/** The known function whose name is nearest to `name`. */
export function nearestFunction(name: string): string {
  const lower = name.toLowerCase();
  let best = "";
  let bestD = Infinity;
  for (const known of Object.keys(FUNCTIONS)) {
    const d = distance(lower, known);
    if (d < bestD) {
      best = known;
      bestD = d;
    }
  }
  return best;
}

/** Calls every expression of the statement, nested queries included. */
export function walkExprs(statement: RuleStatement, visit: (e: Expr) => void): void {
  const select = (s: SelectList) => {
    if (s.kind === "value") expr(s.expr);
    else for (const i of s.items) if (i.kind === "expr") expr(i.expr);
  };
  const expr = (e: Expr): void => {
    visit(e);
    switch (e.kind) {
      case "access":
        return expr(e.target);
      case "call":
        return e.args.forEach(expr);
      case "cast":
        return expr(e.value);
      case "unary":
        return expr(e.operand);
      case "binary":
        expr(e.left);
        return expr(e.right);
      case "array":
        return e.items.forEach(expr);
      case "object":
        return e.entries.forEach((en) => expr(en.value));
      case "case":
        if (e.subject) expr(e.subject);
        e.whens.forEach((w) => {
          expr(w.when);
          expr(w.then);
        });
        if (e.otherwise) expr(e.otherwise);
        return;
      case "subquery":
        select(e.query.select);
        if (e.query.where) expr(e.query.where);
        return;
      default:
        return;
    }
  };
  select(statement.select);
  if (statement.where) expr(statement.where);
}

const fail = (reason: string, at: Position): never => {
  throw new RuleSqlError(reason, at.line, at.column);
};

// Functions that the functions page shows taking `*` for the whole payload.
const STAR_ARGUMENT = new Set(["encode", "aws_lambda"]);
// Literal arguments the page restricts.
const SCHEME_FUNCTIONS = new Set(["encode", "decode"]);

/** The checks the grammar leaves to the catalogue. */
function check(statement: RuleStatement): void {
  let registryCalls = 0;
  walkExprs(statement, (e) => {
    if (e.kind === "number") {
      const problem = numberLiteralProblem(e.text);
      if (problem !== undefined) fail(`number ${problem}`, e.at);
      return;
    }
    if (e.kind !== "call") return;
    const spec = lookupFunction(e.name);
    const name = e.name.toLowerCase();
    if (spec === undefined) {
      fail(`unknown function ${e.name}(); did you mean ${nearestFunction(e.name)}()?`, e.at);
      return;
    }
    if (name === "cast") fail("cast() takes the form cast(value AS type)", e.at);
    const n = e.args.length;
    if (n < spec.min || n > spec.max) {
      const range =
        spec.max === Infinity
          ? `at least ${spec.min}`
          : spec.min === spec.max
            ? `${spec.min}`
            : `${spec.min} to ${spec.max}`;
      fail(`${name}() takes ${range} argument(s), got ${n}`, e.at);
    }
    e.args.forEach((a, i) => {
      if (
        a.kind === "star" &&
        !(STAR_ARGUMENT.has(name) && (name === "aws_lambda" ? i === 1 : i === 0))
      ) {
        fail(`* stands for the payload only in encode(*, 'base64') and aws_lambda(arn, *)`, a.at);
      }
    });
    if (SCHEME_FUNCTIONS.has(name)) {
      const scheme = e.args[1];
      if (scheme.kind === "literal" && scheme.value !== "base64") {
        fail(
          `${name}() supports only the 'base64' scheme, got ${JSON.stringify(scheme.value)}`,
          e.at,
        );
      }
    }
    if (name === "get_registry_data") {
      registryCalls++;
      // The error AWS gives at rule creation, as reported by users of the function.
      if (registryCalls > 1)
        fail("Rule cannot contain more than 1 get_registry_data function calls", e.at);
      const api = e.args[0];
      if (
        api.kind === "literal" &&
        api.value !== "DescribeThing" &&
        api.value !== "ListThingGroupsForThing"
      ) {
        fail(
          `get_registry_data() reads 'DescribeThing' or 'ListThingGroupsForThing', got ${JSON.stringify(api.value)}`,
          e.at,
        );
      }
    }
  });
}

/** Parses one rule statement, or throws RuleSqlError. */
export function parseRuleSql(sql: string): RuleStatement {
  let statement: RuleStatement;
  try {
    statement = parser.parse(sql) as RuleStatement;
  } catch (e) {
    if (e instanceof RangeError) {
      // Parentheses nested thousands deep exhaust the parser's stack; AWS refuses such SQL too.
      throw new RuleSqlError("the statement nests too deeply to parse", 1, 1);
    }
    if (!isPeggyError(e)) throw e;
    // peggy ends its messages with a full stop; ours continue with the position.
    const reason = e.message.replace(/\.$/, "");
    throw new RuleSqlError(reason, e.location.start.line, e.location.start.column);
  }
  check(statement);
  return statement;
}

/** The functions of a statement that call other AWS services, which evaluate to Undefined locally. */
export function parsedOnlyFunctions(statement: RuleStatement): string[] {
  const names = new Set<string>();
  walkExprs(statement, (e) => {
    if (e.kind === "call" && lookupFunction(e.name)?.support === "parsed-only") {
      names.add(e.name.toLowerCase());
    }
  });
  return [...names];
}
