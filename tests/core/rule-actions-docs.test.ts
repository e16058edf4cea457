// docs/rule-actions.md's conformance table says what it claims: every row cites an AWS IoT
// developer guide page and names a test that exists, by its file and its exact title; a row about
// a substitution template cites the templates page
// (https://docs.aws.amazon.com/iot/latest/developerguide/iot-substitution-templates.html).
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { PROJECT_DIR } from "../../core/project";

const GUIDE = "https://docs.aws.amazon.com/iot/latest/developerguide/";

function rows(): string[][] {
  const text = fs.readFileSync(path.join(PROJECT_DIR, "docs", "rule-actions.md"), "utf8");
  const begin = text.indexOf("<!-- conformance:begin -->");
  const end = text.indexOf("<!-- conformance:end -->");
  assert.ok(begin >= 0 && end > begin, "docs/rule-actions.md has the conformance markers");
  return text
    .slice(begin, end)
    .split("\n")
    .filter((l) => l.startsWith("| ") && !l.startsWith("| action |"))
    .map((l) =>
      l
        .slice(2, -2)
        .split(" | ")
        .map((c) => c.trim()),
    );
}

describe("docs/rule-actions.md: the conformance table", () => {
  it("has a row for each new action, each citing a developer guide page and a test that exists", () => {
    const table = rows();
    const actions = new Set(table.map((r) => r[0]));
    for (const a of ["lambda", "s3", "sns", "sqs", "dynamoDBv2", "http"]) {
      assert.ok(actions.has(a), `a row for ${a}`);
    }
    const missing: string[] = [];
    for (const [action, words, page, test] of table) {
      assert.ok(page.includes(GUIDE), `${action}: "${words}" cites a developer guide page`);
      if (/substitution templates/.test(words)) {
        assert.ok(page.includes("iot-substitution-templates.html"), `${action}: ${words}`);
      }
      const at = test.indexOf(": ");
      const file = test.slice(0, at);
      const title = test.slice(at + 2);
      const source = fs.readFileSync(path.join(PROJECT_DIR, file), "utf8");
      if (!source.includes(JSON.stringify(title).slice(1, -1))) missing.push(test);
    }
    assert.deepEqual(missing, [], "tests the table names that do not exist");
  });
});
