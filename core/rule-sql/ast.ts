// The syntax tree of an IoT SQL (2016-03-23) statement, as the grammar in iot-sql.peggy builds it.

/** A 1-based position in the SQL text, for errors that name line and column. */
export interface Position {
  readonly line: number;
  readonly column: number;
}

/** A step of a field path: a name (`.name`) or a 0-based array index (`[n]`). */
export type PathStep = string | number;

export type Expr =
  /** A number literal keeps its text; the evaluator reads it as an Int or a Decimal. */
  | { readonly kind: "number"; readonly text: string; readonly at: Position }
  | { readonly kind: "literal"; readonly value: string | boolean | null }
  /** A field of the message (or, inside a nested SELECT, of the element being queried). */
  | { readonly kind: "field"; readonly path: readonly PathStep[] }
  /** Field access on any other expression's result: `decode(x, 'base64').temperature`. */
  | { readonly kind: "access"; readonly target: Expr; readonly path: readonly PathStep[] }
  /** `*` as a function argument: the whole payload (`encode(*, 'base64')`). */
  | { readonly kind: "star"; readonly at: Position }
  | {
      readonly kind: "call";
      readonly name: string;
      readonly args: readonly Expr[];
      readonly at: Position;
    }
  /** `cast(value AS type)`; `type` is the keyword in lower case. */
  | { readonly kind: "cast"; readonly value: Expr; readonly type: string; readonly at: Position }
  | { readonly kind: "unary"; readonly op: "-" | "NOT"; readonly operand: Expr }
  | { readonly kind: "binary"; readonly op: BinaryOp; readonly left: Expr; readonly right: Expr }
  | { readonly kind: "array"; readonly items: readonly Expr[] }
  | {
      readonly kind: "object";
      readonly entries: readonly { readonly key: string; readonly value: Expr }[];
    }
  /**
   * `CASE v WHEN t THEN r … ELSE e END` (simple: `subject` set) or `CASE WHEN cond THEN r … END`
   * (searched: no subject).
   */
  | {
      readonly kind: "case";
      readonly subject?: Expr;
      readonly whens: readonly { readonly when: Expr; readonly then: Expr }[];
      readonly otherwise?: Expr;
    }
  /** A nested object query: `(SELECT v FROM e WHERE n = 'x')`. */
  | { readonly kind: "subquery"; readonly query: SubQuery };

export type BinaryOp =
  "OR" | "AND" | "=" | "<>" | "<" | "<=" | ">" | ">=" | "IN" | "+" | "-" | "*" | "/" | "%";

export type SelectItem =
  /** `*`, optionally `* AS name`. */
  | { readonly kind: "star"; readonly alias?: readonly string[] }
  /** `alias` is a path: `AS a.b` nests the value under a, b. */
  | { readonly kind: "expr"; readonly expr: Expr; readonly alias?: readonly string[] };

export type SelectList =
  | { readonly kind: "items"; readonly items: readonly SelectItem[] }
  /** `SELECT VALUE expr`: the output is the value itself, not an object. */
  | { readonly kind: "value"; readonly expr: Expr };

/** A nested SELECT: its FROM names a field of the enclosing message, not a topic. */
export interface SubQuery {
  readonly select: SelectList;
  readonly from: readonly PathStep[];
  readonly where?: Expr;
}

export interface RuleStatement {
  readonly select: SelectList;
  /**
   * The FROM topic filter, without quotes; may hold MQTT `+` and `#`. Undefined for a rule that
   * only Basic Ingest invokes (the SQL reference makes FROM optional for those).
   */
  readonly from?: string;
  readonly where?: Expr;
}
