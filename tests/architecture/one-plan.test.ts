// One plan, two back ends: the values core/plan.ts derives from the stack config are worked out
// there alone. The cloud components and the local pipeline take them from the plan; a back end
// that called one of these derivations itself could drift from the other.
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { PROJECT_DIR } from "../../core/project";

/** What the plan derives; only core/ (and the plan's tests) may call these. */
const DERIVATIONS = [
  "parseRuleSql",
  "lakeLayout",
  "planLakeLayout",
  "lakeColumns",
  "lakeDatabaseName",
  "lakeWorkgroupName",
  "bucketLifecycleRules",
  "windowsDeliveryConfig",
  "windowsStreamName",
  "savedQueries",
  "parquetCompression",
];

function sources(dir: string): string[] {
  return fs.readdirSync(path.join(PROJECT_DIR, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) return sources(rel);
    return e.name.endsWith(".ts") ? [rel] : [];
  });
}

describe("one plan: components/ and local/ derive nothing the plan holds", () => {
  for (const layer of ["components", "local"]) {
    it(`${layer}/ calls none of the plan's derivations`, () => {
      const files = sources(layer);
      assert.ok(files.length > 5, `read ${layer}/`);
      const found: string[] = [];
      for (const file of files) {
        const text = fs.readFileSync(path.join(PROJECT_DIR, file), "utf8");
        for (const name of DERIVATIONS) {
          if (new RegExp(`\\b${name}\\s*\\(`).test(text)) found.push(`${file}: ${name}()`);
        }
      }
      assert.deepEqual(found, [], "take these from core/plan.ts's PipelinePlan instead");
    });
  }
});
