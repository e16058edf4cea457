// The config reference (docs/config.md) keeps up with Pulumi.yaml: one row per declared key.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { PROJECT_DIR } from "../../core/project";
import { declaredKeys } from "../../core/stack-config";

describe("config reference (docs/config.md)", () => {
  it("has a row for every key Pulumi.yaml declares, and for aws:region", () => {
    const page = fs.readFileSync(path.join(PROJECT_DIR, "docs", "config.md"), "utf8");
    const rows = new Set([...page.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]));
    const missing = [...declaredKeys(), "aws:region"].filter((k) => !rows.has(k));
    assert.deepEqual(missing, [], "keys without a row in docs/config.md's table");
  });
});
