// The IoT SQL grammar's text, read from iot-sql.peggy beside this module. A module of its own so
// that the published policy pack's bundle can inline the text (tools/build-policypack.ts).
import * as fs from "node:fs";
import * as path from "node:path";

/** Where the grammar lives in the repository. */
export const GRAMMAR_FILE = path.join(__dirname, "iot-sql.peggy");

/** The grammar's text. */
export function grammarText(): string {
  return fs.readFileSync(GRAMMAR_FILE, "utf8");
}
