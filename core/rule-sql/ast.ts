// The syntax tree of an IoT SQL (2016-03-23) statement, as the grammar in iot-sql.peggy builds it.

export type Expr =
  | { readonly kind: "literal"; readonly value: string | number | boolean | null }
  | { readonly kind: "field"; readonly path: readonly (string | number)[] }
  | { readonly kind: "call"; readonly name: string; readonly args: readonly Expr[] }
  | { readonly kind: "unary"; readonly op: "-" | "NOT"; readonly operand: Expr }
  | { readonly kind: "binary"; readonly op: BinaryOp; readonly left: Expr; readonly right: Expr }
  | { readonly kind: "array"; readonly items: readonly Expr[] }
  | {
      readonly kind: "object";
      readonly entries: readonly { readonly key: string; readonly value: Expr }[];
    };

export type BinaryOp =
  "OR" | "AND" | "=" | "<>" | "<" | "<=" | ">" | ">=" | "+" | "-" | "*" | "/" | "%";

export type SelectItem =
  | { readonly kind: "star" }
  /** `alias` is a path: `AS a.b` nests the value under a, b. */
  | { readonly kind: "expr"; readonly expr: Expr; readonly alias?: readonly string[] };

export type SelectList =
  | { readonly kind: "items"; readonly items: readonly SelectItem[] }
  /** `SELECT VALUE expr`: the output is the value itself, not an object. */
  | { readonly kind: "value"; readonly expr: Expr };

export interface RuleStatement {
  readonly select: SelectList;
  /** The FROM topic filter, without quotes; may hold MQTT `+` and `#`. */
  readonly from: string;
  readonly where?: Expr;
}
