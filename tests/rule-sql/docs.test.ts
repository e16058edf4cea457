// docs/iot-sql.md's function table names every function of the catalogue once, with the support
// the catalogue gives it, and nothing else: the table cannot drift from the engine.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { FUNCTIONS, type Support } from "../../core/rule-sql";

const DOC = path.join(__dirname, "..", "..", "docs", "iot-sql.md");
const WORDS: Record<string, Support> = {
  supported: "local",
  "stand-in": "stand-in",
  "parsed only": "parsed-only",
};

describe("docs/iot-sql.md function table", () => {
  const text = fs.readFileSync(DOC, "utf8");
  const section = text.slice(text.indexOf("## Functions"), text.indexOf("## Performance"));
  const rows = section
    .split("\n")
    .filter((l) => /^\| `/.test(l))
    .map((l) => l.split("|").map((c) => c.trim()));
  const listed = new Map<string, Support>();
  for (const [, names, support] of rows) {
    for (const m of names.matchAll(/`([A-Za-z_0-9]+)`/g)) {
      const name = m[1].toLowerCase();
      assert.ok(!listed.has(name), `${name} is listed twice`);
      assert.ok(support in WORDS, `${name}: unknown support ${JSON.stringify(support)}`);
      listed.set(name, WORDS[support]);
    }
  }

  for (const [name, spec] of Object.entries(FUNCTIONS)) {
    it(`lists ${name} as ${spec.support}`, () => {
      assert.equal(listed.get(name), spec.support, `${name} in docs/iot-sql.md`);
    });
  }

  it("lists no function the engine does not have", () => {
    assert.deepEqual(
      [...listed.keys()].filter((n) => !(n in FUNCTIONS)),
      [],
    );
  });
});
