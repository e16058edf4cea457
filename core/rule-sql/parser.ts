// Parses IoT SQL with the peggy grammar in iot-sql.peggy; a syntax error names line and column.
import * as peggy from "peggy";
import type { RuleStatement } from "./ast";
import { GRAMMAR_FILE, grammarText } from "./grammar";

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

/** Parses one rule statement, or throws RuleSqlError. */
export function parseRuleSql(sql: string): RuleStatement {
  try {
    return parser.parse(sql) as RuleStatement;
  } catch (e) {
    if (!isPeggyError(e)) throw e;
    // peggy ends its messages with a full stop; ours continue with the position.
    const reason = e.message.replace(/\.$/, "");
    throw new RuleSqlError(reason, e.location.start.line, e.location.start.column);
  }
}
