// What a command shows a person: a path as they would type it, and the rows of a summary table.
import * as path from "node:path";

/**
 * A path as a person would type it: relative to the working folder when it lies inside it (the
 * folder itself included), else absolute, since a chain of `../` says less than the full path.
 */
export function shownPath(p: string): string {
  const rel = path.relative(process.cwd(), p);
  return rel === "" || rel.startsWith("..") || path.isAbsolute(rel) ? p : rel;
}

/** One row of a summary or dashboard: what is counted, and its value. */
export interface SummaryRow {
  readonly label: string;
  readonly value: string | number;
}
