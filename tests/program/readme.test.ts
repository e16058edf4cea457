// The README's config reference keeps up with Pulumi.yaml: one row per declared key.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { PROJECT_DIR } from "../../core/project";
import { declaredKeys } from "../../core/stack-config";

describe("README config reference", () => {
  it("has a row for every key Pulumi.yaml declares, and for aws:region", () => {
    const readme = fs.readFileSync(path.join(PROJECT_DIR, "README.md"), "utf8");
    const section = /<!-- section:config -->([\s\S]*?)<!-- \/section:config -->/.exec(readme);
    assert.ok(section, "README.md has a config section");
    const rows = new Set([...section[1].matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]));
    const missing = [...declaredKeys(), "aws:region"].filter((k) => !rows.has(k));
    assert.deepEqual(missing, [], "keys without a row in the README's config table");
  });
});
